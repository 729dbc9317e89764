"""The emulator's TCP: every connection has TCP_NODELAY, as a real server's has.

Without it (a listening socket made with protocol 0, on which asyncio does not set
TCP_NODELAY), every response on a kept-alive connection after the first few waited
~40 ms: Nagle held the body until the client's delayed ACK of the headers."""

from __future__ import annotations

import socket

import requests

from rune_emulator.server import tcp_listener

from .conftest import USER_HEADERS


def test_connections_have_tcp_nodelay(emu):
    with requests.Session() as s:
        for _ in range(3):  # kept alive: one connection
            r = s.get(f"{emu.url}/v2/streams", headers=USER_HEADERS, timeout=30)
            assert r.status_code in (200, 404), r.text
        conns = list(emu._server.server_state.connections)
        assert conns, "the request's connection is still open"
        for proto in conns:
            sock = proto.transport.get_extra_info("socket")
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1


def test_listener_says_tcp():
    sock = tcp_listener("127.0.0.1", 0)
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.getsockname()[1] > 0
    finally:
        sock.close()


def test_listener_accepts_connections_before_the_server_runs():
    """The URL is printed before uvicorn starts: a client connecting at once waits in the
    backlog instead of being refused (CI: the demo's preflight was refused twice)."""
    sock = tcp_listener("127.0.0.1", 0)
    try:
        with socket.create_connection(sock.getsockname(), timeout=5):
            pass  # refused if the socket were only bound
    finally:
        sock.close()
