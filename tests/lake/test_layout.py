from datetime import UTC, date, datetime

import pytest

from rune_io.api.models import StreamMeta, StreamType
from rune_io.lake.layout import (
    granularity,
    lake_schema,
    partition_for,
    partition_of,
    partitions_between,
    slug,
    stream_file_path,
    table_name,
    unslug,
)
from tests.lake.conftest import ACCEL_TYPE, TREMOR_TYPE, make_stream

HOSTILE = [
    "../../etc",
    "a/b",
    "eb#8c31",
    "R5*S1EGY",
    "50%",
    "pätient-ü",
    "..",
    ".",
    "",
    "-x",
    "x" * 500,
    "a b\n",
]


@pytest.mark.parametrize("value", HOSTILE + ["71_g3ReG", "0123456789abcdef", "ok-id"])
def test_slug_is_safe_and_reversible(value):
    s = slug(value)
    assert s and all(c.isascii() and (c.isalnum() or c in "_-") for c in s)
    assert s not in (".", "..")
    if len(value) < 60:
        assert unslug(s) == value


def test_slug_keeps_plain_ids():
    assert slug("0123456789abcdef0123456789abcdef") == "0123456789abcdef0123456789abcdef"
    assert slug("71_g3ReG") == "71_g3ReG"
    assert slug("eb#8c31") != "eb#8c31"


@pytest.mark.parametrize("value", HOSTILE)
def test_paths_never_escape(value):
    stream = make_stream(sid=value, patient=value, device=value)
    rel = stream_file_path(stream, partition_for(stream, date(2024, 1, 5)))
    parts = rel.split("/")
    assert len(parts) == 4
    assert all(p not in ("", ".", "..") for p in parts)
    assert parts[1].startswith("patient=p-") and parts[2] == "date=2024-01-05"


def test_table_names():
    assert table_name(make_stream()) == "kinematics__acceleration__acceleration"
    hr = StreamType("rate-per-min", "Rate per minute", "", ACCEL_TYPE.dimensions[:2])
    named = make_stream(category="Vitals", measurement="Heart Rate", stream_type=hr)
    assert table_name(named) == "vitals__heart_rate__rate_per_min"
    assert (
        table_name(make_stream(category="", measurement="../x")) == "uncategorized__x__acceleration"
    )
    bare = StreamMeta("s", "p", "d", "a", TREMOR_TYPE, (("category", "sleep"),))
    assert table_name(bare) == "sleep__probability"  # no measurement: <category>__<type>
    assert table_name(StreamMeta("s", "p", "d", "a", TREMOR_TYPE)) == "uncategorized__probability"


def test_partitions():
    accel = make_stream()
    p = partition_for(accel, date(2024, 2, 29))
    assert (p.key, p.value, p.start, p.end) == (
        "date",
        "2024-02-29",
        datetime(2024, 2, 29, tzinfo=UTC),
        datetime(2024, 3, 1, tzinfo=UTC),
    )
    tremor = make_stream(category="symptom", measurement="tremor", stream_type=TREMOR_TYPE)
    assert granularity(table_name(tremor)) == "month"  # low-rate: month files
    assert granularity("kinematics__acceleration__acceleration") == "date"
    assert granularity("vitals__heart_rate__rate_per_min") == "date"
    assert granularity("uncategorized__duration") == "month"  # a 1/min type anywhere
    assert granularity("events") == "month"
    m = partition_of("events", datetime(2024, 12, 31, 23, 59, tzinfo=UTC))
    assert (m.dirname, m.end) == ("month=2024-12", datetime(2025, 1, 1, tzinfo=UTC))
    assert partition_of("events", date(2024, 1, 9)).dirname == "month=2024-01"
    parts = partitions_between(
        "kinematics__acceleration__acceleration",
        datetime(2024, 1, 1, 12, tzinfo=UTC),
        datetime(2024, 1, 3, tzinfo=UTC),
    )
    assert [x.value for x in parts] == ["2024-01-01", "2024-01-02"]
    with pytest.raises(ValueError, match="naive"):
        partition_for(accel, datetime(2024, 1, 1))


def test_schema_columns_and_param_clashes():
    stream = make_stream(axis="x", date="oops", patient_id="dup", month="m", **{"weird key": "v"})
    names = lake_schema(stream).names
    assert names[:4] == ["time", "time_ns", "acceleration", "measurement_duration_ns"]
    assert names[4:9] == ["stream_id", "patient_id", "device_id", "algorithm", "stream_type"]
    assert names[9:11] == ["category", "measurement"]
    assert set(names[11:]) == {
        "axis",
        "param_date",
        "param_month",
        "param_patient_id",
        "weird_key",
    }
    assert str(lake_schema(stream).field("time").type) == "timestamp[us, tz=UTC]"
    assert str(lake_schema(stream).field("time_ns").type) == "int64"
