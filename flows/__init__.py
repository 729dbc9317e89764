"""rune-lake's Prefect flows and CLI.

``rune_io`` logs through the standard ``logging`` module; Prefect forwards the
``rune_io`` logger to the run's logs (set before Prefect reads its settings).
"""

import os

_extra = os.environ.get("PREFECT_LOGGING_EXTRA_LOGGERS", "")
if "rune_io" not in _extra.split(","):
    os.environ["PREFECT_LOGGING_EXTRA_LOGGERS"] = ",".join(x for x in (_extra, "rune_io") if x)
