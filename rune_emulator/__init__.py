"""A faithful local Rune API: GraphQL metadata, V1 and V2 stream APIs, one server.

Quick use::

    from rune_emulator import EmulatorConfig, running_emulator
    with running_emulator(EmulatorConfig(seed=0, patients=3, days=3)) as emu:
        emu.url  # use as both stream_url and graph_url

See ``rune_emulator/README.md`` for what is served and the demo credentials.
"""

from .config import (
    DEFAULT_NOW,
    DEMO_ACCESS_TOKEN_ID,
    DEMO_ACCESS_TOKEN_SECRET,
    DEMO_CLIENT_ACCESS_KEY,
    DEMO_CLIENT_KEY_ID,
    DEMO_JWT,
    MAX_BATCH_STREAMS,
    ChaosConfig,
    EmulatorConfig,
)
from .server import Emulator, running_emulator
from .state import FAULT_KINDS

__all__ = [
    "DEFAULT_NOW",
    "DEMO_ACCESS_TOKEN_ID",
    "DEMO_ACCESS_TOKEN_SECRET",
    "DEMO_CLIENT_ACCESS_KEY",
    "DEMO_CLIENT_KEY_ID",
    "DEMO_JWT",
    "FAULT_KINDS",
    "MAX_BATCH_STREAMS",
    "ChaosConfig",
    "Emulator",
    "EmulatorConfig",
    "running_emulator",
]
