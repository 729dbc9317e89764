"""A tiny Rune API on 127.0.0.1 that replays recorded streams over real HTTP.

It serves ``POST /graphql`` (``streamListByIds``/``streamList``: the registered streams,
whatever the query asks) and ``GET /v2/streams/{id}``: the stream's rows whose key time
is in ``[start_time_ns, end_time_ns)``, ``page_size`` rows a page, each page a complete
CSV, ``X-Rune-Next-Page-Token`` an offset into the filtered rows (so rows sharing a time
may straddle a page), timestamps rendered as ``timestamp=unixns|iso|unix`` asks.

Rows are given as lists of CSV cells in header order; a timestamp cell is an ``int`` (ns
since the epoch). It knows nothing of ``rune_io``: it is the other side of the wire.
"""

from __future__ import annotations

import csv
import io
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse


def iso_ns(ns: int) -> str:
    """Unix ns -> trimmed ISO-8601 with ``Z``, up to 7 fractional digits (as the live API)."""
    sec, frac = divmod(ns, 10**9)
    text = datetime.fromtimestamp(sec, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{frac:09d}"[:7].rstrip("0")
    return f"{text}.{digits}Z" if digits else f"{text}Z"


def parse_iso_ns(text: str) -> int:
    """``2022-07-28T14:26:45.3618588Z`` -> unix ns (string arithmetic, no float)."""
    body = text.rstrip("Z")
    whole, _, frac = body.partition(".")
    sec = int(datetime.strptime(whole, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC).timestamp())
    return sec * 10**9 + int((frac or "0").ljust(9, "0")[:9])


@dataclass
class ReplayStream:
    """One stream: its GraphQL record (wire names) and its rows."""

    meta: dict[str, Any]
    header: list[str]
    rows: list[list[Any]]
    timestamps: set[str] = field(default_factory=set)  # columns holding ns ints
    key: str | None = "time"  # the column the time filter applies to (None: none)


def _render(value: Any, column: str, stream: ReplayStream, fmt: str) -> str:
    if column in stream.timestamps and isinstance(value, int):
        if fmt == "unixns":
            return str(value)
        if fmt == "unix":
            return repr(value / 1e9)
        return iso_ns(value)
    return "" if value is None else str(value)


class ReplayServer:
    """Serve :class:`ReplayStream` s; ``requests`` records each V2 query string."""

    def __init__(self, page_size: int = 5) -> None:
        self.page_size = page_size
        self.streams: dict[str, ReplayStream] = {}
        self.requests: list[dict[str, list[str]]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:  # GraphQL
                n = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(n)
                streams = [s.meta for s in server.streams.values()]
                page = {"streams": streams, "pageInfo": {"endCursor": None}}
                body = {"data": {"streamListByIds": page, "streamList": page}}
                self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

            def do_GET(self) -> None:  # V2 stream data
                url = urlparse(self.path)
                q = parse_qs(url.query)
                server.requests.append(q)
                sid = unquote(url.path.removeprefix("/v2/streams/"))
                stream = server.streams.get(sid)
                if stream is None:
                    self._send(404, b'{"success": false, "error": {"message": "no stream"}}', {})
                    return
                status, body, headers = server.page(stream, q)
                self._send(status, body, headers)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def add(self, stream: ReplayStream) -> None:
        self.streams[stream.meta["id"]] = stream

    def page(self, stream: ReplayStream, q: dict[str, list[str]]) -> tuple[int, bytes, dict]:
        lo = int(q["start_time_ns"][0])
        hi = int(q["end_time_ns"][0])
        fmt = q.get("timestamp", ["iso"])[0]
        rows = stream.rows
        if stream.key is not None:
            k = stream.header.index(stream.key)
            rows = [r for r in rows if r[k] is not None and lo <= r[k] < hi]
        start = int(q.get("page_token", ["0"])[0])
        chunk = rows[start : start + self.page_size]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(stream.header)
        for r in chunk:
            writer.writerow(
                [_render(v, c, stream, fmt) for v, c in zip(r, stream.header, strict=True)]
            )
        headers = {"Content-Type": "text/csv"}
        if start + self.page_size < len(rows):
            headers["X-Rune-Next-Page-Token"] = str(start + self.page_size)
        return 200, out.getvalue().encode(), headers

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def wire_stream_type(t: dict[str, Any]) -> dict[str, Any]:
    """A stream type in runeq's fixture naming (``id``, ``data_type``...) -> GraphQL names."""
    keys = {
        "id": "identifier",
        "data_type": "dataType",
        "quantity_name": "quantityName",
        "quantity_abbrev": "quantityAbbrev",
        "unit_name": "unitName",
        "unit_abbrev": "unitAbbrev",
    }
    dims = [{keys[k]: v for k, v in d.items()} for d in t["shape"]["dimensions"]]
    return {
        "id": t["id"],
        "name": t["name"],
        "description": t.get("description", ""),
        "shape": {"dimensions": dims},
    }


def wire_stream(s: dict[str, Any], stream_type: dict[str, Any]) -> dict[str, Any]:
    """A fixture stream record -> the GraphQL ``stream`` object."""
    return {
        "id": s["id"],
        "createdAt": s.get("created_at"),
        "algorithm": s["algorithm"],
        "deviceId": s["device_id"],
        "patientId": s["patient_id"],
        "minTime": s.get("min_time"),
        "maxTime": s.get("max_time"),
        "parameters": s.get("parameters", []),
        "streamType": stream_type,
    }
