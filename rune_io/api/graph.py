"""Rune's GraphQL metadata API, returning :mod:`rune_io.api.models` records.

``POST {graph_url}/graphql`` over the client's shared session (same timeouts, retry
policy and auth headers as the stream calls). Every list follows its cursor
(``pageInfo.endCursor`` / ``codeNameEndCursor``) until it is null. The query text is
that of runeq 0.18.1 (field names, argument and variable types), minus its aliases.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from rune_io.api.http import HttpClient, Response
from rune_io.api.models import (
    Cohort,
    Device,
    Dimension,
    Event,
    Org,
    Patient,
    Project,
    StreamMeta,
    StreamType,
    User,
)
from rune_io.errors import AuthError, DataError, GraphQLError, NotFound
from rune_io.times import TimeLike, to_unix, to_utc, windows

log = logging.getLogger("rune_io.api.graph")

#: the API refuses event queries spanning more than this
MAX_EVENT_SPAN = timedelta(days=90)
#: the API refuses streamListByIds with more ids than this
MAX_IDS_PER_CALL = 100

_ORG_FIELDS = "id displayName created orgTags"
_DEVICE_FIELDS = "deviceShortId alias createdAt deviceType { id } disabled disabledAt updatedAt"
_STREAM_FIELDS = """
    id createdAt algorithm deviceId patientId minTime maxTime
    parameters { key value }
    streamType {
        id name description
        shape { dimensions {
            identifier dataType quantityName quantityAbbrev unitName unitAbbrev
        } }
    }
"""
_COHORT_FIELDS = "id title description createdAt updatedAt createdBy updatedBy"
_PROJECT_FIELDS = f"""
    id title status description type
    cohortList {{ cohorts {{ {_COHORT_FIELDS} }} }}
    createdAt updatedAt startedAt createdBy updatedBy
"""
_PATIENT_ACCESS = "patientAccessList { patientAccess { org { id } startTime endTime } }"

Q_USER = f"""
query getUser {{
    user {{ id created displayName email defaultMembership {{ org {{ {_ORG_FIELDS} }} }} }}
}}"""

Q_ORGS = f"""
query getOrgMemberships($cursor: Cursor) {{
    user {{ membershipList(cursor: $cursor) {{
        pageInfo {{ endCursor }}
        memberships {{ org {{ {_ORG_FIELDS} }} }}
    }} }}
}}"""

M_SET_ORG = f"""
mutation updateDefaultMembership($input: UpdateDefaultMembershipInput!) {{
    updateDefaultMembership(input: $input) {{
        user {{ defaultMembership {{ org {{ {_ORG_FIELDS} }} }} }}
    }}
}}"""

Q_PATIENT = f"""
query getPatient($patient_id: ID!, $cursor: Cursor) {{
    patient(id: $patient_id) {{
        id codeName createdAt
        deviceList(cursor: $cursor) {{ pageInfo {{ endCursor }} devices {{ {_DEVICE_FIELDS} }} }}
    }}
}}"""

Q_PATIENTS = f"""
query getPatientList($patient_cursor: Cursor, $device_cursor: Cursor) {{
    org {{ patientAccessList(cursor: $patient_cursor) {{
        pageInfo {{ endCursor }}
        patientAccess {{ patient {{
            id codeName createdAt
            deviceList(cursor: $device_cursor) {{
                pageInfo {{ endCursor }} devices {{ {_DEVICE_FIELDS} }}
            }}
        }} }}
    }} }}
}}"""

Q_PROJECT = f"""
query getProject($id: ID) {{ project(id: $id) {{ {_PROJECT_FIELDS} organizationId }} }}"""

Q_PROJECTS = f"""
query getProjects($cursor: DateTimeUUIDCursor) {{
    org {{ id projectList(cursor: $cursor) {{
        projects {{ {_PROJECT_FIELDS} organizationId }}
        pageInfo {{ endCursor }}
    }} }}
}}"""

Q_PROJECT_PATIENTS = f"""
query getProjectPatients($id: ID, $cursorInput: CursorInput) {{
    project(id: $id) {{
        organizationId
        projectPatientList(cursorInput: $cursorInput) {{
            projectPatients {{
                patient {{ id {_PATIENT_ACCESS} }}
                codeName createdAt updatedAt createdBy updatedBy
            }}
            pageInfo {{ codeNameEndCursor }}
        }}
    }}
}}"""

Q_COHORT_PATIENTS = f"""
query getCohortPatients($id: ID, $cursorInput: CursorInput) {{
    cohort(id: $id) {{
        id organizationId
        cohortPatientList(cursorInput: $cursorInput) {{
            cohortPatients {{
                patient {{ id {_PATIENT_ACCESS} }}
                codeName createdAt updatedAt createdBy updatedBy
            }}
            pageInfo {{ codeNameEndCursor }}
        }}
    }}
}}"""

Q_STREAM_TYPES = """
query getStreamTypes {
    streamTypeList { streamTypes {
        id name description
        shape { dimensions {
            identifier dataType quantityName quantityAbbrev unitName unitAbbrev
        } }
    } }
}"""

Q_STREAMS = f"""
query getStreamList($cursor: Cursor, $filters: StreamQueryFilters) {{
    streamList(filters: $filters, cursor: $cursor) {{
        pageInfo {{ endCursor }}
        streams {{ {_STREAM_FIELDS} }}
    }}
}}"""

Q_STREAMS_BY_IDS = f"""
query getStreamListByIds($stream_ids: [String]) {{
    streamListByIds(streamIds: $stream_ids) {{
        pageInfo {{ endCursor }}
        streams {{ {_STREAM_FIELDS} }}
    }}
}}"""

Q_EVENTS = """
query getEventList(
    $patient_id: ID!, $cursor: Cursor, $start_time: Float!, $end_time: Float!,
    $include_filters: [EventClassificationFilter]
) {
    patient(id: $patient_id) {
        eventList(
            startTime: $start_time, endTime: $end_time, cursor: $cursor,
            includeFilters: $include_filters
        ) {
            events {
                id displayName customDetail { displayName }
                duration { startTime endTime endTimeMax }
                payload classification { namespace category enum } tags { name }
                method createdAt updatedAt
            }
            pageInfo { endCursor }
        }
    }
}"""


# ------------------------------------------------------------------------ id helpers


def bare_patient_id(value: str) -> str:
    """Bare patient id (``patient-`` prefix dropped)."""
    return value[8:] if value.startswith("patient-") else value


def bare_device_id(value: str) -> str:
    """Bare device id from ``patient-<p>,device-<d>`` (or a bare id)."""
    value = value.split(",")[-1]
    return value[7:] if value.startswith("device-") else value


def wire_device_id(pid: str, did: str) -> str:
    """The API's denormalised device id ``patient-<p>,device-<d>``."""
    return f"patient-{bare_patient_id(pid)},device-{bare_device_id(did)}"


def _ts(value: Any) -> float | None:
    """Unix seconds from a number or ISO string (None stays None)."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        return to_unix(value)
    except (TypeError, ValueError):
        return to_unix(float(value))


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


# ------------------------------------------------------------------------ parsers


def parse_stream_type(d: Mapping[str, Any]) -> StreamType:
    """A :class:`StreamType` from a ``streamType`` object."""
    dims = tuple(
        Dimension(
            identifier=x["identifier"],
            data_type=x["dataType"],
            quantity_name=x.get("quantityName"),
            quantity_abbrev=x.get("quantityAbbrev"),
            unit_name=x.get("unitName"),
            unit_abbrev=x.get("unitAbbrev"),
        )
        for x in (_get(d, "shape", "dimensions") or [])
    )
    return StreamType(d["id"], d.get("name") or "", d.get("description") or "", dims)


def parse_stream(d: Mapping[str, Any]) -> StreamMeta:
    """A :class:`StreamMeta` from a ``stream`` object (device id normalised)."""
    params = tuple(sorted((p["key"], p["value"]) for p in (d.get("parameters") or [])))
    return StreamMeta(
        id=d["id"],
        patient_id=bare_patient_id(d.get("patientId") or ""),
        device_id=bare_device_id(d.get("deviceId") or ""),
        algorithm=d.get("algorithm") or "",
        stream_type=parse_stream_type(d["streamType"]),
        parameters=params,
        min_time=_ts(d.get("minTime")),
        max_time=_ts(d.get("maxTime")),
        created_at=_ts(d.get("createdAt")),
    )


def parse_org(d: Mapping[str, Any]) -> Org:
    """An :class:`Org` (id kept as served, e.g. ``org-<hex>``)."""
    return Org(
        id=d["id"],
        name=d.get("displayName") or "",
        created_at=_ts(d.get("created")),
        tags=tuple(d.get("orgTags") or ()),
    )


def parse_device(d: Mapping[str, Any], pid: str) -> Device:
    """A :class:`Device` of patient ``pid``."""
    return Device(
        id=d["deviceShortId"],
        patient_id=pid,
        alias=d.get("alias") or "",
        device_type_id=_get(d, "deviceType", "id") or "",
        disabled=bool(d.get("disabled")),
        created_at=_ts(d.get("createdAt")),
    )


def parse_project(d: Mapping[str, Any]) -> Project:
    """A :class:`Project` with its cohorts."""
    cohorts = tuple(
        Cohort(c["id"], c.get("title") or "", c.get("description") or "", d["id"])
        for c in (_get(d, "cohortList", "cohorts") or [])
    )
    return Project(
        id=d["id"],
        title=d.get("title") or "",
        status=d.get("status") or "",
        description=d.get("description") or "",
        org_id=d.get("organizationId") or "",
        cohorts=cohorts,
    )


def parse_event(d: Mapping[str, Any], pid: str) -> Event:
    """An :class:`Event`; the end is ``endTimeMax`` when set, as in runeq."""
    duration = d.get("duration") or {}
    end = duration.get("endTimeMax")
    if end is None:
        end = duration.get("endTime")
    start = duration.get("startTime")
    if start is None:
        raise DataError(f"event {d.get('id')!r} has no duration.startTime")
    cls = d.get("classification") or {}
    payload = d.get("payload")
    if payload is not None and not isinstance(payload, str):
        payload = json.dumps(payload, sort_keys=True)
    return Event(
        id=d["id"],
        patient_id=pid,
        display_name=_get(d, "customDetail", "displayName") or d.get("displayName") or "",
        namespace=cls.get("namespace") or "",
        category=cls.get("category") or "",
        enum=cls.get("enum") or "",
        start_time=to_utc(_ts(start)),  # type: ignore[arg-type]
        end_time=None if end is None else to_utc(_ts(end)),  # type: ignore[arg-type]
        payload=payload or "",
        method=d.get("method") or "",
        tags=tuple(t["name"] for t in (d.get("tags") or []) if t and t.get("name")),
    )


# ------------------------------------------------------------------------ client


class GraphClient:
    """Typed access to the GraphQL metadata API through a shared :class:`HttpClient`."""

    def __init__(self, http: HttpClient, graph_url: str | None = None) -> None:
        self.http = http
        self.url = (graph_url or http.settings.graph_url).rstrip("/") + "/graphql"

    def execute(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run one query; return its ``data``. GraphQL ``errors`` raise :class:`GraphQLError`
        (or :class:`NotFound` / :class:`AuthError` when the error says so)."""
        body: dict[str, Any] = {"query": query}
        if variables:
            body["variables"] = dict(variables)
        return self.http.post(self.url, json=body, parse=self._parse)

    def _parse(self, resp: Response) -> dict[str, Any]:
        doc = resp.json()
        if not isinstance(doc, dict):
            raise DataError(f"GraphQL response from {resp.url} is not an object", transient=True)
        errors = doc.get("errors")
        if errors:
            first = errors[0] if isinstance(errors[0], dict) else {"message": str(errors[0])}
            message = "; ".join(
                str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors
            )[:500]
            code = str(_get(first, "extensions", "code") or _get(first, "type") or "")
            lowered = (code + " " + message).lower()
            if "not found" in lowered or "not_found" in lowered or "notfound" in lowered:
                raise NotFound(404, code or "NotFound", message, resp.url)
            if any(w in lowered for w in ("unauthor", "forbidden", "permission", "unauthent")):
                raise AuthError(403, code or "Forbidden", message, resp.url)
            raise GraphQLError(resp.status, code or "GraphQLError", message, resp.url)
        data = doc.get("data")
        if not isinstance(data, dict):
            raise DataError(f"GraphQL response from {resp.url} has no data", transient=True)
        return data

    def _pages(
        self,
        query: str,
        variables: dict[str, Any],
        path: tuple[str, ...],
        *,
        cursor_var: str = "cursor",
        cursor_field: str = "endCursor",
        wrap: str | None = None,
        keep_root: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """Yield each page's list object (the thing at ``path``) until the cursor is null."""
        variables = dict(variables)
        seen: set[str] = set()
        while True:
            data = self.execute(query, variables)
            page = _get(data, *path)
            if page is None:
                if _get(data, *path[:1]) is None:
                    raise NotFound(404, "NotFound", f"{path[0]} not found", self.url)
                return
            yield {**page, "__root__": data} if keep_root else page
            cursor = _get(page, "pageInfo", cursor_field)
            if not cursor:
                return
            if cursor in seen:
                raise DataError(f"GraphQL cursor {cursor!r} repeated for {'.'.join(path)}")
            seen.add(cursor)
            variables[cursor_var] = {wrap: cursor} if wrap else cursor

    # -- user and orgs

    def current_user(self) -> User:
        """The authenticated user and their active org."""
        u = self.execute(Q_USER)["user"]
        if not u:
            raise NotFound(404, "NotFound", "no current user", self.url)
        org = _get(u, "defaultMembership", "org") or {}
        return User(
            id=u["id"],
            display_name=u.get("displayName") or "",
            email=u.get("email") or "",
            active_org_id=org.get("id") or "",
            active_org_name=org.get("displayName") or "",
        )

    def orgs(self) -> list[Org]:
        """Every org the user belongs to."""
        out: list[Org] = []
        for page in self._pages(Q_ORGS, {}, ("user", "membershipList")):
            out += [parse_org(m["org"]) for m in page.get("memberships") or []]
        return out

    def set_active_org(self, org_id: str) -> Org:
        """Make ``org_id`` the user's active org (what org-scoped lists return)."""
        data = self.execute(M_SET_ORG, {"input": {"orgId": org_id}})
        org = _get(data, "updateDefaultMembership", "user", "defaultMembership", "org")
        if not org:
            raise NotFound(404, "NotFound", f"org {org_id} not found", self.url)
        return parse_org(org)

    # -- projects and cohorts

    def projects(self) -> list[Project]:
        """Projects of the active org, with their cohorts."""
        out: list[Project] = []
        org_id = ""
        for page in self._pages(Q_PROJECTS, {}, ("org", "projectList"), keep_root=True):
            org_id = _get(page, "__root__", "org", "id") or org_id
            for p in page.get("projects") or []:
                out.append(parse_project({"organizationId": org_id, **p}))
        return out

    def project(self, project_id: str) -> Project:
        """One project, with its cohorts."""
        d = self.execute(Q_PROJECT, {"id": project_id}).get("project")
        if not d:
            raise NotFound(404, "NotFound", f"project {project_id} not found", self.url)
        return parse_project(d)

    def project_patients(self, project_id: str) -> list[Patient]:
        """Patients of a project (id and project code name; no devices)."""
        return self._member_patients(
            Q_PROJECT_PATIENTS, project_id, ("project", "projectPatientList"), "projectPatients"
        )

    def cohort_patients(self, cohort_id: str) -> list[Patient]:
        """Patients of a cohort (id and project code name; no devices)."""
        return self._member_patients(
            Q_COHORT_PATIENTS, cohort_id, ("cohort", "cohortPatientList"), "cohortPatients"
        )

    def _member_patients(
        self, query: str, id_: str, path: tuple[str, ...], key: str
    ) -> list[Patient]:
        out: list[Patient] = []
        pages = self._pages(
            query,
            {"id": id_},
            path,
            cursor_var="cursorInput",
            cursor_field="codeNameEndCursor",
            wrap="codeNameCursor",
        )
        for page in pages:
            for pp in page.get(key) or []:
                out.append(
                    Patient(
                        id=bare_patient_id(pp["patient"]["id"]),
                        code_name=pp.get("codeName") or "",
                        created_at=_ts(pp.get("createdAt")),
                    )
                )
        return out

    # -- patients and devices

    def patients(self) -> list[Patient]:
        """Every patient of the active org, with all their devices."""
        return [self.patient(p.id) if more else p for p, more in self.patient_list()]

    def patient_list(self) -> list[tuple[Patient, bool]]:
        """Every patient of the active org with the first page of their devices, and
        whether more devices follow (then :meth:`patient` pages them)."""
        out: list[tuple[Patient, bool]] = []
        pages = self._pages(
            Q_PATIENTS, {"device_cursor": None}, ("org", "patientAccessList"),
            cursor_var="patient_cursor",
        )  # fmt: skip
        for page in pages:
            for access in page.get("patientAccess") or []:
                p = access["patient"]
                devices = p.get("deviceList") or {}
                pid = bare_patient_id(p["id"])
                patient = Patient(
                    id=pid,
                    code_name=p.get("codeName") or "",
                    created_at=_ts(p.get("createdAt")),
                    devices=tuple(parse_device(d, pid) for d in devices.get("devices") or []),
                )
                out.append((patient, bool(_get(devices, "pageInfo", "endCursor"))))
        return out

    def patient(self, patient_id: str) -> Patient:
        """One patient with all their devices (device list paged to the end)."""
        pid = bare_patient_id(patient_id)
        variables: dict[str, Any] = {"patient_id": pid, "cursor": None}
        devices: list[Device] = []
        head: dict[str, Any] = {}
        seen: set[str] = set()
        while True:
            head = self.execute(Q_PATIENT, variables).get("patient") or {}
            if not head:
                raise NotFound(404, "NotFound", f"patient {pid} not found", self.url)
            dl = head.get("deviceList") or {}
            devices += [parse_device(d, pid) for d in dl.get("devices") or []]
            cursor = _get(dl, "pageInfo", "endCursor")
            if not cursor or cursor in seen:
                break
            seen.add(cursor)
            variables["cursor"] = cursor
        return Patient(
            id=pid,
            code_name=head.get("codeName") or "",
            created_at=_ts(head.get("createdAt")),
            devices=tuple(devices),
        )

    # -- streams

    def stream_types(self) -> list[StreamType]:
        """Every stream type."""
        data = self.execute(Q_STREAM_TYPES)
        return [parse_stream_type(t) for t in _get(data, "streamTypeList", "streamTypes") or []]

    def streams(
        self,
        patient_id: str | None = None,
        device_id: str | None = None,
        stream_type_id: str | None = None,
        algorithm: str | None = None,
        parameters: Mapping[str, str] | None = None,
    ) -> list[StreamMeta]:
        """Streams matching every given filter (``None`` means any).

        ``device_id`` may be bare (needs ``patient_id``) or the API's
        ``patient-<p>,device-<d>`` form. ``parameters`` match by key and value (e.g.
        ``{"category": "neural"}``).
        """
        wire_device = None
        if device_id is not None:
            if device_id.startswith("patient-"):
                wire_device = device_id
            elif patient_id is None:
                raise ValueError("streams(device_id=...) needs patient_id (or a wire device id)")
            else:
                wire_device = wire_device_id(patient_id, device_id)
        filters = {
            "patientId": None if patient_id is None else bare_patient_id(patient_id),
            "deviceId": wire_device,
            "streamTypeId": stream_type_id,
            "algorithm": algorithm,
            "parameters": [{"key": k, "value": v} for k, v in (parameters or {}).items()],
        }
        out: list[StreamMeta] = []
        for page in self._pages(Q_STREAMS, {"filters": filters}, ("streamList",)):
            out += [parse_stream(s) for s in page.get("streams") or []]
        return out

    def streams_by_ids(self, ids: Iterable[str]) -> list[StreamMeta]:
        """Streams by id, 100 ids per call, in the order asked. Missing ids raise NotFound."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, StreamMeta] = {}
        for i in range(0, len(wanted), MAX_IDS_PER_CALL):
            chunk = wanted[i : i + MAX_IDS_PER_CALL]
            for page in self._pages(Q_STREAMS_BY_IDS, {"stream_ids": chunk}, ("streamListByIds",)):
                for s in page.get("streams") or []:
                    meta = parse_stream(s)
                    found[meta.id] = meta
        missing = [i for i in wanted if i not in found]
        if missing:
            raise NotFound(
                404, "NotFound", f"{len(missing)} stream id(s) not found: {missing[:5]}", self.url
            )
        return [found[i] for i in wanted]

    # -- events

    def events(
        self,
        patient_id: str,
        start: TimeLike,
        end: TimeLike,
        *,
        include_filters: list[dict[str, str]] | None = None,
    ) -> list[Event]:
        """A patient's events in ``[start, end)``, queried in windows of at most 90 days.

        Events are de-duplicated by id (one spanning two windows is returned once) and
        sorted by start time.
        """
        pid = bare_patient_id(patient_id)
        found: dict[str, Event] = {}
        for lo, hi in windows(start, end, MAX_EVENT_SPAN):
            variables: dict[str, Any] = {
                "patient_id": pid,
                "start_time": lo.timestamp(),
                "end_time": hi.timestamp(),
            }
            if include_filters:
                variables["include_filters"] = include_filters
            for page in self._pages(Q_EVENTS, variables, ("patient", "eventList")):
                for e in page.get("events") or []:
                    found.setdefault(e["id"], parse_event(e, pid))
        return sorted(found.values(), key=lambda e: (e.start_time, e.id))
