"""TLS verification is on by default and off only when configured explicitly; a server
whose certificate does not verify fails at once (no retries), with a clear message."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rune_io.api.client import RuneClient
from rune_io.config import load_settings
from rune_io.errors import ConfigError
from tests.faults.conftest import TOKEN_ID, TOKEN_SECRET


@pytest.fixture(scope="module")
def https_url(tmp_path_factory) -> Iterator[str]:
    """An HTTPS server on loopback with a self-signed certificate."""
    d = tmp_path_factory.mktemp("tls")
    key, cert = d / "key.pem", d / "cert.pem"
    res = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        capture_output=True,
    )  # fmt: skip
    if res.returncode != 0:
        pytest.skip("openssl cannot make a certificate here")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = b'{"data": {"user": null}}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def _settings(url: str, tmp_path: Path, **extra):
    return load_settings(
        runeq_config_path=None,
        environ={
            "RUNE_ACCESS_TOKEN_ID": TOKEN_ID,
            "RUNE_ACCESS_TOKEN_SECRET": TOKEN_SECRET,
            "RUNE_GRAPH_URL": url,
            "RUNE_STREAM_URL": url,
        },
        **extra,
    )


def test_tls_verification_is_on_by_default_and_never_retried(https_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./rune-lake.yaml
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.rune/config
    settings = _settings(https_url, tmp_path)
    assert settings.verify_tls is True
    waits: list[float] = []
    with RuneClient(settings, sleep=waits.append) as client:
        assert client.http.session.verify is True
        with pytest.raises(ConfigError) as ei:
            client.graph.current_user()
    msg = str(ei.value)
    assert f"the TLS certificate of {https_url}/graphql does not verify" in msg, msg
    assert "self-signed certificate" in msg and "verify_tls: false" in msg
    assert waits == [], "a certificate failure is not transient: never retried"
    assert TOKEN_SECRET not in msg


def test_tls_verification_off_only_when_configured(https_url, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = _settings(https_url, tmp_path, verify_tls=False)
    assert settings.verify_tls is False and "verify_tls = False  (argument" in settings.describe()
    with RuneClient(settings) as client:
        assert client.http.session.verify is False
        client.http.post(f"{https_url}/graphql", json={"query": "{ user { id } }"})
