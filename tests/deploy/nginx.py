"""A private nginx running the project's site config, for tests.

It renders docker/nginx/taskstream.conf.template the way the frontend image does (plain substitution
of its ${NAME} placeholders) and wraps it in a minimal nginx.conf whose pid, logs and temp files all
live in a temporary directory, so it needs no privileges and leaves nothing behind. It listens on
127.0.0.1 only, on two free ports: plain HTTP (`url`) and HTTPS with HTTP/2 (`https_url`), with a
self-signed certificate that the frontend image's own script makes (`certificate`; `tls_context()`
trusts it). Plain HTTP serves the site, as for local use, unless `plain_http="redirect"` as in the
image. Uses the distribution's nginx (Debian: nginx-light) and the openssl command.
"""

import os
import pwd
import shutil
import ssl
import subprocess
import tempfile
from pathlib import Path

import httpx

from tests.support.processes import Process, free_port
from tests.support.waiting import wait_until

TEMPLATE = Path(__file__).resolve().parents[2] / "docker" / "nginx" / "taskstream.conf.template"
CERTIFICATE_SCRIPT = TEMPLATE.with_name("tls-certificate.sh")
MIME_TYPES = Path("/etc/nginx/mime.types")

_WRAPPER = """\
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log stderr notice;
events {{
    worker_connections 256;
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
    tls_listen: str,
    certificate: Path,
    certificate_key: Path,
    web_root: Path,
    api_upstream: str,
    api_origin: str = "",
    access_log: str = "/var/log/nginx/access.log",
    plain_http: str = "serve",
    https_port: int = 8443,
) -> str:
    """The site config with every placeholder replaced."""
    text = TEMPLATE.read_text()
    values = {
        "LISTEN": listen,
        "TLS_LISTEN": tls_listen,
        "TLS_CERTIFICATE": str(certificate),
        "TLS_CERTIFICATE_KEY": str(certificate_key),
        "PLAIN_HTTP": plain_http,
        "HTTPS_PORT": str(https_port),
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


def make_certificate(certificate: Path, key: Path, names: str = "") -> str:
    """Runs the frontend image's certificate script; its output (it fails with the reason)."""
    environment = {
        **os.environ,
        "TLS_CERTIFICATE": str(certificate),
        "TLS_CERTIFICATE_KEY": str(key),
        "TLS_SELF_SIGNED_NAMES": names,
    }
    result = subprocess.run(
        ["sh", str(CERTIFICATE_SCRIPT)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{CERTIFICATE_SCRIPT.name} failed:\n{result.stdout}{result.stderr}")
    return result.stdout + result.stderr


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

    def __init__(
        self,
        api_port: int,
        web_root: Path,
        *,
        api_origin: str = "",
        plain_http: str = "serve",
    ) -> None:
        self.port = free_port()
        self.tls_port = free_port()
        self._directory = tempfile.TemporaryDirectory(prefix="taskstream-nginx-")
        prefix = Path(self._directory.name)
        self.access_log = prefix / "access.log"
        self.certificate = prefix / "tls" / "cert.pem"
        self.certificate.parent.mkdir()
        make_certificate(self.certificate, prefix / "tls" / "key.pem")
        (prefix / "taskstream.conf").write_text(
            render_site(
                listen=f"127.0.0.1:{self.port}",
                tls_listen=f"127.0.0.1:{self.tls_port}",
                certificate=self.certificate,
                certificate_key=prefix / "tls" / "key.pem",
                web_root=web_root,
                api_upstream=f"127.0.0.1:{api_port}",
                api_origin=api_origin,
                access_log=str(self.access_log),
                plain_http=plain_http,
                https_port=self.tls_port,
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

    @property
    def https_url(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    def tls_context(self) -> ssl.SSLContext:
        """Verifies the server against its self-signed certificate, host name included."""
        return ssl.create_default_context(cafile=self.certificate)

    def start(self) -> "NginxProxy":
        self.process.start()

        def answers() -> bool:
            if not self.process.running:
                raise RuntimeError(f"nginx exited:\n{self.process.log_tail()}")
            httpx.head(self.url, timeout=2)  # any HTTP answer will do
            httpx.head(self.https_url, timeout=2, verify=self.tls_context())
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
