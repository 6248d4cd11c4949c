"""The whole system in a real browser: Redis, worker, API, the built web app, and Chromium.

Chromium comes from Debian (`/usr/bin/chromium`), driven by Playwright. A failing test leaves a
screenshot in `test-artifacts/`.
"""

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright, sync_playwright

from tests.support.processes import ROOT, WebServer, free_port
from tests.support.stack import Stack

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DIST = ROOT / "frontend" / "dist"
ARTIFACTS = ROOT / "test-artifacts"


class Site:
    def __init__(self, stack: Stack, web: WebServer) -> None:
        self.stack = stack
        self.web = web

    @property
    def url(self) -> str:
        return self.web.url


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not (DIST / "index.html").is_file():
        pytest.fail("frontend/dist is missing: run `make web` (npm ci && npm run build) first")
    directory = tmp_path_factory.mktemp("site")
    web_port = free_port()
    origin = f"http://127.0.0.1:{web_port}"
    stack = Stack(directory, api_env={"CORS_ORIGINS": origin, "SSE_RETRY_MS": "500"})
    stack.start()
    web = WebServer(stack.api.url, DIST, directory, port=web_port).start()
    yield Site(stack, web)
    web.stop()
    stack.stop()


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    chromium = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield chromium
    chromium.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    item.stash.setdefault(_FAILED, False)
    if report.when == "call" and report.failed:  # type: ignore[attr-defined]
        item.stash[_FAILED] = True
    return report


_FAILED = pytest.StashKey[bool]()


@contextmanager
def open_page(
    browser: Browser,
    url: str,
    request: pytest.FixtureRequest,
    expected: Callable[[ConsoleMessage], bool] = lambda message: False,
) -> Iterator[Page]:
    """A fresh browser context on `url`; fails the test on page errors and on console errors
    other than lost connections and those `expected` accepts."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and not expected(m) else None,
    )
    opened.goto(url)
    yield opened
    if request.node.stash.get(_FAILED, False):
        ARTIFACTS.mkdir(exist_ok=True)
        opened.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    unexpected = [e for e in errors if "ERR_CONNECTION_REFUSED" not in e and "net::" not in e]
    assert not unexpected, unexpected


@pytest.fixture
def page(browser: Browser, site: Site, request: pytest.FixtureRequest) -> Iterator[Page]:
    with open_page(browser, site.url, request) as opened:
        yield opened
