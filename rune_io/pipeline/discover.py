"""Discovery: the patients and streams a run covers, with overlapping GraphQL requests.

The requests a cohort-wide refresh makes before any data moves grow with the cohort
(at least one ``streamList`` per patient), so they overlap: up to
``Settings.discovery_concurrency`` (default 8) are in flight at once, each worker thread
on its own HTTP session (:func:`rune_io.api.streams.worker_http`). Only the org's patient
list is a chain of pages that must go one after another. The API's filters are used
where it has them:

- ids given: ``patient(id)`` per patient, ``streamListByIds`` for stream ids; the org
  is not listed (a patient-scoped client key can list nothing else);
- projects/cohorts: their member lists, then only those patients' streams;
- one category and/or one measurement: ``streamList(filters: {patientId, parameters})``
  returns only those streams (with several, one unfiltered request per patient is fewer);
- devices are paged to the end only when a device-type filter needs them.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from typing import TypeVar

from rune_io.api.graph import GraphClient
from rune_io.api.models import Patient, StreamMeta
from rune_io.api.streams import worker_http
from rune_io.errors import ConfigError, NotFound

log = logging.getLogger("rune_io.pipeline.discover")

T = TypeVar("T")
R = TypeVar("R")
#: ``progress(what, done, total)``, called as requests finish (e.g. the CLI's bar).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Selection:
    """Which part of the cohort a run covers; empty fields mean "all"."""

    org_id: str | None = None
    projects: tuple[str, ...] = ()
    cohorts: tuple[str, ...] = ()
    patients: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    measurements: tuple[str, ...] = ()
    device_types: tuple[str, ...] = ()
    stream_ids: tuple[str, ...] = ()
    include_events: bool = True

    def describe(self) -> str:
        parts = [
            f"{k}={','.join(v) if isinstance(v, tuple) else v}"
            for k, v in asdict(self).items()
            if v and k != "include_events"
        ]
        return " ".join(parts) or "whole active org"


def client_key_needs_patient(graph: GraphClient, patients: Sequence[str]) -> None:
    """A client key reads exactly one patient: refuse, in one line, a run without one."""
    if graph.http.settings.auth_method == "client_keys" and not patients:
        raise ConfigError(
            "client keys (RUNE_CLIENT_KEY_ID) read exactly one patient and cannot list the "
            "org: pass that patient with --patient ID (deployments: the patients parameter)"
        )


class _Pool:
    """Runs GraphQL calls on up to ``size`` threads, each with its own session."""

    def __init__(self, graph: GraphClient, size: int, progress: Progress | None) -> None:
        self.graph, self.size, self.progress = graph, max(1, size), progress
        self._local = threading.local()
        self._clients: list[GraphClient] = []
        self._lock = threading.Lock()

    def _client(self) -> GraphClient:
        g = getattr(self._local, "graph", None)
        if g is None:
            g = GraphClient(worker_http(self.graph.http))
            g.url = self.graph.url
            self._local.graph = g
            with self._lock:
                self._clients.append(g)
        return g

    def map(self, what: str, fn: Callable[[GraphClient, T], R], items: Sequence[T]) -> list[R]:
        """``[fn(client, item) for item in items]``, overlapped; the first error raises."""
        if not items:
            return []
        done = 0

        def call(item: T) -> R:
            nonlocal done
            out = fn(self._client(), item)
            with self._lock:
                done += 1
                if self.progress:
                    self.progress(what, done, len(items))
                if done % max(1, len(items) // 4) == 0 or done == len(items):
                    log.info("discovery: %s %d/%d", what, done, len(items))
            return out

        if self.size == 1 or len(items) == 1:
            return [call(i) for i in items]
        with ThreadPoolExecutor(self.size, thread_name_prefix="rune_io-discover") as ex:
            return list(ex.map(call, items))

    def close(self) -> None:
        for g in self._clients:
            g.http.close()


def _patient(g: GraphClient, pid: str) -> Patient:
    try:
        return g.patient(pid)
    except NotFound:
        raise ConfigError(
            f"unknown patient id {pid!r}: the Rune API has no such patient visible to these "
            f"credentials (check the id, or the org selected with --org)"
        ) from None


def _members(kind: str, fetch: Callable[[], list[Patient]], ident: str) -> list[Patient]:
    try:
        return fetch()
    except NotFound:
        raise ConfigError(
            f"unknown {kind} id {ident!r}: the Rune API has no such {kind} in the active org "
            f"(check the id, or the org selected with --org)"
        ) from None


def discover(
    graph: GraphClient,
    sel: Selection,
    *,
    concurrency: int | None = None,
    progress: Progress | None = None,
) -> tuple[list[Patient], list[StreamMeta]]:
    """Patients and streams of a :class:`Selection`, sorted by id."""
    client_key_needs_patient(graph, sel.patients)
    size = concurrency or graph.http.settings.discovery_concurrency
    pool = _Pool(graph, size, progress)
    try:
        patients = _select_patients(graph, pool, sel)
        streams = _select_streams(pool, sel, patients)
    finally:
        pool.close()
    log.info("discovered %d patients, %d streams (%s)", len(patients), len(streams), sel.describe())
    return patients, streams


def select_patients(graph: GraphClient, sel: Selection) -> list[Patient]:
    """Patients of a selection alone (e.g. to group a cohort for fan-out)."""
    client_key_needs_patient(graph, sel.patients)
    pool = _Pool(graph, graph.http.settings.discovery_concurrency, None)
    try:
        return _select_patients(graph, pool, sel)
    finally:
        pool.close()


def _select_patients(graph: GraphClient, pool: _Pool, sel) -> list[Patient]:
    if sel.org_id:
        graph.set_active_org(sel.org_id)
    need_devices = bool(sel.device_types)
    wanted: dict[str, Patient] = {}
    if sel.projects or sel.cohorts:
        lists = pool.map(
            "members",
            lambda g, item: _members(
                item[0],
                (lambda: g.project_patients(item[1]))
                if item[0] == "project"
                else (lambda: g.cohort_patients(item[1])),
                item[1],
            ),
            [("project", p) for p in sel.projects] + [("cohort", c) for c in sel.cohorts],
        )
        for members in lists:
            wanted.update((p.id, p) for p in members)
    if sel.patients:
        for p in pool.map("patients", _patient, list(dict.fromkeys(sel.patients))):
            wanted[p.id] = p
    elif not (sel.projects or sel.cohorts):
        listed = graph.patient_list()
        if need_devices:
            more = [p.id for p, truncated in listed if truncated]
            full = {p.id: p for p in pool.map("devices", _patient, more)}
            wanted = {p.id: full.get(p.id, p) for p, _ in listed}
        else:
            wanted = {p.id: p for p, _ in listed}
    if need_devices and (sel.projects or sel.cohorts):
        bare = [pid for pid, p in wanted.items() if not p.devices]
        wanted.update((p.id, p) for p in pool.map("devices", _patient, bare))
    return sorted(wanted.values(), key=lambda p: p.id)


def _stream_filters(sel) -> dict[str, str] | None:
    """The ``parameters`` filter replacing client-side filtering, when one request does."""
    if len(sel.categories) > 1 or len(sel.measurements) > 1:
        return None
    out = {}
    if sel.categories:
        out["category"] = sel.categories[0]
    if sel.measurements:
        out["measurement"] = sel.measurements[0]
    return out


def _select_streams(pool: _Pool, sel, patients: Sequence[Patient]) -> list[StreamMeta]:
    device_type = {(d.patient_id, d.id): d.device_type_id for p in patients for d in p.devices}
    ids = [p.id for p in patients]
    if sel.stream_ids:
        wanted = list(dict.fromkeys(sel.stream_ids))
        chunks = [wanted[i : i + 100] for i in range(0, len(wanted), 100)]
        try:
            streams = [s for part in pool.map("streams", _by_ids, chunks) for s in part]
        except NotFound as exc:
            raise ConfigError(f"unknown stream id: {exc.message or exc}") from None
        if sel.projects or sel.cohorts or sel.patients:
            allowed = set(ids)
            streams = [s for s in streams if s.patient_id in allowed]
    else:
        params = _stream_filters(sel)
        per_patient = pool.map(
            "streams", lambda g, pid: g.streams(patient_id=pid, parameters=params), ids
        )
        streams = [s for part in per_patient for s in part]
        if params and not streams:  # a filter matched nothing: name what exists
            every = pool.map("streams", lambda g, pid: g.streams(patient_id=pid), ids)
            _check_filters(sel, [s for part in every for s in part], device_type)
    _check_filters(sel, streams, device_type)

    def keep(s: StreamMeta) -> bool:
        if sel.categories and s.category not in sel.categories:
            return False
        if sel.measurements and s.measurement not in sel.measurements:
            return False
        if sel.device_types:
            return device_type.get((s.patient_id, s.device_id)) in sel.device_types
        return True

    return sorted((s for s in streams if keep(s)), key=lambda s: s.id)


def _check_filters(
    sel, streams: Sequence[StreamMeta], device_type: Mapping[tuple[str, str], str]
) -> None:
    """A filter value that matches no stream of the selection is a mistake (a typo, a
    wrong patient): say so, naming the values that exist, instead of loading nothing."""
    present: dict[str, set[str | None]] = {
        "category": {s.category for s in streams},
        "measurement": {s.measurement for s in streams},
        "device type": {device_type.get((s.patient_id, s.device_id)) for s in streams},
        "stream id": {s.id for s in streams},
    }
    asked = {
        "category": sel.categories,
        "measurement": sel.measurements,
        "device type": sel.device_types,
        "stream id": sel.stream_ids,
    }
    for kind, values in asked.items():
        have = sorted(v for v in present[kind] if v)
        missing = [v for v in values if v not in present[kind]]
        if missing:
            shown = ", ".join(have[:12]) + (f", ... ({len(have)} in all)" if len(have) > 12 else "")
            raise ConfigError(
                f"{kind} {', '.join(map(repr, missing))} matches no stream of the selection "
                f"({sel.describe()}); {kind} values there: {shown or 'none'}"
            )


def _by_ids(g: GraphClient, ids: Iterable[str]) -> list[StreamMeta]:
    return g.streams_by_ids(ids)
