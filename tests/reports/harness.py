"""Real loopback pieces for the reports tests: the app under test, a webhook receiver, uvicorn.

``python -m tests.reports.harness serve|work ...`` runs them in a child process for the
crash and multi-worker tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from aiguard.asgi.identity import RequestIdentity
from aiguard.asgi.reports_api import routes
from aiguard.policy import Policy
from aiguard.policy.prompts import Catalogue
from aiguard.services.outbox import OutboxWorker
from aiguard.services.records import RecordWriter
from aiguard.services.reports import ReportService
from aiguard.services.sinks import build_sinks, verify
from aiguard.store import open_database
from tests.reports.conftest import PROVIDER_TOKEN, SECRET, make_policy, make_record
from tests.servers import serve


class IdentityMiddleware:
    """Stands in for AIGuardMiddleware's identity step: ``x-test-subject`` is the subject."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            subject = headers.get(b"x-test-subject", b"anonymous").decode()
            locale = headers.get(b"x-test-locale", b"en").decode()
            scope["aiguard.identity"] = RequestIdentity(subject, "conv-" + subject, locale)
        await self.app(scope, receive, send)


def app_policy(db_url: str, webhook_url: str | None, **kw: Any) -> Policy:
    extra: dict[str, Any] = {"provider_token": PROVIDER_TOKEN}
    if webhook_url:
        extra.update(webhook_url=webhook_url, webhook_secret=SECRET)
    policy = make_policy(**{**extra, **kw})
    return policy.model_copy(update={"storage": policy.storage.model_copy(update={"url": db_url})})


def build_app(policy: Policy) -> Starlette:
    """The report routes under /aiguard plus POST /chat, which records an answer like the
    middleware does and returns its message id."""
    runtime = SimpleNamespace(policy=policy, reports=None, records=None)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        db = open_database(policy.storage.url)
        await db.connect()
        records = RecordWriter(db, policy)
        await records.start()
        worker = OutboxWorker(db, policy, build_sinks(policy))
        await worker.start()
        runtime.records = records
        runtime.reports = ReportService(db, policy, Catalogue(), records, notify=worker.wake)
        await runtime.reports.start()
        try:
            yield
        finally:
            await worker.stop()
            await records.stop()
            await db.close()

    async def chat(request: Request) -> Response:
        ident = request.scope["aiguard.identity"]
        rec = make_record(subject=ident.subject_id, conversation=ident.conversation_id)
        runtime.records.add(rec)
        return JSONResponse({"message_id": rec.message_id, "answer": rec.answer})

    return Starlette(
        routes=[Route("/chat", chat, methods=["POST"]), Mount("/aiguard", routes=routes(runtime))],
        middleware=[Middleware(IdentityMiddleware)],
        lifespan=lifespan,
    )


@dataclass
class Receiver:
    """A webhook receiver that verifies signatures. ``fail`` answers 503 that many times;
    ``hang`` holds requests until ``released``; ``accepted`` lists keys it answered 2xx to."""

    fail: int = 0
    hang: bool = False
    released: bool = False
    delay: float = 0.0
    requests: list[str] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0

    def app(self) -> Starlette:
        async def hook(request: Request) -> Response:
            body = await request.body()
            key = request.headers.get("idempotency-key", "")
            self.requests.append(key)
            if not verify(SECRET.encode(), body, request.headers.get("aiguard-signature", "")):
                self.bad_signatures += 1
                return Response(status_code=401)
            if self.hang:
                deadline = time.monotonic() + 20
                while not self.released and time.monotonic() < deadline:
                    await asyncio.sleep(0.02)
                return Response(status_code=503)
            if self.fail > 0:
                self.fail -= 1
                return Response(status_code=503, headers={"Retry-After": "0"})
            if self.delay:
                await asyncio.sleep(self.delay)
            if key not in self.accepted:  # a real receiver dedups by key; we count, not drop
                self.bodies.append(json.loads(body))
            self.accepted.append(key)
            return Response(status_code=204)

        return Starlette(routes=[Route("/hook", hook, methods=["POST"])])


def serve_on(app: Any, port: int | None = None) -> contextlib.AbstractContextManager[str]:
    """Serve ``app`` with uvicorn on 127.0.0.1:``port`` in a thread; yield the base URL."""
    return serve(app, port=port)


def wait_for(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


async def _work(policy: Policy, quiet_for: float) -> None:
    """Run one outbox worker until nothing is pending (for ``quiet_for`` seconds)."""
    db = open_database(policy.storage.url)
    await db.connect()
    worker = OutboxWorker(db, policy, build_sinks(policy))
    await worker.start()
    quiet_since = time.monotonic()
    try:
        while time.monotonic() - quiet_since < quiet_for:
            await asyncio.sleep(0.05)
            row = await db.fetchone(
                "SELECT COUNT(*) AS n FROM aiguard_outbox WHERE state = 'pending'"
            )
            if row is not None and int(row["n"]) > 0:
                quiet_since = time.monotonic()
    finally:
        await worker.stop()
        await db.close()
    print(json.dumps({"delivered": worker.delivered}), flush=True)


def main(argv: list[str]) -> int:
    if argv[0] == "receive":  # a receiver in its own process (bench)
        uvicorn.run(Receiver().app(), host="127.0.0.1", port=int(argv[1]), log_level="warning")
        return 0
    mode, db_url, webhook_url = argv[0], argv[1], argv[2]
    if mode == "serve":
        overrides = json.loads(argv[4]) if len(argv) > 4 else {}
        policy = app_policy(db_url, webhook_url, **overrides)
        port = int(argv[3])
        uvicorn.run(build_app(policy), host="127.0.0.1", port=port, log_level="warning")
        return 0
    if mode == "work":
        policy = app_policy(db_url, webhook_url, outbox_batch=4)
        asyncio.run(_work(policy, quiet_for=0.5))
        return 0
    raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
