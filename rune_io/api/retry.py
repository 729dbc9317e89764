"""The retry policy, declared as data.

:class:`RetryPolicy` says *what* is retried (which of the transient statuses; the
failures :func:`rune_io.errors.is_transient` calls transient), *how often* (bounded
attempts) and *how long to wait* (capped exponential backoff with full jitter, or the
server's ``Retry-After``, itself capped). Whether a failure may pass on retry is decided
in :mod:`rune_io.errors` only. :mod:`rune_io.api.http` applies the policy to every
request made through a client's session; nothing else retries.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

from rune_io.errors import (
    TRANSIENT_STATUSES,
    DataError,
    TruncatedBody,
    UsageError,
    is_transient,
    is_transient_status,
)

__all__ = ["DEFAULT_STATUSES", "RetryPolicy", "TruncatedBody", "parse_retry_after"]

DEFAULT_STATUSES: frozenset[int] = TRANSIENT_STATUSES


@dataclass(frozen=True)
class RetryPolicy:
    """Which failures are retried, how many times, and how long to wait in between.

    The wait before retry ``n`` (1-based) is ``uniform(0, min(cap, base * 2**(n-1)))``
    ("full jitter"), unless the response carries ``Retry-After``: then that many seconds,
    at most ``retry_after_cap``.
    """

    statuses: frozenset[int] = DEFAULT_STATUSES
    """HTTP statuses that are retried: transient ones only (429, 5xx; never
    400/401/403/404)."""
    max_attempts: int = 6
    """Attempts in all, the first included (1 = no retry)."""
    base: float = 0.5
    """Backoff of the first retry's ceiling, seconds."""
    cap: float = 30.0
    """Largest backoff ceiling, seconds."""
    jitter: bool = True
    """Full jitter (uniform in [0, ceiling]); False waits the ceiling (tests, debugging)."""
    respect_retry_after: bool = True
    """Honour the server's ``Retry-After`` header (seconds or HTTP date)."""
    retry_after_cap: float = 120.0
    """Longest ``Retry-After`` honoured, seconds."""
    retry_data_errors: bool = True
    """Retry pages that fail to parse in a way that may pass (a :class:`DataError` with
    ``transient=True`` raised by a page parser); malformed content is never retried."""
    _rng: random.Random = field(default_factory=random.Random, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise UsageError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")
        if self.base < 0 or self.cap < 0 or self.retry_after_cap < 0:
            raise UsageError(
                "RetryPolicy.base, .cap and .retry_after_cap must be >= 0, got "
                f"base={self.base}, cap={self.cap}, retry_after_cap={self.retry_after_cap}"
            )
        bad = sorted(s for s in self.statuses if not is_transient_status(s))
        if bad:
            raise UsageError(
                f"RetryPolicy.statuses must not contain {bad}: only 429 and 5xx may pass on "
                "retry; 400/401/403/404 are never retried"
            )
        object.__setattr__(self, "statuses", frozenset(self.statuses))

    def retries_status(self, status: int) -> bool:
        """True when a response with this status should be retried."""
        return status in self.statuses

    def retries_exception(self, exc: BaseException) -> bool:
        """True when this exception (from sending, reading or parsing) should be retried:
        :func:`~rune_io.errors.is_transient` says so (and, for a page that did not parse,
        ``retry_data_errors``)."""
        if isinstance(exc, DataError) and not self.retry_data_errors:
            return False
        return is_transient(exc)

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None and self.respect_retry_after:
            return max(0.0, min(retry_after, self.retry_after_cap))
        ceiling = min(self.cap, self.base * (2 ** max(0, attempt - 1)))
        return self._rng.uniform(0.0, ceiling) if self.jitter else ceiling


_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date).

    Returns None when the header is absent or unparseable; never negative.
    """
    if not value:
        return None
    m = _SECONDS.match(value)
    if m:
        return float(m.group(1))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    now = time.time() if now is None else now
    return max(0.0, when.timestamp() - now)
