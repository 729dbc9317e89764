"""What every settings source holds, secrets masked: what ``rune-lake settings`` prints,
whether or not the settings resolve (it is most needed when they do not)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from rune_io.config import ENV_VARS, PROJECT_FILE, RUNEQ_FILE, SECRET_KEYS, SETTABLE

#: keys runeq's ~/.rune/config may hold that rune-lake reads
_RUNEQ_KEYS = ("auth_method", "stream_url", "graph_url", *sorted(ENV_VARS))


def mask(key: str, value: Any) -> str:
    """A value as it may be shown: secrets as stars, ids cut to 4 characters."""
    if value is None or value == "":
        return "<unset>"
    text = str(value)
    if key in SECRET_KEYS:
        return "********** (set)"
    if key.endswith("_id"):
        return text[:4] + "..." if len(text) > 8 else "****"
    return text


def _holds(values: Mapping[str, Any], keys, spelled=lambda k: k) -> list[str]:
    return [f"    {spelled(k)} = {mask(k, values[k])}" for k in keys if k in values]


def _yaml_file(path: Path, keys, section: str | None) -> list[str]:
    if not path.exists():
        return ["    (no such file)"]
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        return [f"    (cannot read it: {type(exc).__name__})"]
    if section and isinstance(data, dict):
        data = data.get(section)
    if not isinstance(data, dict):
        return ["    (no settings in it)"]
    prefix = f"{section}." if section else ""
    lines = _holds(data, sorted(k for k in set(keys) if k in data), lambda k: prefix + k)
    return lines or ["    (no settings rune-lake reads)"]


def describe_sources(
    config_path: str | os.PathLike[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    credentials_block: tuple[str, Mapping[str, Any] | str] | None = None,
) -> str:
    """Every source :func:`rune_io.config.load_settings` reads, highest first, and what
    each holds (masked). ``credentials_block`` is ``(name, its JSON value or the reason
    it could not be read)`` when one was named."""
    env = os.environ if environ is None else environ
    lines = ["sources, highest first:", "  environment"]
    lines += _holds(
        {k: env[v] for k, v in ENV_VARS.items() if env.get(v)}, sorted(ENV_VARS), ENV_VARS.get
    ) or ["    (no RUNE_* variable set)"]
    project = Path(config_path) if config_path is not None else Path(PROJECT_FILE)
    lines.append(f"  project file {project}")
    lines += _yaml_file(project, sorted(SETTABLE), "rune")
    runeq = Path(os.path.expanduser(RUNEQ_FILE))
    lines.append(f"  runeq config file {runeq}")
    lines += _yaml_file(runeq, _RUNEQ_KEYS, None)
    if credentials_block is None:
        lines.append(
            "  credentials block: none named (flows read one when their credentials_block "
            "parameter names it; `rune-lake settings --credentials-block NAME` shows it)"
        )
    else:
        name, value = credentials_block
        lines.append(f"  credentials block {name!r} (explicit values, above the environment)")
        if isinstance(value, Mapping):
            lines += _holds(value, sorted(value)) or ["    (empty)"]
        else:
            lines.append(f"    (cannot read it: {value})")
    return "\n".join(lines)
