"""Resolve :class:`~rune_io.settings.model.Settings` from its sources.

Sources, highest precedence first:

1. explicit keyword arguments to :func:`load_settings`;
2. a ``rune-lake`` command's overrides (:func:`rune_io.settings.environ.overrides`);
3. environment: the variables declared with a ``key`` in
   :mod:`rune_io.settings.declare` (``RUNE_ACCESS_TOKEN_ID``, ``RUNE_STREAM_URL``, ...);
4. the project file ``rune-lake.yaml`` (its ``rune:`` section; path overridable);
5. the user's runeq file ``~/.rune/config`` (same keys as runeq, so an existing file
   just works).

URLs, timeouts and retry knobs are merged key by key. Credentials are not: they come
whole from the highest source that has any, and that source must hold exactly one
complete family (access token, client key pair, or JWT) - or say which with
``auth_method``, as runeq allows. Secret values are :class:`Secret`: masked in ``repr``,
``str``, logs and error messages.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from rune_io.errors import ConfigError
from rune_io.settings import environ as env_layer
from rune_io.settings.model import (
    BOOL_KEYS,
    CREDENTIAL_KEYS,
    ENV_VARS,
    FAMILIES,
    FLOAT_KEYS,
    INT_KEYS,
    PROJECT_FILE,
    RUNEQ_FILE,
    SECRET_KEYS,
    SETTABLE,
    Secret,
    Settings,
)

#: variable name -> Settings field
_KEY_OF = {name: key for key, name in ENV_VARS.items()}


@dataclass
class _Source:
    name: str  # human description, e.g. "environment" or "file /home/me/.rune/config"
    values: dict[str, Any]
    keyname: dict[str, str] = field(default_factory=dict)  # key -> how the source spells it

    def label(self, key: str) -> str:
        return f"{self.name} ({self.keyname.get(key, key)})"


def load_settings(
    config_path: str | os.PathLike[str] | None = None,
    *,
    runeq_config_path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **overrides: Any,
) -> Settings:
    """Resolve :class:`Settings` from arguments, environment, project file and runeq file.

    Args:
        config_path: the project file; default ``./rune-lake.yaml`` if it exists (an
            explicit path must exist). Its ``rune:`` section holds the settings.
        runeq_config_path: the runeq file; default ``~/.rune/config`` if it exists.
        environ: environment to read (default ``os.environ``); a ``rune-lake``
            command's overrides apply above it either way.
        **overrides: explicit values (any :class:`Settings` field); ``None`` means unset.

    Raises:
        ConfigError: naming the source and key at fault, and what to do.
    """
    unknown = sorted(set(overrides) - SETTABLE)
    if unknown:
        raise ConfigError(
            f"load_settings(): unknown argument(s) {unknown}; known: {sorted(SETTABLE)}"
        )
    found: list[_Source | None] = [
        _Source("argument", {k: v for k, v in overrides.items() if v is not None})
    ]
    for name, raw in env_layer.layer(environ):
        held: dict[str, Any] = {_KEY_OF[k]: v for k, v in raw.items() if k in _KEY_OF}
        if held or name == env_layer.ENVIRONMENT:
            found.append(_Source(name, held, keyname=dict(ENV_VARS)))
    found += [_project_source(config_path), _runeq_source(runeq_config_path)]
    sources = [s for s in found if s is not None]

    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key in ("stream_url", "graph_url", *FLOAT_KEYS, *INT_KEYS, *BOOL_KEYS):
        for src in sources:
            if key in src.values and src.values[key] is not None:
                values[key] = _coerce(key, src.values[key], src)
                origin[key] = src.label(key)
                break
    for key in ("stream_url", "graph_url"):
        if key in values:
            values[key] = _check_url(values[key], key, origin[key])

    auth = _resolve_auth(sources)
    values.update(auth.values)
    origin.update(auth.origin)
    return Settings(sources=origin, **values)


@dataclass
class _Auth:
    values: dict[str, Any]
    origin: dict[str, str]


def _resolve_auth(sources: list[_Source]) -> _Auth:
    """Credentials come whole from the highest source that has any."""
    tried = []
    for src in sources:
        present = [k for k in CREDENTIAL_KEYS if src.values.get(k)]
        method = src.values.get("auth_method")
        tried.append(src.name)
        if not present and not method:
            continue
        if method is not None and method not in FAMILIES:
            raise ConfigError(
                f"{src.label('auth_method')}: auth_method {method!r} is not one of "
                f"{sorted(FAMILIES)}"
            )
        if method is None:
            families = [m for m, keys in FAMILIES.items() if any(k in present for k in keys)]
            if len(families) > 1:
                raise ConfigError(
                    f"{src.name}: credentials of more than one kind are set "
                    f"({', '.join(src.keyname.get(k, k) for k in present)}); keep one family "
                    f"(access token, client key pair, or JWT) or set auth_method to choose"
                )
            if not families:  # auth_method absent and nothing present: unreachable
                continue
            method = families[0]
        needed = FAMILIES[method]
        missing = [k for k in needed if not src.values.get(k)]
        if missing:
            raise ConfigError(
                f"{src.name}: incomplete {method} credentials: "
                f"{', '.join(src.keyname.get(k, k) for k in needed if k not in missing)} "
                f"is set but {', '.join(src.keyname.get(k, k) for k in missing)} is missing; "
                f"set all of {', '.join(src.keyname.get(k, k) for k in needed)} in the same place"
            )
        values: dict[str, Any] = {"auth_method": method}
        origin = {
            "auth_method": src.label("auth_method")
            if "auth_method" in src.values
            else f"inferred from {src.name}"
        }
        for key in needed:
            raw = src.values[key]
            if isinstance(raw, Secret):
                raw = raw.get_secret_value()
            if not isinstance(raw, str):
                raise ConfigError(f"{src.label(key)}: {key} must be a string")
            values[key] = Secret(raw.strip()) if key in SECRET_KEYS else raw.strip()
            origin[key] = src.label(key)
        return _Auth(values, origin)
    raise ConfigError(
        "no Rune credentials found (looked in: " + ", ".join(tried) + "). Set "
        "RUNE_ACCESS_TOKEN_ID and RUNE_ACCESS_TOKEN_SECRET (or RUNE_CLIENT_KEY_ID and "
        "RUNE_CLIENT_ACCESS_KEY, or RUNE_JWT), or write access_token_id and "
        "access_token_secret to ~/.rune/config (YAML) or under rune: in rune-lake.yaml; "
        "`rune-lake settings` shows what each source holds"
    )


def _read_yaml(path: Path, what: str) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            f"{what} {path} cannot be read ({exc.strerror or exc}); fix its permissions "
            "or point to another file"
        ) from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{what} {path} is not valid YAML{where}; fix the syntax") from None


def _project_source(config_path: str | os.PathLike[str] | None) -> _Source | None:
    explicit = config_path is not None
    path = Path(config_path) if config_path is not None else Path(PROJECT_FILE)
    if not path.exists():
        if explicit:
            raise ConfigError(f"project file {path} does not exist; pass an existing path")
        return None
    data = _read_yaml(path, "project file")
    name = f"project file {path}"
    if data is None:
        return _Source(name, {})
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: expected a mapping at the top level")
    section = data.get("rune")
    if section is None:
        return _Source(name, {})
    if not isinstance(section, dict):
        raise ConfigError(f"{name}: 'rune' must be a mapping of settings")
    unknown = sorted(set(section) - SETTABLE)
    if unknown:
        raise ConfigError(
            f"{name}: unknown key(s) rune.{', rune.'.join(unknown)}; known: {sorted(SETTABLE)}"
        )
    return _Source(name, dict(section), keyname={k: f"rune.{k}" for k in section})


def _runeq_source(runeq_config_path: str | os.PathLike[str] | None) -> _Source | None:
    explicit = runeq_config_path is not None
    path = Path(os.path.expanduser(str(runeq_config_path or RUNEQ_FILE)))
    if not path.exists():
        if explicit:
            raise ConfigError(f"runeq config file {path} does not exist; pass an existing path")
        return None
    data = _read_yaml(path, "runeq config file")
    name = f"runeq config file {path}"
    if data is None:
        return _Source(name, {})
    if not isinstance(data, dict):
        raise ConfigError(f"{name}: expected a YAML mapping of runeq keys")
    # runeq ignores keys it does not know (strive_url, cognito_*...): so do we
    keep = {"auth_method", "stream_url", "graph_url", *CREDENTIAL_KEYS}
    return _Source(name, {k: v for k, v in data.items() if k in keep})


def _coerce(key: str, value: Any, src: _Source) -> Any:
    try:
        if key in FLOAT_KEYS:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if key in INT_KEYS:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if key in BOOL_KEYS:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
            raise ValueError
        if not isinstance(value, str):
            raise ValueError
        return value
    except (TypeError, ValueError):
        kind = (
            "a number"
            if key in FLOAT_KEYS
            else "an integer"
            if key in INT_KEYS
            else ("true or false" if key in BOOL_KEYS else "a string")
        )
        raise ConfigError(f"{src.label(key)}: {key} must be {kind}, got {value!r}") from None


def _check_url(value: str, key: str, where: str) -> str:
    url = value.strip().rstrip("/")
    parts = urlsplit(url)
    problem = None
    if parts.scheme not in ("http", "https"):
        problem = "must start with http:// or https://"
    elif not parts.hostname:
        problem = "has no host"
    elif parts.username or parts.password:
        problem = "must not carry credentials (use the credential settings)"
    elif parts.query or parts.fragment:
        problem = "must not have a query string or fragment"
    else:
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            problem = "has an invalid port"
    if problem:
        shown = f"{parts.scheme}://{parts.hostname or ''}..." if parts.username else repr(value)
        raise ConfigError(f"{where}: {key} {shown} {problem}; e.g. https://stream.runelabs.io")
    return url
