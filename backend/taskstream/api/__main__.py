"""`python -m taskstream.api`: serve the API on API_HOST:API_PORT."""

import errno
import socket
import sys

import uvicorn

from taskstream import logs
from taskstream.settings import settings_or_exit


def port_taken(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def main() -> int:
    settings = settings_or_exit()
    if port_taken(settings.api_host, settings.api_port):
        print(
            f"taskstream: port {settings.api_port} on {settings.api_host} is already in use; "
            "set API_PORT to a free port",
            file=sys.stderr,
        )
        return 2
    log_config = logs.configure_api(settings)
    uvicorn.run(
        "taskstream.api.main:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        log_config=log_config,
        timeout_graceful_shutdown=5,
        server_header=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
