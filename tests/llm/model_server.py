"""llama-cpp-python's own OpenAI-compatible server, with one chat handler registered first.

Run as `python model_server.py ARGS`: the arguments are `python -m llama_cpp.server`'s, and
so is everything that serves (its FastAPI app, its uvicorn main). The one addition is the
chat format `chatml-function-calling-auto`: llama-cpp-python's `chatml-function-calling`
with the OpenAI API's default filled in, tool_choice "auto" when the request gives tools.

Why: that handler writes the tools into the prompt, and parses the model's calls back into
`tool_calls`, only when the request sets tool_choice; with none it serves a plain chat that
never sees a tool. ai-trader, as the API allows, sends tools and no tool_choice. The model's
own template (the GGUF's ChatML) never yields `tool_calls` at all: llama-cpp-python parses
calls only in its function-calling handlers.
"""

from __future__ import annotations

from typing import Any

from llama_cpp import llama_chat_format
from llama_cpp.server.__main__ import main

FORMAT = "chatml-function-calling-auto"
_function_calling = llama_chat_format.get_chat_completion_handler("chatml-function-calling")


@llama_chat_format.register_chat_completion_handler(FORMAT)
def chatml_function_calling_auto(**request: Any) -> Any:
    if request.get("tools") and request.get("tool_choice") is None:
        request["tool_choice"] = "auto"
    return _function_calling(**request)


if __name__ == "__main__":
    main()
