"""The demo chat page: incremental streaming, disclosure first, reports on answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aiguard.policy.prompts import Catalogue
from tests.browser.browser_fake import ANSWER_TOKENS, FakeAPI

pytestmark = pytest.mark.browser


def send(page: Any, text: str) -> None:
    page.fill("#input", text)
    page.click("#send")


def test_stream_renders_incrementally_with_disclosure_first(
    page: Any, live_server: str, fake_api: FakeAPI, catalogue: Catalogue
) -> None:
    disclosure = catalogue.text("disclosure", "en").text
    page.goto(live_server + "/")
    page.locator("body[data-ready=true]").wait_for()
    fake_api.release.clear()  # the server holds the stream after two tokens
    send(page, "What is the capital of France?")

    answer = page.locator(".msg-assistant")
    text = answer.locator(".msg-text")
    partial = "".join(ANSWER_TOKENS[:2])
    page.wait_for_function(
        "t => document.querySelector('.msg-assistant .msg-text')?.textContent === t", arg=partial
    )
    # half an answer is on screen while the stream is still open
    assert answer.get_attribute("data-done") is None
    assert "streaming" in (answer.get_attribute("class") or "")
    assert answer.locator(".disclosure-text").inner_text() == disclosure
    assert page.locator(".ag-badge-btn").is_visible()

    fake_api.release.set()
    page.locator(".msg-assistant[data-done=true]").wait_for()
    assert text.inner_text() == "".join(ANSWER_TOKENS)
    # the disclosure is its own block, before the answer text
    order = page.evaluate(
        """() => { const a = document.querySelector('.msg-assistant');
        return [...a.children].map(c => c.className); }"""
    )
    assert order.index("disclosure") < order.index("msg-text")
    assert answer.get_attribute("data-message-id") == fake_api.message_ids[0]
    assert answer.locator(".ag-report-toggle").is_visible()

    # the second answer of the conversation has no disclosure; the badge stays
    send(page, "And of Germany?")
    second = page.locator(".msg-assistant").nth(1)
    page.locator(".msg-assistant[data-done=true]").nth(1).wait_for()
    assert second.locator(".disclosure").count() == 0
    assert second.locator(".msg-text").inner_text() == "".join(ANSWER_TOKENS)
    assert page.locator(".ag-badge-btn").is_visible()
    history = fake_api.posted("/v1/chat/completions")[-1]
    assert history["stream"] is True
    assert [m["role"] for m in history["messages"]] == ["user", "assistant", "user"]
    assert history["messages"][1]["content"] == "".join(ANSWER_TOKENS)  # without the disclosure


def test_content_filter_finish_is_shown(page: Any, live_server: str, catalogue: Catalogue) -> None:
    page.goto(live_server + "/")
    send(page, "something forbidden")
    answer = page.locator(".msg-assistant[data-done=true]")
    answer.wait_for()
    assert answer.get_attribute("data-finish") == "content_filter"
    expected = catalogue.strings("widget", "en")["demo_content_filtered"]
    assert answer.locator(".filtered").inner_text() == expected


def test_demo_screenshots(
    page: Any,
    live_server: str,
    fake_api: FakeAPI,
    catalogue: Catalogue,
    screenshot_dir: Path | None,
) -> None:
    """Consent dialog, then an answer with the report form open (saved when asked to)."""
    en = catalogue.strings("widget", "en")
    fake_api.required = ["ai_interaction"]
    page.set_viewport_size({"width": 900, "height": 640})
    page.goto(live_server + "/")
    page.get_by_role("dialog").wait_for()
    page.locator("body[data-ready=true]").wait_for()
    if screenshot_dir:
        screenshot_dir.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(screenshot_dir / "demo-consent.png"))
    page.get_by_role("button", name=en["consent_accept"]).click()
    page.locator(".ag-toast").wait_for(state="visible")
    send(page, "What is the capital of France?")
    answer = page.locator(".msg-assistant[data-done=true]")
    answer.wait_for()
    answer.get_by_role("button", name=en["report_open"]).click()
    answer.get_by_label(en["report_comment"]).fill("Paris has been the capital since 987.")
    page.evaluate(
        """() => { document.activeElement.blur();
        document.querySelector('.ag-toast').classList.remove('ag-toast-show');
        window.scrollTo(0, document.body.scrollHeight); }"""
    )
    assert answer.locator("form.ag-report-form").is_visible()
    if screenshot_dir:
        page.set_viewport_size({"width": 900, "height": 900})
        page.wait_for_timeout(300)  # the toast's fade-out
        page.screenshot(path=str(screenshot_dir / "demo-report.png"))
