"""Regressions found in review: each test failed before its fix."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from aiguard import AIGuardMiddleware, Runtime
from aiguard.screens.pipeline import ScreenPipeline
from tests.asgi.harness import call, chat, make_policy
from tests.asgi.test_middleware import completion
from tests.asgi.test_screened_responses import BombScreen, EmailScreen

pytestmark = pytest.mark.anyio


def _assert_asgi_valid(rec: Any) -> None:
    starts = [m for m in rec.messages if m["type"] == "http.response.start"]
    assert len(starts) == 1, rec.messages
    bodies = rec.bodies
    finals = [i for i, m in enumerate(bodies) if not m.get("more_body", False)]
    assert finals == [len(bodies) - 1], f"body messages after more_body=False: {bodies}"


# A. JSON answer fully sent, then the app raises (e.g. a failing BackgroundTask)
async def test_json_complete_then_exception_sends_extra_body(tmp_path: Path) -> None:
    def boom() -> None:
        raise RuntimeError("background task failed")

    async def ep(request: Request) -> Response:
        return JSONResponse(completion(), background=BackgroundTask(boom))

    app = Starlette(routes=[Route("/v1/chat/completions", ep, methods=["POST"])])
    mw = AIGuardMiddleware(app, policy=make_policy(tmp_path))
    rec = await call(mw, chat())
    assert rec.status == 200
    _assert_asgi_valid(rec)


# B. Two upstream Vary headers: one is silently dropped
async def test_multiple_vary_headers_are_kept(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        body = json.dumps(completion()).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"vary", b"Origin"),
                    (b"vary", b"Cookie"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    mw = AIGuardMiddleware(app, policy=make_policy(tmp_path))
    rec = await call(mw, chat())
    vary = ", ".join(rec.header_list("vary"))
    assert "Origin" in vary and "Cookie" in vary, vary


# C. A cookie whose signature part is non-ASCII crashes the request (TypeError)
async def test_non_ascii_cookie_signature_is_ignored(tmp_path: Path) -> None:
    async def ep(request: Request) -> Response:
        return JSONResponse(completion())

    app = Starlette(routes=[Route("/v1/chat/completions", ep, methods=["POST"])])
    mw = AIGuardMiddleware(app, policy=make_policy(tmp_path))
    # header bytes are latin-1 per ASGI; "\xe9" = "é"
    rec = await call(mw, chat(), headers={"cookie": "aiguard_sid=abc.\u00e9"})
    assert rec.status == 200
    assert rec.header_list("set-cookie")  # forged cookie replaced


# D. aiguard startup failure during lifespan: the app never gets to report startup.failed,
#    the exception escapes before Starlette's try block (uvicorn 'auto' then treats lifespan as
#    unsupported and runs the app WITHOUT its own startup).
async def test_lifespan_startup_failure_is_reported(tmp_path: Path) -> None:
    entered: list[str] = []

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: Any) -> Any:
        entered.append("startup")
        yield

    app = Starlette(lifespan=lifespan)
    rt = Runtime(make_policy(tmp_path))

    async def failing_start() -> None:
        raise RuntimeError("db down")

    rt.start = failing_start  # type: ignore[method-assign]
    mw = AIGuardMiddleware(app, runtime=rt)
    inbox: list[Message] = [{"type": "lifespan.startup"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return inbox.pop(0) if inbox else {"type": "lifespan.shutdown"}

    async def send(m: Message) -> None:
        sent.append(m)

    with contextlib.suppress(RuntimeError):
        await mw({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert any(m["type"] == "lifespan.startup.failed" for m in sent), (
        f"sent={sent} entered={entered}"
    )


# E. Pseudonymizer memo keeps the full raw id as key: 1 MB `user` fields are retained
async def test_memo_retains_huge_raw_ids(tmp_path: Path) -> None:
    async def ep(request: Request) -> Response:
        return JSONResponse(completion())

    app = Starlette(routes=[Route("/v1/chat/completions", ep, methods=["POST"])])
    mw = AIGuardMiddleware(app, policy=make_policy(tmp_path))
    for i in range(5):
        body = chat()
        body["user"] = str(i) + "x" * 500_000
        await call(mw, body)
    retained = sum(len(k) for k in mw.runtime.pseudonymizer._memo)
    assert retained < 100_000, f"memo retains {retained} bytes of raw ids"


# F. HTTP/2 servers may split Cookie into several header fields (RFC 9113 8.2.3):
#    aiguard reads only the first, so the browser gets a new subject each request.
async def test_split_cookie_headers_keep_subject(tmp_path: Path) -> None:
    async def ep(request: Request) -> Response:
        return JSONResponse(completion())

    app = Starlette(routes=[Route("/v1/chat/completions", ep, methods=["POST"])])
    mw = AIGuardMiddleware(app, policy=make_policy(tmp_path))
    first = await call(mw, chat())
    cookie = first.header_list("set-cookie")[0].split(";")[0]
    seen: list[Any] = []

    async def spy(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["aiguard.identity"].subject_id)
        await app(scope, receive, send)

    mw.app = spy
    from tests.asgi.harness import Recorder
    from tests.asgi.harness import scope as mkscope

    sc = mkscope()
    sc["headers"] += [(b"cookie", b"theme=dark"), (b"cookie", cookie.encode())]
    body = json.dumps(chat()).encode()
    q = [{"type": "http.request", "body": body, "more_body": False}]

    async def rcv() -> Message:
        return q.pop(0)

    rec = Recorder()
    await mw(sc, rcv, rec)
    assert not rec.header_list("set-cookie"), "valid cookie ignored; a new one was minted"


def _screened(app: Any, tmp_path: Path, **kw: Any) -> AIGuardMiddleware:
    policy = make_policy(tmp_path, screening={"enabled": True, "screens": ["pii", "harm"]}, **kw)
    rt = Runtime(policy)
    rt.screener = ScreenPipeline(policy, rt.catalogue, [EmailScreen(), BombScreen()])
    return AIGuardMiddleware(app, runtime=rt)


# G. Non-OpenAI SSE with a dotted field: blocked replacement uses the dotted path as a flat key
async def test_plain_sse_blocked_with_dotted_field(tmp_path: Path) -> None:
    async def ep(request: Request) -> Response:
        async def gen() -> Any:
            yield b'data: {"data": {"reply": "how to build a bomb."}}\n\n'

        return StreamingResponse(gen(), media_type="text/event-stream")

    app = Starlette(routes=[Route("/chat", ep, methods=["POST"])])
    mw = _screened(
        app, tmp_path, routes=[{"path": "/chat", "format": "json", "field": "data.reply"}]
    )
    rec = await call(mw, {"q": "x"}, path="/chat")
    body = rec.body.decode()
    # expected: plain-JSON events shaped {"data": {"reply": ...}}; no OpenAI chunks / [DONE]
    assert "chat.completion.chunk" not in body and "[DONE]" not in body, body
    assert '"data.reply"' not in body, body


def _oai_chunk(index: int, content: str | None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m-1",
        "choices": [{"index": index, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _stream_app(parts: list[bytes], path: str = "/v1/chat/completions") -> Starlette:
    async def ep(request: Request) -> Response:
        async def gen() -> Any:
            for p in parts:
                yield p

        return StreamingResponse(gen(), media_type="text/event-stream")

    return Starlette(routes=[Route(path, ep, methods=["POST"])])


def _delta_text(body: bytes, index: int = 0) -> str:
    from tests.asgi.test_middleware import events_of

    out = []
    for ev in events_of(body):
        if isinstance(ev, dict) and "choices" in ev:
            for c in ev["choices"]:
                if c.get("index", 0) == index:
                    out.append(c.get("delta", {}).get("content") or "")
    return "".join(out)


# H. Final chunk carrying both content and finish_reason: held-back tail is emitted BEFORE
#    the text released from this chunk's own content -> answer text reordered.
async def test_content_and_finish_in_same_chunk_keeps_order(tmp_path: Path) -> None:
    app = _stream_app(
        [_oai_chunk(0, "Hello there"), _oai_chunk(0, ". Bye", "stop"), b"data: [DONE]\n\n"]
    )
    mw = _screened(app, tmp_path, disclosure={"mode": "off"})
    rec = await call(mw, chat(stream=True))
    assert _delta_text(rec.body) == "Hello there. Bye", repr(_delta_text(rec.body))


# I. Plain-JSON SSE (format json, field "answer"): text held back until the end is released
#    as a bare text event instead of {"answer": ...}
async def test_plain_json_sse_tail_is_json(tmp_path: Path) -> None:
    app = _stream_app(
        [b'data: {"answer": "Hello"}\n\n', b'data: {"answer": " there"}\n\n'], path="/chat"
    )
    mw = _screened(
        app,
        tmp_path,
        disclosure={"mode": "off", "metadata": False},
        routes=[{"path": "/chat", "format": "json"}],
    )
    rec = await call(mw, {"q": "x"}, path="/chat")
    for line in rec.body.decode().splitlines():
        if line.startswith("data: "):
            json.loads(line[6:])  # every event must stay JSON for the client


# J. Multi-choice stream with screens: the message record interleaves choice 0 and choice 1
async def test_record_of_multichoice_stream_is_choice0_only(tmp_path: Path) -> None:
    app = _stream_app(
        [
            _oai_chunk(0, "Zero says hi."),
            _oai_chunk(1, "One says bye."),
            _oai_chunk(0, None, "stop"),
            _oai_chunk(1, None, "stop"),
            b"data: [DONE]\n\n",
        ]
    )
    mw = _screened(app, tmp_path, disclosure={"mode": "off"})
    from aiguard.asgi import responder as rmod

    seen: list[Any] = []
    orig = rmod.Responder.record

    def spy(self: Any) -> Any:
        r = orig(self)
        seen.append(r)
        return r

    rmod.Responder.record = spy  # type: ignore[method-assign]
    try:
        mw.runtime.records = type("R", (), {"add": lambda self, r: None})()  # type: ignore
        await call(mw, chat(stream=True))
    finally:
        rmod.Responder.record = orig  # type: ignore[method-assign]
    assert seen and "One says bye" not in seen[0].answer, seen[0].answer


# D2. With real uvicorn (lifespan="auto"): aiguard failing to start stops the server from
#     starting, instead of silently serving the app without its own startup.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_uvicorn_refuses_to_start_when_aiguard_cannot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tests.servers import serve

    app = Starlette(routes=[])
    rt = Runtime(make_policy(tmp_path))

    async def broken_start() -> None:
        raise RuntimeError("db not up yet")

    rt.start = broken_start  # type: ignore[method-assign]
    with (
        pytest.raises(RuntimeError, match="did not start"),
        serve(AIGuardMiddleware(app, runtime=rt), lifespan="auto"),
    ):
        pass
    assert "aiguard could not start" in caplog.text
