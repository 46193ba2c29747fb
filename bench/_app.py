"""The app benchmarked by bench/overhead.py: a bare chat endpoint, optionally guarded.

Run as ``python bench/_app.py MODE PORT`` where MODE is ``bare``, ``disclosure`` (aiguard with
screening, consent and records off), ``records`` (disclosure + message records) or ``full``
(default screens, message records, consent gate).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ANSWER = (
    "Paris is the capital and most populous city of France. It lies on the Seine in the north "
    "of the country. The city is a major centre of finance, diplomacy, commerce, culture, "
    "fashion and gastronomy. Its museums include the Louvre and the Musee d'Orsay. "
) * 4  # ~1 KB
TOKENS = [" tok"] * 200


def completion() -> bytes:
    return json.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "bench",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": ANSWER[:1024]},
                    "finish_reason": "stop",
                }
            ],
        }
    ).encode()


def chunk(content: str | None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    body = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "bench",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


BODY = completion()


async def endpoint(request: Request) -> Response:
    body = await request.json()
    if body.get("stream"):

        async def gen() -> AsyncIterator[bytes]:
            for tok in TOKENS:
                yield chunk(tok)
            yield chunk(None, "stop")
            yield b"data: [DONE]\n\n"

        return StreamingResponse(gen(), media_type="text/event-stream")
    return Response(BODY, media_type="application/json")


def build(mode: str) -> object:
    app = Starlette(routes=[Route("/v1/chat/completions", endpoint, methods=["POST"])])
    if mode == "bare":
        return app
    from aiguard import AIGuardMiddleware, load_policy

    tmp = Path(tempfile.mkdtemp(prefix="aiguard-bench-"))
    common = {
        "identity": {"secret": "bench-secret-0123456789"},
        "storage": {"url": f"sqlite:///{tmp / 'bench.db'}"},
    }
    if mode == "disclosure":
        policy = load_policy(
            environ={},
            **common,
            screening={"enabled": False},
            reports={"enabled": False},
        )
    elif mode == "records":  # disclosure + a message record per answer (batched writes)
        policy = load_policy(environ={}, **common, screening={"enabled": False})
    elif mode == "full":
        policy = load_policy(environ={}, **common, consent={"required": ["ai_interaction"]})
    else:
        raise SystemExit(f"unknown mode {mode}")
    return AIGuardMiddleware(app, policy=policy)


if __name__ == "__main__":
    mode, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run(build(mode), host="127.0.0.1", port=port, log_level="warning")  # type: ignore[arg-type]
