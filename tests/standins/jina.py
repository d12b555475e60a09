"""Jina search (s.jina.ai) and reader (r.jina.ai), JSON flavour (``Accept: application/json``)."""

from __future__ import annotations

from typing import Any

from .state import State


def _count(state: State) -> list[dict[str, Any]]:
    with state.lock:
        state.jina_requests += 1
        return [dict(r) for r in state.scenario["jina"].get("results", [])]


def _unauthorized() -> tuple[int, Any]:
    return 401, {
        "data": None,
        "code": 401,
        "name": "AuthenticationRequiredError",
        "status": 40103,
        "message": "Authentication is required to use this endpoint. "
        "Please provide a valid API key via Authorization header.",
        "readableMessage": "AuthenticationRequiredError: Authentication is required to use "
        "this endpoint. Please provide a valid API key via Authorization header.",
    }


def search(state: State, headers: Any, query: str) -> tuple[int, Any]:
    results = _count(state)
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _unauthorized()
    if not query.strip():
        return 400, {
            "data": None,
            "code": 400,
            "name": "ParamValidationError",
            "status": 40001,
            "message": "Query is required",
            "readableMessage": "ParamValidationError: Query is required",
        }
    data = [
        {
            "title": r.get("title", ""),
            "url": r.get("url", ""),
            "description": r.get("description", ""),
            "date": r.get("date", ""),
            "content": r.get("content", ""),
            "usage": {"tokens": max(1, len(str(r.get("content", ""))) // 4)},
        }
        for r in results
    ]
    return 200, {"code": 200, "status": 20000, "data": data, "meta": {"usage": {"tokens": 1}}}


def read(state: State, target: str) -> tuple[int, Any]:
    results = _count(state)
    match = next((r for r in results if r.get("url") == target), None)
    if match is None:
        title, content, published = "Stand-in page", f"Stand-in content for {target}", ""
    else:
        title = match.get("title", "")
        content = match.get("content", "")
        published = match.get("date", "")
    return 200, {
        "code": 200,
        "status": 20000,
        "data": {
            "title": title,
            "description": "" if match is None else match.get("description", ""),
            "url": target,
            "content": content,
            "publishedTime": published,
            "usage": {"tokens": max(1, len(content) // 4)},
        },
    }
