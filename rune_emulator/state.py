"""Mutable server state shared by the handlers: clock, active org, faults, stats."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime

from .auth import Principal
from .chaos import ChaosEngine
from .chunks import ChunkCache, TextCache
from .cohort import StreamSpec, build_cohort
from .config import ChaosConfig, EmulatorConfig
from .errors import ApiError
from .revisions import Revision, Revisions
from .store import DataStore

FAULT_KINDS = (
    "always_500",
    "non_numeric",
    "missing_column",
    "extra_column",
    "type_change",
    "unknown_type",  # metadata: the first value dimension's dataType is "quaternion"
)


@dataclass
class RequestStats:
    """Request log: ``(method, path, query_string, status)`` per request."""

    log: list[tuple[str, str, str, int]] = field(default_factory=list)
    chaos: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, method: str, path: str, query: str, status: int) -> None:
        with self._lock:
            self.log.append((method, path, query, status))

    def record_chaos(self, kind: str) -> None:
        with self._lock:
            self.chaos[kind] = self.chaos.get(kind, 0) + 1

    def count(self, path_prefix: str = "", status: int | None = None) -> int:
        """Requests whose path starts with ``path_prefix`` (and had ``status``)."""
        with self._lock:
            return sum(
                1
                for _, p, _, s in self.log
                if p.startswith(path_prefix) and (status is None or s == status)
            )

    def reset(self) -> None:
        with self._lock:
            self.log.clear()
            self.chaos.clear()


class EmulatorState:
    """Everything a request handler needs."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.cohort = build_cohort(config)
        budget = config.cache_mb * 1024 * 1024
        self.cache = ChunkCache(config.seed, budget, config.motion_hours)
        self.text_cache = TextCache(budget)
        self.revisions = Revisions()
        self.store = DataStore(self.cohort, self.cache, config.late_data_hours, self.revisions)
        self.stats = RequestStats()
        self.chaos = ChaosEngine(config.chaos)
        self.faults: dict[str, str] = {}

    # -- mutable knobs ---------------------------------------------------------
    def set_now(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.store.set_now(now)

    def set_chaos(self, chaos: ChaosConfig | None) -> None:
        self.chaos = ChaosEngine(chaos)

    def set_fault(self, stream_id: str, kind: str | None) -> None:
        if stream_id not in self.cohort.specs:
            raise KeyError(stream_id)
        if kind is None:
            self.faults.pop(stream_id, None)
        elif kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; known: {FAULT_KINDS}")
        else:
            self.faults[stream_id] = kind

    def revise(self, stream_id: str, start_ns: int, end_ns: int) -> Revision:
        """A new revision generation of ``stream_id``'s values in ``[start, end)``
        (:mod:`rune_emulator.revisions`)."""
        if stream_id not in self.cohort.specs:
            raise KeyError(stream_id)
        rev = self.revisions.add(stream_id, start_ns, end_ns)
        self.text_cache.clear()  # formatted days hold the values served before
        return rev

    def clear_revisions(self, stream_id: str | None = None) -> None:
        self.revisions.clear(stream_id)
        self.text_cache.clear()

    # -- access rules ----------------------------------------------------------
    def visible_patients(self, principal: Principal) -> list[str]:
        if principal.is_client:
            return [principal.patient_id] if principal.patient_id else []
        return list(self.cohort.org_patients[self.cohort.active_org_id])

    def check_patient(self, principal: Principal, patient_id: str | None) -> str:
        """The patient id to use; 403/404 when the caller may not read it."""
        if principal.is_client:
            if not patient_id:
                return principal.patient_id or ""
            if patient_id != principal.patient_id:
                raise ApiError(403, "client key does not grant access to this patient")
            return patient_id
        if not patient_id:
            raise ApiError(400, "patient_id is required")
        if patient_id not in self.visible_patients(principal):
            raise ApiError(404, f"patient not found: {patient_id}")
        return patient_id

    def stream(self, principal: Principal, stream_id: str) -> StreamSpec:
        spec = self.cohort.specs.get(stream_id)
        if spec is None:
            raise ApiError(404, f"stream not found: {stream_id}")
        if principal.is_client and spec.meta.patient_id != principal.patient_id:
            raise ApiError(403, "client key does not grant access to this stream")
        if spec.meta.patient_id not in self.visible_patients(principal):
            raise ApiError(404, f"stream not found: {stream_id}")
        if self.faults.get(stream_id) == "always_500":
            raise ApiError(500, "internal error (injected fault)")
        return spec
