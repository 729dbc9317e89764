"""Auth modes: access token (org), client key (one patient, inferred), JWT; 401/403/404."""

from __future__ import annotations

import pytest
import requests

from rune_emulator import EmulatorConfig, running_emulator

from .conftest import CLIENT_HEADERS, JWT_HEADERS, USER_HEADERS, stream_of


def _v2(emu, spec, headers):
    return requests.get(
        f"{emu.url}/v2/streams/{spec.id}", params={"limit": 1}, headers=headers, timeout=10
    )


@pytest.mark.parametrize("headers", [USER_HEADERS, JWT_HEADERS], ids=["token", "jwt"])
def test_user_credentials_read_any_org_patient(emu, headers):
    for i in range(3):
        assert _v2(emu, stream_of(emu, "hk_pressure", i), headers).status_code == 200


def test_client_key_only_its_patient(emu):
    own = stream_of(emu, "hk_pressure", 0)
    assert own.meta.patient_id == emu.cohort.client_key_patient_id
    assert _v2(emu, own, CLIENT_HEADERS).status_code == 200
    r = _v2(emu, stream_of(emu, "hk_pressure", 1), CLIENT_HEADERS)
    assert r.status_code in (403, 404) and r.json()["success"] is False


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {**USER_HEADERS, "X-Rune-User-Access-Token-Secret": "wrong"},
        {"X-Rune-User-Access-Token-Id": USER_HEADERS["X-Rune-User-Access-Token-Id"]},
        {**CLIENT_HEADERS, "X-Rune-Client-Access-Key": "wrong"},
        {"X-Rune-User-Access-Token": "wrong.jwt"},
    ],
    ids=["missing", "bad-secret", "half-pair", "bad-client-key", "bad-jwt"],
)
def test_bad_credentials_are_401_json(emu, headers):
    for url in (
        f"{emu.url}/v2/streams/{stream_of(emu, 'hk_pressure', 0).id}",
        f"{emu.url}/v1/event.json",
    ):
        r = requests.get(url, headers=headers, timeout=10)
        assert r.status_code == 401
        assert r.json()["success"] is False and r.json()["error"]["type"] == "Unauthorized"
    r = requests.post(
        f"{emu.url}/graphql", json={"query": "{ user { id } }"}, headers=headers, timeout=10
    )
    assert r.status_code == 401


def test_header_names_are_case_insensitive(emu):
    headers = {k.lower(): v for k, v in USER_HEADERS.items()}
    assert _v2(emu, stream_of(emu, "hk_pressure", 0), headers).status_code == 200


def test_configured_credentials_replace_demo_ones():
    cfg = EmulatorConfig(
        patients=1,
        days=1,
        access_token_id="tid",
        access_token_secret="tsecret",
        client_key_id="kid",
        client_access_key="kkey",
        jwt="j.w.t",
    )
    with running_emulator(cfg) as emu:
        spec = stream_of(emu, "hk_pressure", 0)
        assert _v2(emu, spec, USER_HEADERS).status_code == 401
        assert (
            _v2(
                emu,
                spec,
                {
                    "X-Rune-User-Access-Token-Id": "tid",
                    "X-Rune-User-Access-Token-Secret": "tsecret",
                },
            ).status_code
            == 200
        )
        assert (
            _v2(
                emu, spec, {"X-Rune-Client-Key-Id": "kid", "X-Rune-Client-Access-Key": "kkey"}
            ).status_code
            == 200
        )
        assert _v2(emu, spec, {"X-Rune-User-Access-Token": "j.w.t"}).status_code == 200


def test_inactive_org_patient_is_404(fresh_emu):
    emu = fresh_emu
    emu.cohort.active_org_id = emu.cohort.orgs[1].id  # holds patient 0 only
    assert _v2(emu, stream_of(emu, "hk_pressure", 0), USER_HEADERS).status_code == 200
    assert _v2(emu, stream_of(emu, "hk_pressure", 1), USER_HEADERS).status_code == 404
