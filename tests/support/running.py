"""`make run` (or its launcher) started as a person starts it, on free ports, and stopped with
Ctrl-C; every process it started is found by a marker in its environment."""

import contextlib
import os
import signal
import subprocess
import uuid
from pathlib import Path

from tests.support.processes import ROOT, free_port


def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment carries `marker`: all that a run started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split()[2]
        except OSError:
            continue
        if marker.encode() in environ and state != "Z":
            found.append(int(entry.name))
    return found


class Run:
    def __init__(self, args: list[str], tmp: Path, **env: str) -> None:
        self.marker = f"TASKSTREAM_RUN_MARKER={uuid.uuid4().hex}"
        self.api_port, self.web_port, self.example_port = free_port(), free_port(), free_port()
        self.redis_port = free_port()
        environment = {
            **os.environ,
            "API_PORT": str(self.api_port),
            "WEB_PORT": str(self.web_port),
            "EXAMPLE_PORT": str(self.example_port),
            "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing answers there
            "LOCAL_REDIS_PORT": str(self.redis_port),
            "LOCAL_REDIS_DIR": str(tmp / "redis"),
            "TASKSTREAM_RUN_MARKER": self.marker.split("=")[1],
            **env,
        }
        self.log = tmp / "run.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                args,
                cwd=ROOT,
                env=environment,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, like a terminal's
            )

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def ctrl_c(self) -> int:
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(90)

    def kill(self) -> None:
        for pid in processes_with(self.marker):
            with_suppress_kill(pid)


def with_suppress_kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
