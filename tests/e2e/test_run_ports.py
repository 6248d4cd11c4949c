"""`make run` on ports other than its defaults, as a developer whose 5173 is taken runs it: the
page it serves reaches the API it started (CORS follows the ports), in a real browser."""

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.e2e.conftest import open_page
from tests.support.running import Run
from tests.support.waiting import wait_until

LONG = 60_000


@pytest.fixture
def launched(tmp_path: Path) -> Iterator[Run]:
    run = Run([sys.executable, "-m", "taskstream.launcher"], tmp_path)
    try:
        api = f"http://127.0.0.1:{run.api_port}"
        wait_until(
            lambda: httpx.get(f"{api}/readyz", timeout=3).status_code == 200,
            120,
            interval=0.5,
            message=lambda: f"the API to be ready\n{run.output[-3000:]}",
        )
        yield run
        run.ctrl_c()
    finally:
        run.kill()


def test_the_page_reaches_the_api_on_the_ports_it_was_given(
    launched: Run, browser: Browser, request: pytest.FixtureRequest
) -> None:
    assert {launched.web_port, launched.api_port}.isdisjoint({5173, 8000})
    for host in ("127.0.0.1", "localhost"):
        with open_page(browser, f"http://{host}:{launched.web_port}/", request) as page:
            form = page.locator("form[data-kind=add]")
            expect(form).to_be_visible(timeout=LONG)  # the kinds came from the API
            form.locator("[name=x]").fill("2")
            form.locator("[name=y]").fill("40")
            form.locator("button[type=submit]").click()
            row = page.locator("#tasks > li[data-id]").first
            expect(row.locator(".task__outcome-text")).to_have_text("42", timeout=LONG)
            expect(page.locator("#connection")).to_have_attribute("data-state", "live")
