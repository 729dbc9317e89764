"""Fault-injection suite: emulators with distinctive credentials, the CLI as a subprocess,
clean reference lakes, and the checks every fault test ends with.

Every emulator here accepts only :data:`TOKEN_SECRET` / :data:`CLIENT_KEY` (distinctive
strings), and every CLI output and lake is remembered, so ``test_secrets`` can search
the whole suite's output for them.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from rune_emulator import EmulatorConfig, running_emulator  # noqa: E402
from rune_io.lake import Catalog, open_lake  # noqa: E402
from rune_io.lake.layout import STAGING_DIR  # noqa: E402
from tests.environ import patched_environ
from tests.flows.conftest import LIGHT, NOW, RUNE_VARS, prefect_harness  # noqa: F401

REPO = Path(__file__).resolve().parents[2]

TOKEN_ID = "fault-suite-token-id"
TOKEN_SECRET = "tok-SECRET-zq7Xw9-FAULTSUITE"
CLIENT_KEY_ID = "fault-suite-client-key"
CLIENT_KEY = "ck-SECRET-pv3Kd8-FAULTSUITE"
SECRETS = (TOKEN_SECRET, CLIENT_KEY)

#: what the whole suite printed and wrote, for the secret scan
OUTPUTS: list[str] = []
LAKES: list[Path] = []

#: quick HTTP retries for the tests (same policy, short waits)
FAST_CONFIG = """\
rune:
  max_attempts: 8
  backoff_base: 0.01
  backoff_cap: 0.1
  retry_after_cap: 0.5
  read_timeout: 20
"""


def emu_config(**kw) -> EmulatorConfig:
    base = dict(
        seed=11,
        patients=1,
        days=1,
        now=NOW,
        access_token_id=TOKEN_ID,
        access_token_secret=TOKEN_SECRET,
        client_key_id=CLIENT_KEY_ID,
        client_access_key=CLIENT_KEY,
    )
    return EmulatorConfig(**(base | kw))


@pytest.fixture(scope="session")
def fast_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "rune-lake.yaml"
    path.write_text(FAST_CONFIG)
    return path


def api_vars(emu, client_key: bool = False) -> dict[str, str]:
    """RUNE_* variables pointing at ``emu`` with the suite's credentials."""
    creds = (
        {"RUNE_CLIENT_KEY_ID": CLIENT_KEY_ID, "RUNE_CLIENT_ACCESS_KEY": CLIENT_KEY}
        if client_key
        else {"RUNE_ACCESS_TOKEN_ID": TOKEN_ID, "RUNE_ACCESS_TOKEN_SECRET": TOKEN_SECRET}
    )
    return {"RUNE_STREAM_URL": emu.url, "RUNE_GRAPH_URL": emu.url, **creds}


def env(values: dict[str, str]):
    """Set environment variables (RUNE_* cleared first) for the block."""
    return patched_environ(values, clear=(*RUNE_VARS, "RUNE_LAKE_CONFIG"))


@contextmanager
def emulator(fast_config: Path, client_key: bool = False, **kw) -> Iterator:
    """An emulator, with the process environment pointing at it (in-process flows)."""
    with running_emulator(emu_config(**kw)) as emu:
        with env(api_vars(emu, client_key) | {"RUNE_LAKE_CONFIG": str(fast_config)}):
            yield emu


# -- the CLI as a subprocess -------------------------------------------------------------


@dataclass
class CliResult:
    code: int
    out: str
    err: str
    seconds: float = 0.0

    @property
    def text(self) -> str:
        return self.out + self.err


#: this test's scratch folder (in its tmp_path): the CLI's working directory and DuckDB's
#: spill directory, so nothing a test runs leaves files in the work tree
_SCRATCH: list[Path] = []


@pytest.fixture(autouse=True)
def scratch_in_tmp_path(tmp_path) -> Iterator[Path]:
    """DuckDB spills to ``temp_directory``, by default ``.tmp`` in the working directory
    (the work tree): point the default connection (``duckdb.sql``) at the test's
    tmp_path, and run the CLI from there."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    duckdb.execute(f"SET temp_directory = '{scratch / 'duckdb'}'")
    _SCRATCH[:] = [scratch]
    yield scratch
    _SCRATCH.clear()


def scratch_dir() -> Path:
    """The running test's scratch folder (a fresh temporary one outside a test)."""
    import tempfile

    return _SCRATCH[0] if _SCRATCH else Path(tempfile.mkdtemp(prefix="rune-lake-test-"))


def cli(*args: str, env_vars: dict[str, str], timeout: float = 180) -> CliResult:
    """Run ``python -m rune_lake.flows.cli ARGS`` with exactly ``env_vars`` (plus PATH/HOME and the
    test Prefect server) in the test's scratch folder, recording its output for the secret
    scan."""
    import time

    from prefect.settings import PREFECT_API_URL

    keep = ("PATH", "HOME", "LANG", "TMPDIR", "PREFECT_HOME", "AWS_EC2_METADATA_DISABLED")
    base = {k: v for k, v in os.environ.items() if k in keep}
    full = (
        base
        | {
            "PREFECT_API_URL": PREFECT_API_URL.value() or "",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "RUNE_LAKE_TASK_RETRY_DELAYS": "0.2",
            "PYTHONPATH": str(REPO),
            "COLUMNS": "200",
        }
        | env_vars
    )
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "rune_lake.flows.cli", *args],
        cwd=str(scratch_dir()),
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    res = CliResult(proc.returncode, proc.stdout, proc.stderr, time.perf_counter() - t0)
    OUTPUTS.append(res.text)
    return res


# -- lake checks ---------------------------------------------------------------------------


def remember(lake: Path) -> Path:
    LAKES.append(lake)
    return lake


def tables(lake: Path) -> list[str]:
    return sorted(
        p.name
        for p in lake.iterdir()
        if p.is_dir() and not p.name.startswith(("_", ".")) and any(p.rglob("*.parquet"))
    )


def _select(lake: Path, table: str) -> str:
    return (
        f"SELECT * FROM read_parquet('{lake}/{table}/**/*.parquet', hive_partitioning=true, "
        "union_by_name=true)"
    )


def assert_lakes_equal(got: Path, want: Path) -> dict[str, int]:
    """Same tables, same rows (EXCEPT ALL both ways, so duplicates count), same counts.
    Returns rows per table."""
    assert tables(got) == tables(want)
    counts = {}
    con = duckdb.connect(config={"temp_directory": str(scratch_dir() / "duckdb")})
    for t in tables(want):
        a, b = _select(got, t), _select(want, t)
        n_got = con.execute(f"SELECT count(*) FROM ({a})").fetchone()[0]
        n_want = con.execute(f"SELECT count(*) FROM ({b})").fetchone()[0]
        missing = con.execute(f"SELECT count(*) FROM ({b} EXCEPT ALL {a})").fetchone()[0]
        extra = con.execute(f"SELECT count(*) FROM ({a} EXCEPT ALL {b})").fetchone()[0]
        assert (n_got, missing, extra) == (n_want, 0, 0), (
            f"{t}: {n_got} rows vs {n_want}; {missing} missing, {extra} extra"
        )
        counts[t] = n_want
    return counts


def assert_lake_consistent(lake: Path) -> None:
    """The catalog and the files agree exactly; nothing partial or temporary is visible."""
    root = lake.resolve()
    for path in root.rglob("*"):
        rel = path.relative_to(root)
        if path.is_file() and not rel.parts[0].startswith("_"):
            assert path.suffix == ".parquet" or path.name == "_common_metadata", (
                f"stray file under a table: {rel}"
            )
    data = {
        str(p.relative_to(root))
        for p in root.rglob("*.parquet")
        if not p.relative_to(root).parts[0].startswith("_")
    }
    cat = Catalog(open_lake(str(lake), create=False))
    entries = cat.files().to_pylist()
    paths = [e["path"] for e in entries]
    assert len(paths) == len(set(paths)), "duplicate catalog entries"
    assert set(paths) == data, (
        f"catalog without file: {sorted(set(paths) - data)[:5]}; "
        f"file without entry: {sorted(data - set(paths))[:5]}"
    )
    for e in entries:
        f = root / e["path"]
        assert pq.read_metadata(f).num_rows == e["rows"], e["path"]
        assert f.stat().st_size == e["bytes"], e["path"]
        assert "sha256:" + hashlib.sha256(f.read_bytes()).hexdigest() == e["checksum"], e["path"]
    staging = root / STAGING_DIR
    assert not staging.exists() or all(p.suffix == ".tmp" for p in staging.iterdir())


def refresh_in_process(lake: Path, **params):
    """The refresh flow in this process; returns its final state."""
    from rune_lake.flows.refresh import refresh

    return refresh(lake=str(lake), return_state=True, **params)


_CLEAN: dict[tuple, Path] = {}


def clean_lake(tmp_path_factory, fast_config: Path, key: tuple, emu_kw: dict, params: dict):
    """A reference lake: one refresh against a fault-free emulator (cached per key)."""
    if key not in _CLEAN:
        lake = remember(tmp_path_factory.mktemp("clean") / "lake")
        with emulator(fast_config, **emu_kw):
            state = refresh_in_process(lake, **params)
        assert state.is_completed(), state.message
        _CLEAN[key] = lake
    return _CLEAN[key]


#: the storage-fault suites' cohort and selection: one clean reference lake serves the
#: S3, read-only, full-disk, throttling, lost-Prefect-API and two-runs tests
STORAGE_EMU = dict(patients=1, days=2)
STORAGE_PARAMS = dict(categories=["vitals", "symptom"], chunk_days=1)
STORAGE_ARGS = [a for c in STORAGE_PARAMS["categories"] for a in ("--category", c)]


@pytest.fixture(scope="session")
def storage_want(tmp_path_factory, fast_config) -> Path:
    """The clean lake the storage-fault tests compare with."""
    return clean_lake(tmp_path_factory, fast_config, ("storage",), STORAGE_EMU, STORAGE_PARAMS)
