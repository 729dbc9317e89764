"""Arrow's allocator runs without transparent huge pages (``rune_lake.flows.allocator``):
the ``rune-lake`` script sets mimalloc's option before anything loads Arrow, keeps a
value the user set, and a process started that way allocates no huge page.

Each case runs in a fresh interpreter (mimalloc reads its options once, when Arrow
loads) and reads what the kernel reports after Arrow allocated and filled 128 MiB: the
process's ``THP_enabled`` (mimalloc with ``MIMALLOC_ALLOW_THP=0`` disables huge pages
for the process with ``prctl(PR_SET_THP_DISABLE)``, which its children inherit) and its
``AnonHugePages``. ``THP_enabled`` does not depend on the kernel's memory; whether the
kernel grants huge pages to a process that may have them does (late in a long test run
memory may be too fragmented), so only the control case, which shows they matter, may
skip.

Every case starts as from a user's shell, huge pages allowed (:data:`THP_ALLOWED`):
whatever this test process inherited or did itself does not decide the case. The
suite runs with ``MIMALLOC_ALLOW_THP=0`` (``tests/conftest.py``), so the first test
that allocates through Arrow here disables huge pages for this process and every child
it starts after: CI once failed the control and the user's case on that."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rune_io.settings.declare import PASSED_THROUGH_NAMES
from rune_lake.flows import allocator

#: allocate 128 MiB through Arrow's default pool, touch it all, print the backend, the
#: process's THP_enabled and its huge pages
ALLOCATE = r"""
import re
import numpy as np
import pyarrow as pa
bufs = [pa.allocate_buffer(1 << 20) for _ in range(128)]
for b in bufs:
    np.frombuffer(b, dtype=np.uint8).fill(1)
rollup = open("/proc/self/smaps_rollup").read()
status = open("/proc/self/status").read()
enabled = re.search(r"THP_enabled:\s+(\d)", status)
print(
    pa.default_memory_pool().backend_name,
    enabled.group(1) if enabled else "?",
    int(re.search(r"AnonHugePages:\s+(\d+)", rollup).group(1)),
)
"""

#: the script's entry point on ``--help``, checking that the option is set before Arrow
#: is imported, then (at exit: the script ends the process itself) the allocation above
ENTRY = r"""
import atexit, sys
from rune_lake.flows import allocator, entry
atexit.register(exec, ALLOCATE, {})
prepare = allocator.prepare
def spy():
    assert "pyarrow" not in sys.modules, "Arrow was loaded before its options were set"
    prepare()
    print("prepared", flush=True)
allocator.prepare = spy
sys.argv = ["rune-lake", "--help"]
try:
    entry.main()
except SystemExit:
    pass
"""


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIMALLOC_")}
    env.pop("ARROW_DEFAULT_MEMORY_POOL", None)
    return env | extra


#: first thing in every case: clear an inherited ``PR_SET_THP_DISABLE`` (41, per process,
#: no privilege needed), as in a fresh login
THP_ALLOWED = "import ctypes; ctypes.CDLL(None, use_errno=True).prctl(41, 0, 0, 0, 0)\n"


def _huge_pages(code: str, env: dict[str, str]) -> tuple[str, str, int, str]:
    """Run ``code`` (ending with :data:`ALLOCATE`) in a process that may have huge pages
    until it says otherwise: the pool's backend, the process's ``THP_enabled`` ("1",
    "0", or "?" on a kernel before 5.0), its huge pages (KiB) and the whole output."""
    res = subprocess.run(
        [sys.executable, "-c", THP_ALLOWED + code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    backend, enabled, kib = res.stdout.strip().splitlines()[-1].split()
    if backend != "mimalloc":
        pytest.skip(f"Arrow's default pool is {backend} here, not mimalloc")
    if enabled == "?":
        pytest.skip("this kernel does not report THP_enabled (Linux < 5.0)")
    return backend, enabled, int(kib), res.stdout


def test_prepare_sets_the_default_and_keeps_a_users_value(monkeypatch):
    assert set(allocator.DEFAULTS) <= PASSED_THROUGH_NAMES  # in the README's settings
    monkeypatch.delenv("MIMALLOC_ALLOW_THP", raising=False)
    allocator.prepare()
    assert os.environ["MIMALLOC_ALLOW_THP"] == "0"
    monkeypatch.setenv("MIMALLOC_ALLOW_THP", "1")
    allocator.prepare()
    assert os.environ["MIMALLOC_ALLOW_THP"] == "1"
    env = {"MIMALLOC_ALLOW_THP": "0", "ARROW_DEFAULT_MEMORY_POOL": "jemalloc", "HOME": "/"}
    assert allocator.variables(env) == {
        "ARROW_DEFAULT_MEMORY_POOL": "jemalloc",
        "MIMALLOC_ALLOW_THP": "0",
    }


def test_without_the_option_arrow_gets_huge_pages():
    """The control: with nothing set, Arrow's pool may have huge pages and (memory
    permitting: three tries) the kernel gives it some."""
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    if not thp.exists() or "[never]" in thp.read_text():
        pytest.skip("transparent huge pages are off on this kernel")
    for _ in range(3):
        _, enabled, kib, _ = _huge_pages(ALLOCATE, _clean_env())
        assert enabled == "1"
        if kib >= 2048:  # at least one 2 MiB page
            return
    pytest.skip("the kernel gave no huge page in three tries (memory too fragmented?)")


def test_the_script_sets_the_option_before_arrow_loads_and_gets_no_huge_pages():
    _, enabled, kib, out = _huge_pages(f"ALLOCATE = {ALLOCATE!r}\n" + ENTRY, _clean_env())
    assert "prepared" in out
    assert (enabled, kib) == ("0", 0)


def test_a_users_value_wins():
    _, enabled, _, _ = _huge_pages(
        "from rune_lake.flows import allocator; allocator.prepare()\n" + ALLOCATE,
        _clean_env(MIMALLOC_ALLOW_THP="1"),
    )
    assert enabled == "1"
