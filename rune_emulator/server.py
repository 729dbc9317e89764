"""Run the emulator: in-process on a free port (:func:`running_emulator`) or forever."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pyarrow as pa
import uvicorn

from .app import create_app
from .clock import Clock
from .cohort import StreamSpec, SyntheticCohort
from .config import ChaosConfig, EmulatorConfig
from .models import StreamMeta
from .state import EmulatorState, RequestStats
from .store import to_ns
from .truth import chunk_to_table


class _QuietAborts(logging.Filter):
    """Chaos resets/truncations end responses early on purpose: don't log them."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "without completing response" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietAborts())


#: uvicorn's default backlog (asyncio's ``listen`` keeps it)
BACKLOG = 2048


def tcp_listener(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn's ``sockets=``, whose connections get TCP_NODELAY.

    The protocol is ``IPPROTO_TCP``, not 0: asyncio sets TCP_NODELAY only on sockets
    whose ``proto`` says TCP, and an accepted socket inherits the listener's. With 0,
    every response on a kept-alive connection after the first few waited ~40 ms (Nagle
    held the body until the client's delayed ACK of the headers), which no real server
    does: it made every client of the emulator look latency-bound.

    It listens already: a client may connect as soon as the URL is known (the banner of
    ``python -m rune_emulator``, which ``rune-lake demo`` reads) and waits in the backlog
    until uvicorn accepts. Only bound, it refused every connection until uvicorn's loop
    had started: on a cold 2-CPU CI machine, longer than the demo's retries (CI failed).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(BACKLOG)
    return sock


class Emulator:
    """A configured emulator: state plus (once started) a URL."""

    def __init__(self, config: EmulatorConfig | None = None) -> None:
        self.config = config or EmulatorConfig()
        self.state = EmulatorState(self.config)
        self.app = create_app(self.state)
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    # -- ground truth & knobs ----------------------------------------------------
    @property
    def cohort(self) -> SyntheticCohort:
        return self.state.cohort

    @property
    def clock(self) -> Clock:
        """The clock: pinned, or advancing with wall time (``EmulatorConfig.clock_advances``)."""
        return self.cohort.clock

    @property
    def stats(self) -> RequestStats:
        return self.state.stats

    @property
    def streams(self) -> list[StreamMeta]:
        """Metadata of every stream of the cohort (id, patient, device, algorithm, type, params)."""
        return self.cohort.streams

    @property
    def stream_specs(self) -> list[StreamSpec]:
        """Every stream with its served ``columns`` and generator ``kind``."""
        return list(self.cohort.specs.values())

    def expected_table(
        self, stream_id: str, start_ns: int | float | datetime, end_ns: int | float | datetime
    ) -> pa.Table:
        """Exactly the rows V2 serves for ``[start, end)`` at the current clock (no faults).

        ``start_ns``/``end_ns``: int = unix ns; float = unix seconds; or a tz-aware datetime.
        Typed as CONTRACT section 2 says (see :mod:`rune_emulator.truth`).
        """
        spec = self.cohort.specs[stream_id]
        lo, hi = _as_ns(start_ns), _as_ns(end_ns)
        cols, _ = self.state.store.select(spec, lo, hi)
        return chunk_to_table(spec, cols)

    def now_ns(self) -> int:
        """The emulator clock (unix ns)."""
        return self.state.store.now_ns

    def set_now(self, now: datetime) -> None:
        """Move the clock; data at or after ``now`` is never served."""
        self.state.set_now(now)

    def set_chaos(self, chaos: ChaosConfig | None) -> None:
        self.state.set_chaos(chaos)

    def set_fault(self, stream_id: str, kind: str | None) -> None:
        """Deterministic fault for one stream (see ``state.FAULT_KINDS``); None clears."""
        self.state.set_fault(stream_id, kind)

    def revise(
        self, stream_id: str, start: int | float | datetime, end: int | float | datetime
    ) -> int:
        """Revise ``stream_id``'s values in ``[start, end)`` (an opt-in fault, see
        :mod:`rune_emulator.revisions`): every later read, ``expected_table`` included,
        serves the new values. Returns the revision's generation (1, 2, ... per stream)."""
        return self.state.revise(stream_id, _as_ns(start), _as_ns(end)).generation

    def clear_revisions(self, stream_id: str | None = None) -> None:
        """Serve the original values again (of ``stream_id``, or of every stream)."""
        self.state.clear_revisions(stream_id)

    # -- lifecycle ---------------------------------------------------------------
    def start(self, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning") -> str:
        """Serve in a daemon thread; returns the base URL once the server accepts."""
        sock = tcp_listener(host, port)
        port = sock.getsockname()[1]
        cfg = uvicorn.Config(
            self.app,
            log_level=log_level,
            access_log=False,
            lifespan="off",
            timeout_keep_alive=30,
        )
        self._server = uvicorn.Server(cfg)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, daemon=True, name="rune-emulator"
        )
        self._thread.start()
        deadline = time.monotonic() + 15
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("emulator failed to start")
            time.sleep(0.01)
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None


def _as_ns(t: int | float | datetime) -> int:
    if isinstance(t, bool):
        raise TypeError("expected a time, got a bool")
    if isinstance(t, (int, np.integer)):
        if 0 < abs(int(t)) < 10**15:  # before 1970-01-12 in ns: surely unix seconds
            raise ValueError(f"int times are unix ns, got {int(t)} (seconds? pass a float)")
        return int(t)
    return to_ns(t)


@contextlib.contextmanager
def running_emulator(
    config: EmulatorConfig | None = None, host: str = "127.0.0.1"
) -> Iterator[Emulator]:
    """An emulator serving on a free port of ``host`` for the duration of the block."""
    emu = Emulator(config)
    emu.start(host=host)
    try:
        yield emu
    finally:
        emu.stop()
