"""The gate through the real middleware and runtime: 428 until consent, withdrawal blocks."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from aiguard.asgi.middleware import AIGuardMiddleware
from aiguard.policy import load_policy
from tests.consent.conftest import REQUIRED

pytestmark = pytest.mark.anyio


async def chat(request: Request) -> JSONResponse:
    return JSONResponse({"answer": "hello"})


async def test_gate_through_the_middleware(tmp_path: Path) -> None:
    policy = load_policy(
        environ={},
        storage={"url": f"sqlite:///{tmp_path / 'm.db'}"},
        identity={"secret": "s" * 32},
        consent={"required": REQUIRED},
        reports={"enabled": False},
        screening={"enabled": False},
        routes=[{"path": "/chat", "format": "json"}],
    )
    app = AIGuardMiddleware(
        Starlette(routes=[Route("/chat", chat, methods=["POST"])]), policy=policy
    )
    transport = httpx.ASGITransport(app=app)
    headers = {"x-aiguard-subject": "user-1", "accept-language": "fr"}
    async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=headers) as c:
        await app.runtime.ensure_started()
        r = await c.post("/chat", json={"q": "hi"})
        assert r.status_code == 428, r.text
        problem = r.json()
        assert problem["purposes"] == REQUIRED and problem["notice"]["locale"] == "fr"
        r = await c.post(
            "/aiguard/consent",
            json={
                "action": "granted",
                "purposes": problem["purposes"],
                "notice_version": problem["notice"]["version"],
            },
        )
        assert r.status_code == 201, r.text
        assert (await c.post("/chat", json={"q": "hi"})).status_code == 200
        assert (await c.post("/aiguard/consent/withdraw")).status_code == 201
        assert (await c.post("/chat", json={"q": "hi"})).status_code == 428
        await app.runtime.stop()
