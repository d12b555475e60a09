"""A sweep on Docker Swarm (deploy/swarm/stack.yml): the four services as replicated
services, the models as a replicated job whose tasks each claim a book (`run --claim`)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from conftest import ROOT, Stack, run_image

from ai_trader.layout import BookPaths, books_dir

MODELS = [f"m{n}" for n in range(1, 5)]


def sweep_config(data: Path) -> str:
    config = json.loads((ROOT / "configs" / "default_config.json").read_text())
    config["models"] = [
        {"name": name, "basemodel": "builtin/momentum", "signature": name, "enabled": True}
        for name in MODELS
    ]
    (data / "sweep.json").write_text(json.dumps(config))
    return "/app/data/sweep.json"


def book(data: Path, signature: str) -> bytes:
    return BookPaths(books_dir(data) / signature).position_file.read_bytes()


def test_a_four_model_sweep_on_the_swarm_gives_the_books_of_one_run_with_jobs_4(
    stack: Stack, prepared: Any
) -> None:
    alone, swept = prepared("one-container"), prepared("swarm")
    started = time.monotonic()
    code, out = run_image(sweep_config(alone), "--jobs", "4", data=alone)
    one_container = time.monotonic() - started
    assert code == 0, out
    started = time.monotonic()
    stack.deploy(swept, sweep_config(swept), tasks=len(MODELS))
    stack.wait_job("models", len(MODELS))
    on_swarm = time.monotonic() - started
    logs = stack.logs("models")
    for name in MODELS:
        assert logs.count(f"run --claim: trading {name}\n") == 1, logs  # each book once
        assert book(swept, name) == book(alone, name), name
    # A figure for the reader, never a verdict (docs/BENCHMARKS.md).
    print(f"\nsweep of {len(MODELS)} models: swarm {on_swarm:.1f} s from deploy to the last "
          f"task done; one container, run --jobs 4, {one_container:.1f} s")  # fmt: skip
