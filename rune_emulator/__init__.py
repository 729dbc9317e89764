"""A local Rune API rebuilt from public evidence: GraphQL metadata, V1 and V2, one server.

Quick use::

    from rune_emulator import EmulatorConfig, running_emulator
    with running_emulator(EmulatorConfig(seed=0, patients=3, days=3)) as emu:
        emu.url  # use as both stream_url and graph_url

See ``rune_emulator/README.md`` for what is served and the demo credentials.
"""

from .catalog import STREAM_TYPES
from .cohort import StreamSpec
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
from .models import DATA_TYPES, Dimension, StreamMeta, StreamType
from .server import Emulator, running_emulator
from .state import FAULT_KINDS
from .truth import TRUTH_TYPES, truth_schema, truth_type

__all__ = [
    "DATA_TYPES",
    "DEFAULT_NOW",
    "DEMO_ACCESS_TOKEN_ID",
    "DEMO_ACCESS_TOKEN_SECRET",
    "DEMO_CLIENT_ACCESS_KEY",
    "DEMO_CLIENT_KEY_ID",
    "DEMO_JWT",
    "FAULT_KINDS",
    "MAX_BATCH_STREAMS",
    "STREAM_TYPES",
    "TRUTH_TYPES",
    "ChaosConfig",
    "Dimension",
    "Emulator",
    "EmulatorConfig",
    "StreamMeta",
    "StreamSpec",
    "StreamType",
    "running_emulator",
    "truth_schema",
    "truth_type",
]
