"""GraphQL metadata API: every root field, aliases, cursor paging, filters, mutation."""

from __future__ import annotations

import re

import requests

from .conftest import CLIENT_HEADERS, USER_HEADERS, gql

STREAM_FIELDS = """
id created_at: createdAt algorithm device_id: deviceId patient_id: patientId
min_time: minTime max_time: maxTime parameters { key value }
streamType { id name description shape { dimensions {
  id: identifier data_type: dataType quantity_name: quantityName unit_name: unitName } } }
"""


def all_streams(emu, filters, headers=USER_HEADERS):
    q = f"""query($cursor: Cursor, $filters: StreamQueryFilters) {{
      streamList(filters: $filters, cursor: $cursor) {{ pageInfo {{ endCursor }} streams {{ {STREAM_FIELDS} }} }} }}"""
    cursor, out, pages = None, [], 0
    while True:
        body = gql(emu, q, {"filters": filters, "cursor": cursor}, headers)
        assert "errors" not in body, body
        lst = body["data"]["streamList"]
        out += lst["streams"]
        pages += 1
        cursor = lst["pageInfo"]["endCursor"]
        if cursor is None:
            return out, pages


def test_user_and_memberships_paging(emu):
    q = """query($cursor: Cursor) { user { id name: displayName email created_at: created
      defaultMembership { org { id name: displayName } }
      membershipList(cursor: $cursor) { pageInfo { endCursor } memberships { org { id tags: orgTags } } } } }"""
    body = gql(emu, q, {"cursor": None})["data"]["user"]
    assert body["id"] == emu.cohort.user_id and body["id"].endswith(",user")
    assert re.fullmatch(r"user-[0-9a-f]{40},user", body["id"])
    assert re.fullmatch(r"org-[0-9a-f]+,org", body["defaultMembership"]["org"]["id"])
    assert len(body["membershipList"]["memberships"]) == 1
    cursor = body["membershipList"]["pageInfo"]["endCursor"]
    assert cursor
    body2 = gql(emu, q, {"cursor": cursor})["data"]["user"]["membershipList"]
    assert body2["pageInfo"]["endCursor"] is None
    ids = {
        body["membershipList"]["memberships"][0]["org"]["id"],
        body2["memberships"][0]["org"]["id"],
    }
    assert ids == {f"{o.id},org" for o in emu.cohort.orgs}


def test_stream_list_filters_and_paging(emu):
    p = emu.cohort.patients[0]
    streams, pages = all_streams(emu, {"patientId": p.id})
    n = len(emu.cohort.streams_of(p.id))
    assert pages == -(-n // 8) and len(streams) == n == 37
    no_measurement = 0
    metas = {m.id: m for m in emu.streams}
    for s in streams:
        keys = {x["key"] for x in s["parameters"]}
        assert "category" in keys
        no_measurement += "measurement" not in keys
        assert s["device_id"].startswith(f"patient-{p.id},device-")
        assert s["min_time"] < s["max_time"]
        truth = metas[s["id"]]
        assert (s["min_time"], s["max_time"]) == (truth.min_time, truth.max_time)
    assert no_measurement >= 1
    watch = next(d for d in p.devices if d.alias == "Apple Watch")
    by_dev, _ = all_streams(
        emu, {"patientId": p.id, "deviceId": f"patient-{p.id},device-{watch.id}"}
    )
    assert len(by_dev) == 16 + 6 + 2  # symptom minutes, 50 Hz motion, recording reports
    neural, _ = all_streams(
        emu, {"patientId": p.id, "parameters": [{"key": "category", "value": "neural"}]}
    )
    assert {s["streamType"]["id"] for s in neural} == {
        "unitless-power",
        "voltage-spectrum",
        "boolean",
    }
    tremor = [{"key": "measurement", "value": "tremor"}]
    dur, _ = all_streams(
        emu,
        {"patientId": p.id, "streamTypeId": "duration", "algorithm": None, "parameters": tremor},
    )
    assert sorted(
        x["value"] for s in dur for x in s["parameters"] if x["key"] == "severity"
    ) == sorted(["all", "none", "slight", "mild", "moderate", "strong", "unknown"])
    md, _ = all_streams(
        emu, {"patientId": p.id, "algorithm": "ingest-strive-applewatch-md.0", "parameters": tremor}
    )
    assert len(md) == 14  # 7 severities as Duration and as Percentage
    everyone, _ = all_streams(emu, {})
    assert len(everyone) == 37 * 3


def test_stream_list_by_ids_and_types(emu):
    ids = [s.id for s in emu.cohort.streams[:3]]
    q = f"query($ids: [String]) {{ streamListByIds(streamIds: $ids) {{ pageInfo {{ endCursor }} streams {{ {STREAM_FIELDS} }} }} }}"
    got = gql(emu, q, {"ids": ids})["data"]["streamListByIds"]["streams"]
    assert [s["id"] for s in got] == ids
    too_many = gql(emu, q, {"ids": ids * 40})
    assert too_many["errors"]
    types = gql(
        emu,
        "{ streamTypeList { streamTypes { id shape { dimensions { identifier dataType } } } } }",
    )
    from rune_emulator.models import DATA_TYPES

    listed = types["data"]["streamTypeList"]["streamTypes"]
    assert len(listed) == 27
    for st in listed:
        for d in st["shape"]["dimensions"]:
            assert d["dataType"] in DATA_TYPES
    dims = {
        st["id"]: [(d["identifier"], d["dataType"]) for d in st["shape"]["dimensions"]]
        for st in listed
    }
    assert dims["span"] == [
        ("start_time_min", "timestamp"),
        ("start_time", "timestamp"),
        ("end_time", "timestamp"),
        ("end_time_max", "timestamp"),
        ("event", "dict"),
    ]
    assert dims["bytes"][0] == ("offset", "uint")
    assert dims["voltage-spectrum"] == [
        ("time", "timestamp"),
        ("frequency", "ufloat"),
        ("potential", "sfloat"),
    ]
    assert dims["event"] == [("time", "timestamp"), ("event", "dict")]
    assert dims["boolean"] == [("time", "timestamp"), ("bool", "bool")]
    assert dims["rotation"] == [("time", "timestamp"), ("rotation", "sfloat")]


def test_patient_devices_paging_and_short_ids(emu):
    p = emu.cohort.patients[0]
    q = """query($id: ID!, $cursor: Cursor) { patient(id: $id) { id codeName createdAt
      deviceList(cursor: $cursor) { pageInfo { endCursor } devices { id: deviceShortId alias deviceType { id } disabled } } } }"""
    cursor, devices = None, []
    while True:
        lst = gql(emu, q, {"id": p.id, "cursor": cursor})["data"]["patient"]["deviceList"]
        devices += lst["devices"]
        cursor = lst["pageInfo"]["endCursor"]
        if not cursor:
            break
    ids = [d["id"] for d in devices]
    assert len(ids) == 3 and any("_" in i for i in ids)
    assert any("#" in i or "*" in i for i in ids)
    assert {d["alias"] for d in devices} == {"Apple Watch", "Prod Strive PD App", "Percept PC"}
    missing = gql(emu, q, {"id": "f" * 32, "cursor": None})
    assert missing["errors"] and missing["data"]["patient"] is None


def test_org_patients_projects_cohorts(emu):
    q = """query($c: Cursor) { org { id patientAccessList(cursor: $c) { pageInfo { endCursor }
      patientAccess { patient { id } } } projectList { pageInfo { endCursor } projects { id title cohortList { cohorts { id title } } } } } }"""
    org = gql(emu, q)["data"]["org"]
    assert org["id"] == f"{emu.cohort.active_org_id},org"
    assert len(org["patientAccessList"]["patientAccess"]) == 3
    proj = org["projectList"]["projects"][0]
    q2 = """query($id: ID, $cursorInput: CursorInput) { project(id: $id) { id organizationId
      projectPatientList(cursorInput: $cursorInput) { projectPatients { patient { id patientAccessList {
      patientAccess { org { id } startTime endTime } } } codeName } pageInfo { codeNameEndCursor } } } }"""
    pp = gql(emu, q2, {"id": proj["id"]})["data"]["project"]
    assert pp["organizationId"] == emu.cohort.active_org_id  # short form: org-<x>
    first = pp["projectPatientList"]
    assert len(first["projectPatients"]) == 2
    cursor = first["pageInfo"]["codeNameEndCursor"]
    assert cursor == first["projectPatients"][-1]["codeName"]
    # the page cursor, as the schema declares it and as runeq 0.18.1 sends it
    for variables in (
        {"cursorInput": {"codeNameCursor": cursor}},
        {"cursor_input": {"codeNameCursor": cursor}},
    ):
        nxt = gql(emu, q2, {"id": proj["id"], **variables})["data"]["project"]["projectPatientList"]
        assert len(nxt["projectPatients"]) == 1 and nxt["pageInfo"]["codeNameEndCursor"] is None
        got = {x["patient"]["id"] for x in first["projectPatients"] + nxt["projectPatients"]}
        assert got == {p.id for p in emu.cohort.patients}
    q3 = """query($id: ID) { cohort(id: $id) { id organizationId cohortPatientList { cohortPatients { patient { id } } pageInfo { codeNameEndCursor } } } }"""
    sizes = [
        len(gql(emu, q3, {"id": c["id"]})["data"]["cohort"]["cohortPatientList"]["cohortPatients"])
        for c in proj["cohortList"]["cohorts"]
    ]
    assert sorted(sizes) == [1, 2]


def test_empty_event_list_is_null(emu):
    p = emu.cohort.patients[0]
    q = """query($pid: ID!, $s: Float!, $e: Float!) { patient(id: $pid) {
      eventList(startTime: $s, endTime: $e) { events { id } pageInfo { endCursor } } } }"""
    start = emu.cohort.data_start.timestamp()  # 00:00-01:00 UTC: no events at night
    body = gql(emu, q, {"pid": p.id, "s": start, "e": start + 3600})
    assert body["data"]["patient"]["eventList"] is None


def test_event_list(emu):
    p = emu.cohort.patients[1]
    q = """query($pid: ID!, $cursor: Cursor, $s: Float!, $e: Float!, $f: [EventClassificationFilter]) {
      patient(id: $pid) { eventList(startTime: $s, endTime: $e, cursor: $cursor, includeFilters: $f) {
      events { id display_name: displayName duration { startTime endTime endTimeMax } payload
      classification { namespace category enum } tags { name } method } pageInfo { endCursor } } } }"""
    start = emu.cohort.data_start.timestamp()
    end = emu.config.now.timestamp()
    cursor, events = None, []
    while True:
        lst = gql(emu, q, {"pid": p.id, "cursor": cursor, "s": start, "e": end})["data"]["patient"][
            "eventList"
        ]
        events += lst["events"]
        cursor = lst["pageInfo"]["endCursor"]
        if not cursor:
            break
    assert [e["id"] for e in events] == [e.id for e in emu.cohort.events(p.id)]
    f = [{"namespace": "device", "category": "medication", "enum": "*"}]
    meds = gql(emu, q, {"pid": p.id, "cursor": None, "s": start, "e": end, "f": f})
    assert all(
        e["classification"]["category"] == "medication"
        for e in meds["data"]["patient"]["eventList"]["events"]
    )
    too_long = gql(emu, q, {"pid": p.id, "cursor": None, "s": start - 100 * 86400, "e": end})
    assert too_long["errors"]


def test_set_active_org_mutation(fresh_emu):
    emu = fresh_emu
    other = emu.cohort.orgs[1]
    m = """mutation updateDefaultMembership($input: UpdateDefaultMembershipInput!) {
      updateDefaultMembership(input: $input) { user { defaultMembership { org { id name: displayName } } } } }"""
    body = gql(emu, m, {"input": {"orgId": other.id.removeprefix("org-")}})
    assert (
        body["data"]["updateDefaultMembership"]["user"]["defaultMembership"]["org"]["id"]
        == f"{other.id},org"
    )
    pal = gql(emu, "{ org { patientAccessList { patientAccess { patient { id } } } } }")
    ids = [x["patient"]["id"] for x in pal["data"]["org"]["patientAccessList"]["patientAccess"]]
    assert ids == emu.cohort.org_patients[other.id] and len(ids) == 1
    assert gql(emu, m, {"input": {"orgId": "org-nope"}})["errors"]


def test_graphql_auth_and_bad_body(emu):
    r = requests.post(f"{emu.url}/graphql", json={"query": "{ user { id } }"}, timeout=10)
    assert r.status_code == 401 and r.json()["success"] is False
    r = requests.post(f"{emu.url}/graphql", data=b"nope", headers=USER_HEADERS, timeout=10)
    assert r.status_code == 400
    for root in ("{ user { id } }", "{ org { id } }", '{ project(id: "x") { id } }'):
        body = gql(emu, root, headers=CLIENT_HEADERS)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    own = emu.cohort.client_key_patient_id
    body = gql(
        emu, "query($id: ID!) { patient(id: $id) { id } }", {"id": own}, headers=CLIENT_HEADERS
    )
    assert body["data"]["patient"]["id"] == own
    other = emu.cohort.patients[1].id
    body = gql(
        emu, "query($id: ID!) { patient(id: $id) { id } }", {"id": other}, headers=CLIENT_HEADERS
    )
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    q = "query($f: StreamQueryFilters) { streamList(filters: $f) { streams { id } } }"
    own_streams = gql(emu, q, {"f": {"patientId": own}}, headers=CLIENT_HEADERS)
    assert len(own_streams["data"]["streamList"]["streams"]) == 8  # first page
    other_streams = gql(emu, q, {"f": {"patientId": other}}, headers=CLIENT_HEADERS)
    assert other_streams["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    syntax = gql(emu, "{ user { id ")
    assert syntax["errors"]
