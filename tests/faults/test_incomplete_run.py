"""A run that cannot finish (one stream always answers 500): the other streams land, the
failing one is named in the summary and the artifact, the exit code is 1; the next run,
once the API recovers, completes the lake."""

from __future__ import annotations

import asyncio

import pytest

from rune_io.lake import Catalog, open_lake
from tests.faults.conftest import (
    api_vars,
    assert_lake_consistent,
    assert_lakes_equal,
    clean_lake,
    cli,
    emulator,
    remember,
)
from tests.truth import category

EMU = dict(patients=1, days=1)
CATEGORIES = ["vitals", "neural"]


async def _artifacts(key: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    async with get_client() as client:
        return await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=[key]))
        )


@pytest.mark.slow
def test_always_500_stream_is_reported_and_the_rest_lands(tmp_path, tmp_path_factory, fast_config):
    want = clean_lake(
        tmp_path_factory, fast_config, ("incomplete",), EMU, dict(categories=CATEGORIES)
    )
    lake = remember(tmp_path / "lake")
    args = ["refresh", "--lake", str(lake), "--config", str(fast_config)]
    args += [a for c in CATEGORIES for a in ("--category", c)]
    with emulator(fast_config, **EMU) as emu:
        bad = sorted(s.id for s in emu.cohort.streams if category(s) == "neural")[0]
        emu.set_fault(bad, "always_500")
        res = cli(*args, env_vars=api_vars(emu))
        assert res.code == 1, res.text
        assert f"stream {bad}" in res.out and "FAILED neural__lfp_trend_log_power" in res.out
        assert "ServerError: HTTP 500" in res.out
        assert "incomplete:" in res.err and "next run retries the rest" in res.err
        failures = [a for a in asyncio.run(_artifacts("rune-lake-refresh-failures"))]
        assert any(bad in str(a.data) for a in failures), "failing stream not in the artifact"
        summary = asyncio.run(_artifacts("rune-lake-refresh-summary"))
        assert any(f"FAILED {bad}" in str(a.data) for a in summary)

        # everything else landed; the failing stream has no watermark, no file
        cat = Catalog(open_lake(str(lake)))
        assert bad not in cat.watermarks()
        assert bad not in {f["stream_id"] for f in cat.files().to_pylist()}
        assert_lake_consistent(lake)

        emu.set_fault(bad, None)
        res = cli(*args, env_vars=api_vars(emu))
        assert res.code == 0, res.text
    assert_lakes_equal(lake, want)
    assert_lake_consistent(lake)
