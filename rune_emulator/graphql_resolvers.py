"""Resolvers for :mod:`.graphql_schema`, over the synthetic cohort.

Nodes are plain dicts; a field with arguments is a callable ``(info, **args)``, which
graphql-core's default resolver calls. Every list is cursor-paginated; the last page
has a null ``endCursor``. Project/cohort patient lists page by ``codeNameEndCursor``
(``patient_page_size`` a page); the cursor is read from the ``cursorInput`` argument,
or from a ``cursor_input`` request variable (runeq 0.18.1 sends its variable under that
name while its query declares ``$cursorInput``). Errors carry ``extensions.code``.
"""

from __future__ import annotations

import base64

from graphql import GraphQLError, GraphQLResolveInfo

from .auth import Principal
from .cohort import StreamSpec
from .models import Device, Event, Org, Patient, Project, StreamType
from .state import EmulatorState

MAX_EVENT_SPAN_S = 90 * 86_400
MAX_STREAM_IDS = 100


def _ctx(info: GraphQLResolveInfo) -> tuple[EmulatorState, Principal]:
    return info.context["state"], info.context["principal"]


def error(message: str, code: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def gql_org_id(org: Org) -> str:
    """GraphQL form of an org id: ``org-<x>,org`` (a project's ``organizationId``: ``org-<x>``)."""
    return f"{org.id},org"


def _page(items: list, cursor: str | None, size: int) -> tuple[list, dict]:
    start = 0
    if cursor:
        try:
            start = int(base64.b64decode(cursor).decode().split(":", 1)[1])
        except (ValueError, IndexError):
            raise error(f"invalid cursor {cursor!r}", "BAD_REQUEST") from None
    end = start + size
    nxt = base64.b64encode(f"offset:{end}".encode()).decode() if end < len(items) else None
    return items[start:end], {"endCursor": nxt, "codeNameEndCursor": None}


def _norm_patient(pid: str | None) -> str | None:
    if pid and pid.startswith("patient-"):
        pid = pid[len("patient-") :]
    return pid


# -- nodes ---------------------------------------------------------------------
def org_node(state: EmulatorState, org: Org) -> dict:
    def patient_access_list(info, cursor=None):
        pids = state.cohort.org_patients[org.id]
        items, page = _page(pids, cursor, state.config.graph_page_size)
        return {
            "patientAccess": [access_node(state, pid, org.id) for pid in items],
            "pageInfo": page,
        }

    def project_list(info, cursor=None):
        projects = [p for p in state.cohort.projects if p.org_id == org.id]
        items, page = _page(projects, cursor, state.config.graph_page_size)
        return {"projects": [project_node(state, p) for p in items], "pageInfo": page}

    return {
        "id": gql_org_id(org),
        "displayName": org.name,
        "created": org.created_at,
        "orgTags": list(org.tags),
        "patientAccessList": patient_access_list,
        "projectList": project_list,
    }


def access_node(state: EmulatorState, pid: str, org_id: str) -> dict:
    org = state.cohort.existing_org(org_id)
    patient = state.cohort.existing_patient(pid)
    return {
        "patient": lambda info: patient_node(state, patient),
        "org": lambda info: org_node(state, org),
        "startTime": patient.created_at,
        "endTime": None,
    }


def device_node(d: Device) -> dict:
    return {
        "id": f"patient-{d.patient_id},device-{d.id}",
        "deviceShortId": d.id,
        "alias": d.alias,
        "createdAt": d.created_at,
        "updatedAt": d.created_at,
        "disabled": d.disabled,
        "disabledAt": None,
        "deviceType": {"id": d.device_type_id, "displayName": d.alias},
    }


def event_node(e: Event) -> dict:
    start = e.start_time.timestamp()
    end = e.end_time.timestamp() if e.end_time else None
    return {
        "id": e.id,
        "displayName": e.display_name,
        "customDetail": None,
        "duration": {"startTime": start, "endTime": end, "endTimeMax": None},
        "payload": e.payload,
        "classification": {"namespace": e.namespace, "category": e.category, "enum": e.enum},
        "tags": [{"name": t} for t in e.tags],
        "method": e.method,
        "createdAt": start + 60,
        "updatedAt": start + 60,
    }


def _filter_match(e: Event, f: dict) -> bool:
    for key in ("namespace", "category", "enum"):
        want = f.get(key)
        if want not in (None, "", "*") and getattr(e, key) != want:
            return False
    return True


def patient_node(state: EmulatorState, p: Patient) -> dict:
    def device_list(info, cursor=None):
        items, page = _page(list(p.devices), cursor, state.config.device_page_size)
        return {"devices": [device_node(d) for d in items], "pageInfo": page}

    def event_list(info, startTime, endTime, cursor=None, includeFilters=None):
        if endTime - startTime > MAX_EVENT_SPAN_S:
            raise error("eventList may span at most 90 days", "BAD_REQUEST")
        events = [
            e
            for e in state.cohort.events(p.id)
            if startTime <= e.start_time.timestamp() < endTime
            and (not includeFilters or any(_filter_match(e, f) for f in includeFilters))
        ]
        if not events:
            return None  # the live API answers no events with a null eventList
        items, page = _page(events, cursor, state.config.graph_page_size)
        return {"events": [event_node(e) for e in items], "pageInfo": page}

    def patient_access_list(info, cursor=None):
        orgs = state.cohort.patient_orgs(p.id)
        items, page = _page(orgs, cursor, state.config.graph_page_size)
        return {"patientAccess": [access_node(state, p.id, o) for o in items], "pageInfo": page}

    return {
        "id": p.id,
        "codeName": p.code_name,
        "createdAt": p.created_at,
        "deviceList": device_list,
        "eventList": event_list,
        "patientAccessList": patient_access_list,
    }


def stream_type_node(st: StreamType) -> dict:
    return {
        "id": st.id,
        "name": st.name,
        "description": st.description,
        "shape": {
            "dimensions": [
                {
                    "identifier": d.identifier,
                    "dataType": d.data_type,
                    "quantityName": d.quantity_name,
                    "quantityAbbrev": d.quantity_abbrev,
                    "unitName": d.unit_name,
                    "unitAbbrev": d.unit_abbrev,
                }
                for d in st.dimensions
            ]
        },
    }


def stream_node(state: EmulatorState, spec: StreamSpec) -> dict:
    m = spec.meta
    stream_type = stream_type_node(m.stream_type)
    if state.faults.get(m.id) == "unknown_type":
        dims = stream_type["shape"]["dimensions"]
        dims[1] = dims[1] | {"dataType": "quaternion"}
    return {
        "id": m.id,
        "createdAt": m.created_at,
        "algorithm": m.algorithm,
        "deviceId": f"patient-{m.patient_id},device-{m.device_id}",
        "patientId": m.patient_id,
        "minTime": state.cohort.data_start.timestamp(),
        "maxTime": max(state.cohort.data_start.timestamp(), state.store.now_ns / 1e9),
        "parameters": [{"key": k, "value": v} for k, v in m.parameters],
        "streamType": stream_type,
    }


def _patient_people(state: EmulatorState, info, pids: list[str], cursor_input) -> dict:
    """One page of project/cohort patients, ordered by code name."""
    raw = info.context.get("variables") or {}
    cursor_input = cursor_input or raw.get("cursor_input") or raw.get("cursorInput") or {}
    after = (cursor_input or {}).get("codeNameCursor")
    people = sorted((state.cohort.existing_patient(pid) for pid in pids), key=lambda p: p.code_name)
    if after:
        people = [p for p in people if p.code_name > after]
    size = state.config.patient_page_size
    page, more = people[:size], len(people) > size
    rows = [
        {
            "patient": patient_node(state, p),
            "codeName": p.code_name,
            "createdAt": p.created_at,
            "updatedAt": p.created_at,
            "createdBy": state.cohort.user_id,
            "updatedBy": state.cohort.user_id,
        }
        for p in page
    ]
    info_ = {"endCursor": None, "codeNameEndCursor": page[-1].code_name if more else None}
    return {"projectPatients": rows, "cohortPatients": rows, "pageInfo": info_}


def cohort_node(state: EmulatorState, c, org_id: str) -> dict:
    created = state.cohort.data_start.timestamp() - 20 * 86_400
    return {
        "id": c.id,
        "title": c.title,
        "description": c.description,
        "organizationId": org_id,
        "createdAt": created,
        "updatedAt": created,
        "createdBy": state.cohort.user_id,
        "updatedBy": state.cohort.user_id,
        "cohortPatientList": lambda info, cursorInput=None, cursor_input=None: _patient_people(
            state, info, state.cohort.cohort_patients[c.id], cursorInput or cursor_input
        ),
    }


def project_node(state: EmulatorState, p: Project) -> dict:
    created = state.cohort.data_start.timestamp() - 25 * 86_400
    return {
        "id": p.id,
        "title": p.title,
        "status": p.status,
        "description": p.description,
        "type": "research",
        "organizationId": p.org_id,
        "createdAt": created,
        "updatedAt": created,
        "startedAt": created + 86_400,
        "createdBy": state.cohort.user_id,
        "updatedBy": state.cohort.user_id,
        "cohortList": {
            "cohorts": [cohort_node(state, c, p.org_id) for c in p.cohorts],
            "pageInfo": {"endCursor": None},
        },
        "projectPatientList": lambda info, cursorInput=None, cursor_input=None: _patient_people(
            state, info, state.cohort.project_patients(p), cursorInput or cursor_input
        ),
    }


def user_node(state: EmulatorState) -> dict:
    c = state.cohort

    def membership_list(info, cursor=None):
        items, page = _page(c.orgs, cursor, 1)  # one org a page: exercises paging
        return {"memberships": [{"org": org_node(state, o)} for o in items], "pageInfo": page}

    return {
        "id": c.user_id,
        "displayName": c.user_name,
        "email": c.user_email,
        "created": c.data_start.timestamp() - 500 * 86_400,
        "defaultMembership": {"org": org_node(state, c.existing_org(c.active_org_id))},
        "membershipList": membership_list,
    }
