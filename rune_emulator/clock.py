"""The emulator's clock: pinned at an instant, or advancing with wall time from it."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def dt_to_ns(t: datetime) -> int:
    """Unix ns of a tz-aware datetime (exact, microsecond resolution)."""
    if t.tzinfo is None:
        raise ValueError("naive datetime: pass a tz-aware datetime")
    delta = t - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


class Clock:
    """``now`` of the emulator. ``advancing``: it moves on with wall time from ``start``.

    No data at or after ``now`` is served. :meth:`set` pins it (an explicit instant
    stops the advance; tests and ``--now`` want a fixed clock).
    """

    def __init__(self, start: datetime, advancing: bool = False, wall=time.time_ns) -> None:
        self._lock = threading.Lock()
        self._wall = wall  # injectable for tests: a function returning unix ns
        self._anchor_ns = dt_to_ns(start)
        self._wall0 = wall()
        self.advancing = advancing

    def now_ns(self) -> int:
        with self._lock:
            if not self.advancing:
                return self._anchor_ns
            elapsed = self._wall() - self._wall0
            return self._anchor_ns + elapsed // 100 * 100

    def now(self) -> datetime:
        ns = self.now_ns()
        return EPOCH + timedelta(microseconds=ns // 1000)

    def set(self, now: datetime) -> None:
        """Pin the clock at ``now``."""
        ns = dt_to_ns(now)
        with self._lock:
            self._anchor_ns = ns
            self.advancing = False

    def use_wall(self, wall) -> None:
        """Advance with ``wall`` (a function returning unix ns) from the current instant."""
        now = self.now_ns()
        with self._lock:
            self._wall = wall
            self._wall0 = wall()
            self._anchor_ns = now
