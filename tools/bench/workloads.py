"""Work the container does for a user: models trading in parallel, and the dashboard.

The parallel runs happen in the container: `docker exec` of `ai-trader run` into a
services-only container, the agent's real path. The dashboard runs on the host
(`dashboard.py`), over a synthetic long backtest.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from docker.models.containers import Container

import facts
from bench.probes import BenchError
from bench.report import Figure

if TYPE_CHECKING:
    from bench.timings import Started

ROOT = facts.ROOT
PARALLEL_MODELS = (1, 4, 8)
PARALLEL_ROUNDS = 3  # at most: 17 runs a round (13 solo, 3 with --jobs, 1 start-up floor)


class WorkloadFigures:
    """The parallel-models and dashboard measurements of `timings.Bench`, which supplies
    these."""

    runs: int
    details: dict[str, Any]
    notes: list[str]

    def add(self, figure: Figure) -> None: ...
    def copy_of(self, template: Path, name: str) -> Path: ...
    def services_container(self, data: Path) -> Started: ...
    def wait_ready(self, started: Started) -> dict[str, float]: ...
    def remove(self, box: Container) -> None: ...

    def measure_parallel(self, prices: Path) -> None:
        """N built-in models in one `ai-trader run --jobs N` against N solo runs one after
        another, in the container (`docker exec` into a services-only container): the
        agent's real path. Rounds alternate which side goes first."""
        data = self.copy_of(prices, "parallel")
        configs = data / "bench-configs"
        configs.mkdir()
        template = json.loads((ROOT / "configs" / "default_config.json").read_text())
        rounds = min(self.runs, PARALLEL_ROUNDS)

        def write_config(name: str, signatures: list[str], log_path: str) -> str:
            config = copy.deepcopy(template)
            config["models"] = [
                {"name": s, "basemodel": "builtin/momentum", "signature": s, "enabled": True}
                for s in signatures
            ]
            config["log_config"]["log_path"] = log_path
            (configs / f"{name}.json").write_text(json.dumps(config, indent=2))
            return f"/app/data/bench-configs/{name}.json"

        started = self.services_container(data)
        try:
            self.wait_ready(started)
            box = started.box

            def run(config: str, jobs: int) -> float:
                argv = ["python", "-m", "ai_trader", "run", config, "--jobs", str(jobs)]
                began = time.monotonic()
                done = box.exec_run(argv, demux=True)
                wall = time.monotonic() - began
                if done.exit_code != 0:
                    err = (done.output[1] or b"").decode("utf-8", "replace").strip()
                    raise BenchError(f"{' '.join(argv[3:])} exited {done.exit_code}: {err[-500:]}")
                return wall

            solo: dict[int, list[float]] = {n: [] for n in PARALLEL_MODELS}
            jobs: dict[int, list[float]] = {n: [] for n in PARALLEL_MODELS}
            floor: list[float] = []
            unequal: list[str] = []
            for number in range(rounds):
                for n in PARALLEL_MODELS:
                    signatures = [f"momentum-{i + 1}" for i in range(n)]
                    trial = f"r{number}-n{n}"
                    solo_path = f"/app/data/bench-trials/{trial}-solo"
                    jobs_path = f"/app/data/bench-trials/{trial}-jobs"
                    solo_configs = [
                        write_config(f"{trial}-solo-{s}", [s], solo_path) for s in signatures
                    ]
                    jobs_config = write_config(f"{trial}-jobs", signatures, jobs_path)

                    def solo_side(solo_configs: list[str] = solo_configs) -> float:
                        return sum(run(config, 1) for config in solo_configs)

                    def jobs_side(jobs_config: str = jobs_config, n: int = n) -> float:
                        return run(jobs_config, n)

                    if number % 2 == 0:
                        solo[n].append(solo_side())
                        jobs[n].append(jobs_side())
                    else:
                        jobs[n].append(jobs_side())
                        solo[n].append(solo_side())
                    for s in signatures:
                        host_solo = data / "bench-trials" / f"{trial}-solo" / s / "position"
                        host_jobs = data / "bench-trials" / f"{trial}-jobs" / s / "position"
                        a = (host_solo / "position.jsonl").read_bytes()
                        b = (host_jobs / "position.jsonl").read_bytes()
                        if a != b:
                            unequal.append(f"{trial} {s}")
                # The start-up floor: the last solo config again, every day already done.
                floor.append(run(solo_configs[-1], 1))
        finally:
            self.remove(started.box)
            shutil.rmtree(data, ignore_errors=True)
        if unequal:
            raise BenchError(f"books of --jobs runs differ from their solo runs: {unequal}")
        where = "in the container (docker exec into a services-only container)"
        self.add(
            Figure.of(
                "run_floor_nothing_to_do",
                "ai-trader run, every day done (start-up)",
                "s",
                floor,
                f"`ai-trader run` of a one-model config whose days are all done, {where}: "
                "Python start, imports, MCP sessions and exit; once a round",
            )
        )
        for n in PARALLEL_MODELS:
            speedups = [s / j for s, j in zip(solo[n], jobs[n], strict=True)]
            noun = "model" if n == 1 else "models"
            solo_label = "1 model: a solo run" if n == 1 else f"{n} models: {n} solo runs in a row"
            self.add(
                Figure.of(
                    f"parallel_{n}_solo", solo_label, "s", solo[n],
                    f"the wall time of {n} `ai-trader run` (one builtin/momentum model each, "
                    f"distinct signatures, the default config's 23 days) one after another, "
                    f"{where}",
                )
            )  # fmt: skip
            self.add(
                Figure.of(
                    f"parallel_{n}_jobs", f"{n} {noun}: one run --jobs {n}", "s", jobs[n],
                    f"the wall time of one `ai-trader run --jobs {n}` of the same {n} models, "
                    f"{where}",
                )
            )  # fmt: skip
            self.add(
                Figure.of(
                    f"parallel_{n}_speedup", f"{n} {noun}: speed-up (solo / --jobs)", "x",
                    speedups, "solo wall time over --jobs wall time, per round",
                )
            )  # fmt: skip
        self.details["parallel"] = {
            "where": where,
            "rounds": rounds,
            "solo_seconds": solo,
            "jobs_seconds": jobs,
            "floor_seconds": floor,
            "books_equal_to_solo": True,
        }
        self.notes.append(
            f"parallel models: each --jobs run's books equal their solo runs' byte for byte "
            f"({rounds} round(s) of N = {', '.join(map(str, PARALLEL_MODELS))})"
        )

    # -- the dashboard ---------------------------------------------------------------------

    def measure_dashboard(self) -> None:
        """The dashboard on a long synthetic backtest, on the host (bench/dashboard.py)."""
        from bench import dashboard

        found = dashboard.measure()
        self.details["dashboard"] = found
        size = f"{found['days']:,} days, {found['models']} models"
        how = (
            f"the real `ai-trader dashboard` on the host over a synthetic {size} folder "
            f"({found['folder_mb']} MB), timed over HTTP; server CPU in the JSON"
        )
        for key, label, value in (
            ("dashboard_cold", f"dashboard /api/summary, cold ({size})", [found["cold"][0]]),
            ("dashboard_warm", "dashboard /api/summary, unchanged", [found["warm"][0]]),
            ("dashboard_one_day_more", "dashboard /api/summary, one day more",
             [found["one_day_more"][0]]),
            ("dashboard_parse_floor", "dashboard floor: json.loads of the same files",
             [found["parse_floor"][0]]),
            ("report_cold", f"ai-trader report, cold ({size})", [found["report_cold"][0]]),
        ):  # fmt: skip
            self.add(Figure.of(key, label, "s", value, how))
        floor = found["parse_floor"][0]
        if floor:
            self.notes.append(
                f"dashboard: the cold summary took {found['cold'][0] / floor:.1f}x the time "
                "json.loads alone takes over the same files, measured just before and after it"
            )
        health = found["health_during_cold"]
        if health["answers"]:
            during = "GETs of /health back to back while the cold summary is worked out"
            self.add(
                Figure(
                    "dashboard_health_p50", "dashboard /health during the cold summary, p50",
                    "ms", health["median_s"] * 1000, None, None, health["answers"], None, during,
                )
            )  # fmt: skip
            self.add(
                Figure(
                    "dashboard_health_max", "dashboard /health during the cold summary, max",
                    "ms", health["max_s"] * 1000, None, None, health["answers"], None, during,
                )
            )  # fmt: skip
        else:
            self.notes.append("dashboard: /health was never asked during the cold summary")
