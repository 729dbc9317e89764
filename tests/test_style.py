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
