"""The distroless variant's parts that need no Docker: how docker/variants/rootfs.py reads
ldd and ldconfig, what it keeps of the standard library, how it follows links, the users
it writes; and the variant's Dockerfile against the main one.

The root it gathers is proven by building the variant and serving from it (docs/DOCKER.md,
"The base image, measured"); these tests hold the rules that build relies on.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from support import load_file

ROOT = Path(__file__).resolve().parents[2]
VARIANT = ROOT / "docker/variants/Dockerfile.distroless"


rootfs = load_file("docker/variants/rootfs.py", "rootfs")

LDD_OUTPUT = """\
\tlinux-vdso.so.1 (0x00007ffd5b3e8000)
\tlibm.so.6 => /lib/x86_64-linux-gnu/libm.so.6 (0x00007f0f1c2e1000)
\tlibz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x00007f0f1c2c0000)
\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f0f1c0df000)
\t/lib64/ld-linux-x86-64.so.2 (0x00007f0f1c3e9000)
"""

LDCONFIG_OUTPUT = """\
12 libs found in cache `/etc/ld.so.cache'
\tlibgcc_s.so.1 (libc6) => /lib/i386-linux-gnu/libgcc_s.so.1
\tlibgcc_s.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libgcc_s.so.1
\tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1
"""


def stage(text: str, start: str) -> str:
    """The Dockerfile's stage from the line START to the next FROM line (or the end), without
    the comments and blank lines that head the next stage."""
    lines = text.splitlines()
    first = lines.index(start)
    rest = [i for i, line in enumerate(lines) if i > first and line.startswith("FROM ")]
    body = lines[first : rest[0] if rest else len(lines)]
    while body and (not body[-1].strip() or body[-1].startswith("#")):
        body.pop()
    return "\n".join(body)


# --- ldd and ldconfig --------------------------------------------------------------------


def test_ldd_gives_every_resolved_library_and_the_loader():
    assert rootfs.parse_ldd(LDD_OUTPUT, "python3") == {
        "/lib/x86_64-linux-gnu/libm.so.6",
        "/lib/x86_64-linux-gnu/libz.so.1",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
    }


def test_ldd_leaves_out_the_vdso_which_the_kernel_provides():
    assert not any("vdso" in path for path in rootfs.parse_ldd(LDD_OUTPUT, "python3"))


def test_a_library_ldd_cannot_find_stops_the_build_with_its_name():
    output = LDD_OUTPUT + "\tlibffi.so.8 => not found\n"
    with pytest.raises(rootfs.MissingLibrary, match=r"_ctypes\.so needs libffi\.so\.8"):
        rootfs.parse_ldd(output, "_ctypes.so")


def test_ldconfig_prefers_the_machines_own_word_size():
    found = rootfs.parse_ldconfig(LDCONFIG_OUTPUT, ["libgcc_s.so.1"])
    assert found == {"libgcc_s.so.1": "/lib/x86_64-linux-gnu/libgcc_s.so.1"}


def test_a_dlopened_library_missing_from_the_cache_stops_the_build_with_its_name():
    with pytest.raises(rootfs.MissingLibrary, match=r"libgcc_s\.so\.1"):
        rootfs.parse_ldconfig("0 libs found in cache\n", ["libgcc_s.so.1"])


# --- the standard library ------------------------------------------------------------------


@pytest.mark.parametrize(
    "relative", ["test/test_os.py", "idlelib/idle.py", "tkinter/__init__.py", "ensurepip",
                 "config-3.13-x86_64-linux-gnu/Makefile"],
)  # fmt: skip
def test_the_stdlib_loses_its_tests_gui_and_build_config(relative: str):
    assert not rootfs.stdlib_kept(relative)


@pytest.mark.parametrize(
    "relative", ["os.py", "json/decoder.py", "unittest/mock.py", "lib-dynload/_ssl.so",
                 "__pycache__/os.cpython-313.pyc", "sitecustomize.py"],
)  # fmt: skip
def test_the_stdlib_keeps_what_a_program_may_import(relative: str):
    assert rootfs.stdlib_kept(relative)


# --- links ---------------------------------------------------------------------------------


def test_a_relative_link_brings_its_target(tmp_path: Path):
    (tmp_path / "python3.13").write_text("elf")
    (tmp_path / "python3").symlink_to("python3.13")
    chain = rootfs.symlink_chain(str(tmp_path / "python3"))
    assert chain == [str(tmp_path / "python3"), str(tmp_path / "python3.13")]


def test_a_chain_of_absolute_and_relative_links_is_followed_to_the_file(tmp_path: Path):
    (tmp_path / "usr/bin").mkdir(parents=True)
    (tmp_path / "venv/bin").mkdir(parents=True)
    (tmp_path / "usr/bin/python3.13").write_text("elf")
    (tmp_path / "usr/bin/python3").symlink_to("python3.13")
    (tmp_path / "venv/bin/python").symlink_to(tmp_path / "usr/bin/python3")
    chain = rootfs.symlink_chain(str(tmp_path / "venv/bin/python"))
    assert chain == [
        str(tmp_path / "venv/bin/python"),
        str(tmp_path / "usr/bin/python3"),
        str(tmp_path / "usr/bin/python3.13"),
    ]


def test_a_linked_folder_on_the_way_is_kept_with_its_target(tmp_path: Path):
    (tmp_path / "etc/ssl/certs").mkdir(parents=True)
    (tmp_path / "etc/ssl/certs/ca.crt").write_text("pem")
    (tmp_path / "usr/lib/ssl").mkdir(parents=True)
    (tmp_path / "usr/lib/ssl/certs").symlink_to(tmp_path / "etc/ssl/certs")
    chain = rootfs.symlink_chain(str(tmp_path / "usr/lib/ssl/certs/ca.crt"))
    assert chain == [str(tmp_path / "usr/lib/ssl/certs"), str(tmp_path / "etc/ssl/certs/ca.crt")]


def test_a_link_loop_stops_the_build(tmp_path: Path):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(rootfs.MissingLibrary, match="loop"):
        rootfs.symlink_chain(str(tmp_path / "a"))


def test_copying_a_link_keeps_it_a_link_and_copies_its_target(tmp_path: Path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "libz.so.1.3").write_bytes(b"\x7fELF library")
    (source / "libz.so.1").symlink_to("libz.so.1.3")
    out = tmp_path / "out"
    rootfs.copy_with_chain(str(source / "libz.so.1"), out)
    copied = out / str(source).lstrip("/")
    assert os.readlink(copied / "libz.so.1") == "libz.so.1.3"
    assert (copied / "libz.so.1.3").read_bytes() == b"\x7fELF library"


# --- users ---------------------------------------------------------------------------------


def test_passwd_gives_the_images_user_uid_1000_with_no_shell():
    lines = rootfs.passwd_lines(rootfs.USERS).splitlines()
    trader = next(line.split(":") for line in lines if line.startswith("trader:"))
    assert trader[2:4] == ["1000", "1000"]
    assert trader[5] == "/app"
    assert trader[6] == "/sbin/nologin"


def test_every_user_has_a_group_of_its_own_number():
    groups = {line.split(":")[0]: line.split(":")[2] for line in
              rootfs.group_lines(rootfs.USERS).splitlines()}  # fmt: skip
    assert groups == {name: str(uid) for name, uid, _ in rootfs.USERS}


# --- the Dockerfile ------------------------------------------------------------------------


def test_the_variants_builder_stage_is_the_main_dockerfiles():
    start = "FROM ${BASE_IMAGE} AS builder"
    main = stage((ROOT / "Dockerfile").read_text(), start)
    variant = stage(VARIANT.read_text(), start)
    assert variant == main


def test_the_variants_final_stage_runs_nothing_through_a_shell():
    final = stage(VARIANT.read_text(), "FROM scratch")
    # Shell form needs /bin/sh, which a scratch image does not have.
    assert not re.search(r"^RUN\b", final, re.MULTILINE)
    commands = re.findall(r"^(?:ENTRYPOINT|CMD|HEALTHCHECK.*\\\n\s+CMD)\s+(.*)$", final,
                          re.MULTILINE)  # fmt: skip
    assert len(commands) == 3
    for command in commands:
        assert isinstance(json.loads(command), list), command


def test_the_build_context_admits_the_root_builder():
    rules = (ROOT / ".dockerignore").read_text().splitlines()
    assert "!docker/variants/rootfs.py" in rules
