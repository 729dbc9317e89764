"""The synthetic cohort: orgs, projects, cohorts, patients, devices, streams, events.

Ids and metadata are a pure function of the seed; nothing here renders data (that is
:mod:`rune_io.emulator.signals`), so a 50-patient cohort costs milliseconds to build.
"""

from __future__ import annotations

import hashlib
import json
import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from rune_io.models import (
    Cohort,
    Device,
    Dimension,
    Event,
    Org,
    Patient,
    Project,
    StreamMeta,
    StreamType,
)

from .config import EmulatorConfig

DAY_S = 86_400


def h(seed: int, *parts: object) -> str:
    """Deterministic hex digest of the seed and some parts."""
    text = ":".join([str(seed), *map(str, parts)])
    return hashlib.sha256(text.encode()).hexdigest()


def h_int(seed: int, *parts: object) -> int:
    """Deterministic 64-bit integer of the seed and some parts."""
    return int(h(seed, *parts)[:16], 16)


def h_unit(seed: int, *parts: object) -> float:
    """Deterministic float in [0, 1) of the seed and some parts."""
    return h_int(seed, *parts) / 2.0**64


def _dim(identifier: str, data_type: str, qname: str, qabbr: str, uname: str, uabbr: str):
    return Dimension(identifier, data_type, qname, qabbr, uname, uabbr)


_TIME = _dim("time", "timestamp", "time", "t", "nanoseconds", "ns")

#: The stream types the emulator serves (dataTypes from ``rune_io.arrow_schema`` only).
STREAM_TYPES: dict[str, StreamType] = {
    st.id: st
    for st in (
        StreamType(
            "acceleration",
            "Acceleration",
            "Linear acceleration along one axis",
            (_TIME, _dim("acceleration", "float", "acceleration", "a", "standard gravity", "g")),
        ),
        StreamType(
            "heart_rate",
            "Heart Rate",
            "Heart rate in beats per minute",
            (_TIME, _dim("heart_rate", "float", "heart rate", "hr", "beats per minute", "bpm")),
        ),
        StreamType(
            "lfp_trend_log_power",
            "LFP Trend Log Power",
            "Log of the LFP band power, as logged by the implant's trend logs",
            (
                _TIME,
                _dim("lfp_trend_log_power", "float", "log power", "lp", "log(uV^2)", "log(uV^2)"),
            ),
        ),
        StreamType(
            "duration",
            "Duration",
            "Time in each window during which the measurement was detected",
            (
                _TIME,
                _dim(
                    "measurement_duration_ns",
                    "duration_ns",
                    "duration",
                    "d",
                    "nanoseconds",
                    "ns",
                ),
            ),
        ),
        StreamType(
            "activity",
            "Activity",
            "Activity classification (enum)",
            (_TIME, _dim("activity", "enum", "activity", "act", "", "")),
        ),
    )
}

#: Labels of the ``activity`` enum, by code.
ACTIVITY_LABELS = ("still", "walking", "running", "automotive")


@dataclass(frozen=True)
class StreamSpec:
    """A stream plus what the signal generator needs to render it."""

    meta: StreamMeta  # min/max times are filled per request (they follow the clock)
    kind: str  # "accel" | "heart_rate" | "lfp" | "tremor" | "dyskinesia" | "activity"
    axis: str = ""
    hemisphere: str = ""

    @property
    def id(self) -> str:
        return self.meta.id


@dataclass
class SyntheticCohort:
    """Ground truth of what the emulator serves (ids, metadata, events)."""

    seed: int
    data_start: datetime
    orgs: list[Org]
    projects: list[Project]
    patients: list[Patient]
    specs: dict[str, StreamSpec]
    org_patients: dict[str, list[str]]  # org id -> patient ids
    cohort_patients: dict[str, list[str]]  # cohort id -> patient ids
    client_key_patient_id: str
    active_org_id: str
    user_id: str
    user_name: str = "Demo Researcher"
    user_email: str = "demo.researcher@example.org"
    _now: datetime = field(default=datetime(2026, 11, 1, tzinfo=UTC))

    # -- lookups -------------------------------------------------------------
    @property
    def stream_types(self) -> list[StreamType]:
        return list(STREAM_TYPES.values())

    @property
    def streams(self) -> list[StreamMeta]:
        """Stream metadata, with ``min_time``/``max_time`` for the current clock."""
        return [self.stream_meta(s) for s in self.specs.values()]

    def stream_meta(self, spec: StreamSpec) -> StreamMeta:
        start = self.data_start.timestamp()
        end = max(start, self._now.timestamp())
        from dataclasses import replace

        return replace(spec.meta, min_time=start, max_time=end)

    def patient(self, patient_id: str) -> Patient | None:
        return self._patients_by_id.get(patient_id)

    def org(self, org_id: str) -> Org | None:
        for org in self.orgs:
            if org.id == org_id or org.id == f"org-{org_id}":
                return org
        return None

    def project(self, project_id: str) -> Project | None:
        return next((p for p in self.projects if p.id == project_id), None)

    def cohort(self, cohort_id: str) -> Cohort | None:
        for p in self.projects:
            for c in p.cohorts:
                if c.id == cohort_id:
                    return c
        return None

    def project_patients(self, project: Project) -> list[str]:
        return list(self.org_patients.get(project.org_id, []))

    def patient_orgs(self, patient_id: str) -> list[str]:
        return [o for o, pids in self.org_patients.items() if patient_id in pids]

    def streams_of(self, patient_id: str) -> list[StreamSpec]:
        return [s for s in self.specs.values() if s.meta.patient_id == patient_id]

    def device_streams(self, patient_id: str, device_id: str, kind: str) -> list[StreamSpec]:
        return [
            s
            for s in self.specs.values()
            if s.meta.patient_id == patient_id and s.meta.device_id == device_id and s.kind == kind
        ]

    def __post_init__(self) -> None:
        self._patients_by_id = {p.id: p for p in self.patients}
        self._event_cache: dict[tuple[str, int], list[Event]] = {}

    # -- events --------------------------------------------------------------
    def events(self, patient_id: str, now: datetime | None = None) -> list[Event]:
        """All events of a patient that started before ``now`` (default: the clock)."""
        now = now or self._now
        out: list[Event] = []
        first_day = int(self.data_start.timestamp()) // DAY_S
        last_day = int(now.timestamp()) // DAY_S
        for day in range(first_day, last_day + 1):
            out.extend(e for e in self._day_events(patient_id, day) if e.start_time < now)
        return out

    def _day_events(self, patient_id: str, day: int) -> list[Event]:
        key = (patient_id, day)
        if key not in self._event_cache:
            self._event_cache[key] = _make_day_events(self.seed, patient_id, day)
        return self._event_cache[key]


_DRUGS = ("levodopa", "propranolol", "amantadine")
_SYMPTOMS = ("tremor", "dyskinesia", "slowness")


def _make_day_events(seed: int, patient_id: str, day: int) -> list[Event]:
    rng = random.Random(h_int(seed, "events", patient_id, day))
    base = datetime.fromtimestamp(day * DAY_S, tz=UTC)
    events: list[Event] = []

    def add(minute: int, ns: str, cat: str, enum: str, name: str, payload: dict, dur_min=None):
        start = base + timedelta(minutes=minute, seconds=rng.randrange(60))
        end = start + timedelta(minutes=dur_min) if dur_min else None
        eid = h(seed, "event", patient_id, day, len(events))[:32]
        events.append(
            Event(
                id=eid,
                patient_id=patient_id,
                display_name=name,
                namespace=ns,
                category=cat,
                enum=enum,
                start_time=start,
                end_time=end,
                payload=json.dumps(payload, sort_keys=True),
                method=rng.choice(("manual", "autolog")),
                tags=(cat,),
            )
        )

    drug = _DRUGS[h_int(seed, "drug", patient_id) % len(_DRUGS)]
    for hour in (8, 13, 18):
        add(
            hour * 60 + rng.randrange(-30, 30),
            "device",
            "medication",
            drug,
            drug.capitalize(),
            {"dose_mg": rng.choice((50, 100, 150)), "drug": drug},
        )
    if rng.random() < 0.7:
        sym = rng.choice(_SYMPTOMS)
        add(
            rng.randrange(9 * 60, 21 * 60),
            "patient",
            "symptom",
            sym,
            sym.capitalize(),
            {"severity": rng.randrange(1, 5)},
            dur_min=rng.randrange(5, 60),
        )
    if day % 2 == 0:
        add(
            rng.randrange(10 * 60, 17 * 60),
            "device",
            "settings",
            "stimulation_amplitude",
            "Stimulation amplitude change",
            {"amplitude_ma": round(rng.uniform(1.0, 4.0), 1), "hemisphere": "left"},
        )
    events.sort(key=lambda e: e.start_time)
    return events


# -- building -----------------------------------------------------------------
def _short_id(rng: random.Random, alphabet: str, before: int, sep: str, after: int) -> str:
    return (
        "".join(rng.choice(alphabet) for _ in range(before))
        + sep
        + "".join(rng.choice(alphabet) for _ in range(after))
    )


_UPPER = string.ascii_uppercase + string.digits
_MIXED = string.ascii_letters + string.digits
_HEX = "0123456789abcdef"


def floor_day(dt: datetime) -> datetime:
    ts = int(dt.timestamp()) // DAY_S * DAY_S
    return datetime.fromtimestamp(ts, tz=UTC)


def build_cohort(cfg: EmulatorConfig) -> SyntheticCohort:
    """Build the cohort for a config (cheap: metadata only)."""
    seed = cfg.seed
    data_start = floor_day(cfg.now) - timedelta(days=cfg.days)
    t0 = data_start.timestamp()

    orgs = [
        Org(f"org-{h(seed, 'org', 0)[:40]}", "Rune Demo Clinic", t0 - 400 * DAY_S, ("clinic",)),
        Org(f"org-{h(seed, 'org', 1)[:40]}", "Rune Research Lab", t0 - 300 * DAY_S, ("research",)),
    ]

    patients: list[Patient] = []
    specs: dict[str, StreamSpec] = {}
    for i in range(cfg.patients):
        pid = h(seed, "patient", i)[:32]
        created = t0 - (30 + i) * DAY_S
        prng = random.Random(h_int(seed, "devices", i))
        implant = _short_id(prng, _UPPER, 2, "*", 5)
        watch = _short_id(prng, _HEX, 2, "#", 4)
        phone = _short_id(prng, _MIXED, 2, "_", 5)
        devices = (
            Device(implant, pid, "Percept PC", "medtronic_percept_pc", False, created),
            Device(watch, pid, "Apple Watch", "apple_watch", False, created + 3600),
            Device(phone, pid, "iPhone", "iphone", False, created + 7200),
        )
        patients.append(Patient(pid, f"RL-{i + 1:03d}", created, devices))

        def add(
            kind, device, algorithm, stype, params, axis="", hemisphere="", pid=pid, created=created
        ):
            params = tuple(sorted(params.items()))
            sid = h(seed, "stream", pid, device, algorithm, params)[:64]
            meta = StreamMeta(
                id=sid,
                patient_id=pid,
                device_id=device,
                algorithm=algorithm,
                stream_type=STREAM_TYPES[stype],
                parameters=params,
                created_at=created + 86_400,
            )
            specs[sid] = StreamSpec(meta, kind, axis, hemisphere)

        for axis in ("x", "y", "z"):
            add(
                "accel",
                watch,
                "ingest-strive-applewatch-motion.0",
                "acceleration",
                {"category": "kinematics", "measurement": "acceleration", "axis": axis},
                axis=axis,
            )
        add(
            "heart_rate",
            watch,
            "ingest-strive-applewatch-hr.0",
            "heart_rate",
            {"category": "vitals", "measurement": "heart_rate"},
        )
        for hemi in ("left", "right"):
            add(
                "lfp",
                implant,
                "ingest-medtronic-percept-trend-logs.0",
                "lfp_trend_log_power",
                {
                    "category": "neural",
                    "measurement": "lfp_trend_log_power",
                    "hemisphere": hemi,
                },
                hemisphere=hemi,
            )
        for sym in ("tremor", "dyskinesia"):
            add(
                sym,
                watch,
                "ingest-strive-applewatch-mm.0",
                "duration",
                {"category": "symptom", "measurement": sym},
            )
        add(
            "activity",
            phone,
            "ingest-strive-phone-activity.0",
            "activity",
            {"category": "behavior", "measurement": "activity"},
        )

    all_ids = [p.id for p in patients]
    org_patients = {orgs[0].id: all_ids, orgs[1].id: all_ids[::2]}

    projects: list[Project] = []
    cohort_patients: dict[str, list[str]] = {}
    for k, (org, title) in enumerate(((orgs[0], "Tremor Study"), (orgs[1], "DBS Outcomes"))):
        proj_id = h(seed, "project", k)[:32]
        members = org_patients[org.id]
        halves = (members[::2], members[1::2]) if k == 0 else (members,)
        cohorts = []
        for j, part in enumerate(halves):
            cid = h(seed, "cohort", k, j)[:32]
            cohorts.append(Cohort(cid, f"{title} arm {'AB'[j]}", f"Arm {'AB'[j]}", proj_id))
            cohort_patients[cid] = list(part)
        projects.append(
            Project(proj_id, title, "active", f"{title} (synthetic)", org.id, tuple(cohorts))
        )

    return SyntheticCohort(
        seed=seed,
        data_start=data_start,
        orgs=orgs,
        projects=projects,
        patients=patients,
        specs=specs,
        org_patients=org_patients,
        cohort_patients=cohort_patients,
        client_key_patient_id=all_ids[0],
        active_org_id=orgs[0].id,
        user_id=h(seed, "user")[:32],
        _now=cfg.now,
    )
