"""Seeded chaos: per-request 429/500/503, connection resets, truncated bodies, delays.

Failures are always detectable: an error status, or a body that ends before the
framing says it should (the client's HTTP layer raises). A 200 that completes is
always the correct, complete response.
"""

from __future__ import annotations

import asyncio
import random
import threading

from .config import ChaosConfig
from .errors import error_body


class ChaosEngine:
    """Draws at most one fault per request from a seeded RNG (thread-safe)."""

    def __init__(self, config: ChaosConfig | None) -> None:
        self.config = config
        self._rng = random.Random(config.seed if config else 0)
        self._lock = threading.Lock()

    def draw(self, path: str) -> str | None:
        cfg = self.config
        if cfg is None:
            return None
        if path.startswith("/graphql") and not cfg.apply_to_graphql:
            return None
        if not path.startswith(("/graphql", "/v1/", "/v2/", "/api/")):
            return None
        with self._lock:
            for kind, p in cfg.probabilities():
                if p > 0 and self._rng.random() < p:
                    return kind
        return None


class ChaosMiddleware:
    """ASGI middleware applying :class:`ChaosEngine` draws; also records request stats."""

    def __init__(self, app, state) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        method = scope["method"]
        qs = scope.get("query_string", b"").decode("latin-1")
        stats = self.state.stats
        engine: ChaosEngine = self.state.chaos
        kind = engine.draw(path)  # None whenever chaos is off (no config)
        cfg = engine.config
        status_box = {"status": 0, "recorded": False}

        async def send_recording(message):
            if message["type"] == "http.response.start":
                status_box["status"] = message["status"]
                # record before the client can see the response (tests read stats at once)
                stats.record(method, path, qs, message["status"])
                status_box["recorded"] = True
            await send(message)

        if kind is not None:
            stats.record_chaos(kind)
        try:
            if kind in ("429", "500", "503"):
                status = int(kind)
                retry = cfg.retry_after_s if cfg and status in (429, 503) else None
                await _send_error(send_recording, status, f"injected chaos {kind}", retry)
            elif kind in ("reset", "truncate"):
                await self._broken(scope, receive, send_recording, kind)
            else:
                if kind == "delay":
                    await asyncio.sleep(cfg.delay_s if cfg else 0)
                await self.app(scope, receive, send_recording)
        finally:
            if not status_box["recorded"]:
                stats.record(method, path, qs, status_box["status"])

    async def _broken(self, scope, receive, send, kind: str) -> None:
        """Run the app, then send only part of its body and drop the connection."""
        start: dict = {}
        chunks: list[bytes] = []

        async def capture(message):
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, capture)
        body = b"".join(chunks)
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        if kind == "truncate":
            # promise the full length (plus one, so even an empty body is short)
            headers.append((b"content-length", str(len(body) + 1).encode()))
        await send(
            {"type": "http.response.start", "status": start.get("status", 200), "headers": headers}
        )
        await send(
            {"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True}
        )
        # returning without completing the response makes uvicorn close the connection


async def _send_error(send, status: int, message: str, retry_after: float | None) -> None:
    body = error_body(status, message)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", f"{retry_after:g}".encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
