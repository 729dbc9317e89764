"""Where a variable's value comes from, read at the point of use: a ``rune-lake``
command's overrides (scoped to a block, never written to the process environment),
else the environment. The only module of ``rune_io``, ``rune_lake.flows`` and
``rune_lake.tasks`` that touches ``os.environ`` (a test checks it).

A command's overrides (:func:`overrides`) follow its flow run into the task threads
(Prefect runs tasks in a copy of the caller's context); worker processes it spawns get
them as environment variables (:func:`current_overrides`, handed to the Dask
``LocalCluster``), so a task reads the same values wherever it runs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from rune_io.errors import UnknownSetting, UsageError
from rune_io.settings.declare import BY_NAME, PASSED_THROUGH_NAMES

ENVIRONMENT = "environment"

#: (values by variable name, the source that set them)
_layer: ContextVar[tuple[Mapping[str, str], str] | None] = ContextVar(
    "rune_settings_overrides", default=None
)


@contextmanager
def overrides(values: Mapping[str, str], source: str = "rune-lake command line") -> Iterator[None]:
    """Within the block (this context and the task threads of flows run in it), the
    declared variables in ``values`` read as given, above the environment. ``source``
    names them in reports and error messages."""
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise UsageError(f"not declared settings: {unknown}")
    current = _layer.get()
    merged = {**(current[0] if current else {}), **values}
    token = _layer.set((merged, source))
    try:
        yield
    finally:
        _layer.reset(token)


def current_overrides() -> dict[str, str]:
    """The overrides in force here (to hand to processes spawned for this run)."""
    current = _layer.get()
    return dict(current[0]) if current else {}


def lookup(name: str, environ: Mapping[str, str] | None = None) -> tuple[str | None, str]:
    """``(raw value, source)`` of a declared variable; ``None`` when unset or empty."""
    if name not in BY_NAME:
        raise UnknownSetting(f"{name} is not a declared setting (rune_io.settings.declare)")
    current = _layer.get()
    if current and current[0].get(name):
        return current[0][name], current[1]
    value = (os.environ if environ is None else environ).get(name)
    return (value, ENVIRONMENT) if value else (None, "default")


def layer(environ: Mapping[str, str] | None = None) -> list[tuple[str, dict[str, str]]]:
    """The sources of raw values, highest first: ``[(source, {name: value})]`` for the
    overrides (if any) and the environment (declared variables that are set)."""
    env = os.environ if environ is None else environ
    out = []
    current = _layer.get()
    if current and current[0]:
        out.append((current[1], {k: v for k, v in current[0].items() if v}))
    out.append((ENVIRONMENT, {k: env[k] for k in BY_NAME if env.get(k)}))
    return out


def fingerprint() -> tuple[str, ...]:
    """Every declared variable's raw value as read now: a key for caches of objects
    built from the settings (a changed value gets a new object)."""
    return tuple(f"{name}={lookup(name)[0] or ''}" for name in BY_NAME)


# -- other libraries' variables ------------------------------------------------------------


def passed_through(name: str) -> str | None:
    """A variable of another library (``AWS_*``, ``PREFECT_*``) as the environment has it."""
    _check_passed_through(name)
    return os.environ.get(name) or None


def passed_through_items(prefix: str) -> list[tuple[str, str]]:
    """Every environment variable starting with ``prefix`` (``AWS_``), sorted: what a
    library reads from the environment, for cache keys."""
    if not prefix.startswith(("AWS_", "PREFECT_")):
        raise UsageError(f"{prefix!r}: only AWS_* and PREFECT_* are passed through")
    return sorted((k, v) for k, v in os.environ.items() if k.startswith(prefix))


def without_settings() -> dict[str, str]:
    """This process's environment without any ``RUNE_*`` variable: for long-lived helper
    processes (the local Prefect server, the warm runner) that must not keep a command's
    settings or credentials."""
    return {k: v for k, v in os.environ.items() if not k.startswith("RUNE_")}


def export_default(name: str, value: str) -> None:
    """Set another library's variable for this process and its children, unless set."""
    _check_passed_through(name)
    os.environ.setdefault(name, value)


@contextmanager
def exported(values: Mapping[str, str]) -> Iterator[None]:
    """Set other libraries' variables for the block (this process and the processes it
    spawns, e.g. ``PREFECT_API_URL`` for Dask workers); restore them afterwards."""
    for name in values:
        _check_passed_through(name)
    with _exported(values):
        yield


@contextmanager
def exported_settings(values: Mapping[str, str]) -> Iterator[None]:
    """Declared ``RUNE_*`` settings in the environment for the block, for processes that
    cannot be handed overrides (the runs a served Prefect deployment starts: they
    inherit its environment); restored afterwards."""
    unknown = sorted(set(values) - set(BY_NAME))
    if unknown:
        raise UsageError(f"not declared settings: {unknown}")
    with _exported(values):
        yield


@contextmanager
def _exported(values: Mapping[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, old in saved.items():
            if old is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = old


def _check_passed_through(name: str) -> None:
    if name not in PASSED_THROUGH_NAMES:
        raise UnknownSetting(f"{name} is not a passed-through variable (rune_io.settings.declare)")
