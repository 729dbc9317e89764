"""Per-process, per-thread resources for tasks: a Rune client and open lakes.

Tasks receive only small picklable values (ids, windows, a lake URL, a credentials
block name) and get their heavy objects here, so the same task runs in a thread pool,
a Dask worker process or a Kubernetes pod. A ``requests.Session`` is not shared across
threads: each worker thread gets its own pooled client.
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

from rune_io.api.client import RuneClient
from rune_io.lake import Lake, open_lake
from rune_io.settings import Settings, load_settings
from rune_io.settings.declare import LAKE_CONFIG
from rune_io.settings.environ import fingerprint, passed_through_items
from rune_lake.tasks.logs import forward_rune_io_logs

_local = threading.local()
_lakes: dict[str, Lake] = {}
_lock = threading.Lock()


def settings(credentials_block: str | None = None) -> Settings:
    """Settings from the environment and config files (``RUNE_LAKE_CONFIG``), plus
    credentials from a Prefect ``Secret`` block (JSON with runeq's keys) when one is named."""
    config = LAKE_CONFIG.get()
    if not credentials_block:
        return load_settings(config)
    creds = credentials_from_block(credentials_block)
    return load_settings(config, **{k: v for k, v in creds.items() if v})


def credentials_from_block(name: str) -> dict[str, Any]:
    """The Rune credentials in the Prefect ``Secret`` block ``name`` (JSON, runeq's keys)."""
    from prefect.blocks.system import Secret

    block: Any = Secret.load(name)  # a Secret (sync context)
    raw: Any = block.get()
    return raw if isinstance(raw, dict) else json.loads(raw)


def _settings_key(credentials_block: str | None) -> tuple[str, ...]:
    """What the settings depend on, so a changed setting gets a new client."""
    return (credentials_block or "", *fingerprint())


def client(credentials_block: str | None = None) -> RuneClient:
    """This thread's client (created on first use, and again if the settings change)."""
    key = _settings_key(credentials_block)
    cache: dict[tuple[str, ...], RuneClient] = getattr(_local, "clients", None) or {}
    _local.clients = cache
    if key not in cache:
        forward_rune_io_logs()  # also in Dask worker processes
        for old in cache.values():
            old.close()
        cache.clear()
        cache[key] = RuneClient(settings(credentials_block))
    return cache[key]


def _lake_key(url: str) -> str:
    """What an opened lake depends on: its URL and the object store's endpoint and
    credentials from the environment (a changed endpoint gets a new filesystem)."""
    env = "\n".join(f"{k}={v}" for k, v in passed_through_items("AWS_"))
    return f"{url}\n{hashlib.sha256(env.encode()).hexdigest()[:16]}"  # no secret in a key


def lake(url: str) -> Lake:
    """The lake at ``url`` (opened once per process, and again if its environment
    changes)."""
    key = _lake_key(url)
    with _lock:
        if key not in _lakes:
            _lakes[key] = open_lake(url)
        return _lakes[key]
