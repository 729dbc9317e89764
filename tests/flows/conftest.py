"""Flow tests: one Prefect test harness for the whole session, emulators over real HTTP."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
# quick retries: the policies are the same, the waits are short (set before tasks import)
os.environ.setdefault("RUNE_LAKE_TASK_RETRY_DELAYS", "0.2")

from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from rune_emulator import (  # noqa: E402
    DEMO_ACCESS_TOKEN_ID,
    DEMO_ACCESS_TOKEN_SECRET,
    EmulatorConfig,
    running_emulator,
)
from tests.environ import patched_environ  # noqa: E402

NOW = datetime(2026, 11, 1, 15, 30, tzinfo=UTC)
#: low-rate streams: fast to load; the 50 Hz streams get a test of their own
LIGHT = ["vitals", "neural", "symptom", "sleep", "device_info", "environment", "patient_report"]

RUNE_VARS = (
    "RUNE_MAX_ATTEMPTS",
    "RUNE_BACKOFF_BASE",
    "RUNE_BACKOFF_CAP",
    "RUNE_STREAM_URL",
    "RUNE_GRAPH_URL",
    "RUNE_ACCESS_TOKEN_ID",
    "RUNE_ACCESS_TOKEN_SECRET",
    "RUNE_CLIENT_KEY_ID",
    "RUNE_CLIENT_ACCESS_KEY",
    "RUNE_JWT",
)


@pytest.fixture(scope="session", autouse=True)
def prefect_harness() -> Iterator[None]:
    with prefect_test_harness(server_startup_timeout=120):
        yield


def api_env(emu, **extra: str):
    """Point rune_io's settings at ``emu`` (environment, as a user would)."""
    return patched_environ(
        {
            "RUNE_STREAM_URL": emu.url,
            "RUNE_GRAPH_URL": emu.url,
            "RUNE_ACCESS_TOKEN_ID": DEMO_ACCESS_TOKEN_ID,
            "RUNE_ACCESS_TOKEN_SECRET": DEMO_ACCESS_TOKEN_SECRET,
            "RUNE_MAX_ATTEMPTS": "4",
            "RUNE_BACKOFF_BASE": "0.05",
            "RUNE_BACKOFF_CAP": "0.2",
            **extra,
        },
        clear=RUNE_VARS,
    )


@contextmanager
def emulator(**kw) -> Iterator:
    cfg = EmulatorConfig(**({"seed": 11, "patients": 2, "days": 3, "now": NOW} | kw))
    with running_emulator(cfg) as emu, api_env(emu):
        yield emu
