"""The Prefect UI in a real browser: Deployments > backfill > Run > Custom run, the form
filled through its own inputs (start, end, one patient, the credentials block's name),
submitted (again only when the server refused the create with its retryable 503, see
``_submit``); the run completes on the process worker and the lake holds exactly that
window's rows.

Chromium is Debian's (``/usr/bin/chromium``, installed by ``.ci/run``), driven by
Playwright for Python with ``executable_path`` set: ``playwright install`` (which
downloads a browser build) is never used. Screenshots of the filled form and of the
finished run are kept under the test's temporary directory.
"""

from __future__ import annotations

import re
import shutil
import warnings
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


#: what the Prefect server answers when sqlite refuses the run's INSERT ("database is
#: locked", PrefectHQ/prefect#18934 and #10188): 503, retryable, nothing created. The
#: Python client retries it; the UI shows "Oops. Something went wrong." and keeps the form,
#: and a user submits again. A cold server (the first run after an install) hits it.
LOCKED = "/create_flow_run -> 503"


def _submit(page, stack: Stack, before: set[str], trouble: list[str], tmp_path: Path):
    """Click Submit until the server holds the new run: again (as a user would, at most
    twice more) only when the server refused the create with its retryable 503; anything
    else that creates no run in 90 s fails with what the page and the browser said."""
    import time

    for attempt in range(3):
        seen = len(trouble)
        page.get_by_role("button", name="Submit").click()
        # the server's record, not the UI's toast "scheduled to start": a transient
        # message a loaded CI machine renders and drops between two polls, which failed
        # this test once with the run created
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if created := set(_backfill_runs(stack)) - before:
                return created
            if any(LOCKED in t for t in trouble[seen:]):
                break
            page.wait_for_timeout(300)  # not time.sleep: this is what delivers page events
        else:
            page.screenshot(path=str(tmp_path / "no-run.png"), full_page=True)
            raise AssertionError(
                f"submit {attempt + 1} created no run in 90 s; the page ({page.url}) said:\n"
                f"{page.locator('body').inner_text()[-1500:]}\n"
                "the browser's errors:\n" + "\n".join(trouble[-30:])
            )
        page.wait_for_timeout(1000)
        assert not set(_backfill_runs(stack)) - before, "a 503 answer created a run"
        page.screenshot(path=str(tmp_path / f"refused-{attempt + 1}.png"), full_page=True)
        warnings.warn(
            f"submit {attempt + 1}: the server answered 503 (sqlite); again", stacklevel=1
        )
        for close in page.locator(".p-toast__close-btn").all():
            close.dispatch_event("click")  # the toast's own timer ring overlays its button
    raise AssertionError("the server refused 3 submits with 503:\n" + "\n".join(trouble[-30:]))


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
            # what the browser saw go wrong, for the failure message
            trouble: list[str] = []
            page.on(
                "console",
                lambda m: m.type in ("error", "warning") and trouble.append(f"{m.type}: {m.text}"),
            )
            page.on("pageerror", lambda e: trouble.append(f"page error: {e}"))
            page.on(
                "requestfailed",
                lambda r: trouble.append(f"{r.method} {r.url} failed: {r.failure}"),
            )
            page.on(
                "response",
                lambda r: (
                    r.status >= 400 and trouble.append(f"{r.request.method} {r.url} -> {r.status}")
                ),
            )
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
            created = _submit(page, stack, before, trouble, tmp_path)
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
