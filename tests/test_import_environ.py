"""Nothing is read from the environment at import: every module of ``rune_io``,
``rune_lake.flows``, ``rune_lake.tasks`` and ``rune_emulator`` imports with every
declared variable poisoned, reads no variable and writes none while it does. Settings
are read at the point of use (``rune_io.settings``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from rune_io.settings import VARIABLES

REPO = Path(__file__).resolve().parents[1]

#: runs in a fresh interpreter: os.environ is swapped for a mapping that records every
#: access made from the project's own files, before anything else is imported
PROBE = r"""
import json, os, sys
from collections.abc import MutableMapping

ROOTS = tuple(sys.argv[1].split(os.pathsep))
PACKAGES = sys.argv[2].split(",")
seen = []


def caller():
    frame = sys._getframe(2)
    while frame is not None:
        name = frame.f_code.co_filename
        if name != "<string>" and not name.endswith(("os.py", "os>", "_collections_abc.py", "abc>")):
            return name, frame.f_lineno
        frame = frame.f_back
    return "?", 0


class Recording(MutableMapping):
    def __init__(self, real):
        self.real = real

    def _note(self, op, key=None):
        name, line = caller()
        if name.startswith(ROOTS):
            seen.append([op, key, f"{name}:{line}"])

    def __getitem__(self, key):
        self._note("read", key)
        return self.real[key]

    def __setitem__(self, key, value):
        self._note("write", key)
        self.real[key] = value

    def __delitem__(self, key):
        self._note("delete", key)
        del self.real[key]

    def __iter__(self):
        self._note("list")
        return iter(self.real)

    def __len__(self):
        return len(self.real)

    def __contains__(self, key):
        self._note("read", key)
        return key in self.real

    def copy(self):
        self._note("list")
        return dict(self.real)


before = dict(os.environ)
os.environ = Recording(os.environ)

import importlib, pkgutil

failed = []
for top in PACKAGES:
    package = importlib.import_module(top)
    for mod in pkgutil.walk_packages(package.__path__, top + "."):
        if mod.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(mod.name)
        except Exception as exc:
            failed.append(f"{mod.name}: {type(exc).__name__}: {exc}")
after = dict(os.environ.real)
changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
print(json.dumps({"seen": seen, "failed": failed, "changed": changed, "modules": len(sys.modules)}))
"""


def _probe(env: dict[str, str], roots: list[Path], packages: list[str]) -> dict:
    res = subprocess.run(
        [sys.executable, "-c", PROBE, os.pathsep.join(map(str, roots)), ",".join(packages)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_importing_every_module_reads_and_writes_no_environment_variable(tmp_path):
    poison = {v.name: "poison:not-a-value" for v in VARIABLES}
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "TMPDIR")}
    got = _probe(
        {**keep, **poison, "HOME": str(tmp_path), "PREFECT_HOME": str(tmp_path)},
        [REPO / d for d in ("rune_io", "flows", "tasks", "rune_emulator")],
        ["rune_io", "rune_lake.flows", "rune_lake.tasks", "rune_emulator"],
    )
    assert got["failed"] == []
    assert got["seen"] == [], "environment used at import:\n" + "\n".join(
        " ".join(map(str, s)) for s in got["seen"]
    )
    ours = {v.name for v in VARIABLES}
    assert [k for k in got["changed"] if k in ours or k.startswith("RUNE_")] == []
    assert got["modules"] > 100  # the flows, tasks and Prefect itself were imported


def test_the_probe_sees_a_read_at_import(tmp_path):
    """The probe is not blind: a module that reads a variable when it is imported is
    reported, with its file and line."""
    pkg = tmp_path / "probe_target"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "eager.py").write_text('import os\n\nWORKERS = os.environ.get("RUNE_LAKE_WORKERS")\n')
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "PYTHONPATH": str(tmp_path)}
    seen = _probe(env, [pkg], ["probe_target"])["seen"]
    assert ["read", "RUNE_LAKE_WORKERS", f"{pkg / 'eager.py'}:3"] in seen
