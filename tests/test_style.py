"""Lint, formatting and type checking are part of the test command, so CI and a laptop
check the same."""

from __future__ import annotations

import re
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


def test_mypy_is_clean():
    """``mypy`` with no arguments: ``[tool.mypy]`` in pyproject.toml names what it checks
    (rune_io, rune_emulator, and flows/ and tasks/ by their installed names through the
    ``typecheck/rune_lake`` link tree)."""
    exe = shutil.which("mypy", path=str(Path(sys.executable).parent)) or shutil.which("mypy")
    if exe is None:
        pytest.fail("mypy is not installed: pip install -c constraints.txt -e '.[test]'")
    res = subprocess.run([exe], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    # every file really checked: flows/ and tasks/ as rune_lake.flows / rune_lake.tasks
    expected = (
        sum(
            1
            for top in ("rune_io", "rune_emulator", "flows", "tasks")
            for _ in (REPO / top).rglob("*.py")
        )
        + 1
    )  # rune_lake/__init__.py
    assert f"no issues found in {expected} source files" in res.stdout, res.stdout


def test_typecheck_link_tree_points_at_flows_and_tasks():
    """The link tree mypy reads ``flows/`` and ``tasks/`` through (see pyproject.toml)."""
    tree = REPO / "typecheck" / "rune_lake"
    for name, target in (
        ("flows", "flows"),
        ("tasks", "tasks"),
        ("__init__.py", "rune_lake/__init__.py"),
    ):
        link = tree / name
        assert link.is_symlink() and link.resolve() == (REPO / target).resolve(), link


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
        "import rune_lake.flows.cli\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr


def test_flows_and_tasks_are_imported_by_their_installed_names():
    """``flows/`` and ``tasks/`` install as ``rune_lake.flows`` and ``rune_lake.tasks``
    (no top-level ``flows``/``tasks`` in site-packages): code that imported them by the
    folder names would work from a checkout only, and load a second copy of each module."""
    bad = []
    pattern = re.compile(r"^\s*(from|import)\s+(flows|tasks)\b", re.M)
    for path in REPO.rglob("*.py"):
        if ".venv" in path.parts or "site-packages" in path.parts:
            continue
        for m in pattern.finditer(path.read_text()):
            bad.append(f"{path.relative_to(REPO)}: {m.group(0).strip()}")
    assert not bad, bad


def test_every_package_folder_is_installed():
    """``pyproject.toml`` lists the packages explicitly (``flows``/``tasks`` are mapped):
    a new package folder that is not listed would be missing from a wheel."""
    import tomllib

    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    mapped = {v: k for k, v in cfg["package-dir"].items()}
    found = set()
    for init in REPO.glob("*/**/__init__.py"):
        rel = init.parent.relative_to(REPO)
        if rel.parts[0] not in ("rune_io", "rune_emulator", "rune_lake", "flows", "tasks"):
            continue
        top = mapped.get(rel.parts[0], rel.parts[0])
        found.add(".".join((top, *rel.parts[1:])))
    assert found == listed, (sorted(found - listed), sorted(listed - found))
