"""The Prefect UI's Custom run form for every deployed flow, from the parameter schema
Prefect generates (what ``prefect deploy`` uploads): every parameter has a sentence-case
title and a description, and optional text renders as a plain input (no `null` switch)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prefect.flows import load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema

REPO = Path(__file__).resolve().parents[2]


def deployed_entrypoints() -> list[str]:
    spec = yaml.safe_load((REPO / "prefect.yaml").read_text())
    return sorted({d["entrypoint"] for d in spec["deployments"]})


def schema_of(entrypoint: str) -> dict:
    """The schema ``prefect deploy`` uploads for ``entrypoint`` (see its ``_core.py``)."""
    path, _, fn = entrypoint.partition(":")
    flow = load_flow_from_entrypoint(f"{REPO / path}:{fn}")
    return parameter_schema(flow).model_dump_for_openapi()


def _sentence_case(title: str, name: str) -> bool:
    words = title.split()
    return (
        title != name
        and words[0][0].isupper()
        and all(w.islower() or w.isupper() for w in words[1:])  # "API limit", "Org id"
    )


@pytest.mark.parametrize("entrypoint", deployed_entrypoints())
def test_every_parameter_has_a_title_a_description_and_a_plain_input(entrypoint):
    schema = schema_of(entrypoint)
    assert schema["properties"]
    for name, prop in schema["properties"].items():
        assert _sentence_case(prop.get("title", ""), name), (entrypoint, name, prop.get("title"))
        assert len(prop.get("description") or "") > 10, (entrypoint, name)
        if prop.get("type") == "string" or "anyOf" in prop:
            assert "anyOf" not in prop, (entrypoint, name, prop)  # a `str | None` switch
    for model in schema.get("definitions", {}).values():
        for name, prop in model["properties"].items():
            assert _sentence_case(prop["title"], name) and prop.get("description"), name
            assert "anyOf" not in prop, (name, prop)


def test_backfill_form_lists_the_selection_fields_of_refresh():
    backfill = schema_of("flows/backfill.py:backfill")
    refresh = schema_of("flows/refresh.py:refresh")
    range_fields = set(backfill["definitions"]["BackfillRange"]["properties"])
    selection = {
        "projects",
        "cohorts",
        "patients",
        "categories",
        "measurements",
        "device_types",
        "stream_ids",
        "org_id",
        "include_events",
    }
    assert selection <= range_fields and selection <= set(refresh["properties"])
    assert backfill["properties"]["credentials_block"]["title"] == "Credentials block"
    assert backfill["properties"]["api_limit"]["default"] == ""
