"""The object store throttles: S3 ``503 SlowDown`` and ``400 RequestTimeout`` on every
third PUT and GET, injected by a loopback proxy in front of a real moto server. Retried
with backoff, nothing lost, and the run's summary counts the retries."""

from __future__ import annotations

import pytest

from tests.faults.conftest import (
    STORAGE_EMU,
    STORAGE_PARAMS,
    assert_lake_consistent,
    assert_lakes_equal,
    emulator,
    refresh_in_process,
    remember,
)
from tests.faults.s3_throttle import ThrottlingProxy
from tests.faults.test_storage_faults import BUCKET, _free_port, aws_env, reset_moto


@pytest.mark.slow
def test_throttling_object_store_loses_nothing(tmp_path, fast_config, storage_want):
    import s3fs
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    reset_moto(f"http://127.0.0.1:{port}")
    try:
        with ThrottlingProxy(port, every=3) as proxy, aws_env(proxy.url):
            s3fs.S3FileSystem.clear_instance_cache()
            direct = s3fs.S3FileSystem(
                endpoint_url=f"http://127.0.0.1:{port}", skip_instance_cache=True
            )
            direct.mkdir(BUCKET)
            with emulator(fast_config, **STORAGE_EMU):
                state = refresh_in_process(f"s3://{BUCKET}/lake", **STORAGE_PARAMS)
            assert state.is_completed(), state.message
            report = state.result()
            injected = sum(proxy.injected.values())
            print(f"proxy: {proxy.counts} requests, {proxy.injected} throttled; {report.text()}")
            assert proxy.injected["PUT"] >= 5 and proxy.injected["GET"] >= 3, proxy.injected
            assert report.storage_retries == injected, (report.storage_retries, injected)
            assert f"storage retries: {injected}" in report.text()
            local = remember(tmp_path / "copy")
            direct.get(f"{BUCKET}/lake", str(local), recursive=True)
    finally:
        server.stop()
    assert_lakes_equal(local, storage_want)
    assert_lake_consistent(local)
