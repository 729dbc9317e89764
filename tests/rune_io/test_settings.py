"""The settings surface: one declaration of every variable, the README's table generated
from it, reads at the point of use (a command's overrides above the environment), and
no other module touching ``os.environ``."""

from __future__ import annotations

import ast
import dataclasses
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rune_io.settings import VARIABLES, SettingError, Settings, declare, load_settings, overrides
from rune_io.settings import environ as layers
from rune_io.settings.report import describe_run_settings, markdown_table, readme_table

REPO = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-value-do-not-leak"

pytestmark = pytest.mark.usefixtures("clean_env", "no_rune_variables")


@pytest.fixture
def no_rune_variables(monkeypatch):
    for var in VARIABLES:
        monkeypatch.delenv(var.name, raising=False)


def test_the_readme_table_is_the_declaration():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert readme_table(readme) == markdown_table(), (
        "README.md's settings table differs from rune_io/settings/declare.py: run "
        "`python -m rune_io.settings --write README.md`"
    )


def test_the_table_regenerates_in_place(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    stale = tmp_path / "README.md"
    stale.write_text(readme.replace("| `RUNE_LAKE_WORKERS` | int >= 1 | `4` |", "| x | y | z |"))
    assert readme_table(stale.read_text()) != markdown_table()
    res = subprocess.run(
        [sys.executable, "-m", "rune_io.settings", "--write", str(stale), "--markdown"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, res.stderr
    assert stale.read_text() == readme
    assert markdown_table() in res.stdout


def test_every_variable_named_anywhere_is_declared():
    """A RUNE_* name in the code, the deployments or the docs is a declared variable."""
    names = {v.name for v in VARIABLES}
    # a tuple of names in the tests' fixtures; the undeclared name of a test below
    constants = {"RUNE_VARS", "RUNE_NO_SUCH_THING"}
    found: dict[str, str] = {}
    paths = [*REPO.glob("*.md"), *REPO.glob("*.yaml"), *(REPO / "docs").rglob("*.md")]
    for top in ("rune_io", "flows", "tasks", "rune_emulator", "bench", "deployments", "tests"):
        paths += [p for p in (REPO / top).rglob("*") if p.suffix in (".py", ".md", ".sh", ".yaml")]
    for path in paths:
        for name in re.findall(r"\bRUNE_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(errors="replace")):
            found.setdefault(name, str(path.relative_to(REPO)))
    undeclared = {n: p for n, p in found.items() if n not in names | constants}
    assert undeclared == {}
    assert names - set(found) == set()  # and nothing declared that nothing uses


def test_only_the_settings_surface_touches_the_environment():
    """``os.environ``, ``os.getenv``, ``os.putenv`` appear in rune_io/settings/environ.py
    alone (among rune_io, flows, tasks): everything else reads through the declaration.
    One exception, flows/warm.py: it carries a command's whole environment to the warm
    runner's fork and installs it there, before anything (the settings included) may be
    imported on the command's side (importing rune_io.settings costs ~0.25 s there); it
    reads no setting itself. And flows/allocator.py, for the same reason: it defaults
    Arrow's allocator variables first thing in the script (a passed-through variable,
    tests/test_allocator.py checks it is declared)."""
    allowed = (
        REPO / "rune_io" / "settings" / "environ.py",
        REPO / "flows" / "warm.py",
        REPO / "flows" / "allocator.py",
    )
    names = {"environ", "environb", "getenv", "putenv", "unsetenv"}
    offenders = []
    for top in ("rune_io", "flows", "tasks"):
        for path in (REPO / top).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                used = (
                    isinstance(node, ast.Attribute)
                    and node.attr in names
                    and isinstance(node.value, ast.Name)
                    and node.value.id == "os"
                ) or (
                    isinstance(node, ast.ImportFrom)
                    and node.module == "os"
                    and any(a.name in names for a in node.names)
                )
                if used and path not in allowed:
                    offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert offenders == []


def test_settings_defaults_are_the_declared_defaults():
    fields = {f.name: f for f in dataclasses.fields(Settings)}
    types = {"str": str, "secret": str, "URL": str, "seconds": float, "bool": bool}
    for var in VARIABLES:
        if var.key is None:
            continue
        f = fields[var.key]
        if var.group != "credentials":
            assert f.default == var.default, var.name
        expected = types.get(var.kind, int)
        sample = {"str": "x", "secret": "x", "URL": "http://h:1", "bool": "false", "seconds": "3.5"}
        raw = sample.get(var.kind, "3")
        assert isinstance(var.parse(raw), expected), var.name
        if var.group != "credentials":  # (credentials come whole: test_config.py)
            got = load_settings(environ={var.name: raw}, jwt="j")
            assert var.name in got.sources[var.key]
            assert getattr(got, var.key) == var.parse(raw) != var.default


def test_a_variable_reads_override_then_environment_then_default(monkeypatch):
    assert declare.WORKERS.get() == 4
    monkeypatch.setenv("RUNE_LAKE_WORKERS", "7")
    assert declare.WORKERS.get() == 7  # read now, not when the module was imported
    with overrides({"RUNE_LAKE_WORKERS": "2"}, source="a test"):
        assert declare.WORKERS.get() == 2
        assert layers.lookup("RUNE_LAKE_WORKERS") == ("2", "a test")
        with overrides({"RUNE_LAKE_DASK_THREADS": "3"}):
            assert (declare.WORKERS.get(), declare.DASK_THREADS.get()) == (2, 3)
        seen = []
        t = threading.Thread(target=lambda: seen.append(declare.WORKERS.get()))
        t.start()
        t.join()
        assert seen == [7]  # a plain thread has its own context: Prefect copies it
    assert declare.WORKERS.get() == 7
    monkeypatch.setenv("RUNE_LAKE_WORKERS", "")
    assert declare.WORKERS.get() == 4  # empty counts as unset
    assert declare.TASK_RETRY_DELAYS.get() == (10.0, 60.0)
    monkeypatch.setenv("RUNE_LAKE_TASK_RETRY_DELAYS", "0.5, 2")
    assert declare.TASK_RETRY_DELAYS.get() == (0.5, 2.0)


@pytest.mark.parametrize(
    ("name", "raw", "problem"),
    [
        ("RUNE_LAKE_WORKERS", "four", "must be an integer"),
        ("RUNE_LAKE_WORKERS", "0", "must be at least 1"),
        ("RUNE_LAKE_TASK_RUNNER", "ray", "must be 'threads' or 'dask'"),
        ("RUNE_LAKE_TASK_RETRY_DELAYS", "10,soon", "must be seconds like '10,60'"),
        ("RUNE_VERIFY_TLS", "maybe", "must be true or false"),
    ],
)
def test_a_bad_value_names_the_variable_and_its_source(monkeypatch, name, raw, problem):
    monkeypatch.setenv(name, raw)
    with pytest.raises(SettingError, match=f"^environment {name}='{re.escape(raw)}': {problem}"):
        declare.BY_NAME[name].get()
    with pytest.raises(ValueError):  # SettingError is a ValueError and a ConfigError
        declare.BY_NAME[name].get()


def test_a_bad_secret_value_is_not_shown(monkeypatch):
    var = dataclasses.replace(declare.WORKERS, name="RUNE_JWT", secret=True)
    monkeypatch.setenv("RUNE_JWT", SECRET)
    with pytest.raises(SettingError) as info:
        var.get()
    assert SECRET not in str(info.value) and "RUNE_JWT=**********" in str(info.value)


def test_overrides_are_a_source_above_the_environment(monkeypatch):
    monkeypatch.setenv("RUNE_CLIENT_KEY_ID", "ck-id")
    monkeypatch.setenv("RUNE_CLIENT_ACCESS_KEY", SECRET)
    monkeypatch.setenv("RUNE_STREAM_URL", "http://env:1")
    monkeypatch.setenv("RUNE_READ_TIMEOUT", "9")
    demo = {"RUNE_ACCESS_TOKEN_ID": "demo-id-12345", "RUNE_ACCESS_TOKEN_SECRET": "demo-secret"}
    with overrides({**demo, "RUNE_STREAM_URL": "http://emu:2"}, source="the demo"):
        s = load_settings()
    assert s.auth_method == "access_token"  # credentials whole from the highest source
    assert s.client_key_id is None
    assert s.stream_url == "http://emu:2" and s.sources["stream_url"].startswith("the demo")
    assert s.read_timeout == 9 and "environment" in s.sources["read_timeout"]
    assert load_settings().auth_method == "client_keys"  # the block is over
    with pytest.raises(ValueError, match="not declared"):
        with overrides({"RUNE_NO_SUCH_THING": "1"}):
            pass


def test_run_settings_report_values_sources_and_errors(monkeypatch):
    monkeypatch.setenv("RUNE_LAKE_WORKERS", "many")
    with overrides({"RUNE_LAKE_CONFIG": "/etc/rune-lake.yaml"}):
        text, problems = describe_run_settings()
    assert "RUNE_LAKE_CONFIG = /etc/rune-lake.yaml  (rune-lake command line)" in text
    assert "RUNE_LAKE_TASK_RUNNER = threads  (default)" in text
    assert "RUNE_LAKE_WORKERS = <invalid>  (environment)" in text
    assert problems == ["environment RUNE_LAKE_WORKERS='many': must be an integer"]


def test_passed_through_variables_are_listed_and_only_those(monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://minio:9000")
    monkeypatch.delenv("PREFECT_UI_API_URL", raising=False)
    assert layers.passed_through("AWS_ENDPOINT_URL_S3") == "http://minio:9000"
    with layers.exported({"PREFECT_UI_API_URL": "http://127.0.0.1:1/api"}):
        assert layers.passed_through("PREFECT_UI_API_URL") == "http://127.0.0.1:1/api"
    assert layers.passed_through("PREFECT_UI_API_URL") is None  # put back
    with pytest.raises(KeyError):
        layers.passed_through("RUNE_LAKE_WORKERS")
    with pytest.raises(KeyError):
        with layers.exported({"HOME": "/"}):
            pass
