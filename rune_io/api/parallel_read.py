"""The parallel reader: a window cut into time sub-windows, read by worker threads.

:func:`read_parallel` pages each sub-window with its own token chain (the one page loop,
through the ``read_window`` the reader hands it) in one of ``workers`` threads, each
with its own HTTP session (:func:`worker_http`), and yields the batches strictly in time
order. Memory is bounded: at most ``workers`` sub-windows are in flight, each holding at
most ``queue_depth`` parsed pages (bounded queues; a worker waits when its queue is
full). Many short sub-windows rather than ``workers`` long ones: with strict ordering
and bounded queues, a worker far ahead of the consumer would stall on its full queue.

Rows sharing a timestamp: sub-windows are ``[a, b)`` on ``time``; the rest after a
first page starts *at* that page's last time, whose rows the first page then leaves to
it (:func:`plan_sub_windows`), so no row is lost or read twice.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import requests

from rune_io.api.csv_page import empty_batch
from rune_io.api.http import HttpClient
from rune_io.errors import DataError

_SECOND_NS = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: reads one sub-window ``[a, b)`` over a worker's client: (http, a, b, label) -> batches
WindowReader = Callable[[HttpClient, int, int, str], Iterator[pa.RecordBatch]]


def ns_to_dt(ns: int) -> datetime:
    """Unix ns -> aware UTC datetime (floored to the microsecond; for messages)."""
    return _EPOCH + timedelta(microseconds=ns // 1000)


def split_window(lo_ns: int, hi_ns: int, parts: int) -> list[tuple[int, int]]:
    """``[lo_ns, hi_ns)`` as at most ``parts`` contiguous ``[a, b)`` pieces, in order.

    Pieces are of (nearly) equal duration; inner boundaries are floored to a whole unix
    second when that keeps them strictly increasing. Every instant of the window is in
    exactly one piece (start inclusive, end exclusive).
    """
    if hi_ns <= lo_ns:
        return []
    parts = max(1, min(parts, hi_ns - lo_ns))
    bounds = [lo_ns]
    for i in range(1, parts):
        b = lo_ns + (hi_ns - lo_ns) * i // parts
        for unit in (_SECOND_NS, 1000):  # a whole second, else a whole microsecond
            if b - b % unit > bounds[-1]:
                b -= b % unit
                break
        if bounds[-1] < b < hi_ns:
            bounds.append(b)
    bounds.append(hi_ns)
    return list(zip(bounds[:-1], bounds[1:], strict=True))


def plan_sub_windows(
    page_times_ns: Sequence[int], hi_ns: int, max_parts: int
) -> list[tuple[int, int]]:
    """Sub-windows for the rest of a read after a full first page with these ``time``
    values (unix ns, ascending).

    The rest is ``[last, hi_ns)``, the page's last time *included*: rows sharing that
    time may continue on the next page, so the caller keeps only the page's rows before
    ``last`` and the first sub-window re-reads every row at ``last`` (none lost, none
    twice). It is cut into about as many pieces as it holds pages at the density of the
    page's second half (its first half may straddle a gap in the data), at most
    ``max_parts``: a short rest stays one chain. No pieces (follow the page token
    instead) when the page has fewer than two distinct times.
    """
    n = len(page_times_ns)
    if n < 2:
        return []
    first, last = int(page_times_ns[0]), int(page_times_ns[-1])
    if first >= last or last >= hi_ns:
        return []
    mid = n // 2
    half_ns = max(1, last - int(page_times_ns[mid]))
    page_ns = max(1, half_ns * (n - 1) // max(1, n - 1 - mid))
    est_pages = -(-(hi_ns - last) // page_ns)
    return split_window(last, hi_ns, max(1, min(max_parts, est_pages)))


def worker_http(parent: HttpClient) -> HttpClient:
    """A new :class:`HttpClient` for one worker thread: its own ``requests.Session``
    (its own connection pool), with the parent's headers, proxies, TLS settings, retry
    policy and sleep.

    ``requests.Session`` is not documented as thread-safe (cookie jar, adapter mounting
    and redirect state are shared mutable objects), so parallel reads never share one:
    each worker thread owns a session for its lifetime and reuses its keep-alive
    connection across the sub-windows it reads.
    """
    session = requests.Session()
    src = parent.session
    session.headers.clear()
    session.headers.update(src.headers)
    session.proxies = dict(src.proxies)
    session.auth = src.auth
    session.cert = src.cert
    session.trust_env = src.trust_env
    http = HttpClient(parent.settings, policy=parent.policy, sleep=parent.sleep, session=session)
    session.verify = src.verify
    return http


class _Failed:
    """A worker's exception, on its way to the consumer."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


_END = object()


def read_parallel(
    parent: HttpClient,
    read_window: WindowReader,
    stream_id: str,
    schema: pa.Schema,
    pieces: Sequence[tuple[int, int]],
    workers: int,
    *,
    queue_depth: int = 4,
    ensure_batch: bool = True,
) -> Iterator[pa.RecordBatch]:
    """Sub-windows ``pieces`` read by ``workers`` threads, their batches yielded in order.

    Each worker thread owns a client made by :func:`worker_http` from ``parent`` for its
    lifetime. Empty batches are dropped (one empty batch of ``schema`` is yielded if
    everything is empty and ``ensure_batch``). Stopping early (or a failure) stops the
    workers and closes their sessions. A failure other than a :class:`DataError` (whose
    message names the page already) gets a note naming the stream, sub-window and page.
    """
    stop = threading.Event()
    local = threading.local()
    clients: list[HttpClient] = []
    lock = threading.Lock()
    n = len(pieces)

    def thread_http() -> HttpClient:
        http = getattr(local, "http", None)
        if http is None:
            http = worker_http(parent)
            local.http = http
            with lock:
                clients.append(http)
        return http

    def put(q: queue.Queue[Any], item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run(k: int, q: queue.Queue[Any]) -> None:
        a, b = pieces[k]
        label = f"sub-window {k + 1}/{n}"
        page = 0
        try:
            if stop.is_set():
                return
            for batch in read_window(thread_http(), a, b, label):
                if not put(q, batch):
                    return
                page += 1
            put(q, _END)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            if not isinstance(exc, DataError):  # DataError's message has it already
                exc.add_note(
                    f"while reading stream {stream_id} {label} "
                    f"[{ns_to_dt(a).isoformat()}, {ns_to_dt(b).isoformat()}) page {page}"
                )
            put(q, _Failed(exc))

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="rune_io-read")
    queues: list[queue.Queue[Any] | None] = []

    def submit_next() -> None:
        k = len(queues)
        if k < n:
            q: queue.Queue[Any] = queue.Queue(maxsize=queue_depth)
            queues.append(q)
            pool.submit(run, k, q)

    yielded = not ensure_batch
    try:
        for _ in range(workers):
            submit_next()
        for k in range(n):
            q = queues[k]
            assert q is not None
            while True:
                item = q.get()
                if item is _END:
                    break
                if isinstance(item, _Failed):
                    raise item.exc
                if item.num_rows:
                    yielded = True
                    yield item
            queues[k] = None
            submit_next()
        if not yielded:
            yield empty_batch(schema)
    finally:
        stop.set()
        for q in queues:  # unblock workers waiting on a full queue
            while q is not None:
                try:
                    q.get_nowait()
                except queue.Empty:
                    break
        pool.shutdown(wait=True, cancel_futures=True)
        for http in clients:
            http.close()
