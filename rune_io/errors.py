"""One small error hierarchy for everything ``rune_io`` raises.

::

    RuneIOError
    ├── UsageError(ValueError) a call's arguments are invalid (a bug in the caller)
    │   └── UsageTypeError(TypeError)  an argument of the wrong type
    ├── ConfigError            settings missing, incomplete, mixed or malformed
    ├── RequestError           a request that cannot be sent or answered as asked
    ├── TransientError         network trouble (reset, timeout, truncated body) after retries
    │   └── TruncatedBody      a body shorter than announced (retried by the HTTP layer)
    ├── DataError              a page that is malformed (does not parse, wrong columns,
    │   │                      a repeated page cursor, ...)
    │   └── UnsupportedStreamType(ValueError)  a stream type this version cannot store
    ├── ApiError(status, type, message, url)
    │   ├── BadRequest         400 (GraphQL ``BAD_REQUEST``, ``BAD_USER_INPUT``, ...)
    │   ├── AuthError          401 / 403 (GraphQL ``UNAUTHENTICATED``, ``FORBIDDEN``)
    │   ├── NotFound           404 (GraphQL ``NOT_FOUND``)
    │   ├── RateLimited        429
    │   ├── ServerError        5xx (GraphQL ``INTERNAL_SERVER_ERROR``, ...)
    │   └── GraphQLError       a GraphQL ``errors`` list whose code says none of the above
    └── LakeError              the Parquet lake (see the end of this module)

Messages carry the HTTP status, the server's error type and message, and a sanitised
URL (credentials travel in headers, never in URLs; see :func:`rune_io.api.http.sanitize_url`).
GraphQL errors are classified by their structured code (``errors[].extensions.code``,
:func:`graphql_error`), never by the words of their message.

Transience is decided here and only here: :func:`is_transient` tells the HTTP layer's
retry policy (:mod:`rune_io.api.retry`), the pipeline and a scheduler (a Prefect
``retry_condition_fn``) whether running the same work again later may succeed.
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Mapping, Sequence
from typing import Any

import requests
import urllib3.exceptions


class RuneIOError(Exception):
    """Base class of every error raised by ``rune_io``."""


class UsageError(RuneIOError, ValueError):
    """A call's arguments are invalid (a bug in the caller); the message names them.

    Also a :class:`ValueError`, so ``except ValueError`` keeps working.
    """


class UsageTypeError(UsageError, TypeError):
    """An argument of the wrong type (also a :class:`TypeError`)."""


class UnknownSetting(UsageError, KeyError):
    """A name that is not a declared setting (also a :class:`KeyError`)."""


class RequestError(RuneIOError):
    """A request that cannot be sent, or answered, as asked: too many redirects, an
    invalid header... Retrying the same request gives the same failure."""


class ConfigError(RuneIOError):
    """Settings are missing, incomplete, mixed, unreadable or malformed.

    The message names the source (argument, environment variable, file) and the key,
    and says what to do.
    """


class TransientError(RuneIOError):
    """A network failure (connection reset, timeout, truncated body) that outlived retries.

    Attributes:
        url: the sanitised URL of the request.
        attempts: how many attempts were made.
    """

    def __init__(self, message: str, *, url: str = "", attempts: int = 0) -> None:
        super().__init__(message)
        self.url = url
        self.attempts = attempts

    def __reduce__(self) -> tuple[Any, ...]:
        return (_transient, (type(self), str(self), self.url, self.attempts))


def _transient(cls: type[TransientError], message: str, url: str, attempts: int) -> Any:
    return cls(message, url=url, attempts=attempts)


class TruncatedBody(TransientError):
    """A response body shorter than its ``Content-Length`` (or cut mid-chunk).

    Raised inside the HTTP layer and retried there; what outlives the retries is
    reported as a :class:`TransientError`.
    """


class DataError(RuneIOError):
    """A response that arrived whole but is malformed: does not parse, wrong columns...

    Attributes:
        transient: True when fetching the same page again may help (e.g. a body that was
            cut short); False when the server's content itself is wrong.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient

    def __reduce__(self) -> tuple[Any, ...]:
        return (_data_error, (type(self), str(self), self.transient))


def _data_error(cls: type[DataError], message: str, transient: bool) -> Any:
    return cls(message, transient=transient)


class UnsupportedStreamType(DataError, ValueError):
    """A stream type this version cannot store (e.g. two dimensions that would make the
    same column). Not transient; also a :class:`ValueError`."""


class ApiError(RuneIOError):
    """The API answered with an error status.

    Attributes:
        status: HTTP status code (200 for GraphQL errors served with 200).
        type: the server's error type (``error.type`` in the body), or ``""``.
        message: the server's human-readable message, or ``""``.
        url: sanitised URL of the request (no credentials).
    """

    def __init__(self, status: int, type: str = "", message: str = "", url: str = "") -> None:
        self.status = status
        self.type = type
        self.message = message
        self.url = url
        super().__init__(self._format())

    def _format(self) -> str:
        kind = f" {self.type}" if self.type else ""
        msg = f": {self.message}" if self.message else ""
        where = f" ({self.url})" if self.url else ""
        hint = _HINTS.get(type(self), "")
        return f"HTTP {self.status}{kind}{msg}{where}{hint}"

    def __reduce__(self) -> tuple[Any, ...]:
        # keep exceptions picklable (Prefect/Dask ship them between processes)
        return (type(self), (self.status, self.type, self.message, self.url))


class BadRequest(ApiError):
    """400: the request is malformed (a bug in the caller or in ``rune_io``)."""


class AuthError(ApiError):
    """401 or 403: credentials missing, wrong, or not allowed to see this resource."""


class NotFound(ApiError):
    """404: no such resource, or not visible with these credentials."""


class RateLimited(ApiError):
    """429: throttled, and still throttled after the retry budget."""


class ServerError(ApiError):
    """5xx: the server failed, and still failed after the retry budget."""


class GraphQLError(ApiError):
    """The GraphQL endpoint answered with an ``errors`` list whose code names no other
    class (or no code at all: e.g. a query the schema rejects)."""


_HINTS: dict[type, str] = {
    AuthError: (
        " - check the Rune credentials (see Settings.describe()); a client key can only "
        "read its own patient"
    ),
    RateLimited: " - throttled by the API; try again later or lower the concurrency",
    ServerError: " - the Rune API failed; try again later",
}

_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequest,
    401: AuthError,
    403: AuthError,
    404: NotFound,
    429: RateLimited,
}


def error_class(status: int) -> type[ApiError]:
    """The :class:`ApiError` subclass for an HTTP status (the mapping table)."""
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    if status >= 500:
        return ServerError
    return ApiError


def api_error(status: int, body: bytes | str | None, url: str = "") -> ApiError:
    """Build the right :class:`ApiError` from a status and a response body.

    The body is the API's ``{"success": false, "error": {"message", "type"}}`` when it
    is JSON; otherwise its first 200 characters become the message.
    """
    type_, message = "", ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("error"), dict):
        type_ = str(data["error"].get("type") or "")
        message = str(data["error"].get("message") or "")
    elif isinstance(data, dict) and isinstance(data.get("error"), str):
        message = data["error"]
    elif isinstance(data, dict) and isinstance(data.get("errors"), list):
        message = "; ".join(str(e.get("message", e)) for e in data["errors"] if e)[:500]
    elif text:
        message = " ".join(text.split())[:200]
    return error_class(status)(status, type_, message, url)


#: GraphQL ``errors[].extensions.code`` -> (class, the HTTP status it stands for).
#: The emulator serves ``FORBIDDEN``, ``NOT_FOUND`` and ``BAD_REQUEST``; the others are
#: the codes GraphQL servers commonly use (Apollo's names).
GRAPHQL_CODES: dict[str, tuple[type[ApiError], int]] = {
    "BAD_REQUEST": (BadRequest, 400),
    "BAD_USER_INPUT": (BadRequest, 400),
    "GRAPHQL_PARSE_FAILED": (BadRequest, 400),
    "GRAPHQL_VALIDATION_FAILED": (BadRequest, 400),
    "UNAUTHENTICATED": (AuthError, 401),
    "FORBIDDEN": (AuthError, 403),
    "NOT_FOUND": (NotFound, 404),
    "TOO_MANY_REQUESTS": (RateLimited, 429),
    "RATE_LIMITED": (RateLimited, 429),
    "INTERNAL_SERVER_ERROR": (ServerError, 500),
    "SERVICE_UNAVAILABLE": (ServerError, 503),
}


def graphql_code(error: Any) -> str:
    """The structured code of one GraphQL error: ``extensions.code`` (else a top-level
    ``type``), upper-cased; ``""`` when it has none."""
    if not isinstance(error, Mapping):
        return ""
    ext = error.get("extensions")
    code = ext.get("code") if isinstance(ext, Mapping) else None
    return str(code or error.get("type") or "").upper()


def graphql_error(errors: Sequence[Any], url: str = "", status: int = 200) -> ApiError:
    """The :class:`ApiError` for a GraphQL response's ``errors`` list.

    Classified by the first error whose code :data:`GRAPHQL_CODES` knows (``NOT_FOUND``
    -> :class:`NotFound`, ``FORBIDDEN`` -> :class:`AuthError`...); otherwise a
    :class:`GraphQLError` with the first code, or ``GraphQLError`` as its type. The
    message joins every error's message (at most 500 characters).
    """
    message = "; ".join(
        str(e.get("message", e)) if isinstance(e, Mapping) else str(e) for e in errors
    )[:500]
    codes = [graphql_code(e) for e in errors]
    for code in codes:
        if code in GRAPHQL_CODES:
            cls, code_status = GRAPHQL_CODES[code]
            return cls(code_status, code, message, url)
    first = next((c for c in codes if c), "GraphQLError")
    return GraphQLError(status, first, message, url)


#: HTTP statuses that may pass on retry (what a :class:`~rune_io.api.retry.RetryPolicy`
#: retries by default).
TRANSIENT_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})

#: Low-level failures of sending a request or reading its body that may pass on retry
#: (the HTTP layer turns those that outlive its retries into :class:`TransientError`).
NETWORK_FAILURES: tuple[type[BaseException], ...] = (
    requests.ConnectionError,  # resets, refused connections, SSL handshakes, ...
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.ReadTimeoutError,
    http.client.IncompleteRead,
    ConnectionError,  # builtin: ConnectionResetError, BrokenPipeError...
    TimeoutError,
)


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same work later may succeed: the one place that decides.

    Transient: throttling (:class:`RateLimited`), server errors (:class:`ServerError`),
    network failures (:class:`TransientError` and the :data:`NETWORK_FAILURES` it is
    made from) and pages that may parse when fetched again (a :class:`DataError` with
    ``transient=True``). Not transient: bad requests, auth failures, missing resources,
    bad settings or arguments, malformed data, everything else. Used by the HTTP
    layer's retry policy, by the pipeline and as (part of) a Prefect
    ``retry_condition_fn``.
    """
    if isinstance(exc, (RateLimited, ServerError, TransientError)):
        return True
    if isinstance(exc, DataError):
        return exc.transient
    if isinstance(exc, RuneIOError):
        return False
    return isinstance(exc, NETWORK_FAILURES)


def is_transient_status(status: int) -> bool:
    """True when an HTTP error status may pass on retry (429 and 5xx): :func:`is_transient`
    of the error it maps to."""
    return status >= 400 and is_transient(error_class(status)(status))


# -- the Parquet lake (rune_io.lake) ------------------------------------------------------


class LakeError(RuneIOError):
    """Base class of the errors ``rune_io.lake`` raises on purpose."""


class LakeVersionError(LakeError):
    """The lake at a URL was written by a newer, incompatible layout version."""


class LakeFullError(LakeError):
    """The lake's filesystem ran out of space while a file was being written.

    Nothing partial is published (the staging file is removed); the message names the
    directory, the free space left and a lower bound of what the file needed.
    """


class PartitionWindowError(LakeError):
    """Rows handed to a partition writer lie outside that partition's time window."""


class SchemaConflictError(LakeError):
    """A column of a lake table changed type; the lake refuses to mix both in one table.

    Attributes:
        table, column: where the conflict is.
        old_type, new_type: the type in the lake and in the new data (Arrow names).
    """

    def __init__(
        self, table: str, column: str, old_type: str, new_type: str, *, where: str = ""
    ) -> None:
        self.table = table
        self.column = column
        self.old_type = old_type
        self.new_type = new_type
        self.where = where
        super().__init__(
            f"schema conflict in table {table!r}: column {column!r} is {old_type} in the lake "
            f"but {new_type} in the new data{f' ({where})' if where else ''} - new nullable "
            "columns are accepted, a type change is not: give the new type its own column "
            "(a new dimension name) or migrate the table"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _schema_conflict,
            (self.table, self.column, self.old_type, self.new_type, self.where),
        )


def _schema_conflict(
    table: str, column: str, old_type: str, new_type: str, where: str
) -> SchemaConflictError:
    return SchemaConflictError(table, column, old_type, new_type, where=where)
