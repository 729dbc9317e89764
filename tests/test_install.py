"""The install reproduces a known-good set: both README commands and CI install with
``constraints.txt``, CI runs exactly the README's test command, and the versions that
matter are the ones this suite ran with."""

from __future__ import annotations

import re
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def readme_commands() -> list[str]:
    block = (ROOT / "README.md").read_text().split("```bash\n", 1)[1].split("```", 1)[0]
    return [line for line in block.splitlines() if line.strip()]


def constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, ver = line.partition("==")
            pins[name.lower().replace("_", "-")] = ver
    return pins


def test_readme_and_ci_install_with_the_constraints():
    demo, tests = readme_commands()[:2]
    # the demo needs the emulator's server dependencies: the 'emulator' extra
    assert (
        "pip install -q -c constraints.txt -e '.[emulator]' " in demo and "rune-lake demo" in demo
    )
    assert "pip install -q -c constraints.txt -e '.[test]'" in tests and "pytest -q" in tests
    ci = [ln for ln in (ROOT / ".ci/run").read_text().splitlines() if ln.startswith("python3")]
    assert ci == [tests]  # exactly the README's test command


def test_constraints_pin_everything_with_a_scheduler_that_works():
    pins = constraints()
    assert all(re.fullmatch(r"[0-9][0-9A-Za-z.+!-]*", v) for v in pins.values()), pins
    assert pins["sqlalchemy"].startswith("2.0.")  # 2.1 breaks prefect 3.8.8's scheduler
    assert pins["prefect"] == "3.8.8"
    names = ("prefect", "sqlalchemy", "fastapi", "pyarrow", "s3fs", "moto", "runeq", "gql", "mypy")
    for name in names:
        assert version(name) == pins[name], (
            f"{name}: installed {version(name)}, pinned {pins[name]}"
        )
