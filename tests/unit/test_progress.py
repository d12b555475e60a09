import io

from ai_trader.progress import Progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_rewrites_one_line_with_carriage_returns():
    out = FakeTerminal()
    with Progress("fetch", 3, stream=out) as bar:
        for symbol in ("AAPL", "MSFT", "NVDA"):
            bar.step(symbol)
    text = out.getvalue()
    assert text.count("\n") == 1
    assert text.endswith("fetch [3/3] NVDA\n")
    assert text.count("\r") == 3


def test_terminal_blanks_out_a_longer_previous_line():
    out = FakeTerminal()
    bar = Progress("fetch", 2, stream=out)
    bar.step("GOOGL")
    bar.step("ON")
    last = out.getvalue().split("\r")[-1]
    assert last.rstrip() == "fetch [2/2] ON"
    assert len(last) == len("fetch [1/2] GOOGL")


def test_log_prints_the_first_every_tenth_and_the_last_item():
    out = io.StringIO()
    with Progress("merge", 25, stream=out) as bar:
        for i in range(25):
            bar.step(f"S{i + 1}")
    assert out.getvalue().splitlines() == [
        "merge [1/25] S1",
        "merge [10/25] S10",
        "merge [20/25] S20",
        "merge [25/25] S25",
    ]


def test_log_never_uses_carriage_returns():
    out = io.StringIO()
    with Progress("merge", 3, stream=out) as bar:
        for _ in range(3):
            bar.step("X")
    assert "\r" not in out.getvalue()


def test_disabled_progress_prints_nothing_but_still_counts():
    out = FakeTerminal()
    with Progress("fetch", 2, stream=out, enabled=False) as bar:
        bar.step("AAPL")
        bar.step("MSFT")
    assert out.getvalue() == ""
    assert bar.count == 2


def test_writes_to_stderr_by_default(capsys):
    with Progress("fetch", 1) as bar:
        bar.step("AAPL")
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "fetch [1/1] AAPL" in captured.err
