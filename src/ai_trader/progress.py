"""A counter for long work ("fetch [12/102] AAPL"), readable in a terminal and in logs alike.

On a terminal one line is rewritten in place; in a log (docker logs, CI) a rewritten line would
be noise, so only the first item, every ``every``-th item and the last one are printed, each on
its own line. With JSON logs (``logformat``) those lines are log events, on no terminal.
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType
from typing import TextIO

from ai_trader import logformat

log = logging.getLogger(__name__)


class Progress:
    def __init__(
        self,
        label: str,
        total: int,
        *,
        stream: TextIO | None = None,
        enabled: bool = True,
        every: int = 10,
    ) -> None:
        self.label = label
        self.total = total
        self.count = 0
        self.enabled = enabled
        self.every = max(1, every)
        # Looked up now, not at import, so pytest's capture and redirections are honoured.
        self.stream = stream if stream is not None else sys.stderr
        # No stream given and JSON logs: each line shown is an event instead.
        self._logged = stream is None and logformat.is_json()
        self._tty = not self._logged and _isatty(self.stream)
        self._width = 0  # length of the line on screen, to blank out a longer previous one

    def step(self, item: str = "") -> None:
        """Count one more item and show it (``item`` names it, e.g. the symbol)."""
        self.count += 1
        if not self.enabled:
            return
        text = f"{self.label} [{self.count}/{self.total}] {item}".rstrip()
        if self._tty:
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self._width = len(text)
            self.stream.flush()
        elif self.count in (1, self.total) or self.count % self.every == 0:
            if self._logged:
                log.info("%s", text)
                return
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        """End the rewritten line so that what follows starts on a fresh one."""
        if self.enabled and self._tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or file-like without isatty
        return False
