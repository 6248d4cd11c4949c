"""The page as operators serve it: nginx with the project's configuration and its
Content-Security-Policy, in front of the API, on one origin."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from tests.deploy.nginx import NginxProxy
from tests.e2e.conftest import DIST, Site


@pytest.fixture(scope="module")
def proxy(site: Site) -> Iterator[NginxProxy]:
    with NginxProxy(site.stack.api.port, DIST) as running:
        yield running


def test_the_page_works_under_nginx_and_its_content_security_policy(
    browser: Browser, proxy: NginxProxy
) -> None:
    context = browser.new_context()
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    response = page.goto(proxy.url)
    assert response is not None
    assert "default-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator("#connection")).to_have_attribute("data-state", "live", timeout=60_000)
    form = page.locator("form[data-kind=add]")
    form.locator("[name=x]").fill("20")
    form.locator("[name=y]").fill("22")
    form.locator("button[type=submit]").click()
    row = page.locator("#tasks > li[data-id]").first
    expect(row).to_have_attribute("data-state", "succeeded", timeout=60_000)
    expect(row.locator(".task__outcome-text")).to_have_text("42")
    context.close()
    assert problems == []  # a CSP violation would show here
