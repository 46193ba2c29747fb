"""The whole stack: AIGuardMiddleware + Runtime around a chatbot, a report, a signed webhook."""

from __future__ import annotations

from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from aiguard.asgi.middleware import AIGuardMiddleware
from aiguard.policy import load_policy
from tests.reports.conftest import FAST, SECRET
from tests.reports.harness import Receiver, serve_on, wait_for


async def chat(request: Request) -> Response:
    return JSONResponse({"answer": "The capital of Germany is Paris."})


def test_answer_through_the_middleware_can_be_reported(tmp_path: Path) -> None:
    receiver = Receiver()
    with serve_on(receiver.app()) as hook_base:
        policy = load_policy(
            environ={},
            storage={"url": f"sqlite:///{tmp_path / 'aiguard.db'}"},
            identity={"secret": "integration-secret-0123456789"},
            screening={"enabled": False},
            reports={**FAST, "webhook_url": hook_base + "/hook", "webhook_secret": SECRET},
        )
        app = AIGuardMiddleware(
            Starlette(routes=[Route("/chat", chat, methods=["POST"])]), policy=policy
        )
        alice = {"x-aiguard-subject": "alice@example.com"}
        with serve_on(app) as base, httpx.Client(base_url=base, timeout=10) as client:
            answer = client.post("/chat", json={"q": "capital of Germany?"}, headers=alice)
            assert answer.status_code == 200
            message_id = answer.headers["x-aiguard-message-id"]

            bob = client.post(
                "/aiguard/reports",
                json={"message_id": message_id, "category": "inaccurate"},
                headers={"x-aiguard-subject": "bob@example.com"},
            )
            assert bob.status_code == 404
            resp = client.post(
                "/aiguard/reports",
                json={"message_id": message_id, "category": "inaccurate", "correction": "Berlin"},
                headers=alice,
            )
            assert resp.status_code == 201, resp.text
            report_id = resp.json()["report"]["id"]
            wait_for(lambda: receiver.accepted, what="webhook delivery")
    assert receiver.accepted == [f"{report_id}.1"] and receiver.bad_signatures == 0
    [event] = receiver.bodies
    assert event["message"]["message_id"] == message_id
    assert "Paris" in event["message"]["answer"]
    assert event["report"]["correction"] == "Berlin"
    # the raw subject never leaves the process: only the pseudonym does
    assert "alice" not in str(event)
