"""Splitting a cohort into disjoint groups of patients, one flow run each (the
``cohort-fanout`` flow), and the parameters each group's run gets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rune_io.errors import UsageError


@dataclass(frozen=True)
class Group:
    """Patients one child run loads, and how the UI labels them."""

    label: str
    patients: tuple[str, ...]


def patient_groups(patient_ids: Sequence[str], size: int) -> list[Group]:
    """Consecutive groups of at most ``size`` patients, in the given order."""
    if size < 1:
        raise UsageError(f"group_size must be >= 1, got {size}")
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
