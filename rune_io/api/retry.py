"""The retry policy, declared as data.

:class:`RetryPolicy` says *what* is retried (statuses, exception types), *how often*
(bounded attempts) and *how long to wait* (capped exponential backoff with full jitter,
or the server's ``Retry-After``, itself capped). :mod:`rune_io.api.http` applies it to every
request made through a client's session; nothing else retries.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime

import requests
import urllib3.exceptions

from rune_io.errors import DataError, TransientError

#: Statuses that are never retried, whatever a policy says: the same request gets the
#: same answer.
NEVER_RETRY: frozenset[int] = frozenset({400, 401, 403, 404})


class TruncatedBody(Exception):
    """A response body shorter than its ``Content-Length`` (or cut mid-chunk)."""


DEFAULT_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})
DEFAULT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,  # includes resets, refused connections, read timeouts in body
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    ConnectionError,  # builtin: ConnectionResetError, BrokenPipeError...
    TimeoutError,
    TruncatedBody,
    TransientError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """Which failures are retried, how many times, and how long to wait in between.

    The wait before retry ``n`` (1-based) is ``uniform(0, min(cap, base * 2**(n-1)))``
    ("full jitter"), unless the response carries ``Retry-After``: then that many seconds,
    at most ``retry_after_cap``.
    """

    statuses: frozenset[int] = DEFAULT_STATUSES
    """HTTP statuses that are retried (never 400/401/403/404)."""
    exceptions: tuple[type[BaseException], ...] = DEFAULT_EXCEPTIONS
    """Exception types (raised while sending or reading a body) that are retried."""
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
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, got {self.max_attempts}")
        if self.base < 0 or self.cap < 0 or self.retry_after_cap < 0:
            raise ValueError(
                "RetryPolicy.base, .cap and .retry_after_cap must be >= 0, got "
                f"base={self.base}, cap={self.cap}, retry_after_cap={self.retry_after_cap}"
            )
        bad = sorted(set(self.statuses) & NEVER_RETRY)
        if bad:
            raise ValueError(
                f"RetryPolicy.statuses must not contain {bad}: 400/401/403/404 are never retried"
            )
        object.__setattr__(self, "statuses", frozenset(self.statuses))
        object.__setattr__(self, "exceptions", tuple(self.exceptions))

    def retries_status(self, status: int) -> bool:
        """True when a response with this status should be retried."""
        return status in self.statuses

    def retries_exception(self, exc: BaseException) -> bool:
        """True when this exception (from sending or reading) should be retried."""
        if isinstance(exc, DataError):
            return self.retry_data_errors and exc.transient
        return isinstance(exc, self.exceptions)

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
