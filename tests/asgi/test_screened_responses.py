"""The responder with the real screen pipeline (small deterministic screens) in front of it."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import openai
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from aiguard import AIGuardMiddleware, Runtime
from aiguard.screens.base import ScreenContext, ScreenResult, Span, Verdict
from aiguard.screens.pipeline import ScreenPipeline
from tests.asgi.harness import call, chat, make_policy
from tests.asgi.test_middleware import completion, events_of, sse_chunk
from tests.servers import serve

pytestmark = pytest.mark.anyio
BLOCKED = "This answer was withheld"
EMAIL = re.compile(r"[\w.]+@[\w.]+\.\w+")


class EmailScreen:
    name = "pii"

    async def load(self) -> None:
        pass

    async def screen(self, text: str, context: ScreenContext) -> ScreenResult:
        spans = tuple(
            Span("EMAIL_ADDRESS", m.start(), m.end(), 0.99, "email") for m in EMAIL.finditer(text)
        )
        return ScreenResult(self.name, Verdict.REDACT if spans else Verdict.ALLOW, spans)


class BombScreen:
    name = "harm"
    calls = 0

    async def load(self) -> None:
        pass

    async def screen(self, text: str, context: ScreenContext) -> ScreenResult:
        BombScreen.calls += 1
        i = text.find("bomb")
        if i < 0:
            return ScreenResult(self.name, Verdict.ALLOW)
        return ScreenResult(self.name, Verdict.BLOCK, (Span("violence", i, i + 4, 0.97, "bomb"),))


def guarded(app: Any, tmp_path: Path, **kw: Any) -> AIGuardMiddleware:
    policy = make_policy(tmp_path, screening={"enabled": True, "screens": ["pii", "harm"]}, **kw)
    rt = Runtime(policy)
    rt.screener = ScreenPipeline(policy, rt.catalogue, [EmailScreen(), BombScreen()])
    return AIGuardMiddleware(app, runtime=rt)


def sse_app(tokens: list[str], produced: list[str] | None = None, delay: float = 0) -> Starlette:
    async def ep(request: Request) -> Response:
        async def gen() -> AsyncIterator[bytes]:
            for tok in tokens:
                if delay:
                    await anyio.sleep(delay)
                if produced is not None:
                    produced.append(tok)
                yield sse_chunk(tok)
            yield sse_chunk(None, "stop")
            yield b"data: [DONE]\n\n"

        return StreamingResponse(gen(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1/chat/completions", ep, methods=["POST"])])


def assembled(body: bytes) -> tuple[str, list[Any]]:
    evs = events_of(body)
    text = "".join(
        (e["choices"][0]["delta"].get("content") or "")
        for e in evs
        if isinstance(e, dict) and e.get("choices")
    )
    return text, evs


@pytest.mark.parametrize("split", range(1, 17))
async def test_email_split_across_chunks_is_redacted(tmp_path: Path, split: int) -> None:
    answer = "Write to john.doe@example.com for help. Thanks."
    at = answer.index("john") + split
    tokens = [answer[:at], answer[at:]]
    rec = await call(guarded(sse_app(tokens), tmp_path), chat(stream=True))
    text, evs = assembled(rec.body)
    assert "john.doe" not in text and "example.com" not in text
    assert "[EMAIL]" in text and text.endswith("for help. Thanks.")
    assert evs[-1] == "[DONE]"
    assert len({e["id"] for e in evs if isinstance(e, dict)}) == 1  # one answer, one id


async def test_block_mid_stream_ends_with_content_filter_and_done(tmp_path: Path) -> None:
    produced: list[str] = []
    tokens = ["Sure. ", "Here is ", "how to ", "make a ", "bomb ", "at home. ", *["more. "] * 50]
    rec = await call(guarded(sse_app(tokens, produced), tmp_path), chat(stream=True))
    text, evs = assembled(rec.body)
    assert "bomb" not in text and BLOCKED in text
    assert "Sure." in text  # released before the harmful sentence
    finishes = [e["choices"][0]["finish_reason"] for e in evs if isinstance(e, dict)]
    assert finishes[-1] == "content_filter" and evs[-1] == "[DONE]"
    assert evs[-2]["aiguard"]["screening"]["verdict"] == "block"
    assert rec.bodies[-1]["more_body"] is False
    assert len(produced) < len(tokens)  # the upstream generator was stopped


async def test_sentences_are_released_before_the_stream_ends(tmp_path: Path) -> None:
    from tests.asgi.harness import Recorder, scope

    tokens = ["First sentence. ", "Second ", "one ", "is ", "slow", "."]
    app = guarded(sse_app(tokens, delay=0.05), tmp_path)
    rec = Recorder()
    seen_first_at: list[int] = []

    sent: list[bool] = []

    async def receive() -> Any:
        if not sent:
            sent.append(True)
            return {"type": "http.request", "body": json.dumps(chat(stream=True)).encode()}
        await anyio.sleep_forever()

    async def watch() -> None:
        while True:
            text, _ = assembled(rec.body)
            if "First sentence." in text:
                seen_first_at.append(len(rec.bodies))
                return
            await anyio.sleep(0.005)

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        await app(scope(), receive, rec)
    assert seen_first_at, "first sentence never released"
    text, _ = assembled(rec.body)
    assert text.endswith("Second one is slow.")
    assert len(rec.bodies) > seen_first_at[0]  # more bodies came after: it streamed


async def test_json_answer_redacted_and_blocked(tmp_path: Path) -> None:
    app = guarded(
        Starlette(
            routes=[
                Route(
                    "/v1/chat/completions",
                    lambda r: JSONResponse(completion("Mail ann@x.org now.")),
                    methods=["POST"],
                ),
                Route(
                    "/chat",
                    lambda r: JSONResponse({"answer": "A bomb recipe."}),
                    methods=["POST"],
                ),
            ]
        ),
        tmp_path,
    )
    body = (await call(app, chat(history=True))).json()
    assert body["choices"][0]["message"]["content"] == "Mail [EMAIL] now."
    assert body["aiguard"]["screening"]["verdict"] == "redact"
    blocked = await call(app, {"message": "q"}, path="/chat", headers={"x-conversation-id": "c"})
    answer = blocked.json()["answer"]
    assert BLOCKED in answer and "bomb" not in answer


async def test_text_plain_stream_is_screened(tmp_path: Path) -> None:
    async def ep(request: Request) -> Response:
        async def gen() -> AsyncIterator[bytes]:
            for part in (b"Reach me at a", b"b@cd.com please. ", b"Bye."):
                yield part

        return StreamingResponse(gen(), media_type="text/plain")

    app = guarded(Starlette(routes=[Route("/chat", ep, methods=["POST"])]), tmp_path)
    text = (await call(app, {"message": "q"}, path="/chat")).body.decode()
    assert "ab@cd.com" not in text and text.endswith("Reach me at [EMAIL] please. Bye.")


@pytest.fixture(scope="module")
def blocking_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("blk")
    tokens = ["Okay. ", "To make a ", "bomb you ", "need ", "things. "]
    with serve(guarded(sse_app(tokens), Path(tmp))) as url:
        yield url + "/v1"


def test_openai_client_handles_content_filter_mid_stream(blocking_server: str) -> None:
    client = openai.OpenAI(base_url=blocking_server, api_key="unused", max_retries=0)
    chunks = list(
        client.chat.completions.create(
            model="x", messages=[{"role": "user", "content": "hi"}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "bomb" not in text and BLOCKED in text
    assert chunks[-1].choices[0].finish_reason == "content_filter"
