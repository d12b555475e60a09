"""Sharded runs (``shards``): which books one process trades with --model and --shard, and
two processes that between them trade every book once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ai_trader.config import ModelEntry, parse_config
from ai_trader.errors import UserError
from ai_trader.lock import signature_lock
from ai_trader.repeats import repeated
from ai_trader.shards import Shard, chosen, shard_of
from unit.support import Services, run_cli
from unit.test_end_to_end import position_file, write_config


def books(*signatures: str) -> list[ModelEntry]:
    models = [{"name": f"name-{s}", "basemodel": "builtin/momentum", "signature": s}
              for s in signatures]  # fmt: skip
    raw = {"date_range": {"init_date": "2025-10-01", "end_date": "2025-10-31"}, "models": models}
    return parse_config(raw, "c.json").models


def signatures(found: list[ModelEntry]) -> list[str]:
    return [b.signature for b in found]


def test_a_shard_is_i_of_n():
    assert shard_of("2/4") == Shard(2, 4)


@pytest.mark.parametrize("text", ["0/3", "4/3", "1/0", "1", "a/b", "1/3\n", "-1/3"])
def test_a_shard_outside_one_to_n_is_refused_stating_the_rule(text: str):
    with pytest.raises(ValueError, match=r"must be I/N with 1 <= I <= N"):
        shard_of(text)


def test_shards_deal_the_books_round_robin_and_cover_each_once():
    all_books = books("a", "b", "c", "d", "e")
    dealt = [signatures(chosen(all_books, shard=Shard(i, 3))) for i in (1, 2, 3)]
    assert dealt == [["a", "d"], ["b", "e"], ["c"]]


def test_a_shard_beyond_the_books_is_empty():
    assert chosen(books("a"), shard=Shard(2, 2)) == []


def test_model_keeps_the_books_of_the_named_models_by_name_or_signature():
    all_books = books("a", "b", "c")
    assert signatures(chosen(all_books, ["name-a", "c"])) == ["a", "c"]


def test_model_names_a_models_repeats_by_its_signature():
    all_books = repeated(books("a", "b"), 2)
    assert signatures(chosen(all_books, ["a"])) == ["a.r1", "a.r2"]


def test_an_unknown_model_is_one_line_listing_the_enabled_ones():
    with pytest.raises(UserError) as caught:
        chosen(books("a", "b"), ["zzz"])
    assert str(caught.value) == (
        "--model zzz: no enabled model of that name or signature (enabled: name-a, name-b)"
    )


def run_shard(services: Services, config: Path, *args: str) -> Any:
    return run_cli("run", str(config), *args, env=services.env, timeout=300)


def test_two_shard_processes_trade_every_book_once(services: Services, tmp_path: Path):
    out = services.new_books()
    models = [{"name": s, "basemodel": "builtin/momentum", "signature": s} for s in "abc"]
    config = write_config(tmp_path, out, models)
    first = run_shard(services, config, "--shard", "1/2")
    second = run_shard(services, config, "--shard", "2/2")
    assert (first.returncode, second.returncode) == (0, 0), first.stderr + second.stderr
    assert [line.split()[0] for line in first.stdout.splitlines()[1:3]] == ["a", "c"]
    assert [line.split()[0] for line in second.stdout.splitlines()[1:]] == ["b"]
    texts = {position_file(out, s).read_bytes() for s in "abc"}
    assert len(texts) == 1  # the same strategy on the same data: the same book


def test_an_empty_shard_trades_nothing_and_says_so(services: Services, tmp_path: Path):
    out = services.new_books()
    models = [{"name": "a", "basemodel": "builtin/momentum", "signature": "a"}]
    result = run_shard(services, write_config(tmp_path, out, models), "--shard", "2/2")
    assert result.returncode == 0, result.stderr
    assert "shard 2/2 has no model to trade" in result.stderr
    assert not out.exists()


def traded(result: Any) -> list[str]:
    """The signatures of a run's end summary."""
    return [line.split()[0] for line in result.stdout.splitlines()[1:] if line.strip()]


def test_claim_trades_one_book_each_time_the_next_with_days_left(
    services: Services, tmp_path: Path
):
    out = services.new_books()
    models = [{"name": s, "basemodel": "builtin/momentum", "signature": s} for s in "abc"]
    config = write_config(tmp_path, out, models)
    for signature in "abc":
        result = run_shard(services, config, "--claim")
        assert result.returncode == 0, result.stderr
        assert traded(result) == [signature]
        assert f"run --claim: trading {signature}" in result.stderr
    last = run_shard(services, config, "--claim")
    assert last.returncode == 0, last.stderr
    assert traded(last) == []
    assert "run --claim: no book with days left is free; nothing to do" in last.stderr


def test_claim_passes_over_a_book_another_run_holds(services: Services, tmp_path: Path):
    out = services.new_books()
    models = [{"name": s, "basemodel": "builtin/momentum", "signature": s} for s in "ab"]
    config = write_config(tmp_path, out, models)
    with signature_lock(out / "a"):
        result = run_shard(services, config, "--claim")
    assert result.returncode == 0, result.stderr
    assert traded(result) == ["b"]
    assert "run --claim: a is held by another run; next" in result.stderr
    assert not position_file(out, "a").exists()
