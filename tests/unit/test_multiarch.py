"""The arm64 image built on an amd64 host under QEMU (`nox -s multiarch`): its pure parts.

The command lines (pip download, the base, docker build, uname, compose run), the binfmt
decision, the foreign build's context and the summary the two runs must share are checked
here without Docker, root or QEMU. scripts/make-local-base.sh runs for real against
stand-ins for the commands it calls (debootstrap, dpkg, docker), which record their
arguments: that is where its architecture parameter shows. The build and the two runs
themselves are the session's (docs/DOCKER.md, "arm64").
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import subprocess
import tarfile
from pathlib import Path

import pytest
from support import load_file

from ai_trader.agent.runner import Result, format_summary

ROOT = Path(__file__).resolve().parents[2]


bootstrap = load_file("scripts/bootstrap.py", "bootstrap_for_multiarch")
multiarch = load_file("scripts/multiarch.py", "multiarch_under_test")
ROOT_HOST = bootstrap.Host(system="Linux", root=True, apt=True, distro=frozenset({"debian"}))
USER_HOST = bootstrap.Host(system="Linux", root=False, apt=True, distro=frozenset({"debian"}))

# /proc/sys/fs/binfmt_misc/qemu-aarch64 as Debian's qemu-user-static registers it.
REGISTERED = """enabled
interpreter /usr/libexec/qemu-binfmt/aarch64-binfmt-P
flags: POCF
offset 0
magic 7f454c460201010000000000000000000200b700
mask ffffffffffffff00fffffffffffffffffeffffff
"""


# --- the wheels --------------------------------------------------------------------------------


def test_arm64_wheel_tags_name_only_aarch64_platforms() -> None:
    tags = bootstrap.wheel_tags("aarch64")
    platforms = [tags[i + 1] for i, arg in enumerate(tags) if arg == "--platform"]
    assert platforms == ["manylinux_2_17_aarch64", "manylinux2014_aarch64",
                         "manylinux_2_28_aarch64", "manylinux_2_34_aarch64", "any"]  # fmt: skip


def test_pip_download_takes_binary_cp313_wheels_of_every_lock_into_the_wheelhouse() -> None:
    locks = [Path("requirements/runtime.txt"), Path("requirements/build.txt")]
    command = bootstrap.pip_download_command(Path("wheelhouse-arm64"), locks, "aarch64")
    text = shlex.join(command)
    assert command[:4] == ["python", "-m", "pip", "download"]
    assert "--only-binary=:all:" in command
    assert "--python-version 3.13 --implementation cp --abi cp313" in text
    assert "-d wheelhouse-arm64" in text
    assert text.endswith("-r requirements/runtime.txt -r requirements/build.txt")


# --- the base ----------------------------------------------------------------------------------


def test_the_local_base_command_passes_the_architecture_when_given() -> None:
    assert bootstrap.local_base_command("ai-trader-base:trixie-arm64", "arm64") == [
        "bash", "scripts/make-local-base.sh", "ai-trader-base:trixie-arm64", "arm64",
    ]  # fmt: skip


def test_the_local_base_command_is_the_hosts_own_without_an_architecture() -> None:
    assert bootstrap.local_base_command("ai-trader-base:trixie") == [
        "bash", "scripts/make-local-base.sh", "ai-trader-base:trixie",
    ]  # fmt: skip


def test_the_default_base_pulled_for_arm64_gets_a_tag_of_its_own() -> None:
    tag = bootstrap.pulled_tag("python:3.13.13-slim-trixie", "ai-trader-base:trixie-arm64", "arm64")
    assert tag == "ai-trader-base:python-3.13.13-slim-trixie-arm64"


# --- QEMU's binfmt entry -------------------------------------------------------------------------


def test_a_binfmt_entry_is_read_as_the_kernel_shows_it() -> None:
    entry = bootstrap.parse_binfmt(REGISTERED)
    assert entry == bootstrap.Binfmt(
        enabled=True, interpreter="/usr/libexec/qemu-binfmt/aarch64-binfmt-P", flags="POCF"
    )


def test_an_enabled_entry_with_the_f_flag_needs_nothing() -> None:
    assert bootstrap.binfmt_plan("aarch64", REGISTERED, True, ROOT_HOST) is None


def test_a_missing_entry_is_registered_by_binfmt_support_as_root() -> None:
    plan = bootstrap.binfmt_plan("aarch64", None, True, ROOT_HOST)
    assert plan == bootstrap.Install((("update-binfmts", "--enable", "qemu-aarch64"),))


def test_binfmt_misc_is_mounted_first_when_it_is_not() -> None:
    plan = bootstrap.binfmt_plan("aarch64", None, False, ROOT_HOST)
    assert isinstance(plan, bootstrap.Install)
    assert plan.commands[0] == (
        "mount", "-t", "binfmt_misc", "binfmt_misc", "/proc/sys/fs/binfmt_misc",
    )  # fmt: skip
    assert plan.commands[-1] == ("update-binfmts", "--enable", "qemu-aarch64")


def test_an_entry_without_the_f_flag_is_removed_and_registered_again() -> None:
    plan = bootstrap.binfmt_plan("aarch64", REGISTERED.replace("POCF", "OC"), True, ROOT_HOST)
    assert plan == bootstrap.Install((
        ("sh", "-c", "echo -1 > /proc/sys/fs/binfmt_misc/qemu-aarch64"),
        ("update-binfmts", "--enable", "qemu-aarch64"),
    ))  # fmt: skip


def test_a_disabled_entry_is_registered_again() -> None:
    plan = bootstrap.binfmt_plan(
        "aarch64", REGISTERED.replace("enabled", "disabled"), True, ROOT_HOST
    )
    assert isinstance(plan, bootstrap.Install)
    assert plan.commands[-1] == ("update-binfmts", "--enable", "qemu-aarch64")


def test_without_root_a_missing_entry_is_one_line_naming_the_command() -> None:
    plan = bootstrap.binfmt_plan("aarch64", None, True, USER_HOST)
    assert isinstance(plan, bootstrap.Missing)
    assert "\n" not in plan.message
    assert "sudo update-binfmts --enable qemu-aarch64" in plan.message


# --- the foreign build and its runs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "foreign"),
    [("ai-trader:dev", "ai-trader:dev-arm64"), ("aitr-x:dev", "aitr-x:dev-arm64"),
     ("localhost:5000/ai-trader", "localhost:5000/ai-trader:latest-arm64")],
)  # fmt: skip
def test_the_foreign_image_is_the_host_images_tag_with_the_architecture(
    image: str, foreign: str
) -> None:
    assert multiarch.foreign_image(image, "arm64") == foreign


def test_compose_is_told_the_image_its_own_folders_and_a_wait_for_emulation() -> None:
    env = multiarch.compose_env("aitr-x:dev-arm64", Path("/d"), Path("/l"))
    assert env == {"AI_TRADER_IMAGE": "aitr-x", "AI_TRADER_TAG": "dev-arm64",
                   "AI_TRADER_DATA_DIR": "/d", "AI_TRADER_LOGS_DIR": "/l",
                   "READY_TIMEOUT": "600"}  # fmt: skip


def test_the_foreign_context_swaps_the_host_wheelhouse_for_the_foreign_wheels() -> None:
    files = multiarch.context_files(
        ["Dockerfile", "src/ai_trader/cli.py", "wheelhouse/mcp-2-py3-none-any.whl"],
        ["/w/arm64/pydantic_core-2-cp313-cp313-manylinux2014_aarch64.whl"],
    )
    assert files == {
        "Dockerfile": "Dockerfile",
        "src/ai_trader/cli.py": "src/ai_trader/cli.py",
        "wheelhouse/pydantic_core-2-cp313-cp313-manylinux2014_aarch64.whl":
            "/w/arm64/pydantic_core-2-cp313-cp313-manylinux2014_aarch64.whl",
    }  # fmt: skip


def test_the_foreign_context_swaps_the_host_debug_tools_for_the_foreign_ones() -> None:
    files = multiarch.context_files(
        ["Dockerfile", "debugtools/curl_8_amd64.deb", "debugtools/py_spy-0.4-x86_64.whl"],
        [],
        ["/t/curl_8_arm64.deb", "/t/py_spy-0.4-manylinux_2_17_aarch64.whl"],
    )
    assert files == {
        "Dockerfile": "Dockerfile",
        "debugtools/curl_8_arm64.deb": "/t/curl_8_arm64.deb",
        "debugtools/py_spy-0.4-manylinux_2_17_aarch64.whl":
            "/t/py_spy-0.4-manylinux_2_17_aarch64.whl",
    }  # fmt: skip


def test_the_build_names_the_platform_the_base_and_the_tag_with_the_context_last() -> None:
    command = multiarch.build_command(
        Path("ctx"), "aitr-x:dev-arm64", "ai-trader-base:trixie-arm64", "linux/arm64",
        ["VERSION=1.0", "REVISION=abc"],
    )  # fmt: skip
    assert command == [
        "docker", "build", "--platform", "linux/arm64",
        "--build-arg", "BASE_IMAGE=ai-trader-base:trixie-arm64",
        "--build-arg", "VERSION=1.0", "--build-arg", "REVISION=abc",
        "--tag", "aitr-x:dev-arm64", "ctx",
    ]  # fmt: skip


def test_uname_runs_in_a_container_of_the_platform_asked_for() -> None:
    assert multiarch.uname_command("aitr-x:dev-arm64", "linux/arm64") == [
        "docker", "run", "--rm", "--platform", "linux/arm64", "--entrypoint", "uname",
        "aitr-x:dev-arm64", "-m",
    ]  # fmt: skip


def test_the_offline_default_is_compose_running_the_ai_trader_service_with_its_command() -> None:
    command = multiarch.compose_run_command("docker-compose", "p1")
    assert command == ["docker-compose", "--project-name", "p1", "--file",
                       str(ROOT / "docker-compose.yml"), "run", "--rm", "--no-deps", "-T",
                       "ai-trader"]  # fmt: skip


# --- the summary -------------------------------------------------------------------------------


def _results() -> list[Result]:
    first, last = "2025-09-30", "2025-10-31"
    return [
        Result("builtin-momentum", 22, first, last, 10412.5, 10000.0, 0.021),
        Result("a-signature-longer-than-the-column", 22, first, last, None, 10000.0, None),
    ]


def test_the_summary_is_the_table_the_run_printed_whole() -> None:
    table = format_summary(_results())
    stdout = f"something before\n{table}\n\nsomething after\n"
    assert multiarch.summary(stdout) == table + "\n"


def test_the_summary_ends_at_a_shorter_line() -> None:
    table = format_summary(_results()[:1])
    assert multiarch.summary(f"{table}\nshort\n") == table + "\n"


def test_the_last_summary_counts_when_there_are_several() -> None:
    first, last = format_summary(_results()[:1]), format_summary(_results())
    assert multiarch.summary(f"{first}\n{last}\n") == last + "\n"


def test_no_summary_is_none() -> None:
    assert multiarch.summary("entrypoint: services ready\n") is None


# --- make-local-base.sh's architecture, against stand-ins that record their arguments -------------

STAND_IN = """#!/bin/sh
printf '%s %s\\n' "$(basename "$0")" "$*" >> "$CALLS"
case "$(basename "$0") $1" in
    "dpkg --print-architecture") echo amd64 ;;
    "docker image") [ -e "$IMPORTED" ] && echo "1 bytes"; [ -e "$IMPORTED" ]; exit ;;
    "docker import") cat > /dev/null; touch "$IMPORTED" ;;
    "docker load") cat > "$LOADED"; touch "$IMPORTED" ;;
esac
exit 0
"""


def _member(archive: tarfile.TarFile, name: str) -> bytes:
    member = archive.extractfile(name)
    assert member is not None, name
    return member.read()


def _make_base(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("debootstrap", "chroot", "dpkg", "docker"):  # chroot: none is expected
        (bin_dir / name).write_text(STAND_IN)
        (bin_dir / name).chmod(0o755)
    calls = tmp_path / "calls"
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls),
           "IMPORTED": str(tmp_path / "imported"),
           "LOADED": str(tmp_path / "loaded.tar")}  # fmt: skip
    done = subprocess.run(["bash", str(ROOT / "scripts/make-local-base.sh"), *args],
                          capture_output=True, text=True, env=env)  # fmt: skip
    return done, calls.read_text().splitlines() if calls.exists() else []


def test_make_local_base_bootstraps_arm64_from_the_host_in_one_stage(tmp_path: Path) -> None:
    done, calls = _make_base(tmp_path, "base:arm64", "arm64")
    assert done.returncode == 0, done.stderr
    (debootstrap,) = [c for c in calls if c.startswith("debootstrap ")]
    assert "--arch arm64 trixie" in debootstrap
    assert "--foreign" not in debootstrap
    assert not [c for c in calls if c.startswith("chroot ")]


def test_make_local_base_loads_arm64_as_an_archive_whose_config_says_arm64(tmp_path: Path) -> None:
    done, calls = _make_base(tmp_path, "base:arm64", "arm64")
    assert done.returncode == 0, done.stderr
    assert "docker load" in calls
    assert not [c for c in calls if c.startswith("docker import")]
    with tarfile.open(tmp_path / "loaded.tar") as archive:
        (manifest,) = json.loads(_member(archive, "manifest.json"))
        config_bytes = _member(archive, manifest["Config"])
        layer = _member(archive, "layer.tar")
    config = json.loads(config_bytes)
    assert manifest["RepoTags"] == ["base:arm64"]
    assert (config["os"], config["architecture"]) == ("linux", "arm64")
    assert config["config"]["Cmd"] == ["python3"]
    # The names the engine checks: the layer's digest, and the config's own.
    assert config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(layer).hexdigest()}"]
    assert manifest["Config"] == f"{hashlib.sha256(config_bytes).hexdigest()}.json"


def test_make_local_base_for_the_host_arch_imports_it_as_before(tmp_path: Path) -> None:
    done, calls = _make_base(tmp_path, "base:trixie")
    assert done.returncode == 0, done.stderr
    (debootstrap,) = [c for c in calls if c.startswith("debootstrap ")]
    assert "--arch" not in debootstrap
    (imported,) = [c for c in calls if c.startswith("docker import ")]
    assert imported.endswith(" - base:trixie")
    assert "docker load" not in calls


def test_make_local_base_refuses_a_malformed_architecture_in_one_line(tmp_path: Path) -> None:
    done, calls = _make_base(tmp_path, "base:x", "arm64;rm")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "ARCH=arm64;rm" in done.stderr
    assert not [c for c in calls if not c.startswith("dpkg ")]
