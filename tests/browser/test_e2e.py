"""The demo page against the real thing: AIGuardMiddleware, runtime, SQLite, scripted chatbot.

Same browser harness as the other tests; only the ``aiguard_app`` fixture is swapped.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from aiguard.policy.prompts import Catalogue

pytestmark = pytest.mark.browser


@pytest.fixture
def aiguard_app(tmp_path: Path) -> Any:
    # the consent API is the last piece the runtime mounts; until it exists there is no e2e
    pytest.importorskip("aiguard.asgi.consent_api", reason="consent API routes not built yet")
    from aiguard.demo import build_demo_app
    from aiguard.policy.loading import load_policy

    policy = load_policy(
        provider="aiguard e2e",
        storage={"url": f"sqlite:///{tmp_path / 'e2e.db'}"},
        identity={"secret": "e2e-secret-0123456789abcdef"},
        consent={"required": ["ai_interaction"]},
        reports={"jsonl_path": str(tmp_path / "reports.jsonl")},
        screening={"screens": []},
    )
    return build_demo_app(policy)


def test_consent_answer_and_report_end_to_end(
    page: Any, live_server: str, catalogue: Catalogue
) -> None:
    en = catalogue.strings("widget", "en")
    page.goto(live_server + "/")
    page.get_by_role("dialog").wait_for()
    assert page.locator(".ag-notice").inner_text().strip()
    page.get_by_role("button", name=en["consent_accept"]).click()
    page.get_by_role("dialog").wait_for(state="detached")

    page.fill("#input", "What is the capital of France?")
    page.click("#send")
    answer = page.locator(".msg-assistant[data-done=true]")
    answer.wait_for()
    disclosure = catalogue.text("disclosure", "en").text
    assert answer.locator(".disclosure-text").inner_text() == disclosure
    assert "Paris" in answer.locator(".msg-text").inner_text()
    message_id = answer.get_attribute("data-message-id")
    assert message_id and message_id.startswith("msg_")
    assert page.locator(".ag-badge-btn").is_visible()

    answer.get_by_role("button", name=en["report_open"]).click()
    answer.get_by_label(en["report_comment"]).fill("<script>alert(1)</script>")
    answer.get_by_role("button", name=en["report_submit"]).click()
    title = answer.locator(".ag-receipt-title")
    title.wait_for()
    received = re.escape(en["report_received"]).replace(re.escape("{id}"), r"(\S+)")
    assert re.fullmatch(received, title.inner_text())
    assert answer.locator(".ag-receipt-procedure").inner_text().strip()
    assert answer.locator(".ag-receipt-comment").inner_text() == "<script>alert(1)</script>"
