"""The arm64 image beside the host's own: its size, and its start to ready under QEMU.

`nox -s multiarch` builds it, as the bench image's tag with -arm64 (ai-trader:dev-arm64;
scripts/multiarch.py names it). When it is not there, the section prints why and measures
nothing. Start to ready is measured as for the host's image (the engine's `create` event to
all four services answering an MCP initialize, with a finished run in the data folder), each
start followed by an idle `docker run`, the floor. Emulated, a start takes many times the
native one, so the entrypoint and the probe wait longer (ARM64_READY_LIMIT) and the starts
are at most ARM64_RUNS. Never fails on a
time; an image that does not start is an error like any other section's.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import shutil
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import facts
from ai_trader.settings import DEFAULT_PORTS
from bench.images import LABEL
from bench.probes import BenchError, first_answers
from bench.report import MB, Figure
from bench.timings import Started
from integration import engine

if TYPE_CHECKING:
    from bench.timings import Bench

ARM64_READY_LIMIT = 600.0  # seconds: four services importing the MCP SDK under QEMU
ARM64_RUNS = 3  # starts at most (each a minute or so emulated on two cores)

log = logging.getLogger("bench")


def _multiarch() -> ModuleType:
    """scripts/multiarch.py, which names the foreign image (loaded by its path)."""
    path = facts.ROOT / "scripts" / "multiarch.py"
    spec = importlib.util.spec_from_file_location("ai_trader_multiarch", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def arm64_image(image: str) -> str:
    return str(_multiarch().foreign_image(image, "arm64"))


def start(bench: Bench, image: str, data: Path) -> Started:
    """`docker run -d --init` of `image` as the bench starts its own (bench.start), with the
    entrypoint told to wait for the services as long as emulation needs."""
    bench.counter += 1
    options: dict[str, Any] = {
        "detach": True,
        "init": True,
        "name": f"{LABEL}-{bench.run_id}-arm64-start-{bench.counter}",
        "labels": {LABEL: bench.run_id},
        "volumes": {str(data): {"bind": "/app/data", "mode": "rw"}},
        "ports": {f"{p}/tcp": ("127.0.0.1", None) for p in DEFAULT_PORTS.values()},
        "environment": {"READY_TIMEOUT": str(int(ARM64_READY_LIMIT))},
        "platform": "linux/arm64",
    }
    if bench.user:
        options["user"] = bench.user
    since = time.time()
    return Started(bench.client.containers.run(image, **options), since)


def measure(bench: Bench, finished: Path | None) -> None:
    """Size and start to ready of the arm64 image, when it was built; else say why not."""
    image = arm64_image(bench.image)
    if not engine.image_exists(image):
        reason = f"arm64: not measured, no image {image} (`nox -s multiarch` builds it)"
        print(f"bench: {reason}", file=sys.stderr, flush=True)
        bench.notes.append(reason)
        return
    found = engine.image(image)
    arch = found.attrs.get("Architecture")
    bench.details["arm64_image"] = {"name": image, "id": found.id, "architecture": arch}
    if arch != "arm64":
        raise BenchError(f"{image} records architecture {arch}, not arm64")
    size = found.attrs["Size"]
    how = "the engine's image Size of the arm64 image (uncompressed)"
    bench.add(Figure.of("arm64_image_size", "arm64 image size", "MB", [size / MB], how))
    if finished is None:
        reason = "arm64: start to ready not measured (no finished run to start from)"
        print(f"bench: {reason}", file=sys.stderr, flush=True)
        bench.notes.append(reason)
        return
    seconds: list[float] = []
    floors: list[float] = []
    for run in range(min(bench.runs, ARM64_RUNS)):
        data = bench.copy_of(finished, f"arm64-start-{run}")
        started = start(bench, image, data)
        try:
            ready = asyncio.run(first_answers(bench.urls(started.box), ARM64_READY_LIMIT))
            record = engine.container_events(started.box.id, started.since)
        finally:
            bench.remove(started.box)
            shutil.rmtree(data)
        created = next((e.time for e in record if e.action == "create"), None)
        if created is None:
            raise BenchError("the engine reported no create event for the arm64 start")
        seconds.append(max(ready.values()) - created)
        floors.append(bench.floor_once()[0])
    how = (
        "as `start -> ready, full entrypoint`, for the arm64 image run under QEMU on this "
        "host; the native figure is beside it in the same run"
    )
    bench.add(Figure.of("arm64_start_ready_full", "arm64 start -> ready (QEMU)", "s", seconds,
                        how))  # fmt: skip
    bench.details["arm64_start_floor_docker_run"] = [round(f, 3) for f in floors]
