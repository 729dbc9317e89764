"""The ``rune-lake`` command line: demo, refresh, backfill, emulator, catalog, settings.

Every error a user can cause (bad credentials or config, unknown project, end before
start, unreachable API, unwritable lake) is one clear line and a non-zero exit:
2 for bad input, 1 when a run did not land every window.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="rune-lake",
    help="Rune Labs cohort data -> hive-partitioned Parquet lake, orchestrated by Prefect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

EXIT_INCOMPLETE = 1
EXIT_USAGE = 2

LakeOpt = Annotated[str, typer.Option("--lake", help="Lake URL: a directory or s3://bucket/prefix")]
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", help="Project config file (default ./rune-lake.yaml if present)"),
]
Many = Annotated[list[str] | None, typer.Option()]


def _quiet_prefect(verbose: bool) -> None:
    """Keep Prefect's console quiet unless --verbose: logs still reach the Prefect API,
    and the CLI prints progress and a summary. Must run before Prefect is imported."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if not verbose:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "CRITICAL")
        os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")


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


def _set_runner(runner: str, workers: int | None) -> None:
    if runner not in ("threads", "dask"):
        raise fail(f"--runner must be 'threads' or 'dask', not {runner!r}")
    os.environ["RUNE_LAKE_TASK_RUNNER"] = runner
    if workers is not None:
        if workers < 1:
            raise fail(f"--workers must be at least 1, got {workers}")
        os.environ["RUNE_LAKE_WORKERS"] = str(workers)


def _preflight(lake_url: str, config: Path | None, patients: list[str] | None = None):
    """Check settings, credentials and the lake before any flow starts: fast, clear
    failures instead of a run that retries into a wall. A client key reads one patient:
    it is checked with ``patient(id)`` (it may not read ``user``)."""
    from rune_io.client import RuneClient
    from rune_io.config import FAMILIES, load_settings
    from rune_io.discovery import client_key_needs_patient
    from rune_io.errors import AuthError, ConfigError, NotFound, TransientError
    from rune_io.lake import check_writable, open_lake
    from rune_io.lake.storage import put_bytes
    from rune_io.retry import RetryPolicy

    settings = load_settings(config)
    if config is not None:
        os.environ["RUNE_LAKE_CONFIG"] = str(config)
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
    try:
        lake = open_lake(lake_url)
        put_bytes(lake, "_catalog/_write_probe", b"ok")
        lake.fs.rm_file(lake.path("_catalog/_write_probe"))
    except (OSError, PermissionError) as exc:
        raise ConfigError(f"cannot write to the lake at {lake_url!r}: {exc}") from None
    check_writable(lake)  # never mix lake format versions
    return settings, user


@contextmanager
def _prefect_api_for_runner():
    """Dask workers need a real Prefect API: with none configured, run a temporary local
    server for the run (see flows.runners.prefect_api_for_dask)."""
    if os.environ.get("RUNE_LAKE_TASK_RUNNER") != "dask":
        yield
        return
    from flows.runners import prefect_api_for_dask

    with prefect_api_for_dask() as (url, started):
        if started:
            err.print(
                f"dask: started a temporary Prefect server at {url} for this run (set "
                "PREFECT_API_URL to use your own)",
                highlight=False,
            )
        yield


def _run_flow(fn, **params) -> int:
    """Run a flow in-process with a progress bar; print its summary; return an exit code."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from flows import _run

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("done"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    )
    bar: dict[str, int] = {}

    def hook(event: str, done: int, total: int) -> None:
        if event not in bar:  # one bar per stage: discovery requests, then the tasks
            bar[event] = progress.add_task(event, total=total)
        progress.update(bar[event], completed=done, total=total)

    _run.PROGRESS_HOOKS.append(hook)
    try:
        with _prefect_api_for_runner(), progress:
            state = fn(return_state=True, **params)
    finally:
        _run.PROGRESS_HOOKS.remove(hook)
    result = state.result(raise_on_failure=False)
    if state.is_completed():
        out.print(result.text(), highlight=False)
        return 0
    if isinstance(result, _run.IncompleteRun):
        out.print(result.report.text(), highlight=False)
        err.print(
            f"[bold red]incomplete:[/] {len(result.report.failures)} chunk(s) failed; "
            "what landed is committed, and the next run retries the rest",
            highlight=False,
        )
        return EXIT_INCOMPLETE
    raise fail(_one_line(result) if isinstance(result, BaseException) else str(state.message))


# -- commands ------------------------------------------------------------------------


@app.command()
def demo(
    lake: LakeOpt = "./lake",
    patients: Annotated[int, typer.Option(help="Synthetic patients")] = 3,
    days: Annotated[int, typer.Option(help="Days of history")] = 2,
    seed: Annotated[int, typer.Option(help="Cohort seed")] = 0,
    workers: Annotated[int, typer.Option(help="Parallel tasks")] = 4,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Start the local Rune API emulator and refresh its cohort into LAKE (incremental:
    run it again and only what is new is fetched). Then show a DuckDB query."""
    _quiet_prefect(verbose)
    _set_runner("threads", workers)
    from rune_io.emulator import (
        DEMO_ACCESS_TOKEN_ID,
        DEMO_ACCESS_TOKEN_SECRET,
        EmulatorConfig,
        running_emulator,
    )

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    cfg = EmulatorConfig(seed=seed, patients=patients, days=days, now=now)
    t0 = time.perf_counter()
    with user_errors(), running_emulator(cfg) as emu:
        os.environ.update(
            RUNE_STREAM_URL=emu.url,
            RUNE_GRAPH_URL=emu.url,
            RUNE_ACCESS_TOKEN_ID=DEMO_ACCESS_TOKEN_ID,
            RUNE_ACCESS_TOKEN_SECRET=DEMO_ACCESS_TOKEN_SECRET,
        )
        for var in ("RUNE_CLIENT_KEY_ID", "RUNE_CLIENT_ACCESS_KEY", "RUNE_JWT"):
            os.environ.pop(var, None)
        out.print(
            f"[bold]rune-lake demo[/]: emulator at {emu.url} ({patients} patients, {days} days "
            f"up to {now:%Y-%m-%d %H:%M} UTC) -> lake {lake}",
            highlight=False,
        )
        _preflight(lake, None)
        from flows.refresh import refresh

        code = _run_flow(refresh, lake=lake, lookback_days=0)
        requests = emu.stats.count(path_prefix="/v2/streams")
    out.print(f"{requests} stream-data requests; demo took {time.perf_counter() - t0:.1f}s")
    if code == 0:
        _show_duckdb_sample(lake)
    raise typer.Exit(code)


def _show_duckdb_sample(lake: str) -> None:
    import duckdb

    root = lake.rstrip("/")
    query = (
        "SELECT patient_id, date_trunc('day', time) AS day, count(*) AS samples,\n"
        "       round(avg(heart_rate), 1) AS mean_bpm, round(max(heart_rate), 1) AS max_bpm\n"
        f"FROM read_parquet('{root}/vitals__heart_rate/**/*.parquet', hive_partitioning=true)\n"
        "GROUP BY ALL ORDER BY ALL LIMIT 8"
    )
    out.print("\n[bold]Query it with DuckDB:[/]\n" + query, highlight=False)
    try:
        rel = duckdb.sql(query)
    except duckdb.Error as exc:
        out.print(f"(query failed: {exc})")
        return
    cols = rel.columns
    rows = rel.fetchall()
    widths = [max(len(c), *(len(str(r[i])) for r in rows)) for i, c in enumerate(cols)]
    out.print("  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)), highlight=False)
    for r in rows:
        out.print(
            "  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)), highlight=False
        )


@app.command()
def refresh(
    lake: LakeOpt,
    project: Many = None,
    cohort: Many = None,
    patient: Many = None,
    category: Many = None,
    measurement: Many = None,
    device_type: Many = None,
    stream_id: Many = None,
    org: Annotated[str | None, typer.Option(help="Make this org active first")] = None,
    lookback_days: Annotated[int, typer.Option(help="Re-fetch days before watermarks")] = 0,
    since: Annotated[str | None, typer.Option(help="First load starts here (YYYY-MM-DD)")] = None,
    chunk_days: Annotated[int, typer.Option(help="Windows per task")] = 7,
    events: Annotated[bool, typer.Option("--events/--no-events")] = True,
    runner: Annotated[str, typer.Option(help="threads | dask")] = "threads",
    workers: Annotated[int | None, typer.Option(help="Threads, or Dask worker processes")] = None,
    config: ConfigOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Incremental refresh of the lake from the Rune API named by the settings
    (environment RUNE_*, ./rune-lake.yaml, or ~/.rune/config)."""
    _quiet_prefect(verbose)
    _set_runner(runner, workers)
    with user_errors():
        since_d = _parse_date("--since", since) if since else None
        _preflight(lake, config, patient)
        from flows.refresh import refresh as refresh_flow

        code = _run_flow(
            refresh_flow,
            lake=lake,
            projects=project,
            cohorts=cohort,
            patients=patient,
            categories=category,
            measurements=measurement,
            device_types=device_type,
            stream_ids=stream_id,
            org_id=org,
            include_events=events,
            lookback_days=lookback_days,
            since=since_d,
            chunk_days=chunk_days,
        )
    raise typer.Exit(code)


@app.command()
def backfill(
    lake: LakeOpt,
    start: Annotated[str, typer.Option(help="First UTC day (YYYY-MM-DD), inclusive")],
    end: Annotated[str, typer.Option(help="UTC day to stop before (YYYY-MM-DD), exclusive")],
    project: Many = None,
    cohort: Many = None,
    patient: Many = None,
    stream_id: Many = None,
    category: Many = None,
    measurement: Many = None,
    overwrite: Annotated[bool, typer.Option(help="Re-fetch partitions already loaded")] = False,
    events: Annotated[bool, typer.Option("--events/--no-events")] = True,
    chunk_days: Annotated[int, typer.Option(help="Windows per task")] = 7,
    runner: Annotated[str, typer.Option(help="threads | dask")] = "threads",
    workers: Annotated[int | None, typer.Option(help="Threads, or Dask worker processes")] = None,
    config: ConfigOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Load [START, END) into the lake, replacing the partitions it touches."""
    _quiet_prefect(verbose)
    _set_runner(runner, workers)
    with user_errors():
        from pydantic import ValidationError

        from flows.backfill import BackfillRange

        try:
            rng = BackfillRange(
                start=_parse_date("--start", start),
                end=_parse_date("--end", end),
                projects=project or [],
                cohorts=cohort or [],
                patients=patient or [],
                stream_ids=stream_id or [],
                categories=category or [],
                measurements=measurement or [],
                include_events=events,
                overwrite=overwrite,
            )
        except ValidationError as exc:
            raise fail(
                "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            ) from None
        _preflight(lake, config, patient)
        from flows.backfill import backfill as backfill_flow

        code = _run_flow(backfill_flow, range=rng, lake=lake, chunk_days=chunk_days)
    raise typer.Exit(code)


def _parse_date(flag: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{flag} {value!r} is not a date: use YYYY-MM-DD (UTC)") from None


@app.command()
def catalog(lake: LakeOpt) -> None:
    """Summarize the lake: tables, rows, time span, bytes, last run, watermarks."""
    with user_errors():
        from rune_io.lake import open_lake, render_catalog_summary

        out.print(render_catalog_summary(open_lake(lake, create=False)), highlight=False)


@app.command()
def repair(lake: LakeOpt) -> None:
    """Full check of the catalog against every data file of LAKE (lists the whole lake):
    entries rebuilt for files that lack one, entries dropped whose file is gone. Runs
    recover from crashes by themselves; this is for a lake touched by something else."""
    with user_errors():
        from rune_io.lake import Catalog, check_writable, open_lake

        opened = open_lake(lake, create=False)
        check_writable(opened)
        rep = Catalog(opened).repair()
        out.print(
            f"repaired {lake}: {len(rep.added)} entries rebuilt, {len(rep.dropped)} dropped, "
            f"{len(rep.foreign)} foreign .parquet files, {len(rep.temps_removed)} staging "
            "files removed",
            highlight=False,
        )
        for label, paths in (
            ("rebuilt", rep.added),
            ("dropped", rep.dropped),
            ("foreign", rep.foreign),
        ):
            for p in paths:
                out.print(f"  {label} {p}", highlight=False)


@app.command()
def settings(config: ConfigOpt = None) -> None:
    """Show the resolved settings and where each came from (secrets masked)."""
    with user_errors():
        from rune_io.config import load_settings

        out.print(load_settings(config).describe(), highlight=False)


@app.command()
def emulator(
    host: Annotated[str, typer.Option(help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0: any free port)")] = 8765,
    seed: Annotated[int, typer.Option()] = 0,
    patients: Annotated[int, typer.Option()] = 3,
    days: Annotated[int, typer.Option()] = 3,
    now: Annotated[str | None, typer.Option(help="Clock: ISO time (default: now, UTC)")] = None,
    chaos: Annotated[float, typer.Option(help="Probability of a fault per request")] = 0.0,
    page_size: Annotated[int, typer.Option(help="Rows per V2 page")] = 100_000,
    late_data_hours: Annotated[float, typer.Option(help="Max delay before a sample shows")] = 0.0,
    access_token_id: Annotated[str | None, typer.Option()] = None,
    access_token_secret: Annotated[str | None, typer.Option()] = None,
    client_key_id: Annotated[str | None, typer.Option()] = None,
    client_access_key: Annotated[str | None, typer.Option()] = None,
    jwt: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Serve the local Rune API emulator until interrupted (Ctrl-C); prints its URL and
    the credentials it accepts (without flags: the documented demo credentials)."""
    with user_errors():
        from rune_io.emulator.cli import serve_forever

        serve_forever(
            host=host,
            port=port,
            seed=seed,
            patients=patients,
            days=days,
            now=now,
            chaos=chaos,
            page_size=page_size,
            late_data_hours=late_data_hours,
            access_token_id=access_token_id,
            access_token_secret=access_token_secret,
            client_key_id=client_key_id,
            client_access_key=client_access_key,
            jwt=jwt,
        )


def main() -> None:
    """Entry point of the ``rune-lake`` script."""
    try:
        app()
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
