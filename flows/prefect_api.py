"""How a CLI run talks to a Prefect API: a client that gives up on a lost or failing API
in seconds, and the errors that say the API, not the run, failed.

:func:`cli_client` wraps the flow call of ``rune_lake.flows.cli_run.run_flow``, which
turns :func:`lost` and :func:`server_error` into its one-line errors."""

from __future__ import annotations

from contextlib import contextmanager

try:  # the errors of a Prefect API that went away (httpx is Prefect's client)
    import httpx

    API_LOST: tuple[type[BaseException], ...] = (httpx.TransportError,)
except ImportError:  # pragma: no cover - prefect always brings httpx
    API_LOST = ()


def lost(exc: BaseException) -> bool:
    """Whether ``exc`` is the Prefect API going away (a refused or dropped connection)."""
    return isinstance(exc, API_LOST)


def server_error(exc: BaseException) -> str | None:
    """``"503 Service Unavailable"`` if ``exc`` is, or was raised from, a 5xx the Prefect
    API kept answering through the client's retries (Prefect's version check wraps it in
    a ``RuntimeError``), else None. Prefect is imported by then: a run raised."""
    from prefect.exceptions import PrefectHTTPStatusError

    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, PrefectHTTPStatusError) and cur.response.status_code >= 500:
            return f"{cur.response.status_code} {cur.response.reason_phrase}"
        cur = cur.__cause__ or cur.__context__
    return None


@contextmanager
def cli_client():
    """While a CLI run talks to a Prefect API: a lost API fails in seconds, not minutes,
    and says so in one line.

    Prefect's client retries a refused connection 5 times with exponential backoff
    (2+4+8+16+32 s) for every call, and the end of a run makes several calls, so a
    stopped server stalled the CLI for minutes after the data work was done. Three
    retries (2+4+8 s) ride out a blip and the 503 a Prefect server on SQLite answers
    while concurrent runs lock its database (one retry failed a nightly refresh run
    beside a backfill in CI); a stopped server then fails a run in ~100 s instead of
    ~60 s with one retry (tests/faults/test_prefect_api_lost.py, measured). A 5xx the
    API keeps answering fails in one line too (``server_error``). Prefect's background
    services report every event and log batch they could not deliver (a page of text
    each, on stderr): those reports are dropped here, since the CLI's own error line
    says what happened."""
    import logging

    from prefect.context import SettingsContext
    from prefect.settings import PREFECT_API_URL

    services = logging.getLogger("prefect._internal.concurrency")
    quiet = _DropErrors()
    services.addFilter(quiet)  # a filter survives Prefect's logging (re)configuration
    raise_exceptions = logging.raiseExceptions
    logging.raiseExceptions = False  # the API log handler's "--- Error logging to API ---"
    api_lost = False
    try:
        # the current settings with one field changed: ``temporary_settings`` would
        # build all of Prefect's settings again from the environment (80 ms, measured)
        ctx = SettingsContext.get()
        assert ctx is not None  # Prefect always has a root settings context
        client = ctx.settings.client.model_copy(update={"max_retries": 3})
        settings = ctx.settings.model_copy(update={"client": client})
        with SettingsContext(profile=ctx.profile, settings=settings):
            yield PREFECT_API_URL.value() or "the temporary local server"
    except API_LOST:
        api_lost = True  # the process exits; the services still drain into the dead API
        raise
    finally:
        if not api_lost:  # else stay quiet
            services.removeFilter(quiet)
            logging.raiseExceptions = raise_exceptions


class _DropErrors:
    """A logging filter that drops records of ERROR level and above."""

    def filter(self, record) -> bool:
        import logging

        return record.levelno < logging.ERROR
