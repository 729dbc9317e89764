"""A test hook that kills the process at a named point, to prove crash safety.

Set ``RUNE_LAKE_CRASH_AT=<point>[:<n>]`` and the process sends itself ``SIGKILL`` the
``n``-th time (default: the first) it reaches :func:`crash_point` with that name. Unset
(always, outside the fault-injection tests) it costs one environment lookup. Points:

- ``page``: a V2 page has been read and parsed (``rune_io.api.streams``);
- ``write``: a row group is in the staging file, which is not yet published
  (``rune_io.lake.writer``);
- ``published``: a data file is published but its catalog entry is not yet written
  (``rune_io.lake.writer``);
- ``before_commit``: every chunk is done, nothing of the final catalog commit is written
  (``rune_lake.tasks.rune.commit_catalog``);
- ``commit``: the catalog commit has replaced its first consolidated table, not the
  others, and no pending object is deleted yet (``rune_io.lake.catalog``).
"""

from __future__ import annotations

import os
import signal
import threading
from collections import Counter

from rune_io.settings.declare import CRASH_AT

ENV = CRASH_AT.name
POINTS = ("page", "write", "published", "before_commit", "commit")

_seen: Counter[str] = Counter()
_lock = threading.Lock()


def crash_point(name: str) -> None:
    """SIGKILL this process if ``RUNE_LAKE_CRASH_AT`` names this point and count."""
    spec = CRASH_AT.get()
    if not spec:
        return
    point, _, count = spec.partition(":")
    if point != name:
        return
    with _lock:
        _seen[name] += 1
        hit = _seen[name] == int(count or 1)
    if hit:
        os.kill(os.getpid(), signal.SIGKILL)
