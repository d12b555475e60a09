"""The bench's bookkeeping, with or without Docker: figures, notes, errors, details, the load
at each section's start, a temporary folder, and the host's own facts.

`timings.Bench` adds the engine to it; `python -m bench --only api-bound` runs a host-only
measurement on it alone, so that one never needs a Docker engine.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.probes import BenchError
from bench.report import Figure, Relative, fmt

log = logging.getLogger("bench")


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


def load_now() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()]


def host_machine() -> dict[str, Any]:
    """The facts of the machine the bench runs on (the engine's are `timings.Bench`'s)."""
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": cpu_model(),
        "memory_bytes": meminfo_total(),
        "kernel": platform.release(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": load_now(),
    }


class Recorder:
    """What every measurement writes to; ``cleanup`` removes the temporary folder."""

    def __init__(self, runs: int) -> None:
        self.runs = runs
        self.run_id = uuid.uuid4().hex[:10]
        self.figures: list[Figure] = []
        self.relatives: list[Relative] = []
        self.load_during: list[tuple[str, list[float]]] = []  # at each section's start
        self.details: dict[str, Any] = {}
        self.notes: list[str] = []
        self.errors: list[str] = []
        self.workdir = Path(tempfile.mkdtemp(prefix="ai-trader-bench-"))

    def add(self, figure: Figure) -> None:
        self.figures.append(figure)
        log.info("  %s: %s %s", figure.label, fmt(figure.median, figure.unit), figure.unit)

    def section(self, name: str, measure: Callable[[], object]) -> None:
        """Run one measurement; a failure is recorded and the others still run."""
        log.info("== %s", name)
        self.load_during.append((name, load_now()))
        began = time.monotonic()
        try:
            measure()
        except Exception as exc:  # recorded; the other measurements still run
            reason = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
            while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
                exc = exc.exceptions[0]  # a task group's error: say what failed inside it
                reason += f" <- {type(exc).__name__}: {exc}"
            self.errors.append(f"{name}: {reason}")
            log.error("  %s failed: %s", name, reason)
        self.details.setdefault("section_seconds", {})[name] = round(time.monotonic() - began, 1)

    def folder(self, name: str) -> Path:
        path = self.workdir / name
        path.mkdir(parents=True)
        return path

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)
