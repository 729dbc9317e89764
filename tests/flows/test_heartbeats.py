"""CLI runs end with their last task: the heartbeat thread is stopped, not joined."""

from __future__ import annotations

import threading
import time

from prefect import flow

from rune_lake.flows.heartbeats import stop_heartbeats_promptly
from tests.environ import patched_environ


def _heartbeat_threads() -> list[threading.Thread]:
    def target(t: threading.Thread) -> str:
        args = getattr(t, "_args", ()) or (None,)  # Prefect runs it as ctx.run(loop)
        return getattr(args[0], "__name__", "")

    return [t for t in threading.enumerate() if target(t) == "heartbeat_loop"]


@flow
def _quick() -> int:
    time.sleep(0.2)  # the heartbeat thread has started and sleeps its 1 s steps
    return 1


def test_a_cli_flow_run_returns_without_joining_its_heartbeat_thread(monkeypatch):
    import prefect.flow_engine as engine

    # Prefect's own function again after the test: the other flow tests run unpatched
    monkeypatch.setattr(engine, "_send_heartbeats", engine._send_heartbeats)
    assert stop_heartbeats_promptly()
    assert stop_heartbeats_promptly()  # idempotent: applied once
    with patched_environ({"PREFECT_FLOWS_HEARTBEAT_FREQUENCY": "30"}):
        import prefect.context

        prefect.context.refresh_global_settings_context()
        assert _quick() == 1
        # not joined: Prefect's own engine would have waited for it to end
        assert _heartbeat_threads(), "the heartbeat thread was joined (or never started)"
        deadline = time.monotonic() + 3
        while _heartbeat_threads() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _heartbeat_threads(), "the heartbeat thread did not stop by itself"
    prefect.context.refresh_global_settings_context()
