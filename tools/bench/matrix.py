"""How long the bare ``nox`` takes, and how busy it keeps the cores: ``nox -s matrix``
(``python -m bench.matrix [NOX ARGUMENTS]`` from tools/ with a Python that has nox).

It runs nox as a child process (the bare ``nox`` unless arguments are given), passes its
output through, and reads the machine's CPU counters (``/proc/stat``, Linux) when it starts,
whenever nox says "Running session", and when it ends. Per session it reports the wall
time, the CPU seconds anything on the machine used (*busy*: the containers, the engine and
other people's work included) and the CPU seconds nobody used (*idle*), and the share of the
cores in use. A session that leaves cores idle can gain from running more at once; one that
keeps them busy can only gain from doing less. docs/BENCHMARKS.md ("The matrix") has the
figures. It reports and decides nothing: its exit status is nox's.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROC_STAT = Path("/proc/stat")
SESSION_LINE = re.compile(r"^nox > Running session (\S+)")
# /proc/stat's "cpu" columns, in clock ticks: user nice system idle iowait irq softirq steal.
BUSY_COLUMNS = (0, 1, 2, 5, 6, 7)
IDLE_COLUMNS = (3, 4)


@dataclass(frozen=True)
class Counters:
    """The machine's CPU time so far, in seconds, read at ``at`` (time.monotonic)."""

    at: float
    busy: float
    idle: float


@dataclass(frozen=True)
class Row:
    name: str
    wall: float
    busy: float
    idle: float

    @property
    def used(self) -> float | None:
        """The share of the cores in use; None when no CPU time passed at all."""
        total = self.busy + self.idle
        return self.busy / total if total > 0 else None


def parse_cpu(stat: str, ticks: float) -> tuple[float, float]:
    """(busy, idle) seconds from the text of /proc/stat and the clock ticks per second."""
    for line in stat.splitlines():
        fields = line.split()
        if fields and fields[0] == "cpu":
            values = [int(v) for v in fields[1:9]]
            values += [0] * (8 - len(values))  # older kernels have fewer columns
            busy = sum(values[i] for i in BUSY_COLUMNS)
            idle = sum(values[i] for i in IDLE_COLUMNS)
            return busy / ticks, idle / ticks
    raise ValueError("no 'cpu' line in /proc/stat")


def session_started(line: str) -> str | None:
    """The session a line of nox's output starts, if it is such a line."""
    found = SESSION_LINE.match(line.strip())
    return found.group(1) if found else None


def rows(marks: Sequence[tuple[str, Counters]], end: Counters) -> list[Row]:
    """One row per session, from the counters read as each began and as the run ended."""
    bounds = [*(counters for _, counters in marks[1:]), end]
    return [
        Row(name, after.at - before.at, after.busy - before.busy, after.idle - before.idle)
        for (name, before), after in zip(marks, bounds, strict=True)
    ]


def whole_run(start: Counters, end: Counters) -> Row:
    """The whole run, nox's own start-up and the time between sessions included."""
    return Row("total", end.at - start.at, end.busy - start.busy, end.idle - start.idle)


def render(found: Sequence[Row], whole: Row, cores: int) -> str:
    """The table docs/BENCHMARKS.md shows: wall, busy and idle CPU, and the cores used."""

    def used(row: Row) -> str:
        return f"{row.used:.0%}" if row.used is not None else "-"

    width = max(len(row.name) for row in [*found, whole])
    lines = [
        f"{'session':<{width}}  {'wall':>7}  {'busy CPU':>8}  {'idle CPU':>8}  cores used",
        f"{'-' * width}  {'-' * 7}  {'-' * 8}  {'-' * 8}  ----------",
    ]
    for row in [*found, whole]:
        lines.append(
            f"{row.name:<{width}}  {row.wall:>6.1f}s  {row.busy:>7.1f}s  {row.idle:>7.1f}s"
            f"  {used(row):>10}"
        )
    if whole.used is not None:
        floor = whole.busy / cores
        lines.append(
            f"{cores} cores would do the {whole.busy:.0f} busy CPU seconds in {floor:.0f} s "
            f"if nothing were idle; the run took {whole.wall:.0f} s ({used(whole)} used)."
        )
    return "\n".join(lines)


# --- the run ---------------------------------------------------------------------------------


def read_counters() -> Counters:
    busy, idle = parse_cpu(PROC_STAT.read_text(), os.sysconf("SC_CLK_TCK"))
    return Counters(time.monotonic(), busy, idle)


def main(argv: Sequence[str]) -> int:
    if not PROC_STAT.is_file():
        print("bench.matrix: error: needs /proc/stat (Linux) to read the CPU counters")
        return 2
    command = [sys.executable, "-m", "nox", *argv]
    load_before = os.getloadavg()
    start = read_counters()
    marks: list[tuple[str, Counters]] = []
    with subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as nox:
        assert nox.stdout is not None
        for line in nox.stdout:
            name = session_started(line)
            if name is not None:
                marks.append((name, read_counters()))
            sys.stdout.write(line)
            sys.stdout.flush()
    end = read_counters()
    cores = os.cpu_count() or 1
    print(f"\nbench.matrix: `{' '.join(['nox', *argv])}` exited {nox.returncode}")
    print(
        f"load average (1, 5, 15 min) on {cores} cores: before "
        f"{' '.join(f'{v:.2f}' for v in load_before)}, after "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}"
    )
    found = rows(marks, end) if marks else []
    print(render(found, whole_run(start, end), cores))
    return nox.returncode


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:  # nox, in the same process group, got the Ctrl-C too
        sys.exit(130)
