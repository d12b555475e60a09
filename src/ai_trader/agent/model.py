"""An OpenAI-compatible model trading through the MCP tools, one day at a time."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from ai_trader.agent.builtin import CallTool
from ai_trader.agent.responses import Recording, request_key
from ai_trader.agent.toolbox import ToolRefused, ToolSpec
from ai_trader.costs import FREE, Costs
from ai_trader.ledger import CASH
from ai_trader.market.base import Market
from ai_trader.market.us import US_DAILY
from ai_trader.retrying import async_retrying
from ai_trader.usage import DayTally, usage_of

log = logging.getLogger(__name__)

FINISH_SIGNAL = "<FINISH_SIGNAL>"
# The longest wait between two attempts at the model API, however many retries.
MAX_BACKOFF = 60.0

if TYPE_CHECKING:
    import openai
    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam


class ModelUnavailable(Exception):
    """The server does not know this model: skip it, as the original does."""


class ModelFailed(Exception):
    """The model API kept failing (or refused our key); the day cannot be completed."""


def openai_tools(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """MCP tool listings in the chat-completions ``tools`` format."""
    return [
        {
            "type": "function",
            "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.input_schema or {"type": "object", "properties": {}},
            },
        }
        for tool in tools
    ]


def system_prompt(
    today: str,
    positions: Mapping[str, float],
    opens: Mapping[str, float],
    closes: Mapping[str, float],
    costs: Costs = FREE,
    market: Market | None = None,
) -> str:
    held = {k: v for k, v in positions.items() if v and k != CASH}
    fees = "no fees" if costs.free else f"with trading costs: {costs.describe()}"
    market = market or US_DAILY
    trading = market.words.trading
    if market.slots:
        return (
            f"You are a trading agent. It is {today}, one of the day's hourly trading slots "
            f"({', '.join(market.slots)}).\n"
            f"{trading} at this slot's open, long only, {fees}. Look up prices with "
            "get_price_local by slot, YYYY-MM-DD HH:MM:SS (earlier slots give open, high, low, "
            "close and volume; this slot gives only the open; later slots are not known). Use "
            "the math tools for arithmetic and get_information for news published before now.\n"
            f"Cash: {positions.get(CASH, 0.0):.2f}\n"
            f"Holdings: {json.dumps(held)}\n"
            f"Previous slot's closes: {json.dumps(closes)}\n"
            f"This slot's opens: {json.dumps(opens)}\n"
            f"When you have finished trading for this slot, reply with {FINISH_SIGNAL}."
        )
    return (
        f"You are a stock-trading agent. Today is {today}.\n"
        f"{trading} at today's "
        f"open, long only, {fees}. Look up prices with get_price_local (past days give open, "
        "high, low, close and volume; today gives only the open). Use the math tools for "
        "arithmetic and get_information for news published before today.\n"
        f"Cash: {positions.get(CASH, 0.0):.2f}\n"
        f"Holdings (shares): {json.dumps(held)}\n"
        f"Previous day's closes: {json.dumps(closes)}\n"
        f"Today's opens: {json.dumps(opens)}\n"
        f"When you have finished trading for today, reply with {FINISH_SIGNAL}."
    )


def parse_arguments(raw: str | None) -> dict[str, Any] | str:
    """The tool-call arguments as a dict, or a message saying why they are unusable."""
    try:
        value = json.loads(raw or "{}")
    except json.JSONDecodeError as exc:
        return f"arguments are not valid JSON: {exc.msg}"
    return value if isinstance(value, dict) else "arguments must be a JSON object"


class ModelTrader:
    def __init__(
        self,
        client: openai.AsyncOpenAI | None,
        model: str,
        *,
        max_steps: int,
        max_retries: int,
        base_delay: float,
        sleep: Callable[[float], Any] = asyncio.sleep,
        key_variable: str = "OPENAI_API_KEY",
        sampling: Mapping[str, Any] | None = None,
        recording: Recording | None = None,
    ) -> None:
        # No client in replay: every answer comes from the record.
        self.client = client
        self.sampling = dict(sampling or {})  # temperature, top_p, seed, max_tokens: as set
        self.recording = recording
        self.key_variable = key_variable  # where the key came from, for a refusal's line
        self.model = model
        self.max_steps = max_steps
        self.max_retries = max_retries
        self.base_delay = base_delay
        self.sleep = sleep

    async def _complete(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]], step: int
    ) -> Any:
        """The model's response to one request: from the API, or from the record in replay
        (and kept for the record in record mode; see ``responses``)."""
        # Imported here (as in Runner._model_trader), so a built-in-only run never pays for it.
        from openai.types.chat import ChatCompletion

        request = {"model": self.model, "messages": messages, "tools": tools, **self.sampling}
        recording = self.recording
        key = request_key(request) if recording else ""
        if recording is not None and recording.mode == "replay":
            return ChatCompletion.model_validate(recording.recorded(key, step))
        response = await self._ask(request)
        if recording is not None and recording.mode == "record":
            recording.keep(key, step, response.model_dump(mode="json", exclude_unset=True))
        return response

    async def _ask(self, request: dict[str, Any]) -> Any:
        import openai

        assert self.client is not None, "a client is made for every mode but replay"
        retryable = (openai.APIConnectionError, openai.RateLimitError, openai.InternalServerError)
        try:
            async for attempt in async_retrying(
                f"model {self.model}",
                attempts=self.max_retries + 1,
                base=self.base_delay,
                cap=MAX_BACKOFF,
                retry_on=retryable,
                sleep=self.sleep,
            ):
                with attempt:
                    # The messages and tools are the wire format as plain dicts (they are
                    # also what log.jsonl records); the SDK describes the same shapes.
                    return await self.client.chat.completions.create(
                        model=self.model,
                        messages=cast("list[ChatCompletionMessageParam]", request["messages"]),
                        tools=cast("list[ChatCompletionToolParam]", request["tools"]),
                        **self.sampling,
                    )
        except openai.NotFoundError as exc:
            raise ModelUnavailable(
                f"model {self.model!r} is not available: {exc.message}"
            ) from None
        except openai.AuthenticationError:
            raise ModelFailed(
                f"the model API refused the key (check {self.key_variable})"
            ) from None
        except retryable as exc:
            raise ModelFailed(
                f"model {self.model!r}: the API failed {self.max_retries + 1} time(s): "
                f"{type(exc).__name__}"
            ) from None
        except openai.APIStatusError as exc:
            raise ModelFailed(f"model {self.model!r}: the API answered {exc.status_code}") from None
        raise AssertionError("unreachable")  # the policy returns or re-raises

    async def trade_day(
        self,
        call: CallTool,
        record: Callable[[dict[str, Any]], None],
        prompt: str,
        tools: Sequence[ToolSpec],
        tally: DayTally | None = None,
    ) -> int:
        """Let the model act until it says it is done or runs out of steps; returns steps used.
        Each response's usage goes into ``tally`` and, beside the reply, into the log."""
        tally = tally if tally is not None else DayTally()
        specs = openai_tools(tools)
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": prompt},
            {"role": "user", "content": "Please analyse the positions and trade for today."},
        ]
        for message in messages:
            record(message)
        for step in range(1, self.max_steps + 1):
            response = await self._complete(messages, specs, step)
            usage = usage_of(response)
            tally.add(usage)
            reply = response.choices[0].message
            calls = reply.tool_calls or []
            assistant: dict[str, Any] = {"role": "assistant", "content": reply.content or ""}
            if calls:
                assistant["tool_calls"] = [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.function.name, "arguments": c.function.arguments},
                    }
                    for c in calls
                ]
            messages.append(assistant)
            # The usage is the log's, never the conversation's: the API is not sent it back.
            record({**assistant, "usage": usage.to_json() if usage else None})
            for tool_call in calls:
                arguments = parse_arguments(tool_call.function.arguments)
                result: Any
                if isinstance(arguments, str):
                    result = {"error": arguments}
                else:
                    try:
                        result = await call(tool_call.function.name, arguments)
                    except ToolRefused as exc:
                        # The model reads the refusal and may correct itself; the run goes on.
                        result = {"error": str(exc)}
                message = {
                    "role": "tool",
                    "tool_call_id": tool_call.id,
                    "content": json.dumps(result, default=str),
                }
                messages.append(message)
                record({**message, "name": tool_call.function.name})
            if not calls or FINISH_SIGNAL in (reply.content or ""):
                return step
        log.warning(
            "model %s: stopped after max_steps=%d without %s",
            self.model,
            self.max_steps,
            FINISH_SIGNAL,
        )
        return self.max_steps
