"""Query-parameter parsing shared by the V1 and V2 handlers (400 on bad input)."""

from __future__ import annotations

import base64
import hashlib
import json
import math
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from starlette.datastructures import QueryParams

from .errors import bad_request


def get_float(q: QueryParams, name: str) -> float | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return None
    try:
        val = float(raw)
    except ValueError:
        raise bad_request(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(val):
        raise bad_request(f"{name} must be finite")
    return val


def get_int(q: QueryParams, name: str, lo: int | None = None, hi: int | None = None) -> int | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return None
    try:
        val = int(raw)
    except ValueError:
        raise bad_request(f"{name} must be an integer, got {raw!r}") from None
    if (lo is not None and val < lo) or (hi is not None and val > hi):
        raise bad_request(f"{name} must be in [{lo}, {hi}], got {val}")
    return val


def get_choice(q: QueryParams, name: str, choices: tuple[str, ...], default: str) -> str:
    raw = q.get(name)
    if raw is None or raw == "":
        return default
    if raw not in choices:
        raise bad_request(f"{name} must be one of {list(choices)}, got {raw!r}")
    return raw


def get_time_ns(q: QueryParams, name: str) -> int | None:
    """``name`` (unix seconds, float) or ``name_ns`` (unix ns); both is a 400."""
    secs = get_float(q, name)
    ns = get_int(q, f"{name}_ns")
    if secs is not None and ns is not None:
        raise bad_request(f"only one of {name} and {name}_ns may be given")
    if secs is not None:
        return int(round(secs * 1e6)) * 1000
    return ns


def get_timezone(q: QueryParams) -> tuple[int | None, str | None]:
    tz = get_int(q, "timezone", -86_399, 86_399)
    name = q.get("timezone_name") or None
    if name:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise bad_request(f"unknown timezone_name {name!r}") from None
    if tz is not None and name:
        raise bad_request("only one of timezone and timezone_name may be given")
    return tz, name


def query_hash(q: QueryParams, path: str, exclude: tuple[str, ...] = ("page_token",)) -> str:
    items = sorted((k, v) for k, v in q.multi_items() if k not in exclude)
    return hashlib.sha256(json.dumps([path, items]).encode()).hexdigest()[:16]


def encode_token(state: dict, qhash: str) -> str:
    payload = json.dumps({**state, "q": qhash}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode_token(token: str, qhash: str) -> dict:
    try:
        pad = "=" * (-len(token) % 4)
        state = json.loads(base64.urlsafe_b64decode(token + pad))
        if not isinstance(state, dict):
            raise ValueError
    except (ValueError, TypeError):
        raise bad_request("invalid page token") from None
    if state.pop("q", None) != qhash:
        raise bad_request("page token does not belong to this query")
    return state
