"""`python -m bench [--quick]`: run every scenario against every design, save the results as JSON
under bench/results/ and (full mode) write docs/benchmarks.md and docs/benchmarks-latency.png.

Exits 1 when taskstream lost or duplicated a delivery, crashed, or could not be measured; in
quick mode also when any design's server crashed or any scenario could not run. (The baselines'
failures at full scale are figures, not errors.) Exits 2 when the bench group is not installed.
"""

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import hiredis, report
from bench.driver import LoadGen
from bench.procs import ROOT, Cores, machine, machine_busy, raise_file_limit
from bench.scenarios import (
    celery_send_loop,
    context_calls,
    fanout,
    reconnect_storm,
    submission,
    token_stream,
    worker_throughput,
)
from bench.stacks import DESIGNS, TASKSTREAM, TOKEN_DESIGNS, Design, Stack

RESULTS = ROOT / "bench" / "results"
Json = dict[str, Any]


@dataclass
class Config:
    mode: str
    designs: list[str]
    clients: list[int]
    tasks: int = 30
    rate: float = 5.0
    repeats: int = 3
    repeat_up_to: int = 1000  # points above this many clients run once
    ramp: int = 500
    wait_s: float = 120.0
    submit_concurrency: int = 32
    submit_seconds: float = 5.0
    submit_streaming: int = 5000
    worker_tasks: int = 2000
    storm_clients: int = 1000
    storm_tasks: int = 50
    metrics_clients: int = 1000
    token_clients: list[int] = field(default_factory=lambda: [1, 100, 1000])
    token_rate: float = 2000.0  # chunks per second
    token_seconds: float = 10.0
    context_calls: int = 200_000  # ctx.write / ctx.progress calls per microbenchmark task
    context_rounds: int = 3
    hiredis_repeats: int = 5  # runs of each scenario with hiredis and without
    loadgen_procs: int = 1
    quiet_wait: float = 240.0  # seconds in all to wait for other processes to go quiet
    fresh_per_run: bool = True
    skip: list[str] = field(default_factory=list)

    @classmethod
    def quick(cls) -> "Config":
        return cls(
            mode="quick",
            designs=list(DESIGNS),
            clients=[100],
            tasks=10,
            repeats=1,
            wait_s=30,
            submit_seconds=1.0,
            submit_streaming=0,
            worker_tasks=200,
            storm_clients=200,
            storm_tasks=10,
            metrics_clients=100,
            token_clients=[1, 10],
            token_rate=1000.0,
            token_seconds=1.0,
            context_calls=20_000,
            context_rounds=1,
            hiredis_repeats=1,
            fresh_per_run=False,
            quiet_wait=0.0,
        )

    @classmethod
    def full(cls) -> "Config":
        return cls(mode="full", designs=list(DESIGNS), clients=[100, 1000, 5000, 10000])


class Bench:
    def __init__(self, config: Config, cores: Cores, workdir: Path, host: Json) -> None:
        self.config = config
        self.cores = cores
        self.workdir = workdir
        self.results: Json = {
            "mode": config.mode,
            "config": asdict(config),
            "machine": host,
            "cores": {"servers": sorted(cores.servers), "load": sorted(cores.load)},
            "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
            "designs": {key: asdict(DESIGNS[key]) for key in config.designs},
            "fanout": [],
            "submission": [],
            "worker": [],
            "storm": [],
            "metrics": {},
            "tokens": [],
            "context_calls": {},
            "hiredis": {},
            "errors": [],
            "background_load": [],
        }
        self.quiet_budget = config.quiet_wait
        self.problems: list[str] = []
        self.gen: LoadGen | None = None
        self._stacks = 0
        self.active: set[Stack] = set()
        self.interrupted = 0

    def interrupt(self, main: "asyncio.Task[None]") -> None:
        """Ctrl-C or SIGTERM: stop the run (its stacks are stopped on the way out); a second
        one kills every process at once."""
        self.interrupted += 1
        if self.gen is not None:
            self.gen.kill()  # it holds nothing but client sockets
        if self.interrupted == 1:
            self.log("interrupted: stopping")
            main.cancel()
            return
        for stack in list(self.active):
            stack.stop()
        os._exit(130)

    def log(self, text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    @contextlib.asynccontextmanager
    async def stack(
        self, design: Design, *, worker: bool = True, env: dict[str, str] | None = None
    ) -> AsyncIterator[Stack]:
        self._stacks += 1
        directory = self.workdir / f"{self._stacks:03d}-{design.key}"
        stack = Stack(design, directory, self.cores.servers, worker=worker, env=env)
        self.active.add(stack)
        try:
            await asyncio.to_thread(stack.start)
            await self.wait_quiet()
            yield stack
        finally:
            crashed = not stack.server.running
            await asyncio.to_thread(stack.stop)
            self.active.discard(stack)
            if crashed:
                self.log(f"  {design.key} server had exited:\n{stack.server.log_tail()}")

    async def wait_quiet(self) -> None:
        """Records the machine's load from other processes (the stack is idle now); in full
        mode, waits up to 20 s (and `quiet_wait` s in all) for it to fall under 0.25 cores."""
        busy = await asyncio.to_thread(machine_busy, 0.5)
        waited = 0.0
        while busy > 0.25 and waited < 20 and self.quiet_budget > 0:
            started = time.monotonic()
            busy = await asyncio.to_thread(machine_busy, 1.0)
            waited += time.monotonic() - started
            self.quiet_budget -= time.monotonic() - started
        if busy > 0.25:
            self.log(f"  other processes use {busy:.2f} cores of this machine: figures are noisy")
        self.results["background_load"].append(busy)

    async def attempt(self, what: str, design: Design, action: Callable[[], Any]) -> Json | None:
        """Runs one measurement; a failure is recorded as a figure, not raised."""
        try:
            result: Json = await action()
            return result
        except Exception as exc:
            self.log(f"  {what} failed: {exc!r}")
            traceback.print_exc()
            self.results["errors"].append({"design": design.key, "what": what, "error": repr(exc)})
            if design is TASKSTREAM or self.config.mode == "quick":
                self.problems.append(f"{design.key}: {what} failed: {exc!r}")
            return None

    def check(self, design: Design, what: str, result: Json) -> None:
        if design is TASKSTREAM:
            if result.get("lost") or result.get("finals_lost") or result.get("events_lost"):
                self.problems.append(f"taskstream lost deliveries in {what}")
            if result.get("duplicates"):
                self.problems.append(f"taskstream duplicated deliveries in {what}")
            if result.get("reordered"):
                self.problems.append(f"taskstream delivered chunks out of order in {what}")
            if result.get("offset_gaps"):
                self.problems.append(f"taskstream's output offsets skipped ahead in {what}")
            if result.get("connected", 1) == 0:
                self.problems.append(f"no client could connect to taskstream in {what}")
        if not result.get("server_alive", True) and (
            design is TASKSTREAM or self.config.mode == "quick"
        ):
            self.problems.append(f"{design.key} server crashed in {what}")

    # --- scenarios ---------------------------------------------------------------------------

    async def run_fanout(self, design: Design, stack: Stack | None, clients: int) -> Json | None:
        cfg = self.config
        gen = self.gen
        assert gen is not None

        async def measure(s: Stack) -> Json:
            return await fanout(
                s, gen, clients, cfg.tasks, cfg.rate, ramp=cfg.ramp, wait_s=cfg.wait_s
            )

        async def fresh() -> Json:
            async with self.stack(design) as s:
                return await measure(s)

        what = f"fan-out {clients} clients"
        self.log(f"{design.key}: {what}")
        result = await self.attempt(
            what, design, fresh if stack is None else lambda: measure(stack)
        )
        if result is not None:
            result["design"] = design.key
            self.check(design, what, result)
            self.log(
                f"  connected {result['connected']}/{clients}, lost {result['lost']}, "
                f"dup {result['duplicates']}, p50 {result['latency_p50_ms']} ms, "
                f"p99 {result['latency_p99_ms']} ms, {result['cpu_us_per_event']} us/event, "
                f"loadgen {result['loadgen_busy']:.0%}"
            )
        return result

    async def run_storm(self, design: Design, stack: Stack | None) -> None:
        cfg = self.config
        gen = self.gen
        assert gen is not None

        async def measure(s: Stack) -> Json:
            return await reconnect_storm(
                s, gen, cfg.storm_clients, cfg.storm_tasks, cfg.ramp, cfg.wait_s
            )

        async def fresh() -> Json:
            async with self.stack(design) as s:
                return await measure(s)

        what = "reconnect storm"
        self.log(f"{design.key}: {what} ({cfg.storm_clients} clients, {cfg.storm_tasks} tasks)")
        result = await self.attempt(
            what, design, fresh if stack is None else lambda: measure(stack)
        )
        if result is not None:
            result["design"] = design.key
            self.check(design, what, result)
            self.results["storm"].append(result)
            self.log(
                f"  caught up in {result['caught_up_seconds']} s, finals lost "
                f"{result['finals_lost']}, events lost {result['events_lost']}, dup "
                f"{result['duplicates']}"
            )

    async def run_submission(self, design: Design, streaming: int, stack: Stack | None) -> None:
        cfg = self.config
        gen = self.gen
        assert gen is not None

        async def measure(s: Stack) -> Json:
            return await submission(
                s, gen, cfg.submit_concurrency, cfg.submit_seconds, streaming, cfg.ramp
            )

        async def fresh() -> Json:
            # Without streaming clients, no worker runs: only the API's side is measured.
            async with self.stack(design, worker=streaming > 0) as s:
                return await measure(s)

        what = f"submission ({streaming} streaming)"
        self.log(f"{design.key}: {what}")
        result = await self.attempt(
            what, design, fresh if stack is None else lambda: measure(stack)
        )
        if result is not None:
            result["design"] = design.key
            self.check(design, what, result)
            self.results["submission"].append(result)
            self.log(
                f"  {result['per_second']}/s, p99 {result['p99_ms']} ms, "
                f"other {result['other_statuses']} {result['errors']}"
            )

    async def run_celery_floor(self, stack: Stack | None) -> None:
        seconds = self.config.submit_seconds

        async def measure(s: Stack) -> Json:
            return await asyncio.to_thread(celery_send_loop, s.redis.url, seconds)

        async def fresh() -> Json:
            async with self.stack(DESIGNS["flask"], worker=False) as s:
                return await measure(s)

        self.log("celery: bare send_task loop")
        action = fresh if stack is None else lambda: measure(stack)
        result = await self.attempt("celery send loop", DESIGNS["flask"], action)
        if result is not None:
            result["design"] = "celery"
            self.results["submission"].append(result)
            self.log(f"  {result['per_second']}/s, p99 {result['p99_ms']} ms")

    async def run_worker(self) -> None:
        cfg = self.config
        for key, label in (("taskstream", "taskstream"), ("flask", "celery")):
            design = DESIGNS[key]

            async def measure(design: Design = design) -> Json:
                async with self.stack(design, worker=False) as s:
                    s.worker = s._worker()
                    gen = self.gen if design.event_log else None
                    return await worker_throughput(s, gen, cfg.worker_tasks)

            self.log(f"{label}: worker throughput ({cfg.worker_tasks} add tasks)")
            result = await self.attempt(f"{label} worker throughput", design, measure)
            if result is not None:
                result["design"] = label
                self.results["worker"].append(result)
                self.log(f"  {result['per_second']} tasks/s")

    async def run_metrics(self) -> None:
        """Fan-out CPU per event with METRICS_ENABLED=true against false, in runs of their own
        taken in turns (on, off, on, off, ...), so that drift over the suite's run (it was seen
        at 10-20%) weighs on both alike."""
        cfg = self.config
        clients = cfg.metrics_clients
        repeats = cfg.repeats if clients <= cfg.repeat_up_to else 1
        runs: dict[str, list[Json]] = {"true": [], "false": []}
        for _ in range(max(repeats, 2)):
            for enabled in ("true", "false"):
                env = {"METRICS_ENABLED": enabled}

                async def measure(env: dict[str, str] = env) -> Json:
                    assert self.gen is not None
                    async with self.stack(TASKSTREAM, env=env) as s:
                        status = await asyncio.to_thread(s.get_status, "/metrics")
                        if env["METRICS_ENABLED"] == "true" and status == 404:
                            return {
                                "skipped": "GET /metrics answered 404 with METRICS_ENABLED=true: "
                                "the setting is not honoured by this taskstream"
                            }
                        result = await fanout(
                            s,
                            self.gen,
                            clients,
                            cfg.tasks,
                            cfg.rate,
                            ramp=cfg.ramp,
                            wait_s=cfg.wait_s,
                        )
                        result["metrics_status"] = status
                        return result

                self.log(f"taskstream: METRICS_ENABLED={enabled}, {clients} clients")
                result = await self.attempt(f"metrics={enabled}", TASKSTREAM, measure)
                if result is None:
                    continue
                if "skipped" in result:
                    self.results["metrics"] = {"skipped": result["skipped"]}
                    self.log(f"  skipped: {result['skipped']}")
                    return
                self.check(TASKSTREAM, f"fan-out with METRICS_ENABLED={enabled}", result)
                runs[enabled].append(result)
                self.log(f"  {result['cpu_us_per_event']} us/event")
        per_event = {
            k: statistics.median([r["cpu_us_per_event"] for r in v if r["cpu_us_per_event"]])
            for k, v in runs.items()
            if any(r["cpu_us_per_event"] for r in v)
        }
        on, off = per_event.get("true"), per_event.get("false")
        self.results["metrics"] = {
            "clients": clients,
            "runs_on": runs["true"],
            "runs_off": runs["false"],
            "cpu_us_per_event_on": on,
            "cpu_us_per_event_off": off,
            "ratio": round(on / off, 3) if on and off else None,
        }

    async def run_hiredis(self) -> None:
        """Submissions, worker throughput and the reconnect storm with redis-py's hiredis parser
        against its Python one, in taskstream's API and worker (`bench/hiredis.py`): each in runs
        of its own, the two taken in turns (the first of each pair alternating), so that drift
        over the suite weighs on both alike."""
        cfg = self.config
        runs: list[Json] = []
        for repeat in range(cfg.hiredis_repeats):
            order = hiredis.VARIANTS if repeat % 2 == 0 else hiredis.VARIANTS[::-1]
            for scenario in ("submission", "worker", "storm"):
                for variant in order:
                    self.log(f"taskstream: {scenario} with {variant} (run {repeat + 1})")

                    async def measure(scenario: str = scenario, variant: str = variant) -> Json:
                        return await self.hiredis_run(scenario, variant)

                    what = f"{scenario} with {variant}"
                    result = await self.attempt(what, TASKSTREAM, measure)
                    if result is None:
                        continue
                    result |= {"scenario": scenario, "variant": variant, "repeat": repeat}
                    self.check(TASKSTREAM, what, result)
                    runs.append(result)
                    figure = {
                        "submission": f"{result.get('per_second')}/s",
                        "worker": f"{result.get('per_second')} tasks/s",
                        "storm": f"caught up in {result.get('caught_up_seconds')} s",
                    }[scenario]
                    self.log(f"  {figure}")
        self.results["hiredis"] = {"repeats": cfg.hiredis_repeats, "runs": runs}

    async def hiredis_run(self, scenario: str, variant: str) -> Json:
        """One run of `scenario` on a fresh taskstream stack whose processes run as `variant`;
        raises if they did not (hiredis loaded where it was blocked, or missing where not)."""
        cfg = self.config
        gen = self.gen
        assert gen is not None
        env = hiredis.environment(variant)
        async with self.stack(TASKSTREAM, worker=scenario == "storm", env=env) as s:
            if scenario == "submission":
                result = await submission(s, gen, cfg.submit_concurrency, cfg.submit_seconds)
            elif scenario == "worker":
                s.worker = s._worker()
                result = await worker_throughput(s, gen, cfg.worker_tasks)
            else:
                result = await reconnect_storm(
                    s, gen, cfg.storm_clients, cfg.storm_tasks, cfg.ramp, cfg.wait_s
                )
            processes = {"api": s.server, "worker": s.worker}
            found = {name: hiredis.loaded(p.pid) for name, p in processes.items() if p is not None}
        expected = variant == hiredis.WITH
        if any(value is not expected for value in found.values()):
            raise RuntimeError(f"{variant} run, but hiredis loaded: {found}")
        result["hiredis_loaded"] = found
        return result

    async def run_token_point(
        self, design: Design, stack: Stack | None, clients: int, repeat: int
    ) -> None:
        cfg = self.config
        gen = self.gen
        assert gen is not None
        chunks = max(1, round(cfg.token_rate * cfg.token_seconds))

        async def measure(s: Stack) -> Json:
            return await token_stream(s, gen, clients, chunks, cfg.token_rate, ramp=cfg.ramp)

        async def fresh() -> Json:
            async with self.stack(design) as s:
                return await measure(s)

        what = f"token stream {clients} watchers"
        self.log(f"{design.key}: {what} ({chunks:,} chunks at {cfg.token_rate:g}/s)")
        result = await self.attempt(
            what, design, fresh if stack is None else lambda: measure(stack)
        )
        if result is None:
            return
        result["design"] = design.key
        result["repeat"] = repeat
        self.check(design, what, result)
        if design is TASKSTREAM and not result["complete"]:
            self.problems.append(f"taskstream's {what}: not every stream ended")
        self.results["tokens"].append(result)
        self.log(
            f"  connected {result['connected']}/{clients}, lost {result['lost']}, dup "
            f"{result['duplicates']}, reordered {result['reordered']}, p50 "
            f"{result['latency_p50_ms']} ms, p99 {result['latency_p99_ms']} ms, server "
            f"{result['cpu_us_per_chunk']} us/chunk, worker {result['worker_cpu_us_per_chunk']} "
            f"us/chunk, loadgen {result['loadgen_busy']:.0%}"
        )

    async def run_tokens(self) -> None:
        """The token stream for each design that has one, then the context-call microbenchmark."""
        cfg = self.config
        designs = [TOKEN_DESIGNS[key] for key in cfg.designs if key in TOKEN_DESIGNS]
        if cfg.fresh_per_run:
            for clients in cfg.token_clients:
                repeats = cfg.repeats if clients <= cfg.repeat_up_to else 1
                for repeat in range(repeats):
                    for design in designs:
                        await self.run_token_point(design, None, clients, repeat)
        else:
            for design in designs:

                async def every(design: Design = design) -> Json:
                    async with self.stack(design) as s:
                        for clients in cfg.token_clients:
                            await self.run_token_point(design, s, clients, 0)
                    return {}

                await self.attempt("token stream stack", design, every)
        if "taskstream" in cfg.designs:
            await self.run_context_calls()

    async def run_context_calls(self) -> None:
        cfg = self.config

        async def measure() -> Json:
            assert self.gen is not None
            async with self.stack(TASKSTREAM) as s:
                return await context_calls(s, self.gen, cfg.context_calls, cfg.context_rounds)

        self.log(
            f"taskstream: ctx.write and ctx.progress in the worker ({cfg.context_calls:,} calls "
            f"x {cfg.context_rounds})"
        )
        result = await self.attempt("context calls", TASKSTREAM, measure)
        if result is None:
            return
        self.results["context_calls"] = result
        self.log(
            f"  ctx.write adds {result['write_cpu_us']} us CPU per call; "
            f"200,000 ctx.progress add {result['progress_200k_s']} s"
        )

    async def run(self) -> None:
        cfg = self.config
        main = asyncio.current_task()
        assert main is not None
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.interrupt, main)
        self.gen = await LoadGen.start(cfg.loadgen_procs)
        try:
            designs = [DESIGNS[key] for key in cfg.designs]
            if not cfg.fresh_per_run:
                for design in designs:
                    await self.quick_design(design)
            else:
                if "fanout" not in cfg.skip:
                    for clients in cfg.clients:
                        repeats = cfg.repeats if clients <= cfg.repeat_up_to else 1
                        for repeat in range(repeats):
                            for design in designs:
                                result = await self.run_fanout(design, None, clients)
                                if result is not None:
                                    result["repeat"] = repeat
                                    self.results["fanout"].append(result)
                if "storm" not in cfg.skip:
                    for design in designs:
                        await self.run_storm(design, None)
                if "submission" not in cfg.skip:
                    for design in designs:
                        await self.run_submission(design, 0, None)
                    await self.run_celery_floor(None)
                    if cfg.submit_streaming:
                        for design in designs:
                            await self.run_submission(design, cfg.submit_streaming, None)
            if "worker" not in cfg.skip:
                await self.run_worker()
            if "tokens" not in cfg.skip:
                await self.run_tokens()
            if "metrics" not in cfg.skip and cfg.metrics_clients and "taskstream" in cfg.designs:
                await self.run_metrics()
            if "hiredis" not in cfg.skip and "taskstream" in cfg.designs:
                await self.run_hiredis()
        finally:
            await self.gen.stop()

    async def quick_design(self, design: Design) -> None:
        """Quick mode: every scenario of a design on one stack."""
        cfg = self.config

        async def everything() -> Json:
            async with self.stack(design) as s:
                if "fanout" not in cfg.skip:
                    for clients in cfg.clients:
                        result = await self.run_fanout(design, s, clients)
                        if result is not None:
                            result["repeat"] = 0
                            self.results["fanout"].append(result)
                if "storm" not in cfg.skip and design.event_log:
                    # (the pub/sub designs cannot resume: the full mode shows what they lose)
                    await self.run_storm(design, s)
                if "submission" not in cfg.skip:
                    await self.run_submission(design, 0, s)
                    if design.key == "flask":
                        await self.run_celery_floor(s)
            return {}

        await self.attempt("stack", design, everything)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="smoke run (about two minutes)")
    mode.add_argument("--full", action="store_true", help="every scenario at full scale (default)")
    parser.add_argument("--designs", help=f"comma list of {','.join(DESIGNS)}")
    parser.add_argument("--clients", help="comma list of fan-out client counts")
    parser.add_argument("--repeats", type=int, help="runs of each fan-out point (median kept)")
    parser.add_argument("--tasks", type=int, help="tasks per fan-out run")
    parser.add_argument(
        "--skip",
        default="",
        help="comma list: fanout,storm,submission,worker,tokens,metrics,hiredis",
    )
    parser.add_argument("--token-clients", help="comma list of token stream watcher counts")
    parser.add_argument(
        "--streaming", type=int, help="SSE clients during the second submission run (0: none)"
    )
    parser.add_argument("--loadgen-procs", type=int, help="load generator processes")
    parser.add_argument(
        "--docs",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="write docs/benchmarks.md and the plot (default: in full mode)",
    )
    parser.add_argument("--report", metavar="JSON", help="only write the docs from a results file")
    return parser.parse_args(argv)


def missing_packages(config: Config, docs: bool) -> list[str]:
    """The bench group's packages this run needs but cannot import."""
    needed = []
    if "flask" in config.designs:
        needed += ["flask", "gunicorn", "gevent"]
    if docs:
        needed.append("matplotlib")
    return [name for name in needed if importlib.util.find_spec(name) is None]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.report:
        results = json.loads(Path(args.report).read_text())
        print(f"wrote {', '.join(map(str, report.write_docs(results)))}")
        return 0
    config = Config.quick() if args.quick else Config.full()
    if args.designs:
        config.designs = [d.strip() for d in args.designs.split(",") if d.strip()]
        unknown = set(config.designs) - set(DESIGNS)
        if unknown:
            print(f"unknown designs: {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
    if args.clients:
        config.clients = [int(n) for n in args.clients.split(",")]
    if args.repeats:
        config.repeats = args.repeats
    if args.tasks:
        config.tasks = args.tasks
    if args.token_clients:
        config.token_clients = [int(n) for n in args.token_clients.split(",")]
    if args.streaming is not None:
        config.submit_streaming = args.streaming
    if args.loadgen_procs:
        config.loadgen_procs = args.loadgen_procs
    config.skip = [s.strip() for s in args.skip.split(",") if s.strip()]

    docs = bool(args.docs or (args.docs is None and config.mode == "full"))
    missing = missing_packages(config, docs)
    if missing:
        print(
            f"missing: {', '.join(missing)}; install the bench group: uv sync --group bench",
            file=sys.stderr,
        )
        return 2
    files = raise_file_limit()
    host = machine()
    cores = Cores.split()
    os.sched_setaffinity(0, cores.load)  # the runner and the load generator: the load core
    workdir = Path(tempfile.mkdtemp(prefix="taskstream-bench-"))
    bench = Bench(config, cores, workdir, host)
    bench.log(
        f"{config.mode} mode; servers on CPU {sorted(cores.servers)}, load on CPU "
        f"{sorted(cores.load)}; open files {files}; logs in {workdir}"
    )
    started = time.monotonic()
    try:
        asyncio.run(bench.run())
    except (KeyboardInterrupt, asyncio.CancelledError):
        bench.problems.append("interrupted")
    bench.results["seconds"] = round(time.monotonic() - started, 1)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    path = RESULTS / f"{stamp}-{config.mode}.json"
    bench.results["problems"] = bench.problems
    path.write_text(json.dumps(bench.results, indent=1))
    shutil.copyfile(path, RESULTS / f"latest-{config.mode}.json")
    bench.log(f"results in {path} ({bench.results['seconds']} s)")
    print(report.summary(bench.results))
    if docs:
        written = report.write_docs(bench.results)
        bench.log(f"wrote {', '.join(map(str, written))}")
    if bench.problems:
        bench.log("FAILED: " + "; ".join(bench.problems))
        return 1
    shutil.rmtree(workdir, ignore_errors=True)
    return 0
