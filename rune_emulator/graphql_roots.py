"""Root resolvers of the GraphQL schema (nodes: :mod:`.graphql_resolvers`), and
:func:`attach`, which sets them on a schema built by :func:`.graphql_schema.build`."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLObjectType, GraphQLSchema

from .auth import Principal
from .graphql_resolvers import (
    MAX_STREAM_IDS,
    _ctx,
    _norm_patient,
    _page,
    cohort_node,
    error,
    org_node,
    patient_node,
    project_node,
    stream_node,
    stream_type_node,
    user_node,
)


# -- roots -----------------------------------------------------------------------
def _require_user(principal: Principal) -> None:
    if principal.is_client:
        raise error("forbidden: a client key reads one patient only", "FORBIDDEN")


def r_user(_, info):
    state, principal = _ctx(info)
    _require_user(principal)
    return user_node(state)


def r_org(_, info):
    state, principal = _ctx(info)
    _require_user(principal)
    return org_node(state, state.cohort.org(state.cohort.active_org_id))


def r_patient(_, info, id):
    state, principal = _ctx(info)
    pid = _norm_patient(id)
    if pid not in state.visible_patients(principal):
        raise error(f"patient not found: {id}", "NOT_FOUND")
    return patient_node(state, state.cohort.patient(pid))


def r_stream_list(_, info, filters=None, cursor=None):
    state, principal = _ctx(info)
    f = filters or {}
    visible = set(state.visible_patients(principal))
    pid = _norm_patient(f.get("patientId"))
    if principal.is_client and not pid:
        raise error("forbidden: a client key lists its own patient's streams only", "FORBIDDEN")
    if pid and pid not in visible:
        raise error(f"patient not found: {pid}", "NOT_FOUND")
    dev = f.get("deviceId")
    if dev:
        parts = dict(p.split("-", 1) for p in dev.split(",") if "-" in p)
        dev_pid, dev = parts.get("patient"), parts.get("device", dev)
        if dev_pid and pid and dev_pid != pid:
            return {"streams": [], "pageInfo": {"endCursor": None}}
    params = [(p["key"], p.get("value")) for p in (f.get("parameters") or [])]
    out = []
    for spec in state.cohort.specs.values():
        m = spec.meta
        if m.patient_id not in visible or (pid and m.patient_id != pid):
            continue
        if dev and m.device_id != dev:
            continue
        if f.get("streamTypeId") and m.stream_type.id != f["streamTypeId"]:
            continue
        if f.get("algorithm") and m.algorithm != f["algorithm"]:
            continue
        if any(m.params.get(k) != v for k, v in params):
            continue
        out.append(spec)
    items, page = _page(out, cursor, state.config.graph_page_size)
    return {"streams": [stream_node(state, s) for s in items], "pageInfo": page}


def r_stream_list_by_ids(_, info, streamIds=None):
    state, principal = _ctx(info)
    ids = streamIds or []
    if len(ids) > MAX_STREAM_IDS:
        raise error(f"at most {MAX_STREAM_IDS} stream ids per call", "BAD_REQUEST")
    visible = set(state.visible_patients(principal))
    specs = [state.cohort.specs.get(i) for i in ids]
    specs = [s for s in specs if s is not None and s.meta.patient_id in visible]
    return {"streams": [stream_node(state, s) for s in specs], "pageInfo": {"endCursor": None}}


def r_stream_type_list(_, info, cursor=None):
    state, _p = _ctx(info)
    items, page = _page(state.cohort.stream_types, cursor, 50)
    return {"streamTypes": [stream_type_node(t) for t in items], "pageInfo": page}


def r_project(_, info, id=None):
    state, principal = _ctx(info)
    _require_user(principal)
    p = state.cohort.project(id or "")
    if p is None:
        raise error(f"project not found: {id}", "NOT_FOUND")
    return project_node(state, p)


def r_cohort(_, info, id=None):
    state, principal = _ctx(info)
    _require_user(principal)
    for p in state.cohort.projects:
        for c in p.cohorts:
            if c.id == id:
                return cohort_node(state, c, p.org_id)
    raise error(f"cohort not found: {id}", "NOT_FOUND")


def r_update_default_membership(_, info, input):
    state, principal = _ctx(info)
    _require_user(principal)
    org = state.cohort.org(input["orgId"])
    if org is None:
        raise error(f"not a member of org {input['orgId']}", "NOT_FOUND")
    state.cohort.active_org_id = org.id
    return {"user": user_node(state)}


def attach(schema: GraphQLSchema) -> GraphQLSchema:
    """Set the root resolvers on a schema built by :func:`.graphql_schema.build`."""
    roots: dict[str, dict[str, Any]] = {
        "Query": {
            "user": r_user,
            "org": r_org,
            "patient": r_patient,
            "streamList": r_stream_list,
            "streamListByIds": r_stream_list_by_ids,
            "streamTypeList": r_stream_type_list,
            "project": r_project,
            "cohort": r_cohort,
        },
        "Mutation": {"updateDefaultMembership": r_update_default_membership},
    }
    for type_name, fields in roots.items():
        gtype = schema.type_map[type_name]
        assert isinstance(gtype, GraphQLObjectType), type_name
        for name, fn in fields.items():
            gtype.fields[name].resolve = fn
    return schema
