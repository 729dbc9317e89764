"""Bad input: wrong or missing credentials, bad config, unknown ids, bad dates, an
unwritable lake. Each is one clear line on stderr and exit code 2, before any data
request; a 401 is never retried."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rune_emulator import DEMO_ACCESS_TOKEN_SECRET
from tests.faults.conftest import (
    CLIENT_KEY,
    CLIENT_KEY_ID,
    NOW,
    OUTPUTS,
    TOKEN_ID,
    TOKEN_SECRET,
    api_vars,
    cli,
    emulator,
    env,
)


def _one_error_line(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{text}"
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in text
    return lines[0]


def run(*args: str, home: Path) -> tuple[int, str]:
    """The CLI in-process (fast), environment as set by the caller; no ~/.rune/config."""
    from rune_lake.flows.cli import app

    runner = CliRunner()
    with env({**_current_rune_vars(), "HOME": str(home)}):
        res = runner.invoke(app, list(args), catch_exceptions=False)
    OUTPUTS.append(res.output)
    return res.exit_code, res.stderr if res.stderr_bytes is not None else res.output


def _current_rune_vars() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k.startswith("RUNE_")}


@pytest.fixture
def home(tmp_path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    return h


@pytest.mark.slow
def test_wrong_secret_fails_fast_without_retrying_401(tmp_path, fast_config):
    with emulator(fast_config) as emu:
        wrong = api_vars(emu) | {"RUNE_ACCESS_TOKEN_SECRET": DEMO_ACCESS_TOKEN_SECRET}
        emu.stats.reset()
        t0 = time.monotonic()
        res = cli(
            "refresh", "--lake", str(tmp_path / "lake"), env_vars=wrong | {"HOME": str(tmp_path)}
        )
        took = time.monotonic() - t0
        requests = list(emu.stats.log)
    assert res.code == 2, res.text
    line = _one_error_line(res.err)
    assert "rejected the access_token credentials from environment" in line
    assert "RUNE_ACCESS_TOKEN_ID" in line and "HTTP 401" in line and "Fix or replace" in line
    assert DEMO_ACCESS_TOKEN_SECRET not in res.text
    assert [r[3] for r in requests] == [401], requests  # one request, never retried
    assert took < 30  # interpreter and Prefect import included; the check itself is one request
    assert not (tmp_path / "lake").exists()


def test_wrong_client_key_names_its_source(tmp_path, fast_config, home):
    cfg = tmp_path / "rune-lake.yaml"
    with emulator(fast_config) as emu:
        cfg.write_text(
            f"rune:\n  stream_url: {emu.url}\n  graph_url: {emu.url}\n"
            f"  client_key_id: {CLIENT_KEY_ID}\n  client_access_key: not-the-key\n"
        )
        with env({"RUNE_LAKE_CONFIG": ""}):
            emu.stats.reset()
            code, err = run(
                "refresh", "--lake", str(tmp_path / "lake"), "--config", str(cfg), home=home
            )
            statuses = [r[3] for r in emu.stats.log]
    assert code == 2
    line = _one_error_line(err)
    assert f"project file {cfg} (rune.client_key_id)" in line and "HTTP 401" in line
    assert statuses == [401]


def test_missing_credentials(tmp_path, home):
    with env({}):
        code, err = run("refresh", "--lake", str(tmp_path / "lake"), home=home)
    line = _one_error_line(err)
    assert code == 2 and "no Rune credentials found" in line and "RUNE_ACCESS_TOKEN_ID" in line


@pytest.mark.parametrize(
    "text,expect",
    [
        ("rune: [unclosed\n", "is not valid YAML at line"),
        ("rune:\n  backof_base: 1\n", "unknown key(s) rune.backof_base"),
        ("rune:\n  max_attempts: many\n", "max_attempts must be an integer"),
        (
            f"rune:\n  access_token_id: {TOKEN_ID}\n  access_token_secret: {TOKEN_SECRET}\n"
            f"  client_key_id: {CLIENT_KEY_ID}\n  client_access_key: {CLIENT_KEY}\n",
            "credentials of more than one kind",
        ),
        ("rune:\n  stream_url: ftp://example.org\n", "must start with http"),
    ],
)
def test_bad_config_file(tmp_path, home, text, expect):
    cfg = tmp_path / "rune-lake.yaml"
    cfg.write_text(text)
    with env({}):
        code, err = run(
            "refresh", "--lake", str(tmp_path / "lake"), "--config", str(cfg), home=home
        )
        code2, err2 = run("settings", "--config", str(cfg), home=home)
    for c, e in ((code, err), (code2, err2)):
        line = _one_error_line(e)
        assert c == 2 and expect in line and str(cfg) in line, line
        assert TOKEN_SECRET not in e and CLIENT_KEY not in e


def test_mixed_credential_families_in_the_environment(tmp_path, home):
    mixed = {
        "RUNE_ACCESS_TOKEN_ID": TOKEN_ID,
        "RUNE_ACCESS_TOKEN_SECRET": TOKEN_SECRET,
        "RUNE_CLIENT_KEY_ID": CLIENT_KEY_ID,
        "RUNE_CLIENT_ACCESS_KEY": CLIENT_KEY,
    }
    with env(mixed):
        code, err = run("refresh", "--lake", str(tmp_path / "lake"), home=home)
    line = _one_error_line(err)
    assert code == 2 and "environment: credentials of more than one kind" in line
    assert TOKEN_SECRET not in err and CLIENT_KEY not in err


@pytest.mark.parametrize(
    "args,expect",
    [
        (["--project", "proj-nope"], "unknown project id 'proj-nope'"),
        (["--patient", "p-nope"], "unknown patient id 'p-nope'"),
        (["--since", "31-10-2026"], "--since '31-10-2026' is not a date"),
        (["--category", "vital"], "category 'vital' matches no stream of the selection"),
        (
            ["--category", "vital"],
            "category values there: device_info, environment, motion, neural",
        ),
        (["--measurement", "heartrate"], "measurement 'heartrate' matches no stream"),
        (["--device-type", "apple_wach"], "device type values there: Apple Watch,"),
        (["--stream-id", "no-such-stream"], "unknown stream id"),
    ],
)
def test_unknown_ids_and_bad_dates_in_refresh(tmp_path, fast_config, home, args, expect):
    with emulator(fast_config) as emu:
        emu.stats.reset()
        code, err = run("refresh", "--lake", str(tmp_path / "lake"), *args, home=home)
        data = [r for r in emu.stats.log if r[1].startswith(("/v1", "/v2"))]
    line = _one_error_line(err)
    assert code == 2 and expect in line, line
    assert data == []


def test_backfill_takes_the_same_filters_and_rejects_a_typo(tmp_path, fast_config, home):
    with emulator(fast_config) as emu:
        start, end = NOW.date(), NOW.date() + timedelta(days=1)
        emu.stats.reset()
        code, err = run(
            *("backfill", "--lake", str(tmp_path / "lake")),
            *("--start", start.isoformat(), "--end", end.isoformat()),
            *("--device-type", "apple_wach"),
            home=home,
        )
        data = [r for r in emu.stats.log if r[1].startswith(("/v1", "/v2"))]
    line = _one_error_line(err)
    assert code == 2 and "device type 'apple_wach' matches no stream" in line, line
    assert "Apple Watch" in line and data == []


@pytest.mark.parametrize(
    "start,end,expect",
    [
        ("2026-10-05", "2026-10-01", "must be after start"),
        ("2999-01-01", "2999-01-02", "is in the future"),
        ("2026-10-01", "2999-01-02", "is in the future"),
        ("2026-13-45", "2026-10-01", "--start '2026-13-45' is not a date"),
    ],
)
def test_bad_backfill_range(tmp_path, fast_config, home, start, end, expect):
    with emulator(fast_config) as emu:
        emu.stats.reset()
        code, err = run(
            "backfill", "--lake", str(tmp_path / "lake"), "--start", start, "--end", end, home=home
        )
        assert emu.stats.log == []  # rejected before any request
    line = _one_error_line(err)
    assert code == 2 and expect in line, line


@pytest.mark.parametrize("kind", ["file-in-path", "proc"])
def test_unwritable_lake_url(tmp_path, fast_config, home, kind):
    if kind == "file-in-path":
        blocker = tmp_path / "not-a-dir"
        blocker.write_text("x")
        lake = str(blocker / "lake")
    else:
        lake = "/proc/rune-lake-test"
    with emulator(fast_config):
        code, err = run("refresh", "--lake", lake, home=home)
    line = _one_error_line(err)
    assert code == 2 and "cannot write to the lake at" in line and lake in line, line


def test_settings_print_with_secrets_masked(home):
    with env({"RUNE_ACCESS_TOKEN_ID": TOKEN_ID, "RUNE_ACCESS_TOKEN_SECRET": TOKEN_SECRET}):
        code, out = _settings(home)
    assert code == 0 and "access_token_secret = **********" in out
    assert TOKEN_SECRET not in out and TOKEN_ID not in out and "verify_tls = True" in out
    with env({"RUNE_CLIENT_KEY_ID": CLIENT_KEY_ID, "RUNE_CLIENT_ACCESS_KEY": CLIENT_KEY}):
        code, out = _settings(home)
    assert code == 0 and "client_access_key = **********" in out and CLIENT_KEY not in out


def _settings(home: Path) -> tuple[int, str]:
    from rune_lake.flows.cli import app

    with env({**_current_rune_vars(), "HOME": str(home)}):
        res = CliRunner().invoke(app, ["settings"], catch_exceptions=False)
    OUTPUTS.append(res.output)
    return res.exit_code, res.output


def test_settings_without_credentials_show_every_source_and_what_it_holds(tmp_path, home):
    (home / ".rune").mkdir()
    (home / ".rune" / "config").write_text(f"access_token_id: {TOKEN_ID}\nstream_url: http://x:1\n")
    cfg = tmp_path / "rune-lake.yaml"
    cfg.write_text("rune:\n  read_timeout: 5\n")
    from rune_lake.flows.cli import app

    with env({"RUNE_CLIENT_ACCESS_KEY": CLIENT_KEY, "HOME": str(home)}):
        res = CliRunner().invoke(app, ["settings", "--config", str(cfg)], catch_exceptions=False)
    OUTPUTS.append(res.output)
    out, err = res.stdout, res.stderr
    assert res.exit_code == 2
    line = _one_error_line(err)
    assert "RUNE_CLIENT_KEY_ID" in line and "runeq configure" not in line
    assert "environment\n    RUNE_CLIENT_ACCESS_KEY = ********** (set)" in out
    assert f"project file {cfg}\n    rune.read_timeout = 5" in out
    runeq = home / ".rune" / "config"
    assert (
        f"runeq config file {runeq}\n    access_token_id = faul...\n    stream_url = http://x:1"
        in out
    )
    assert "credentials block: none named" in out
    assert CLIENT_KEY not in res.output and TOKEN_ID not in res.output
