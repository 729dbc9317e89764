"""A loopback HTTP proxy that waits a fixed time before forwarding each request.

Stands in for a wide-area API in benchmarks: ``DelayProxy(upstream, delay_s)`` listens on
127.0.0.1, sleeps ``delay_s`` per request (concurrent requests wait concurrently, as
over a real network), forwards it to ``upstream`` over a keep-alive connection per
thread, and counts requests by path (``/graphql``, ``/v2/...``). Until the emulator's own
``--latency-ms`` is on main, ``bench/bench_scale.py`` uses this.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "content-length"}


class DelayProxy:
    def __init__(self, upstream: str, delay_s: float) -> None:
        up = urlsplit(upstream)
        self.delay_s = delay_s
        self.counts: Counter[str] = Counter()
        self.in_flight = self.max_in_flight = 0
        lock = threading.Lock()
        local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _forward(self) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                kind = "graphql" if self.path.startswith("/graphql") else self.path.split("/")[1]
                with lock:
                    proxy.counts[kind] += 1
                    proxy.in_flight += 1
                    proxy.max_in_flight = max(proxy.max_in_flight, proxy.in_flight)
                try:
                    time.sleep(proxy.delay_s)
                    conn = getattr(local, "conn", None)
                    if conn is None:
                        conn = local.conn = http.client.HTTPConnection(
                            up.hostname, up.port, timeout=300
                        )
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP}
                    try:
                        conn.request(self.command, self.path, body=body, headers=headers)
                        resp = conn.getresponse()
                    except (http.client.HTTPException, OSError):
                        conn.close()
                        conn = local.conn = http.client.HTTPConnection(
                            up.hostname, up.port, timeout=300
                        )
                        conn.request(self.command, self.path, body=body, headers=headers)
                        resp = conn.getresponse()
                    data = resp.read()
                finally:
                    with lock:
                        proxy.in_flight -= 1
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in _HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> DelayProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        self.counts.clear()
        self.max_in_flight = 0
