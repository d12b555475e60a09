"""The base image, measured: each variant of the image (docker/variants/) beside today's
image, in the same run.

For each variant: its image (IMAGE-NAME:TAG, e.g. ai-trader-distroless:dev, when it is
already built; otherwise built here from the repository with the build's own arguments and
removed afterwards), its size beside today's image and how much smaller it is, and the
four services' start to ready in both. A start is `python -m ai_trader serve` in each image
(the same command, the image's ENV), from the engine's `create` event to the last of the
four services' first MCP answer from the host; rounds alternate which image starts first,
so both meet the same neighbours. The full entrypoint is bash, which a distroless variant
does not have, so only the services are compared. Never fails on a time; "met?" on the
share smaller is the adoption rule's size half (docs/DOCKER.md, "The base image, measured").
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import docker

import facts
from ai_trader.settings import DEFAULT_PORTS
from bench.images import LABEL
from bench.probes import BenchError, cgroup_cpu_seconds, first_answers
from bench.report import MB, Figure
from integration import engine

if TYPE_CHECKING:
    from bench.timings import Bench

log = logging.getLogger("bench")

# The adoption rule's size half: a variant must be at least this much smaller.
ADOPTION_SHARE = 30.0  # percent
READY_LIMIT = 120.0  # a guard against a hang, not a measure
ROUNDS = 3  # at most: each round starts both images once
SERVE = ["python", "-m", "ai_trader", "serve"]
SECTION = "base image variants: size and start to ready, beside today's image"


@dataclass(frozen=True)
class Variant:
    name: str
    dockerfile: str  # relative to the repository


VARIANTS = (Variant("distroless", "docker/variants/Dockerfile.distroless"),)


def variant_image(image: str, variant: str) -> str:
    """The variant's image name beside IMAGE: NAME:TAG -> NAME-VARIANT:TAG (the tag stays;
    a registry host's port is not mistaken for a tag)."""
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        return f"{image}-{variant}"
    return f"{name}-{variant}:{tag}"


def smaller_by(size: float, reference: float) -> float:
    """How much smaller SIZE is than REFERENCE, in percent (negative when larger)."""
    if reference <= 0:
        raise BenchError(f"a reference image size of {reference} bytes")
    return (1 - size / reference) * 100


def round_order(run: int, names: tuple[str, str]) -> tuple[str, str]:
    """Which image starts first in round RUN: the two take turns."""
    return names if run % 2 == 0 else (names[1], names[0])


def serve_start(bench: Bench, image: str, kind: str, data: Path) -> tuple[float, float | None]:
    """(start to ready in seconds, the container's CPU seconds at ready) of one `serve`."""
    options: dict[str, Any] = {
        "detach": True,
        "init": True,
        "name": f"{LABEL}-{bench.run_id}-{kind}",
        "labels": {LABEL: bench.run_id},
        "volumes": {str(data): {"bind": "/app/data", "mode": "rw"}},
        "ports": {f"{p}/tcp": ("127.0.0.1", None) for p in DEFAULT_PORTS.values()},
    }
    if bench.user:
        options["user"] = bench.user
    since = time.time()
    box = bench.client.containers.run(image, SERVE[1:], entrypoint=SERVE[:1], **options)
    try:
        ready = asyncio.run(first_answers(bench.urls(box), READY_LIMIT))
        cpu = cgroup_cpu_seconds(box.id)
        created = [e.time for e in engine.container_events(box.id, since) if e.action == "create"]
        if not created:
            raise BenchError(f"the engine reported no create event for {box.name}")
        return max(ready.values()) - created[0], cpu
    except BenchError as exc:
        tail = "\n".join(line for _, line in engine.log_lines(box)[-15:])
        raise BenchError(f"{image}: {exc}; last log lines:\n{tail}") from None
    finally:
        bench.remove(box)


def variant_ready(bench: Bench, variant: Variant) -> str:
    """The variant's image: the one already built, else one built here (removed after)."""
    tag = variant_image(bench.image, variant.name)
    if engine.image_exists(tag):
        bench.notes.append(f"variant {variant.name}: measured the image {tag} as built")
        return tag
    tag = f"{LABEL}:{bench.run_id}-{variant.name}"
    log.info("  building the %s variant (%s)", variant.name, variant.dockerfile)
    built = bench.build(facts.ROOT, tag, "--file", str(facts.ROOT / variant.dockerfile))
    bench.tags.append(tag)
    bench.details.setdefault("variants", {})[f"{variant.name}_build_seconds"] = round(
        built.seconds, 3
    )
    bench.notes.append(f"variant {variant.name}: built here from {variant.dockerfile}")
    return tag


def measure_variants(bench: Bench, prices: Path) -> None:
    reference = engine.image(bench.image).attrs["Size"]
    details: dict[str, Any] = bench.details.setdefault("variants", {})
    details["today"] = {"image": bench.image, "bytes": reference}
    for variant in VARIANTS:
        try:
            image = variant_ready(bench, variant)
        except (BenchError, docker.errors.APIError) as exc:
            bench.errors.append(f"variant {variant.name}: not built: {exc}")
            continue
        size = engine.image(image).attrs["Size"]
        share = smaller_by(size, reference)
        details[variant.name] = {"image": image, "bytes": size, "smaller_percent": round(share, 1)}
        how = "the engine's image Size (uncompressed, as `docker images` shows)"
        bench.add(
            Figure.of(
                f"variant_{variant.name}_size",
                f"image size: {variant.name}",
                "MB",
                [size / MB],
                how,
            )
        )
        bench.add(
            Figure.of(
                f"variant_{variant.name}_smaller",
                f"{variant.name}: smaller than today's image",
                "%",
                [share],
                f"1 - its size / the size of {bench.image}, the same run; the adoption rule "
                f"asks for at least {ADOPTION_SHARE:g}%",
                aim=ADOPTION_SHARE,
                at_least=True,
            )
        )
        seconds: dict[str, list[float]] = {"today": [], variant.name: []}
        cpus: dict[str, list[float]] = {"today": [], variant.name: []}
        images = {"today": bench.image, variant.name: image}
        for run in range(min(bench.runs, ROUNDS)):
            data = bench.copy_of(prices, f"variant-{variant.name}-{run}")
            for side in round_order(run, ("today", variant.name)):
                took, cpu = serve_start(bench, images[side], f"variant-{side}-{run}", data)
                seconds[side].append(took)
                if cpu is not None:
                    cpus[side].append(cpu)
        how = (
            "`python -m ai_trader serve` in each image (its ENV; the data folder mounted): "
            "the engine's `create` event until all four services have answered an MCP "
            "initialize from the host; rounds alternate which image starts first"
        )
        for side, label in (("today", "today's image"), (variant.name, variant.name)):
            key = f"variant_{variant.name}"
            bench.add(
                Figure.of(
                    f"{key}_ready_{side}", f"start -> ready, services: {label}", "s",
                    seconds[side], how,
                )
            )  # fmt: skip
            if cpus[side]:
                bench.add(
                    Figure.of(
                        f"{key}_cpu_{side}", f"start -> ready, container CPU: {label}", "s",
                        cpus[side], "the container's cgroup CPU seconds at ready",
                    )
                )  # fmt: skip
        details[variant.name]["ready_seconds"] = {
            side: [round(v, 3) for v in values] for side, values in seconds.items()
        }
    bench.notes.append(
        "variants: the full entrypoint is bash and a distroless image has none, so only "
        "`serve` is compared; load average now " + ", ".join(f"{v:.2f}" for v in os.getloadavg())
    )
