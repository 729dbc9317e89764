"""Prefect tasks of ``cohort-fanout``: discover the groups, start one run of a
deployment per group, wait for them."""

from __future__ import annotations

import time
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from rune_io import pipeline
from rune_io.pipeline.groups import Group, child_parameters, patient_groups, project_groups
from rune_lake.tasks import runtime


@task(name="discover-groups", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=5)
def discover_groups(
    group_by: str,
    group_size: int,
    selection: pipeline.Selection,
    credentials_block: str | None,
) -> list[Group]:
    """Projects (with their patients) or patients of the selection, grouped."""
    graph = runtime.client(credentials_block).graph
    patients = pipeline.select_patients(graph, selection)  # sets the active org if asked
    if group_by == "patients":
        return patient_groups([p.id for p in patients], group_size)
    wanted = set(selection.projects)
    projects = [p for p in graph.projects() if not wanted or p.id in wanted]
    missing = wanted - {p.id for p in projects}
    if missing:
        raise ValueError(f"unknown project id(s) {sorted(missing)} in the active org")
    return project_groups(
        ((p.id, [m.id for m in graph.project_patients(p.id)]) for p in projects),
        [p.id for p in patients],
    )


@task(name="start-runs", cache_policy=NO_CACHE)
def start_runs(deployment: str, groups: list[Group], base: dict[str, Any]) -> list[dict[str, Any]]:
    """One run of ``deployment`` per group, created now (the deployment's concurrency
    limit queues them), each a subflow of this run."""
    log = get_run_logger()
    children = []
    for g in groups:
        run = run_deployment(
            deployment,
            parameters=child_parameters(base, g.patients),
            timeout=0,
            tags=["rune-lake", "fanout"],
            as_subflow=True,
        )
        # prefect types run_deployment as value-or-coroutine; from sync code it is the run
        assert isinstance(run, FlowRun), run
        children.append({"group": g.label, "patients": len(g.patients), "flow_run_id": run.id})
        log.info("%s: %d patients -> %s run %s", g.label, len(g.patients), deployment, run.name)
    log.info("started %d run(s) of %s", len(children), deployment)
    return children


@task(name="wait-for-runs", cache_policy=NO_CACHE)
def wait_for_runs(
    children: list[dict[str, Any]], poll_seconds: float, description: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Poll until every child run is in a final state; write the summary table. Returns
    every child's row and those that did not complete."""
    ids = [c["flow_run_id"] for c in children]
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids))
            )
            found = {r.id: r.state for r in runs}
            if len(found) == len(ids) and all(s and s.is_final() for s in found.values()):
                states = {k: s for k, s in found.items() if s is not None}
                break
            time.sleep(poll_seconds)
    rows = [
        c | {"flow_run_id": str(c["flow_run_id"]), "state": states[c["flow_run_id"]].name}
        for c in children
    ]
    create_table_artifact(table=rows, key="rune-lake-fanout-summary", description=description)
    failed = [
        r
        for r, c in zip(rows, children, strict=True)
        if not states[c["flow_run_id"]].is_completed()
    ]
    return rows, failed
