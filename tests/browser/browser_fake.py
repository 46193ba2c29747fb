"""A small in-test stand-in for aiguard's consent, reports and chat endpoints.

It follows the HTTP API table in docs/architecture.md closely enough for the widget, records
every request it receives, and mounts the real widget routes. The end-to-end suite swaps the
``aiguard_app`` fixture for the real middleware; these tests do not depend on this module's
internals beyond ``FakeAPI.calls``/``reports``/``consent``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from aiguard.asgi.identity import RequestIdentity
from aiguard.asgi.problem import problem
from aiguard.asgi.widget_api import demo_html, routes
from aiguard.policy.prompts import Catalogue

PREFIX = "/aiguard"
# has markup on purpose: the dialog must show it as text
NOTICE = (
    "We record your consent to chat with an AI assistant.\n\n"
    "Your messages are processed by <b>the model provider</b>. You can withdraw at any time."
)
NOTICE_VERSION = "3"
ANSWER_TOKENS = ["Paris ", "is ", "the ", "capital ", "of ", "France."]
PROCEDURE = "A person reviews every report within 7 days and corrects the answer if needed."


@dataclass
class FakeAPI:
    catalogue: Catalogue
    purposes: tuple[str, ...] = ("ai_interaction", "provider_processing")
    required: list[str] = field(default_factory=list)
    consent: dict[str, str] = field(default_factory=dict)  # purpose -> status
    calls: list[tuple[str, str, Any]] = field(default_factory=list)  # (method, path, json)
    reports: dict[str, dict[str, Any]] = field(default_factory=dict)
    message_ids: list[str] = field(default_factory=list)
    # cleared by a test to hold a stream after its first tokens until the test sets it
    release: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.release.set()

    def posted(self, path: str) -> list[Any]:
        return [body for method, p, body in self.calls if method == "POST" and p == path]

    def missing(self) -> list[str]:
        return [p for p in self.required if self.consent.get(p) != "granted"]


class _Identity:
    """What the real middleware does for API routes: put a RequestIdentity in the scope."""

    def __init__(self, app: ASGIApp, catalogue: Catalogue) -> None:
        self.app = app
        self.catalogue = catalogue

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            accept = headers.get(b"accept-language", b"").decode("latin-1")
            scope["aiguard.identity"] = RequestIdentity(
                subject_id="0" * 32,
                conversation_id="c" * 32,
                locale=self.catalogue.negotiate(accept),
            )
        await self.app(scope, receive, send)


def build_app(api: FakeAPI) -> Starlette:
    class _Runtime:
        catalogue = api.catalogue

    async def body_of(request: Request) -> Any:
        raw = await request.body()
        data = json.loads(raw) if raw else None
        api.calls.append((request.method, request.url.path, data))
        return data

    async def consent_status(request: Request) -> Response:
        await body_of(request)
        return JSONResponse(
            {
                "subject": "0" * 32,
                "required": api.required,
                "purposes": {
                    p: {"status": api.consent.get(p, "none"), "notice_version": NOTICE_VERSION}
                    for p in api.purposes
                },
                "notice": {
                    "id": "consent_notice",
                    "version": NOTICE_VERSION,
                    "locale": "en",
                    "sha256": "0" * 64,
                    "text": NOTICE,
                },
            }
        )

    async def consent_record(request: Request) -> Response:
        data = await body_of(request)
        if data.get("action") not in {"granted", "refused"} or not isinstance(
            data.get("purposes"), list
        ):
            return problem(422, "invalid_consent", "Invalid consent record")
        for p in data["purposes"]:
            api.consent[p] = data["action"]
        return JSONResponse({"recorded": len(data["purposes"])}, status_code=201)

    async def consent_withdraw(request: Request) -> Response:
        data = await body_of(request) or {}
        for p in data.get("purposes") or list(api.consent):
            api.consent[p] = "withdrawn"
        return JSONResponse({"recorded": True}, status_code=201)

    async def report(request: Request) -> Response:
        data = await body_of(request)
        if data.get("message_id") not in api.message_ids:
            return problem(404, "message_not_found", "Message not found")
        report_id = "rep_" + uuid.uuid4().hex[:12]
        api.reports[report_id] = data
        return JSONResponse(
            {
                "report": {"id": report_id, "status": "received", **data},
                "procedure": {"id": "report_procedure", "version": "1", "text": PROCEDURE},
                "status_url": f"{PREFIX}/reports/{report_id}",
            },
            status_code=201,
        )

    async def chat(request: Request) -> Response:
        data = await body_of(request)
        missing = api.missing()
        if missing:
            return problem(
                428,
                "consent_required",
                "Consent required",
                purposes=missing,
                notice={"id": "consent_notice", "version": NOTICE_VERSION, "text": NOTICE},
                consent_url=PREFIX + "/consent",
            )
        messages = data["messages"]
        first = not any(m.get("role") == "assistant" for m in messages)
        forbidden = "forbidden" in messages[-1]["content"]
        message_id = "msg_" + uuid.uuid4().hex
        api.message_ids.append(message_id)
        disclosure = api.catalogue.text("disclosure", "en")
        return StreamingResponse(
            _stream(api, message_id, disclosure.text if first else None, forbidden),
            media_type="text/event-stream",
            headers={"X-AIGuard-Message-Id": message_id, "Cache-Control": "no-cache"},
        )

    async def demo(request: Request) -> Response:
        return HTMLResponse(demo_html(PREFIX))

    async def widget_only(request: Request) -> Response:
        # a bare host page: the widget with whatever attributes the test passes in ?attrs=
        attrs = request.query_params.get("attrs", "")
        return HTMLResponse(
            "<!doctype html><html><head><meta charset=utf-8>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<script src="{PREFIX}/widget.js" {attrs} defer></script></head>'
            "<body><main><p id=answer>An answer.</p></main></body></html>"
        )

    api_routes = [
        Route("/consent", consent_status, methods=["GET"]),
        Route("/consent", consent_record, methods=["POST"]),
        Route("/consent/withdraw", consent_withdraw, methods=["POST"]),
        Route("/reports", report, methods=["POST"]),
        *routes(_Runtime()),
    ]
    app = Starlette(
        routes=[
            Mount(PREFIX, routes=api_routes),
            Route("/v1/chat/completions", chat, methods=["POST"]),
            Route("/", demo),
            Route("/host", widget_only),
        ]
    )
    app.add_middleware(_Identity, catalogue=api.catalogue)
    return app


def _chunk(message_id: str, delta: dict[str, str], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-" + message_id,
        "object": "chat.completion.chunk",
        "model": "demo",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(body).encode("utf-8") + b"\n\n"


async def _stream(
    api: FakeAPI, message_id: str, disclosure: str | None, forbidden: bool
) -> AsyncIterator[bytes]:
    first = json.loads(_chunk(message_id, {"role": "assistant"})[6:])
    first["aiguard"] = {
        "ai_generated": True,
        "message_id": message_id,
        "disclosure": {"id": "disclosure", "version": "1", "shown": disclosure is not None},
    }
    if disclosure is not None:
        first["choices"][0]["delta"]["content"] = disclosure + "\n\n"
    yield b"data: " + json.dumps(first).encode("utf-8") + b"\n\n"
    tokens = ["I cannot ", "help with "] if forbidden else ANSWER_TOKENS
    for i, token in enumerate(tokens):
        if i == 2:
            while not api.release.is_set():  # the test looks at the half-rendered answer
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.01)
        yield _chunk(message_id, {"content": token})
    yield _chunk(message_id, {}, "content_filter" if forbidden else "stop")
    yield b"data: [DONE]\n\n"
