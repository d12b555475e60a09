"""Figures about the image and its builds: sizes, layers, the build context, cold build
and rebuild.

`docker build` stays a CLI call here on purpose: the bench times the build users run (the
SDK would tar the context itself, with its own .dockerignore matcher), and the classic
builder's step lines are what show a cached layer. The same goes for the build-context
probe, which must apply .dockerignore exactly as `docker build` does.
"""

from __future__ import annotations

import io
import logging
import re
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container

import facts
from bench.probes import BenchError
from bench.report import MB, Figure
from integration import engine

ROOT = facts.ROOT
LABEL = "ai-trader-bench"

log = logging.getLogger("bench")


@dataclass
class Build:
    seconds: float
    steps: list[dict[str, Any]]


def docker_cli(
    *args: str, timeout: float = 600, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(
            ["docker", *args], capture_output=True, text=True, timeout=timeout, input=stdin
        )
    except subprocess.TimeoutExpired:
        raise BenchError(
            f"docker {' '.join(args[:3])} ... did not finish in {timeout:g} s"
        ) from None
    if done.returncode != 0:
        raise BenchError(
            f"docker {' '.join(args[:3])} ... exited {done.returncode}: {done.stderr.strip()}"
        )
    return done


class ChunkReader(io.RawIOBase):
    """A file-like view of a byte-chunk stream (the SDK's `export()`), for tarfile."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""

    def readable(self) -> bool:
        return True

    def readinto(self, target: Any) -> int:
        while not self._buffer:
            try:
                self._buffer = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(target), len(self._buffer))
        target[:size] = self._buffer[:size]
        self._buffer = self._buffer[size:]
        return size


def same_layer(diff_id: str | None, reference: tuple[str, str] | None) -> bool:
    return diff_id is not None and reference is not None and reference[1] == diff_id


class ImageFigures:
    """The image and build measurements of `timings.Bench`, which supplies these."""

    client: docker.DockerClient
    image: str
    base: str
    runs: int
    run_id: str
    tags: list[str]
    images: list[str]
    details: dict[str, Any]
    notes: list[str]
    errors: list[str]

    def add(self, figure: Figure) -> None: ...
    def folder(self, name: str) -> Path: ...
    def remove(self, box: Container) -> None: ...

    def measure_image(self) -> None:
        image = engine.image(self.image)
        base = engine.image(self.base)
        image_layers = image.attrs["RootFS"]["Layers"]
        base_layers = base.attrs["RootFS"]["Layers"]
        on_base = image_layers[: len(base_layers)] == base_layers
        if not on_base:
            self.notes.append(
                f"{self.image} is not built on {self.base} (its layers do not start with the "
                "base's): the size over the base is not meaningful; pass --base"
            )
        layer_sizes = [
            {"bytes": int(row["Size"]), "created_by": row["CreatedBy"][:120]}
            for row in image.history()
            if int(row.get("Size") or 0) > 0
        ]
        self.details["image"] = {
            "name": self.image,
            "id": image.id,
            "created": image.attrs.get("Created"),
            "base": self.base,
            "base_id": base.id,
            "built_on_base": on_base,
            "labels": image.labels,
            "largest_layers": sorted(layer_sizes, key=lambda h: -h["bytes"])[:5],
        }
        size, base_size = image.attrs["Size"], base.attrs["Size"]
        how = "the engine's image Size (uncompressed, as `docker images` shows)"
        self.add(Figure.of("image_size", "image size", "MB", [size / MB], how))
        self.add(
            Figure.of(
                "added_over_base",
                "added over the base",
                "MB",
                [(size - base_size) / MB],
                f"image size minus the size of {self.base}",
            )
        )
        self.add(
            Figure.of(
                "layers", "layers (total)", "layers", [len(image_layers)],
                "RootFS.Layers of the image",
            )
        )  # fmt: skip
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
        """The build context as `docker build` sends it, extracted to a temp folder.

        A throwaway `FROM scratch` + `COPY . /ctx` build over the repository applies the real
        .dockerignore (the CLI's matcher, so: the CLI); its files are read back through the
        SDK's export of a container made from it.
        """
        tag = f"{LABEL}:{self.run_id}-context"
        done = docker_cli(
            "build", "--force-rm", "--file", "-", "--tag", tag, str(ROOT),
            stdin="FROM scratch\nCOPY . /ctx\n",
        )  # fmt: skip
        self.tags.append(tag)
        self.images.append(engine.image(tag).id)
        sent = re.search(r"Sending build context to Docker daemon\s+(\S+)", done.stdout)
        holder = self.client.containers.create(tag, "/none", labels={LABEL: self.run_id})
        target = self.folder("context")
        files = total = 0
        try:
            reader = io.BufferedReader(ChunkReader(holder.export()), buffer_size=1 << 20)
            with tarfile.open(fileobj=reader, mode="r|") as archive:
                for member in archive:
                    if not member.name.startswith("ctx/"):
                        continue
                    member.name = member.name.removeprefix("ctx/")
                    if member.isfile():
                        files += 1
                        total += member.size
                    archive.extract(member, target, filter="data")
        finally:
            self.remove(holder)
        shutil.copy2(ROOT / ".dockerignore", target / ".dockerignore")
        how = (
            "files after .dockerignore: a throwaway FROM scratch + COPY . build over the "
            "repository, read back through the engine's export"
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
                "--build-arg", f"VERSION={facts.project_version()}", "--build-arg",
                f"REVISION={facts.git_revision()}", "--build-arg", f"CREATED={created}",
                *facts.EXTRA_BUILD_ARGS, *extra, "--tag", tag, str(context)]  # fmt: skip
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
        self.images.append(engine.image(tag).id)
        return Build(seconds, steps)

    def venv_layer(self, image_name: str) -> tuple[str, str] | None:
        """(step image id, diff id) of the layer that copies the dependencies (/opt/venv).

        The classic builder keeps each step as an image: the history names the step that
        copied /opt/venv, and that step image's last RootFS layer is the layer itself.
        """
        for row in engine.image(image_name).history():
            if " in /opt/venv" in row["CreatedBy"] and str(row["Id"]).startswith("sha256:"):
                return row["Id"], engine.image(row["Id"]).attrs["RootFS"]["Layers"][-1]
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
