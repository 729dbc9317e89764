"""The Rune client's settings: kept as an import path; they live in :mod:`rune_io.settings`
(the declaration of every variable, the sources, the report)."""

from rune_io.settings.load import load_settings
from rune_io.settings.model import (
    BOOL_KEYS,
    CREDENTIAL_KEYS,
    DEFAULT_GRAPH_URL,
    DEFAULT_STREAM_URL,
    ENV_VARS,
    FAMILIES,
    FLOAT_KEYS,
    INT_KEYS,
    PROJECT_FILE,
    RUNEQ_FILE,
    SECRET_KEYS,
    SETTABLE,
    AuthMethod,
    Secret,
    Settings,
)

__all__ = [
    "BOOL_KEYS",
    "CREDENTIAL_KEYS",
    "DEFAULT_GRAPH_URL",
    "DEFAULT_STREAM_URL",
    "ENV_VARS",
    "FAMILIES",
    "FLOAT_KEYS",
    "INT_KEYS",
    "PROJECT_FILE",
    "RUNEQ_FILE",
    "SECRET_KEYS",
    "SETTABLE",
    "AuthMethod",
    "Secret",
    "Settings",
    "load_settings",
]
