"""The image for another architecture, built on this host under QEMU and checked against
the host's own: `nox -s multiarch` runs this file once the base, the wheels and QEMU are in
place (scripts/bootstrap.py).

The rules:
- The foreign build has a build context of its own: the files git knows (tracked, and
  untracked ones it does not ignore), hard-linked into a staging folder, with the foreign
  wheelhouse as its wheelhouse/ and the foreign debug tools as its debugtools/. The
  Dockerfile and .dockerignore stay as they are, and the host's own wheelhouse and debug
  tools are never read or written.
- The image must say what it is (Architecture in its config) and be it (`uname -m` in a
  container of it).
- Both images run the offline default as docker-compose.yml runs it (`compose run` of
  the ai-trader service: its command, root start, init, read-only root, capabilities),
  one after the other, each with fresh data and logs folders and no published port.
- The summary is the table the run prints on stdout, from its header line to the end of
  the table. The two must match byte for byte; otherwise both are shown and the exit
  status is 1. A run that fails or prints no summary also exits 1.
- Times are reported beside the host's own, with the load average; they are never judged.

The pure parts (the command lines, the context's files, the summary) are unit-tested in
tests/unit/test_multiarch.py without Docker.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICE = "ai-trader"  # the service of docker-compose.yml that runs the offline default
SUMMARY_HEADER = "signature "  # how the summary's header line starts (agent/runner.py)
# Debian's and Docker's architecture names against the kernel's (`uname -m`).
MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}
READY_TIMEOUT = 600  # seconds the entrypoint waits for the services, under QEMU too


def foreign_image(image: str, arch: str) -> str:
    """The foreign image's name: the host image's tag with -ARCH (ai-trader:dev-arm64)."""
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        name, tag = image, "latest"
    return f"{name}:{tag}-{arch}"


def split_image(image: str) -> tuple[str, str]:
    """NAME and TAG, as docker-compose.yml takes them (AI_TRADER_IMAGE, AI_TRADER_TAG)."""
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:
        return image, "latest"
    return name, tag


# The folders of the host's own packages, which the foreign ones replace in the context.
PACKAGE_FOLDERS = ("wheelhouse/", "debugtools/")


def context_files(
    known: Iterable[str], wheels: Iterable[str], debugtools: Iterable[str] = ()
) -> dict[str, str]:
    """The foreign build's context: where each file goes (relative) -> where it comes from.

    `known` are the checkout's files as git lists them, relative to its root; `wheels` the
    foreign wheelhouse's files and `debugtools` the foreign debug stage's wheels and .deb
    files (their full paths). Everything under the host's wheelhouse/ and debugtools/ is
    left out and the foreign files take their place: the classic builder builds the debug
    stage in every build, and without them it would go to the network for its packages.
    """
    files = {path: path for path in known if path and not path.startswith(PACKAGE_FOLDERS)}
    files.update({f"wheelhouse/{Path(wheel).name}": wheel for wheel in wheels})
    files.update({f"debugtools/{Path(tool).name}": tool for tool in debugtools})
    return dict(sorted(files.items()))


def build_command(
    context: Path, image: str, base: str, platform: str, build_args: Sequence[str] = ()
) -> list[str]:  # fmt: skip
    """`docker build` for `platform` from `base` (the classic builder takes --platform)."""
    args = [arg for pair in (("BASE_IMAGE", base), *(a.split("=", 1) for a in build_args))
            for arg in ("--build-arg", "=".join(pair))]  # fmt: skip
    return ["docker", "build", "--platform", platform, *args, "--tag", image, str(context)]


def uname_command(image: str, platform: str) -> list[str]:
    """What a container of `image` says its machine is."""
    return ["docker", "run", "--rm", "--platform", platform, "--entrypoint", "uname", image, "-m"]


def compose_run_command(compose: str, project: str) -> list[str]:
    """The offline default as docker-compose.yml runs it: its service, its command."""
    return [compose, "--project-name", project, "--file", str(ROOT / "docker-compose.yml"),
            "run", "--rm", "--no-deps", "-T", SERVICE]  # fmt: skip


def compose_env(image: str, data: Path, logs: Path) -> dict[str, str]:
    """The settings of docker-compose.yml that make the run this image's, in its own folders
    (`compose run` publishes no port). Emulated, the four services take far longer than
    the default 30 s to answer, so both runs wait up to READY_TIMEOUT (no figure depends
    on it)."""
    name, tag = split_image(image)
    return {"AI_TRADER_IMAGE": name, "AI_TRADER_TAG": tag, "AI_TRADER_DATA_DIR": str(data),
            "AI_TRADER_LOGS_DIR": str(logs), "READY_TIMEOUT": str(READY_TIMEOUT)}  # fmt: skip


def summary(stdout: str) -> str | None:
    """The last summary table on stdout, None when there is none.

    The table is its header line and the rows under it: agent/runner.py pads every row to
    the header's columns, so a row is never shorter than the header, and the table ends
    at the first line that is blank or shorter.
    """
    lines = stdout.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith(SUMMARY_HEADER)]
    if not starts:
        return None
    header = lines[starts[-1]]
    table = [header]
    for line in lines[starts[-1] + 1 :]:
        if not line.strip() or len(line) < len(header):
            break
        table.append(line)
    return "\n".join(table) + "\n"


# --- on this host -----------------------------------------------------------------------------


@dataclass
class Timed:
    seconds: float
    done: subprocess.CompletedProcess[str]


def run(command: Sequence[str], env: dict[str, str] | None = None, keep: bool = True) -> Timed:
    """Run a command, its stderr shown as it goes, its stdout kept (else shown too)."""
    print(f"multiarch: $ {' '.join(command)}", file=sys.stderr, flush=True)
    started = time.monotonic()
    done = subprocess.run(
        command, stdout=subprocess.PIPE if keep else None, text=True,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    return Timed(time.monotonic() - started, done)


def fail(message: str) -> None:
    print(f"multiarch: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def git_files() -> list[str]:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return [path for path in done.stdout.split("\0") if (ROOT / path).is_file()]


def stage_context(folder: Path, wheelhouse: Path, debugtools: Path) -> int:
    """The foreign build's context in `folder` (made anew): hard links where the file
    system allows, copies elsewhere. Returns the number of files."""
    wheels = sorted(str(w) for w in wheelhouse.glob("*.whl"))
    if not wheels:
        fail(f"no wheels in {wheelhouse}")
    tools = sorted(str(p) for p in debugtools.iterdir() if p.suffix in (".whl", ".deb"))
    if not tools:
        fail(f"no wheels or .deb files in {debugtools}")
    shutil.rmtree(folder, ignore_errors=True)
    files = context_files(git_files(), wheels, tools)
    for target, source in files.items():
        path = folder / target
        path.parent.mkdir(parents=True, exist_ok=True)
        origin = Path(source) if Path(source).is_absolute() else ROOT / source
        try:
            os.link(origin, path)
        except OSError:
            shutil.copy2(origin, path)
    return len(files)


def offline_run(compose: str, image: str, work: Path, label: str) -> tuple[Timed, str]:
    """The offline default on `image` in fresh folders; its time and its summary."""
    data, logs = work / f"data-{label}", work / f"logs-{label}"
    for folder in (data, logs):
        shutil.rmtree(folder, ignore_errors=True)
        # Made here, they are the caller's, and the run writes as the caller.
        folder.mkdir(parents=True)
    project = f"multiarch-{label}-{os.getpid()}"
    env = compose_env(image, data, logs)
    try:
        timed = run(compose_run_command(compose, project), env)
    finally:
        subprocess.run([compose, "--project-name", project, "--file",
                        str(ROOT / "docker-compose.yml"), "down", "--remove-orphans"],
                       env={**os.environ, **env}, capture_output=True)  # fmt: skip
    if timed.done.returncode != 0:
        print(timed.done.stdout[-3000:], file=sys.stderr)
        fail(f"the offline default on {image} exited {timed.done.returncode}")
    found = summary(timed.done.stdout)
    if found is None:
        print(timed.done.stdout[-3000:], file=sys.stderr)
        fail(f"the offline default on {image} printed no summary")
    return timed, str(found)


def inspect(image: str, template: str) -> str:
    done = subprocess.run(["docker", "image", "inspect", "--format", template, image],
                          capture_output=True, text=True)  # fmt: skip
    if done.returncode != 0:
        fail(f"{image}: {done.stderr.strip()}")
    return done.stdout.strip()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="multiarch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--image", required=True, help="the host's own image, built already")
    parser.add_argument("--arch", default="arm64", choices=sorted(MACHINES))
    parser.add_argument("--base", required=True, help="the foreign build's base image")
    parser.add_argument("--wheelhouse", type=Path, required=True, help="the foreign wheels")
    parser.add_argument("--debugtools", type=Path, required=True,
                        help="the foreign debug stage's wheels and .deb files")  # fmt: skip
    parser.add_argument("--compose", required=True, help="the compose v2 binary")
    parser.add_argument("--work", type=Path, required=True, help="a folder of this tool's own")
    parser.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    platform, foreign = f"linux/{args.arch}", foreign_image(args.image, args.arch)
    figures: list[tuple[str, str]] = []

    started = time.monotonic()
    count = stage_context(args.work / "context", args.wheelhouse, args.debugtools)
    figures.append(("build context staged", f"{count} files, {time.monotonic() - started:.1f} s"))
    built = run(build_command(args.work / "context", foreign, args.base, platform,
                              args.build_arg), keep=False)  # fmt: skip
    if built.done.returncode != 0:
        fail(f"docker build for {platform} exited {built.done.returncode}")
    figures.append((f"build {foreign} under QEMU", f"{built.seconds:.1f} s"))

    recorded = inspect(foreign, "{{.Os}}/{{.Architecture}}")
    machine = run(uname_command(foreign, platform)).done.stdout.strip()
    figures.append(("image config says", recorded))
    figures.append(("uname -m inside", machine))
    size = int(inspect(foreign, "{{.Size}}"))
    figures.append((f"{foreign} size", f"{size / 1e6:.1f} MB"))
    figures.append((f"{args.image} size", f"{int(inspect(args.image, '{{.Size}}')) / 1e6:.1f} MB"))
    if recorded != platform:
        fail(f"{foreign} records {recorded}, not {platform}")
    if machine != MACHINES[args.arch]:
        fail(f"a container of {foreign} runs on {machine!r}, not {MACHINES[args.arch]}")

    # The host's own first: a failure there is not the foreign image's.
    native, native_summary = offline_run(args.compose, args.image, args.work, "native")
    figures.append((f"offline default on {args.image}", f"{native.seconds:.1f} s"))
    emulated, emulated_summary = offline_run(args.compose, foreign, args.work, args.arch)
    figures.append((f"offline default on {foreign} (QEMU)", f"{emulated.seconds:.1f} s"))
    figures.append(("load average (1, 5, 15 min)", " ".join(f"{n:.2f}" for n in os.getloadavg())))

    print(f"\nsummary of both runs ({args.image}, {foreign}):\n{native_summary}")
    width = max(len(name) for name, _ in figures)
    print("\n".join(f"{name:<{width}}  {value}" for name, value in figures))
    if emulated_summary != native_summary:
        print(f"\nbut {foreign} printed:\n{emulated_summary}")
        fail(f"the summaries differ: {platform} is not the same run")
    print(f"\nmultiarch: the {platform} image prints the same summary, byte for byte")
    return 0


if __name__ == "__main__":
    sys.exit(main())
