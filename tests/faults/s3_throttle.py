"""A loopback proxy in front of a moto S3 server that throttles like S3 does.

Every ``every``-th PUT and every ``every``-th GET (counting retries, so the next attempt
of a throttled request goes through) is answered with S3's own error instead of being
forwarded: ``503 SlowDown`` or ``400 RequestTimeout``, alternately, with S3's XML body.
Everything else is forwarded byte for byte. ``injected`` counts what it refused.
"""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ERRORS = (
    (503, "SlowDown", "Please reduce your request rate."),
    (
        400,
        "RequestTimeout",
        "Your socket connection to the server was not read from or written to within the "
        "timeout period.",
    ),
)


class ThrottlingProxy:
    def __init__(self, upstream_port: int, every: int = 3) -> None:
        self.upstream_port = upstream_port
        self.every = every
        self.counts = {"PUT": 0, "GET": 0}
        self.injected = {"PUT": 0, "GET": 0}
        self.forwarded = 0
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                fault = proxy._fault(self.command)
                if fault is not None:
                    status, code, message = fault
                    xml = (
                        '<?xml version="1.0" encoding="UTF-8"?>\n'
                        f"<Error><Code>{code}</Code><Message>{message}</Message>"
                        "<RequestId>rune-lake-proxy</RequestId></Error>"
                    ).encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(xml)))
                    self.end_headers()
                    self.wfile.write(xml)
                    return
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items()}
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status, resp.reason)
                    head = self.command == "HEAD"  # its Content-Length is the object's size
                    for k, v in resp.getheaders():
                        skip = (
                            "transfer-encoding",
                            "connection",
                            *(() if head else ("content-length",)),
                        )
                        if k.lower() not in skip:
                            self.send_header(k, v)
                    if not head:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()
                with proxy._lock:
                    proxy.forwarded += 1

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _fault(self, method: str):
        if method not in self.counts:
            return None
        with self._lock:
            self.counts[method] += 1
            n = self.counts[method]
            if n % self.every:
                return None
            self.injected[method] += 1
            return ERRORS[(n // self.every) % len(ERRORS)]

    def __enter__(self) -> ThrottlingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
