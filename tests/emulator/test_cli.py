"""The CLI entry points start a real server and print URL and credentials."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import requests

from .conftest import USER_HEADERS


@pytest.mark.parametrize(
    "cmd",
    [
        [sys.executable, "-m", "rune_emulator"],
        [sys.executable, "-c", "from rune_lake.flows.cli import main; main()", "emulator"],
    ],
    ids=["python-m", "rune-lake"],
)
def test_cli_serves_and_prints_credentials(cmd):
    args = ["--port", "0", "--patients", "2", "--days", "1", "--now", "2026-06-01T12:00:00Z"]
    proc = subprocess.Popen(cmd + args, stdout=subprocess.PIPE, text=True)
    try:
        lines = [proc.stdout.readline() for _ in range(6)]
        url = re.search(r"http://127\.0\.0\.1:\d+", lines[0]).group(0)
        assert "demo-access-token-id" in "".join(lines)
        for _ in range(100):
            try:
                r = requests.post(
                    f"{url}/graphql",
                    json={"query": "{ org { id } }"},
                    headers=USER_HEADERS,
                    timeout=5,
                )
                break
            except requests.ConnectionError:
                import time

                time.sleep(0.05)
        assert r.status_code == 200 and r.json()["data"]["org"]["id"].startswith("org-")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.mark.parametrize("command", ["emulator", "demo"])
def test_without_the_emulator_extra_the_cli_says_what_to_install(command, tmp_path):
    code = (
        "import sys\n"
        "sys.modules['uvicorn'] = None\n"
        "from rune_lake.flows.cli import main\n"
        f"sys.argv = ['rune-lake', {command!r}, *({['--port', '0'] if command == 'emulator' else ['--lake', str(tmp_path / 'lake')]!r})]\n"
        "main()\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2, res.stderr
    assert "pip install -e '.[emulator]'" in res.stderr and "Traceback" not in res.stderr
