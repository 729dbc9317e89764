"""The typed, frozen settings of a Rune client, and :class:`Secret`.

Build :class:`Settings` with :func:`rune_io.settings.load_settings`; the defaults of the
fields an environment variable sets are that variable's declared default
(:mod:`rune_io.settings.declare`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rune_io.api.retry import RetryPolicy
from rune_io.errors import ConfigError, UsageTypeError
from rune_io.settings import declare as d

AuthMethod = Literal["access_token", "client_keys", "jwt"]

DEFAULT_STREAM_URL = d.STREAM_URL.default
DEFAULT_GRAPH_URL = d.GRAPH_URL.default
PROJECT_FILE = "rune-lake.yaml"
RUNEQ_FILE = "~/.rune/config"


class Secret:
    """A secret string: masked everywhere except :meth:`get_secret_value`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise UsageTypeError(f"Secret value must be a str, not {type(value).__name__}")
        self._value = value

    def get_secret_value(self) -> str:
        """The secret itself: for building request headers, nothing else."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Secret, (self._value,))


#: credential families: auth method -> (key, key) they need
FAMILIES: dict[str, tuple[str, ...]] = {
    "access_token": ("access_token_id", "access_token_secret"),
    "client_keys": ("client_key_id", "client_access_key"),
    "jwt": ("jwt",),
}
CREDENTIAL_KEYS: tuple[str, ...] = tuple(k for keys in FAMILIES.values() for k in keys)
SECRET_KEYS = frozenset({"access_token_secret", "client_access_key", "jwt"})

#: Settings field -> the environment variable that sets it
ENV_VARS: dict[str, str] = d.ENV_VARS

FLOAT_KEYS = ("connect_timeout", "read_timeout", "backoff_base", "backoff_cap", "retry_after_cap")
INT_KEYS = ("max_attempts", "pool_size", "read_parallelism", "discovery_concurrency")
BOOL_KEYS = ("verify_tls",)
#: keys the project file's ``rune:`` section and explicit arguments may set
SETTABLE: frozenset[str] = frozenset(
    {"auth_method", "stream_url", "graph_url", *CREDENTIAL_KEYS}
    | set(FLOAT_KEYS)
    | set(INT_KEYS)
    | set(BOOL_KEYS)
)


@dataclass(frozen=True)
class Settings:
    """Everything a :class:`rune_io.api.client.RuneClient` needs. Build it with
    :func:`rune_io.settings.load_settings`."""

    auth_method: AuthMethod
    """Which credential family authenticates: ``access_token``, ``client_keys`` or ``jwt``."""
    access_token_id: str | None = None
    """User access token id (header ``X-Rune-User-Access-Token-Id``)."""
    access_token_secret: Secret | None = None
    """User access token secret."""
    client_key_id: str | None = None
    """Client key id (header ``X-Rune-Client-Key-Id``); reads exactly one patient."""
    client_access_key: Secret | None = None
    """Client access key."""
    jwt: Secret | None = None
    """A JWT (header ``X-Rune-User-Access-Token``)."""
    stream_url: str = DEFAULT_STREAM_URL
    """Base URL of the Stream API (V1 and V2); any path is dropped, as runeq does."""
    graph_url: str = DEFAULT_GRAPH_URL
    """Base URL of the GraphQL API; ``/graphql`` is appended."""
    connect_timeout: float = d.CONNECT_TIMEOUT.default
    """Seconds to wait for a TCP connection."""
    read_timeout: float = d.READ_TIMEOUT.default
    """Seconds to wait between bytes of a response."""
    max_attempts: int = d.MAX_ATTEMPTS.default
    """Attempts per request, the first included."""
    backoff_base: float = d.BACKOFF_BASE.default
    """Backoff ceiling of the first retry, seconds (doubles per retry, full jitter)."""
    backoff_cap: float = d.BACKOFF_CAP.default
    """Largest backoff ceiling, seconds."""
    retry_after_cap: float = 120.0
    """Longest server ``Retry-After`` honoured, seconds."""
    pool_size: int = 16
    """Connections kept per host in the session's pool (match your thread count)."""
    read_parallelism: int = d.READ_PARALLELISM.default
    """Concurrent page chains per V2 read (``StreamReader.read(parallel=...)`` default)."""
    discovery_concurrency: int = d.DISCOVERY_CONCURRENCY.default
    """GraphQL requests discovery keeps in flight at once (patients, devices, streams)."""
    verify_tls: bool = d.VERIFY_TLS.default
    """Verify TLS certificates."""
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)
    """Where each value came from (key -> source description), for :meth:`describe`."""

    def __post_init__(self) -> None:
        for key in FAMILIES[self.auth_method]:
            if not getattr(self, key):
                raise ConfigError(
                    f"auth_method {self.auth_method!r} needs {key}; "
                    f"set {', '.join(FAMILIES[self.auth_method])}"
                )
        for key in SECRET_KEYS:
            value = getattr(self, key)
            if isinstance(value, str):
                object.__setattr__(self, key, Secret(value))
        if self.connect_timeout <= 0 or self.read_timeout <= 0:
            raise ConfigError(
                f"connect_timeout and read_timeout must be > 0, got "
                f"{self.connect_timeout} and {self.read_timeout}"
            )
        if self.pool_size < 1:
            raise ConfigError(f"pool_size must be >= 1, got {self.pool_size}")
        if self.read_parallelism < 1:
            raise ConfigError(f"read_parallelism must be >= 1, got {self.read_parallelism}")
        if self.discovery_concurrency < 1:
            raise ConfigError(
                f"discovery_concurrency must be >= 1, got {self.discovery_concurrency}"
            )

    @property
    def timeout(self) -> tuple[float, float]:
        """``(connect, read)`` timeouts as ``requests`` takes them."""
        return (self.connect_timeout, self.read_timeout)

    @property
    def retry_policy(self) -> RetryPolicy:
        """The :class:`RetryPolicy` these settings describe."""
        try:
            return RetryPolicy(
                max_attempts=self.max_attempts,
                base=self.backoff_base,
                cap=self.backoff_cap,
                retry_after_cap=self.retry_after_cap,
            )
        except ValueError as exc:
            raise ConfigError(f"bad retry settings: {exc}") from None

    def auth_headers(self) -> dict[str, str]:
        """Request headers for the chosen credential family (contains secrets: send only)."""

        def reveal(s: Secret | None) -> str:
            return s.get_secret_value() if s else ""

        if self.auth_method == "access_token":
            return {
                "X-Rune-User-Access-Token-Id": self.access_token_id or "",
                "X-Rune-User-Access-Token-Secret": reveal(self.access_token_secret),
            }
        if self.auth_method == "client_keys":
            return {
                "X-Rune-Client-Key-Id": self.client_key_id or "",
                "X-Rune-Client-Access-Key": reveal(self.client_access_key),
            }
        return {"X-Rune-User-Access-Token": reveal(self.jwt)}

    def describe(self) -> str:
        """A masked, multi-line summary: each value and the source it came from."""
        lines = [
            f"auth_method = {self.auth_method}  ({self.sources.get('auth_method', 'inferred')})"
        ]
        for key in FAMILIES[self.auth_method]:
            value = getattr(self, key)
            shown = "**********" if key in SECRET_KEYS else _mask_id(value)
            lines.append(f"{key} = {shown}  ({self.sources.get(key, 'default')})")
        for key in ("stream_url", "graph_url", *FLOAT_KEYS, *INT_KEYS, *BOOL_KEYS):
            lines.append(f"{key} = {getattr(self, key)}  ({self.sources.get(key, 'default')})")
        return "\n".join(lines)


def _mask_id(value: str | None) -> str:
    if not value:
        return "<unset>"
    return value[:4] + "..." if len(value) > 8 else "****"
