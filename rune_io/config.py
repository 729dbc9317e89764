"""Settings for talking to Rune: one typed, frozen object and one loader.

Sources, highest precedence first:

1. explicit keyword arguments to :func:`load_settings`;
2. environment: ``RUNE_ACCESS_TOKEN_ID``, ``RUNE_ACCESS_TOKEN_SECRET``,
   ``RUNE_CLIENT_KEY_ID``, ``RUNE_CLIENT_ACCESS_KEY``, ``RUNE_JWT``, ``RUNE_STREAM_URL``,
   ``RUNE_GRAPH_URL``;
3. the project file ``rune-lake.yaml`` (its ``rune:`` section; path overridable);
4. the user's runeq file ``~/.rune/config`` (same keys as runeq, so an existing file
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
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from rune_io.api.retry import RetryPolicy
from rune_io.errors import ConfigError

AuthMethod = Literal["access_token", "client_keys", "jwt"]

DEFAULT_STREAM_URL = "https://stream.runelabs.io"
DEFAULT_GRAPH_URL = "https://graph.runelabs.io"
PROJECT_FILE = "rune-lake.yaml"
RUNEQ_FILE = "~/.rune/config"


class Secret:
    """A secret string: masked everywhere except :meth:`get_secret_value`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError(f"Secret value must be a str, not {type(value).__name__}")
        self._value = value

    def get_secret_value(self) -> str:
        """The secret itself: for building request headers, nothing else."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self._value,))


#: credential families: auth method -> (key, key) they need
FAMILIES: dict[str, tuple[str, ...]] = {
    "access_token": ("access_token_id", "access_token_secret"),
    "client_keys": ("client_key_id", "client_access_key"),
    "jwt": ("jwt",),
}
CREDENTIAL_KEYS: tuple[str, ...] = tuple(k for keys in FAMILIES.values() for k in keys)
SECRET_KEYS = frozenset({"access_token_secret", "client_access_key", "jwt"})

ENV_VARS: dict[str, str] = {
    "access_token_id": "RUNE_ACCESS_TOKEN_ID",
    "access_token_secret": "RUNE_ACCESS_TOKEN_SECRET",
    "client_key_id": "RUNE_CLIENT_KEY_ID",
    "client_access_key": "RUNE_CLIENT_ACCESS_KEY",
    "jwt": "RUNE_JWT",
    "stream_url": "RUNE_STREAM_URL",
    "graph_url": "RUNE_GRAPH_URL",
    "connect_timeout": "RUNE_CONNECT_TIMEOUT",
    "read_timeout": "RUNE_READ_TIMEOUT",
    "max_attempts": "RUNE_MAX_ATTEMPTS",
    "backoff_base": "RUNE_BACKOFF_BASE",
    "backoff_cap": "RUNE_BACKOFF_CAP",
    "verify_tls": "RUNE_VERIFY_TLS",
    "read_parallelism": "RUNE_READ_PARALLELISM",
    "discovery_concurrency": "RUNE_DISCOVERY_CONCURRENCY",
}

_FLOAT_KEYS = ("connect_timeout", "read_timeout", "backoff_base", "backoff_cap", "retry_after_cap")
_INT_KEYS = ("max_attempts", "pool_size", "read_parallelism", "discovery_concurrency")
_BOOL_KEYS = ("verify_tls",)
#: keys the project file's ``rune:`` section and explicit arguments may set
SETTABLE: frozenset[str] = frozenset(
    {"auth_method", "stream_url", "graph_url", *CREDENTIAL_KEYS}
    | set(_FLOAT_KEYS)
    | set(_INT_KEYS)
    | set(_BOOL_KEYS)
)


@dataclass(frozen=True)
class Settings:
    """Everything a :class:`rune_io.api.client.RuneClient` needs. Build it with :func:`load_settings`."""

    auth_method: AuthMethod
    """Which credential family authenticates: ``access_token``, ``client_keys`` or ``jwt``."""
    access_token_id: str | None = None
    """User access token id (header ``X-Rune-User-Access-Token-Id``)."""
    access_token_secret: Secret | None = None
    """User access token secret."""
    client_key_id: str | None = None
    """Client key id (header ``X-Rune-Client-Key-Id``); reads exactly one patient."""
    client_access_key: Secret | None = None
    """Client access key."""
    jwt: Secret | None = None
    """A JWT (header ``X-Rune-User-Access-Token``)."""
    stream_url: str = DEFAULT_STREAM_URL
    """Base URL of the Stream API (V1 and V2); any path is dropped, as runeq does."""
    graph_url: str = DEFAULT_GRAPH_URL
    """Base URL of the GraphQL API; ``/graphql`` is appended."""
    connect_timeout: float = 10.0
    """Seconds to wait for a TCP connection."""
    read_timeout: float = 120.0
    """Seconds to wait between bytes of a response."""
    max_attempts: int = 6
    """Attempts per request, the first included."""
    backoff_base: float = 0.5
    """Backoff ceiling of the first retry, seconds (doubles per retry, full jitter)."""
    backoff_cap: float = 30.0
    """Largest backoff ceiling, seconds."""
    retry_after_cap: float = 120.0
    """Longest server ``Retry-After`` honoured, seconds."""
    pool_size: int = 16
    """Connections kept per host in the session's pool (match your thread count)."""
    read_parallelism: int = 1
    """Concurrent page chains per V2 read (``StreamReader.read(parallel=...)`` default)."""
    discovery_concurrency: int = 8
    """GraphQL requests discovery keeps in flight at once (patients, devices, streams)."""
    verify_tls: bool = True
    """Verify TLS certificates."""
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    """Where each value came from (key -> source description), for :meth:`describe`."""

    def __post_init__(self) -> None:
        for key in FAMILIES[self.auth_method]:
            if not getattr(self, key):
                raise ConfigError(
                    f"auth_method {self.auth_method!r} needs {key}; "
                    f"set {', '.join(FAMILIES[self.auth_method])}"
                )
        for key in SECRET_KEYS:
            value = getattr(self, key)
            if isinstance(value, str):
                object.__setattr__(self, key, Secret(value))
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ConfigError(
                f"connect_timeout and read_timeout must be > 0, got "
                f"{self.connect_timeout} and {self.read_timeout}"
            )
        if self.pool_size < 1:
            raise ConfigError(f"pool_size must be >= 1, got {self.pool_size}")
        if self.read_parallelism < 1:
            raise ConfigError(f"read_parallelism must be >= 1, got {self.read_parallelism}")
        if self.discovery_concurrency < 1:
            raise ConfigError(
                f"discovery_concurrency must be >= 1, got {self.discovery_concurrency}"
            )

    @property
    def timeout(self) -> tuple[float, float]:
        """``(connect, read)`` timeouts as ``requests`` takes them."""
        return (self.connect_timeout, self.read_timeout)

    @property
    def retry_policy(self) -> RetryPolicy:
        """The :class:`RetryPolicy` these settings describe."""
        try:
            return RetryPolicy(
                max_attempts=self.max_attempts,
                base=self.backoff_base,
                cap=self.backoff_cap,
                retry_after_cap=self.retry_after_cap,
            )
        except ValueError as exc:
            raise ConfigError(f"bad retry settings: {exc}") from None

    def auth_headers(self) -> dict[str, str]:
        """Request headers for the chosen credential family (contains secrets: send only)."""

        def reveal(s: Secret | None) -> str:
            return s.get_secret_value() if s else ""

        if self.auth_method == "access_token":
            return {
                "X-Rune-User-Access-Token-Id": self.access_token_id or "",
                "X-Rune-User-Access-Token-Secret": reveal(self.access_token_secret),
            }
        if self.auth_method == "client_keys":
            return {
                "X-Rune-Client-Key-Id": self.client_key_id or "",
                "X-Rune-Client-Access-Key": reveal(self.client_access_key),
            }
        return {"X-Rune-User-Access-Token": reveal(self.jwt)}

    def describe(self) -> str:
        """A masked, multi-line summary: each value and the source it came from."""
        lines = [
            f"auth_method = {self.auth_method}  ({self.sources.get('auth_method', 'inferred')})"
        ]
        for key in FAMILIES[self.auth_method]:
            value = getattr(self, key)
            shown = "**********" if key in SECRET_KEYS else _mask_id(value)
            lines.append(f"{key} = {shown}  ({self.sources.get(key, 'default')})")
        for key in ("stream_url", "graph_url", *_FLOAT_KEYS, *_INT_KEYS, *_BOOL_KEYS):
            lines.append(f"{key} = {getattr(self, key)}  ({self.sources.get(key, 'default')})")
        return "\n".join(lines)


def _mask_id(value: str | None) -> str:
    if not value:
        return "<unset>"
    return value[:4] + "..." if len(value) > 8 else "****"


# --------------------------------------------------------------------------- loading


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
        environ: environment to read (default ``os.environ``).
        **overrides: explicit values (any :class:`Settings` field); ``None`` means unset.

    Raises:
        ConfigError: naming the source and key at fault, and what to do.
    """
    env = os.environ if environ is None else environ
    unknown = sorted(set(overrides) - SETTABLE)
    if unknown:
        raise ConfigError(
            f"load_settings(): unknown argument(s) {unknown}; known: {sorted(SETTABLE)}"
        )
    candidates = [
        _Source("argument", {k: v for k, v in overrides.items() if v is not None}),
        _Source(
            "environment",
            {k: env[v] for k, v in ENV_VARS.items() if env.get(v)},
            keyname=dict(ENV_VARS),
        ),
        _project_source(config_path),
        _runeq_source(runeq_config_path),
    ]
    sources = [s for s in candidates if s is not None]

    values: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key in ("stream_url", "graph_url", *_FLOAT_KEYS, *_INT_KEYS, *_BOOL_KEYS):
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
        if key in _FLOAT_KEYS:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if key in _INT_KEYS:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if key in _BOOL_KEYS:
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
            if key in _FLOAT_KEYS
            else "an integer"
            if key in _INT_KEYS
            else ("true or false" if key in _BOOL_KEYS else "a string")
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
