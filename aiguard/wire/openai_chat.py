"""Accessors for OpenAI Chat Completions bodies and stream chunks (pure, no I/O)."""

from __future__ import annotations

from typing import Any


def is_completion(obj: Any) -> bool:
    """A non-streamed ``chat.completion`` object with at least one message choice."""
    if not isinstance(obj, dict):
        return False
    choices = obj.get("choices")
    if not isinstance(choices, list) or not choices:
        return False
    for c in choices:
        if not isinstance(c, dict) or not isinstance(c.get("message"), dict):
            return False
    return True


def is_chunk(obj: Any) -> bool:
    return (
        isinstance(obj, dict)
        and isinstance(obj.get("choices"), list)
        and (obj.get("object") == "chat.completion.chunk" or _has_delta(obj["choices"]))
    )


def _has_delta(choices: list[Any]) -> bool:
    return any(isinstance(c, dict) and isinstance(c.get("delta"), dict) for c in choices)


def chunk(
    *,
    id: str,
    model: str,
    created: int,
    content: str | None = None,
    role: str | None = None,
    finish_reason: str | None = None,
    index: int = 0,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    out: dict[str, Any] = {
        "id": id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": index, "delta": delta, "finish_reason": finish_reason}],
    }
    if extra:
        out.update(extra)
    return out


def request_info(body: Any) -> tuple[str | None, str | None, list[Any] | None, bool]:
    """``(model, user, messages, stream)`` from a chat request body, tolerating any shape."""
    if not isinstance(body, dict):
        return None, None, None, False
    model = body.get("model")
    user = body.get("user")
    messages = body.get("messages")
    return (
        model if isinstance(model, str) else None,
        user if isinstance(user, str) and user else None,
        messages if isinstance(messages, list) else None,
        body.get("stream") is True,
    )


def has_assistant_turn(messages: list[Any]) -> bool:
    return any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages)
