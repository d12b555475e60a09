"""The one retry policy: exponential backoff with a cap, for Alpha Vantage and the model API.

Both retry only what may get better by asking again (a rate limit, a dropped connection, a
server error) and give up after a fixed number of attempts with the last error. The policy
comes from tenacity rather than a loop of our own; the OpenAI SDK's built-in retry is turned
off so the config's ``max_retries`` and ``base_delay`` (the original AI-Trader's keys) are what
a model run actually does, and so both services back off the same way and log it the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)
from tenacity.retry import RetryBaseT
from tenacity.stop import StopBaseT
from tenacity.wait import WaitBaseT

log = logging.getLogger(__name__)


class _Policy(NamedTuple):
    stop: StopBaseT
    wait: WaitBaseT
    retry: RetryBaseT
    before_sleep: Callable[[RetryCallState], None]
    reraise: bool


def _policy(
    what: str, attempts: int, base: float, cap: float, retry_on: tuple[type[BaseException], ...]
) -> _Policy:
    def announce(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s: %s; retrying in %.1f s", what, error, delay)

    return _Policy(
        stop=stop_after_attempt(max(1, attempts)),
        # base, 2*base, 4*base ... seconds, never more than cap.
        wait=wait_exponential(multiplier=base, exp_base=2, min=0, max=cap),
        retry=retry_if_exception_type(retry_on),
        before_sleep=announce,
        reraise=True,  # the caller sees the last error itself, not a RetryError
    )


def retrying(
    what: str,
    *,
    attempts: int,
    base: float,
    cap: float,
    retry_on: tuple[type[BaseException], ...],
    sleep: Callable[[float], None],
) -> Retrying:
    """``for attempt in retrying(...): with attempt: ...`` for blocking calls."""
    return Retrying(sleep=sleep, **_policy(what, attempts, base, cap, retry_on)._asdict())


def async_retrying(
    what: str,
    *,
    attempts: int,
    base: float,
    cap: float,
    retry_on: tuple[type[BaseException], ...],
    sleep: Callable[[float], Awaitable[None]],
) -> AsyncRetrying:
    """``async for attempt in async_retrying(...): with attempt: ...`` for coroutines; the
    same policy as ``retrying``."""
    return AsyncRetrying(sleep=sleep, **_policy(what, attempts, base, cap, retry_on)._asdict())
