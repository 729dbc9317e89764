"""Reading a token chain's pages one page ahead of their consumer, in a thread."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import Any

from rune_io.api.http import Response


class Prefetcher:
    """Fetch pages in a background thread, at most ``depth`` ahead of the consumer.

    ``pages`` yields ``(token sent, response, more)``, ``more`` saying whether the
    response names a next page. The first page is fetched in the consumer's thread: a
    window that fits in one page (most windows of a refresh: a day of heart rate, a
    month of symptoms) is one request and no thread. If more pages follow, a thread
    fetches them from then on, so the next page's request goes out as soon as the
    previous response is in and its download overlaps with the parsing of the previous
    one. Errors re-raise in the consumer; :meth:`close` stops the thread (consumer
    finished early or failed).
    """

    _END = object()

    def __init__(self, pages: Iterator[tuple[str | None, Response, bool]], depth: int = 1) -> None:
        self._pages = pages
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for item in self._pages:
                if not self._put(item):
                    return
            self._put(self._END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._put(exc)

    def __iter__(self) -> Iterator[tuple[str | None, Response]]:
        first = next(self._pages, None)  # in this thread: its errors raise here
        if first is None:
            return
        sent, resp, more = first
        if not more:  # one page: no thread (a page the server did not announce is
            yield sent, resp  # still read, in this thread)
            for sent, resp, _ in self._pages:
                yield sent, resp
            return
        self._thread = threading.Thread(target=self._run, name="rune_io-prefetch", daemon=True)
        self._thread.start()
        yield sent, resp
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item[0], item[1]

    def close(self) -> None:
        self._stop.set()
        if self._thread is None:  # the page loop ran (if at all) in this thread
            close = getattr(self._pages, "close", None)
            if close is not None:
                close()
            return
        while True:  # unblock a producer waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=5)
