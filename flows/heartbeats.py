"""Flow-run heartbeats that stop at once when a CLI run ends.

Prefect (3.8.8, and 3.9.1 still) emits a flow run's heartbeats from a daemon thread that
sleeps in steps of one second (``time.sleep(1)``, checking its stop event between
steps), and the engine *joins* that thread when the run ends. Every flow run therefore
ends 0 to 1 s after its last task did, 0.5 s on average: measured, 0.1-1.0 s between the
run's end time on the server and a ``rune-lake refresh`` command's exit, the largest
part of that gap.

:func:`stop_heartbeats_promptly` keeps the heartbeats (``PREFECT_FLOWS_HEARTBEAT_FREQUENCY``,
for a zombie-run automation) and only drops the join: the stop event is set as before,
and the thread, which checks it before every heartbeat, ends by itself within a second
without emitting another. The CLI's in-process runs use it (they exit right after);
deployment runs on workers are left as Prefect makes them.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_MARK = "_rune_lake_no_join"


def stop_heartbeats_promptly() -> bool:
    """Make flow runs in this process stop their heartbeat thread without joining it.
    Returns whether it applies (False if this Prefect has no such thread to join)."""
    import prefect.flow_engine as engine

    send = getattr(engine, "_send_heartbeats", None)
    if send is None or getattr(send, _MARK, False):
        return send is not None
    try:
        if "join_on_exit" not in inspect.signature(send).parameters:
            return False
    except (TypeError, ValueError):
        return False

    @contextmanager
    def send_without_join(run_engine: Any, join_on_exit: bool = True) -> Iterator[None]:
        with send(run_engine, join_on_exit=False):
            yield

    setattr(send_without_join, _MARK, True)
    setattr(engine, "_send_heartbeats", send_without_join)  # noqa: B010 - private, checked above
    return True
