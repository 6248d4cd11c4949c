"""Signing in with an API key, in Chromium, against an API that requires one.

The page is served from another origin than the API (another port), as `make run` serves it:
the session cookie must flow with every fetch and with the EventSource.
"""

import json
import secrets
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect

from tests.e2e.conftest import DIST, Site, open_page
from tests.e2e.test_page import LONG, run
from tests.support.processes import WebServer, free_port
from tests.support.stack import Stack

KEY = "key-alice-0123456789"
REFUSED = "Failed to load resource: the server responded with a status of 401"


@pytest.fixture(scope="module")
def secured_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not (DIST / "index.html").is_file():
        pytest.fail("frontend/dist is missing: run `make web` (npm ci && npm run build) first")
    directory = tmp_path_factory.mktemp("secured-site")
    web_port = free_port()
    origin = f"http://127.0.0.1:{web_port}"
    api_env = {
        "CORS_ORIGINS": origin,
        "SSE_RETRY_MS": "500",
        "API_KEYS": json.dumps({KEY: "alice"}),
        "SESSION_SECRET": secrets.token_urlsafe(30),  # 40 characters
    }
    stack = Stack(directory, api_env=api_env)
    stack.start()
    web = WebServer(stack.api.url, DIST, directory, port=web_port).start()
    yield Site(stack, web)
    web.stop()
    stack.stop()


def refused_by_api(site: Site) -> Callable[[ConsoleMessage], bool]:
    """Chromium logs every 401 answer to a fetch as a console error: those of the API are the
    expected answers to a wrong key or an ended session, and nothing else is excused."""

    def expected(message: ConsoleMessage) -> bool:
        url = str(message.location.get("url", ""))
        return message.text.startswith(REFUSED) and url.startswith(f"{site.stack.api.url}/api/")

    return expected


@pytest.fixture
def secured_page(
    browser: Browser, secured_site: Site, request: pytest.FixtureRequest
) -> Iterator[Page]:
    with open_page(browser, secured_site.url, request, refused_by_api(secured_site)) as opened:
        yield opened


def sign_in(page: Page, key: str) -> None:
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def test_the_page_asks_for_a_key_first(secured_page: Page) -> None:
    page = secured_page
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible(timeout=LONG)
    expect(page.get_by_label("API key")).to_have_attribute("type", "password")
    expect(page.get_by_label("API key")).to_be_focused()
    expect(page.locator("#app")).to_be_hidden()
    expect(page.locator("#account")).to_be_hidden()
    expect(page.locator("#connection")).to_be_hidden()


def test_a_wrong_key_is_refused(secured_page: Page) -> None:
    page = secured_page
    sign_in(page, "key-mallory-not-valid")
    error = page.locator("#api-key-error")
    expect(error).to_have_text("The API key is not valid.", timeout=LONG)
    expect(page.get_by_label("API key")).to_have_value("")
    expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#app")).to_be_hidden()
    assert not page.context.cookies(), "no session for a wrong key"


def test_sign_in_run_reload_and_sign_out(secured_page: Page, secured_site: Site) -> None:
    page = secured_page
    sign_in(page, KEY)
    expect(page.locator("#principal")).to_have_text("alice", timeout=LONG)
    expect(page.locator("#account")).to_contain_text("Signed in as alice")
    expect(page.locator("#signin")).to_be_hidden()
    expect(page.locator("form[data-kind=add]")).to_be_visible(timeout=LONG)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=LONG)

    (cookie,) = page.context.cookies(secured_site.stack.api.url + "/api/")
    assert (cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (True, "Strict", "/api")
    kept = page.evaluate(
        "() => [location.href, JSON.stringify({...localStorage, ...sessionStorage})]"
    )
    assert not any(KEY in text for text in kept), kept

    # The result arrives over the stream: the EventSource carries the cookie cross-origin.
    row = run(page, "add", x=2, y=3)
    expect(row).to_have_attribute("data-state", "succeeded", timeout=LONG)
    expect(row.locator(".task__outcome-text")).to_have_text("5")
    expect(page.locator("#log li").first).to_contain_text("succeeded")

    page.reload()
    expect(page.locator("#principal")).to_have_text("alice", timeout=LONG)
    expect(page.locator(f"#tasks > li[data-id='{row.get_attribute('data-id')}']")).to_be_visible()
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=LONG)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible(timeout=LONG)
    expect(page.locator("#signin-note")).to_have_text("You have signed out.")
    expect(page.locator("#app")).to_be_hidden()
    expect(page.locator("#account")).to_be_hidden()
    expect(page.locator("#tasks > li")).to_have_count(0)
    assert not page.context.cookies(secured_site.stack.api.url + "/api/")

    page.reload()
    expect(page.get_by_label("API key")).to_be_visible(timeout=LONG)
    expect(page.locator("#app")).to_be_hidden()


def test_an_ended_session_returns_to_the_sign_in(secured_page: Page) -> None:
    page = secured_page
    sign_in(page, KEY)
    expect(page.locator("form[data-kind=add]")).to_be_visible(timeout=LONG)
    # Everything the page asks for after signing in (tasks, then the stream) is answered:
    # the session ends while the page is idle, and the submission below is the first to see it.
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=LONG)
    page.context.clear_cookies()  # what an expired session looks like to the API
    form = page.locator("form[data-kind=add]")
    form.locator("[name=x]").fill("1")
    form.locator("[name=y]").fill("1")
    form.locator("button[type=submit]").click()
    expect(page.locator("#signin-note")).to_have_text(
        "Your session has ended; sign in again.", timeout=LONG
    )
    expect(page.get_by_label("API key")).to_be_focused()
    expect(page.locator("#app")).to_be_hidden()
    sign_in(page, KEY)
    expect(page.locator("#principal")).to_have_text("alice", timeout=LONG)
    expect(page.locator("#signin")).to_be_hidden()


def test_the_stream_notices_an_ended_session(secured_page: Page, secured_site: Site) -> None:
    page = secured_page
    sign_in(page, KEY)
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=LONG)
    page.context.clear_cookies()
    secured_site.stack.api.restart()  # drops the stream; its reconnect is refused with a 401
    expect(page.locator("#signin-note")).to_have_text(
        "Your session has ended; sign in again.", timeout=LONG
    )
    expect(page.locator("#app")).to_be_hidden()
