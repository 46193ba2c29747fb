"""The demo, end to end over loopback: consent gate, the real openai client, a report that a
signed webhook receives once, the provider's resolution back to the reporter, the compliance
export and withdrawal."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from aiguard.demo import build_demo_app, demo_defaults
from aiguard.policy import load_policy
from tests.reports.conftest import FAST, SECRET
from tests.reports.harness import Receiver, serve_on, wait_for

ADMIN = "admin-token-0123456789abcdef"
PROVIDER = "provider-token-0123456789abcdef"
USER = {"x-aiguard-subject": "visitor-42", "accept-language": "de-DE,de;q=0.9"}


@pytest.mark.slow
def test_demo_bot_consent_chat_report_resolution(tmp_path: Path) -> None:
    closing: list[Any] = []
    try:
        _scenario(tmp_path, closing)
    finally:
        for close in closing:
            close()


def _scenario(tmp_path: Path, closing: list[Any]) -> None:
    receiver = Receiver()
    with serve_on(receiver.app()) as hook:
        defaults = demo_defaults(ADMIN, PROVIDER)
        policy = load_policy(
            environ={},
            **{
                **defaults,
                "storage": {"url": f"sqlite:///{tmp_path / 'demo.db'}"},
                "identity": {"secret": "demo-e2e-secret-0123456789"},
                "reports": {
                    **defaults["reports"],
                    **FAST,
                    "jsonl_path": str(tmp_path / "reports.jsonl"),
                    "webhook_url": hook + "/hook",
                    "webhook_secret": SECRET,
                },
            },
        )
        with serve_on(build_demo_app(policy)) as base:
            http = httpx.Client(base_url=base, headers=USER, timeout=20)
            closing.append(http.close)
            bot = openai.OpenAI(
                base_url=base + "/v1", api_key="unused", max_retries=0, default_headers=USER
            )
            closing.append(bot.close)
            question = [{"role": "user", "content": "What is the capital of France?"}]

            # 1. no consent yet: the bot is never reached, the challenge is in German
            with pytest.raises(openai.APIStatusError) as info:
                bot.chat.completions.create(model="demo", messages=question)  # type: ignore[arg-type]
            assert info.value.status_code == 428
            challenge = info.value.response.json()
            assert info.value.response.headers["content-type"] == "application/problem+json"
            assert challenge["purposes"] == ["ai_interaction"]
            assert challenge["notice"]["locale"] == "de"

            # 2. grant through the consent API, then chat (streamed)
            granted = http.post(
                "/aiguard/consent",
                json={
                    "action": "granted",
                    "purposes": ["ai_interaction"],
                    "notice_version": challenge["notice"]["version"],
                },
            )
            assert granted.status_code == 201, granted.text
            stream = bot.chat.completions.create(model="demo", messages=question, stream=True)  # type: ignore[arg-type]
            chunks = list(stream)
            answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert answer.startswith("Sie chatten mit einer KI")
            assert "Paris" in answer
            message_id = (chunks[0].model_extra or {})["aiguard"]["message_id"]

            # 3. report it; the webhook receives it exactly once, correctly signed
            report = http.post(
                "/aiguard/reports",
                json={
                    "message_id": message_id,
                    "category": "inaccurate",
                    "comment": "<script>alert(1)</script> wrong century",
                    "correction": "Paris since 987.",
                },
            )
            assert report.status_code == 201, report.text
            report_id = report.json()["report"]["id"]
            assert report.json()["procedure"]["text"]
            wait_for(lambda: receiver.accepted, what="webhook delivery")
            assert receiver.bad_signatures == 0 and len(receiver.bodies) == 1
            assert receiver.bodies[0]["report"]["id"] == report_id
            jsonl = tmp_path / "reports.jsonl"
            wait_for(lambda: jsonl.exists() and jsonl.read_text(), what="jsonl delivery")
            lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
            assert [x["event"]["report"]["id"] for x in lines] == [report_id]

            # 4. the provider pulls it and resolves; the reporter sees the reply
            provider = {"authorization": f"Bearer {PROVIDER}"}
            feed = http.get("/aiguard/provider/reports", headers=provider).json()
            assert report_id in json.dumps(feed["items"])
            resolved = http.post(
                f"/aiguard/provider/reports/{report_id}/resolution",
                json={"outcome": "corrected", "reply": "Thanks, fixed in the next model."},
                headers=provider,
            )
            assert resolved.status_code == 200, resolved.text
            mine = http.get(f"/aiguard/reports/{report_id}").json()["report"]
            assert mine["status"] == "resolved"
            assert mine["resolution"]["reply"] == "Thanks, fixed in the next model."

            # 5. compliance export (admin token) and withdrawal on the very next request
            denied = http.get("/aiguard/admin/consent/export?format=jsonl")
            assert denied.status_code == 401
            export = http.get(
                "/aiguard/admin/consent/export?format=jsonl",
                headers={"authorization": f"Bearer {ADMIN}"},
            )
            rows = [json.loads(x) for x in export.text.splitlines()]
            assert [r["action"] for r in rows] == ["granted"]
            assert http.post("/aiguard/consent/withdraw", json={}).status_code == 201
            with pytest.raises(openai.APIStatusError) as again:
                bot.chat.completions.create(model="demo", messages=question)  # type: ignore[arg-type]
            assert again.value.status_code == 428
