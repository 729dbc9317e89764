"""The Prefect UI in a real browser: Deployments > backfill > Run > Custom run, the form
filled through its own inputs (start, end, one patient, the credentials block's name),
submitted; the run completes on
the process worker and the lake holds exactly that window's rows.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``.ci/run``), driven by
Playwright for Python with ``executable_path`` set: ``playwright install`` (which
downloads a browser build) is never used. Screenshots of the filled form and of the
finished run are kept under the test's temporary directory.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from rune_io.pipeline import lake_partitioning
from tests.deployments.conftest import CREDENTIALS_BLOCK, TODAY, Stack, start_stack
from tests.deployments.test_prefect_deploy import US, day, lake_count, wait_final
from tests.truth import client_meta

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: as root in a sandbox with no network: no sandboxing, no GPU, no background traffic
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def ui_stack(tmp_path_factory) -> Iterator[Stack]:
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (.ci/run installs it)")
    pytest.importorskip("playwright.sync_api", reason="playwright is in the test extra")
    with start_stack(tmp_path_factory.mktemp("prefect-ui"), ui=True) as st:
        yield st


def _property(page, label: str):
    """The innermost schema-form property whose label is exactly ``label``."""
    name = page.locator(".schema-form-property__label", has_text=re.compile(f"^{label}$"))
    return page.locator(".schema-form-property").filter(has=name).last


def _pick_date(page, label: str, iso: str) -> None:
    """Open the property's date picker, type the day into its date input, apply."""
    _property(page, label).locator("button", has_text="Select date").click()
    picker = page.locator("input[type=date]:visible")
    picker.fill(iso)
    page.get_by_role("button", name="Apply").click()


def _backfill_runs(stack: Stack) -> list[str]:
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    with SyncPrefectClient(stack.api_url) as client:
        dep = client.read_deployment_by_name("backfill/backfill")
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id]))
        )
    return [str(r.id) for r in runs]


def _wait_for(fn, timeout: float = 30.0):
    import time

    deadline = time.monotonic() + timeout
    while not (got := fn()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)
    return got


def test_custom_run_from_the_ui_lands_exactly_the_window(ui_stack, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    stack = ui_stack
    emu = stack.emu
    patient = sorted(p.id for p in emu.cohort.patients)[0]
    start, end = day(-2), day(-1)
    ui = stack.api_url.removesuffix("/api")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1600})
            page.set_default_timeout(30_000)
            page.goto(f"{ui}/deployments")
            page.locator("a.deployment-list__name[title=backfill]").click()
            page.locator("button.run-menu__run-button").click()
            page.get_by_role("button", name="Custom run").click()
            expect(page.get_by_text("Parameters", exact=True)).to_be_visible(timeout=30_000)

            _pick_date(page, "Start", start)
            _pick_date(page, "End", end)
            patients = _property(page, "Patients \\(Optional\\)")
            patients.get_by_role("button", name="Add item").click()
            patients.locator("input:visible, textarea:visible").first.fill(patient)
            block = _property(page, "Credentials block( \\(Optional\\))?")
            block.locator("textarea, input").first.fill(CREDENTIALS_BLOCK)
            page.screenshot(path=str(tmp_path / "form.png"), full_page=True)

            before = set(_backfill_runs(stack))
            page.get_by_role("button", name="Submit").click()
            # the submit creates exactly one run (the server's record, not the UI's toast
            # "scheduled to start": a transient message a loaded CI machine renders and
            # drops between two polls, which failed this test once with the run created)
            created = _wait_for(lambda: set(_backfill_runs(stack)) - before, timeout=90)
            page.screenshot(path=str(tmp_path / "submitted.png"), full_page=True)
            assert len(created) == 1, f"one submit, one run: {created}"
            run_id = created.pop()
            run = wait_final(stack, run_id)
            page.goto(f"{ui}/runs/flow-run/{run_id}")
            page.reload()
            expect(page.get_by_text("Completed").first).to_be_visible(timeout=30_000)
            page.screenshot(path=str(tmp_path / "finished-run.png"), full_page=True)
        finally:
            browser.close()
    assert run.state.is_completed(), f"{run.state}\n{stack.log_tail('worker')}"
    assert run.parameters["range"]["start"] == start and run.parameters["range"]["end"] == end
    assert run.parameters["range"]["patients"] == [patient]

    lo, hi = TODAY - timedelta(days=2), TODAY - timedelta(days=1)
    mine = [client_meta(s) for s in emu.cohort.streams if s.patient_id == patient]
    landed = 0
    for s in mine:
        # partitions the range touches are loaded whole (a day, or a month for slow streams)
        first, last = lake_partitioning(s, lo)[0], lake_partitioning(s, hi - US)[1]
        want = emu.expected_table(s.id, first, min(last, TODAY)).num_rows
        assert lake_count(stack, s) == want, s.id
        assert lake_count(stack, s, start, end) == emu.expected_table(s.id, lo, hi).num_rows
        landed += want
    assert landed > 0
    others = [client_meta(s) for s in emu.cohort.streams if s.patient_id != patient]
    assert all(lake_count(stack, s) == 0 for s in others)
    assert (tmp_path / "form.png").stat().st_size > 0
