"""A lake on S3 that cannot be used: no credentials, an endpoint that does not answer,
credentials S3 rejects, a bucket that does not exist. Each is one line saying what is
wrong and what to set, exit code 2, in seconds, before any data request. Real S3
protocol to a moto server on 127.0.0.1; a closed loopback port for the dead endpoint."""

from __future__ import annotations

import socket
import time

import pytest
import requests

from tests.faults.conftest import emulator
from tests.faults.test_bad_input import _one_error_line, run
from tests.lake.conftest import moto_endpoint  # noqa: F401 - fixture

BUCKET = "rune-lake-s3-input"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again on return: connections are refused


@pytest.fixture
def s3(moto_endpoint, monkeypatch, tmp_path):  # noqa: F811 - the fixture above
    """moto reset with one bucket; AWS_* as a user's shell would have them."""
    import boto3
    import s3fs

    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(k, raising=False)
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
        "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
    }.items():
        monkeypatch.setenv(k, v)
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=BUCKET)
    s3fs.S3FileSystem.clear_instance_cache()
    yield moto_endpoint
    s3fs.S3FileSystem.clear_instance_cache()


def _refresh(fast_config, tmp_path, lake: str) -> tuple[int, str, float]:
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    with emulator(fast_config) as emu:
        emu.stats.reset()
        t0 = time.monotonic()
        code, err = run("refresh", "--lake", lake, home=home)
        took = time.monotonic() - t0
        data = [r for r in emu.stats.log if r[1].startswith(("/v1", "/v2"))]
    assert data == []
    return code, _one_error_line(err), took


def test_a_reachable_bucket_passes_the_check(s3, fast_config, tmp_path):
    import s3fs

    from rune_io.lake.storage import check_writable

    check_writable(f"s3://{BUCKET}/lake")
    fs = s3fs.S3FileSystem(endpoint_url=s3, skip_instance_cache=True)
    assert fs.exists(f"{BUCKET}/lake/_catalog/_lake.json")
    assert not fs.exists(f"{BUCKET}/lake/_catalog/_write_probe")


def test_no_aws_credentials(s3, fast_config, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, line, took = _refresh(fast_config, tmp_path, f"s3://{BUCKET}/lake")
    assert code == 2 and "no AWS credentials found" in line, line
    assert "AWS_ACCESS_KEY_ID" in line and "AWS_SECRET_ACCESS_KEY" in line


def test_unreachable_endpoint_fails_fast(s3, fast_config, tmp_path, monkeypatch):
    dead = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", dead)
    code, line, took = _refresh(fast_config, tmp_path, f"s3://{BUCKET}/lake")
    assert code == 2 and f"cannot reach the S3 endpoint {dead}" in line, line
    assert "AWS_ENDPOINT_URL" in line
    assert took < 10, f"{took:.1f}s"  # was ~13 s of retries and a 165-line traceback


def test_access_denied(s3, fast_config, tmp_path, monkeypatch):
    import moto.settings

    # moto checks credentials from now on: "testing" is no key it knows
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    code, line, _ = _refresh(fast_config, tmp_path, f"s3://{BUCKET}/lake")
    assert code == 2 and f"access denied to the lake 's3://{BUCKET}/lake'" in line, line
    assert "AWS_ACCESS_KEY_ID" in line and "testing" not in line.split("(")[0]


def test_no_such_bucket(s3, fast_config, tmp_path):
    code, line, _ = _refresh(fast_config, tmp_path, "s3://no-such-bucket-here/lake")
    assert code == 2 and "no such bucket 'no-such-bucket-here'" in line, line
    assert "--lake" in line


def test_catalog_of_an_s3_lake_without_credentials(s3, tmp_path, monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    code, err = run("catalog", "--lake", f"s3://{BUCKET}/lake", home=tmp_path)
    line = _one_error_line(err)
    assert code == 2 and "no AWS credentials found" in line, line
