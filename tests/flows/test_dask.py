"""The Dask runner: a refresh on a 2-worker ``LocalCluster`` of processes lands exactly
the lake the thread runner lands, on local disk and on S3 (moto).

Tasks travel to the worker processes pickled, and their results come back the same way,
so what crosses is checked too: small frozen values, never Arrow data.
"""

from __future__ import annotations

import os
import pickle
from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from prefect.task_runners import ThreadPoolTaskRunner

from rune_io.lake import Catalog, Lake, open_lake
from rune_io.pipeline import ChunkResult, EventsSource, StreamSource, WorkUnit
from rune_io.pipeline.plan import Chunk, Window
from rune_lake.flows import runners
from rune_lake.flows.refresh import refresh
from tests.flows.conftest import emulator
from tests.lake.conftest import BUCKET, moto_endpoint, s3_env  # noqa: F401 - fixtures

#: light streams (1/5 s .. 1/10 min) and events: the lake has every kind of table
CATEGORIES = ["vitals", "neural", "symptom"]
COHORT = {"patients": 2, "days": 2}


# -- what crosses process boundaries ----------------------------------------------------


def test_task_values_are_small_and_pickle(tmp_path):
    with emulator(patients=1, days=1) as emu:
        from rune_io.api.client import RuneClient
        from rune_io.config import load_settings

        with RuneClient(load_settings()) as client:
            stream = client.graph.streams(patient_id=emu.cohort.patients[0].id)[0]
    t0 = datetime(2026, 10, 31, tzinfo=UTC)
    w = Window(stream.id, t0, t0.replace(day=1, month=11))
    chunk = Chunk(StreamSource(stream), (w,))
    events = Chunk(EventsSource(stream.patient_id, stream.min_time, stream.max_time), (w,))
    unit = WorkUnit((chunk, events))
    result = ChunkResult(chunk.source, landed=[w], rows=17_280)
    for value in (stream, chunk, unit, result):
        blob = pickle.dumps(value)
        assert pickle.loads(blob) == value
        assert len(blob) < 4096, (type(value).__name__, len(blob))


def test_runner_choice_from_the_environment(monkeypatch):
    monkeypatch.setenv("RUNE_LAKE_TASK_RUNNER", "dask")
    monkeypatch.setenv("RUNE_LAKE_WORKERS", "3")
    monkeypatch.delenv("RUNE_LAKE_DASK_ADDRESS", raising=False)
    r = runners.make_task_runner()
    assert type(r).__name__ == "RuneDaskTaskRunner"
    assert r.cluster_kwargs["n_workers"] == 3 and r.cluster_kwargs["processes"] is True
    monkeypatch.setenv("RUNE_LAKE_DASK_ADDRESS", "tcp://10.0.0.1:8786")
    assert runners.make_task_runner().address == "tcp://10.0.0.1:8786"
    monkeypatch.setenv("RUNE_LAKE_TASK_RUNNER", "threads")
    assert isinstance(runners.make_task_runner(), ThreadPoolTaskRunner)
    monkeypatch.setenv("RUNE_LAKE_TASK_RUNNER", "ray")
    with pytest.raises(ValueError, match="threads' or 'dask"):
        runners.make_task_runner()


def test_dask_runner_refuses_to_start_without_a_prefect_api():
    from prefect.settings import PREFECT_API_URL, temporary_settings

    r = runners.dask_task_runner(n_workers=1)
    with temporary_settings(updates={PREFECT_API_URL: None}):
        with pytest.raises(runners.DaskNeedsPrefectAPI, match="PREFECT_API_URL"):
            r.client  # noqa: B018 - the property starts the cluster


def test_the_temporary_server_for_dask_tells_its_ui_where_its_api_is(monkeypatch):
    """A server off port 4200 needs PREFECT_UI_API_URL, or its UI calls :4200."""
    import urllib.parse
    import urllib.request

    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_UI_API_URL", raising=False)
    with temporary_settings(updates={PREFECT_API_URL: None}):
        with runners.prefect_api_for_dask() as (url, started):
            # the port, not a prefix of the URL: 42009 is off 4200 (seen failing here)
            assert started and urllib.parse.urlsplit(url).port != 4200
            assert os.environ["PREFECT_UI_API_URL"] == url == os.environ["PREFECT_API_URL"]
            with urllib.request.urlopen(f"{url}/health", timeout=5) as r:
                assert r.status == 200
    assert "PREFECT_UI_API_URL" not in os.environ and "PREFECT_API_URL" not in os.environ


# -- same lake, threads vs Dask processes ------------------------------------------------


def _data_files(lake: Lake) -> set[str]:
    return {
        lake.rel(p)
        for p in lake.fs.find(lake.root)
        if p.endswith(".parquet") and "/_catalog/" not in p and "/_staging/" not in p
    }


def _table(lake: Lake, paths: list[str]) -> pa.Table:
    parts = [pq.read_table(lake.path(p), filesystem=lake.fs) for p in sorted(paths)]
    return pa.concat_tables(parts, promote_options="default")


def assert_same_lake(a: Lake, b: Lake) -> None:
    """Same files (paths, rows, time spans), watermarks and rows, table by table."""
    keep = ("table", "stream_id", "partition", "rows", "min_time", "max_time")
    fa = {r["path"]: {k: r[k] for k in keep} for r in Catalog(a).files().to_pylist()}
    fb = {r["path"]: {k: r[k] for k in keep} for r in Catalog(b).files().to_pylist()}
    assert fa and fa == fb
    assert _data_files(a) == set(fa) == _data_files(b)
    assert Catalog(a).watermarks() == Catalog(b).watermarks()
    con = duckdb.connect()
    for table in sorted({f["table"] for f in fa.values()}):
        paths = [p for p, f in fa.items() if f["table"] == table]
        con.register("ta", _table(a, paths))
        con.register("tb", _table(b, paths))
        n_a, n_b = (con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in ("ta", "tb"))
        assert n_a == n_b == sum(fa[p]["rows"] for p in paths) > 0, table
        for x, y in (("ta", "tb"), ("tb", "ta")):
            diff = con.execute(f"SELECT count(*) FROM (FROM {x} EXCEPT ALL FROM {y})").fetchall()[
                0
            ][0]
            assert diff == 0, f"{table}: {diff} rows of {x} missing from {y}"
        con.unregister("ta")
        con.unregister("tb")


def assert_same_totals(got, want) -> None:
    """Same rows and files per table; bytes differ only by each file's footer (run id,
    write time)."""
    assert got.tables.keys() == want.tables.keys()
    for name, w in want.tables.items():
        g = got.tables[name]
        assert (g["rows"], g["files"]) == (w["rows"], w["files"]), name
        assert abs(g["bytes"] - w["bytes"]) <= 64 * w["files"], name


def _refresh(lake: str, task_runner):
    rep = refresh.with_options(task_runner=task_runner)(lake=lake, categories=CATEGORIES)
    assert rep.ok and rep.rows > 0 and rep.chunks > 2
    return rep


@pytest.mark.slow
def test_dask_local_cluster_lands_the_thread_runners_lake(tmp_path):
    with emulator(**COHORT):
        want = _refresh(str(tmp_path / "threads"), ThreadPoolTaskRunner(max_workers=2))
        got = _refresh(str(tmp_path / "dask"), runners.dask_task_runner(n_workers=2))
    assert_same_totals(got, want)
    assert_same_lake(open_lake(str(tmp_path / "threads")), open_lake(str(tmp_path / "dask")))


@pytest.mark.slow
def test_dask_cluster_by_address_on_s3_lands_the_thread_runners_lake(s3_env):  # noqa: F811
    from distributed import Client, LocalCluster

    def lakes_opened() -> list[str]:
        from rune_lake.tasks import runtime

        return sorted(key.split("\n", 1)[0] for key in runtime._lakes)  # their URLs

    threads_url, dask_url = f"s3://{BUCKET}/threads", f"s3://{BUCKET}/dask"
    with emulator(**COHORT):
        # workers spawned now inherit this process's RUNE_* and AWS_* environment
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
            ) as cluster,
            Client(cluster, set_as_default=False) as client,
        ):
            want = _refresh(threads_url, ThreadPoolTaskRunner(max_workers=2))
            got = _refresh(dask_url, runners.dask_task_runner(address=cluster.scheduler_address))
            opened = client.run(lakes_opened)
            pids = client.run(os.getpid)
    assert_same_totals(got, want)
    # the chunks ran in the two worker processes, not in this one
    assert len(opened) == 2 and os.getpid() not in pids.values()
    assert any(dask_url in lakes for lakes in opened.values())
    assert_same_lake(open_lake(threads_url), open_lake(dask_url))
