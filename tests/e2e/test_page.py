"""A person's use of the page, in Chromium, against the real system."""

import os
import re

from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import Site
from tests.support.processes import ROOT
from tests.support.waiting import wait_until

LONG = 60_000  # ms: generous deadlines for a slow, shared machine


def run(page: Page, kind: str, **values: object) -> Locator:
    """Fills the kind's form, submits it, and returns the new task's row."""
    form = page.locator(f"form[data-kind={kind}]")
    for name, value in values.items():
        form.locator(f"[name={name}]").fill(str(value))
    before = page.locator("#tasks > li[data-id]").count()
    form.locator("button[type=submit]").click()
    expect(page.locator("#tasks > li[data-id]")).to_have_count(before + 1, timeout=LONG)
    return page.locator("#tasks > li[data-id]").first


def test_add_shows_its_result(page: Page) -> None:
    row = run(page, "add", x=2, y=3)
    expect(row).to_have_attribute("data-state", "succeeded", timeout=LONG)
    expect(row.locator(".task__outcome-text")).to_have_text("5")
    expect(page.locator("#log li").first).to_contain_text("succeeded")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def test_long_task_bar_advances_then_finishes(page: Page) -> None:
    row = run(page, "long", seconds=4)
    bar = row.locator("progress")
    values: set[str] = set()

    def advanced() -> bool:
        value = bar.get_attribute("value")
        if value is not None:
            values.add(value)
        return len(values - {"0", "100"}) >= 2

    wait_until(advanced, LONG / 1000, interval=0.1, message="the bar to advance")
    expect(row).to_have_attribute("data-state", "succeeded", timeout=LONG)
    expect(bar).to_have_attribute("value", "100")


def test_cancel_a_long_task(page: Page) -> None:
    row = run(page, "long", seconds=60)
    expect(row).to_have_attribute("data-state", "running", timeout=LONG)
    row.locator("button[data-action=cancel]").click()
    expect(row).to_have_attribute("data-state", "cancelled", timeout=LONG)
    expect(row.locator("button[data-action=cancel]")).to_be_hidden()


def test_unreliable_task_retries_then_fails(page: Page) -> None:
    row = run(page, "unreliable", failure_rate=1, max_retries=1)
    expect(row).to_have_attribute("data-state", "retrying", timeout=LONG)
    expect(row).to_contain_text(re.compile(r"Next try in \d+ s"))
    expect(row).to_have_attribute("data-state", "failed", timeout=LONG)
    expect(row).to_contain_text("Attempt 2")
    expect(row).to_contain_text("RetryableError")


def test_client_side_validation_names_the_field(page: Page) -> None:
    form = page.locator("form[data-kind=long]")
    form.locator("[name=seconds]").fill("999")
    before = page.locator("#tasks > li[data-id]").count()
    form.locator("button[type=submit]").click()
    expect(form.locator(".field__error").first).to_contain_text("at most 60")
    expect(page.locator("#tasks > li[data-id]")).to_have_count(before)


def test_reload_mid_task_brings_its_state_back(page: Page) -> None:
    row = run(page, "long", seconds=6)
    task_id = row.get_attribute("data-id")
    expect(row).to_have_attribute("data-state", "running", timeout=LONG)
    page.reload()
    again = page.locator(f"#tasks > li[data-id='{task_id}']")
    expect(again).to_have_attribute("data-state", re.compile("running|succeeded"), timeout=LONG)
    expect(again).to_have_attribute("data-state", "succeeded", timeout=LONG)


def test_api_restart_reconnects_without_losing_updates(page: Page, site: Site) -> None:
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=LONG)
    row = run(page, "long", seconds=8)
    task_id = row.get_attribute("data-id")
    expect(row).to_have_attribute("data-state", "running", timeout=LONG)
    site.stack.api.stop()
    expect(page.locator("#connection")).not_to_have_attribute("data-state", "live", timeout=LONG)
    expect(page.locator("#connection-text")).to_have_text(re.compile("Reconnecting|Offline"))
    site.stack.api.start()
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=LONG)
    expect(row).to_have_attribute("data-state", "succeeded", timeout=LONG)
    log = page.locator("#log li").all_text_contents()
    steps = [line for line in log if task_id and task_id[-6:] in line and "step" in line]
    for step in range(1, 9):
        assert sum(f"step {step} of 8" in line for line in steps) == 1, (step, steps)
    if os.environ.get("UPDATE_SCREENSHOT") == "1":  # `make screenshot`: the README's picture
        page.evaluate("window.scrollTo(0, 0)")  # running a kind scrolled its form into view
        page.screenshot(path=str(ROOT / "docs" / "screenshot.png"))
