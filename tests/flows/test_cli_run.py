"""The CLI configures its flow run, it does not write the environment: ``--runner`` and
``--workers`` become the task runner the run makes (settings overrides scoped to the
command), ``--config`` reaches the run's tasks the same way."""

from __future__ import annotations

import os

import pytest
from prefect.task_runners import ThreadPoolTaskRunner
from typer.testing import CliRunner

from rune_emulator import (
    DEMO_ACCESS_TOKEN_ID,
    DEMO_ACCESS_TOKEN_SECRET,
    EmulatorConfig,
    running_emulator,
)
from rune_io.settings import VARIABLES
from rune_lake.flows import runners
from rune_lake.flows.cli import app
from tests.environ import patched_environ
from tests.flows.conftest import NOW

#: what the CLI may set, for Prefect (``quiet_prefect``: defaults, never overwritten)
PREFECT_QUIET = {
    "PREFECT_SERVER_ANALYTICS_ENABLED",
    "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL",
    "PREFECT_SERVER_LOGGING_LEVEL",
    # the embedded server's start-up timeout (flows/run_server.py reuse_local_server)
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS",
}


def test_refresh_options_configure_the_flow_and_leave_the_environment_alone(tmp_path, monkeypatch):
    made = []
    real = runners.make_task_runner

    def recording(kind=None, n_workers=None):
        made.append(r := real(kind, n_workers))
        return r

    monkeypatch.setattr(runners, "make_task_runner", recording)
    cfg = EmulatorConfig(seed=5, patients=1, days=1, now=NOW)
    with running_emulator(cfg) as emu:
        config = tmp_path / "rune-lake.yaml"
        # the credentials are in the project file alone: tasks that did not read it fail
        config.write_text(
            f"rune:\n  stream_url: {emu.url}\n  graph_url: {emu.url}\n"
            f"  access_token_id: {DEMO_ACCESS_TOKEN_ID}\n"
            f"  access_token_secret: {DEMO_ACCESS_TOKEN_SECRET}\n  max_attempts: 3\n"
        )
        # the options win over the environment's runner settings
        fast = {
            "RUNE_LAKE_TASK_RETRY_DELAYS": "0.2",
            "RUNE_LAKE_TASK_RUNNER": "dask",
            "RUNE_LAKE_WORKERS": "7",
        }
        with patched_environ(fast, clear=[v.name for v in VARIABLES] + sorted(PREFECT_QUIET)):
            before = dict(os.environ)
            lake = tmp_path / "lake"
            res = CliRunner().invoke(
                app,
                [
                    "refresh",
                    "--lake",
                    str(lake),
                    "--category",
                    "vitals",
                    "--no-events",
                    "--runner",
                    "threads",
                    "--workers",
                    "2",
                    "--config",
                    str(config),
                ],
                catch_exceptions=False,
            )
            after = dict(os.environ)
    assert res.exit_code == 0, res.output
    assert [(type(r), r._max_workers) for r in made] == [(ThreadPoolTaskRunner, 2)]
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    assert changed <= PREFECT_QUIET, changed
    assert list(lake.glob("vitals__*/**/*.parquet"))  # the tasks read the project file


def test_a_flows_task_runner_is_chosen_when_its_run_starts(monkeypatch):
    """The flows are imported already; the settings of the moment a run starts count
    (Prefect calls ``duplicate()`` at the start of every run)."""
    from prefect.task_runners import ThreadPoolTaskRunner

    from rune_lake.flows.backfill import backfill
    from rune_lake.flows.refresh import refresh

    for flow in (refresh, backfill):
        assert isinstance(flow.task_runner, runners.SettingsTaskRunner)
        monkeypatch.setenv("RUNE_LAKE_TASK_RUNNER", "threads")
        monkeypatch.setenv("RUNE_LAKE_WORKERS", "3")
        chosen = flow.task_runner.duplicate()
        assert isinstance(chosen, ThreadPoolTaskRunner) and chosen._max_workers == 3
        monkeypatch.setenv("RUNE_LAKE_TASK_RUNNER", "dask")
        monkeypatch.setenv("RUNE_LAKE_DASK_ADDRESS", "tcp://10.0.0.1:8786")
        assert flow.task_runner.duplicate().address == "tcp://10.0.0.1:8786"
        monkeypatch.delenv("RUNE_LAKE_DASK_ADDRESS")
        monkeypatch.setenv("RUNE_LAKE_WORKERS", "0")
        with pytest.raises(ValueError, match="RUNE_LAKE_WORKERS='0': must be at least 1"):
            flow.task_runner.duplicate()


def test_dask_workers_get_the_commands_settings_overrides():
    from rune_io.settings import overrides

    with overrides({"RUNE_LAKE_CONFIG": "/etc/rune-lake.yaml"}):
        r = runners.make_task_runner("dask", 2)
    assert r.cluster_kwargs["n_workers"] == 2
    assert r.cluster_kwargs["env"] == {"RUNE_LAKE_CONFIG": "/etc/rune-lake.yaml"}
    assert "env" not in runners.make_task_runner("dask", 2).cluster_kwargs


def test_settings_command_shows_run_settings_and_fails_on_a_bad_one(tmp_path):
    values = {"RUNE_JWT": "a-jwt", "RUNE_LAKE_WORKERS": "many", "HOME": str(tmp_path)}
    with patched_environ(values, clear=[v.name for v in VARIABLES]):
        res = CliRunner().invoke(app, ["settings"], catch_exceptions=False)
        fine = CliRunner().invoke(app, ["settings"], env={"RUNE_LAKE_WORKERS": "6"})
    assert res.exit_code == 2
    assert "RUNE_LAKE_WORKERS = <invalid>  (environment)" in res.stdout
    assert "environment RUNE_LAKE_WORKERS='many': must be an integer" in res.stderr
    assert fine.exit_code == 0, fine.output
    assert "run settings (flows and tasks):\n  RUNE_LAKE_URL = ./lake  (default)" in fine.stdout
    assert "RUNE_LAKE_WORKERS = 6  (environment)" in fine.stdout


def test_a_cli_run_retries_a_lost_prefect_api_three_times_and_changes_nothing_else():
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_CLIENT_MAX_RETRIES,
        get_current_settings,
        temporary_settings,
    )

    from rune_lake.flows.prefect_api import cli_client

    with temporary_settings({PREFECT_CLIENT_MAX_RETRIES: 7}):
        before = get_current_settings()
        with cli_client() as url:
            assert url == (PREFECT_API_URL.value() or "the temporary local server")
            assert PREFECT_CLIENT_MAX_RETRIES.value() == 3
            inside = get_current_settings()
            assert inside.model_dump(exclude={"client"}) == before.model_dump(exclude={"client"})
            rest = {"max_retries"}
            assert inside.client.model_dump(exclude=rest) == before.client.model_dump(exclude=rest)
        assert PREFECT_CLIENT_MAX_RETRIES.value() == 7
