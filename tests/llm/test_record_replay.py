"""A run against the real model, recorded, then replayed with the model server stopped.

The model entry's `"responses": "record"` keeps every response of the model under
`<log_path>/<signature>/responses/<day>.jsonl`; `"replay"` answers the run from there and
calls no API. The replay goes into a fresh folder of books with the record copied in, and
its model API is a port where nothing answers: a request the record cannot answer fails the
run instead of reaching a model. The two books must be equal, byte for byte.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from stack import (
    DAYS,
    GUARD_SECONDS,
    SIGNATURE,
    ModelServer,
    books,
    model_env,
    rows_of,
    write_config,
)

from ai_trader.agent.responses import RECORD_DIR
from unit.support import Services, closed_ports, run_cli

RECORDED_DAYS = DAYS[:2]


def responses_dir(log_path: Path) -> Path:
    return log_path / SIGNATURE / RECORD_DIR


def test_a_recorded_run_replays_to_the_same_book_with_the_model_server_stopped(
    tmp_path: Path, services: Services, model: ModelServer
):
    recorded = services.new_books()
    config = write_config(tmp_path / "record", recorded, RECORDED_DAYS[-1], responses="record")
    result = run_cli(
        "run", str(config), env=model_env(services.env, model.api_base), timeout=GUARD_SECONDS
    )
    assert result.returncode == 0, result.stderr
    assert {row["date"] for row in rows_of(books(recorded).position_file)[1:]} == {*RECORDED_DAYS}
    records = sorted(p.name for p in responses_dir(recorded).glob("*.jsonl"))
    assert records == [f"{day}.jsonl" for day in RECORDED_DAYS]

    model.stop()
    assert model.process.poll() is not None
    replayed = services.new_books()
    shutil.copytree(responses_dir(recorded), responses_dir(replayed))
    config = write_config(tmp_path / "replay", replayed, RECORDED_DAYS[-1], responses="replay")
    with closed_ports(1) as (nowhere,):
        env = model_env(services.env, f"http://127.0.0.1:{nowhere}/v1")
        result = run_cli("run", str(config), env=env, timeout=GUARD_SECONDS)

    assert result.returncode == 0, result.stderr
    assert books(replayed).position_file.read_bytes() == books(recorded).position_file.read_bytes()
