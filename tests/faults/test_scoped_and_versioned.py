"""Patient-scoped client keys and the lake's format version, through the CLI.

A client key reads exactly one patient: a run needs ``--patient`` (one line, exit 2,
no data request, otherwise), discovers that patient alone with ``patient(id)`` and
``streamList(filters: {patientId})``, and never lists the org. A lake of another format
version (one written before versions were recorded is version 1) is refused in one
line, before anything is written; reading its catalog still works.
"""

from __future__ import annotations

import json
from datetime import timedelta

from rune_io.lake import Catalog, open_lake
from rune_io.lake.storage import put_bytes
from tests.faults.conftest import NOW, emulator
from tests.faults.test_bad_input import _one_error_line, home, run  # noqa: F401

LIGHT = ["--category", "vitals", "--category", "symptom"]


def _graphql_queries(emu) -> list[str]:
    return [q for (_m, path, q, _s) in emu.stats.log if path.startswith("/graphql")]


def test_client_key_without_patient_is_one_line(tmp_path, fast_config, home):  # noqa: F811
    with emulator(fast_config, client_key=True, patients=2) as emu:
        emu.stats.reset()
        code, err = run("refresh", "--lake", str(tmp_path / "lake"), home=home)
        code2, err2 = run(
            "backfill", "--lake", str(tmp_path / "lake"), "--start",
            f"{NOW - timedelta(days=1):%Y-%m-%d}", "--end", f"{NOW:%Y-%m-%d}", home=home,
        )  # fmt: skip
        data = [r for r in emu.stats.log if r[1].startswith("/v2")]
    for c, e in ((code, err), (code2, err2)):
        line = _one_error_line(e)
        assert c == 2 and "exactly one patient" in line and "--patient" in line, line
    assert data == []


def test_client_key_reads_its_patient_alone(tmp_path, fast_config, home):  # noqa: F811
    lake = tmp_path / "lake"
    with emulator(fast_config, client_key=True, patients=3, days=2) as emu:
        own = emu.cohort.client_key_patient_id
        other = next(p.id for p in emu.cohort.patients if p.id != own)
        code, err = run("refresh", "--lake", str(lake), "--patient", other, *LIGHT, home=home)
        line = _one_error_line(err)
        assert code == 2 and other in line and "its own" in line
        emu.stats.reset()
        code, err = run("refresh", "--lake", str(lake), "--patient", own, *LIGHT, home=home)
        assert code == 0, err
        start, end = NOW - timedelta(days=2), NOW + timedelta(days=1)
        code, err = run(
            "backfill", "--lake", str(lake), "--patient", own, *LIGHT,
            "--start", f"{start:%Y-%m-%d}", "--end", f"{end:%Y-%m-%d}", home=home,
        )  # fmt: skip
        assert code == 0, err
        statuses = {s for (_m, _p, _q, s) in emu.stats.log}
    files = Catalog(open_lake(str(lake))).files().to_pylist()
    assert files and {f["patient_id"] for f in files} == {own}
    # exit 0 means no forbidden GraphQL query (user, org, another patient) was made: the
    # emulator answers those with an error; and no V2 read of another patient (403)
    assert statuses == {200}


def test_lake_of_another_format_version_is_refused(tmp_path, fast_config, home):  # noqa: F811
    lake = open_lake(str(tmp_path / "old"))
    marker = json.loads(lake.read_bytes("_catalog/_lake.json"))
    del marker["format_version"]  # as today's lakes are: version 1
    put_bytes(lake, "_catalog/_lake.json", json.dumps(marker).encode())
    before = sorted(p.relative_to(tmp_path) for p in (tmp_path / "old").rglob("*"))
    with emulator(fast_config) as emu:
        emu.stats.reset()
        code, err = run("refresh", "--lake", lake.url, *LIGHT, home=home)
        code2, err2 = run("repair", "--lake", lake.url, home=home)
        data = [r for r in emu.stats.log if r[1].startswith("/v2")]
    for c, e in ((code, err), (code2, err2)):
        line = _one_error_line(e)
        assert c == 2 and "format version 1" in line and "version 2" in line, line
    assert data == []
    after = sorted(p.relative_to(tmp_path) for p in (tmp_path / "old").rglob("*"))
    assert after == before  # nothing written
    code, out = run("catalog", "--lake", lake.url, home=home)
    assert code == 0
