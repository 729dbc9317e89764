"""Fixtures for the lake tests: streams, batches, local lakes, and S3 lakes on moto.

The S3 lakes talk real S3 protocol to a ``ThreadedMotoServer`` on 127.0.0.1 started once
per module and reset before every test (as s3fs's own tests do); credentials are dummies
set in the environment by the fixture only.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import requests

from rune_io.api.arrow_schema import floor_us, stream_schema
from rune_io.api.models import Dimension, StreamMeta, StreamType
from rune_io.lake import Lake, Snapshot, open_lake
from rune_io.lake.snapshot import EVENTS_PREFIX

PATIENT = "0123456789abcdef0123456789abcdef"
DIGIT_PATIENT = "00123456789012345678901234567890"  # all digits, leading zeros

ACCEL_TYPE = StreamType(
    id="acceleration",
    name="acceleration",
    dimensions=(
        Dimension("time", "timestamp"),
        Dimension("acceleration", "sfloat", unit_abbrev="g"),
        Dimension("measurement_duration_ns", "uint"),
    ),
)
TREMOR_TYPE = StreamType(
    id="probability",
    name="probability",
    dimensions=(Dimension("time", "timestamp"), Dimension("probability", "ufloat")),
)


def make_stream(
    sid: str = "stream-accel-x",
    patient: str = PATIENT,
    device: str = "eb#8c31",
    *,
    category: str = "kinematics",
    measurement: str = "acceleration",
    stream_type: StreamType = ACCEL_TYPE,
    **params: str,
) -> StreamMeta:
    pairs = {"category": category, "measurement": measurement, **params}
    return StreamMeta(
        id=sid,
        patient_id=patient,
        device_id=device,
        algorithm="accel.0",
        stream_type=stream_type,
        parameters=tuple(sorted(pairs.items())),
        min_time=1_700_000_000.0,
        max_time=1_800_000_000.0,
    )


def day_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def make_batches(
    stream: StreamMeta,
    start: datetime,
    rows: int,
    *,
    hz: float = 50.0,
    batch_rows: int = 10_000,
    seed: int = 0,
) -> Iterator[pa.RecordBatch]:
    """``rows`` rows at ``hz`` from ``start``, in batches shaped like API pages (times
    with a 100-ns part, as the watch serves them)."""
    schema = stream_schema(stream.stream_type)
    rng = np.random.default_rng(seed)
    t0 = int(start.timestamp() * 1_000_000) * 1000
    step = int(1e9 / hz)
    for lo in range(0, rows, batch_rows):
        n = min(batch_rows, rows - lo)
        ns = t0 + (np.arange(lo, lo + n, dtype=np.int64) * step) + 300
        cols = [floor_us(pa.array(ns)), pa.array(ns)]
        for f in list(schema)[2:]:
            if pa.types.is_floating(f.type):
                cols.append(pa.array(rng.normal(0, 1, n)))
            else:
                cols.append(pa.array(np.full(n, 20_000_000, dtype=np.int64)))
        yield pa.RecordBatch.from_arrays(cols, schema=schema)


@pytest.fixture
def local_lake(tmp_path) -> Lake:
    return open_lake(str(tmp_path / "lake"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


BUCKET = "rune-lake-test"


@pytest.fixture
def s3_env(moto_endpoint, monkeypatch) -> str:
    """Reset moto, set dummy AWS credentials and the endpoint in the environment."""
    import s3fs

    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10)
    for k, v in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_endpoint,
    }.items():
        monkeypatch.setenv(k, v)
    s3fs.S3FileSystem.clear_instance_cache()
    fs = s3fs.S3FileSystem(endpoint_url=moto_endpoint, skip_instance_cache=True)
    fs.mkdir(BUCKET)
    return moto_endpoint


@pytest.fixture
def s3_lake(s3_env) -> Lake:
    return open_lake(f"s3://{BUCKET}/lake")


@pytest.fixture(params=["local", "s3"])
def lake(request) -> Lake:
    """The same test on a local directory and on S3 (moto)."""
    return request.getfixturevalue(f"{request.param}_lake")


@pytest.fixture(scope="session")
def spark():
    pyspark = pytest.importorskip("pyspark.sql")
    session = (
        pyspark.SparkSession.builder.master("local[1]")
        .appName("rune-lake-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def entries_between(
    snap: Snapshot, start: datetime, end: datetime
) -> dict[str, list[dict[str, Any]]]:
    """Entries whose partition starts in ``[start, end)``, by stream key (events:
    ``events/<patient>``)."""
    t = snap.files
    if t.num_rows == 0:
        return {}
    ps = t.column("partition_start")
    lo = pa.scalar(start, type=ps.type)
    hi = pa.scalar(end, type=ps.type)
    sel = t.filter(pc.and_(pc.greater_equal(ps, lo), pc.less(ps, hi)))
    out: dict[str, list[dict[str, Any]]] = {}
    for row in sel.to_pylist():
        key = row["stream_id"] or f"{EVENTS_PREFIX}{row['patient_id']}"
        out.setdefault(key, []).append(row)
    return out
