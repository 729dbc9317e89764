"""Pagination strategies: small objects with three hooks and a ``has_next_page`` flag.

A paginator sets up the first request's params (:meth:`Paginator.init_request`), learns
from each page (:meth:`Paginator.update_state`) and changes the params for the next one
(:meth:`Paginator.update_request`). :func:`paginate` drives one through an
:class:`~rune_io.api.http.HttpClient`; a page is retried as a whole (same params) by the
client's retry policy before the paginator ever sees it.

- :class:`HeaderCursor`: ``X-Rune-Next-Page-Token`` header -> ``page_token`` (V2) or
  ``next_page_token`` (V1); no header means the last page.
- :class:`PageNumber`: V1 JSON, ``page`` param, the body's ``next_page`` field.
- :class:`PageUntilEmpty`: V1 CSV, ``page`` += 1 until the body is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any, TypeVar

from rune_io.api.http import HttpClient, Response

T = TypeVar("T")

NEXT_PAGE_HEADER = "X-Rune-Next-Page-Token"


class Paginator:
    """Base strategy: a single page."""

    def __init__(self) -> None:
        self.has_next_page = True
        self.pages = 0

    def init_request(self, params: dict[str, Any]) -> None:
        """Prepare the first request's params (in place)."""

    def update_state(self, response: Response, data: Any = None) -> None:
        """Learn from a page (its response and parsed data); set ``has_next_page``."""
        self.has_next_page = False

    def update_request(self, params: dict[str, Any]) -> None:
        """Change params (in place) for the next page."""


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
            raise ValueError(f"HeaderCursor needs a header and a param, got {header!r}, {param!r}")
        self.header = header
        self.param = param
        self.cursor: str | None = start

    def init_request(self, params: dict[str, Any]) -> None:
        """First page, or resume at ``start`` when one was given."""
        params.pop(self.param, None)
        if self.cursor:
            params[self.param] = self.cursor

    def update_state(self, response: Response, data: Any = None) -> None:
        token = response.headers.get(self.header)
        if token and token == self.cursor:
            raise RuntimeError(f"server repeated page cursor {self.header}; refusing to loop")
        self.cursor = token or None
        self.has_next_page = self.cursor is not None

    def update_request(self, params: dict[str, Any]) -> None:
        params[self.param] = self.cursor


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
        self.page = start

    def init_request(self, params: dict[str, Any]) -> None:
        params[self.param] = self.page

    def update_state(self, response: Response, data: Any = None) -> None:
        body = data if isinstance(data, dict) else response.json()
        nxt = body.get(self.field) if isinstance(body, dict) else None
        if nxt is None:
            self.has_next_page = False
            return
        nxt = int(nxt)
        if nxt <= self.page:
            raise RuntimeError(f"server sent next_page={nxt} after page {self.page}")
        self.page = nxt

    def update_request(self, params: dict[str, Any]) -> None:
        params[self.param] = self.page


class PageUntilEmpty(Paginator):
    """V1 CSV paging: increment ``page`` until a response body is empty."""

    def __init__(self, param: str = "page", start: int = 0) -> None:
        super().__init__()
        self.param = param
        self.page = start

    def init_request(self, params: dict[str, Any]) -> None:
        params[self.param] = self.page

    def update_state(self, response: Response, data: Any = None) -> None:
        if not response.content or response.content.isspace():  # strip() would copy it
            self.has_next_page = False
        else:
            self.page += 1

    def update_request(self, params: dict[str, Any]) -> None:
        params[self.param] = self.page


def paginate(
    http: HttpClient,
    url: str,
    params: dict[str, Any],
    paginator: Paginator,
    parse: Callable[[Response], T],
    *,
    method: str = "GET",
    keep_body: bool = True,
) -> Iterator[tuple[Response, T]]:
    """Yield ``(response, parse(response))`` for every page until the paginator stops.

    ``parse`` runs inside the retry loop: a page that does not parse is fetched again.
    With ``keep_body=False`` the yielded response has an empty ``content``, so the raw
    body is freed once parsed, not held while the caller works on the page.
    """
    params = dict(params)
    paginator.init_request(params)
    holder: list[Response] = []

    def _parse(resp: Response) -> T:
        holder.append(resp)
        return parse(resp)

    while paginator.has_next_page:
        holder.clear()
        data = http.request(method, url, params=params, parse=_parse)
        resp = holder[-1]
        paginator.update_state(resp, data)
        paginator.pages += 1
        if not keep_body:
            holder.clear()
            resp = replace(resp, content=b"")
        yield resp, data
        if paginator.has_next_page:
            paginator.update_request(params)
