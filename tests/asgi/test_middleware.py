from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from aiguard import AIGuardMiddleware
from aiguard.wire.sse import SSEDecoder
from tests.asgi.harness import call, chat, make_policy

pytestmark = pytest.mark.anyio

EN_DISCLOSURE = "You are chatting with an AI, not a person."


def completion(text: str = "Paris is the capital.") -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m-1",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        ],
    }


def sse_chunk(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    body = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m-1",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def guard(app: Any, tmp_path: Path, **kw: Any) -> AIGuardMiddleware:
    return AIGuardMiddleware(app, policy=make_policy(tmp_path, **kw))


def events_of(body: bytes) -> list[Any]:
    dec = SSEDecoder()
    evs = dec.feed(body) + dec.flush()
    return [json.loads(e.data) if e.data.startswith("{") else e.data for e in evs if e.data]


def json_app(payload: Any, status: int = 200, **kw: Any) -> Starlette:
    async def endpoint(request: Request) -> Response:
        await request.body()
        return JSONResponse(payload, status_code=status, **kw)

    return Starlette(
        routes=[
            Route("/v1/chat/completions", endpoint, methods=["POST", "GET"]),
            Route("/chat", endpoint, methods=["POST"]),
            Route("/other", endpoint, methods=["POST", "GET"]),
        ]
    )


# -- non-streamed JSON -----------------------------------------------------------------------


async def test_openai_json_gets_disclosure_metadata_and_header(tmp_path: Path) -> None:
    app = guard(json_app(completion()), tmp_path)
    rec = await call(app, chat())
    assert rec.status == 200
    body = rec.json()
    content = body["choices"][0]["message"]["content"]
    assert content.startswith(EN_DISCLOSURE)
    assert content.endswith("\n\nParis is the capital.")
    meta = body["aiguard"]
    assert meta["ai_generated"] is True
    assert meta["message_id"] == rec.headers["x-aiguard-message-id"]
    assert meta["disclosure"]["shown"] is True and len(meta["disclosure"]["sha256"]) == 64
    assert meta["label"] == {
        "AIGC": {"Label": "1", "ContentProducer": "Acme Bot", "ProduceID": meta["message_id"]}
    }
    assert all(isinstance(v, str) for v in meta["label"]["AIGC"].values())
    assert int(rec.headers["content-length"]) == len(rec.body)
    hdr = rec.headers["ai-disclosure"]
    assert hdr.startswith('mode=machine-generated, provider="Acme Bot", model="m-1", date=@')


async def test_ai_disclosure_header_is_an_rfc9651_dictionary(tmp_path: Path) -> None:
    app = guard(json_app(completion()), tmp_path, provider='Evil "Corp" \\ Ünïcode')
    rec = await call(app, chat())
    hdr = rec.headers["ai-disclosure"]
    assert 'provider="Evil \\"Corp\\" \\\\ ?n?code"' in hdr
    members = [m.strip().split("=", 1)[0] for m in hdr.split(", ")]
    assert members == ["mode", "provider", "model", "date"]


async def test_disclosure_only_on_first_answer_by_default(tmp_path: Path) -> None:
    app = guard(json_app(completion()), tmp_path)
    rec = await call(app, chat(history=True))
    body = rec.json()
    assert body["choices"][0]["message"]["content"] == "Paris is the capital."
    assert body["aiguard"]["disclosure"]["shown"] is False
    assert "ai-disclosure" in rec.headers  # machine-readable always


@pytest.mark.parametrize(("mode", "expect_second"), [("every", True), ("first", False)])
async def test_mode_every_vs_first_on_plain_json(
    tmp_path: Path, mode: str, expect_second: bool
) -> None:
    app = guard(json_app({"answer": "42"}), tmp_path, disclosure={"mode": mode})
    hdrs = {"x-conversation-id": "conv-1"}
    first = (await call(app, {"message": "q"}, path="/chat", headers=hdrs)).json()
    second = (await call(app, {"message": "q"}, path="/chat", headers=hdrs)).json()
    assert first["answer"].startswith(EN_DISCLOSURE)
    assert second["answer"].startswith(EN_DISCLOSURE) is expect_second
    assert second["answer"].endswith("42")


async def test_metadata_off_leaves_the_body_shape_alone(tmp_path: Path) -> None:
    app = guard(json_app(completion()), tmp_path, disclosure={"metadata": False})
    rec = await call(app, chat())
    assert "aiguard" not in rec.json() and "ai-disclosure" in rec.headers


async def test_mode_off_keeps_machine_readable_parts(tmp_path: Path) -> None:
    app = guard(json_app(completion()), tmp_path, disclosure={"mode": "off"})
    rec = await call(app, chat())
    assert rec.json()["choices"][0]["message"]["content"] == "Paris is the capital."
    assert rec.json()["aiguard"]["ai_generated"] is True
    assert "ai-disclosure" in rec.headers


async def test_mode_interval(tmp_path: Path) -> None:
    from aiguard.policy.prompts import Catalogue
    from aiguard.services.disclosure import DisclosureService

    policy = make_policy(tmp_path, disclosure={"mode": "interval", "interval_minutes": 10})
    svc = DisclosureService(policy, Catalogue())
    assert svc.should_show("c", None, now=1000.0) is True
    assert svc.should_show("c", None, now=1000.0 + 599) is False
    assert svc.should_show("c", None, now=1000.0 + 601) is True
    assert svc.should_show("other", None, now=1001.0) is True


async def test_field_path_nested(tmp_path: Path) -> None:
    app = guard(
        json_app({"data": {"reply": "ok"}, "n": 1}),
        tmp_path,
        routes=[{"path": "/chat", "field": "data.reply"}],
    )
    body = (await call(app, {"message": "q"}, path="/chat")).json()
    assert body["data"]["reply"].startswith(EN_DISCLOSURE) and body["n"] == 1


@pytest.mark.parametrize(
    ("accept", "needle"),
    [
        ("zh-CN,zh;q=0.9", "您正在与人工智能"),
        ("zh-TW", "您正在与人工智能"),
        ("nl-BE, en;q=0.1", "U chat met een AI"),
        ("de", "Sie chatten mit einer KI"),
        ("fr-CA;q=0.8, es;q=0.9", "Está conversando con una IA"),
        ("fr", "Vous discutez avec une IA"),
        ("pt-BR, xx", EN_DISCLOSURE),
        ("*", EN_DISCLOSURE),
        ("", EN_DISCLOSURE),
    ],
)
async def test_locale_negotiation(tmp_path: Path, accept: str, needle: str) -> None:
    app = guard(json_app(completion()), tmp_path)
    rec = await call(app, chat(), headers={"accept-language": accept})
    assert rec.json()["choices"][0]["message"]["content"].startswith(needle)
    assert "Accept-Language" in rec.headers["vary"]


async def test_fixed_locale(tmp_path: Path) -> None:
    app = guard(json_app(completion()), tmp_path, locale="nl")
    rec = await call(app, chat(), headers={"accept-language": "de"})
    assert rec.json()["choices"][0]["message"]["content"].startswith("U chat met een AI")


# -- passing through ----------------------------------------------------------------------


async def test_unguarded_route_is_byte_identical(tmp_path: Path) -> None:
    inner = json_app({"x": "ü"})
    plain = await call(inner, {"a": 1}, path="/other")
    guarded = await call(guard(inner, tmp_path), {"a": 1}, path="/other")
    assert guarded.messages == plain.messages


async def test_non_http_scopes_pass_straight_through(tmp_path: Path) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    mw = guard(app, tmp_path)

    async def nothing() -> Message:
        return {}

    async def drop(m: Message) -> None:
        pass

    await mw({"type": "websocket", "path": "/v1/chat/completions"}, nothing, drop)
    assert seen == ["websocket"]


@pytest.mark.parametrize("status", [400, 401, 429, 500, 503])
async def test_upstream_errors_pass_through(tmp_path: Path, status: int) -> None:
    err = {"error": {"message": "nope"}}
    rec = await call(guard(json_app(err, status=status), tmp_path), chat())
    assert rec.status == status and rec.json() == err
    assert "ai-disclosure" not in rec.headers


async def test_head_204_304_and_empty(tmp_path: Path) -> None:
    async def ep(request: Request) -> Response:
        kind = request.query_params.get("k", "")
        if kind == "204":
            return Response(status_code=204)
        if kind == "304":
            return Response(status_code=304)
        return Response(b"", media_type="application/json")

    app = guard(
        Starlette(routes=[Route("/v1/chat/completions", ep, methods=["POST", "HEAD"])]),
        tmp_path,
        routes=[{"path": "/v1/chat/completions", "methods": ["POST", "HEAD"]}],
    )
    for k, status in (("204", 204), ("304", 304)):

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        from tests.asgi.harness import Recorder
        from tests.asgi.harness import scope as mkscope

        sc = mkscope()
        sc["query_string"] = f"k={k}".encode()
        rec = Recorder()
        await app(sc, receive, rec)
        assert rec.status == status and rec.body == b""
    empty = await call(app, b"")
    assert empty.status == 200 and empty.body == b""
    head = await call(app, b"", method="HEAD")
    assert head.status == 200 and head.body == b""


async def test_non_utf8_and_non_json_bodies_pass_through(tmp_path: Path) -> None:
    raw = b'{"answer": "caf\xe9"}'

    async def ep(request: Request) -> Response:
        return Response(raw, media_type="application/json")

    app = guard(Starlette(routes=[Route("/chat", ep, methods=["POST"])]), tmp_path)
    rec = await call(app, {"message": "q"}, path="/chat")
    assert rec.body == raw and rec.headers["content-length"] == str(len(raw))


async def test_oversized_json_answer_passes_through_unmodified(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    big = completion("x" * 5000)
    raw = json.dumps(big).encode()

    async def ep(request: Request) -> Response:
        return StreamingResponse(
            iter([raw[:1000], raw[1000:3000], raw[3000:]]), media_type="application/json"
        )

    app = guard(
        Starlette(routes=[Route("/v1/chat/completions", ep, methods=["POST"])]),
        tmp_path,
        max_body_bytes=2048,
    )
    rec = await call(app, chat())
    assert rec.body == raw
    assert "exceeds 2048 bytes" in caplog.text


async def test_gzip_encoded_answer_passes_through(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    raw = gzip.compress(json.dumps(completion()).encode())

    async def ep(request: Request) -> Response:
        return Response(raw, media_type="application/json", headers={"content-encoding": "gzip"})

    app = guard(Starlette(routes=[Route("/v1/chat/completions", ep, methods=["POST"])]), tmp_path)
    rec = await call(app, chat())
    assert rec.body == raw and rec.headers["content-encoding"] == "gzip"
    assert "ai-disclosure" in rec.headers
    assert "gzip-encoded" in caplog.text


async def test_other_content_types_get_headers_only(tmp_path: Path) -> None:
    async def ep(request: Request) -> Response:
        return Response(b"\x89PNG", media_type="image/png")

    app = guard(Starlette(routes=[Route("/chat", ep, methods=["POST"])]), tmp_path)
    rec = await call(app, {"message": "q"}, path="/chat")
    assert rec.body == b"\x89PNG" and "x-aiguard-message-id" in rec.headers


# -- bad requests ---------------------------------------------------------------------------


async def test_malformed_request_json_is_400_and_app_not_called(tmp_path: Path) -> None:
    called = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(1)

    rec = await call(guard(app, tmp_path), b'{"messages": [')
    assert rec.status == 400 and rec.headers["content-type"] == "application/problem+json"
    assert rec.json()["type"].endswith(":invalid_json") and not called


async def test_oversized_request_is_413(tmp_path: Path) -> None:
    called = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        called.append(1)

    mw = guard(app, tmp_path, max_body_bytes=1024)
    rec = await call(mw, b"", chunks=[b"x" * 600, b"x" * 600])
    assert rec.status == 413 and rec.json()["status"] == 413 and not called


async def test_upstream_exception_before_start_is_502(tmp_path: Path) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("model crashed")

    rec = await call(guard(app, tmp_path), chat())
    assert rec.status == 502 and rec.json()["type"].endswith(":upstream_error")


async def test_app_own_500_page_is_not_doubled(tmp_path: Path) -> None:
    async def ep(request: Request) -> Response:
        raise RuntimeError("model crashed")

    app = guard(Starlette(routes=[Route("/v1/chat/completions", ep, methods=["POST"])]), tmp_path)
    rec = await call(app, chat())
    assert rec.status == 500
    assert [m.get("more_body", False) for m in rec.bodies] == [False]


# -- identity -------------------------------------------------------------------------------


async def test_cookie_is_set_signed_and_reused(tmp_path: Path) -> None:
    seen: list[Any] = []

    async def ep(request: Request) -> Response:
        seen.append(request.scope["aiguard.identity"])
        return JSONResponse(completion())

    app = guard(Starlette(routes=[Route("/v1/chat/completions", ep, methods=["POST"])]), tmp_path)
    first = await call(app, chat())
    (cookie,) = first.header_list("set-cookie")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    token = cookie.split(";")[0]
    second = await call(app, chat(), headers={"cookie": token})
    assert second.header_list("set-cookie") == []
    assert seen[0].subject_id == seen[1].subject_id
    forged = token[:-3] + "abc"
    third = await call(app, chat(), headers={"cookie": forged})
    assert third.header_list("set-cookie")  # a forged cookie is ignored and replaced
    assert seen[2].subject_id != seen[0].subject_id


async def test_subject_from_user_field_is_pseudonymous(tmp_path: Path) -> None:
    seen: list[Any] = []

    async def ep(request: Request) -> Response:
        seen.append(request.scope["aiguard.identity"])
        return JSONResponse(completion())

    app = guard(Starlette(routes=[Route("/v1/chat/completions", ep, methods=["POST"])]), tmp_path)
    await call(app, {**chat(), "user": "alice@example.com"})
    await call(app, chat(), headers={"x-aiguard-subject": "alice@example.com"})
    assert seen[0].subject_id == seen[1].subject_id
    assert "alice" not in seen[0].subject_id and len(seen[0].subject_id) == 32


# -- streaming ------------------------------------------------------------------------------


async def test_disclosure_chunk_is_sent_before_upstream_produces_tokens(tmp_path: Path) -> None:
    release = anyio.Event()
    rec_ref: list[Any] = []

    async def upstream(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )
        await release.wait()  # the model has not produced anything yet
        for tok in ("Hello", " world"):
            await send({"type": "http.response.body", "body": sse_chunk(tok), "more_body": True})
        await send(
            {"type": "http.response.body", "body": sse_chunk(None, "stop"), "more_body": True}
        )
        await send({"type": "http.response.body", "body": b"data: [DONE]\n\n", "more_body": False})

    from tests.asgi.harness import Recorder

    mw = guard(upstream, tmp_path)
    rec = Recorder()

    async def watcher() -> None:
        with anyio.fail_after(5):
            while len(rec.bodies) < 1:
                await anyio.sleep(0.001)
        first = events_of(rec.bodies[0]["body"])
        rec_ref.append(first)
        release.set()

    async def receive() -> Message:
        return {
            "type": "http.request",
            "body": json.dumps(chat(stream=True)).encode(),
            "more_body": False,
        }

    from tests.asgi.harness import scope

    async with anyio.create_task_group() as tg:
        tg.start_soon(watcher)
        await mw(scope(), receive, rec)
    (first_chunk,) = rec_ref[0]
    assert first_chunk["choices"][0]["delta"]["content"].startswith(EN_DISCLOSURE)
    assert first_chunk["aiguard"]["message_id"] == rec.headers["x-aiguard-message-id"]
    assert "content-length" not in rec.headers
    # every upstream token was forwarded in its own message, not collected
    bodies = [events_of(m["body"]) for m in rec.bodies]
    contents = [
        e["choices"][0]["delta"].get("content") for b in bodies for e in b if isinstance(e, dict)
    ]
    assert contents[1:3] == ["Hello", " world"]
    assert len(rec.bodies) >= 4 and rec.bodies[-1]["more_body"] is False
    assert events_of(rec.body)[-1] == "[DONE]"


async def test_text_plain_stream_gets_disclosure_first(tmp_path: Path) -> None:
    async def ep(request: Request) -> Response:
        async def gen() -> Any:
            yield b"Hel"
            yield b"lo " + "wörld".encode()[:2]
            yield "wörld".encode()[2:]

        return StreamingResponse(gen(), media_type="text/plain; charset=utf-8")

    app = guard(Starlette(routes=[Route("/chat", ep, methods=["POST"])]), tmp_path)
    rec = await call(app, {"message": "q"}, path="/chat")
    text = rec.body.decode()
    assert text.startswith(EN_DISCLOSURE) and text.endswith("\n\nHello wörld")
    assert rec.bodies[0]["body"].decode().startswith(EN_DISCLOSURE)


async def test_broken_upstream_stream_ends_with_error_event(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def ep(request: Request) -> Response:
        async def gen() -> Any:
            yield sse_chunk("partial")
            raise ConnectionError("model server went away")

        return StreamingResponse(gen(), media_type="text/event-stream")

    app = guard(Starlette(routes=[Route("/v1/chat/completions", ep, methods=["POST"])]), tmp_path)
    rec = await call(app, chat(stream=True))
    evs = events_of(rec.body)
    assert evs[-1]["error"]["code"] == "upstream_stream_broken"
    assert rec.bodies[-1]["more_body"] is False
    assert "upstream app failed" in caplog.text


async def test_plain_json_sse_stream_with_field(tmp_path: Path) -> None:
    async def ep(request: Request) -> Response:
        async def gen() -> Any:
            yield b'data: {"answer": "Hi"}\n\n'
            yield b'data: {"answer": " there"}\n\n'

        return StreamingResponse(gen(), media_type="text/event-stream")

    app = guard(
        Starlette(routes=[Route("/chat", ep, methods=["POST"])]),
        tmp_path,
        routes=[{"path": "/chat", "format": "json"}],
    )
    evs = events_of((await call(app, {"message": "q"}, path="/chat")).body)
    assert evs[0]["answer"].startswith(EN_DISCLOSURE) and "aiguard" in evs[0]
    assert [e["answer"] for e in evs[1:]] == ["Hi", " there"]


async def test_abort_wrapped_in_an_exception_group_is_not_an_upstream_failure(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from aiguard.asgi.responder import StreamAborted

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await receive()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": b'{"answer": "x"}'})
        raise ExceptionGroup("tg", [StreamAborted()])

    rec = await call(guard(app, tmp_path), {"message": "q"}, path="/chat")
    assert rec.status == 200 and "upstream app failed" not in caplog.text


class _Records:
    def __init__(self) -> None:
        self.records: list[Any] = []

    def add(self, record: Any) -> None:
        self.records.append(record)


@pytest.mark.parametrize("stream", [False, True])
async def test_every_guarded_answer_is_recorded_with_the_text_sent(
    tmp_path: Path, stream: bool
) -> None:
    from aiguard import Runtime

    async def ep(request: Request) -> Response:
        if not stream:
            return JSONResponse(completion("Paris."))

        async def gen() -> Any:
            for tok in ("Par", "is", "."):
                yield sse_chunk(tok)
            yield sse_chunk(None, "stop")
            yield b"data: [DONE]\n\n"

        return StreamingResponse(gen(), media_type="text/event-stream")

    rt = Runtime(make_policy(tmp_path))
    records = _Records()
    rt.records = records  # type: ignore[assignment]
    app = AIGuardMiddleware(
        Starlette(routes=[Route("/v1/chat/completions", ep, methods=["POST"])]), runtime=rt
    )
    rec = await call(app, chat(stream=stream), headers={"x-aiguard-subject": "ann"})
    (record,) = records.records
    assert record.message_id == rec.headers["x-aiguard-message-id"]
    assert record.answer.startswith(EN_DISCLOSURE) and record.answer.endswith("Paris.")
    assert record.streamed is stream and record.status == 200
    assert record.disclosure["id"] == "disclosure" and record.verdict == "unscreened"
    assert "ann" not in record.subject_id
