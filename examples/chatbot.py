"""An example chatbot: OpenAI-compatible ``/v1/chat/completions`` and a plain ``/chat`` route.

By default it answers with a local scripted model that streams deterministic answers token by
token (no network, no key). With ``OPENAI_API_KEY`` set it forwards to OpenAI instead.
This file knows nothing about aiguard: the demo wraps it with ``AIGuardMiddleware``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

SCRIPTS: list[tuple[re.Pattern[str], str]] = [
    (
        re.compile(r"\b(hello|hi|hallo|bonjour|hola|你好)\b", re.I),
        "Hello! I am a scripted demo assistant. Ask me about the weather, the capital of "
        "France, or how to reach our support team.",
    ),
    (
        re.compile(r"capital", re.I),
        "The capital of France is Paris. It has been the capital for most of the time since "
        "the 10th century.",
    ),
    (
        re.compile(r"weather", re.I),
        "I cannot see live weather data, but in a typical November Amsterdam is cool and "
        "rainy, around 8 degrees Celsius.",
    ),
    (
        re.compile(r"support|contact|email", re.I),
        "You can reach our support team at support@example.com or call +31 20 123 4567 on "
        "weekdays.",
    ),
]
FALLBACK = (
    "I am a scripted demo model, so I only know a few answers. Try asking about the capital of "
    "France, the weather, or support."
)


def scripted_answer(messages: list[dict[str, Any]]) -> str:
    last = next((m for m in reversed(messages) if m.get("role") == "user"), None)
    text = str(last.get("content", "")) if last else ""
    for pattern, answer in SCRIPTS:
        if pattern.search(text):
            return answer
    return FALLBACK


def tokens(text: str) -> list[str]:
    """Split like a tokenizer would: words with their leading space."""
    return re.findall(r"\s*\S+", text)


class ScriptedModel:
    name = "scripted-demo-1"

    def __init__(self, delay: float = 0.03) -> None:
        self.delay = delay

    async def complete(self, messages: list[dict[str, Any]]) -> str:
        return scripted_answer(messages)

    async def stream(self, messages: list[dict[str, Any]]) -> AsyncIterator[str]:
        for tok in tokens(scripted_answer(messages)):
            if self.delay:
                await asyncio.sleep(self.delay)
            yield tok


class OpenAIModel:
    """Forwards to OpenAI with the official client (used when OPENAI_API_KEY is set)."""

    def __init__(self, model: str = "gpt-4o-mini") -> None:
        from openai import AsyncOpenAI

        self.client = AsyncOpenAI()
        self.name = model

    async def complete(self, messages: list[dict[str, Any]]) -> str:
        out = await self.client.chat.completions.create(model=self.name, messages=messages)  # type: ignore[arg-type]
        return out.choices[0].message.content or ""

    async def stream(self, messages: list[dict[str, Any]]) -> AsyncIterator[str]:
        stream = await self.client.chat.completions.create(
            model=self.name,
            messages=messages,  # type: ignore[arg-type]
            stream=True,
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content


def _chunk(cid: str, model: str, created: int, delta: dict[str, Any], finish: str | None) -> str:
    body = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body)}\n\n"


def build_app(model: ScriptedModel | OpenAIModel | None = None) -> Starlette:
    if model is None:
        model = OpenAIModel() if os.environ.get("OPENAI_API_KEY") else ScriptedModel()
    bot = model

    async def completions(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": {"message": "invalid JSON"}}, status_code=400)
        messages = body.get("messages") if isinstance(body, dict) else None
        if not isinstance(messages, list):
            return JSONResponse({"error": {"message": "messages is required"}}, status_code=400)
        cid = "chatcmpl-" + uuid.uuid4().hex
        created = int(time.time())
        if body.get("stream"):

            async def events() -> AsyncIterator[str]:
                yield _chunk(cid, bot.name, created, {"role": "assistant", "content": ""}, None)
                async for tok in bot.stream(messages):
                    yield _chunk(cid, bot.name, created, {"content": tok}, None)
                yield _chunk(cid, bot.name, created, {}, "stop")
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        text = await bot.complete(messages)
        return JSONResponse(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": bot.name,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            }
        )

    async def chat(request: Request) -> Response:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "invalid JSON"}, status_code=400)
        question = str(body.get("message", "")) if isinstance(body, dict) else ""
        answer = await bot.complete([{"role": "user", "content": question}])
        return JSONResponse({"answer": answer})

    return Starlette(
        routes=[
            Route("/v1/chat/completions", completions, methods=["POST"]),
            Route("/chat", chat, methods=["POST"]),
        ]
    )


app = build_app()
