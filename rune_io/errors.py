"""One small error hierarchy for everything ``rune_io`` raises.

::

    RuneIOError
    ├── ConfigError            settings missing, incomplete, mixed or malformed
    ├── TransientError         network trouble (reset, timeout, truncated body) after retries
    ├── DataError              a page that is malformed (does not parse, wrong columns, ...)
    └── ApiError(status, type, message, url)
        ├── BadRequest         400
        ├── AuthError          401 / 403
        ├── NotFound           404
        ├── RateLimited        429
        ├── ServerError        5xx
        └── GraphQLError       a GraphQL ``errors`` list in a 200 response

Messages carry the HTTP status, the server's error type and message, and a sanitised
URL (credentials travel in headers, never in URLs; see :func:`rune_io.api.http.sanitize_url`).
:func:`is_transient` tells a scheduler (e.g. a Prefect ``retry_condition_fn``) whether
running the same work again later may succeed.
"""

from __future__ import annotations

import json
from typing import Any


class RuneIOError(Exception):
    """Base class of every error raised by ``rune_io``."""


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


class DataError(RuneIOError):
    """A response that arrived whole but is malformed: does not parse, wrong columns...

    Attributes:
        transient: True when fetching the same page again may help (e.g. a body that was
            cut short); False when the server's content itself is wrong.
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


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
    """The GraphQL endpoint answered with an ``errors`` list."""


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


def is_transient(exc: BaseException) -> bool:
    """True when retrying the same work later may succeed.

    Throttling, server errors, network failures and truncated pages are transient;
    bad requests, auth failures, missing resources, bad config and malformed data are
    not. Suitable as (part of) a Prefect ``retry_condition_fn``.
    """
    if isinstance(exc, (RateLimited, ServerError, TransientError)):
        return True
    if isinstance(exc, DataError):
        return exc.transient
    return False


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
