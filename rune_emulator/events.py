"""GraphQL ``eventList`` events of a patient: medication, symptom notes, setting changes.

A pure function of (seed, patient, day), cached per day by the cohort.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from .hashing import DAY_S, h, h_int
from .models import Event

_DRUGS = ("levodopa", "propranolol", "amantadine")
_SYMPTOMS = ("tremor", "dyskinesia", "slowness")


def make_day_events(seed: int, patient_id: str, day: int) -> list[Event]:
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
