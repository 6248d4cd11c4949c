"""`python -m taskstream.web`: serve the built web app (frontend/dist) on WEB_PORT.

The app reads the API's address from `/config.js` at load time, so one build serves any
deployment: here it is written from the settings (API_PUBLIC_URL, else API_HOST and API_PORT).
Behind nginx, as in docker compose, the app and the API share an origin and nginx serves the
files itself; this server is for running from a checkout.
"""

import json
import sys
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskstream.settings import Settings, get_settings, settings_or_exit


def api_origin(settings: Settings, page_host: str | None) -> str:
    """Where the page finds the API: API_PUBLIC_URL, else the API's port on the host name the
    browser used for the page (so `localhost` pages call `localhost`: same site, and the session
    cookie flows; `127.0.0.1` pages call `127.0.0.1`)."""
    if settings.api_public_url:
        return settings.api_public_url.rstrip("/")
    host = page_host or settings.api_host
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.api_port}"


def security_headers(api: str) -> list[tuple[bytes, bytes]]:
    policy = (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self' {api}; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    )
    return [
        (b"content-security-policy", policy.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
    ]


def _page_host(scope: Scope) -> str | None:
    if scope["type"] != "http" or not any(name == b"host" for name, _ in scope["headers"]):
        return None
    return Request(scope).url.hostname


class SecurityHeaders:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = security_headers(api_origin(self.settings, _page_host(scope)))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *headers]
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(settings: Settings | None = None) -> ASGIApp:
    settings = settings or get_settings()
    root = Path(settings.web_root)
    if not (root / "index.html").is_file():
        raise RuntimeError(f"{root}/index.html not found: build the app (make web) first")

    async def config_js(request: Request) -> Response:
        config = {"apiBaseUrl": api_origin(settings, request.url.hostname)}
        return Response(
            f"window.TASKSTREAM_CONFIG = {json.dumps(config)};\n",
            media_type="text/javascript",
            headers={"Cache-Control": "no-cache"},
        )

    app = Starlette(
        routes=[
            Route("/config.js", config_js),
            Mount("/", StaticFiles(directory=root, html=True)),
        ]
    )
    return SecurityHeaders(app, settings)


def main() -> int:
    settings = settings_or_exit()
    try:
        app = create_app(settings)
    except RuntimeError as exc:
        print(f"taskstream: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(app, host=settings.web_host, port=settings.web_port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
