"""The process list inside a running container, as the kernel reports it in /proc.

A small reader runs in the container (`docker exec`, as nobody) and returns, for each
process, its parent, its real/effective/saved/filesystem uids and gids, its capability
sets and its no-new-privileges flag. The run's processes are Docker's init (PID 1) and
its descendants; `docker exec` processes (the healthcheck, the reader itself) have no
parent in the container and are kept apart.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass

# Capability numbers from linux/capability.h, for the ones the tests name.
CAPABILITIES = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "KILL": 5, "SETGID": 6, "SETUID": 7}

_READER = r"""
import json, os
found = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = [part.decode(errors="replace") for part in f.read().split(b"\0") if part]
    except OSError:
        continue  # it ended while we looked
    found[pid] = {
        "ppid": int(status["PPid"]), "name": status["Name"], "cmdline": cmdline,
        "uids": [int(n) for n in status["Uid"].split()],
        "gids": [int(n) for n in status["Gid"].split()],
        "cap_prm": int(status["CapPrm"], 16), "cap_eff": int(status["CapEff"], 16),
        "cap_bnd": int(status["CapBnd"], 16), "no_new_privs": status.get("NoNewPrivs") == "1",
    }
print(json.dumps(found))
"""


@dataclass(frozen=True)
class Process:
    pid: int
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
    def command(self) -> str:
        return " ".join(self.cmdline) or self.name


def capability_mask(*names: str) -> int:
    return sum(1 << CAPABILITIES[name] for name in names)


def processes(container_id: str) -> dict[int, Process]:
    """Every process in the container, by its PID in the container."""
    done = subprocess.run(
        ["docker", "exec", "--user", "65534:65534", container_id, "python", "-c", _READER],
        capture_output=True,
        text=True,
        check=True,
    )
    return {
        int(pid): Process(
            pid=int(pid),
            ppid=row["ppid"],
            name=row["name"],
            cmdline=tuple(row["cmdline"]),
            uids=tuple(row["uids"]),
            gids=tuple(row["gids"]),
            cap_prm=row["cap_prm"],
            cap_eff=row["cap_eff"],
            cap_bnd=row["cap_bnd"],
            no_new_privs=row["no_new_privs"],
        )
        for pid, row in json.loads(done.stdout).items()
    }


def run_tree(found: dict[int, Process]) -> tuple[Process, list[Process]]:
    """Docker's init (PID 1), and every process descended from it."""
    init = found[1]
    tree: list[Process] = []
    parents = {1}
    while more := [p for p in found.values() if p.ppid in parents and p.pid not in parents]:
        tree += more
        parents.update(p.pid for p in more)
    return init, sorted(tree, key=lambda p: p.pid)


def describe(found: dict[int, Process]) -> str:
    """A ps-like listing for assertion messages."""
    return "\n".join(
        f"{p.pid:>6} {p.ppid:>6} uid={p.uids} gid={p.gids} eff={p.cap_eff:#x} {p.command}"
        for p in sorted(found.values(), key=lambda p: p.pid)
    )
