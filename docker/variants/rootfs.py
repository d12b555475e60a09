"""Gather the files a Python program needs into an empty root, the way distroless images are
made: the interpreter, its standard library, the shared libraries of every binary it will
load, CA certificates, time zones, and passwd/group entries for numeric users. No shell,
no package manager, no coreutils.

Usage (in a build stage on the base image, with its own python3, stdlib only):
    python3 rootfs.py OUT TREE...

OUT gets the files at their own paths. Each TREE (the venv, the app) is scanned for ELF
files whose libraries are added too; the TREEs themselves are not copied (the Dockerfile
copies them in layers of their own). The rules:
- A symlink is copied as a symlink, and every link and file on its way to the target too,
  so the interpreter's own links (python3 -> python3.13) and the venv's (bin/python ->
  /usr/bin/python3) still resolve.
- A shared library `ldd` cannot find stops the build with its name: an image that starts
  and then fails on its first import is worse than no image.
- Libraries glibc opens by name at run time (dlopen, invisible to ldd) are listed in
  DLOPENED and resolved through `ldconfig -p`.
- The standard library loses only its own tests, IDLE, the GUI modules (tkinter, turtle),
  ensurepip and the build config.
- Only the local Debian 13 base was tried here; the official slim image (Python under
  /usr/local) follows the same rules but could not be pulled to prove it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

ELF_MAGIC = b"\x7fELF"
# Opened by glibc with dlopen: libgcc_s for thread cancellation and unwinding.
DLOPENED = ("libgcc_s.so.1",)
# Top-level names of the standard library an application never imports.
STDLIB_DROPPED = frozenset(
    {"test", "idlelib", "tkinter", "turtledemo", "turtle.py", "ensurepip", "lib2to3"}
)
# Data files distroless images carry: the CA bundle (OpenSSL's default file on Debian,
# cert.pem, links to it), the OpenSSL config, the time zones, the name service config.
DATA_PATHS = (
    "/etc/ssl/certs/ca-certificates.crt",
    "/usr/lib/ssl/cert.pem",
    "/usr/lib/ssl/openssl.cnf",
    "/usr/share/zoneinfo",
    "/etc/nsswitch.conf",
)
# name, uid, home: root, the image's user (as in the main Dockerfile), nobody.
USERS = (("root", 0, "/root"), ("trader", 1000, "/app"), ("nobody", 65534, "/nonexistent"))

LDD_RESOLVED = re.compile(r"^\s*(\S+)\s+=>\s+(\S+)\s+\(0x[0-9a-f]+\)\s*$")
LDD_DIRECT = re.compile(r"^\s*(/\S+)\s+\(0x[0-9a-f]+\)\s*$")
LDD_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$")
LDCONFIG_LINE = re.compile(r"^\s*(\S+)\s+\(([^)]*)\)\s+=>\s+(\S+)\s*$")


class MissingLibrary(Exception):
    """A shared library that a binary needs is not on the base."""


def parse_ldd(output: str, binary: str) -> set[str]:
    """The paths of the libraries `ldd BINARY` printed, the dynamic loader included.

    The vDSO (no path) is the kernel's; a library `not found` raises MissingLibrary.
    """
    found: set[str] = set()
    for line in output.splitlines():
        if missing := LDD_NOT_FOUND.match(line):
            raise MissingLibrary(f"{binary} needs {missing.group(1)}, which is not on the base")
        if resolved := LDD_RESOLVED.match(line):
            found.add(resolved.group(2))
        elif direct := LDD_DIRECT.match(line):
            found.add(direct.group(1))
    return found


def parse_ldconfig(output: str, names: Iterable[str], arch: str = "x86-64") -> dict[str, str]:
    """soname -> path for each of NAMES in `ldconfig -p`, preferring this machine's word size.

    `arch` is the tag ldconfig prints for 64-bit libraries here (x86-64, AArch64); a 32-bit
    library of the same name is used only when there is no other.
    """
    wanted = set(names)
    best: dict[str, tuple[bool, str]] = {}
    for line in output.splitlines():
        match = LDCONFIG_LINE.match(line)
        if not match or match.group(1) not in wanted:
            continue
        name, tags, path = match.groups()
        native = arch in tags
        if name not in best or (native and not best[name][0]):
            best[name] = (native, path)
    missing = sorted(wanted - best.keys())
    if missing:
        raise MissingLibrary(f"not in the base's linker cache: {', '.join(missing)}")
    return {name: path for name, (_, path) in best.items()}


def stdlib_kept(relative: str) -> bool:
    """Whether a path under the standard library (relative to it) goes into the image."""
    top = relative.split("/", 1)[0]
    return top not in STDLIB_DROPPED and not top.startswith("config-")


def symlink_chain(path: str) -> list[str]:
    """PATH and every link and file met while resolving it, the final target last.

    Relative link targets are taken from the link's own folder; a folder on the way that is
    itself a link is resolved as well (its chain comes first).
    """
    chain: list[str] = []
    current = os.path.normpath(path)
    seen: set[str] = set()
    while current not in seen:
        seen.add(current)
        parent = os.path.dirname(current)
        real_parent = os.path.realpath(parent)
        if real_parent != parent:
            # Only the links on the way: the folder they lead to is made, not copied whole.
            links = [p for p in symlink_chain(parent) if os.path.islink(p)]
            chain.extend(p for p in links if p not in chain)
            current = os.path.join(real_parent, os.path.basename(current))
            continue
        chain.append(current)
        if not os.path.islink(current):
            return chain
        target = os.readlink(current)
        current = os.path.normpath(os.path.join(parent, target))
    raise MissingLibrary(f"a symlink loop at {path}")


def passwd_lines(users: Iterable[tuple[str, int, str]]) -> str:
    """/etc/passwd for numeric users with no shell and no password (each its own group)."""
    return "".join(
        f"{name}:x:{uid}:{uid}:{name}:{home}:/sbin/nologin\n" for name, uid, home in users
    )


def group_lines(users: Iterable[tuple[str, int, str]]) -> str:
    return "".join(f"{name}:x:{uid}:\n" for name, uid, _ in users)


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == ELF_MAGIC
    except OSError:
        return False


def elf_files(trees: Iterable[Path]) -> list[Path]:
    return sorted(
        p
        for tree in trees
        for p in tree.rglob("*")
        if p.is_file() and not p.is_symlink() and is_elf(p)
    )


def copy_path(source: str, out: Path) -> None:
    """SOURCE at the same path under OUT: a link as a link, a folder with all it holds."""
    target = out / source.lstrip("/")
    if os.path.lexists(target):
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if os.path.islink(source):
        os.symlink(os.readlink(source), target)
    elif os.path.isdir(source):
        shutil.copytree(source, target, symlinks=True)
    else:
        shutil.copy2(source, target)


def copy_with_chain(source: str, out: Path) -> None:
    for step in symlink_chain(source):
        copy_path(step, out)


def ldd(binary: Path) -> set[str]:
    done = subprocess.run(["ldd", str(binary)], capture_output=True, text=True)
    # ldd exits 1 for a file that is not dynamically linked: it needs nothing.
    if done.returncode != 0 and "not a dynamic executable" in done.stderr + done.stdout:
        return set()
    if done.returncode != 0:
        raise MissingLibrary(f"ldd {binary} exited {done.returncode}: {done.stderr.strip()}")
    return parse_ldd(done.stdout, str(binary))


def build(out: Path, trees: list[Path]) -> None:
    executable = os.path.realpath(sys.executable)
    stdlib = Path(sysconfig.get_path("stdlib"))
    platstdlib = Path(sysconfig.get_path("platstdlib"))
    # The interpreter, by each name a venv or a script may use.
    for name in ("python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"):
        candidate = Path(executable).parent / name
        if os.path.lexists(candidate):
            copy_with_chain(str(candidate), out)
    copy_with_chain(executable, out)
    binaries = [Path(executable)]
    for root in sorted({stdlib, platstdlib}):
        for entry in sorted(root.rglob("*")):
            relative = entry.relative_to(root).as_posix()
            if not stdlib_kept(relative) or (entry.is_dir() and not entry.is_symlink()):
                continue
            copy_with_chain(str(entry), out)
            if entry.is_file() and not entry.is_symlink() and entry.suffix == ".so":
                binaries.append(entry)
    binaries += elf_files(trees)
    libraries: set[str] = set()
    for binary in binaries:
        libraries |= ldd(binary)
    arch = "AArch64" if os.uname().machine == "aarch64" else "x86-64"
    ldconfig = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True)
    libraries |= set(parse_ldconfig(ldconfig.stdout, DLOPENED, arch).values())
    inside = tuple(str(tree) + "/" for tree in trees)
    for library in sorted(libraries):
        if not library.startswith(inside):  # the trees' own bundled libraries come with them
            copy_with_chain(library, out)
    for data in DATA_PATHS:
        if os.path.lexists(data):
            copy_with_chain(data, out)
    etc = out / "etc"
    etc.mkdir(parents=True, exist_ok=True)
    (etc / "passwd").write_text(passwd_lines(USERS))
    (etc / "group").write_text(group_lines(USERS))
    for folder, mode in (
        ("tmp", 0o1777),
        ("root", 0o700),
        ("app/data", 0o755),
        ("app/logs", 0o755),
    ):
        path = out / folder
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
    for folder in ("app/data", "app/logs"):
        os.chown(out / folder, 1000, 1000)


def main(argv: list[str]) -> int:
    if len(argv) < 1:
        print("usage: rootfs.py OUT TREE...", file=sys.stderr)
        return 2
    out = Path(argv[0])
    try:
        build(out, [Path(tree) for tree in argv[1:]])
    except MissingLibrary as exc:
        print(f"rootfs: {exc}", file=sys.stderr)
        return 1
    files = sum(1 for p in out.rglob("*") if p.is_file() and not p.is_symlink())
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file() and not p.is_symlink())
    print(f"rootfs: {files} files, {size / 1e6:.1f} MB in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
