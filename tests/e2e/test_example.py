"""The example site in Chromium: a customer's page on its own origin shows a task with
`<taskstream-task>`, from a watch token its backend got by submitting with the API key.

The API requires keys; the page never holds one. In the middle of the task the page is reloaded
(it shows the same task again, resumed from `/output`) and the API process is restarted on the
same port (the element reconnects and resumes by event id). At the end the element holds the
task's whole output once, each page load applied each event at most once and in order, and no
Content-Security-Policy violation happened.
"""

import json
import re
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Request, expect

from tests.e2e.conftest import open_page
from tests.support.processes import ROOT, ApiServer, Process, free_port
from tests.support.stack import Stack
from tests.support.waiting import GiveUp, wait_until

LONG = 60_000  # ms: generous deadlines for a slow, shared machine
KEY = "k_fernhill_" + secrets.token_hex(8)
BUNDLE = ROOT / "frontend" / "client" / "dist" / "taskstream-task.js"
ELEMENT = "taskstream-task"

# Runs before the page's own scripts on every load: what the element told the page, and any
# policy violation, kept for the test to read.
WATCH_PAGE = """
window.__seqs = [];
window.__violations = [];
window.__connections = [];
new MutationObserver((records) => {
  for (const r of records) window.__connections.push(r.target.getAttribute("connection"));
}).observe(document, { subtree: true, attributes: true, attributeFilter: ["connection"] });
document.addEventListener("taskstream-event", (e) => window.__seqs.push(e.detail.event.seq));
document.addEventListener("securitypolicyviolation", (e) =>
  window.__violations.push(`${e.violatedDirective} ${e.blockedURI}`));
"""
SHADOW = f"document.querySelector('{ELEMENT}')?.shadowRoot"


class ExampleSite:
    """`python -m taskstream.example_site` on a free port, its backend using the site's key."""

    def __init__(self, api: ApiServer, log_dir: Path, port: int) -> None:
        self.port = port
        environment = {
            "WEB_HOST": "127.0.0.1",
            "EXAMPLE_PORT": str(self.port),
            "API_HOST": "127.0.0.1",
            "API_PORT": str(api.port),
            "EXAMPLE_API_KEY": KEY,
        }
        args = [sys.executable, "-m", "taskstream.example_site"]
        self.process = Process(f"example-{self.port}", args, log_dir, environment)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "ExampleSite":
        self.process.start()

        def up() -> bool:
            if not self.process.running:
                raise GiveUp(f"example site exited:\n{self.process.log_tail()}")
            return httpx.get(self.url, timeout=2).status_code == 200

        wait_until(up, 60, message=lambda: f"example site to answer\n{self.process.log_tail()}")
        return self

    def stop(self) -> None:
        self.process.stop()


@dataclass
class Shop:
    stack: Stack
    site: ExampleSite

    def output_text(self, task_id: str) -> str:
        response = self.stack.http.get(f"/api/tasks/{task_id}/output")
        assert response.status_code == 200, response.text
        text: str = response.json()["streams"]["output"]["text"]
        return text


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    if not BUNDLE.is_file():
        pytest.fail(f"{BUNDLE.name} is missing: run `make web` (npm ci && npm run build) first")
    directory = tmp_path_factory.mktemp("shop")
    port = free_port()
    api_env = {
        "CORS_ORIGINS": f"http://127.0.0.1:{port}",  # the page is on an origin of its own
        "SSE_RETRY_MS": "500",
        "API_KEYS": json.dumps({KEY: "fernhill"}),
        "SESSION_SECRET": secrets.token_urlsafe(
            30
        ),  # signs the watch tokens: they outlive restarts
    }
    stack = Stack(directory, api_env=api_env)
    stack.start()
    stack.http.headers["Authorization"] = f"Bearer {KEY}"  # the test's own look at the API
    site = ExampleSite(stack.api, directory, port).start()
    yield Shop(stack, site)
    site.stop()
    stack.stop()


def shadow(page: Page, expression: str) -> Any:
    return page.evaluate(f"(() => {{ const root = {SHADOW}; return {expression}; }})()")


def shown_output(page: Page) -> str:
    text: str = shadow(page, "root?.querySelector('[part~=output]')?.textContent ?? ''")
    return text


def progress_now(page: Page) -> float:
    value = shadow(page, "root?.querySelector('[role=progressbar]')?.getAttribute('aria-valuenow')")
    return float(value or 0)


def wait_for_growth(page: Page) -> None:
    """The element shows the task live: its output and its progress bar both move on."""
    page.wait_for_function(
        f"() => {SHADOW}?.querySelector('[part~=output]')?.textContent.length > 0", timeout=LONG
    )
    for _ in range(2):
        text, percent = len(shown_output(page)), progress_now(page)
        page.wait_for_function(
            f"""([text, percent]) => {{
              const root = {SHADOW};
              const bar = root?.querySelector('[role=progressbar]');
              return root.host.getAttribute('state') === 'running'
                && root.querySelector('[part~=output]').textContent.length > text
                && Number(bar.getAttribute('aria-valuenow')) > percent;
            }}""",
            arg=[text, percent],
            timeout=LONG,
        )


def applied_seqs(page: Page) -> list[int]:
    seqs: list[int] = page.evaluate("window.__seqs")
    assert seqs == sorted(set(seqs)), f"each event once, in order: {seqs}"
    return seqs


def no_violations(page: Page) -> None:
    assert page.evaluate("window.__violations") == []


def test_a_report_survives_a_reload_and_an_api_restart(
    browser: Browser, shop: Shop, request: pytest.FixtureRequest
) -> None:
    probing = False  # the deliberate violation at the end is the only console error excused

    def expected(message: ConsoleMessage) -> bool:
        return probing and "Content Security Policy" in message.text

    with open_page(browser, shop.site.url, request, expected) as page:
        sent: list[Request] = []
        page.on("request", lambda sent_request: sent.append(sent_request))
        page.context.add_init_script(WATCH_PAGE)
        page.reload()

        page.get_by_label("Length").select_option("600")
        page.get_by_role("button", name="Generate a report").click()
        element = page.locator(ELEMENT)
        task_id = element.get_attribute("task-id", timeout=LONG)
        assert task_id
        assert re.fullmatch("[0-9a-f]{32}", task_id)
        wait_for_growth(page)
        first_load = applied_seqs(page)
        no_violations(page)

        page.reload()  # the same task again, from sessionStorage: resumed, not restarted
        expect(element).to_have_attribute("task-id", task_id)
        expect(element).to_have_attribute("state", "running", timeout=LONG)
        assert shown_output(page), "what was written before the reload shows at once"
        wait_for_growth(page)

        shop.stack.api.restart()  # a deploy: every stream is cut, the port answers again
        expect(element).to_have_attribute("connection", "live", timeout=LONG)
        wait_for_growth(page)
        connections = page.evaluate("window.__connections")
        assert "reconnecting" in connections, connections

        expect(element.locator("[part~=badge]")).to_have_text("Succeeded", timeout=LONG)
        expect(element).to_have_attribute("connection", "closed")
        expect(element.locator("[role=progressbar]")).to_have_attribute("aria-valuenow", "100")
        expected_text = shop.output_text(task_id)
        assert len(expected_text.split()) == 600
        assert shown_output(page) == expected_text, "the whole text, once"
        expect(element.locator("[part~=result]")).to_have_text('Result: {"words":600}')

        final_seq = shop.stack.task(task_id)["seq"]
        second_load = applied_seqs(page)
        assert second_load[-1] == final_seq, "the element applied the task's events to the end"
        assert first_load
        assert second_load[0] > first_load[0], "the reload resumed, not replayed"
        no_violations(page)

        # The policy is in force: an inline style is refused, and the listener sees it.
        probing = True
        page.evaluate("document.body.insertAdjacentHTML('beforeend', '<p style=\"color:red\">x')")
        page.wait_for_function("window.__violations.length > 0", timeout=LONG)
        assert "style-src" in page.evaluate("window.__violations[0]")

        starts = [r for r in sent if r.method == "POST" and r.url.endswith("/start")]
        assert len(starts) == 1, "the reload did not start another task"
        to_api = [r for r in sent if r.url.startswith(shop.stack.api.url)]
        assert any("/events" in r.url for r in to_api)
        assert any(r.url.endswith("/output") for r in to_api)
        for sent_request in sent:
            assert KEY not in sent_request.url
            headers = sent_request.all_headers()
            assert all(KEY not in value for value in headers.values()), sent_request.url
            if sent_request in to_api and "authorization" in headers:
                token = headers["authorization"].removeprefix("Bearer ")
                assert token.startswith("eyJ"), "a watch token"
                assert token.count(".") == 2, "a watch token"
        stored = page.evaluate("JSON.stringify(sessionStorage)")
        assert KEY not in stored
        assert KEY not in page.content()


def test_cancel_goes_through_the_sites_backend(
    browser: Browser, shop: Shop, request: pytest.FixtureRequest
) -> None:
    """A watch token cannot cancel: the element's Cancel asks the site, whose backend holds the
    key. Starting over forgets the task, so a reload shows none."""
    with open_page(browser, shop.site.url, request) as page:
        sent: list[str] = []
        page.on("request", lambda sent_request: sent.append(sent_request.url))
        page.get_by_label("Length").select_option("2000")
        page.get_by_role("button", name="Generate a report").click()
        element = page.locator(ELEMENT)
        expect(element).to_have_attribute("state", "running", timeout=LONG)
        task_id = element.get_attribute("task-id")
        cancel = element.get_by_role("button", name="Cancel")
        cancel.focus()
        cancel.press("Enter")
        expect(element.locator("[part~=badge]")).to_have_text("Cancelled", timeout=LONG)
        expect(cancel).to_be_hidden()
        assert shop.stack.task(str(task_id))["state"] == "cancelled"
        assert [url for url in sent if "cancel" in url] == [
            f"{shop.site.url}/tasks/{task_id}/cancel"
        ]

        page.get_by_role("button", name="Start a new report").click()
        page.reload()
        expect(page.get_by_role("button", name="Generate a report")).to_be_visible()
        expect(page.locator(ELEMENT)).to_have_count(0)
