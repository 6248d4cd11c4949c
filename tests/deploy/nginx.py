"""A private nginx running the project's site config, for tests.

It renders docker/nginx/taskstream.conf.template the way the frontend image does (plain substitution
of its ${NAME} placeholders) and wraps it in a minimal nginx.conf whose pid, logs and temp files all
live in a temporary directory, so it needs no privileges and leaves nothing behind. It listens on
127.0.0.1 only, on a free port. Uses the distribution's nginx (Debian: nginx-light).
"""

import os
import pwd
import shutil
import tempfile
from pathlib import Path

import httpx

from tests.support.processes import Process, free_port
from tests.support.waiting import wait_until

TEMPLATE = Path(__file__).resolve().parents[2] / "docker" / "nginx" / "taskstream.conf.template"
MIME_TYPES = Path("/etc/nginx/mime.types")

_WRAPPER = """\
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log stderr notice;
events {{
    worker_connections 64;
}}
http {{
    include {mime_types};
    default_type application/octet-stream;
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/taskstream.conf;
}}
"""


def render_site(
    *,
    listen: str,
    web_root: Path,
    api_upstream: str,
    api_origin: str = "",
    access_log: str = "/var/log/nginx/access.log",
) -> str:
    """The site config with every placeholder replaced."""
    text = TEMPLATE.read_text()
    values = {
        "LISTEN": listen,
        "WEB_ROOT": str(web_root),
        "API_UPSTREAM": api_upstream,
        "API_ORIGIN": api_origin,
        "ACCESS_LOG": access_log,
    }
    for name, value in values.items():
        text = text.replace("${" + name + "}", value)
    if "${" in text:
        raise ValueError(f"{TEMPLATE.name} has a placeholder that render_site does not fill")
    return text


def _nginx_binary() -> str:
    # /usr/sbin is not on a normal user's PATH.
    found = shutil.which("nginx", path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    if found is None:
        raise RuntimeError("nginx is not installed (Debian: apt-get install nginx-light)")
    return found


def _user_directive() -> str:
    # Started by root, nginx hands its workers to "nobody", who cannot read a private temp dir.
    if os.geteuid() != 0:
        return ""
    return f"user {pwd.getpwuid(os.geteuid()).pw_name};"


class NginxProxy:
    """nginx serving `web_root` and proxying the API paths to 127.0.0.1:`api_port`."""

    def __init__(self, api_port: int, web_root: Path, *, api_origin: str = "") -> None:
        self.port = free_port()
        self._directory = tempfile.TemporaryDirectory(prefix="taskstream-nginx-")
        prefix = Path(self._directory.name)
        self.access_log = prefix / "access.log"
        (prefix / "taskstream.conf").write_text(
            render_site(
                listen=f"127.0.0.1:{self.port}",
                web_root=web_root,
                api_upstream=f"127.0.0.1:{api_port}",
                api_origin=api_origin,
                access_log=str(self.access_log),
            )
        )
        conf = prefix / "nginx.conf"
        conf.write_text(
            _WRAPPER.format(user=_user_directive(), prefix=prefix, mime_types=MIME_TYPES)
        )
        args = [_nginx_binary(), "-p", str(prefix), "-c", str(conf), "-e", "stderr"]
        self.process = Process("nginx", [*args, "-g", "daemon off;"], prefix, {})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "NginxProxy":
        self.process.start()

        def answers() -> bool:
            if not self.process.running:
                raise RuntimeError(f"nginx exited:\n{self.process.log_tail()}")
            httpx.head(self.url, timeout=2)  # any HTTP answer will do
            return True

        try:
            wait_until(answers, 15, message=lambda: f"nginx to answer\n{self.process.log_tail()}")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.process.stop()
        self._directory.cleanup()

    def __enter__(self) -> "NginxProxy":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
