"""Configuration of the local Rune API emulator.

Everything the emulator serves is a pure function of an :class:`EmulatorConfig`
(plus the clock set with ``Emulator.set_now``), so two emulators with the same config
serve byte-identical data.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

#: Documented demo credentials: the emulator accepts these unless told otherwise.
DEMO_ACCESS_TOKEN_ID = "demo-access-token-id"
DEMO_ACCESS_TOKEN_SECRET = "demo-access-token-secret"
DEMO_CLIENT_KEY_ID = "demo-client-key-id"
DEMO_CLIENT_ACCESS_KEY = "demo-client-access-key"
DEMO_JWT = "demo.jwt.token"

#: Default clock of :class:`EmulatorConfig` (a fixed instant, so tests are reproducible).
#: The CLI defaults to the current UTC time floored to the minute instead.
DEFAULT_NOW = datetime(2026, 11, 1, tzinfo=UTC)

#: ``/v2/batch/availability`` refuses more streams than this in one call (400).
MAX_BATCH_STREAMS = 25


@dataclass(frozen=True)
class ChaosConfig:
    """Seeded per-request fault injection (off unless given to the emulator).

    Each probability applies independently per request, in the order listed; at most
    one fault fires per request. A request that completes with 200 is always correct.

    - ``p_429``: 429 with ``Retry-After: retry_after_s``
    - ``p_500`` / ``p_503``: 500 / 503 (503 carries ``Retry-After`` too)
    - ``p_reset``: the connection is closed mid-body (chunked body never terminated)
    - ``p_truncate``: ``Content-Length`` promises more bytes than are sent, then close
    - ``p_delay``: the response is delayed by ``delay_s`` seconds (and is correct)
    """

    seed: int = 0
    p_429: float = 0.0
    p_500: float = 0.0
    p_503: float = 0.0
    p_reset: float = 0.0
    p_truncate: float = 0.0
    p_delay: float = 0.0
    delay_s: float = 0.2
    retry_after_s: float = 0.05
    apply_to_graphql: bool = True

    KINDS = ("429", "500", "503", "reset", "truncate", "delay")

    @classmethod
    def uniform(cls, total_p: float, seed: int = 0, **kwargs: object) -> ChaosConfig:
        """Spread ``total_p`` evenly over the six fault kinds."""
        p = total_p / 6.0
        return cls(
            seed=seed,
            p_429=p,
            p_500=p,
            p_503=p,
            p_reset=p,
            p_truncate=p,
            p_delay=p,
            **kwargs,  # type: ignore[arg-type]
        )

    def probabilities(self) -> list[tuple[str, float]]:
        """``(kind, probability)`` pairs in the order they are drawn."""
        return list(
            zip(
                self.KINDS,
                (self.p_429, self.p_500, self.p_503, self.p_reset, self.p_truncate, self.p_delay),
                strict=True,
            )
        )


@dataclass(frozen=True)
class EmulatorConfig:
    """What the emulator serves.

    - ``seed``: every id and value derives from it.
    - ``patients``: cohort size; ``days``: full days of history before ``now``'s day
      (data starts at ``floor_day(now) - days``; the clock may later move on).
    - ``now``: the emulator clock (tz-aware); no data at or after it is ever served.
      Default: :data:`DEFAULT_NOW` (2026-11-01T00:00Z).
    - ``page_size``: rows per V2 page.
    - ``late_data_hours``: if > 0, a row at ``t`` is visible only once
      ``now >= t + delay`` where ``delay`` (<= this) depends on (device, day).
    - ``graph_page_size`` / ``device_page_size``: items per GraphQL list page
      (devices are paged small so clients exercise nested paging);
      ``patient_page_size``: project/cohort patients per ``codeNameEndCursor`` page.
    - ``cache_mb``: budget of the rendered day-chunk LRU cache, and again of the LRU of
      formatted day text that warm CSV pages are sliced from.
    - ``clock_advances``: the clock moves on with wall time from ``now`` (the standalone
      CLI's default); False pins it at ``now`` until ``set_now``.
    - ``latency_ms``: a fixed delay before every response (a wide-area API's latency).
    - ``motion_hours``: hours of 50 Hz watch motion recorded per worn day (in 2-4
      recording sessions, each opened and closed by a ``patient_report`` event).
    - ``all_stream_types``: the first patient also has a "Test device" with one hourly
      stream of every catalog type the cohort does not serve (all but ``bytes``).
    """

    seed: int = 0
    patients: int = 3
    days: int = 3
    now: datetime = DEFAULT_NOW
    page_size: int = 100_000
    chaos: ChaosConfig | None = None
    access_token_id: str = DEMO_ACCESS_TOKEN_ID
    access_token_secret: str = DEMO_ACCESS_TOKEN_SECRET
    client_key_id: str = DEMO_CLIENT_KEY_ID
    client_access_key: str = DEMO_CLIENT_ACCESS_KEY
    jwt: str = DEMO_JWT
    late_data_hours: float = 0.0
    graph_page_size: int = 8
    device_page_size: int = 2
    patient_page_size: int = 2
    max_batch_streams: int = MAX_BATCH_STREAMS
    cache_mb: int = 1024
    clock_advances: bool = False
    latency_ms: float = 0.0
    motion_hours: float = 1.0
    all_stream_types: bool = False

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("EmulatorConfig.now must be timezone-aware")
        if self.patients < 1 or self.days < 1:
            raise ValueError("patients and days must be >= 1")
        if self.latency_ms < 0 or self.motion_hours < 0 or self.motion_hours > 15:
            raise ValueError("latency_ms must be >= 0 and motion_hours in [0, 15]")
        if self.page_size < 1:
            raise ValueError("page_size must be >= 1")
