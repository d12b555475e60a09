"""An OpenAI-compatible chat-completions API whose replies follow a script.

The server is stateless per conversation: the step played for a request is the number of
assistant messages already in it, so every new conversation starts at step 0.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from .state import State

FINISH_SIGNAL = "<FINISH_SIGNAL>"
DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def error(status: int, message: str, kind: str, code: str | None) -> tuple[int, Any]:
    return status, {"error": {"message": message, "type": kind, "param": None, "code": code}}


def unauthorized(state: State, headers: Any) -> tuple[int, Any] | None:
    auth = headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return error(
            401,
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            "invalid_request_error",
            None,
        )
    with state.lock:
        keys = state.scenario["openai"].get("keys")
    if keys is not None and token.strip() not in keys:
        return error(
            401,
            "Incorrect API key provided. You can find your API key in your account settings.",
            "invalid_request_error",
            "invalid_api_key",
        )
    return None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def today_of(messages: list[Any]) -> str | None:
    """The first YYYY-MM-DD in the first system message that has one."""
    for message in messages:
        if isinstance(message, dict) and message.get("role") == "system":
            found = DATE.search(_text(message.get("content")))
            if found:
                return found.group(0)
    return None


def _substitute(value: Any, today: str | None) -> Any:
    if today is None:
        return value
    if isinstance(value, str):
        return value.replace("{today}", today)
    if isinstance(value, list):
        return [_substitute(v, today) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, today) for k, v in value.items()}
    return value


def models(state: State, headers: Any, model_id: str | None) -> tuple[int, Any]:
    denied = unauthorized(state, headers)
    if denied:
        return denied
    with state.lock:
        known = list(state.scenario["openai"].get("models", []))
    entries = [{"id": m, "object": "model", "created": 0, "owned_by": "standins"} for m in known]
    if model_id is None:
        return 200, {"object": "list", "data": entries}
    for entry in entries:
        if entry["id"] == model_id:
            return 200, entry
    return _no_model(model_id)


def _no_model(model: str) -> tuple[int, Any]:
    return error(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    )


def chat(state: State, headers: Any, raw: bytes) -> tuple[int, Any, bool]:
    """Answer one chat-completions request; the bool says whether to stream it as SSE.

    It counts as in flight (the stats' ``in_flight`` and ``max_in_flight``) from its count
    until its answer is made."""
    try:
        body = json.loads(raw or b"null")
    except ValueError:
        body = None
    number = state.chat_began()
    try:
        return _answer(state, headers, raw, body, number)
    finally:
        state.chat_ended()


def _answer(
    state: State, headers: Any, raw: bytes, body: Any, number: int
) -> tuple[int, Any, bool]:
    with state.lock:
        state.openai_bodies.append(body)
        config = state.scenario["openai"]
        fail = bool(config.get("always_fail")) or number <= int(config.get("fail_first", 0))
        known = list(config.get("models", []))
        script = list(config.get("script", []))
        delay = float(config.get("delay", 0))
        # "usage": false answers without the usage object (some servers do); a number in
        # "cached_tokens" reports that many of the prompt's tokens as served from a cache.
        with_usage = config.get("usage", True) is not False
        cached = int(config.get("cached_tokens", 0))
    # A slow model keeps a run going long enough to stop it in the middle, and stands for
    # a model API's answer time. Waited in this request's thread: concurrent requests wait
    # side by side. Stopping the stand-ins ends the wait.
    if delay > 0:
        state.stopping.wait(delay)
    # A held model keeps it there until the test lets it go.
    state.hold(number)
    denied = unauthorized(state, headers)
    if denied:
        return (*denied, False)
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        status, payload = error(
            400, "'messages' is a required property", "invalid_request_error", None
        )
        return status, payload, False
    model = str(body.get("model", ""))
    if model not in known:
        return (*_no_model(model), False)
    if fail:
        status, payload = error(
            500,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        )
        return status, payload, False
    messages = body["messages"]
    step = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")
    play = script[step] if step < len(script) else {"content": FINISH_SIGNAL}
    today = today_of(messages)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": _substitute(play.get("content"), today),
        "refusal": None,
    }
    calls = play.get("tool_calls") or []
    if calls:
        message["tool_calls"] = [
            {
                "id": f"call_{step}_{index}",
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": json.dumps(_substitute(call.get("arguments", {}), today)),
                },
            }
            for index, call in enumerate(calls)
        ]
    prompt_tokens = max(1, len(raw) // 4)
    completion_tokens = max(1, len(json.dumps(message)) // 4)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": min(cached, prompt_tokens)}
    completion = {
        "id": f"chatcmpl-standin-{number}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if calls else "stop",
            }
        ],
        "usage": usage,
        "system_fingerprint": None,
    }
    if not with_usage:
        del completion["usage"]
    return 200, completion, bool(body.get("stream"))


def as_stream(completion: dict[str, Any]) -> str:
    """The same completion as server-sent ``chat.completion.chunk`` events."""
    choice = completion["choices"][0]
    message = choice["message"]
    delta: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
    if message.get("tool_calls"):
        delta["tool_calls"] = [{"index": i, **call} for i, call in enumerate(message["tool_calls"])]
    base = {k: completion[k] for k in ("id", "created", "model", "system_fingerprint")}
    chunks = [
        {**base, "object": "chat.completion.chunk",
         "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}]},
        {**base, "object": "chat.completion.chunk",
         "choices": [{"index": 0, "delta": {}, "logprobs": None,
                      "finish_reason": choice["finish_reason"]}]},
    ]  # fmt: skip
    return "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
