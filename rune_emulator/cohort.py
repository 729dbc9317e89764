"""The synthetic research org: orgs, projects, cohorts, patients, devices, streams.

Shaped like the "Rune Demo" org of the public notebooks (04, 05, 07): per patient an
Apple Watch (symptom minutes, 50 Hz motion, patient reports), the Strive PD phone app
(HealthKit streams) and a DBS implant (LFP trend log power, spectra, therapy state).
Ids and metadata are a pure function of the seed; data is rendered by
:mod:`rune_emulator.signals`, so building a 50-patient cohort costs milliseconds.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from .catalog import STREAM_TYPES
from .clock import EPOCH, Clock
from .config import EmulatorConfig
from .events import make_day_events
from .hashing import DAY_S, h, h_int
from .models import Cohort, Device, Event, Org, Patient, Project, StreamMeta, StreamType

SEVERITIES = ("all", "none", "slight", "mild", "moderate", "strong", "unknown")

MD = "ingest-strive-applewatch-md.0"
MOTION = "ingest-strive-applewatch-motion.0"
EVENTS = "ingest-rune-events.0"
HEALTHKIT = "ingest-strive-healthkit.1"
PERCEPT = "ingest-medtronic-percept.0"

#: HealthKit streams: (kind, stream type, params). Inferred shapes, see the README.
_HEALTHKIT = (
    ("hk_heart_rate", "rate-per-min", {"category": "vitals", "measurement": "heart_rate"}),
    (
        "hk_steps",
        "count",
        {
            "category": "motion",
            "measurement": "step_count",
            "hk_aggregation": "true",
            "function": "sum",
        },
    ),
    ("hk_walking_speed", "speed", {"category": "motion", "measurement": "walking_speed"}),
    (
        "hk_distance",
        "distance",
        {"category": "motion", "measurement": "walking_running_distance"},
    ),
    (
        "hk_spo2",
        "percentage",
        {"category": "vitals", "measurement": "oxygen_saturation_percentage"},
    ),
    (
        "hk_pressure",
        "pressure",
        {"category": "environment", "measurement": "barometric_pressure"},
    ),
    ("hk_sleep", "span", {"category": "sleep", "measurement": "sleep_stage"}),
    ("hk_utc_offset", "timezone", {"category": "device_info", "measurement": "utc_offset"}),
)


@dataclass(frozen=True)
class StreamSpec:
    """A stream plus what the signal generator needs to render it."""

    meta: StreamMeta
    kind: str
    with_duration: bool = False  # the CSV carries ``measurement_duration_ns``

    @property
    def id(self) -> str:
        return self.meta.id

    @property
    def columns(self) -> list[str]:
        """The served CSV columns, in order."""
        cols = [d.identifier for d in self.meta.stream_type.dimensions]
        return cols + (["measurement_duration_ns"] if self.with_duration else [])

    def param(self, key: str) -> str:
        return self.meta.params.get(key, "")


@dataclass
class SyntheticCohort:
    """Ground truth of what the emulator serves (ids, metadata, events)."""

    seed: int
    data_start: datetime
    clock: Clock
    orgs: list[Org]
    projects: list[Project]
    patients: list[Patient]
    specs: dict[str, StreamSpec]
    org_patients: dict[str, list[str]]  # org id -> patient ids
    cohort_patients: dict[str, list[str]]  # cohort id -> patient ids
    client_key_patient_id: str
    active_org_id: str
    user_id: str  # "user-<40 hex>,user"
    user_name: str = "Demo Researcher"
    user_email: str = "demo.researcher@example.org"
    _event_cache: dict = field(default_factory=dict, repr=False)

    @property
    def stream_types(self) -> list[StreamType]:
        return list(STREAM_TYPES.values())

    @property
    def stream_types_by_id(self) -> dict[str, StreamType]:
        return dict(STREAM_TYPES)

    @property
    def streams(self) -> list[StreamMeta]:
        """Stream metadata with ``min_time``/``max_time`` as GraphQL serves them now (the
        served range: data start .. the clock)."""
        lo = self.data_start.timestamp()
        hi = max(lo, self.clock.now_ns() / 1e9)
        return [replace(s.meta, min_time=lo, max_time=hi) for s in self.specs.values()]

    def __post_init__(self) -> None:
        self._patients_by_id = {p.id: p for p in self.patients}

    def patient(self, patient_id: str) -> Patient | None:
        return self._patients_by_id.get(patient_id)

    def existing_patient(self, patient_id: str) -> Patient:
        """The patient of an id already checked (or taken from the cohort): KeyError if not."""
        return self._patients_by_id[patient_id]

    def existing_org(self, org_id: str) -> Org:
        """The org of an id already checked (or taken from the cohort): KeyError if not."""
        org = self.org(org_id)
        if org is None:
            raise KeyError(org_id)
        return org

    def org(self, org_id: str) -> Org | None:
        """By ``org-<x>``, ``org-<x>,org`` or bare ``<x>``."""
        short = org_id.split(",", 1)[0]
        for org in self.orgs:
            if org.id in (short, f"org-{short}"):
                return org
        return None

    def project(self, project_id: str) -> Project | None:
        return next((p for p in self.projects if p.id == project_id), None)

    def project_patients(self, project: Project) -> list[str]:
        return list(self.org_patients.get(project.org_id, []))

    def patient_orgs(self, patient_id: str) -> list[str]:
        return [o for o, pids in self.org_patients.items() if patient_id in pids]

    def streams_of(self, patient_id: str) -> list[StreamSpec]:
        return [s for s in self.specs.values() if s.meta.patient_id == patient_id]

    def events(self, patient_id: str, now: datetime | None = None) -> list[Event]:
        """GraphQL events of a patient that started before ``now`` (default: the clock)."""
        now = now or self.clock.now()
        out: list[Event] = []
        first_day = int(self.data_start.timestamp()) // DAY_S
        last_day = int(now.timestamp()) // DAY_S
        for day in range(first_day, last_day + 1):
            key = (patient_id, day)
            if key not in self._event_cache:
                self._event_cache[key] = make_day_events(self.seed, patient_id, day)
            out.extend(e for e in self._event_cache[key] if e.start_time < now)
        return out


# -- building -----------------------------------------------------------------
_MIXED = string.ascii_letters + string.digits
_HEX = "0123456789abcdef"


def _short_id(rng: random.Random, n: int, extra: str = "") -> str:
    """An 8-character device id like ``LARICRKw`` or ``IPl2_ivn`` (``extra``: one of)."""
    chars = [rng.choice(_MIXED) for _ in range(n)]
    if extra:
        chars[rng.randrange(1, n - 1)] = rng.choice(extra)
    return "".join(chars)


def floor_day(dt: datetime) -> datetime:
    days = (dt - EPOCH).days
    return EPOCH + timedelta(days=days)


def _patient_streams(seed: int, pid: str, watch: str, phone: str, implant: str, created: float):
    out: list[tuple[str, str, str, str, dict, bool]] = []  # kind, device, algo, type, params, dur
    for stype in ("duration", "percentage"):
        for sev in SEVERITIES:
            params = {"category": "symptom", "measurement": "tremor", "severity": sev}
            out.append(("symptom", watch, MD, stype, params, True))
        out.append(
            (
                "symptom",
                watch,
                MD,
                stype,
                {"category": "symptom", "measurement": "dyskinesia"},
                True,
            )
        )
    for meas in ("user", "gravity"):
        for axis in ("x", "y", "z"):
            params = {"category": "motion", "measurement": meas, "axis": axis}
            out.append(("motion", watch, MOTION, "acceleration", params, True))
    for log_type in ("start", "stop"):
        params = {
            "category": "patient_report",
            "measurement": "watch_recording_manual",
            "log_type": log_type,
        }
        out.append(("report", watch, EVENTS, "event", params, False))
    # a stream without a ``measurement`` parameter (the evidence shows such streams)
    out.append(
        (
            "medication",
            phone,
            EVENTS,
            "event",
            {"category": "patient_report", "log_type": "medication"},
            False,
        )
    )
    for kind, stype, params in _HEALTHKIT:
        params = dict(params)
        if kind in ("hk_heart_rate", "hk_spo2"):
            params["source_device"] = "Apple Watch"
        timed = stype not in ("span", "timezone")
        out.append((kind, phone, HEALTHKIT, stype, params, timed))
    for hemi in ("left", "right"):
        params = {"category": "neural", "measurement": "lfp_trend_log_power", "hemisphere": hemi}
        out.append(("lfp", implant, PERCEPT, "unitless-power", params, False))
    out.append(
        (
            "spectrum",
            implant,
            PERCEPT,
            "voltage-spectrum",
            {"category": "neural", "measurement": "brainsense_survey", "hemisphere": "left"},
            False,
        )
    )
    out.append(
        (
            "therapy",
            implant,
            PERCEPT,
            "boolean",
            {"category": "neural", "measurement": "therapy_status"},
            False,
        )
    )
    specs = []
    for kind, device, algo, stype, params, with_dur in out:
        pairs = tuple(sorted(params.items()))
        sid = h(seed, "stream", pid, device, algo, stype, pairs)
        meta = StreamMeta(sid, pid, device, algo, STREAM_TYPES[stype], pairs, created + DAY_S)
        specs.append(StreamSpec(meta, kind, with_dur))
    return specs


def _tour_streams(seed: int, pid: str, device: str, created: float) -> list[StreamSpec]:
    """One hourly stream of every catalog type the cohort does not serve (but ``bytes``,
    which has no timestamp to window by), on a test device: ``all_stream_types``."""
    served = {"duration", "percentage", "acceleration", "event", "rate-per-min", "count", "speed"}
    served |= {"distance", "pressure", "span", "timezone", "unitless-power", "voltage-spectrum"}
    served |= {"boolean", "bytes"}
    specs = []
    for tid, st in STREAM_TYPES.items():
        if tid in served:
            continue
        pairs = (("category", "device_info"), ("measurement", f"tour_{tid.replace('-', '_')}"))
        sid = h(seed, "stream", pid, device, "rune-test-tour.0", tid, pairs)
        meta = StreamMeta(sid, pid, device, "rune-test-tour.0", st, pairs, created + DAY_S)
        specs.append(StreamSpec(meta, "tour"))
    return specs


def build_cohort(cfg: EmulatorConfig, clock: Clock | None = None) -> SyntheticCohort:
    """Build the cohort for a config (cheap: metadata only)."""
    seed = cfg.seed
    data_start = floor_day(cfg.now) - timedelta(days=cfg.days)
    t0 = data_start.timestamp()
    orgs = [
        Org(f"org-{h(seed, 'org', 0)[:12]}", "Rune Demo", t0 - 400 * DAY_S, ("clinic",)),
        Org(f"org-{h(seed, 'org', 1)[:12]}", "Rune Research Lab", t0 - 300 * DAY_S, ("research",)),
    ]
    patients: list[Patient] = []
    specs: dict[str, StreamSpec] = {}
    for i in range(cfg.patients):
        pid = h(seed, "patient", i)[:32]
        created = t0 - (30 + i) * DAY_S
        prng = random.Random(h_int(seed, "devices", i))
        watch = _short_id(prng, 8)
        phone = _short_id(prng, 8, "_")
        implant = _short_id(prng, 7, "#*")
        devices: tuple[Device, ...] = (
            Device(watch, pid, "Apple Watch", "Apple Watch", False, created + 3600),
            Device(phone, pid, "Prod Strive PD App", "strivepd", False, created + 7200),
            Device(implant, pid, "Percept PC", "medtronic_percept_pc", False, created),
        )
        tour = cfg.all_stream_types and i == 0
        if tour:
            devices += (Device(_short_id(prng, 8), pid, "Test device", "test", False, created),)
        patients.append(Patient(pid, f"Patient {h(seed, 'code', i)[:5].upper()}", created, devices))
        for spec in _patient_streams(seed, pid, watch, phone, implant, created):
            specs[spec.id] = spec
        for spec in _tour_streams(seed, pid, devices[-1].id, created) if tour else ():
            specs[spec.id] = spec

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
        clock=clock or Clock(cfg.now, cfg.clock_advances),
        orgs=orgs,
        projects=projects,
        patients=patients,
        specs=specs,
        org_patients=org_patients,
        cohort_patients=cohort_patients,
        client_key_patient_id=all_ids[0],
        active_org_id=orgs[0].id,
        user_id=f"user-{h(seed, 'user')[:40]},user",
    )
