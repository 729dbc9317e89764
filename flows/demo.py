"""``rune-lake demo``: the emulator in its own process, a refresh of its cohort into the
lake, then where to look: the lake, a DuckDB query, the run in the Prefect UI.

With the local server of ``rune-lake server start`` running (or any configured
``PREFECT_API_URL``), the demo then registers the ``backfill`` deployment on it and
serves it (with the emulator) until Ctrl-C, so Deployments > backfill > Run > Custom run
in the UI loads any window of the cohort at once. The local server a run started by
itself (``RUNE_LAKE_LOCAL_SERVER=keep``, the default when nothing runs) keeps the run in
its UI, and serves the deployment with ``--serve``: the demo still ends by itself.

The emulator runs in a child process, not in the pipeline's: its rendered-day cache
(hundreds of MB for the default cohort) and its request handling stay out of the
refresh's memory and off its interpreter lock.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from rune_lake.flows.cli_run import fail, out, preflight, run_flow, show_duckdb_sample
from rune_lake.flows.run_server import kept_by_a_run


def _start_emulator(seed: int, patients: int, days: int, now: datetime):
    """``python -m rune_emulator`` on a free port with the clock pinned at ``now``."""
    try:
        from rune_emulator import DEMO_ACCESS_TOKEN_ID, DEMO_ACCESS_TOKEN_SECRET
    except ModuleNotFoundError as exc:
        raise fail(
            f"the emulator needs the 'emulator' extra ({exc.name} is not installed): "
            "pip install -e '.\\[emulator]'"  # \[: a literal bracket for rich
        ) from None
    proc = subprocess.Popen(
        [sys.executable, "-m", "rune_emulator", "--port", "0", "--seed", str(seed)]
        + ["--patients", str(patients), "--days", str(days), "--now", now.isoformat()],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    found = re.search(r"(http://\S+)", line)
    if not found:
        proc.kill()
        raise fail(f"the emulator did not start: {line.strip() or proc.wait()}", 1)
    return proc, found.group(1), (DEMO_ACCESS_TOKEN_ID, DEMO_ACCESS_TOKEN_SECRET)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def ui_url() -> str | None:
    """The Prefect UI of the configured (or reused) server; None on the temporary one."""
    from rune_io.settings.environ import passed_through

    api = passed_through("PREFECT_API_URL")
    if not api:
        return None
    return (passed_through("PREFECT_UI_URL") or api.removesuffix("/api")).rstrip("/")


def run_demo(
    lake: str,
    patients: int,
    days: int,
    seed: int,
    workers: int,
    serve: bool | None,
    serve_seconds: float,
) -> int:
    """The demo; returns the exit code. ``serve`` None: serve the backfill deployment
    when a Prefect server (not the temporary one) records the runs."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    t0 = time.perf_counter()
    emu, url, (token_id, secret) = _start_emulator(seed, patients, days, now)
    try:
        from rune_io.settings import overrides

        # the emulator's URL and credentials, above the environment for this command
        demo_settings = {
            "RUNE_STREAM_URL": url,
            "RUNE_GRAPH_URL": url,
            "RUNE_ACCESS_TOKEN_ID": token_id,
            "RUNE_ACCESS_TOKEN_SECRET": secret,
        }
        out.print(
            f"[bold]rune-lake demo[/]: emulator at {url} ({patients} patients, {days} days "
            f"up to {now:%Y-%m-%d %H:%M} UTC) -> lake {lake}",
            highlight=False,
        )
        with overrides(demo_settings, source="the demo's emulator"):
            preflight(lake, None)
        from rune_lake.flows import cli_run
        from rune_lake.flows.refresh import refresh

        code = run_flow(
            refresh,
            runner="threads",
            workers=workers,
            settings=demo_settings,
            lake=lake,
            lookback_days=0,
        )
        out.print(f"demo took {time.perf_counter() - t0:.1f}s", highlight=False)
        if code == 0:
            show_duckdb_sample(lake)
        _where_to_look(lake, cli_run.LAST_FLOW_RUN_ID)
        ui = ui_url()
        if serve is None:  # a server the user started (or configured), not one a run kept
            serve = bool(ui) and not kept_by_a_run()
        if code == 0 and ui and serve:
            _serve_backfill(lake, ui, serve_seconds, demo_settings)
        elif ui and kept_by_a_run():
            out.print(
                "  backfill from the UI: `rune-lake demo --serve` serves the backfill "
                "deployment there until Ctrl-C (so does every demo after `rune-lake server "
                "start`)",
                highlight=False,
            )
        elif serve and not ui:
            out.print(
                "(nothing to serve the backfill deployment on: `rune-lake server start` "
                "first, then run the demo again)"
            )
        return code
    finally:
        _stop(emu)


def _where_to_look(lake: str, run_id: str | None) -> None:
    root = lake if "://" in lake else str(Path(lake).resolve())
    out.print(f"\n[bold]Where to look[/]\n  lake:       {root}", highlight=False)
    out.print(
        f"  catalog:    rune-lake catalog --lake {lake}\n"
        f"  DuckDB:     duckdb -c \"SELECT * FROM read_parquet('{root}/vitals__heart_rate__"
        "rate_per_min/**/*.parquet', hive_partitioning=true) LIMIT 5\"",
        highlight=False,
    )
    ui = ui_url()
    if ui and run_id:
        out.print(f"  Prefect UI: {ui}/runs/flow-run/{run_id}", highlight=False)
    elif run_id:
        out.print(
            f"  Prefect UI: this run ({run_id}) ran on a temporary server and is in Prefect's "
            "local database: `rune-lake server start` serves it and its UI (and keeps later "
            "runs there; the next demo then serves the backfill deployment)",
            highlight=False,
        )


def _serve_backfill(lake: str, ui: str, seconds: float, settings: dict[str, str]) -> None:
    """Register the ``backfill`` deployment (its lake: this demo's) on the server and
    execute its runs here until Ctrl-C (or ``seconds``), the emulator still running."""
    from prefect import serve
    from prefect.deployments.runner import RunnerDeployment

    from rune_lake.flows.backfill import backfill

    root = lake if "://" in lake else str(Path(lake).resolve())
    dep = backfill.to_deployment(
        name="backfill",
        description="Load a date range of the demo cohort (Run > Custom run).",
        parameters={"lake": root},
        tags=["rune-lake", "demo"],
    )
    assert isinstance(dep, RunnerDeployment)  # sync in a sync context
    out.print(
        f"\n[bold]Serving the backfill deployment[/] on {ui}: open {ui}/deployments, "
        "backfill > Run > Custom run, pick Start and End (UTC days), Submit; the run lands "
        f"in {root}. Ctrl-C stops (the emulator too).",
        highlight=False,
    )
    import signal
    import threading

    # A process started in the background by a non-interactive shell (`rune-lake demo &`,
    # CI) inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler:
    # neither Ctrl-C nor the timer below would stop serving. Take SIGINT back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    timer = threading.Timer(seconds, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.daemon = True  # never keeps the process alive
    if seconds > 0:
        timer.start()
    from rune_io.settings.environ import exported_settings

    try:
        with exported_settings(settings):  # its runs (child processes) read the emulator
            serve(dep, print_starting_message=False)
    except KeyboardInterrupt:
        pass
    finally:
        timer.cancel()
    out.print("stopped serving the backfill deployment", highlight=False)
