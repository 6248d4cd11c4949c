"""The web app's server: config.js and the CSP point the page at the API on the page's own host."""

from pathlib import Path

import httpx

from taskstream.settings import Settings
from taskstream.web import create_app
from tests.support.loops import run_apart


def get(tmp_path: Path, url: str, **overrides: str) -> httpx.Response:
    (tmp_path / "index.html").write_text("<!doctype html><title>taskstream</title>")
    settings = Settings(web_root=str(tmp_path), api_port=8123, **overrides)  # type: ignore[arg-type]

    async def fetch() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(settings))
        async with httpx.AsyncClient(transport=transport) as client:
            return await client.get(url)

    return run_apart(fetch())


def test_the_api_is_found_on_the_host_the_page_was_loaded_from(tmp_path: Path) -> None:
    for host in ("localhost", "127.0.0.1"):
        config = get(tmp_path, f"http://{host}:5173/config.js")
        assert f'"apiBaseUrl": "http://{host}:8123"' in config.text
        page = get(tmp_path, f"http://{host}:5173/")
        assert page.status_code == 200
        assert f"connect-src 'self' http://{host}:8123;" in page.headers["content-security-policy"]
        assert page.headers["x-content-type-options"] == "nosniff"


def test_a_public_api_url_wins(tmp_path: Path) -> None:
    config = get(tmp_path, "http://localhost/config.js", api_public_url="https://api.example.org/")
    assert '"apiBaseUrl": "https://api.example.org"' in config.text
