"""Forward ``rune_io``'s log records to the Prefect run they happen in.

``rune_io`` is a plain library that logs through :mod:`logging`. Inside a flow or task
run, its records go to Prefect's API log handler, so they show in the run's logs in the
UI; outside a run (the CLI's pre-flight checks, notebooks) they are left alone. Prefect's
own ``PREFECT_LOGGING_EXTRA_LOGGERS`` does the forwarding too, but warns for every
record outside a run; if it is configured, it is used as is.
"""

from __future__ import annotations

import logging

from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler

LOGGER = "rune_io"


class RunLogHandler(APILogHandler):
    """An API log handler that ignores records emitted outside a flow or task run."""

    def emit(self, record: logging.LogRecord) -> None:
        if FlowRunContext.get() is None and TaskRunContext.get() is None:
            return
        super().emit(record)


def forward_rune_io_logs(level: int = logging.INFO) -> None:
    """Idempotent: attach :class:`RunLogHandler` to the ``rune_io`` logger."""
    logger = logging.getLogger(LOGGER)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    if not any(isinstance(h, APILogHandler) for h in logger.handlers):
        logger.addHandler(RunLogHandler())
