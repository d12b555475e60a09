"""An hourly run killed between slots: the slots committed before the kill stay as they are,
the next run starts at the first slot not committed (the one the kill interrupted) and
redoes exactly that one, and the book ends byte for byte as an undisturbed run's."""

from __future__ import annotations

import json
import random
import re
import subprocess
from pathlib import Path

from conftest import (
    HOURLY_SIGNATURE,
    Table,
    book,
    start,
    write_hourly_config,
)

from unit.support import Services, run_cli

SLOTS = 36  # nine SSE days of four slots in the cn hourly example config's range
KILLS = 4
# A progress line: "SIGNATURE [n/N] YYYY-MM-DD HH:MM:SS: k trade(s)", logged once slot n is
# committed.
PROGRESS = re.compile(r"\[(\d+)/(\d+)\] (\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}):")


def killed_after_slot(run: subprocess.Popen[str], slot: int) -> bool:
    """SIGKILL ``run`` as soon as it logs that slot ``slot`` is committed, while it is on the
    next one; False when it ended first. The moment is picked by progress, not by a clock."""
    assert run.stderr is not None
    for line in run.stderr:
        found = PROGRESS.search(line)
        if found and int(found.group(1)) == slot:
            break
    else:
        run.wait()
        return False
    run.kill()
    run.wait()
    return True


def slots_of(text: bytes) -> list[str]:
    """The slots of a book's trade rows, in order, each once."""
    rows = [json.loads(line) for line in text.decode().splitlines()][1:]
    return list(dict.fromkeys(row["date"] for row in rows))


def test_kill_9_between_hourly_slots_redoes_exactly_the_interrupted_slot(
    hourly_serve: Services,
    hourly_reference: bytes,
    tmp_path: Path,
    rng: random.Random,
    table: Table,
):
    check = table.check("kill -9 between hourly slots, then a clean run")
    reference_slots = slots_of(hourly_reference)
    assert len(reference_slots) == SLOTS
    for trial in range(KILLS):
        books = hourly_serve.new_books()
        config = write_hourly_config(tmp_path / f"c{trial}", books)
        slot = rng.randrange(1, SLOTS)
        run = start(["run", str(config)], hourly_serve.env)
        assert killed_after_slot(run, slot), f"trial {trial}: the run ended before slot {slot}"
        check.tried += 1
        at_kill = book(books, HOURLY_SIGNATURE).read_bytes()
        # Whole slots only, the same as the undisturbed run's: a prefix of its book.
        assert hourly_reference.startswith(at_kill), f"trial {trial}: the book at the kill differs"
        done = slots_of(at_kill)
        assert done == reference_slots[: len(done)]
        assert len(done) >= slot
        again = run_cli("run", str(config), env=hourly_serve.env, timeout=300)
        assert again.returncode == 0, again.stderr
        redone = [found.group(3) for found in PROGRESS.finditer(again.stderr)]
        # The first slot traded again is the first not committed: the interrupted one.
        assert redone == reference_slots[len(done) :], f"trial {trial} after slot {slot}"
        assert book(books, HOURLY_SIGNATURE).read_bytes() == hourly_reference
