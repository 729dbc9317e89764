"""Lint and formatting are part of the test command, so CI and a laptop check the same."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def ruff(*args: str) -> subprocess.CompletedProcess:
    exe = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if exe is None:
        pytest.fail("ruff is not installed: pip install -e '.[test]'")
    return subprocess.run([exe, *args], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_ruff_lint_is_clean():
    res = ruff("check", ".")
    assert res.returncode == 0, res.stdout + res.stderr


def test_ruff_format_is_clean():
    res = ruff("format", "--check", ".")
    assert res.returncode == 0, res.stdout + res.stderr


def test_rune_io_never_imports_prefect():
    offenders = [
        str(p.relative_to(REPO))
        for p in (REPO / "rune_io").rglob("*.py")
        if any(
            line.lstrip().startswith(("import prefect", "from prefect"))
            for line in p.read_text().splitlines()
        )
    ]
    assert offenders == []


def test_rune_emulator_never_imports_rune_io():
    offenders = [
        str(p.relative_to(REPO))
        for p in (REPO / "rune_emulator").rglob("*.py")
        if any(
            line.lstrip().startswith(("import rune_io", "from rune_io"))
            for line in p.read_text().splitlines()
        )
    ]
    assert offenders == []


def test_plain_library_imports_without_the_emulator_extra():
    """``rune_io`` (and the CLI module) import with graphql-core, starlette and uvicorn
    absent: they are the ``emulator`` extra."""
    code = (
        "import sys\n"
        "for m in ('graphql', 'starlette', 'uvicorn', 'rune_emulator'):\n"
        "    sys.modules[m] = None\n"
        "import pkgutil, importlib, rune_io\n"
        "for m in pkgutil.walk_packages(rune_io.__path__, 'rune_io.'):\n"
        "    importlib.import_module(m.name)\n"
        "import flows.cli\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
