"""What the ``rune-lake`` commands share: output, one-line errors and exit codes, the
pre-flight check (settings, credentials, lake) and running a flow with a progress bar."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.console import Console

from rune_lake.flows import prefect_api

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EXIT_INCOMPLETE = 1
EXIT_USAGE = 2
#: the id of the last flow run of :func:`run_flow` (the demo links to it in the UI)
LAST_FLOW_RUN_ID: str | None = None


def quiet_prefect(verbose: bool) -> None:
    """Keep Prefect's console quiet unless --verbose: logs still reach the Prefect API,
    and the CLI prints progress and a summary. Must run before Prefect is imported."""
    from rune_io.settings.environ import export_default
    from rune_lake.flows.run_server import reuse_local_server

    reuse_local_server()  # the server of `rune-lake server start`, if it runs
    export_default("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not verbose:
        export_default("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        export_default("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")


def fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def user_errors():
    """Turn the errors a user can cause into one line and an exit code."""
    from rune_io.errors import RuneIOError

    try:
        yield
    except typer.Exit:
        raise
    except RuneIOError as exc:
        raise fail(_one_line(exc)) from None
    except (ValueError, PermissionError, FileNotFoundError, OSError) as exc:
        raise fail(_one_line(exc)) from None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{text}" if text else type(exc).__name__


def check_runner(runner: str, workers: int | None) -> None:
    """``--runner`` and ``--workers`` as :func:`run_flow` takes them, or exit 2."""
    if runner not in ("threads", "dask"):
        raise fail(f"--runner must be 'threads' or 'dask', not {runner!r}")
    if workers is not None and workers < 1:
        raise fail(f"--workers must be at least 1, got {workers}")


def config_file(config: Path | None) -> Path | None:
    """The project file of a command: ``--config``, else ``RUNE_LAKE_CONFIG`` (the one the
    flows' tasks read), else none (``./rune-lake.yaml`` if present)."""
    from rune_io.settings.declare import LAKE_CONFIG

    if config is not None:
        return config
    named = LAKE_CONFIG.get()
    return Path(named) if named else None


def run_settings(config: Path | None) -> dict[str, str]:
    """The settings overrides that hand a command's project file to its flow's tasks."""
    return {"RUNE_LAKE_CONFIG": str(config)} if config is not None else {}


def preflight(lake_url: str, config: Path | None, patients: list[str] | None = None):
    """Check settings, credentials and the lake before any flow starts: fast, clear
    failures instead of a run that retries into a wall. A client key reads one patient:
    it is checked with ``patient(id)`` (it may not read ``user``); the lake must be of
    this release's format version."""
    from rune_io.api.client import RuneClient
    from rune_io.api.retry import RetryPolicy
    from rune_io.config import FAMILIES, load_settings
    from rune_io.errors import AuthError, ConfigError, NotFound, TransientError
    from rune_io.lake import check_format, open_lake
    from rune_io.lake.storage import check_writable
    from rune_io.pipeline.discover import client_key_needs_patient

    settings = load_settings(config)
    quick = RetryPolicy(max_attempts=2, base=0.2, cap=1.0)
    with RuneClient(settings, policy=quick) as client:
        try:
            user = None
            if settings.auth_method == "client_keys":
                client.graph.stream_types()  # any key may read these: checks the key
                client_key_needs_patient(client.graph, patients or [])
                for pid in patients or []:
                    client.graph.patient(pid)
            else:
                user = client.graph.current_user()
        except NotFound:
            raise ConfigError(
                f"the client key from {settings.sources.get('client_key_id', 'default')} "
                f"cannot read patient(s) {', '.join(patients or [])}: a client key reads "
                "exactly one patient, its own; pass that one with --patient"
            ) from None
        except AuthError as exc:
            key = FAMILIES[settings.auth_method][0]
            source = settings.sources.get(key, "default")
            raise ConfigError(
                f"the Rune API rejected the {settings.auth_method} credentials from {source} "
                f"(HTTP {exc.status}: {exc.message or exc.type}). Fix or replace them there; "
                "`rune-lake settings` shows every source used"
            ) from None
        except TransientError as exc:
            raise ConfigError(
                f"cannot reach the Rune API at {settings.graph_url}: {exc}. "
                f"Check RUNE_GRAPH_URL / RUNE_STREAM_URL and the network"
            ) from None
    check_writable(lake_url)
    check_format(open_lake(lake_url))  # never mix lake format versions
    from rune_lake.flows.run_server import start_temporary_server

    start_temporary_server()  # boots while the flows import (when none is configured)
    return settings, user


@contextmanager
def prefect_api_for_runner(runner: str):
    """Dask workers need a real Prefect API: with none configured, run a temporary local
    server for the run (see rune_lake.flows.runners.prefect_api_for_dask)."""
    if runner != "dask":
        yield
        return
    from rune_lake.flows.runners import prefect_api_for_dask

    with prefect_api_for_dask() as (url, started):
        if started:
            err.print(
                f"dask: started a temporary Prefect server at {url} for this run (set "
                "PREFECT_API_URL to use your own)",
                highlight=False,
            )
        yield


def _api_failure(exc: BaseException, api_url: str) -> str | None:
    """The one-line error of a run whose Prefect API, not the run, failed; else None."""
    after = "what landed is in the lake, and the next run commits or repairs it"
    if prefect_api.lost(exc):
        return (
            f"lost the Prefect API at {api_url} during the run ({_one_line(exc)}): {after}; "
            "start the Prefect server again (or check PREFECT_API_URL) and rerun"
        )
    status = prefect_api.server_error(exc)
    if status is None:
        return None
    return (
        f"the Prefect API at {api_url} kept answering {status} during the run: {after}; "
        "rerun. A Prefect server on its default SQLite database answers 503 while "
        "concurrent runs lock the database (PrefectHQ/prefect#18934); a shared server "
        "wants PostgreSQL (PREFECT_API_DATABASE_CONNECTION_URL)"
    )


def run_flow(
    fn,
    *,
    runner: str = "threads",
    workers: int | None = None,
    settings: Mapping[str, str] | None = None,
    **params,
) -> int:
    """Run flow ``fn`` in-process with ``params``, on the task runner ``runner`` with
    ``workers`` (default ``RUNE_LAKE_WORKERS``) and the settings overrides ``settings``
    (variable -> value, for this run only, never written to the process environment);
    show a progress bar, print the summary, return an exit code."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskID,
        TextColumn,
        TimeElapsedColumn,
    )

    from rune_io.settings import overrides
    from rune_lake.flows import run
    from rune_lake.flows.heartbeats import stop_heartbeats_promptly
    from rune_lake.flows.run_server import announce_reuse, temporary_server_settings
    from rune_lake.flows.runners import SettingsTaskRunner, make_task_runner

    announce_reuse()
    import prefect.context

    # the environment as this command set it (a warm runner's child imported Prefect
    # before it had this command's environment)
    prefect.context.refresh_global_settings_context()
    stop_heartbeats_promptly()  # the run ends with its last task, not up to 1 s later

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("done"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    bar: dict[str, TaskID] = {}

    def hook(event: str, done: int, total: int) -> None:
        if event not in bar:  # one bar per stage: discovery requests, then the tasks
            bar[event] = progress.add_task(event, total=total)
        progress.update(bar[event], completed=done, total=total)

    api_url = "PREFECT_API_URL"  # until the run's client is set up
    try:
        runs = dict(settings or {})
        if workers:  # the plan packs about one unit per worker (RUNE_LAKE_WORKERS in the flow)
            runs["RUNE_LAKE_WORKERS"] = str(workers)
        # a flow declared with SettingsTaskRunner makes, when its run starts, the runner
        # these settings name; ``with_options`` would build the flow object again (its
        # parameters' schema: 28 ms a command, cProfile)
        by_settings = isinstance(fn.task_runner, SettingsTaskRunner)
        if by_settings:
            runs["RUNE_LAKE_TASK_RUNNER"] = runner
        with overrides(runs), temporary_server_settings(), prefect_api_for_runner(runner):
            flow = (
                fn
                if by_settings
                else fn.with_options(task_runner=make_task_runner(runner, workers))
            )
            with run.progress_to(hook), progress, prefect_api.cli_client() as api_url:
                state = flow(return_state=True, **params)
    except Exception as exc:
        message = _api_failure(exc, api_url)
        if message is None:
            raise
        raise fail(message, EXIT_INCOMPLETE) from None
    global LAST_FLOW_RUN_ID
    LAST_FLOW_RUN_ID = str(state.state_details.flow_run_id or "") or None
    result = state.result(raise_on_failure=False)
    if state.is_completed():
        out.print(result.text(), highlight=False)
        return 0
    if isinstance(result, run.IncompleteRun):
        out.print(result.report.text(), highlight=False)
        err.print(
            f"[bold red]incomplete:[/] {len(result.report.failures)} chunk(s) failed; "
            "what landed is committed, and the next run retries the rest",
            highlight=False,
        )
        return EXIT_INCOMPLETE
    raise fail(_one_line(result) if isinstance(result, BaseException) else str(state.message))


# -- commands ------------------------------------------------------------------------


def show_settings(config: Path | None, credentials_block: str | None) -> None:
    """``rune-lake settings``: the resolved settings and where each came from, the run
    settings, then every source and what it holds (masked); exit 2 if any is bad."""
    from rune_io.errors import RuneIOError
    from rune_io.settings import load_settings
    from rune_io.settings.report import describe_run_settings, describe_sources

    block = None
    if credentials_block:
        block = (credentials_block, _read_block(credentials_block))
    problems: list[str] = []
    try:
        creds = block[1] if block and isinstance(block[1], dict) else {}
        out.print(
            load_settings(config, **{k: v for k, v in creds.items() if v}).describe(),
            highlight=False,
        )
    except (RuneIOError, TypeError) as exc:  # TypeError: a block with keys it does not take
        problems.append(str(exc))
    text, bad = describe_run_settings()
    problems += bad
    out.print("\n" + text, highlight=False)
    out.print("\n" + describe_sources(config, credentials_block=block), highlight=False)
    if problems:
        raise fail(" ".join(problems[0].split()))


def _read_block(name: str):
    """A Secret block's JSON value, or why it could not be read (one line)."""
    try:
        from rune_lake.tasks.runtime import credentials_from_block

        return credentials_from_block(name)
    except Exception as exc:  # noqa: BLE001 - shown to the user, never raised
        return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"


def show_duckdb_sample(lake: str) -> None:
    import duckdb

    root = lake.rstrip("/")
    query = (
        "SELECT patient_id, date_trunc('day', time) AS day, count(*) AS samples,\n"
        "       round(avg(rate), 1) AS mean_bpm, round(max(rate), 1) AS max_bpm\n"
        f"FROM read_parquet('{root}/vitals__heart_rate__rate_per_min/**/*.parquet', hive_partitioning=true)\n"
        "GROUP BY ALL ORDER BY ALL LIMIT 8"
    )
    out.print("\n[bold]Query it with DuckDB:[/]\n" + query, highlight=False)
    try:
        rel = duckdb.sql(query)
    except duckdb.Error as exc:
        out.print(f"(query failed: {exc})")
        return
    assert rel is not None  # a SELECT always gives a relation
    cols = rel.columns
    rows = rel.fetchall()
    widths = [max(len(c), *(len(str(r[i])) for r in rows)) for i, c in enumerate(cols)]
    out.print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)), highlight=False)
    for r in rows:
        out.print(
            "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)), highlight=False
        )
