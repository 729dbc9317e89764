"""Secret hygiene: the suite authenticates with a distinctive token secret and client
access key; after refreshes that retry, fail and log (chaos, a 500 stream, malformed
data, wrong credentials), neither appears in CLI output, Prefect logs, artifacts, run
states, exception texts, the lake or the catalog.

Runs late in the suite (file order) so that it also scans what earlier fault tests left.
"""

from __future__ import annotations

import asyncio

import pytest

from rune_emulator import ChaosConfig
from tests.faults.conftest import (
    LAKES,
    OUTPUTS,
    SECRETS,
    TOKEN_SECRET,
    api_vars,
    cli,
    emulator,
    remember,
)
from tests.truth import category


async def _prefect_texts() -> list[str]:
    from prefect.client.orchestration import get_client

    texts: list[str] = []
    async with get_client() as client:
        offset = 0
        while True:
            logs = await client.read_logs(limit=200, offset=offset)
            texts += [f"{log.name} {log.message}" for log in logs]
            if len(logs) < 200:
                break
            offset += 200
        for a in await client.read_artifacts(limit=200):
            texts.append(f"{a.key} {a.description} {a.data}")
        for fr in await client.read_flow_runs(limit=200):
            texts.append(f"{fr.name} {fr.parameters} {fr.state.message if fr.state else ''}")
        for tr in await client.read_task_runs(limit=200):
            texts.append(f"{tr.name} {tr.state.message if tr.state else ''}")
    return texts


@pytest.mark.slow
def test_no_secret_anywhere(tmp_path, fast_config):
    lake = remember(tmp_path / "lake")
    args = ["refresh", "--lake", str(lake), "--config", str(fast_config), "--verbose"]
    args += ["--category", "vitals", "--category", "neural", "--category", "symptom"]
    chaos = ChaosConfig.uniform(0.3, seed=5, delay_s=0.05)
    with emulator(fast_config, chaos=chaos, patients=2) as emu:
        streams = sorted(emu.cohort.streams, key=lambda s: s.id)
        failing = next(s.id for s in streams if category(s) == "neural")
        malformed = next(s.id for s in streams if category(s) == "symptom")
        emu.set_fault(failing, "always_500")
        emu.set_fault(malformed, "non_numeric")
        token = cli(*args, env_vars=api_vars(emu))
        assert token.code == 1, token.text  # incomplete: errors were raised and logged
        assert f"stream {failing}" in token.out and f"stream {malformed}" in token.out
        # a client key reads one patient: it cannot list a cohort, and says so
        client_key = cli(*args, env_vars=api_vars(emu, client_key=True))
        assert client_key.code == 2 and "exactly one patient" in client_key.err
        own = emu.cohort.client_key_patient_id  # ... and with its patient, it loads it
        scoped = cli(*args, "--patient", own, env_vars=api_vars(emu, client_key=True))
        assert scoped.code in (0, 1), scoped.text
        wrong = api_vars(emu) | {"RUNE_ACCESS_TOKEN_SECRET": TOKEN_SECRET[::-1]}
        assert cli(*args, env_vars=wrong).code == 2
    texts = list(OUTPUTS) + asyncio.run(_prefect_texts())
    assert len(texts) > 50
    for secret in SECRETS:
        leaks = [t[:300] for t in texts if secret in t]
        assert leaks == [], f"secret found in: {leaks[:3]}"
        needle = secret.encode()
        for root in LAKES:
            if not root.exists():
                continue
            for path in root.rglob("*"):
                if path.is_file():
                    assert needle not in path.read_bytes(), f"secret in {path}"
