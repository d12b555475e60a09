"""Run the bench: ``python -m bench [--runs N] [--image NAME:TAG] [--base NAME] [--out DIR]
[--skip-build] [--only api-bound]`` (``nox -s bench -- ...`` passes the options through).

It prints the load average and two tables: first each timed figure against Docker's own
floor measured in the same run (excess and ratio), then the absolute figures. It writes the
same figures, with the machine they were measured on and the raw values, to
``OUT/bench-<UTC timestamp>.json`` and ``OUT/latest.json``. It never fails on a time (the
machines are shared and noisy): it exits 1 only when a measurement could not be made, 2 when
the image is missing. Every container, image and folder it makes is removed on the way out,
on error and on Ctrl-C too.

``--only api-bound`` measures API-bound models on the host alone (`apibound.py`): no image,
no engine; it writes ``OUT/api-bound-<UTC timestamp>.json`` and ``OUT/api-bound-latest.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import facts
from bench import arm64, report, variants
from bench.apibound import ApiBoundFigures
from bench.recorder import Recorder, host_machine
from bench.timings import Bench
from integration import engine

log = logging.getLogger("bench")


def choose_base() -> str:
    """BASE_IMAGE, else the default base when present locally, else the local base.

    `nox -s bench` passes the build's own choice (choose_base, scripts/bootstrap.py) instead."""
    wanted = os.environ.get("BASE_IMAGE")
    if wanted:
        return wanted
    return facts.DEFAULT_BASE if engine.image_exists(facts.DEFAULT_BASE) else facts.LOCAL_BASE


def measure(bench: Bench) -> dict[str, Any]:
    log.info("bench %s: image %s, base %s, %d run(s)", bench.run_id, bench.image, bench.base,
             bench.runs)  # fmt: skip
    started = datetime.now(UTC)
    machine = bench.machine()
    context: Path | None = None
    finished: Path | None = None

    def context_section() -> None:
        nonlocal context
        context = bench.measure_context()

    def full_section() -> None:
        nonlocal finished
        finished = bench.measure_full_runs(prices)

    bench.section("image", bench.measure_image)
    bench.section("build context", context_section)
    prices = bench.prices_template()
    bench.section("fetch", bench.measure_fetch)
    bench.section("full runs: throughput and memory", full_section)
    bench.section("hourly runs: slots a second", bench.measure_hourly_runs)
    if finished is not None:
        bench.section(
            "start to ready, full entrypoint (and the floor)",
            lambda: bench.measure_start_full(finished),
        )
    bench.section(
        "arm64 image under QEMU: size and start to ready (when `nox -s multiarch` built it)",
        lambda: arm64.measure(bench, finished),
    )
    bench.section("stop, full entrypoint (and the floor)", lambda: bench.measure_stop_full(prices))
    bench.section(
        "services only: start, latency from the host and inside, stop (and the floor)",
        lambda: bench.measure_services(prices),
    )
    bench.section(
        "split topology: start to ready and tool calls, beside the single container",
        lambda: bench.measure_split(prices),
    )
    bench.section(variants.SECTION, lambda: variants.measure_variants(bench, prices))
    bench.section("models in parallel, in the container", lambda: bench.measure_parallel(prices))
    bench.section(API_BOUND_SECTION, bench.measure_api_bound)
    bench.section("dashboard, 5,000 days and 4 models", bench.measure_dashboard)
    bench.add_floor_figures()
    # After the timed sections: the builds load both cores and would hide the neighbours.
    load_after = [round(v, 2) for v in os.getloadavg()]
    if bench.skip_build:
        bench.notes.append("builds skipped (--skip-build)")
    elif context is not None:
        bench.section("builds", lambda: bench.measure_builds(context))
    machine["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    return {
        "schema": 3,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "image": bench.image,
        "base": bench.base,
        "runs": bench.runs,
        "skip_build": bench.skip_build,
        "revision": facts.git_revision(),
        "machine": machine,
        "load": {
            "before": machine["load_average_at_start"],
            "during": [s for s in bench.load_during if s[0] != "builds"],
            "after": load_after,
            "after_builds": machine["load_average_at_end"],
        },
        "relative": [r.as_json() for r in report.ordered_relative(bench.relatives)],
        "figures": [f.as_json() for f in report.ordered(bench.figures)],
        "notes": bench.notes,
        "errors": bench.errors,
        "details": bench.details,
    }


# What `--only` can name, and the section each one is.
API_BOUND_SECTION = "API-bound models, on the host (a model API that answers in 200 ms)"
ONLY = ("api-bound",)


class HostBench(Recorder, ApiBoundFigures):
    """The host-only measurements, for `--only`: no image, no engine."""


def measure_only(bench: HostBench, only: str) -> dict[str, Any]:
    log.info("bench %s: --only %s, on the host, %d run(s)", bench.run_id, only, bench.runs)
    started = datetime.now(UTC)
    machine = host_machine()
    bench.section(API_BOUND_SECTION, bench.measure_api_bound)
    return {
        "schema": 3,
        "only": only,
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": bench.runs,
        "revision": facts.git_revision(),
        "machine": machine,
        "load": {
            "before": machine["load_average_at_start"],
            "during": bench.load_during,
            "after": [round(v, 2) for v in os.getloadavg()],
        },
        "figures": [f.as_json() for f in report.ordered(bench.figures)],
        "notes": bench.notes,
        "errors": bench.errors,
        "details": bench.details,
    }


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
    default_image = f"{facts.IMAGE}:dev"
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Measure the ai-trader image (size, builds, start, stop, latency, "
        "throughput, memory, fetch, models in parallel, the dashboard) against Docker's own "
        "floor in the same run; print the tables and write JSON. Never fails on a time.",
    )
    parser.add_argument("--runs", type=int, default=5, help="repetitions per figure (default 5)")
    parser.add_argument(
        "--image", default=default_image, help=f"default {default_image} (AI_TRADER_IMAGE:dev)"
    )
    parser.add_argument(
        "--base",
        default=None,
        help=f"the base image (default: BASE_IMAGE, else {facts.DEFAULT_BASE} if present, "
        f"else {facts.LOCAL_BASE})",
    )
    parser.add_argument("--out", default=str(facts.ROOT / ".bench"), help="default .bench/")
    parser.add_argument(
        "--skip-build", action="store_true", help="skip the cold build and rebuild timings"
    )
    parser.add_argument(
        "--only",
        choices=ONLY,
        help="run only this measurement: api-bound (API-bound models on the host; no image, "
        "no Docker engine)",
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
    if args.only:
        return main_only(args)
    if not engine.image_exists(args.image):
        print(f"bench: no image {args.image}; run `nox -s build` first", file=sys.stderr)
        return 2
    bench = Bench(args.image, args.base or choose_base(), args.runs, args.skip_build)
    with sigterm_as_interrupt():
        try:
            document = measure(bench)
        except KeyboardInterrupt:
            print("bench: interrupted; cleaning up", file=sys.stderr)
            return 130
        finally:
            bench.cleanup()
    report.print_report(
        report.ordered_relative(bench.relatives), report.ordered(bench.figures), document
    )
    stamp = datetime.fromisoformat(document["started"]).strftime("%Y%m%dT%H%M%SZ")
    written = report.write(document, Path(args.out), stamp)
    print(f"written: {written} and {written.parent / 'latest.json'}")
    return 1 if bench.errors else 0


def main_only(args: argparse.Namespace) -> int:
    bench = HostBench(args.runs)
    with sigterm_as_interrupt():
        try:
            document = measure_only(bench, args.only)
        except KeyboardInterrupt:
            print("bench: interrupted; cleaning up", file=sys.stderr)
            return 130
        finally:
            bench.cleanup()
    report.print_host_report(report.ordered(bench.figures), document)
    stamp = datetime.fromisoformat(document["started"]).strftime("%Y%m%dT%H%M%SZ")
    written = report.write(document, Path(args.out), stamp, prefix=args.only)
    print(f"written: {written} and {written.parent / f'{args.only}-latest.json'}")
    return 1 if bench.errors else 0


if __name__ == "__main__":
    sys.exit(main())
