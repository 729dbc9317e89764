"""The ``rune-lake`` command line: demo, refresh, backfill, emulator, catalog, settings.

Every error a user can cause (bad credentials or config, unknown project, end before
start, unreachable API, unwritable lake) is one clear line and a non-zero exit:
2 for bad input, 1 when a run did not land every window.
"""

from __future__ import annotations

import sys
from datetime import date
from typing import Annotated, NoReturn

import typer

from rune_lake.flows import cli_lake
from rune_lake.flows import cli_options as opt
from rune_lake.flows.cli_run import (
    check_runner,
    config_file,
    err,
    fail,
    preflight,
    quiet_prefect,
    run_flow,
    run_settings,
    show_settings,
    user_errors,
)
from rune_lake.flows.server import app as server_app

app = typer.Typer(
    name="rune-lake",
    help="Rune Labs cohort data -> hive-partitioned Parquet lake, orchestrated by Prefect.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: one line per option, metavars as given
    context_settings={"max_content_width": 120},
)
app.add_typer(server_app, name="server")


def _emulator(module: str = "rune_emulator"):
    """Import the emulator package (its server deps are the ``emulator`` extra)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise fail(
            f"the emulator needs the 'emulator' extra ({exc.name} is not installed): "
            "pip install -e '.\\[emulator]'"  # \[: a literal bracket for rich
        ) from None


@app.command()
def demo(
    lake: opt.Lake = "./lake",
    patients: Annotated[int, typer.Option(metavar="N", help="Synthetic patients")] = 3,
    days: Annotated[int, typer.Option(metavar="N", help="Days of history")] = 2,
    seed: Annotated[int, typer.Option(metavar="N", help="Cohort seed")] = 0,
    workers: Annotated[int, typer.Option(metavar="N", help="Parallel tasks")] = 4,
    serve: Annotated[
        bool | None,
        typer.Option(
            "--serve/--no-serve",
            metavar="",
            help="Then serve the backfill deployment on the Prefect server until Ctrl-C",
            show_default="when a Prefect server runs (rune-lake server start)",
        ),
    ] = None,
    serve_seconds: Annotated[
        int, typer.Option(metavar="N", help="Stop serving after N seconds (0: at Ctrl-C)")
    ] = 0,
    verbose: opt.Verbose = False,
) -> None:
    """Start the local Rune API emulator and refresh its cohort into LAKE, then show where
    to look (the lake, a DuckDB query, the run in the Prefect UI). Run again, it fetches
    only partitions that are new or still open."""
    quiet_prefect(verbose)
    check_runner("threads", workers)
    from rune_lake.flows.demo import run_demo

    with user_errors():
        code = run_demo(lake, patients, days, seed, workers, serve, serve_seconds)
    raise typer.Exit(code)


@app.command()
def refresh(
    lake: opt.Lake,
    project: opt.Projects = None,
    cohort: opt.Cohorts = None,
    patient: opt.Patients = None,
    category: opt.Categories = None,
    measurement: opt.Measurements = None,
    device_type: opt.DeviceTypes = None,
    stream_id: opt.StreamIds = None,
    org: opt.Org = None,
    events: opt.Events = True,
    lookback_days: Annotated[
        int, typer.Option(metavar="N", help="Days before each watermark to fetch again")
    ] = 0,
    since: Annotated[
        str | None,
        typer.Option(
            metavar="DATE",
            help="A never-loaded stream starts here (YYYY-MM-DD, UTC)",
            show_default="its first data",
        ),
    ] = None,
    chunk_days: opt.ChunkDays = 7,
    runner: opt.Runner = "threads",
    workers: opt.Workers = None,
    config: opt.Config = None,
    verbose: opt.Verbose = False,
) -> None:
    """Incremental refresh of the lake from the Rune API named by the settings
    (environment RUNE_*, ./rune-lake.yaml, or ~/.rune/config)."""
    quiet_prefect(verbose)
    check_runner(runner, workers)
    with user_errors():
        since_d = _parse_date("--since", since) if since else None
        config = config_file(config)
        preflight(lake, config, patient)
        from rune_lake.flows.refresh import refresh as refresh_flow

        code = run_flow(
            refresh_flow,
            runner=runner,
            workers=workers,
            settings=run_settings(config),
            lake=lake,
            projects=project or [],
            cohorts=cohort or [],
            patients=patient or [],
            categories=category or [],
            measurements=measurement or [],
            device_types=device_type or [],
            stream_ids=stream_id or [],
            org_id=org or "",
            include_events=events,
            lookback_days=lookback_days,
            since=since_d.isoformat() if since_d else "",
            chunk_days=chunk_days,
        )
    raise typer.Exit(code)


@app.command()
def backfill(
    lake: opt.Lake,
    start: Annotated[
        str, typer.Option(metavar="DATE", help="First UTC day to load (YYYY-MM-DD), inclusive")
    ],
    end: Annotated[
        str, typer.Option(metavar="DATE", help="UTC day to stop before (YYYY-MM-DD), exclusive")
    ],
    project: opt.Projects = None,
    cohort: opt.Cohorts = None,
    patient: opt.Patients = None,
    category: opt.Categories = None,
    measurement: opt.Measurements = None,
    device_type: opt.DeviceTypes = None,
    stream_id: opt.StreamIds = None,
    org: opt.Org = None,
    events: opt.Events = True,
    overwrite: Annotated[
        bool,
        typer.Option(
            metavar="",
            help="Fetch again partitions the lake already holds complete; replace those whose rows changed",
        ),
    ] = False,
    chunk_days: opt.ChunkDays = 7,
    runner: opt.Runner = "threads",
    workers: opt.Workers = None,
    config: opt.Config = None,
    verbose: opt.Verbose = False,
) -> None:
    """Load [START, END) into the lake, replacing the partitions it touches."""
    quiet_prefect(verbose)
    check_runner(runner, workers)
    with user_errors():
        start_d, end_d = _parse_date("--start", start), _parse_date("--end", end)
        from pydantic import ValidationError

        from rune_lake.flows.backfill import BackfillRange

        try:
            rng = BackfillRange(
                start=start_d,
                end=end_d,
                projects=project or [],
                cohorts=cohort or [],
                patients=patient or [],
                stream_ids=stream_id or [],
                categories=category or [],
                measurements=measurement or [],
                device_types=device_type or [],
                org_id=org or "",
                include_events=events,
                overwrite=overwrite,
            )
        except ValidationError as exc:
            raise fail(
                "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            ) from None
        config = config_file(config)
        preflight(lake, config, patient)
        from rune_lake.flows.backfill import backfill as backfill_flow

        code = run_flow(
            backfill_flow,
            runner=runner,
            workers=workers,
            settings=run_settings(config),
            range=rng,
            lake=lake,
            chunk_days=chunk_days,
        )
    raise typer.Exit(code)


def _parse_date(flag: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{flag} {value!r} is not a date: use YYYY-MM-DD (UTC)") from None


app.command()(cli_lake.catalog)
app.command()(cli_lake.repair)


@app.command()
def settings(
    config: opt.Config = None,
    credentials_block: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="Also show this Prefect Secret block (needs PREFECT_API_URL)",
            show_default="none",
        ),
    ] = None,
) -> None:
    """Show the resolved settings and where each came from, the flows' run settings,
    then every source looked at and what it holds (secrets masked), even when the
    settings do not resolve."""
    show_settings(config_file(config), credentials_block)


@app.command()
def emulator(
    host: Annotated[str, typer.Option(metavar="ADDRESS", help="Address to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="N", help="Port (0: any free port)")] = 8765,
    seed: Annotated[int, typer.Option(metavar="N", help="Cohort seed")] = 0,
    patients: Annotated[int, typer.Option(metavar="N", help="Synthetic patients")] = 3,
    days: Annotated[int, typer.Option(metavar="N", help="Days of history")] = 3,
    now: Annotated[
        str | None,
        typer.Option(
            metavar="TIME",
            help="Pin the clock at an ISO time (UTC); default: start now and advance with "
            "wall time",
            show_default="now",
        ),
    ] = None,
    chaos: Annotated[
        float, typer.Option(metavar="P", help="Probability of a fault per request")
    ] = 0.0,
    page_size: Annotated[int, typer.Option(metavar="N", help="Rows per V2 page")] = 100_000,
    late_data_hours: Annotated[
        float, typer.Option(metavar="H", help="Max delay before a sample shows")
    ] = 0.0,
    latency_ms: Annotated[
        float, typer.Option(metavar="N", help="Fixed delay before every response, in ms")
    ] = 0.0,
    access_token_id: Annotated[str | None, opt.emu_credential("access token id")] = None,
    access_token_secret: Annotated[str | None, opt.emu_credential("access token secret")] = None,
    client_key_id: Annotated[str | None, opt.emu_credential("client key id")] = None,
    client_access_key: Annotated[str | None, opt.emu_credential("client access key")] = None,
    jwt: Annotated[str | None, opt.emu_credential("JWT")] = None,
) -> None:
    """Serve the local Rune API emulator until interrupted (Ctrl-C); prints its URL and
    the credentials it accepts (without flags: the documented demo credentials)."""
    with user_errors():
        serve_forever = _emulator("rune_emulator.cli").serve_forever
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
            latency_ms=latency_ms,
            access_token_id=access_token_id,
            access_token_secret=access_token_secret,
            client_key_id=client_key_id,
            client_access_key=client_access_key,
            jwt=jwt,
        )


def main(warm: bool = True) -> None:
    """Entry point of the ``rune-lake`` script.

    ``refresh`` and ``backfill`` run in the warm runner when one runs beside the local
    server (:mod:`rune_lake.flows.warm`: no start-up imports), else here. Exits without
    the interpreter's finalization once the command is done (as mypy does): the exit
    handlers still run (Prefect's services drain their events and logs, a temporary
    server stops), then output is flushed and the process ends. Tearing down the
    modules of a run (Prefect, pyarrow, hundreds of MB of heap) took another 0.5-0.9 s
    after every command's work was over."""
    from rune_lake.flows import allocator

    allocator.prepare()  # before anything loads Arrow (``python -m rune_lake.flows.cli``)
    if warm:
        from rune_lake.flows.warm import try_run

        code = try_run(sys.argv[1:])
        if code is not None:
            sys.exit(code)
    hard_exit(run_command(sys.argv[1:]))


def run_command(argv: list[str]) -> int | str | None:
    """Run one ``rune-lake`` command line; its exit code (as ``sys.exit`` takes it)."""
    try:
        app(args=argv, prog_name="rune-lake")
        return 0
    except SystemExit as done:
        return done.code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130


def finish(code: int | str | None) -> int:
    """Run the exit handlers and flush; the exit status for ``code``."""
    import atexit
    import logging

    if isinstance(code, str):
        err.print(code)
        code = 1
    status = 0 if code is None else code
    try:
        atexit._run_exitfuncs()
        logging.shutdown()
    finally:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
    return status


def hard_exit(code: int | str | None) -> NoReturn:
    """:func:`finish`, then end the process with its status without the interpreter's
    finalization."""
    import os

    status = 1
    try:
        status = finish(code)
    finally:
        os._exit(status)


if __name__ == "__main__":
    main()
