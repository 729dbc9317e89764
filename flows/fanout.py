"""``cohort-fanout``: split a cohort across flow runs of another deployment.

One flow run discovers the cohort's projects or patients, then starts one run of a
deployment (``refresh/refresh-group`` by default) per group with
:func:`prefect.deployments.run_deployment`. Each child is a subflow of this run in the UI,
runs wherever the deployment's work pool puts it (another process, another pod), and
waits its turn under the deployment's concurrency limit (collision strategy ENQUEUE), so
the limit, not this flow, decides how many groups load at once.

Groups are disjoint (:mod:`rune_io.pipeline.groups`): every patient is loaded by exactly
one child run, so two runs never write the same partition. The tasks are in
:mod:`rune_lake.tasks.fanout`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from prefect import flow

from rune_io import pipeline
from rune_io.errors import RuneIOError
from rune_lake.flows import params
from rune_lake.tasks.fanout import discover_groups, start_runs, wait_for_runs

DEFAULT_TARGET = "refresh/refresh-group"


class FanoutIncomplete(RuneIOError):
    """Some child runs did not complete; the others did."""

    def __init__(self, failed: list[dict[str, Any]]) -> None:
        self.failed = failed
        super().__init__(
            f"{len(failed)} child run(s) did not complete: "
            + "; ".join(f"{f['group']} -> {f['state']} ({f['flow_run_id']})" for f in failed)
        )


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
    selection = pipeline.Selection(
        org_id=org_id or None, projects=tuple(projects or ()), cohorts=tuple(cohorts or ())
    )
    groups = discover_groups(group_by, group_size, selection, credentials_block or None)
    passed_on = {"org_id": org_id, "credentials_block": credentials_block, "api_limit": api_limit}
    base = {k: v for k, v in passed_on.items() if v} | dict(parameters or {})
    children = start_runs(deployment, groups, base)
    if not wait or not children:
        return [c | {"flow_run_id": str(c["flow_run_id"]), "state": "Scheduled"} for c in children]
    rows, failed = wait_for_runs(
        children,
        poll_seconds,
        f"**cohort-fanout** by {group_by}: {len(children)} run(s) of {deployment}",
    )
    if failed:
        raise FanoutIncomplete(failed)
    return rows
