"""prefect.yaml end to end: a real server, ``prefect deploy --all``, a process worker,
runs created through the API as the UI's Custom Run creates them, the lake checked."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from uuid import UUID

import duckdb
import pytest
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId, FlowRunFilter
from prefect.client.schemas.objects import FlowRun

from rune_io.api.arrow_schema import time_key
from rune_io.lake import Catalog, open_lake, table_name
from rune_io.pipeline import lake_partitioning
from tests.deployments.conftest import API_LIMIT, CREDENTIALS_BLOCK, TODAY, Stack
from tests.truth import category, client_meta

pytestmark = pytest.mark.slow

RUN_TIMEOUT = 150
US = timedelta(microseconds=1)


def day(offset: int) -> str:
    return (TODAY + timedelta(days=offset)).date().isoformat()


def custom_run(stack: Stack, deployment: str, parameters: dict) -> UUID:
    """What the UI's Run > Custom run does: POST the form's JSON to the deployment."""
    with SyncPrefectClient(stack.api_url) as client:
        dep = client.read_deployment_by_name(deployment)
        return client.create_flow_run_from_deployment(dep.id, parameters=parameters).id


def wait_final(stack: Stack, flow_run_id: UUID, timeout: float = RUN_TIMEOUT) -> FlowRun:
    deadline = time.monotonic() + timeout
    with SyncPrefectClient(stack.api_url) as client:
        while True:
            run = client.read_flow_run(flow_run_id)
            if run.state and run.state.is_final():
                return run
            if time.monotonic() > deadline:
                pytest.fail(
                    f"flow run {run.name} still {run.state and run.state.name} after "
                    f"{timeout}s; worker log:\n{stack.log_tail('worker')}"
                )
            time.sleep(0.5)


def lake_count(stack: Stack, stream, start: str | None = None, end: str | None = None) -> int:
    where = f"stream_id = '{stream.id}'"
    if start:  # on the stream's key time: `time`, or a span's `start_time_min`
        key = time_key(stream.stream_type)
        where += (
            f" AND {key} >= TIMESTAMPTZ '{start} 00:00:00+00'"
            f" AND {key} < TIMESTAMPTZ '{end} 00:00:00+00'"
        )
    files = stack.lake / table_name(stream) / f"patient=p-{stream.patient_id}"
    if not files.exists():
        return 0
    return duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{files}/**/*.parquet', hive_partitioning=false, "
        f"union_by_name=true) WHERE {where}"
    ).fetchall()[0][0]


def streams_of(emu, patient_id: str, *categories: str) -> list:
    return [
        client_meta(s)
        for s in emu.cohort.streams
        if s.patient_id == patient_id and category(s) in categories
    ]


def test_deployments_are_registered_as_in_prefect_yaml(stack):
    with SyncPrefectClient(stack.api_url) as client:
        nightly = client.read_deployment_by_name("refresh/nightly-refresh")
        backfill = client.read_deployment_by_name("backfill/backfill")
        fanout = client.read_deployment_by_name("cohort-fanout/cohort-fanout")
        group = client.read_deployment_by_name("refresh/refresh-group")
        limits = {gcl.name for gcl in client.read_global_concurrency_limits(limit=50, offset=0)}
    assert API_LIMIT in limits
    assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in nightly.schedules] == [
        ("30 2 * * *", "UTC", True)
    ]
    assert backfill.schedules == [] and backfill.enforce_parameter_schema
    form = backfill.parameter_openapi_schema["properties"]  # what the Custom run form shows
    assert form["credentials_block"]["title"] == "Credentials block"
    assert form["credentials_block"]["type"] == "string" and "anyOf" not in form["api_limit"]
    assert all(p.get("description") for p in form.values())
    assert backfill.global_concurrency_limit.limit == 2
    assert backfill.concurrency_options.collision_strategy == "ENQUEUE"
    assert [s.active for s in fanout.schedules] == [False]
    for dep in (nightly, backfill, fanout, group):
        # the limit process-pool.sh creates caps the API readers of every deployment
        assert dep.parameters["api_limit"] == API_LIMIT
    for dep in (nightly, backfill, fanout):
        assert dep.work_pool_name == "rune-lake-process"
        assert "RUNE_ACCESS_TOKEN_SECRET" not in str(dep.job_variables)
        assert "secret" not in str(dep.parameters).lower()


def test_the_scheduler_gives_nightly_refresh_its_runs_at_0230_utc(stack):
    """The server's own scheduler (not switched off) creates the cron's runs: with a
    SQLAlchemy it cannot work with, it raises every loop and no run ever appears."""
    with SyncPrefectClient(stack.api_url) as client:
        nightly = client.read_deployment_by_name("refresh/nightly-refresh")
        ids = DeploymentFilter(id=DeploymentFilterId(any_=[nightly.id]))
        deadline = time.monotonic() + 90
        while True:
            runs = client.read_flow_runs(deployment_filter=ids, flow_run_filter=FlowRunFilter())
            scheduled = [r for r in runs if r.state and r.state.is_scheduled()]
            if scheduled or time.monotonic() > deadline:
                break
            time.sleep(1)
    assert scheduled, f"no scheduled run of nightly-refresh after 90 s:\n{stack.log_tail('server')}"
    times = sorted(r.expected_start_time.astimezone(UTC) for r in scheduled)
    assert all((t.hour, t.minute, t.second) == (2, 30, 0) for t in times), times
    assert times[0] > datetime.now(UTC) and times[0] - datetime.now(UTC) <= timedelta(days=1)
    assert all(r.parameters.get("lookback_days") == 1 for r in scheduled)


def test_custom_run_of_backfill_lands_the_range_in_the_lake(stack):
    emu = stack.emu
    patient = sorted(p.id for p in emu.cohort.patients)[0]
    start, end = day(-3), day(-1)
    run_id = custom_run(
        stack,
        "backfill/backfill",
        {
            "range": {
                "start": start,
                "end": end,
                "patients": [patient],
                "categories": ["neural", "vitals"],
                "include_events": False,
            },
            "credentials_block": CREDENTIALS_BLOCK,
            "api_limit": API_LIMIT,
        },
    )
    run = wait_final(stack, run_id)
    assert run.state.is_completed(), f"{run.state}\n{stack.log_tail('worker')}"

    lo, hi = TODAY - timedelta(days=3), TODAY - timedelta(days=1)
    total = 0
    for s in streams_of(emu, patient, "neural", "vitals"):
        # partitions the range touches are loaded whole (a day, or a month for slow streams)
        first, last = lake_partitioning(s, lo)[0], lake_partitioning(s, hi - US)[1]
        want = emu.expected_table(s.id, first, min(last, TODAY))
        assert lake_count(stack, s) == want.num_rows, s.id
        in_range = emu.expected_table(s.id, lo, hi).num_rows
        assert lake_count(stack, s, start, end) == in_range, s.id
        total += in_range
    assert total > 0
    other = next(p.id for p in emu.cohort.patients if p.id != patient)
    assert all(lake_count(stack, s) == 0 for s in streams_of(emu, other, "neural", "vitals"))

    runs = Catalog(open_lake(str(stack.lake))).runs().to_pylist()
    mine = [
        r for r in runs if r["run_id"].startswith("backfill-") and str(run_id)[:8] in r["run_id"]
    ]
    assert [r["status"] for r in mine] == ["completed"], runs


def test_custom_run_with_end_before_start_fails_with_the_reason_and_fetches_nothing(stack):
    stack.emu.stats.reset()
    run_id = custom_run(stack, "backfill/backfill", {"range": {"start": day(-1), "end": day(-3)}})
    run = wait_final(stack, run_id)
    assert run.state.is_failed()
    assert "must be after start" in (run.state.message or ""), run.state.message
    assert stack.emu.stats.log == []  # failed before any request, data or metadata


def test_cohort_fanout_starts_one_refresh_group_run_per_group(stack):
    emu = stack.emu
    run_id = custom_run(
        stack,
        "cohort-fanout/cohort-fanout",
        {
            "group_by": "patients",
            "group_size": 1,
            "deployment": "refresh/refresh-group",
            "parameters": {"categories": ["neural"], "include_events": False},
            "credentials_block": CREDENTIALS_BLOCK,
            "api_limit": API_LIMIT,
            "poll_seconds": 1,
        },
    )
    run = wait_final(stack, run_id, timeout=2 * RUN_TIMEOUT)
    assert run.state.is_completed(), f"{run.state}\n{stack.log_tail('worker')}"

    with SyncPrefectClient(stack.api_url) as client:
        target = client.read_deployment_by_name("refresh/refresh-group")
        children = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[target.id])),
            flow_run_filter=FlowRunFilter(),
        )
        parents = {client.read_task_run(c.parent_task_run_id).flow_run_id for c in children}
    assert len(children) == len(emu.cohort.patients) == 2
    assert parents == {run_id}  # subflows of the fan-out run
    assert all(c.state.is_completed() for c in children)
    groups = sorted(tuple(c.parameters["patients"]) for c in children)
    assert groups == sorted((p.id,) for p in emu.cohort.patients)  # one each, disjoint
    assert all(c.parameters["credentials_block"] == CREDENTIALS_BLOCK for c in children)

    total = 0
    for p in emu.cohort.patients:
        for s in streams_of(emu, p.id, "neural"):
            full = emu.expected_table(s.id, TODAY - timedelta(days=3), TODAY)
            assert lake_count(stack, s) == full.num_rows, s.id
            total += full.num_rows
    assert total > 0
