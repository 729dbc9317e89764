"""Storage faults: the S3 server going away mid-run, a read-only local lake. Each fails
clearly, naming the path; the next run completes; nothing partial is visible."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from rune_emulator import ChaosConfig
from tests.environ import patched_environ
from tests.faults.conftest import (
    STORAGE_ARGS,
    STORAGE_EMU,
    STORAGE_PARAMS,
    api_vars,
    assert_lake_consistent,
    assert_lakes_equal,
    cli,
    emulator,
    refresh_in_process,
    remember,
)

BUCKET = "rune-lake-faults"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def reset_moto(endpoint: str) -> None:
    """moto keeps one in-memory S3 per process, shared by every ThreadedMotoServer: start
    each test from an empty store (as s3fs's own suite does)."""
    import requests

    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()


def aws_env(endpoint: str):
    keys = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_S3": endpoint,
    }
    return patched_environ(keys)


@pytest.mark.slow
def test_s3_server_stopped_mid_run(tmp_path, fast_config, storage_want):
    import s3fs
    from moto.server import ThreadedMotoServer

    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    reset_moto(endpoint)
    url = f"s3://{BUCKET}/lake"
    try:
        with aws_env(endpoint):
            s3fs.S3FileSystem.clear_instance_cache()
            fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
            fs.mkdir(BUCKET)
            slow = ChaosConfig(p_delay=1.0, delay_s=0.3, apply_to_graphql=False)
            with emulator(fast_config, chaos=slow, **STORAGE_EMU) as emu:

                def stop_after_some_data() -> None:
                    while sum(p.startswith("/v2/") for _m, p, _q, _s in emu.stats.log) < 3:
                        time.sleep(0.02)
                    server.stop()

                stopper = threading.Thread(target=stop_after_some_data, daemon=True)
                stopper.start()
                t0 = time.monotonic()
                state = refresh_in_process(url, **STORAGE_PARAMS)
                took = time.monotonic() - t0
                stopper.join(timeout=5)
                assert state.is_failed()
                message = str(state.result(raise_on_failure=False))
                print(f"S3 down after {took:.1f}s: {message[:500]}")
                assert f"{endpoint}/{BUCKET}/lake/" in message  # names the path

                server.start()  # moto keeps its buckets across a restart in-process
                emu.set_chaos(None)
                state = refresh_in_process(url, **STORAGE_PARAMS)
                assert state.is_completed(), state.message
            local = remember(tmp_path / "copy")
            fs.get(f"{BUCKET}/lake", str(local), recursive=True)
    finally:
        server.stop()
    assert_lakes_equal(local, storage_want)
    assert_lake_consistent(local)


def _immutable(path: Path, on: bool) -> None:
    """Make ``path`` (recursively) unwritable, even for root (chattr +i)."""
    if os.geteuid() != 0:
        for p in [path, *path.rglob("*")]:
            if p.is_dir():
                p.chmod(0o555 if on else 0o755)
        return
    res = subprocess.run(
        ["chattr", "-R", "+i" if on else "-i", str(path)], capture_output=True, text=True
    )
    if res.returncode != 0:
        pytest.skip(f"cannot make a read-only directory as root here: {res.stderr.strip()}")


@pytest.mark.slow
def test_read_only_lake_fails_before_the_run_naming_the_path(tmp_path, fast_config, storage_want):
    lake = remember(tmp_path / "lake")
    shutil.copytree(storage_want, lake)
    catalog = lake / "_catalog"
    args = ["refresh", "--lake", str(lake), "--lookback-days", "1", "--config", str(fast_config)]
    args += STORAGE_ARGS
    with emulator(fast_config, **STORAGE_EMU) as emu:
        _immutable(catalog, True)
        try:
            emu.stats.reset()
            res = cli(*args, env_vars=api_vars(emu))
            data = [r for r in emu.stats.log if r[1].startswith("/v2/")]
        finally:
            _immutable(catalog, False)
        assert res.code == 2, res.text
        lines = [ln for ln in res.err.splitlines() if ln.strip()]
        assert len(lines) == 1 and f"cannot write to the lake at '{lake}'" in lines[0], res.err
        assert data == []
        res = cli(*args, env_vars=api_vars(emu))
        assert res.code == 0, res.text
    assert_lakes_equal(lake, storage_want)
    assert_lake_consistent(lake)


@pytest.mark.slow
def test_table_read_only_mid_run_then_next_run_completes(tmp_path, fast_config, storage_want):
    """Writable catalog, one table unwritable: its chunks fail naming the path, the
    others land, exit 1; once writable again the next run completes."""
    lake = remember(tmp_path / "lake")
    shutil.copytree(storage_want, lake)
    table = lake / "vitals__heart_rate__rate_per_min"
    args = ["refresh", "--lake", str(lake), "--lookback-days", "1", "--config", str(fast_config)]
    args += STORAGE_ARGS
    with emulator(fast_config, **STORAGE_EMU) as emu:
        _immutable(table, True)
        try:
            res = cli(*args, env_vars=api_vars(emu))
        finally:
            _immutable(table, False)
        assert res.code == 1, res.text
        assert "FAILED vitals__heart_rate__rate_per_min" in res.out and str(table) in res.out, (
            res.out
        )
        assert "symptom__tremor" in res.out
        assert_lake_consistent(lake)
        res = cli(*args, env_vars=api_vars(emu))
        assert res.code == 0, res.text
    assert_lakes_equal(lake, storage_want)
    assert_lake_consistent(lake)
