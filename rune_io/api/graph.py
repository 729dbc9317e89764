"""Rune's GraphQL metadata API, returning :mod:`rune_io.api.models` records.

``POST {graph_url}/graphql`` over the client's shared session (same timeouts, retry
policy and auth headers as the stream calls). Every list is paged by the one page loop
(:func:`rune_io.api.paginators.paginate` with a :class:`~rune_io.api.paginators.GraphCursor`
on ``pageInfo.endCursor`` / ``codeNameEndCursor``) until its cursor is null; a cursor
served twice in one call is a :class:`~rune_io.errors.DataError`. GraphQL ``errors`` are
classified by their ``extensions.code`` (:func:`rune_io.errors.graphql_error`).

The query text lives in :mod:`rune_io.api.graph_queries`, the object parsers and id
helpers in :mod:`rune_io.api.graph_records` (re-exported here).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from rune_io.api.graph_queries import (
    M_SET_ORG,
    Q_COHORT_PATIENTS,
    Q_EVENTS,
    Q_ORGS,
    Q_PATIENT,
    Q_PATIENTS,
    Q_PROJECT,
    Q_PROJECT_PATIENTS,
    Q_PROJECTS,
    Q_STREAM_TYPES,
    Q_STREAMS,
    Q_STREAMS_BY_IDS,
    Q_USER,
)
from rune_io.api.graph_records import (
    _get,
    _ts,
    bare_device_id,
    bare_patient_id,
    parse_device,
    parse_event,
    parse_org,
    parse_project,
    parse_stream,
    parse_stream_type,
    records,
    wire_device_id,
)
from rune_io.api.http import HttpClient, Response
from rune_io.api.models import Device, Event, Org, Patient, Project, StreamMeta, StreamType, User
from rune_io.api.paginators import GraphCursor, paginate
from rune_io.errors import DataError, NotFound, UsageError, graphql_error
from rune_io.times import TimeLike, windows

__all__ = [
    "MAX_EVENT_SPAN",
    "MAX_IDS_PER_CALL",
    "GraphClient",
    "bare_device_id",
    "bare_patient_id",
    "parse_device",
    "parse_event",
    "parse_org",
    "parse_project",
    "parse_stream",
    "parse_stream_type",
    "wire_device_id",
]

log = logging.getLogger("rune_io.api.graph")

#: the API refuses event queries spanning more than this
MAX_EVENT_SPAN = timedelta(days=90)
#: the API refuses streamListByIds with more ids than this
MAX_IDS_PER_CALL = 100

_OPERATION = re.compile(r"^\s*(?:query|mutation)\s+(\w+)")


def _operation(query: str) -> str:
    m = _OPERATION.match(query)
    return m.group(1) if m else "query"


class GraphClient:
    """Typed access to the GraphQL metadata API through a shared :class:`HttpClient`."""

    def __init__(self, http: HttpClient, graph_url: str | None = None) -> None:
        self.http = http
        self.url = (graph_url or http.settings.graph_url).rstrip("/") + "/graphql"

    def execute(self, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Run one query; return its ``data``.

        Raises:
            NotFound, AuthError, BadRequest, RateLimited, ServerError, GraphQLError: the
                response's ``errors``, by their code (:func:`rune_io.errors.graphql_error`).
            DataError: the response is not a GraphQL document.
        """
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
            if not isinstance(errors, list):
                errors = [errors]
            raise graphql_error(errors, resp.url, resp.status)
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
        not_found: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Yield each page's list object (the thing at ``path``) until the cursor is null.

        With ``keep_root`` each page also carries the whole ``data`` under ``__root__``.
        A null root object (``path[0]``) is :class:`NotFound` (message ``not_found``).
        """
        call = f"GraphQL {_operation(query)} {'.'.join(path)} ({self.url})"

        def parse(resp: Response) -> dict[str, Any]:
            data = self._parse(resp)
            if _get(data, path[0]) is None:
                raise NotFound(404, "NotFound", not_found or f"{path[0]} not found", self.url)
            page = _get(data, *path)
            page = page if isinstance(page, dict) else {}
            return {**page, "__root__": data} if keep_root else page

        pages = paginate(
            self.http, self.url, {}, GraphCursor(cursor_field, cursor_var, wrap), parse,
            method="POST", json={"query": query, "variables": variables}, call=call,
        )  # fmt: skip
        for _resp, page in pages:
            yield page

    # -- user and orgs

    def current_user(self) -> User:
        """The authenticated user and their active org."""
        u = self.execute(Q_USER).get("user")
        if not u:
            raise NotFound(404, "NotFound", "no current user", self.url)
        org = _get(u, "defaultMembership", "org") or {}
        return User(
            id=u.get("id") or "",
            display_name=u.get("displayName") or "",
            email=u.get("email") or "",
            active_org_id=org.get("id") or "",
            active_org_name=org.get("displayName") or "",
        )

    def orgs(self) -> list[Org]:
        """Every org the user belongs to."""
        out: list[Org] = []
        for page in self._pages(Q_ORGS, {}, ("user", "membershipList")):
            orgs = [m.get("org") for m in page.get("memberships") or []]
            out += records(orgs, parse_org, "getOrgMemberships")
        return out

    def set_active_org(self, org_id: str) -> Org:
        """Make ``org_id`` the user's active org (what org-scoped lists return)."""
        data = self.execute(M_SET_ORG, {"input": {"orgId": org_id}})
        org = _get(data, "updateDefaultMembership", "user", "defaultMembership", "org")
        if not org:
            raise NotFound(404, "NotFound", f"org {org_id} not found", self.url)
        return records([org], parse_org, "updateDefaultMembership")[0]

    # -- projects and cohorts

    def projects(self) -> list[Project]:
        """Projects of the active org, with their cohorts."""
        out: list[Project] = []
        org_id = ""
        for page in self._pages(Q_PROJECTS, {}, ("org", "projectList"), keep_root=True):
            org_id = _get(page, "__root__", "org", "id") or org_id
            items = [{"organizationId": org_id, **p} for p in page.get("projects") or []]
            out += records(items, parse_project, "getProjects")
        return out

    def project(self, project_id: str) -> Project:
        """One project, with its cohorts."""
        d = self.execute(Q_PROJECT, {"id": project_id}).get("project")
        if not d:
            raise NotFound(404, "NotFound", f"project {project_id} not found", self.url)
        return records([d], parse_project, "getProject")[0]

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
            not_found=f"{path[0]} {id_} not found",
        )
        for page in pages:
            out += records(page.get(key) or [], _member, _operation(query))
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
            patients = [a.get("patient") for a in page.get("patientAccess") or []]
            out += records(patients, _listed_patient, "getPatientList")
        return out

    def patient(self, patient_id: str) -> Patient:
        """One patient with all their devices (device list paged to the end)."""
        pid = bare_patient_id(patient_id)
        devices: list[Device] = []
        head: dict[str, Any] = {}
        pages = self._pages(
            Q_PATIENT, {"patient_id": pid, "cursor": None}, ("patient", "deviceList"),
            keep_root=True, not_found=f"patient {pid} not found",
        )  # fmt: skip
        for page in pages:
            head = page["__root__"]["patient"]
            found = page.get("devices") or []
            devices += records(found, lambda d: parse_device(d, pid), "getPatient")
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
        types = _get(data, "streamTypeList", "streamTypes") or []
        return records(types, parse_stream_type, "getStreamTypes")

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
                raise UsageError("streams(device_id=...) needs patient_id (or a wire device id)")
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
            out += records(page.get("streams") or [], parse_stream, "getStreamList")
        return out

    def streams_by_ids(self, ids: Iterable[str]) -> list[StreamMeta]:
        """Streams by id, 100 ids per call, in the order asked. Missing ids raise NotFound."""
        wanted = list(dict.fromkeys(ids))
        found: dict[str, StreamMeta] = {}
        for i in range(0, len(wanted), MAX_IDS_PER_CALL):
            chunk = wanted[i : i + MAX_IDS_PER_CALL]
            for page in self._pages(Q_STREAMS_BY_IDS, {"stream_ids": chunk}, ("streamListByIds",)):
                for meta in records(page.get("streams") or [], parse_stream, "getStreamListByIds"):
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
            what = f"getEventList patient {pid}"
            pages = self._pages(
                Q_EVENTS, variables, ("patient", "eventList"), not_found=f"patient {pid} not found"
            )
            for page in pages:
                for e in records(page.get("events") or [], lambda e: parse_event(e, pid), what):
                    found.setdefault(e.id, e)
        return sorted(found.values(), key=lambda e: (e.start_time, e.id))


def _member(pp: Mapping[str, Any]) -> Patient:
    """A project/cohort patient entry (no devices)."""
    return Patient(
        id=bare_patient_id(pp["patient"]["id"]),
        code_name=pp.get("codeName") or "",
        created_at=_ts(pp.get("createdAt")),
    )


def _listed_patient(p: Mapping[str, Any]) -> tuple[Patient, bool]:
    """A patient of ``patientAccessList`` with its first device page, and whether more
    devices follow."""
    devices = p.get("deviceList") or {}
    pid = bare_patient_id(p["id"])
    patient = Patient(
        id=pid,
        code_name=p.get("codeName") or "",
        created_at=_ts(p.get("createdAt")),
        devices=tuple(parse_device(d, pid) for d in devices.get("devices") or []),
    )
    return patient, bool(_get(devices, "pageInfo", "endCursor"))
