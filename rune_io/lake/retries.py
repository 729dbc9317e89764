"""Counting the object store's retries (S3 throttling: ``503 SlowDown``,
``400 RequestTimeout``, 5xx, dropped connections).

botocore retries such answers itself, with backoff, and s3fs retries ``SlowDown`` again
on top; neither says how often it did. A handler on the client's ``needs-retry`` event
sees every attempt's outcome, so a run can report how hard the store pushed back (a
nightly summary that shows thousands of retries is worth a look at request rates).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger(__name__)

#: error codes S3 answers when it wants the request again later
_RETRY_CODES = frozenset(
    {"SlowDown", "RequestTimeout", "Throttling", "ThrottlingException", "RequestTimeTooSkewed"}
)


class StorageStats:
    """Failed attempts against the lake's object store that were followed by a retry
    (thread-safe; one per filesystem instance, shared by every lake on it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.retries = 0

    def add(self) -> None:
        with self._lock:
            self.retries += 1


def _retried(response: Any, caught_exception: Any) -> bool:
    if caught_exception is not None:
        return True
    if not response:
        return False
    http, parsed = response
    status = getattr(http, "status_code", 200)
    code = (parsed or {}).get("Error", {}).get("Code", "")
    return status >= 500 or status == 429 or code in _RETRY_CODES


def watch(fs: Any) -> StorageStats:
    """The :class:`StorageStats` of ``fs`` (an s3fs filesystem), hooking its client on
    first use. Filesystems without a botocore client get a counter that stays at 0."""
    stats = getattr(fs, "_rune_lake_stats", None)
    if stats is not None:
        return stats
    stats = StorageStats()
    fs._rune_lake_stats = stats
    try:
        fs.connect()  # creates the client (no request is sent)
        events = fs.s3.meta.events
    except Exception as exc:  # noqa: BLE001 - counting is best-effort, never blocks a run
        log.debug("not counting storage retries: %s", exc)
        return stats

    def on_attempt(response=None, caught_exception=None, attempts=1, **_kw) -> None:
        if _retried(response, caught_exception):
            stats.add()

    events.register("needs-retry.s3", on_attempt)
    return stats
