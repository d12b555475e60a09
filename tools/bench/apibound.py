"""API-bound models: one `ai-trader run --jobs N` against N solo runs, with a model API
that takes 200 ms to answer each request. The case the benchmark exists for.

On the host, without Docker: `ai-trader serve` on ports it picks (read from its listening
line, as the unit tests' fixtures read them), the model stand-in (`tests/standins`, the real
chat-completions wire format) answering every request after a fixed delay in the request's
own thread, so that concurrent requests wait side by side, and `ai-trader run` as a child
process, as a user runs it. Each model trades the last days of the offline sample, three
model requests a day (look a price up, buy a share, finish), so a model waits at least
days x 3 x 200 ms on the API, and N models in one run, if they overlap perfectly, no
longer: the floor a `--jobs N` run is shown beside is requests x 200 ms / N.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import os
import re
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import facts
from bench.probes import BenchError
from bench.report import Figure

ROOT = facts.ROOT
log = logging.getLogger("bench")

DELAY = 0.2  # seconds the model stand-in waits before each answer
API_BOUND_MODELS = (4, 16)
API_BOUND_DAYS = 5  # the last trading days of the offline sample
API_BOUND_ROUNDS = 2  # at most: a round is 22 runs (20 solo, 2 with --jobs) and a start-up
SPEEDUP_AIM = 0.9  # of N (issue 28)
MODEL = "gpt-stand-in"
# What the model answers each day: a price looked up, one share bought, the day finished.
SCRIPT: list[dict[str, Any]] = [
    {"tool_calls": [{"name": "get_price_local",
                     "arguments": {"symbol": "MSFT", "date": "{today}"}}]},
    {"tool_calls": [{"name": "buy", "arguments": {"symbol": "MSFT", "amount": 1}}]},
    {"content": "Done for today. <FINISH_SIGNAL>"},
]  # fmt: skip
REQUESTS_A_DAY = len(SCRIPT)
SERVE_LIMIT = 300.0  # seconds for serve to listen: only keeps a hang from hanging the bench
RUN_LIMIT = 600.0  # seconds for one `ai-trader run`: the same

# What the product reads from the environment (and each key's *_FILE form): none is taken
# from the caller's, so a developer's own keys, ports or dates never reach a run.
PRODUCT_VARIABLES = frozenset(
    {
        "AGENT_JOBS", "AGENT_MAX_STEP", "AI_TRADER_ALLOWED_HOSTS", "ALPHAADVANTAGE_API_KEY",
        "ALPHAVANTAGE_API_KEY", "ALPHAVANTAGE_BASE_URL", "ALPHAVANTAGE_MIN_INTERVAL", "DATA_DIR",
        "END_DATE", "GETPRICE_HTTP_PORT", "INIT_DATE", "JINA_API_KEY", "JINA_READER_BASE_URL",
        "JINA_SEARCH_BASE_URL", "MATH_HTTP_PORT", "OPENAI_API_BASE", "OPENAI_API_KEY",
        "READY_TIMEOUT", "SEARCH_HTTP_PORT", "SERVICE_CLIENT_HOST", "SERVICE_HOST",
        "TRADE_HTTP_PORT",
    }
)  # fmt: skip

# "serve: listening on HOST (math :P, search :P, trade :P, prices :P)"
LISTENING = re.compile(r"serve: listening on \S+ \(([^)\n]*)\)")
LISTED = re.compile(r"(\w+) :(\d+)")


def served_ports(text: str, names: tuple[str, ...]) -> dict[str, int] | None:
    """Each service's port, by name, from serve's listening line in ``text``; None until
    the line is there. BenchError when it does not name each of ``names`` once."""
    match = LISTENING.search(text)
    if match is None:
        return None
    items = [LISTED.fullmatch(item) for item in match[1].split(", ")]
    ports = {item[1]: int(item[2]) for item in items if item}
    if None in items or len(ports) != len(items) or sorted(ports) != sorted(names):
        raise BenchError(f"serve's listening line does not name each service's port: {match[0]}")
    return ports


def speedup(solo: float, jobs: float) -> float:
    """How many times faster one run --jobs N was than the N solo runs one after another."""
    return solo / jobs


def model_floor(requests: int, delay: float, jobs: int) -> float:
    """The least time ``requests`` model requests of ``delay`` seconds each take when
    ``jobs`` are always in flight at once: the model API's own share of a run."""
    return requests * delay / jobs


def child_env(base: Mapping[str, str], data: Path, pycache: Path) -> dict[str, str]:
    """The environment of the bench's `ai-trader` children: none of the product's variables
    from ``base``, the worktree's package first on the path, and bytecode cached (in
    ``pycache``) whatever the caller says, as the image's is: every child would otherwise
    compile every module it imports, and a solo run pays that N times."""
    env = {
        key: value
        for key, value in base.items()
        if key.removesuffix("_FILE") not in PRODUCT_VARIABLES
        and key not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    }
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), base.get("PYTHONPATH")]))
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["PYTHONUNBUFFERED"] = "1"
    env["DATA_DIR"] = str(data)
    return env


@dataclass
class Side:
    """One side of a round: the wall time, the model requests the stand-in saw, the most
    it was answering at once, and the CPU time of the `ai-trader run` processes."""

    seconds: float
    requests: int
    max_in_flight: int
    cpu_seconds: float
    runs: list[float]


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def process_cpu(pid: int) -> float | None:
    """User + system CPU seconds of a running process, from /proc (None where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def serving(
    env: dict[str, str], log_file: Path
) -> Iterator[tuple[subprocess.Popen[str], dict[str, int]]]:
    """`ai-trader serve` on ports it picks; yields it and the ports its listening line names.
    Stopped with SIGTERM on the way out."""
    from ai_trader.settings import PORT_VARIABLES, SERVICE_NAMES

    ports_zero = {variable: "0" for variable in PORT_VARIABLES.values()}
    with log_file.open("w", encoding="utf-8") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "ai_trader", "serve"],
            env={**env, **ports_zero},
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        deadline = time.monotonic() + SERVE_LIMIT
        while (ports := served_ports(log_file.read_text(errors="replace"), SERVICE_NAMES)) is None:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log_file.read_text(errors="replace")[-1500:]
                raise BenchError(f"serve did not listen (exit {process.poll()}):\n{tail}")
            time.sleep(0.05)
        yield process, ports
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def make_prices(data: Path) -> list[str]:
    """The offline sample and merged.jsonl, made with the package's own code; its days."""
    from ai_trader.layout import MERGED_NAME
    from ai_trader.market.merge import merge
    from ai_trader.market.pricebook import PriceBook
    from ai_trader.market.sample import generate_sample
    from ai_trader.market.universe import ALL_SYMBOLS

    with contextlib.redirect_stderr(io.StringIO()):  # the merge's progress lines
        generate_sample(ALL_SYMBOLS, data)
        merge(data, ALL_SYMBOLS)
    return PriceBook.load(data / MERGED_NAME).dates()


class ApiBoundFigures:
    """The API-bound measurement of a `recorder.Recorder` (the full bench's `timings.Bench`,
    or `--only api-bound`'s host-only one), which supplies these."""

    runs: int
    details: dict[str, Any]
    notes: list[str]

    def add(self, figure: Figure) -> None: ...
    def folder(self, name: str) -> Path: ...

    def measure_api_bound(self) -> None:
        """For N = 4 and 16 API-bound models: N solo runs one after another against one
        `ai-trader run --jobs N`, the sides alternating which goes first, round by round."""
        from standins import StandIns

        work = self.folder("api-bound")
        data = work / "data"
        data.mkdir()
        dates = make_prices(data)
        if len(dates) <= API_BOUND_DAYS:
            raise BenchError(
                f"the offline sample has {len(dates)} days; {API_BOUND_DAYS} + 1 needed"
            )
        init, end = dates[-API_BOUND_DAYS - 1], dates[-1]
        configs = work / "configs"
        configs.mkdir()
        template = json.loads((ROOT / "configs" / "default_config.json").read_text())
        rounds = min(self.runs, API_BOUND_ROUNDS)
        env = child_env(os.environ, data, work / "pycache")

        with StandIns({"openai": {"models": [MODEL], "script": SCRIPT, "delay": DELAY}}) as api:

            def write_config(name: str, signatures: list[str], books: str) -> Path:
                config = copy.deepcopy(template)
                config["date_range"] = {"init_date": init, "end_date": end}
                config["models"] = [
                    {"name": s, "basemodel": MODEL, "signature": s, "enabled": True,
                     "openai_base_url": api.openai_base}
                    for s in signatures
                ]  # fmt: skip
                config["log_config"]["log_path"] = str(data / "agent_data" / books)
                path = configs / f"{name}.json"
                path.write_text(json.dumps(config, indent=2))
                return path

            run_env = {**env, "OPENAI_API_KEY": "bench-key"}

            with serving(env, work / "serve.log") as (serve, ports):
                from ai_trader.settings import PORT_VARIABLES

                run_env |= {PORT_VARIABLES[name]: str(port) for name, port in ports.items()}

                def run(config: Path, jobs: int) -> float:
                    argv = [sys.executable, "-m", "ai_trader", "run", str(config),
                            "--jobs", str(jobs)]  # fmt: skip
                    began = time.monotonic()
                    done = subprocess.run(argv, env=run_env, capture_output=True, text=True,
                                          timeout=RUN_LIMIT, check=False)  # fmt: skip
                    wall = time.monotonic() - began
                    if done.returncode != 0:
                        raise BenchError(
                            f"run {config.name} --jobs {jobs} exited {done.returncode}: "
                            f"{done.stderr.strip()[-800:]}"
                        )
                    return wall

                def side(configs: list[Path], jobs: int) -> Side:
                    api.reset()
                    cpu = children_cpu()
                    walls = [run(config, jobs) for config in configs]
                    seen = api.stats()["openai"]
                    return Side(sum(walls), seen["requests"], seen["max_in_flight"],
                                children_cpu() - cpu, walls)  # fmt: skip

                # Not timed: fills the bytecode cache and the page cache for both sides.
                run(write_config("warm-up", ["warm-up"], "bench-api-warm-up"), 1)
                serve_cpu_before = process_cpu(serve.pid)
                trials: list[dict[str, Any]] = []
                startups: list[float] = []
                unequal: list[str] = []
                for number in range(rounds):
                    for n in API_BOUND_MODELS:
                        signatures = [f"api-{i + 1}" for i in range(n)]
                        trial = f"r{number}-n{n}"
                        solo_configs = [
                            write_config(f"{trial}-solo-{s}", [s], f"bench-api-{trial}-solo")
                            for s in signatures
                        ]
                        jobs_config = write_config(f"{trial}-jobs", signatures,
                                                   f"bench-api-{trial}-jobs")  # fmt: skip
                        if number % 2 == 0:
                            solo = side(solo_configs, 1)
                            jobs = side([jobs_config], n)
                        else:
                            jobs = side([jobs_config], n)
                            solo = side(solo_configs, 1)
                        expected = n * API_BOUND_DAYS * REQUESTS_A_DAY
                        if solo.requests != expected or jobs.requests != expected:
                            raise BenchError(
                                f"{trial}: the stand-in saw {solo.requests} requests from the "
                                f"solo runs and {jobs.requests} from --jobs {n}, not {expected}"
                            )
                        for s in signatures:
                            paths = [
                                data / "agent_data" / f"bench-api-{trial}-{kind}" / s
                                / "position" / "position.jsonl"
                                for kind in ("solo", "jobs")
                            ]  # fmt: skip
                            if paths[0].read_bytes() != paths[1].read_bytes():
                                unequal.append(f"{trial} {s}")
                        trials.append({"round": number, "n": n, "solo": asdict(solo),
                                       "jobs": asdict(jobs)})  # fmt: skip
                        log.info(
                            "  N=%d: solo %.2f s, --jobs %.2f s, speed-up %.2f (floor %.2f s, "
                            "%d in flight at most)", n, solo.seconds, jobs.seconds,
                            speedup(solo.seconds, jobs.seconds),
                            model_floor(jobs.requests, DELAY, n), jobs.max_in_flight,
                        )  # fmt: skip
                    # The start-up floor: the last solo config again, every day already done.
                    startups.append(run(solo_configs[-1], 1))
                serve_cpu = process_cpu(serve.pid)
        if unequal:
            raise BenchError(f"books of --jobs runs differ from their solo runs: {unequal}")
        self._api_bound_figures(trials, startups)
        self.details["api_bound"] = {
            "delay_seconds": DELAY,
            "days": API_BOUND_DAYS,
            "first_day": dates[-API_BOUND_DAYS],
            "last_day": end,
            "requests_a_model_day": REQUESTS_A_DAY,
            "rounds": rounds,
            "trials": trials,
            "startup_seconds": startups,
            "serve_cpu_seconds": (
                round(serve_cpu - serve_cpu_before, 2)
                if serve_cpu is not None and serve_cpu_before is not None
                else None
            ),
            "books_equal_to_solo": True,
        }
        self.notes.append(
            f"API-bound models: each --jobs run's books equal their solo runs' byte for byte "
            f"({rounds} round(s) of N = {', '.join(map(str, API_BOUND_MODELS))}); the model "
            f"stand-in answered each request after {DELAY * 1000:.0f} ms"
        )

    def _api_bound_figures(self, trials: list[dict[str, Any]], startups: list[float]) -> None:
        where = "on the host (`ai-trader serve` and the model stand-in as local processes)"
        days = f"{API_BOUND_DAYS} days x {REQUESTS_A_DAY} model requests"
        self.add(
            Figure.of(
                "api_bound_startup", "ai-trader run, every day done (start-up, host)", "s",
                startups, f"`ai-trader run` of a one-model config whose days are all done, "
                f"{where}: Python start, imports, MCP sessions and exit; once a round",
            )
        )  # fmt: skip
        for n in API_BOUND_MODELS:
            mine = [t for t in trials if t["n"] == n]
            solo = [t["solo"]["seconds"] for t in mine]
            jobs = [t["jobs"]["seconds"] for t in mine]
            floors = [model_floor(t["jobs"]["requests"], DELAY, n) for t in mine]
            label = f"{n} API-bound models"
            self.add(
                Figure.of(
                    f"api_bound_{n}_solo", f"{label}: {n} solo runs in a row", "s", solo,
                    f"the wall time of {n} `ai-trader run` (one model each, distinct "
                    f"signatures, {days} a day at {DELAY * 1000:.0f} ms each) one after "
                    f"another, {where}",
                )
            )  # fmt: skip
            self.add(
                Figure.of(
                    f"api_bound_{n}_jobs", f"{label}: one run --jobs {n}", "s", jobs,
                    f"the wall time of one `ai-trader run --jobs {n}` of the same {n} models, "
                    f"{where}",
                )
            )  # fmt: skip
            self.add(
                Figure.of(
                    f"api_bound_{n}_speedup", f"{label}: speed-up (solo / --jobs; ideal {n})",
                    "x", [speedup(s, j) for s, j in zip(solo, jobs, strict=True)],
                    f"solo wall time over --jobs wall time, per round; the aim is at least "
                    f"{SPEEDUP_AIM:g} x {n}", aim=SPEEDUP_AIM * n, at_least=True,
                )
            )  # fmt: skip
            self.add(
                Figure.of(
                    f"api_bound_{n}_floor", f"{label}: --jobs floor (requests x 200 ms / {n})",
                    "s", floors, "the model stand-in's own share of the --jobs run: its "
                    f"requests x {DELAY:g} s / {n}, the least a run that always has {n} "
                    "requests in flight can take",
                )
            )  # fmt: skip
            self.add(
                Figure.of(
                    f"api_bound_{n}_requests", f"{label}: model requests of --jobs {n}",
                    "requests", [t["jobs"]["requests"] for t in mine],
                    "chat-completions requests the stand-in answered during the --jobs run "
                    "(the solo runs made as many)",
                )
            )  # fmt: skip
            self.add(
                Figure.of(
                    f"api_bound_{n}_in_flight", f"{label}: most requests in flight, --jobs {n}",
                    "requests", [t["jobs"]["max_in_flight"] for t in mine],
                    "the most chat requests the stand-in was answering at once during the "
                    f"--jobs run: {n} when every model waits on it together",
                )
            )  # fmt: skip
