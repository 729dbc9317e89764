"""Pagination: every cursor the Rune APIs use, driven by one loop (:func:`paginate`).

A paginator is a small strategy object with three hooks and a ``has_next_page`` flag: it
sets up the first request (:meth:`Paginator.init_request`), learns the next cursor from
each page (:meth:`Paginator.update_state`) and puts it into the next request
(:meth:`Paginator.update_request`). :func:`paginate` is the only page loop in
``rune_io``: it sends each request through an :class:`~rune_io.api.http.HttpClient` (a
page is retried as a whole, same request, by the client's retry policy before the
paginator sees it), counts the pages and refuses a cursor the server already sent in
this call: one answer everywhere, a :class:`~rune_io.errors.DataError` naming the call
and the cursor (the server's paging is broken; fetching again would loop forever).

- :class:`HeaderCursor`: ``X-Rune-Next-Page-Token`` header -> ``page_token`` (V2) or
  ``next_page_token`` (V1); no header means the last page.
- :class:`PageNumber`: V1 JSON, ``page`` param, the body's ``next_page`` field.
- :class:`PageUntilEmpty`: V1 CSV, ``page`` += 1 until the body is empty (a cursor the
  client computes, so it cannot repeat).
- :class:`GraphCursor`: GraphQL, the page's ``pageInfo.endCursor`` (or
  ``codeNameEndCursor``) sent back as a query variable; null means the last page.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Generator, Hashable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from rune_io.api.http import HttpClient, Response, sanitize_url
from rune_io.errors import DataError, UsageError

T = TypeVar("T")

NEXT_PAGE_HEADER = "X-Rune-Next-Page-Token"


@dataclass
class PageRequest:
    """The request of the next page; paginators change it in place."""

    method: str
    url: str
    params: dict[str, Any] = field(default_factory=dict)
    json: dict[str, Any] | None = None


class Paginator:
    """Base strategy: a single page.

    Attributes:
        has_next_page: False once the last page has been seen.
        pages: pages seen so far (counted by :func:`paginate`).
        name: what the cursor is called, for messages.
    """

    name = "page"

    def __init__(self) -> None:
        self.has_next_page = True
        self.pages = 0

    def current(self) -> Hashable | None:
        """The cursor the next request carries (None before the first page)."""
        return None

    def init_request(self, request: PageRequest) -> None:
        """Prepare the first request (in place)."""

    def update_state(self, response: Response, data: Any = None) -> None:
        """Learn from a page (its response and parsed data); set ``has_next_page``."""
        self.has_next_page = False

    def update_request(self, request: PageRequest) -> None:
        """Change the request (in place) for the next page."""


class HeaderCursor(Paginator):
    """Cursor in a response header, sent back as a query param.

    Args:
        header: response header holding the next cursor.
        param: query param that carries it (``page_token`` for V2, ``next_page_token``
            for V1).
        start: resume at this cursor instead of the first page.
    """

    def __init__(
        self, header: str = NEXT_PAGE_HEADER, param: str = "page_token", start: str | None = None
    ) -> None:
        super().__init__()
        if not header or not param:
            raise UsageError(f"HeaderCursor needs a header and a param, got {header!r}, {param!r}")
        self.header = header
        self.param = param
        self.name = f"{header} -> {param}"
        self.cursor: str | None = start or None

    def current(self) -> str | None:
        return self.cursor

    def init_request(self, request: PageRequest) -> None:
        """First page, or resume at ``start`` when one was given."""
        request.params.pop(self.param, None)
        if self.cursor:
            request.params[self.param] = self.cursor

    def update_state(self, response: Response, data: Any = None) -> None:
        self.cursor = response.headers.get(self.header) or None
        self.has_next_page = self.cursor is not None

    def update_request(self, request: PageRequest) -> None:
        request.params[self.param] = self.cursor


class PageNumber(Paginator):
    """V1 JSON paging: ``page`` param, the next page number in the body's ``next_page``.

    Args:
        param: the query param (``page``).
        field: body field with the next page (absent on the last page).
        start: first page number.
    """

    def __init__(self, param: str = "page", field: str = "next_page", start: int = 0) -> None:
        super().__init__()
        self.param = param
        self.field = field
        self.name = f"{field} -> {param}"
        self.page = start

    def current(self) -> int:
        return self.page

    def init_request(self, request: PageRequest) -> None:
        request.params[self.param] = self.page

    def update_state(self, response: Response, data: Any = None) -> None:
        body = data if isinstance(data, dict) else response.json()
        nxt = body.get(self.field) if isinstance(body, dict) else None
        if nxt is None:
            self.has_next_page = False
            return
        try:
            self.page = int(nxt)
        except (TypeError, ValueError):
            raise DataError(f"{response.url}: {self.field}={nxt!r} is not a page number") from None

    def update_request(self, request: PageRequest) -> None:
        request.params[self.param] = self.page


class PageUntilEmpty(Paginator):
    """V1 CSV paging: increment ``page`` until a response body is empty."""

    def __init__(self, param: str = "page", start: int = 0) -> None:
        super().__init__()
        self.param = param
        self.name = param
        self.page = start

    def current(self) -> int:
        return self.page

    def init_request(self, request: PageRequest) -> None:
        request.params[self.param] = self.page

    def update_state(self, response: Response, data: Any = None) -> None:
        if not response.content or response.content.isspace():  # strip() would copy it
            self.has_next_page = False
        else:
            self.page += 1

    def update_request(self, request: PageRequest) -> None:
        request.params[self.param] = self.page


class GraphCursor(Paginator):
    """GraphQL paging: the page object's ``pageInfo.<field>``, sent back as a variable.

    ``data`` (the parse result :func:`paginate` hands over) is the list object holding
    ``pageInfo``; a null or absent cursor means the last page.

    Args:
        field: ``endCursor`` (most lists) or ``codeNameEndCursor`` (project and cohort
            patients).
        var: the query variable that carries it (``cursor``, ``patient_cursor``,
            ``cursorInput``...).
        wrap: send ``{wrap: cursor}`` rather than the bare cursor (``codeNameCursor``
            inside a ``CursorInput``).
    """

    def __init__(self, field: str = "endCursor", var: str = "cursor", wrap: str | None = None):
        super().__init__()
        if not field or not var:
            raise UsageError(f"GraphCursor needs a field and a variable, got {field!r}, {var!r}")
        self.field = field
        self.var = var
        self.wrap = wrap
        self.name = f"pageInfo.{field} -> ${var}"
        self.cursor: str | None = None

    def current(self) -> str | None:
        return self.cursor

    def init_request(self, request: PageRequest) -> None:
        request.json = dict(request.json or {})
        request.json["variables"] = dict(request.json.get("variables") or {})

    def update_state(self, response: Response, data: Any = None) -> None:
        info = data.get("pageInfo") if isinstance(data, Mapping) else None
        value = info.get(self.field) if isinstance(info, Mapping) else None
        self.cursor = str(value) if value else None
        self.has_next_page = self.cursor is not None

    def update_request(self, request: PageRequest) -> None:
        assert request.json is not None
        request.json["variables"][self.var] = {self.wrap: self.cursor} if self.wrap else self.cursor


def paginate(
    http: HttpClient,
    url: str,
    params: Mapping[str, Any],
    paginator: Paginator,
    parse: Callable[[Response], T] | None = None,
    *,
    method: str = "GET",
    json: Mapping[str, Any] | None = None,
    call: str | None = None,
    keep_body: bool = True,
) -> Generator[tuple[Response, T], None, None]:
    """Yield ``(response, parse(response))`` for every page until the paginator stops.

    The one page loop of ``rune_io``. ``parse`` runs inside the retry loop: a page that
    does not parse (a transient :class:`DataError`) is fetched again; without ``parse``
    the data is None and the body is left to the caller. Pages are counted in
    ``paginator.pages``. With ``keep_body=False`` the yielded response has an empty
    ``content``, so the raw body is freed once parsed, not held while the caller works
    on the page (a 3,600,000-point V1 CSV page is ~265 MiB).

    Raises:
        DataError: the server sent a cursor it had already sent in this call (or the
            one the call started from); the message names ``call`` (default: the method
            and sanitised URL), the cursor and the page.
        ApiError, TransientError, DataError: from :meth:`HttpClient.request`.
    """
    request = PageRequest(method, url, dict(params), copy.deepcopy(dict(json)) if json else None)
    paginator.init_request(request)
    where = call or f"{method} {sanitize_url(url)}"
    start = paginator.current()
    seen: set[Hashable] = set() if start is None else {start}
    holder: list[Response] = []

    def _parse(resp: Response) -> Any:
        holder.append(resp)
        return parse(resp) if parse is not None else None

    while paginator.has_next_page:
        holder.clear()
        data = http.request(
            request.method, request.url, params=request.params, json=request.json, parse=_parse
        )
        resp = holder[-1]
        paginator.update_state(resp, data)
        paginator.pages += 1
        if paginator.has_next_page:
            cursor = paginator.current()
            if cursor in seen:
                shown = repr(cursor) if len(repr(cursor)) <= 80 else repr(cursor)[:77] + "..."
                raise DataError(
                    f"{where}: the server repeated the cursor {paginator.name} = {shown} "
                    f"after page {paginator.pages}; refusing to loop"
                )
            seen.add(cursor)
        if not keep_body:
            holder.clear()
            resp = replace(resp, content=b"")
        yield resp, data
        if paginator.has_next_page:
            paginator.update_request(request)
