"""The facts the noxfile and the bench share: where the project is, what its image is called
and built from, its version and its revision.

Nothing imports the noxfile. The noxfile loads this file by its path (nox puts no folder on
sys.path); the bench imports it as `facts`, with tools/ on PYTHONPATH. It reads, and writes
nothing.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The image's name (its tags are the version, the revision and dev); the environment
# overrides it, so that a test or a bench run never overwrites someone else's image.
IMAGE = os.environ.get("AI_TRADER_IMAGE", "ai-trader")
# The base of the image: the official slim image (also the Dockerfile's and compose's
# default), or the Debian 13 one made on a host that cannot pull (`nox -s base-image`).
DEFAULT_BASE = "python:3.13.13-slim-trixie"
LOCAL_BASE = "ai-trader-base:trixie"
# Extra `docker build` options for every build (posargs would reach every session).
EXTRA_BUILD_ARGS = tuple(os.environ.get("AI_TRADER_BUILD_ARGS", "").split())


def project_version() -> str:
    """__version__ of src/ai_trader/__init__.py, read as text (the package is not imported)."""
    text = (ROOT / "src/ai_trader/__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if not match:
        raise SystemExit("no __version__ in src/ai_trader/__init__.py")
    return match.group(1)


def git_revision() -> str:
    """The checkout's short revision, or "unknown" outside git."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
    except FileNotFoundError:
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"
