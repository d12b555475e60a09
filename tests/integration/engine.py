"""The Docker engine, asked through the Docker SDK for Python.

One client serves the container suite and the bench: ``docker.from_env(version="auto")``
negotiates the API version, so the same calls work against Engine 20.10 (API 1.41) and
current engines. Everything here asks the engine a question or acts on a container the
engine already runs; the user-facing commands a test imitates (`docker compose up`, `stop`,
`down`, `run`, `docker build`) stay CLI calls in the tests themselves.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import docker
import requests
from docker.models.containers import Container
from docker.models.images import Image

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


@functools.cache
def client() -> docker.DockerClient:
    # Long operations (an image export, a wait) need more than the SDK's 60 s default.
    return docker.from_env(version="auto", timeout=600)


def engine_version() -> dict[str, Any]:
    """The engine's own version facts (Version, ApiVersion, MinAPIVersion, ...)."""
    return client().version()


# --- containers ---------------------------------------------------------------------------


def container(ref: str) -> Container:
    return client().containers.get(ref)


def compose_containers(project: str, service: str | None = None) -> list[Container]:
    """Every container of a compose project (or of one of its services), running or not."""
    labels = [f"{PROJECT_LABEL}={project}"]
    if service is not None:
        labels.append(f"{SERVICE_LABEL}={service}")
    found = []
    for summary in client().api.containers(all=True, filters={"label": labels}):
        try:
            found.append(client().containers.get(summary["Id"]))
        except docker.errors.NotFound:
            continue  # removed between the listing and the look-up (compose at work)
    return found


def project_networks(project: str) -> list[Any]:
    return client().networks.list(filters={"label": f"{PROJECT_LABEL}={project}"})


def state(box: Container) -> dict[str, Any]:
    """The container's State as the engine reports it now (Status, ExitCode, Health, ...)."""
    box.reload()
    return box.attrs["State"]


def health(box: Container) -> str | None:
    """`starting`, `healthy`, `unhealthy`, or None for a container without a health check."""
    return (state(box).get("Health") or {}).get("Status")


def published(box: Container, container_port: int) -> tuple[str, int]:
    """(host address, host port) where the engine published a container's TCP port."""
    box.reload()
    bound = (box.attrs["NetworkSettings"]["Ports"] or {}).get(f"{container_port}/tcp") or []
    if not bound:
        raise LookupError(f"port {container_port} of {box.name} is not published")
    return bound[0]["HostIp"], int(bound[0]["HostPort"])


def wait_exit(box: Container, timeout: float) -> int:
    """Block until the container stops; its exit code. TimeoutError when it does not."""
    try:
        return int(box.wait(timeout=timeout)["StatusCode"])
    except requests.exceptions.ConnectionError:  # the SDK's read timeout
        raise TimeoutError(f"{box.name} did not exit within {timeout:g} s") from None


# --- logs ---------------------------------------------------------------------------------


def parse_time(stamp: str) -> float:
    """Epoch seconds of an engine timestamp (RFC 3339 with up to nanoseconds)."""
    stamp = stamp.strip().removesuffix("Z")
    whole, _, fraction = stamp.partition(".")
    moment = datetime.fromisoformat(whole).replace(tzinfo=UTC).timestamp()
    return moment + (float(f"0.{fraction}") if fraction else 0.0)


def logs_text(box: Container) -> str:
    """stdout and stderr as the engine stored them, in order."""
    return box.logs(stdout=True, stderr=True).decode("utf-8", "replace")


def stream_text(box: Container, stream: str) -> str:
    """One of the container's streams (``stdout`` or ``stderr``) as the engine stored it."""
    return box.logs(stdout=stream == "stdout", stderr=stream == "stderr").decode("utf-8", "replace")


def log_lines(box: Container) -> list[tuple[float, str]]:
    """Each log line with the time the engine received it (epoch seconds)."""
    raw = box.logs(stdout=True, stderr=True, timestamps=True).decode("utf-8", "replace")
    lines: list[tuple[float, str]] = []
    for line in raw.splitlines():
        stamp, _, text = line.partition(" ")
        try:
            lines.append((parse_time(stamp), text))
        except ValueError:
            continue
    lines.sort(key=lambda item: item[0])
    return lines


def first_time(lines: Iterable[tuple[float, str]], text: str) -> float | None:
    return next((moment for moment, line in lines if text in line), None)


class LogFollower(threading.Thread):
    """Follows a container's logs until it stops: they outlive a `compose down`."""

    def __init__(self, box: Container) -> None:
        super().__init__(name=f"logs-{box.name}", daemon=True)
        self.box = box
        self._chunks: list[bytes] = []
        self._lock = threading.Lock()

    def run(self) -> None:
        try:
            for chunk in self.box.logs(stdout=True, stderr=True, stream=True, follow=True):
                with self._lock:
                    self._chunks.append(chunk)
        except (docker.errors.APIError, requests.exceptions.RequestException):
            pass  # the container is gone: what was read so far is the record

    def text(self) -> str:
        with self._lock:
            return b"".join(self._chunks).decode("utf-8", "replace")


# --- processes inside a container ----------------------------------------------------------

# Reads /proc inside the container with the image's own Python (the image has no `ps`).
# A reader run inside the container (as nobody): for each process its parent, its real,
# effective, saved and filesystem uids and gids, its capability sets and no-new-privs.
_PROCESSES = r"""
import json, os
found = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    if int(pid) == os.getpid():
        continue
    try:
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = [part.decode(errors="replace") for part in f.read().split(b"\0") if part]
    except OSError:
        continue  # it ended while we looked
    found.append({
        "pid": int(pid), "ppid": int(status["PPid"]), "name": status["Name"],
        "cmdline": cmdline,
        "uids": [int(n) for n in status["Uid"].split()],
        "gids": [int(n) for n in status["Gid"].split()],
        "cap_prm": int(status["CapPrm"], 16), "cap_eff": int(status["CapEff"], 16),
        "cap_bnd": int(status["CapBnd"], 16), "no_new_privs": status.get("NoNewPrivs") == "1",
    })
print(json.dumps(found))
"""
# Capability numbers from linux/capability.h, for the ones the tests name.
CAPABILITIES = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "KILL": 5, "SETGID": 6, "SETUID": 7}


@dataclass(frozen=True)
class Process:
    pid: int  # in the container's PID namespace
    ppid: int
    name: str
    cmdline: tuple[str, ...]
    uids: tuple[int, ...]  # real, effective, saved, filesystem
    gids: tuple[int, ...]
    cap_prm: int
    cap_eff: int
    cap_bnd: int
    no_new_privs: bool

    @property
    def uid(self) -> int:
        return self.uids[0]

    @property
    def euid(self) -> int:
        return self.uids[1]

    @property
    def args(self) -> str:
        return " ".join(self.cmdline) or self.name


def exec_python(box: Container, code: str, user: str = "") -> str:
    """Run a Python snippet inside a running container; its stdout. Fails on a non-zero exit."""
    done = box.exec_run(["python", "-c", code], user=user, demux=True)
    out, err = (part.decode("utf-8", "replace") if part else "" for part in done.output)
    if done.exit_code != 0:
        raise RuntimeError(f"exec in {box.name} exited {done.exit_code}: {err.strip()}")
    return out


@dataclass(frozen=True)
class Executed:
    returncode: int
    stdout: str
    stderr: str


def execute(box: Container, command: list[str], user: str = "") -> Executed:
    """Run a command inside a running container (as `docker exec` does): its status and
    output, whatever the status."""
    done = box.exec_run(command, user=user, demux=True)
    out, err = (part.decode("utf-8", "replace") if part else "" for part in done.output)
    return Executed(done.exit_code, out, err)


def processes(box: Container) -> list[Process]:
    """Every process in the container (this probe itself left out), through `exec_run`."""
    rows = json.loads(exec_python(box, _PROCESSES, user="65534:65534"))
    return [
        Process(
            **{
                **row,
                "cmdline": tuple(row["cmdline"]),
                "uids": tuple(row["uids"]),
                "gids": tuple(row["gids"]),
            }
        )
        for row in rows
    ]


def run_tree(found: list[Process]) -> tuple[Process, list[Process]]:
    """Docker's init (PID 1), and every process descended from it: the run. (`docker exec`
    processes, the health check among them, have no parent in the container.)"""
    by_pid = {p.pid: p for p in found}
    tree: list[Process] = []
    parents = {1}
    while more := [p for p in found if p.ppid in parents and p.pid not in parents]:
        tree += more
        parents.update(p.pid for p in more)
    return by_pid[1], sorted(tree, key=lambda p: p.pid)


def capability_mask(*names: str) -> int:
    return sum(1 << CAPABILITIES[name] for name in names)


def describe(found: list[Process]) -> str:
    """A ps-like listing for assertion messages."""
    return "\n".join(
        f"{p.pid:>6} {p.ppid:>6} uid={p.uids} gid={p.gids} eff={p.cap_eff:#x} {p.args}"
        for p in sorted(found, key=lambda p: p.pid)
    )


def find_process(box: Container, command: str) -> Process:
    """The one process whose command line starts with ``command`` (tini's own line, which
    repeats its child's, does not)."""
    matches = [p for p in processes(box) if p.args.startswith(command)]
    if len(matches) != 1:
        raise LookupError(
            f"{len(matches)} processes in {box.name} start with {command!r}: {matches}"
        )
    return matches[0]


def signal_process(box: Container, pid: int, signum: int) -> None:
    """Send a signal to one process inside the container, as the container's own user."""
    since = time.time()
    done = execute(box, ["python", "-c", f"import os; os.kill({pid}, {signum})"])
    if done.returncode == 0:
        return
    # A signal that ends the container's main process ends the container, and the kernel
    # kills what is left in it, this exec too (137), often before it could exit by itself.
    # The engine may answer for the exec before it has marked the container dead: its
    # `die` event is what says the signal did its work.
    if done.returncode == 137:
        with contextlib.suppress(TimeoutError):
            wait_event(box.id, "die", since, timeout=30)
            return
    raise RuntimeError(
        f"signal {signum} to pid {pid} in {box.name}: exit {done.returncode}: {done.stderr.strip()}"
    )


# --- images -------------------------------------------------------------------------------


def image(name: str) -> Image:
    return client().images.get(name)


def image_exists(name: str) -> bool:
    try:
        image(name)
    except docker.errors.ImageNotFound:
        return False
    return True


def run_once(
    image_name: str,
    command: list[str] | None = None,
    *,
    entrypoint: list[str] | None = None,
    timeout: float = 300,
    **options: Any,
) -> tuple[int, str]:
    """`docker run --rm` through the SDK: (exit code, stdout and stderr)."""
    box = client().containers.create(image_name, command, entrypoint=entrypoint, **options)
    try:
        box.start()
        code = wait_exit(box, timeout)
        return code, logs_text(box)
    finally:
        box.remove(force=True)


def stream_contains(chunks: Iterable[bytes], needles: Iterable[bytes]) -> set[bytes]:
    """Which of ``needles`` occur anywhere in a byte stream (matches across chunks too)."""
    wanted = set(needles)
    keep = max((len(n) for n in wanted), default=1) - 1
    found: set[bytes] = set()
    tail = b""
    for chunk in chunks:
        window = tail + chunk
        found |= {n for n in wanted - found if n in window}
        tail = window[-keep:] if keep else b""
    return found


# --- events -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One engine event: what happened (``start``, ``die``, ``health_status: healthy``...)."""

    type: str
    action: str
    id: str
    time: float  # epoch seconds, from the engine's nanosecond stamp
    attributes: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Event:
        actor = raw.get("Actor") or {}
        nano = raw.get("timeNano") or int(raw.get("time", 0)) * 1_000_000_000
        return cls(
            raw.get("Type", ""),
            raw.get("Action", ""),
            actor.get("ID", raw.get("id", "")),
            nano / 1e9,
            dict(actor.get("Attributes") or {}),
        )


def _stamp(moment: float) -> str:
    return f"{moment:.9f}"


def events(since: float, until: float | None = None, **filters: str | list[str]) -> Iterator[Event]:
    """Engine events from ``since`` (epoch seconds), as a stream.

    With ``until`` in the past the stream is the record between the two times; with
    ``until`` in the future it ends by itself then, which bounds a wait.
    """
    stream = client().events(
        since=_stamp(since),
        until=_stamp(until if until is not None else time.time()),
        filters={"type": "container", **filters},
        decode=True,
    )
    try:
        for raw in stream:
            yield Event.of(raw)
    finally:
        stream.close()


def container_events(box_id: str, since: float, until: float | None = None) -> list[Event]:
    """The record of one container's events between two times."""
    return list(events(since, until, container=box_id))


def wait_event(box_id: str, action: str, since: float, timeout: float) -> Event:
    """The first event of a container whose action starts with ``action``, from ``since`` on.

    Events already past ``since`` count: the stream replays them first, so nothing that
    happened between the cause and this call is missed.
    """
    for event in events(since, time.time() + timeout, container=box_id):
        if event.action.startswith(action):
            return event
    raise TimeoutError(f"no {action!r} event from {box_id[:12]} within {timeout:g} s")


def exit_signal(record: Iterable[Event]) -> tuple[int | None, int | None]:
    """(first signal the engine sent, exit code at `die`) from a container's event record."""
    signal = code = None
    for event in record:
        if event.action == "kill" and signal is None:
            signal = int(event.attributes.get("signal", 0)) or None
        if event.action == "die" and code is None:
            code = int(event.attributes.get("exitCode", -1))
    return signal, code
