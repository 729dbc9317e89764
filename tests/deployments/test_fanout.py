"""cohort-fanout's plain logic: groups are disjoint, parameters land where the target wants."""

from __future__ import annotations

import pytest

from rune_io.pipeline.groups import Group, child_parameters, patient_groups, project_groups


def test_patient_groups_cover_everyone_once_in_order():
    groups = patient_groups(["a", "b", "c", "b", "d", "e"], 2)
    assert [g.patients for g in groups] == [("a", "b"), ("c", "d"), ("e",)]
    assert groups[0].label == "patients 1-2 of 5" and groups[-1].label == "patients 5-5 of 5"
    assert patient_groups([], 3) == []
    with pytest.raises(ValueError, match="group_size"):
        patient_groups(["a"], 0)


def test_project_groups_are_disjoint_and_skip_invisible_patients():
    groups = project_groups(
        [("p1", ["a", "b"]), ("p2", ["b", "c", "x"]), ("p3", ["a"])], visible=["a", "b", "c"]
    )
    assert groups == [Group("project p1", ("a", "b")), Group("project p2", ("c",))]


def test_child_parameters_for_refresh_and_backfill_targets():
    base = {"lookback_days": 1, "credentials_block": "rune-credentials"}
    assert child_parameters(base, ["a"]) == base | {"patients": ["a"]}
    rng = {"range": {"start": "2026-10-01", "end": "2026-10-08", "patients": ["zz"]}}
    assert child_parameters(rng, ("a", "b"))["range"] == {
        "start": "2026-10-01",
        "end": "2026-10-08",
        "patients": ["a", "b"],
    }
    assert rng["range"]["patients"] == ["zz"]  # the caller's dict is untouched
