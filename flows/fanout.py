"""``cohort-fanout``: split a cohort across flow runs of another deployment.

One flow run discovers the cohort's projects or patients, then starts one run of a
deployment (``refresh/refresh-group`` by default) per group with
:func:`prefect.deployments.run_deployment`. Each child is a subflow of this run in the UI,
runs wherever the deployment's work pool puts it (another process, another pod), and
waits its turn under the deployment's concurrency limit (collision strategy ENQUEUE), so
the limit, not this flow, decides how many groups load at once.

Groups are disjoint: every patient is loaded by exactly one child run, so two runs never
write the same partition.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.client.schemas.objects import FlowRun
from prefect.deployments import run_deployment

from rune_io import pipeline
from rune_io.errors import RuneIOError
from rune_lake.flows import params
from rune_lake.tasks import runtime

DEFAULT_TARGET = "refresh/refresh-group"


@dataclass(frozen=True)
class Group:
    """Patients one child run loads, and how the UI labels them."""

    label: str
    patients: tuple[str, ...]


class FanoutIncomplete(RuneIOError):
    """Some child runs did not complete; the others did."""

    def __init__(self, failed: list[dict[str, Any]]) -> None:
        self.failed = failed
        super().__init__(
            f"{len(failed)} child run(s) did not complete: "
            + "; ".join(f"{f['group']} -> {f['state']} ({f['flow_run_id']})" for f in failed)
        )


# -- plain logic -----------------------------------------------------------------------


def patient_groups(patient_ids: Sequence[str], size: int) -> list[Group]:
    """Consecutive groups of at most ``size`` patients, in the given order."""
    if size < 1:
        raise ValueError(f"group_size must be >= 1, got {size}")
    ids = list(dict.fromkeys(patient_ids))
    return [
        Group(f"patients {i + 1}-{min(i + size, len(ids))} of {len(ids)}", tuple(ids[i : i + size]))
        for i in range(0, len(ids), size)
    ]


def project_groups(
    projects: Iterable[tuple[str, Sequence[str]]], visible: Iterable[str]
) -> list[Group]:
    """One group per project with patients. A patient in several projects goes to the
    first that lists it; patients the credentials cannot see are left out."""
    allowed = set(visible)
    seen: set[str] = set()
    out = []
    for project_id, members in projects:
        mine = [p for p in dict.fromkeys(members) if p in allowed and p not in seen]
        seen.update(mine)
        if mine:
            out.append(Group(f"project {project_id}", tuple(mine)))
    return out


def child_parameters(base: Mapping[str, Any], patients: Sequence[str]) -> dict[str, Any]:
    """``base`` with the group's patients: in ``range`` for a backfill-shaped target,
    else as the ``patients`` parameter (refresh)."""
    params = dict(base)
    if isinstance(params.get("range"), Mapping):
        params["range"] = {**params["range"], "patients": list(patients)}
    else:
        params["patients"] = list(patients)
    return params


# -- tasks -----------------------------------------------------------------------------


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


def _wait(ids: list[Any], poll_seconds: float) -> dict[Any, Any]:
    """Poll until every flow run in ``ids`` is in a final state; their states by id."""
    with get_client(sync_client=True) as client:
        while True:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=ids))
            )
            states = {r.id: r.state for r in runs}
            if len(states) == len(ids) and all(s and s.is_final() for s in states.values()):
                return states
            time.sleep(poll_seconds)


# -- the flow --------------------------------------------------------------------------


# the form's fields (see flows/params.py)
GroupBy = Annotated[Literal["project", "patients"], params.title("Group by")]
GroupSize = Annotated[int, params.title("Group size")]
Deployment = Annotated[str, params.title("Deployment")]
ChildParameters = Annotated[dict[str, Any], params.title("Parameters")]
Wait = Annotated[bool, params.title("Wait")]
PollSeconds = Annotated[float, params.title("Poll seconds")]


@flow(name="cohort-fanout", validate_parameters=True)
def cohort_fanout(
    group_by: GroupBy = "project",
    group_size: GroupSize = 10,
    deployment: Deployment = DEFAULT_TARGET,
    parameters: ChildParameters = {},  # noqa: B006 - only read
    projects: params.Projects = [],  # noqa: B006 - only read
    cohorts: params.Cohorts = [],  # noqa: B006 - only read
    org_id: params.OrgId = "",
    credentials_block: params.CredentialsBlock = "",
    api_limit: params.ApiLimit = "",
    wait: Wait = True,
    poll_seconds: PollSeconds = 10.0,
) -> list[dict[str, Any]]:
    """Start one run of ``deployment`` per project or per ``group_size`` patients.

    Args:
        group_by: project (one child run per project) or patients (one per group_size
            patients of the selection, in id order).
        group_size: Patients per child run when group_by is patients.
        deployment: The target, <flow>/<deployment>; its concurrency limit caps how
            many children run at once.
        parameters: Parameters every child run gets (e.g. {"lookback_days": 1}, or a
            range for a backfill target); the group's patients are added.
        projects: Split only these projects' patients (ids; empty: the whole org).
        cohorts: Split only these cohorts' patients (ids; empty: the whole org).
        org_id: Make this org active first; passed on to every child run.
        credentials_block: Name of a Prefect Secret block holding Rune credentials, used
            here for discovery and passed on to every child run.
        api_limit: Name of a Prefect global concurrency limit capping concurrent API
            readers, passed on to every child run, e.g. rune-api.
        wait: Wait for every child and fail if one did not complete (else return as
            soon as they are all created).
        poll_seconds: How often to check the children while waiting, in seconds.
    """
    if group_by not in ("project", "patients"):
        raise ValueError(f"group_by must be 'project' or 'patients', got {group_by!r}")
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    log = get_run_logger()
    selection = pipeline.Selection(
        org_id=org_id or None, projects=tuple(projects or ()), cohorts=tuple(cohorts or ())
    )
    groups = discover_groups(group_by, group_size, selection, credentials_block or None)
    passed_on = {"org_id": org_id, "credentials_block": credentials_block, "api_limit": api_limit}
    base = {k: v for k, v in passed_on.items() if v} | dict(parameters or {})

    children = []
    for g in groups:
        run = run_deployment(
            deployment,
            parameters=child_parameters(base, g.patients),
            timeout=0,  # create them all now; the deployment's limit queues them
            tags=["rune-lake", "fanout"],
            as_subflow=True,
        )
        # prefect types run_deployment as value-or-coroutine; from sync code it is the run
        assert isinstance(run, FlowRun), run
        children.append({"group": g.label, "patients": len(g.patients), "flow_run_id": run.id})
        log.info("%s: %d patients -> %s run %s", g.label, len(g.patients), deployment, run.name)
    log.info("started %d run(s) of %s", len(children), deployment)
    if not wait or not children:
        return [c | {"flow_run_id": str(c["flow_run_id"]), "state": "Scheduled"} for c in children]

    states = _wait([c["flow_run_id"] for c in children], poll_seconds)
    rows = [
        c | {"flow_run_id": str(c["flow_run_id"]), "state": states[c["flow_run_id"]].name}
        for c in children
    ]
    create_table_artifact(
        table=rows,
        key="rune-lake-fanout-summary",
        description=f"**cohort-fanout** by {group_by}: {len(rows)} run(s) of {deployment}",
    )
    failed = [
        r
        for r, c in zip(rows, children, strict=True)
        if not states[c["flow_run_id"]].is_completed()
    ]
    if failed:
        raise FanoutIncomplete(failed)
    return rows
