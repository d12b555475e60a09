"""Measure what the ai-trader container costs and how fast it answers (issue 6).

Run by ``nox -s bench`` after ``nox -s build``::

    python scripts/bench.py [--runs N] [--image NAME:TAG] [--base NAME] [--out DIR] [--skip-build]

It prints one table (figure, median, min-max, aim, met?) and writes the same figures, with
the machine they were measured on and the raw values, to ``OUT/bench-<UTC timestamp>.json``
and ``OUT/latest.json``. It never fails on a time (the machines are shared and noisy): it
exits 1 only when a measurement could not be made. Every container, image and folder it
makes is removed on the way out, on error and on Ctrl-C too.

docs/BENCHMARKS.md explains each figure and how it is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import json
import logging
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from mcp import Client

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = "ai-trader:dev"
DEFAULT_BASE = "python:3.13.13-slim-trixie"
LOCAL_BASE = "ai-trader-base:trixie"
LABEL = "ai-trader-bench"
SERVICE_PORTS = {"math": 8000, "search": 8001, "trade": 8002, "prices": 8003}
CONTAINER_UID = 1000
READY_LIMIT = 60.0  # seconds after `docker run` before a start counts as failed
STOP_GRACE = 10  # `docker stop --time`: docker's own default
LATENCY_CALLS = 300  # measured calls per tool (the brief asks for at least 200)
LATENCY_WARMUP = 20
TRADES_PER_DAY = 10  # buys per simulated day in the buy-latency loop (a busy trading day)
MB = 1_000_000  # sizes in MB (10^6 bytes), as docker prints them

AIMS: dict[str, float] = {
    "added_over_base": 120.0,
    "rebuild": 10.0,
    "start_ready_full": 1.5,
    "start_ready_services": 1.5,
    "stop_full": 1.0,
    "stop_services": 1.0,
    "latency_price_p50": 5.0,
    "latency_buy_p50": 5.0,
    "fetch_second_requests": 0.0,
}

log = logging.getLogger("bench")


class BenchError(Exception):
    """A measurement could not be made; the message says which and why."""


# --- small helpers ------------------------------------------------------------------------


def docker(
    *args: str, check: bool = True, timeout: float = 180, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=timeout, input=stdin
        )
    except subprocess.TimeoutExpired:
        raise BenchError(
            f"docker {' '.join(args[:3])} ... did not finish in {timeout:g} s"
        ) from None
    if check and done.returncode != 0:
        raise BenchError(
            f"docker {' '.join(args[:3])} ... exited {done.returncode}: {done.stderr.strip()}"
        )
    return done


def inspect(kind: str, name: str) -> dict[str, Any]:
    return json.loads(docker(kind, "inspect", name).stdout)[0]


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0-100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def docker_time(stamp: str) -> float:
    """Epoch seconds of a docker timestamp (RFC 3339 with up to nanoseconds)."""
    stamp = stamp.strip().removesuffix("Z")
    whole, _, fraction = stamp.partition(".")
    moment = datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp()
    return moment + (float(f"0.{fraction}") if fraction else 0.0)


def logs_with_times(container: str) -> list[tuple[float, str]]:
    """The container's log lines (stdout and stderr) with the engine's receive times."""
    done = docker("logs", "--timestamps", container, check=False)
    lines: list[tuple[float, str]] = []
    for raw in (done.stdout + done.stderr).splitlines():
        stamp, _, text = raw.partition(" ")
        with contextlib.suppress(ValueError):
            lines.append((docker_time(stamp), text))
    lines.sort(key=lambda item: item[0])
    return lines


def first_time(lines: list[tuple[float, str]], text: str) -> float | None:
    return next((moment for moment, line in lines if text in line), None)


def meminfo_total() -> int | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return None


def cpu_model() -> str | None:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return None


def project_version() -> str:
    text = (ROOT / "src/ai_trader/__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    return match.group(1) if match else "0.0.0"


def git_revision() -> str:
    with contextlib.suppress(OSError):
        done = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        if done.returncode == 0:
            return done.stdout.strip()
    return "unknown"


def import_project() -> None:
    """Make ai_trader (when not installed) and the stand-ins importable."""
    try:
        import ai_trader  # noqa: F401
    except ImportError:
        sys.path.append(str(ROOT / "src"))
    sys.path.append(str(ROOT / "tests"))


# --- figures ------------------------------------------------------------------------------


@dataclass
class Figure:
    key: str
    label: str
    unit: str
    median: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0
    aim: float | None = None
    how: str = ""
    values: list[float] = field(default_factory=list)

    @classmethod
    def of(cls, key: str, label: str, unit: str, values: Sequence[float], how: str) -> Figure:
        return cls(
            key,
            label,
            unit,
            statistics.median(values),
            min(values),
            max(values),
            len(values),
            AIMS.get(key),
            how,
            [round(v, 6) for v in values],
        )

    @property
    def met(self) -> bool | None:
        if self.aim is None or self.median is None:
            return None
        return self.median <= self.aim

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "met": self.met}


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("requests", "layers", "files", "calls"):
        return f"{value:.0f}"
    if unit == "ms":
        return f"{value:.2f}"
    if unit == "s":
        return f"{value:.2f}"
    return f"{value:.1f}"


def table(figures: list[Figure]) -> str:
    rows = [("figure", "median", "min-max", "aim", "met?", "n")]
    for f in figures:
        span = (
            f"{fmt(f.low, f.unit)}-{fmt(f.high, f.unit)}"
            if f.low is not None and f.n > 1 and f.low != f.high
            else "-"
        )
        aim = f"<= {fmt(f.aim, f.unit)} {f.unit}" if f.aim is not None else "-"
        met = {True: "yes", False: "NO", None: "-"}[f.met]
        rows.append((f.label, f"{fmt(f.median, f.unit)} {f.unit}", span, aim, met, str(f.n)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for number, row in enumerate(rows):
        cells = [
            row[0].ljust(widths[0]),
            *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)),
        ]
        lines.append("  ".join(cells))
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


# --- MCP from the host --------------------------------------------------------------------


async def initialize_ok(url: str, limit: float) -> bool:
    """True when the service at ``url`` completes an MCP initialize handshake."""

    async def handshake() -> None:
        async with Client(url, mode="legacy"):
            pass

    try:
        await asyncio.wait_for(handshake(), limit)
    except (Exception, BaseExceptionGroup):  # not answering yet, whatever the reason
        return False
    return True


async def first_answers(urls: dict[str, str], started: float, limit: float) -> dict[str, float]:
    """Seconds from ``started`` (monotonic) until each service first answers initialize."""

    async def one(name: str, url: str) -> tuple[str, float]:
        while True:
            if await initialize_ok(url, 2.0):
                return name, time.monotonic() - started
            if time.monotonic() - started > limit:
                raise BenchError(f"the {name} service did not answer within {limit:g} s")
            await asyncio.sleep(0.02)

    return dict(await asyncio.gather(*(one(n, u) for n, u in urls.items())))


def tool_value(result: Any) -> Any:
    structured = getattr(result, "structured_content", None)
    if isinstance(structured, dict):
        return structured.get("result", structured) if set(structured) == {"result"} else structured
    texts = [getattr(part, "text", "") for part in getattr(result, "content", None) or []]
    return {"error": "\n".join(texts)} if getattr(result, "is_error", False) else texts


@dataclass
class Latency:
    ms: list[float]  # wall time of each measured call
    client_cpu_ms: float  # this process's CPU time per measured call
    server_cpu_ms: float | None  # the container's CPU time per measured call


async def call_latencies(
    url: str,
    tool: str,
    arguments: list[dict[str, Any]],
    before_call: Callable[[int], Awaitable[None]] | None = None,
    server_cpu: Callable[[], float | None] = lambda: None,
) -> Latency:
    """Milliseconds per ``tool`` call on one warm session (the agent's own client mode).

    ``before_call(i)``, when given, runs before call ``i`` outside the timed span. The first
    LATENCY_WARMUP calls are not counted.
    """
    timings: list[float] = []
    cpu0 = server0 = None
    async with Client(url, read_timeout_seconds=60) as client:
        for index, args in enumerate(arguments):
            if index == LATENCY_WARMUP:
                cpu0, server0 = time.process_time(), server_cpu()
            if before_call is not None:
                await before_call(index)
            begun = time.perf_counter()
            result = await client.call_tool(tool, args)
            elapsed = (time.perf_counter() - begun) * 1000
            value = tool_value(result)
            if isinstance(value, dict) and "error" in value:
                raise BenchError(f"{tool}({args}) answered an error: {value['error']}")
            if index >= LATENCY_WARMUP:
                timings.append(elapsed)
        client_cpu = time.process_time() - (cpu0 or 0.0)
        server1 = server_cpu()
    server = (server1 - server0) if server0 is not None and server1 is not None else None
    return Latency(
        timings,
        client_cpu * 1000 / len(timings),
        server * 1000 / len(timings) if server is not None else None,
    )


async def health_latencies(url: str, calls: int) -> list[float]:
    """Milliseconds per plain HTTP GET of a service's /health route (no MCP): the transport."""
    timings: list[float] = []
    async with httpx.AsyncClient() as client:
        for index in range(LATENCY_WARMUP + calls):
            begun = time.perf_counter()
            reply = await client.get(url)
            elapsed = (time.perf_counter() - begun) * 1000
            reply.raise_for_status()
            if index >= LATENCY_WARMUP:
                timings.append(elapsed)
    return timings


def cpu_reader(pid: int) -> Callable[[], float | None]:
    """A function giving the CPU seconds used so far by the container that holds ``pid``."""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return lambda: None
    for line in text.splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpuacct" in controllers.split(","):
            for mount in ("cpuacct", "cpu,cpuacct", "cpuacct,cpu"):
                usage = Path("/sys/fs/cgroup") / mount / path.lstrip("/") / "cpuacct.usage"
                if usage.exists():
                    return lambda: int(usage.read_text()) / 1e9
    for line in text.splitlines():
        if line.startswith("0::"):
            stat = Path("/sys/fs/cgroup") / line[3:].lstrip("/") / "cpu.stat"
            if stat.exists():
                return lambda: _usage_usec(stat)
    return lambda: None


def _usage_usec(stat: Path) -> float | None:
    for row in stat.read_text().splitlines():
        key, _, value = row.partition(" ")
        if key == "usage_usec":
            return int(value) / 1e6
    return None


# --- memory of a running container --------------------------------------------------------


class MemoryPoller(threading.Thread):
    """Polls a container's memory cgroup from the host until it disappears or ``stop()``."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        super().__init__(name="memory-poller", daemon=True)
        self.interval = interval
        self.folder, self.version = self._cgroup(pid)
        self.peak_usage = 0  # the kernel's high-water mark (v1 max_usage / v2 memory.peak)
        self.peak_working_set = 0  # sampled max of usage - inactive_file (as docker stats)
        self.samples = 0
        self._done = threading.Event()

    @staticmethod
    def _cgroup(pid: int) -> tuple[Path | None, int]:
        try:
            text = Path(f"/proc/{pid}/cgroup").read_text()
        except OSError:
            return None, 0
        for line in text.splitlines():
            _, controllers, path = line.split(":", 2)
            if "memory" in controllers.split(","):
                folder = Path("/sys/fs/cgroup/memory") / path.lstrip("/")
                if folder.is_dir():
                    return folder, 1
        for line in text.splitlines():
            if line.startswith("0::"):
                folder = Path("/sys/fs/cgroup") / line[3:].lstrip("/")
                if (folder / "memory.current").exists():
                    return folder, 2
        return None, 0

    def _read(self, name: str) -> int:
        assert self.folder is not None
        return int((self.folder / name).read_text().split()[0])

    def _inactive_file(self) -> int:
        assert self.folder is not None
        wanted = "total_inactive_file" if self.version == 1 else "inactive_file"
        for line in (self.folder / "memory.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == wanted:
                return int(value)
        return 0

    def run(self) -> None:
        if self.folder is None:
            return
        usage_name = "memory.usage_in_bytes" if self.version == 1 else "memory.current"
        peak_name = "memory.max_usage_in_bytes" if self.version == 1 else "memory.peak"
        while not self._done.is_set():
            try:
                usage = self._read(usage_name)
                working = usage - self._inactive_file()
                with contextlib.suppress(FileNotFoundError):
                    self.peak_usage = max(self.peak_usage, self._read(peak_name))
            except (OSError, ValueError):
                return  # the container has exited and its cgroup is gone
            self.peak_usage = max(self.peak_usage, usage)
            self.peak_working_set = max(self.peak_working_set, working)
            self.samples += 1
            self._done.wait(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)


# --- the benchmark ------------------------------------------------------------------------


@dataclass
class Build:
    seconds: float
    steps: list[dict[str, Any]]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.image: str = args.image
        self.base: str = args.base or choose_base()
        self.runs: int = args.runs
        self.run_id = uuid.uuid4().hex[:10]
        self.figures: list[Figure] = []
        self.details: dict[str, Any] = {}
        self.notes: list[str] = []
        self.errors: list[str] = []
        self.workdir = Path(tempfile.mkdtemp(prefix="ai-trader-bench-"))
        self.containers: list[str] = []
        self.images: list[str] = []  # ids, removed newest first
        self.tags: list[str] = []
        self.counter = 0
        # The container runs as 1000:1000; as root we give it its folders, otherwise it
        # runs as the caller (what compose's AI_TRADER_UID/GID do).
        self.user = None if os.geteuid() == 0 else f"{os.getuid()}:{os.getgid()}"

    # -- bookkeeping ------------------------------------------------------------------------

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        log.info("  %s: %s %s", figure.label, fmt(figure.median, figure.unit), figure.unit)

    def section(self, name: str, measure: Callable[[], object]) -> None:
        """Run one measurement; a failure is recorded and the others still run."""
        log.info("== %s", name)
        began = time.monotonic()
        try:
            measure()
        except Exception as exc:  # recorded; the other measurements still run
            reason = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
            self.errors.append(f"{name}: {reason}")
            log.error("  %s failed: %s", name, reason)
        self.details.setdefault("section_seconds", {})[name] = round(time.monotonic() - began, 1)

    def folder(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True)
        return path

    def give_to_container(self, path: Path) -> None:
        if self.user is None:
            for folder, _, files in os.walk(path):
                os.chown(folder, CONTAINER_UID, CONTAINER_UID)
                for name in files:
                    os.chown(Path(folder) / name, CONTAINER_UID, CONTAINER_UID)

    def give_file(self, path: Path) -> None:
        if self.user is None:
            os.chown(path, CONTAINER_UID, CONTAINER_UID)

    def cleanup(self) -> None:
        leftovers = docker(
            "ps", "--all", "--quiet", "--filter", f"label={LABEL}={self.run_id}", check=False
        ).stdout.split()
        for container in dict.fromkeys([*self.containers, *leftovers]):
            docker("rm", "--force", "--volumes", container, check=False)
        for tag in reversed(self.tags):
            docker("rmi", tag, check=False)
        for image in reversed(self.images):
            done = docker("rmi", image, check=False)
            if done.returncode != 0 and "No such image" not in done.stderr:
                log.warning("could not remove image %s: %s", image[:19], done.stderr.strip())
        shutil.rmtree(self.workdir, ignore_errors=True)

    # -- containers -------------------------------------------------------------------------

    def start(
        self, kind: str, data: Path, *, services_only: bool = False, publish: bool = True
    ) -> tuple[str, float, float]:
        """`docker run -d` a container; returns its id and the monotonic and wall start times."""
        self.counter += 1
        argv = ["run", "--detach", "--init", "--name", f"{LABEL}-{self.run_id}-{kind}-"
                f"{self.counter}", "--label", f"{LABEL}={self.run_id}", "--volume",
                f"{data}:/app/data"]  # fmt: skip
        if self.user:
            argv += ["--user", self.user]
        if publish:
            for port in SERVICE_PORTS.values():
                argv += ["--publish", f"127.0.0.1::{port}"]
        if services_only:
            # The image's ENV supplies SERVICE_HOST=0.0.0.0, DATA_DIR and RUNTIME_ENV_PATH.
            argv += ["--entrypoint", "python", self.image, "-m", "ai_trader", "serve"]
        else:
            argv += [self.image]
        wall, began = time.time(), time.monotonic()
        container = docker(*argv, timeout=120).stdout.strip()
        self.containers.append(container)
        return container, began, wall

    def remove(self, container: str) -> None:
        docker("rm", "--force", "--volumes", container, check=False)
        with contextlib.suppress(ValueError):
            self.containers.remove(container)

    def urls(self, container: str) -> dict[str, str]:
        ports = inspect("container", container)["NetworkSettings"]["Ports"] or {}
        urls = {}
        for name, port in SERVICE_PORTS.items():
            bound = ports.get(f"{port}/tcp") or []
            if not bound:
                raise BenchError(f"container port {port} is not published")
            urls[name] = f"http://127.0.0.1:{bound[0]['HostPort']}/mcp"
        return urls

    def wait_ready(self, container: str, began: float) -> dict[str, float]:
        urls = self.urls(container)
        try:
            return asyncio.run(first_answers(urls, began, READY_LIMIT))
        except BenchError as exc:
            tail = "\n".join(line for _, line in logs_with_times(container)[-15:])
            raise BenchError(f"{exc}; last log lines:\n{tail}") from None

    def stop(self, container: str) -> tuple[float, int, dict[str, float]]:
        """`docker stop`: seconds, exit code, and wall times (asked, exited, returned)."""
        asked, began = time.time(), time.monotonic()
        docker("stop", "--time", str(STOP_GRACE), container, timeout=STOP_GRACE + 60)
        seconds = time.monotonic() - began
        state = inspect("container", container)["State"]
        times = {
            "asked": asked,
            "exited": docker_time(state["FinishedAt"]),
            "returned": asked + seconds,
        }
        return seconds, int(state["ExitCode"]), times

    def wait_for_log(self, container: str, pattern: re.Pattern[str], limit: float = 60) -> None:
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            done = docker("logs", container, check=False)
            if pattern.search(done.stdout + done.stderr):
                return
            time.sleep(0.05)
        raise BenchError(f"{pattern.pattern!r} never appeared in the container's log")

    def wait_exit(self, container: str, limit: float = 600) -> int:
        return int(docker("wait", container, timeout=limit).stdout.strip())

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
        server = docker("version", "--format", "{{.Server.Version}}", check=False).stdout.strip()
        info = docker("info", "--format", "{{json .}}", check=False).stdout
        facts = json.loads(info) if info.strip().startswith("{") else {}
        return {
            "nproc": os.cpu_count(),
            "cpus_usable": len(os.sched_getaffinity(0))
            if hasattr(os, "sched_getaffinity")
            else None,
            "cpu_model": cpu_model(),
            "memory_bytes": meminfo_total(),
            "kernel": platform.release(),
            "os": platform.platform(),
            "docker_server": server,
            "docker_storage_driver": facts.get("Driver"),
            "docker_cgroup": f"v{facts.get('CgroupVersion', '?')} {facts.get('CgroupDriver', '')}",
            "python": platform.python_version(),
            "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
        }

    def measure_image(self) -> None:
        image = inspect("image", self.image)
        base = inspect("image", self.base)
        image_layers = image["RootFS"]["Layers"]
        base_layers = base["RootFS"]["Layers"]
        on_base = image_layers[: len(base_layers)] == base_layers
        if not on_base:
            self.notes.append(
                f"{self.image} is not built on {self.base} (its layers do not start with the "
                "base's): the size over the base is not meaningful; pass --base"
            )
        history = [
            json.loads(line)
            for line in docker(
                "history", "--no-trunc", "--human=false", "--format", "{{json .}}", self.image
            )
            .stdout.strip()
            .splitlines()
        ]
        layer_sizes = [
            {"bytes": int(h["Size"]), "created_by": h["CreatedBy"][:120]}
            for h in history
            if str(h["Size"]).isdigit() and int(h["Size"]) > 0
        ]
        self.details["image"] = {
            "name": self.image,
            "id": image["Id"],
            "created": image.get("Created"),
            "base": self.base,
            "base_id": base["Id"],
            "built_on_base": on_base,
            "labels": (image.get("Config") or {}).get("Labels"),
            "largest_layers": sorted(layer_sizes, key=lambda h: -h["bytes"])[:5],
        }
        how = "docker image inspect .Size (uncompressed, as `docker images` shows)"
        self.add(Figure.of("image_size", "image size", "MB", [image["Size"] / MB], how))
        self.add(
            Figure.of(
                "added_over_base",
                "added over the base",
                "MB",
                [(image["Size"] - base["Size"]) / MB],
                f"image size minus the size of {self.base}",
            )
        )
        self.add(
            Figure.of(
                "layers",
                "layers (total)",
                "layers",
                [len(image_layers)],
                "RootFS.Layers of the image",
            )
        )
        self.add(
            Figure.of(
                "layers_added",
                "layers added over the base",
                "layers",
                [len(image_layers) - len(base_layers)],
                "RootFS.Layers of the image minus those of the base",
            )
        )

    def measure_context(self) -> Path:
        """The build context as the classic builder sends it, extracted to a temp folder.

        A throwaway `FROM scratch` + `COPY . /ctx` build over the repository applies the real
        .dockerignore; its files are then read back with `docker export`.
        """
        tag = f"{LABEL}:{self.run_id}-context"
        done = docker(
            "build", "--force-rm", "--file", "-", "--tag", tag, str(ROOT),
            stdin="FROM scratch\nCOPY . /ctx\n", timeout=600,
        )  # fmt: skip
        self.tags.append(tag)
        self.images.append(inspect("image", tag)["Id"])
        sent = re.search(r"Sending build context to Docker daemon\s+(\S+)", done.stdout)
        holder = docker("create", "--label", f"{LABEL}={self.run_id}", tag, "/none").stdout
        holder = holder.strip()
        self.containers.append(holder)
        target = self.folder("context")
        files = total = 0
        exporter = subprocess.Popen(["docker", "export", holder], stdout=subprocess.PIPE)
        try:
            assert exporter.stdout is not None
            with tarfile.open(fileobj=exporter.stdout, mode="r|") as archive:
                for member in archive:
                    if not member.name.startswith("ctx/"):
                        continue
                    member.name = member.name.removeprefix("ctx/")
                    if member.isfile():
                        files += 1
                        total += member.size
                    archive.extract(member, target, filter="data")
        finally:
            if exporter.stdout is not None:
                exporter.stdout.read()
            exporter.wait(timeout=60)
        self.remove(holder)
        shutil.copy2(ROOT / ".dockerignore", target / ".dockerignore")
        how = (
            "files after .dockerignore: a throwaway FROM scratch + COPY . build over the "
            "repository, read back with docker export"
        )
        self.add(Figure.of("context_size", "build context size", "MB", [total / MB], how))
        self.add(Figure.of("context_files", "build context files", "files", [files], how))
        self.details["context"] = {
            "files": files,
            "bytes": total,
            "sent_as_reported_by_docker_build": sent.group(1) if sent else None,
        }
        return target

    def build(self, context: Path, tag: str, *extra: str) -> Build:
        """A timed `docker build` with the nox build's arguments; output timed step by step."""
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        argv = ["docker", "build", "--force-rm", "--build-arg", f"BASE_IMAGE={self.base}",
                "--build-arg", f"VERSION={project_version()}", "--build-arg",
                f"REVISION={git_revision()}", "--build-arg", f"CREATED={created}",
                *os.environ.get("AI_TRADER_BUILD_ARGS", "").split(), *extra,
                "--tag", tag, str(context)]  # fmt: skip
        began = time.monotonic()
        process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        )
        lines: list[str] = []
        steps: list[dict[str, Any]] = []
        assert process.stdout is not None
        for line in process.stdout:
            now = time.monotonic() - began
            lines.append(line.rstrip("\n"))
            if line.startswith("Step "):
                if steps:
                    steps[-1]["seconds"] = round(now - steps[-1]["at"], 3)
                steps.append({"step": line.split(" : ", 1)[-1].strip()[:100], "at": now})
            elif "Using cache" in line and steps:
                steps[-1]["cached"] = True
        status = process.wait(timeout=3600)
        seconds = time.monotonic() - began
        if steps:
            steps[-1]["seconds"] = round(seconds - steps[-1]["at"], 3)
        for step in steps:
            step["at"] = round(step["at"], 3)
            step.setdefault("cached", False)
        if status != 0:
            raise BenchError(f"docker build exited {status}:\n" + "\n".join(lines[-20:]))
        self.images.append(inspect("image", tag)["Id"])
        return Build(seconds, steps)

    def venv_layer(self, image: str) -> tuple[str, str] | None:
        """(step image id, diff id) of the layer that copies the dependencies (/opt/venv).

        The classic builder keeps each step as an image: `docker history` names the step that
        copied /opt/venv, and that step image's last RootFS layer is the layer itself.
        """
        rows = [
            json.loads(line)
            for line in docker("history", "--no-trunc", "--format", "{{json .}}", image)
            .stdout.strip()
            .splitlines()
        ]
        for row in rows:
            if " in /opt/venv" in row["CreatedBy"] and row["ID"].startswith("sha256:"):
                return row["ID"], inspect("image", row["ID"])["RootFS"]["Layers"][-1]
        return None

    def measure_builds(self, context: Path) -> None:
        cold_tag = f"{LABEL}:{self.run_id}-cold"
        log.info("  cold build (--no-cache) of the repository; a minute or more")
        cold = self.build(ROOT, cold_tag, "--no-cache")
        self.tags.append(cold_tag)
        self.add(
            Figure.of(
                "cold_build",
                "cold build (--no-cache)",
                "s",
                [cold.seconds],
                "docker build --no-cache with the nox build's --build-arg set, once",
            )
        )
        cold_venv = self.venv_layer(cold_tag)
        image_venv = self.venv_layer(self.image)
        edit_tag = f"{LABEL}:{self.run_id}-edit"
        cli = context / "src" / "ai_trader" / "cli.py"
        seconds: list[float] = []
        rebuilds: list[dict[str, Any]] = []
        for run in range(self.runs):
            with cli.open("a", encoding="utf-8") as handle:
                handle.write(f"# bench edit {self.run_id}-{run}\n")
            done = self.build(context, edit_tag)
            seconds.append(done.seconds)
            venv = self.venv_layer(edit_tag)
            venv_step = next((s for s in done.steps if "/opt/venv" in s["step"]), None)
            rebuilds.append(
                {
                    "seconds": round(done.seconds, 3),
                    "venv_step_cached": bool(venv_step and venv_step["cached"]),
                    "venv_layer_id": venv[0] if venv else None,
                    "venv_diff_id": venv[1] if venv else None,
                    "steps": done.steps,
                }
            )
        self.tags.append(edit_tag)
        reused = all(r["venv_step_cached"] for r in rebuilds)
        for r in rebuilds:
            r["venv_layer_same_as_cold_build"] = same_layer(r["venv_diff_id"], cold_venv)
            r["venv_layer_same_as_image"] = same_layer(r["venv_diff_id"], image_venv)
        self.add(
            Figure.of(
                "rebuild",
                "rebuild after a code change",
                "s",
                seconds,
                "a comment line appended to src/ai_trader/cli.py in a copy of the context, "
                "docker build with the cache",
            )
        )
        self.details["builds"] = {
            "base": self.base,
            "cold_seconds": round(cold.seconds, 3),
            "cold_steps": cold.steps,
            "cold_venv_layer": cold_venv,
            "image_venv_layer": image_venv,
            "rebuilds": rebuilds,
            "dependency_layer_reused": reused,
        }
        self.notes.append(
            "rebuild: the dependency layer (/opt/venv) was "
            + ("reused (Using cache, same layer id) in every rebuild" if reused else "NOT reused")
        )
        if not reused:
            self.errors.append("rebuild: the dependency layer was not reused")

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
            container, _, _ = self.start("run", data, publish=False)
            pid = int(inspect("container", container)["State"]["Pid"])
            poller = MemoryPoller(pid)
            poller.start()
            try:
                status = self.wait_exit(container)
            finally:
                poller.stop()
            lines = logs_with_times(container)
            self.remove(container)
            if status != 0:
                tail = "\n".join(line for _, line in lines[-15:])
                raise BenchError(f"a full default run exited {status}:\n{tail}")
            step4 = first_time(lines, "step 4/4")
            end = first_time(lines, "the agent finished")
            days = [(t, line) for t, line in lines if re.search(r"\[\d+/\d+\] \d{4}-", line)]
            if step4 is None or end is None or not days:
                raise BenchError("the run's log lacks step 4/4, its days or 'the agent finished'")
            rates.append(len(days) / (end - step4))
            if len(days) > 1:
                loop_rates.append((len(days) - 1) / (days[-1][0] - days[0][0]))
            if poller.folder is not None:
                peaks.append(poller.peak_usage / MB)
                working.append(poller.peak_working_set / MB)
            runs.append(
                {
                    "days": len(days),
                    "run_step_seconds": round(end - step4, 3),
                    "first_to_last_day_seconds": round(days[-1][0] - days[0][0], 3),
                    "memory_samples": poller.samples,
                    "cgroup": f"v{poller.version} {poller.folder}" if poller.folder else None,
                }
            )
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
                "trading days / (time of 'the agent finished' - time of 'step 4/4') in "
                "`docker logs --timestamps` of a full default run in the container (Python "
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
                    "the container memory cgroup's high-water mark (v1 memory.max_usage_in_bytes"
                    ", v2 memory.peak), polled from the host every 20 ms; page cache included",
                )
            )
            self.add(
                Figure.of(
                    "peak_working_set",
                    "peak working set, full run",
                    "MB",
                    working,
                    "max of usage - inactive_file (what docker stats shows), sampled every 20 ms",
                )
            )
        else:
            self.notes.append("peak memory: the container's memory cgroup is not visible here")
        return finished

    def measure_floors(self) -> None:
        """Docker's own share: `docker run -d` and `docker stop` of a container doing nothing."""
        runs: list[float] = []
        stops: list[float] = []
        for _ in range(self.runs):
            self.counter += 1
            began = time.monotonic()
            container = docker(
                "run", "--detach", "--init", "--label", f"{LABEL}={self.run_id}",
                "--name", f"{LABEL}-{self.run_id}-floor-{self.counter}",
                *(a for p in SERVICE_PORTS.values() for a in ("--publish", f"127.0.0.1::{p}")),
                "--entrypoint", "sleep", self.image, "infinity",
            ).stdout.strip()  # fmt: skip
            runs.append(time.monotonic() - began)
            self.containers.append(container)
            took, _, _ = self.stop(container)
            stops.append(took)
            self.remove(container)
        self.add(
            Figure.of(
                "docker_run_floor",
                "docker run -d, idle container (floor)",
                "s",
                runs,
                "`docker run -d --init` of the image running `sleep`, four ports published: "
                "docker's share of every start",
            )
        )
        self.add(
            Figure.of(
                "docker_stop_floor",
                "docker stop, idle container (floor)",
                "s",
                stops,
                "`docker stop` of that container (tini passes SIGTERM to sleep, which exits at "
                "once): docker's share of every stop",
            )
        )

    def phases(self, lines: list[tuple[float, str]], wall: float) -> dict[str, float | None]:
        marks = {
            "entrypoint_started": "starting; config",
            "fetch_started": "step 1/4",
            "serve_started": "step 2/4",
            "services_ready_in_container": "wait-ready: all four services answer",
            "agent_started": "step 4/4",
        }
        return {
            name: round(moment - wall, 3) if (moment := first_time(lines, text)) else None
            for name, text in marks.items()
        }

    def measure_start_full(self, finished: Path) -> None:
        seconds: list[float] = []
        codes: list[int] = []
        runs: list[dict[str, Any]] = []
        for run in range(self.runs):
            data = self.copy_of(finished, f"start-{run}")
            container, began, wall = self.start("start", data)
            ready = self.wait_ready(container, began)
            status = self.wait_exit(container, limit=300)
            lines = logs_with_times(container)
            started_at = docker_time(inspect("container", container)["State"]["StartedAt"])
            self.remove(container)
            shutil.rmtree(data)
            seconds.append(max(ready.values()))
            codes.append(status)
            runs.append(
                {
                    "ready_seconds": {k: round(v, 3) for k, v in ready.items()},
                    "container_started": round(started_at - wall, 3),
                    **self.phases(lines, wall),
                    "exit_code": status,
                }
            )
        self.details["start_full"] = runs
        self.add(
            Figure.of(
                "start_ready_full",
                "start -> ready, full entrypoint",
                "s",
                seconds,
                "`docker run -d` of the image (default command, prices and a finished run "
                "already in the data folder) until all four services have answered an MCP "
                "initialize from the host over the published 127.0.0.1 ports",
            )
        )
        self.details["start_full_exit_codes"] = codes

    def measure_stop_full(self, prices: Path) -> None:
        seconds: list[float] = []
        codes: list[int] = []
        runs: list[dict[str, Any]] = []
        for run in range(self.runs):
            data = self.copy_of(prices, f"stop-{run}")
            container, began, _ = self.start("stop", data)
            ready = self.wait_ready(container, began)
            # Mid-run: once the agent has committed its first day.
            self.wait_for_log(container, re.compile(r"\[\d+/\d+\] \d{4}-"))
            took, status, times = self.stop(container)
            lines = logs_with_times(container)
            self.remove(container)
            shutil.rmtree(data)
            mid_run = first_time(lines, "step 4/4") is not None and (
                first_time(lines, "the agent finished") is None
            )
            seconds.append(took)
            codes.append(status)
            asked = times["asked"]
            marks = {
                "sigterm_logged": "received SIGTERM",
                "agent_stop_started": "cleanup: stopping the agent",
                "services_stop_started": "cleanup: stopping the services",
                "services_stopped": "serve: all services stopped",
                "cleanup_done": "cleanup: done",
            }
            runs.append(
                {
                    "seconds": round(took, 3),
                    "exit_code": status,
                    "stopped_mid_run": mid_run,
                    "ready_seconds": round(max(ready.values()), 3),
                    # seconds after `docker stop` was called
                    **{
                        name: round(moment - asked, 3) if (moment := first_time(lines, t)) else None
                        for name, t in marks.items()
                    },
                    "container_exited": round(times["exited"] - asked, 3),
                }
            )
        self.details["stop_full"] = runs
        figure = Figure.of(
            "stop_full",
            "docker stop -> exit, mid-run",
            "s",
            seconds,
            f"`docker stop --time {STOP_GRACE}` of a full-entrypoint container (a fresh run, "
            "stopped once the agent has committed its first day) until the command returns",
        )
        self.add(figure)
        self.details["stop_full_exit_codes"] = codes
        mid = sum(r["stopped_mid_run"] for r in runs)
        self.notes.append(
            f"stop (full entrypoint): exit codes {sorted(set(codes))}; {mid}/{len(runs)} "
            "stopped while the agent was running"
        )

    def measure_services(self, prices: Path) -> None:
        from ai_trader.ledger import Ledger
        from ai_trader.market.pricebook import PriceBook
        from ai_trader.market.universe import MERGED_NAME, NASDAQ_100
        from ai_trader.runtime import RunState, write_state

        book = PriceBook.load(prices / MERGED_NAME)
        dates = book.dates()
        seconds: list[float] = []
        stops: list[float] = []
        codes: list[int] = []
        breakdown: list[dict[str, Any]] = []
        for run in range(self.runs):
            data = self.copy_of(prices, f"services-{run}")
            state_path = data / "agent_data" / ".runtime_env.json"
            # The run state the agent would write: who trades, which day, where the book is.
            today, previous = dates[-1], dates[-2]
            write_state(state_path, RunState("bench", today, "/app/data/agent_data"))
            Ledger(data / "agent_data" / "bench").ensure_initialized(dates[0], NASDAQ_100, 1e9)
            self.give_to_container(data)
            container, began, _ = self.start("services", data, services_only=True)
            ready = self.wait_ready(container, began)
            seconds.append(max(ready.values()))
            if run == 0:
                self.measure_latency(container, data, state_path, book, today, previous)
            took, status, times = self.stop(container)
            lines = logs_with_times(container)
            self.remove(container)
            shutil.rmtree(data)
            stops.append(took)
            codes.append(status)
            asked = times["asked"]
            stopping = first_time(lines, "SIGTERM received")
            stopped = first_time(lines, "all services stopped")
            breakdown.append(
                {
                    "seconds": round(took, 3),
                    "sigterm_logged": round(stopping - asked, 3) if stopping else None,
                    "services_stopped": round(stopped - asked, 3) if stopped else None,
                    "process_exited": round(times["exited"] - asked, 3),
                    "docker_stop_returned": round(took, 3),
                }
            )
        self.add(
            Figure.of(
                "start_ready_services",
                "start -> ready, services only",
                "s",
                seconds,
                "`docker run -d --entrypoint python IMAGE -m ai_trader serve` (the image's ENV: "
                "SERVICE_HOST=0.0.0.0, DATA_DIR, RUNTIME_ENV_PATH) until all four answer an "
                "MCP initialize from the host",
            )
        )
        self.add(
            Figure.of(
                "stop_services",
                "docker stop -> exit, services only",
                "s",
                stops,
                f"`docker stop --time {STOP_GRACE}` of the services-only container",
            )
        )
        self.details["stop_services_exit_codes"] = codes
        self.details["stop_services"] = breakdown
        self.notes.append(f"stop (services only): exit codes {sorted(set(codes))}")

    def measure_latency(
        self, container: str, data: Path, state_path: Path, book: Any, today: str, previous: str
    ) -> None:
        from ai_trader.market.universe import NASDAQ_100
        from ai_trader.runtime import RunState, write_state

        urls = self.urls(container)
        server_cpu = cpu_reader(int(inspect("container", container)["State"]["Pid"]))
        total = LATENCY_WARMUP + LATENCY_CALLS
        symbols = [s for s in NASDAQ_100 if book.bar(s, previous)]
        price_args = [{"symbol": symbols[i % len(symbols)], "date": previous} for i in range(total)]
        price = asyncio.run(
            call_latencies(urls["prices"], "get_price_local", price_args, server_cpu=server_cpu)
        )
        health_url = urls["prices"].removesuffix("/mcp") + "/health"
        health_ms = asyncio.run(health_latencies(health_url, LATENCY_CALLS))
        days = book.dates()

        def cheapest(day: str) -> str:
            return min(symbols, key=lambda s: book.open(s, day) or float("inf"))

        async def next_day(index: int) -> None:
            # A new simulated day every TRADES_PER_DAY buys, as the agent moves from day to
            # day: the day's stage (pending.json) holds at most that many trades.
            if index % TRADES_PER_DAY == 0:
                day = days[(index // TRADES_PER_DAY) % len(days)]
                state = RunState("bench", day, "/app/data/agent_data")
                await asyncio.to_thread(write_state, state_path, state)
                await asyncio.to_thread(self.give_file, state_path)

        buy_args = [
            {"symbol": cheapest(days[(i // TRADES_PER_DAY) % len(days)]), "amount": 1}
            for i in range(total)
        ]
        buy = asyncio.run(
            call_latencies(urls["trade"], "buy", buy_args, next_day, server_cpu=server_cpu)
        )
        # The same buys all on one simulated day: the day's stage grows with every trade.
        write_state(state_path, RunState("bench", today, "/app/data/agent_data"))
        self.give_file(state_path)
        same_day = [{"symbol": cheapest(today), "amount": 1}] * total
        buy_one_day_ms = asyncio.run(call_latencies(urls["trade"], "buy", same_day)).ms
        how_session = "one warm mcp.Client session from the host (the agent's client mode)"
        for key, label, values, how in (
            ("latency_price", "get_price_local", price.ms, f"{how_session}, 101 symbols in turn"),
            ("latency_buy", "buy", buy.ms, f"{how_session}, 1 share, a new day every "
             f"{TRADES_PER_DAY} buys"),
        ):  # fmt: skip
            self.add(Figure.of(f"{key}_p50", f"{label} p50", "ms", values, how))
            p99 = percentile(values, 99)
            self.add(
                Figure(f"{key}_p99", f"{label} p99", "ms", p99, None, None, len(values), None, how)
            )
        self.add(
            Figure.of(
                "latency_health_p50",
                "HTTP GET /health p50 (floor)",
                "ms",
                health_ms,
                "plain httpx GET of the prices service's /health over the same published port: "
                "the transport (docker-proxy, uvicorn, Starlette) without MCP",
            )
        )
        self.details["latency"] = {
            "calls_per_tool": LATENCY_CALLS,
            "warmup_calls": LATENCY_WARMUP,
            "get_price_local_ms": summary(price.ms),
            "get_price_local_cpu_ms_per_call": {
                "client": round(price.client_cpu_ms, 3),
                "container": round(price.server_cpu_ms, 3) if price.server_cpu_ms else None,
            },
            "buy_ms": summary(buy.ms),
            "buy_cpu_ms_per_call": {
                "client": round(buy.client_cpu_ms, 3),
                "container": round(buy.server_cpu_ms, 3) if buy.server_cpu_ms else None,
            },
            "health_ms": summary(health_ms),
            "buy_all_on_one_day_ms": summary(buy_one_day_ms),
            "buy_all_on_one_day_first_50_p50": round(percentile(buy_one_day_ms[:50], 50), 3),
            "buy_all_on_one_day_last_50_p50": round(percentile(buy_one_day_ms[-50:], 50), 3),
        }

    def run(self) -> int:
        import_project()
        log.info("bench %s: image %s, base %s, %d run(s)", self.run_id, self.image, self.base,
                 self.runs)  # fmt: skip
        started = datetime.now(UTC)
        machine = self.machine()
        context: Path | None = None
        prices: Path | None = None
        finished: Path | None = None

        def context_section() -> None:
            nonlocal context
            context = self.measure_context()

        def full_section() -> None:
            nonlocal finished
            assert prices is not None
            finished = self.measure_full_runs(prices)

        self.section("image", self.measure_image)
        self.section("build context", context_section)
        prices = self.prices_template()
        self.section("fetch", self.measure_fetch)
        self.section("docker floors", self.measure_floors)
        self.section("full runs: throughput and memory", full_section)
        if finished is not None:
            self.section(
                "start to ready, full entrypoint", lambda: self.measure_start_full(finished)
            )
        self.section("stop, full entrypoint", lambda: self.measure_stop_full(prices))
        self.section("services only: start, latency, stop", lambda: self.measure_services(prices))
        if self.args.skip_build:
            self.notes.append("builds skipped (--skip-build)")
        elif context is not None:
            self.section("builds", lambda: self.measure_builds(context))
        machine["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
        self.report(started, machine)
        return 1 if self.errors else 0

    def report(self, started: datetime, machine: dict[str, Any]) -> None:
        order = [
            "image_size", "added_over_base", "layers", "layers_added", "context_size",
            "context_files", "cold_build", "rebuild", "start_ready_full", "start_ready_services",
            "stop_full", "stop_services", "docker_run_floor", "docker_stop_floor",
            "latency_price_p50", "latency_price_p99",
            "latency_buy_p50", "latency_buy_p99", "latency_health_p50", "run_throughput",
            "run_loop_throughput",
            "peak_memory", "peak_working_set", "fetch_rate", "fetch_second_requests",
        ]  # fmt: skip
        self.figures.sort(key=lambda f: order.index(f.key) if f.key in order else len(order))
        stamp = started.strftime("%Y%m%dT%H%M%SZ")
        print()
        print(
            f"ai-trader bench, {started:%Y-%m-%d %H:%M} UTC: {self.image} "
            f"({self.details.get('image', {}).get('id', '?')[7:19]}) on {self.base}; "
            f"{machine['nproc']} cores, {(machine['memory_bytes'] or 0) / 2**30:.0f} GiB, "
            f"kernel {machine['kernel']}, docker {machine['docker_server']}, "
            f"python {machine['python']}"
        )
        print(table(self.figures))
        for note in self.notes:
            print(f"note: {note}")
        for error in self.errors:
            print(f"error: {error}")
        document = {
            "schema": 1,
            "started": started.isoformat(timespec="seconds"),
            "finished": datetime.now(UTC).isoformat(timespec="seconds"),
            "image": self.image,
            "base": self.base,
            "runs": self.runs,
            "skip_build": bool(self.args.skip_build),
            "revision": git_revision(),
            "machine": machine,
            "figures": [f.as_json() for f in self.figures],
            "notes": self.notes,
            "errors": self.errors,
            "details": self.details,
        }
        out = Path(self.args.out)
        out.mkdir(parents=True, exist_ok=True)
        text = json.dumps(document, indent=2) + "\n"
        (out / f"bench-{stamp}.json").write_text(text, encoding="utf-8")
        (out / "latest.json").write_text(text, encoding="utf-8")
        print(f"written: {out / f'bench-{stamp}.json'} and {out / 'latest.json'}")


def same_layer(diff_id: str | None, reference: tuple[str, str] | None) -> bool:
    return diff_id is not None and reference is not None and reference[1] == diff_id


def summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": round(percentile(values, 50), 3),
        "p90": round(percentile(values, 90), 3),
        "p99": round(percentile(values, 99), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "mean": round(statistics.fmean(values), 3),
    }


def choose_base() -> str:
    """BASE_IMAGE, else the default base when present locally, else the local base."""
    wanted = os.environ.get("BASE_IMAGE")
    if wanted:
        return wanted
    if docker("image", "inspect", DEFAULT_BASE, check=False).returncode == 0:
        return DEFAULT_BASE
    return LOCAL_BASE


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """nox ends a session with SIGTERM after Ctrl-C: clean up as for Ctrl-C."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench.py",
        description="Measure the ai-trader image (size, builds, start, stop, latency, "
        "throughput, memory, fetch); print a table and write JSON. Never fails on a time.",
    )
    parser.add_argument("--runs", type=int, default=5, help="repetitions per figure (default 5)")
    parser.add_argument("--image", default=DEFAULT_IMAGE, help=f"default {DEFAULT_IMAGE}")
    parser.add_argument(
        "--base",
        default=None,
        help=f"the base image (default: BASE_IMAGE, else {DEFAULT_BASE} if present, "
        f"else {LOCAL_BASE})",
    )
    parser.add_argument("--out", default=str(ROOT / ".bench"), help="default .bench/")
    parser.add_argument(
        "--skip-build", action="store_true", help="skip the cold build and rebuild timings"
    )
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # Libraries stay quiet (the readiness probe fails on purpose until the services answer);
    # the bench reports its progress.
    logging.basicConfig(level=logging.CRITICAL, format="%(message)s", stream=sys.stderr)
    log.setLevel(logging.INFO)
    if docker("image", "inspect", args.image, check=False).returncode != 0:
        print(f"bench: no image {args.image}; run `nox -s build` first", file=sys.stderr)
        return 2
    bench = Bench(args)
    with sigterm_as_interrupt():
        try:
            return bench.run()
        except KeyboardInterrupt:
            print("bench: interrupted; cleaning up", file=sys.stderr)
            return 130
        finally:
            bench.cleanup()


if __name__ == "__main__":
    sys.exit(main())
