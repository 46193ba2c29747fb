"""A fake OpenAI-compatible upstream, served by uvicorn on loopback.

The request's ``model`` picks the behaviour, so one server covers every case:
``ok`` (default), ``rate-limited`` (429), ``boom`` (500), ``broken`` (stream dies mid-way),
``slow`` (answers after 2 s), ``gzip`` (compressed JSON), ``gated`` (streams one token, then
waits until the test calls ``release``), ``endless`` (streams until cancelled), ``bomb`` (a
long harmful stream).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

ANSWER = "Paris is the capital of France. Mail paris@example.org for more."
TOKENS = [
    "Paris ", "is ", "the ", "capital ", "of ", "France. ", "Mail ", "paris@example.org ", "for ",
    "more.",
]  # fmt: skip
BOMB = ["Sure. ", "To make a ", "bomb ", "you ", "need ", *["things. "] * 100]


def completion(text: str, model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-up",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 10, "total_tokens": 13},
    }


def chunk(content: str | None, model: str, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    body = {
        "id": "chatcmpl-up",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


class Upstream:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.released = threading.Event()
        self.finished: list[str] = []  # models whose answer ran to its end
        self.cancelled: list[str] = []  # models whose stream was abandoned by the proxy

    def release(self) -> None:
        self.released.set()

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
                Route("/v1/models", self.models, methods=["GET"]),
                Route("/v1/embeddings", self.models, methods=["POST"]),
            ]
        )

    async def models(self, request: Request) -> Response:
        self.requests.append({"path": request.url.path, "headers": dict(request.headers)})
        return JSONResponse({"object": "list", "data": [{"id": "ok", "object": "model"}]})

    async def chat(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(
            {
                "path": request.url.path,
                "query": request.url.query,
                "headers": dict(request.headers),
                "json": body,
            }
        )
        model = body.get("model", "ok")
        if model == "rate-limited":
            return JSONResponse(
                {"error": {"message": "slow down", "type": "rate_limit", "code": "rate_limit"}},
                status_code=429,
                headers={"retry-after": "7"},
            )
        if model == "boom":
            return JSONResponse({"error": {"message": "upstream bug", "type": "server"}}, 500)
        if model == "slow":
            await asyncio.sleep(2)
        if model == "gzip":
            raw = json.dumps(completion(ANSWER, model)).encode()
            return Response(
                gzip.compress(raw),
                media_type="application/json",
                headers={"content-encoding": "gzip"},
            )
        if not body.get("stream"):
            self.finished.append(model)
            return JSONResponse(completion(ANSWER, model))
        return StreamingResponse(self._stream(model), media_type="text/event-stream")

    async def _stream(self, model: str) -> AsyncIterator[bytes]:
        tokens = BOMB if model == "bomb" else TOKENS
        try:
            for i, tok in enumerate(tokens):
                yield chunk(tok, model)
                if model == "broken" and i == 2:
                    raise RuntimeError("upstream died mid-stream")
                if model == "gated" and i == 0:
                    deadline = time.monotonic() + 5
                    while not self.released.is_set():
                        if time.monotonic() > deadline:
                            yield chunk("[NEVER RELEASED]", model)
                            break
                        await asyncio.sleep(0.01)
                if model in ("endless", "bomb"):
                    await asyncio.sleep(0.02)
            while model == "endless":
                yield chunk("more ", model)
                await asyncio.sleep(0.02)
            yield chunk(None, model, "stop")
            yield b"data: [DONE]\n\n"
            self.finished.append(model)
        except (asyncio.CancelledError, GeneratorExit):
            self.cancelled.append(model)
            raise
