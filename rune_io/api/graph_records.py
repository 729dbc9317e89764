"""GraphQL objects -> :mod:`rune_io.api.models` records, and the API's id forms.

Each ``parse_*`` takes one object as the API serves it (field names on the wire) and
returns a frozen record; times become unix seconds (``_ts``) or aware UTC datetimes.
A required field that is missing raises :class:`~rune_io.errors.DataError` (see
:func:`records`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

from rune_io.api.models import (
    Cohort,
    Device,
    Dimension,
    Event,
    Org,
    Project,
    StreamMeta,
    StreamType,
)
from rune_io.errors import DataError
from rune_io.times import to_unix, to_utc

R = TypeVar("R")

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


def records(items: Iterable[Any], parse: Callable[[Any], R], what: str) -> list[R]:
    """``[parse(x) for x in items]``; a malformed object (a missing or mistyped field)
    raises :class:`DataError` naming ``what`` (the query and list) and the object's id."""
    out: list[R] = []
    for item in items or ():
        try:
            out.append(parse(item))
        except DataError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            ident = item.get("id") if isinstance(item, Mapping) else None
            raise DataError(
                f"{what}: malformed object {ident!r} ({type(exc).__name__}: {exc})"
            ) from None
    return out
