"""Deterministic hashing of the seed: every id and value of the emulator derives from it."""

from __future__ import annotations

import hashlib

DAY_S = 86_400
NS = 1_000_000_000
DAY_NS = DAY_S * NS


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
