"""A small OpenAI-compatible server (Starlette) speaking the real wire formats on loopback.

``POST /v1/moderations`` answers like omni-moderation (13 categories, scores, applied input
types); ``POST /v1/chat/completions`` answers like a chat model. Magic words in the input pick
the behaviour: ``FAIL500`` -> HTTP 500, ``SLOWLY`` -> answer after 2 s, ``hate``/``kill`` ->
high scores. Every request is recorded for assertions.
"""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

KEYS = [
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
]


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.chat_reply = '{"flagged": false, "categories": {}}'
        self.app = Starlette(
            routes=[
                Route("/v1/moderations", self.moderations, methods=["POST"]),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
            ]
        )

    async def _record(self, request: Request) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(await request.body())
        self.requests.append(
            {
                "path": request.url.path,
                "body": body,
                "auth": request.headers.get("authorization", ""),
            }
        )
        return body

    async def _misbehave(self, text: str) -> JSONResponse | None:
        if "FAIL500" in text:
            return JSONResponse(
                {"error": {"message": "boom", "type": "server_error", "param": None, "code": None}},
                status_code=500,
            )
        if "SLOWLY" in text:
            await anyio.sleep(2.0)
        return None

    async def moderations(self, request: Request) -> JSONResponse:
        body = await self._record(request)
        text = body["input"] if isinstance(body["input"], str) else json.dumps(body["input"])
        bad = await self._misbehave(text)
        if bad is not None:
            return bad
        scores = dict.fromkeys(KEYS, 0.0001)
        if "hate" in text:
            scores.update({"hate": 0.91, "harassment": 0.62, "hate/threatening": 0.2})
        if "kill" in text:
            scores.update(
                {"violence": 0.4, "violence/graphic": 0.97, "harassment/threatening": 0.7}
            )
        return JSONResponse(
            {
                "id": "modr-fake",
                "model": body.get("model", "omni-moderation-latest"),
                "results": [
                    {
                        "flagged": any(v >= 0.5 for v in scores.values()),
                        "categories": {k: v >= 0.5 for k, v in scores.items()},
                        "category_scores": scores,
                        "category_applied_input_types": {k: ["text"] for k in KEYS},
                    }
                ],
            }
        )

    async def chat(self, request: Request) -> JSONResponse:
        body = await self._record(request)
        text = json.dumps(body["messages"])
        bad = await self._misbehave(text)
        if bad is not None:
            return bad
        return JSONResponse(
            {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "gpt-fake"),
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "logprobs": None,
                        "message": {"role": "assistant", "content": self.chat_reply},
                    }
                ],
                "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
            }
        )
