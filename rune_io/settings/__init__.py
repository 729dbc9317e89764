"""rune-lake's settings, one surface: every environment variable declared once
(:mod:`~rune_io.settings.declare`, the README's table is generated from it), read lazily
at the point of use (:mod:`~rune_io.settings.environ`: a ``rune-lake`` command's
overrides, else the environment; nothing at import), the Rune client's typed
:class:`Settings` (:mod:`~rune_io.settings.model`) resolved from arguments, environment,
``rune-lake.yaml`` and runeq's ``~/.rune/config`` (:mod:`~rune_io.settings.load`), and
what ``rune-lake settings`` shows (:mod:`~rune_io.settings.report`).

``python -m rune_io.settings --markdown`` prints the README's table; ``--write README.md``
regenerates it in place.
"""

from rune_io.settings import declare
from rune_io.settings.declare import PASSED_THROUGH, VARIABLES, SettingError, Var
from rune_io.settings.environ import current_overrides, overrides
from rune_io.settings.load import load_settings
from rune_io.settings.model import (
    CREDENTIAL_KEYS,
    ENV_VARS,
    FAMILIES,
    SECRET_KEYS,
    SETTABLE,
    AuthMethod,
    Secret,
    Settings,
)

__all__ = [
    "CREDENTIAL_KEYS",
    "ENV_VARS",
    "FAMILIES",
    "PASSED_THROUGH",
    "SECRET_KEYS",
    "SETTABLE",
    "VARIABLES",
    "AuthMethod",
    "Secret",
    "SettingError",
    "Settings",
    "Var",
    "current_overrides",
    "declare",
    "load_settings",
    "overrides",
]
