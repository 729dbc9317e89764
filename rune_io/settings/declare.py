"""Every environment variable rune-lake reads, declared once: name, type, default, doc.

:data:`VARIABLES` is the single declaration. The README's settings table is generated
from it (``python -m rune_io.settings --markdown``; a test compares the two), and every
read goes through a :class:`Var`, lazily, at the point of use: nothing is read at
import. Variables with a ``key`` feed the :class:`~rune_io.settings.model.Settings`
field of that name and are merged with the project file and ``~/.rune/config`` by
:func:`~rune_io.settings.load.load_settings`; the others are read with :meth:`Var.get`.

``AWS_*``, ``PREFECT_*`` and ``MIMALLOC_*`` belong to their libraries (botocore/s3fs,
Prefect, Arrow's allocator): rune-lake passes them through untouched
(:data:`PASSED_THROUGH` lists the ones it reads or sets).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from rune_io.errors import ConfigError

T = TypeVar("T")


class SettingError(ConfigError, ValueError):
    """A variable's value does not parse: the message names the variable and its source."""


@dataclass(frozen=True)
class Var(Generic[T]):
    """One environment variable: what it is, how it parses, what it defaults to."""

    name: str
    kind: str
    """Its type as the README shows it (``int >= 1``, ``seconds, comma-separated``...)."""
    default: T
    doc: str
    parse: Callable[[str], T] = field(repr=False, compare=False)
    key: str | None = None
    """The :class:`Settings` field it feeds (then project file and runeq file may set it too)."""
    group: str = "runs"
    reader: str = ""
    """Who reads it, when not rune-lake's Python code (e.g. a deployment script)."""
    secret: bool = False

    def get(self) -> T:
        """The value now: a ``rune-lake`` command's override, else the environment, else
        the default. Empty counts as unset. Raises :class:`SettingError` naming the
        variable and its source when the value does not parse."""
        from rune_io.settings.environ import lookup

        raw, source = lookup(self.name)
        if raw is None:
            return self.default
        try:
            return self.parse(raw)
        except ValueError as exc:
            shown = "**********" if self.secret else repr(raw)
            raise SettingError(f"{source} {self.name}={shown}: {exc}") from None


# -- parsers (a ValueError says what is expected) ------------------------------------------


def _text(raw: str) -> str:
    return raw.strip()


def _choice(raw: str, choices: tuple[str, ...]) -> str:
    value = raw.strip().lower()
    if value not in choices:
        raise ValueError(f"expected one of {', '.join(choices)}")
    return value


def _optional(raw: str) -> str | None:
    return raw.strip() or None


def _float(raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise ValueError("must be a number") from None


def _int(raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ValueError("must be an integer") from None


def _positive_int(raw: str) -> int:
    try:
        n = int(raw)
    except ValueError:
        raise ValueError("must be an integer") from None
    if n < 1:
        raise ValueError(f"must be at least 1, got {n}")
    return n


def _bool(raw: str) -> bool:
    if raw.strip().lower() in ("true", "1"):
        return True
    if raw.strip().lower() in ("false", "0"):
        return False
    raise ValueError("must be true or false")


def _runner(raw: str) -> str:
    kind = raw.strip().lower()
    if kind not in ("threads", "dask"):
        raise ValueError(f"must be 'threads' or 'dask', got {kind!r}")
    return kind


def _seconds(raw: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(x) for x in raw.split(",") if x.strip())
    except ValueError:
        raise ValueError("must be seconds like '10,60'") from None
    if any(d < 0 for d in delays):
        raise ValueError("must be seconds >= 0, like '10,60'")
    return delays


def _api(name: str, key: str, kind: str, default, doc: str, parse, secret: bool = False) -> Var:
    group = "credentials" if key in _CREDENTIALS else "api"
    return Var(name, kind, default, doc, parse, key=key, group=group, secret=secret)


_CREDENTIALS = (
    "access_token_id",
    "access_token_secret",
    "client_key_id",
    "client_access_key",
    "jwt",
)

# -- the declaration -------------------------------------------------------------------------

ACCESS_TOKEN_ID: Var[str | None] = _api(
    "RUNE_ACCESS_TOKEN_ID",
    "access_token_id",
    "str",
    None,
    "User access token id (with `RUNE_ACCESS_TOKEN_SECRET`)",
    _optional,
)
ACCESS_TOKEN_SECRET: Var[str | None] = _api(
    "RUNE_ACCESS_TOKEN_SECRET",
    "access_token_secret",
    "secret",
    None,
    "User access token secret",
    _optional,
    secret=True,
)
CLIENT_KEY_ID: Var[str | None] = _api(
    "RUNE_CLIENT_KEY_ID",
    "client_key_id",
    "str",
    None,
    "Client key id (with `RUNE_CLIENT_ACCESS_KEY`); reads exactly one patient",
    _optional,
)
CLIENT_ACCESS_KEY: Var[str | None] = _api(
    "RUNE_CLIENT_ACCESS_KEY",
    "client_access_key",
    "secret",
    None,
    "Client access key",
    _optional,
    secret=True,
)
JWT: Var[str | None] = _api("RUNE_JWT", "jwt", "secret", None, "A JWT", _optional, secret=True)
STREAM_URL: Var[str] = _api(
    "RUNE_STREAM_URL",
    "stream_url",
    "URL",
    "https://stream.runelabs.io",
    "Base URL of the Stream API (V1 and V2)",
    _text,
)
GRAPH_URL: Var[str] = _api(
    "RUNE_GRAPH_URL",
    "graph_url",
    "URL",
    "https://graph.runelabs.io",
    "Base URL of the GraphQL API (`/graphql` is appended)",
    _text,
)
CONNECT_TIMEOUT: Var[float] = _api(
    "RUNE_CONNECT_TIMEOUT", "connect_timeout", "seconds", 10.0, "TCP connect timeout", _float
)
READ_TIMEOUT: Var[float] = _api(
    "RUNE_READ_TIMEOUT",
    "read_timeout",
    "seconds",
    120.0,
    "Longest wait between bytes of a response",
    _float,
)
MAX_ATTEMPTS: Var[int] = _api(
    "RUNE_MAX_ATTEMPTS", "max_attempts", "int", 6, "Attempts per request, the first included", _int
)
BACKOFF_BASE: Var[float] = _api(
    "RUNE_BACKOFF_BASE",
    "backoff_base",
    "seconds",
    0.5,
    "Backoff ceiling of the first retry (doubles per retry, full jitter)",
    _float,
)
BACKOFF_CAP: Var[float] = _api(
    "RUNE_BACKOFF_CAP", "backoff_cap", "seconds", 30.0, "Largest backoff ceiling", _float
)
VERIFY_TLS: Var[bool] = _api(
    "RUNE_VERIFY_TLS", "verify_tls", "bool", True, "Verify TLS certificates", _bool
)
READ_PARALLELISM: Var[int] = _api(
    "RUNE_READ_PARALLELISM",
    "read_parallelism",
    "int >= 1",
    1,
    "Concurrent page chains per V2 read of a window",
    _int,
)
DISCOVERY_CONCURRENCY: Var[int] = _api(
    "RUNE_DISCOVERY_CONCURRENCY",
    "discovery_concurrency",
    "int >= 1",
    8,
    "GraphQL requests discovery keeps in flight (each holds an `api_limit` slot)",
    _int,
)

LAKE_URL: Var[str] = Var(
    "RUNE_LAKE_URL",
    "URL",
    "./lake",
    "Lake of a flow run whose `lake` parameter is empty (a deployment's job variable)",
    _text,
)
LAKE_CONFIG: Var[str | None] = Var(
    "RUNE_LAKE_CONFIG",
    "path",
    None,
    "Project file the flows' tasks read (unset: `./rune-lake.yaml` if present)",
    _optional,
)
TASK_RUNNER: Var[str] = Var(
    "RUNE_LAKE_TASK_RUNNER",
    "`threads` or `dask`",
    "threads",
    "Task runner of a flow run, chosen when the run starts",
    _runner,
)
WORKERS: Var[int] = Var(
    "RUNE_LAKE_WORKERS",
    "int >= 1",
    4,
    "Threads in the pool, or Dask worker processes",
    _positive_int,
)
DASK_THREADS: Var[int] = Var(
    "RUNE_LAKE_DASK_THREADS", "int >= 1", 1, "Threads per Dask worker process", _positive_int
)
DASK_ADDRESS: Var[str | None] = Var(
    "RUNE_LAKE_DASK_ADDRESS",
    "address",
    None,
    "An existing Dask scheduler, `tcp://host:8786` (unset: a `LocalCluster` per run)",
    _optional,
)
TASK_RETRY_DELAYS: Var[tuple[float, ...]] = Var(
    "RUNE_LAKE_TASK_RETRY_DELAYS",
    "seconds, comma-separated",
    (10.0, 60.0),
    "Waits between a unit's retries of transient failures (one retry per value)",
    _seconds,
)
LOCAL_SERVER: Var[str] = Var(
    "RUNE_LAKE_LOCAL_SERVER",
    "`keep` or `temporary`",
    "keep",
    "With no Prefect API configured: `keep` starts the local server of `rune-lake server "
    "start` on a command's first run and leaves it up for later commands and the UI; "
    "`temporary` runs Prefect's temporary server per command",
    lambda raw: _choice(raw, ("keep", "temporary")),
)
CRASH_AT: Var[str | None] = Var(
    "RUNE_LAKE_CRASH_AT",
    "`point[:n]`",
    None,
    "Test hook: SIGKILL at the n-th pass of a crash point (`rune_io.faults`)",
    _optional,
    group="tests",
)
API_LIMIT: Var[int] = Var(
    "RUNE_API_LIMIT",
    "int >= 1",
    8,
    "Slots of the `rune-api` global concurrency limit the script creates",
    _positive_int,
    group="deployments",
    reader="deployments/process-pool.sh",
)

#: every variable, in the README's order
VARIABLES: tuple[Var, ...] = (
    ACCESS_TOKEN_ID,
    ACCESS_TOKEN_SECRET,
    CLIENT_KEY_ID,
    CLIENT_ACCESS_KEY,
    JWT,
    STREAM_URL,
    GRAPH_URL,
    CONNECT_TIMEOUT,
    READ_TIMEOUT,
    MAX_ATTEMPTS,
    BACKOFF_BASE,
    BACKOFF_CAP,
    VERIFY_TLS,
    READ_PARALLELISM,
    DISCOVERY_CONCURRENCY,
    LAKE_URL,
    LAKE_CONFIG,
    TASK_RUNNER,
    WORKERS,
    DASK_THREADS,
    DASK_ADDRESS,
    TASK_RETRY_DELAYS,
    LOCAL_SERVER,
    CRASH_AT,
    API_LIMIT,
)
BY_NAME: dict[str, Var] = {v.name: v for v in VARIABLES}
#: Settings field -> variable, for the variables that feed :class:`Settings`
ENV_VARS: dict[str, str] = {v.key: v.name for v in VARIABLES if v.key}


@dataclass(frozen=True)
class PassedThrough:
    """A variable of another library that rune-lake reads or sets, and leaves to it."""

    name: str
    owner: str
    doc: str


PASSED_THROUGH: tuple[PassedThrough, ...] = (
    PassedThrough("AWS_ENDPOINT_URL_S3", "botocore", "S3 endpoint of the lake (MinIO & co.)"),
    PassedThrough("AWS_ENDPOINT_URL", "botocore", "Endpoint of every AWS service, S3 included"),
    PassedThrough("AWS_ACCESS_KEY_ID", "botocore", "S3 credentials (or `AWS_PROFILE`, ...)"),
    PassedThrough("AWS_SECRET_ACCESS_KEY", "botocore", "S3 credentials"),
    PassedThrough("AWS_PROFILE", "botocore", "S3 credentials from a named profile"),
    PassedThrough("PREFECT_API_URL", "Prefect", "Prefect server; handed to Dask workers"),
    PassedThrough("PREFECT_UI_API_URL", "Prefect", "Set for the CLI's temporary server"),
    PassedThrough("PREFECT_API_KEY", "Prefect", "Prefect Cloud key; handed to Dask workers"),
    PassedThrough("PREFECT_API_AUTH_STRING", "Prefect", "Server auth; handed to Dask workers"),
    PassedThrough("PREFECT_HOME", "Prefect", "Where an ephemeral server keeps its database"),
    PassedThrough("PREFECT_SERVER_ANALYTICS_ENABLED", "Prefect", "The CLI defaults it to `false`"),
    PassedThrough(
        "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL",
        "Prefect",
        "The CLI defaults it to `CRITICAL` without `--verbose`",
    ),
    PassedThrough(
        "PREFECT_SERVER_LOGGING_LEVEL",
        "Prefect",
        "The CLI defaults it to `CRITICAL` without `--verbose`",
    ),
    PassedThrough("PREFECT_UI_URL", "Prefect", "The UI of the reused local server"),
    PassedThrough("PREFECT_PROFILE", "Prefect", "Whose `PREFECT_API_URL` wins over reuse"),
    PassedThrough(
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
        "Prefect",
        "The CLI defaults it to 120 (a new database migrates slowly)",
    ),
    PassedThrough("PREFECT_UI_ENABLED", "Prefect", "`0` for the CLI's temporary server"),
    PassedThrough("PREFECT__SERVER_EPHEMERAL", "Prefect", "Set for the temporary server"),
    PassedThrough("PREFECT__SERVER_FINAL", "Prefect", "Set for the temporary server"),
    PassedThrough(
        "MIMALLOC_ALLOW_THP",
        "mimalloc (Arrow's allocator)",
        "The CLI defaults it to `0`, before Arrow loads: no huge-page stalls",
    ),
)
PASSED_THROUGH_NAMES = frozenset(p.name for p in PASSED_THROUGH)
