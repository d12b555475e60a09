"""The measurements of the running container: start, stop, latency, runs, memory, fetch,
models in parallel, and the dashboard.

Containers are started, stopped and asked through the Docker SDK (the suite's own
`integration/engine.py`). Start, health and exit times are the engine's event times, not
the wall clock around a subprocess. Every measured start and stop is followed by an idle
container's (Docker's floor), so each figure also has a floor taken at the same moments.
The image and build figures are in `images.py`, tool-call latency in `latency.py`, the
parallel runs and the dashboard in `workloads.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container

import facts
from ai_trader.settings import DEFAULT_PORTS
from bench.apibound import ApiBoundFigures
from bench.images import LABEL, ImageFigures
from bench.latency import LATENCY_SIGNATURES, LatencyFigures
from bench.probes import BenchError, MemorySampler, cgroup_cpu_seconds, first_answers
from bench.recorder import Recorder, host_machine
from bench.report import MB, Figure, Relative, signed
from bench.split import SplitFigures
from bench.workloads import WorkloadFigures
from integration import engine

ROOT = facts.ROOT
CONTAINER_UID = 1000
READY_LIMIT = 60.0  # seconds after the start before a start counts as failed
STOP_GRACE = 10  # `docker stop --time`: docker's own default
DAY_LINE = re.compile(r"\[\d+/\d+\] \d{4}-")
HOURLY_CONFIG = "configs/us_hourly_config.json"


@dataclass(frozen=True)
class TimedRun:
    """One whole run in the container: its days (slots) a second over the run step and over
    the day loop alone, its memory sampler and what the details record of it."""

    rate: float
    loop_rate: float | None
    sampler: MemorySampler
    details: dict[str, Any]


log = logging.getLogger("bench")


@dataclass
class Started:
    box: Container
    since: float  # wall clock just before the engine was asked to create it


@dataclass
class Stopped:
    seconds: float  # engine time from the SIGTERM (`kill` event) to `die`
    exit_code: int
    asked: float  # engine time of the `kill` event
    died: float  # engine time of the `die` event
    returned: float  # wall clock when the stop call returned


def event_time(record: list[engine.Event], action: str) -> float | None:
    return next((e.time for e in record if e.action.startswith(action)), None)


class Bench(Recorder, ImageFigures, LatencyFigures, WorkloadFigures, ApiBoundFigures, SplitFigures):
    def __init__(self, image: str, base: str, runs: int, skip_build: bool) -> None:
        super().__init__(runs)
        self.image = image
        self.base = base
        self.skip_build = skip_build
        self.client = engine.client()
        self.floor_runs: list[float] = []  # every idle docker run measured (seconds)
        self.floor_stops: list[float] = []  # every idle docker stop measured (seconds)
        self.tags: list[str] = []
        self.images: list[str] = []  # ids, removed newest first
        self.counter = 0
        # The container runs as 1000:1000; as root we give it its folders, otherwise it
        # runs as the caller (what compose's AI_TRADER_UID/GID do).
        self.user = None if os.geteuid() == 0 else f"{os.getuid()}:{os.getgid()}"

    # -- bookkeeping ------------------------------------------------------------------------

    def give_to_container(self, path: Path) -> None:
        if self.user is None:
            for folder, _, files in os.walk(path):
                os.chown(folder, CONTAINER_UID, CONTAINER_UID)
                for name in files:
                    os.chown(Path(folder) / name, CONTAINER_UID, CONTAINER_UID)

    def cleanup(self) -> None:
        mine = self.client.containers.list(all=True, filters={"label": f"{LABEL}={self.run_id}"})
        for box in mine:
            with contextlib.suppress(docker.errors.APIError):
                box.remove(force=True, v=True)
        for name in [*reversed(self.tags), *reversed(self.images)]:
            try:
                self.client.images.remove(name)
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError as exc:
                log.warning("could not remove image %s: %s", name[:19], exc.explanation)
        super().cleanup()

    # -- containers -------------------------------------------------------------------------

    def start(
        self,
        kind: str,
        data: Path | None,
        *,
        entrypoint: list[str] | None = None,
        command: list[str] | None = None,
        publish: bool = True,
    ) -> Started:
        """`docker run -d --init` through the SDK; the wall time just before it was asked."""
        self.counter += 1
        options: dict[str, Any] = {
            "detach": True,
            "init": True,
            "name": f"{LABEL}-{self.run_id}-{kind}-{self.counter}",
            "labels": {LABEL: self.run_id},
        }
        if data is not None:
            options["volumes"] = {str(data): {"bind": "/app/data", "mode": "rw"}}
        if self.user:
            options["user"] = self.user
        if publish:
            options["ports"] = {f"{p}/tcp": ("127.0.0.1", None) for p in DEFAULT_PORTS.values()}
        since = time.time()
        box = self.client.containers.run(self.image, command, entrypoint=entrypoint, **options)
        return Started(box, since)

    def remove(self, box: Container) -> None:
        with contextlib.suppress(docker.errors.APIError):
            box.remove(force=True, v=True)

    def urls(self, box: Container) -> dict[str, str]:
        urls = {}
        for name, port in DEFAULT_PORTS.items():
            try:
                _, host_port = engine.published(box, port)
            except LookupError as exc:
                raise BenchError(str(exc)) from None
            urls[name] = f"http://127.0.0.1:{host_port}/mcp"
        return urls

    def wait_ready(self, started: Started) -> dict[str, float]:
        """Wall time at which each service first answered an MCP initialize."""
        try:
            return asyncio.run(first_answers(self.urls(started.box), READY_LIMIT))
        except BenchError as exc:
            tail = "\n".join(line for _, line in engine.log_lines(started.box)[-15:])
            raise BenchError(f"{exc}; last log lines:\n{tail}") from None

    def stop(self, box: Container) -> Stopped:
        """`docker stop --time 10` through the SDK; the times come from the engine's events."""
        since = time.time()
        box.stop(timeout=STOP_GRACE)
        returned = time.time()
        died = engine.wait_event(box.id, "die", since, timeout=STOP_GRACE + 30)
        record = engine.container_events(box.id, since, died.time + 0.001)
        asked = next((e for e in record if e.action == "kill"), None)
        if asked is None:
            raise BenchError(f"no kill event for {box.name}: the stop sent no signal")
        code = int(died.attributes.get("exitCode", -1))
        return Stopped(died.time - asked.time, code, asked.time, died.time, returned)

    def wait_for_log(self, box: Container, pattern: re.Pattern[str], limit: float = 60) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if pattern.search(engine.logs_text(box)):
                return
            time.sleep(0.05)
        raise BenchError(f"{pattern.pattern!r} never appeared in the container's log")

    # -- data -------------------------------------------------------------------------------

    def prices_template(self) -> Path:
        """The offline sample and merged.jsonl, made on the host with the package's own code."""
        from ai_trader.market.merge import merge
        from ai_trader.market.sample import generate_sample
        from ai_trader.market.universe import ALL_SYMBOLS

        path = self.folder("template-prices")
        with contextlib.redirect_stderr(io.StringIO()):  # the merge's progress lines
            generate_sample(ALL_SYMBOLS, path)
            merge(path, ALL_SYMBOLS)
        (path / "agent_data").mkdir()
        return path

    def copy_of(self, template: Path, name: str) -> Path:
        path = self.workdir / name
        shutil.copytree(template, path)
        self.give_to_container(path)
        return path

    # -- measurements -----------------------------------------------------------------------

    def machine(self) -> dict[str, Any]:
        version = self.client.version()
        info = self.client.info()
        return {
            **host_machine(),
            "docker_server": version.get("Version"),
            "docker_api": self.client.api.api_version,
            "docker_storage_driver": info.get("Driver"),
            "docker_cgroup": f"v{info.get('CgroupVersion', '?')} {info.get('CgroupDriver', '')}",
        }

    def measure_fetch(self) -> None:
        from ai_trader.market.universe import ALL_SYMBOLS
        from standins import StandIns

        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("ALPHAADVANTAGE_API_KEY", "ALPHAVANTAGE_API_KEY", "DATA_DIR")
        }
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p
        )
        rates: list[float] = []
        second: list[float] = []
        walls: list[dict[str, Any]] = []
        with StandIns({"symbols": list(ALL_SYMBOLS)}) as standins:
            env |= {
                "ALPHAADVANTAGE_API_KEY": "bench-key",
                "ALPHAVANTAGE_BASE_URL": standins.alphavantage_url,
                "ALPHAVANTAGE_MIN_INTERVAL": "0",
            }
            command = [sys.executable, "-m", "ai_trader", "fetch"]
            for run in range(self.runs):
                data = self.folder(f"fetch-{run}")
                run_env = {**env, "DATA_DIR": str(data)}
                standins.reset()
                began = time.monotonic()
                first = subprocess.run(command, env=run_env, capture_output=True, text=True)
                wall = time.monotonic() - began
                asked = standins.stats()["alphavantage"]["requests"]
                written = len(list(data.glob("daily_prices_*.json")))
                if first.returncode != 0 or written != len(ALL_SYMBOLS):
                    raise BenchError(
                        f"fetch exited {first.returncode} with {written} file(s): "
                        f"{first.stderr.strip()[-500:]}"
                    )
                standins.reset()
                began = time.monotonic()
                again = subprocess.run(command, env=run_env, capture_output=True, text=True)
                wall_again = time.monotonic() - began
                if again.returncode != 0:
                    raise BenchError(f"the second fetch exited {again.returncode}")
                rates.append(len(ALL_SYMBOLS) / wall)
                second.append(standins.stats()["alphavantage"]["requests"])
                walls.append(
                    {
                        "first_seconds": round(wall, 3),
                        "first_requests": asked,
                        "second_seconds": round(wall_again, 3),
                    }
                )
                shutil.rmtree(data)
            began = time.monotonic()
            subprocess.run(
                [sys.executable, "-m", "ai_trader", "--version"], env=env, capture_output=True
            )
            startup = time.monotonic() - began
        self.details["fetch"] = {"runs": walls, "host_cli_startup_seconds": round(startup, 3)}
        how = (
            f"host-side `ai-trader fetch` of {len(ALL_SYMBOLS)} symbols against the in-process "
            "Alpha Vantage stand-in, ALPHAVANTAGE_MIN_INTERVAL=0; symbols / wall time of the "
            "whole command (Python start included)"
        )
        self.add(Figure.of("fetch_rate", "fetch throughput (stand-in)", "symbols/s", rates, how))
        self.add(
            Figure.of(
                "fetch_second_requests",
                "requests on a second fetch",
                "requests",
                second,
                "Alpha Vantage requests counted by the stand-in on a second fetch into the "
                "same folder",
            )
        )

    def timed_run(self, data: Path, command: list[str] | None = None) -> TimedRun:
        """One whole container run on ``data`` (of ``command``'s config; the default one
        when None), timed from the engine's log timestamps, its memory sampled."""
        started = self.start("run", data, command=command, publish=False)
        sampler = MemorySampler(started.box)
        sampler.start()
        try:
            status = engine.wait_exit(started.box, 600)
        finally:
            sampler.stop()
        lines = engine.log_lines(started.box)
        self.remove(started.box)
        if status != 0:
            tail = "\n".join(line for _, line in lines[-15:])
            raise BenchError(f"a full run exited {status}:\n{tail}")
        step4 = engine.first_time(lines, "step 4/4")
        end = engine.first_time(lines, "the agent finished")
        days = [(t, line) for t, line in lines if DAY_LINE.search(line)]
        if step4 is None or end is None or not days:
            raise BenchError("the run's log lacks step 4/4, its days or 'the agent finished'")
        loop = days[-1][0] - days[0][0]
        details = {
            "days": len(days),
            "run_step_seconds": round(end - step4, 3),
            "first_to_last_day_seconds": round(loop, 3),
            "memory_samples": sampler.samples,
            "memory_high_water_mark_from_engine": sampler.high_water_mark,
        }
        loop_rate = (len(days) - 1) / loop if len(days) > 1 else None
        return TimedRun(len(days) / (end - step4), loop_rate, sampler, details)

    def measure_hourly_runs(self) -> None:
        """Whole runs of the US hourly example config (six slots a day) on its sample, made
        on the host: slots a second, beside the daily runs' days a second."""
        from ai_trader.market.merge import merge
        from ai_trader.market.sample import generate_sample
        from ai_trader.market.us import US_HOURLY

        template = self.folder("template-hourly-prices")
        with contextlib.redirect_stderr(io.StringIO()):  # the merge's progress lines
            generate_sample(US_HOURLY.all_symbols, template, market=US_HOURLY)
            merge(template, US_HOURLY.all_symbols, US_HOURLY.series_key)
        (template / "agent_data").mkdir()
        rates: list[float] = []
        loop_rates: list[float] = []
        runs: list[dict[str, Any]] = []
        for run in range(self.runs):
            data = self.copy_of(template, f"hourly-{run}")
            timed = self.timed_run(data, command=[HOURLY_CONFIG])
            rates.append(timed.rate)
            if timed.loop_rate is not None:
                loop_rates.append(timed.loop_rate)
            runs.append(timed.details)
            shutil.rmtree(data)
        self.details["hourly_runs"] = runs
        self.add(
            Figure.of(
                "hourly_run_throughput",
                "built-in strategy, hourly, run step",
                "slots/s",
                rates,
                f"hourly slots / (time of 'the agent finished' - time of 'step 4/4') of a "
                f"whole run of {HOURLY_CONFIG} in the container (Python start, imports and MCP "
                "sessions included)",
            )
        )
        if loop_rates:
            self.add(
                Figure.of(
                    "hourly_run_loop_throughput",
                    "built-in strategy, hourly, slot loop only",
                    "slots/s",
                    loop_rates,
                    "(slots - 1) / time between the first and last slot's log line",
                )
            )

    def measure_full_runs(self, prices: Path) -> Path:
        """Full default runs from scratch: throughput and peak memory; returns a finished run."""
        rates: list[float] = []
        loop_rates: list[float] = []
        peaks: list[float] = []
        working: list[float] = []
        runs: list[dict[str, Any]] = []
        finished: Path | None = None
        for run in range(self.runs):
            data = self.copy_of(prices, f"full-{run}")
            timed = self.timed_run(data)
            rates.append(timed.rate)
            if timed.loop_rate is not None:
                loop_rates.append(timed.loop_rate)
            if timed.sampler.samples:
                peaks.append(timed.sampler.peak_usage / MB)
                working.append(timed.sampler.peak_working_set / MB)
            runs.append(timed.details)
            if finished is not None:
                shutil.rmtree(finished)
            finished = data
        assert finished is not None
        self.details["full_runs"] = runs
        self.add(
            Figure.of(
                "run_throughput",
                "built-in strategy, run step",
                "days/s",
                rates,
                "trading days / (time of 'the agent finished' - time of 'step 4/4') in the "
                "engine's log timestamps of a full default run in the container (Python "
                "start, imports and MCP sessions included)",
            )
        )
        if loop_rates:
            self.add(
                Figure.of(
                    "run_loop_throughput",
                    "built-in strategy, day loop only",
                    "days/s",
                    loop_rates,
                    "(days - 1) / time between the first and last day's log line",
                )
            )
        if peaks:
            self.add(
                Figure.of(
                    "peak_memory",
                    "peak memory, full run (cgroup)",
                    "MB",
                    peaks,
                    "the engine's stats: the memory cgroup's high-water mark (max_usage, "
                    "cgroup v1, exact) or the highest sampled usage (v2); page cache included",
                )
            )
            self.add(
                Figure.of(
                    "peak_working_set",
                    "peak working set, full run",
                    "MB",
                    working,
                    "max of usage - inactive_file in the engine's stats (what docker stats "
                    "shows), sampled as often as the engine answers (about once a second)",
                )
            )
        else:
            self.notes.append("peak memory: the engine reported no memory stats")
        return finished

    # -- Docker's floor, interleaved -------------------------------------------------------

    def floor_once(self) -> tuple[float, float]:
        """One idle container, started and stopped: (create -> start, kill -> die) seconds.

        Called right after each measured start or stop, so the floor is taken at the same
        moments as the figure it is compared with.
        """
        started = self.start("floor", None, entrypoint=["sleep"], command=["infinity"])
        try:
            record = engine.container_events(started.box.id, started.since)
            created, began = event_time(record, "create"), event_time(record, "start")
            if created is None or began is None:
                raise BenchError("the engine reported no create/start event for the floor")
            stopped = self.stop(started.box)
        finally:
            self.remove(started.box)
        self.floor_runs.append(began - created)
        self.floor_stops.append(stopped.seconds)
        return began - created, stopped.seconds

    def add_floor_figures(self) -> None:
        if not self.floor_runs:
            return
        self.add(
            Figure.of(
                "docker_run_floor",
                "docker run -d, idle container (floor)",
                "s",
                self.floor_runs,
                "engine events `create` -> `start` of the image running `sleep` with --init and "
                "four ports published, once after every measured start and stop: the "
                "engine's share of every start",
            )
        )
        self.add(
            Figure.of(
                "docker_stop_floor",
                "docker stop, idle container (floor)",
                "s",
                self.floor_stops,
                "engine events `kill` (SIGTERM) -> `die` of that container (tini passes "
                "SIGTERM to sleep, which exits at once): the engine's share of every stop",
            )
        )

    def relative(
        self,
        key: str,
        label: str,
        unit: str,
        floor: str,
        pairs: list[tuple[float, float]],
        how: str,
        **samples: list[float],
    ) -> None:
        figure = Relative.of(key, label, unit, floor, pairs, how, **samples)
        self.relatives.append(figure)
        log.info(
            "  %s: %s %s over the floor (%.2fx)",
            label, signed(figure.excess, unit), unit, figure.ratio,
        )  # fmt: skip

    def add_start_cpu(self, key: str, what: str, cpus: list[float]) -> None:
        if not cpus:
            self.notes.append(f"start ({what}): the container's cgroup is not visible here")
            return
        self.add(
            Figure.of(
                key,
                f"start -> ready, container CPU, {what}",
                "s",
                cpus,
                "CPU seconds of every process in the container (its cgroup's counter on the "
                "host), read as soon as all four services had answered the host: the work a "
                "start does, which neighbours disturb less than its wall time",
            )
        )

    def timeline(
        self, lines: list[tuple[float, str]], zero: float, marks: dict[str, str]
    ) -> dict[str, float | None]:
        return {
            name: round(moment - zero, 3) if (moment := engine.first_time(lines, text)) else None
            for name, text in marks.items()
        }

    # -- the full entrypoint ---------------------------------------------------------------

    def measure_start_full(self, finished: Path) -> None:
        seconds: list[float] = []
        cpus: list[float] = []
        floors: list[float] = []
        codes: list[int] = []
        runs: list[dict[str, Any]] = []
        for run in range(self.runs):
            data = self.copy_of(finished, f"start-{run}")
            started = self.start("start", data)
            ready = self.wait_ready(started)
            cpu = cgroup_cpu_seconds(started.box.id)
            status = engine.wait_exit(started.box, 300)
            lines = engine.log_lines(started.box)
            record = engine.container_events(started.box.id, started.since)
            self.remove(started.box)
            shutil.rmtree(data)
            created = event_time(record, "create")
            if created is None:
                raise BenchError("the engine reported no create event")
            began, healthy = event_time(record, "start"), event_time(record, "health_status: h")
            seconds.append(max(ready.values()) - created)
            if cpu is not None:
                cpus.append(cpu)
            floors.append(self.floor_once()[0])
            codes.append(status)
            runs.append(
                {
                    "ready_seconds": {k: round(v - created, 3) for k, v in ready.items()},
                    "container_started": round(began - created, 3) if began else None,
                    "healthy_event": round(healthy - created, 3) if healthy else None,
                    **self.timeline(
                        lines,
                        created,
                        {
                            "entrypoint_started": "starting; config",
                            "serve_started": "step 1/4",
                            "fetch_started": "step 2/4",
                            "services_ready_in_container": "wait-ready: all four services answer",
                            "agent_started": "step 4/4",
                        },
                    ),
                    "exit_code": status,
                    "container_cpu_at_ready": round(cpu, 3) if cpu is not None else None,
                    "floor_docker_run": round(floors[-1], 3),
                }
            )
        self.details["start_full"] = runs
        how = (
            "from the engine's `create` event of the image (default command, prices and a "
            "finished run already in the data folder) until all four services have answered "
            "an MCP initialize from the host over the published 127.0.0.1 ports"
        )
        self.add(
            Figure.of("start_ready_full", "start -> ready, full entrypoint", "s", seconds, how)
        )
        self.relative(
            "start_ready_full", "start -> ready, full entrypoint", "s", "run",
            list(zip(seconds, floors, strict=True)),
            f"{how}; each start is followed by an idle `docker run` (floor)",
        )  # fmt: skip
        self.add_start_cpu("start_cpu_full", "full entrypoint", cpus)
        self.details["start_full_exit_codes"] = codes

    def measure_stop_full(self, prices: Path) -> None:
        seconds: list[float] = []
        floors: list[float] = []
        codes: list[int] = []
        runs: list[dict[str, Any]] = []
        for run in range(self.runs):
            data = self.copy_of(prices, f"stop-{run}")
            started = self.start("stop", data)
            ready = self.wait_ready(started)
            # Mid-run: once the agent has committed its first day.
            self.wait_for_log(started.box, DAY_LINE)
            stopped = self.stop(started.box)
            lines = engine.log_lines(started.box)
            self.remove(started.box)
            shutil.rmtree(data)
            floors.append(self.floor_once()[1])
            mid_run = engine.first_time(lines, "step 4/4") is not None and (
                engine.first_time(lines, "the agent finished") is None
            )
            seconds.append(stopped.seconds)
            codes.append(stopped.exit_code)
            runs.append(
                {
                    "seconds": round(stopped.seconds, 3),
                    "exit_code": stopped.exit_code,
                    "stopped_mid_run": mid_run,
                    "ready_seconds": round(max(ready.values()) - started.since, 3),
                    # seconds after the engine sent SIGTERM
                    **self.timeline(
                        lines,
                        stopped.asked,
                        {
                            "sigterm_logged": "received SIGTERM",
                            "agent_stop_started": "cleanup: stopping the agent",
                            "services_stop_started": "cleanup: stopping the services",
                            "services_stopped": "serve: all services stopped",
                            "cleanup_done": "cleanup: done",
                        },
                    ),
                    "container_died": round(stopped.died - stopped.asked, 3),
                    "stop_call_returned": round(stopped.returned - stopped.asked, 3),
                    "floor_docker_stop": round(floors[-1], 3),
                }
            )
        self.details["stop_full"] = runs
        how = (
            f"`docker stop --time {STOP_GRACE}` of a full-entrypoint container (a fresh run, "
            "stopped once the agent has committed its first day): the engine's `kill` "
            "(SIGTERM) event to its `die` event"
        )
        self.add(Figure.of("stop_full", "docker stop -> exit, mid-run", "s", seconds, how))
        self.relative(
            "stop_full", "docker stop -> exit, mid-run", "s", "stop",
            list(zip(seconds, floors, strict=True)),
            f"{how}; each stop is followed by an idle `docker stop` (floor)",
        )  # fmt: skip
        self.details["stop_full_exit_codes"] = codes
        mid = sum(r["stopped_mid_run"] for r in runs)
        self.notes.append(
            f"stop (full entrypoint): exit codes {sorted(set(codes))}; {mid}/{len(runs)} "
            "stopped while the agent was running"
        )

    # -- the services alone ----------------------------------------------------------------

    def services_container(self, data: Path) -> Started:
        # The image's ENV supplies SERVICE_HOST=0.0.0.0 and DATA_DIR.
        return self.start(
            "services", data, entrypoint=["python"], command=["-m", "ai_trader", "serve"]
        )

    def measure_services(self, prices: Path) -> None:
        from ai_trader.layout import MERGED_NAME, books_dir
        from ai_trader.ledger import Ledger
        from ai_trader.lock import signature_lock
        from ai_trader.market.pricebook import PriceBook
        from ai_trader.market.universe import NASDAQ_100

        book = PriceBook.load(prices / MERGED_NAME)
        dates = book.dates()
        seconds: list[float] = []
        cpus: list[float] = []
        stops: list[float] = []
        start_floors: list[float] = []
        stop_floors: list[float] = []
        codes: list[int] = []
        breakdown: list[dict[str, Any]] = []
        for run in range(self.runs):
            data = self.copy_of(prices, f"services-{run}")
            # The books the latency calls trade on; the run context names them per call.
            # Opened the day before the data's first day: every day of it is still open.
            opening = (date.fromisoformat(dates[0]) - timedelta(days=1)).isoformat()
            for signature in LATENCY_SIGNATURES:
                Ledger(books_dir(data) / signature).ensure_initialized(opening, NASDAQ_100, 1e9)
                # Its lock file now, so that it is handed to the container's user with the
                # rest; the latency calls hold it (measure_latency) as a run would.
                with signature_lock(books_dir(data) / signature):
                    pass
            self.give_to_container(data)
            started = self.services_container(data)
            ready = self.wait_ready(started)
            cpu = cgroup_cpu_seconds(started.box.id)
            if cpu is not None:
                cpus.append(cpu)
            record = engine.container_events(started.box.id, started.since)
            created = event_time(record, "create")
            if created is None:
                raise BenchError("the engine reported no create event")
            seconds.append(max(ready.values()) - created)
            if run == 0:
                self.measure_latency(started.box, data, book)
            stopped = self.stop(started.box)
            lines = engine.log_lines(started.box)
            self.remove(started.box)
            shutil.rmtree(data)
            start_floor, stop_floor = self.floor_once()
            start_floors.append(start_floor)
            stop_floors.append(stop_floor)
            stops.append(stopped.seconds)
            codes.append(stopped.exit_code)
            breakdown.append(
                {
                    "seconds": round(stopped.seconds, 3),
                    **self.timeline(
                        lines,
                        stopped.asked,
                        {
                            "sigterm_logged": "SIGTERM received",
                            "services_stopped": "all services stopped",
                        },
                    ),
                    "process_exited": round(stopped.died - stopped.asked, 3),
                    "stop_call_returned": round(stopped.returned - stopped.asked, 3),
                    "floor_docker_run": round(start_floor, 3),
                    "floor_docker_stop": round(stop_floor, 3),
                }
            )
        start_how = (
            "`docker run -d --entrypoint python IMAGE -m ai_trader serve` (the image's ENV: "
            "SERVICE_HOST=0.0.0.0, DATA_DIR): the engine's `create` event until all four "
            "answer an MCP initialize from the host"
        )
        stop_how = (
            f"`docker stop --time {STOP_GRACE}` of the services-only container: `kill` event "
            "to `die` event"
        )
        self.add(
            Figure.of("start_ready_services", "start -> ready, services only", "s", seconds,
                      start_how)
        )  # fmt: skip
        self.add(Figure.of("stop_services", "docker stop -> exit, services only", "s", stops,
                           stop_how))  # fmt: skip
        floor_how = "; each start and stop is followed by an idle container's (floor)"
        self.relative(
            "start_ready_services", "start -> ready, services only", "s", "run",
            list(zip(seconds, start_floors, strict=True)), start_how + floor_how,
        )  # fmt: skip
        self.relative(
            "stop_services", "docker stop -> exit, services only", "s", "stop",
            list(zip(stops, stop_floors, strict=True)), stop_how + floor_how,
        )  # fmt: skip
        self.add_start_cpu("start_cpu_services", "services only", cpus)
        self.details["stop_services_exit_codes"] = codes
        self.details["stop_services"] = breakdown
        self.notes.append(f"stop (services only): exit codes {sorted(set(codes))}")
