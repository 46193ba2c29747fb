"""The widget in a real Chromium: badge, consent dialog, reports, escaping."""

from __future__ import annotations

from typing import Any

import pytest

from aiguard.policy.prompts import Catalogue
from tests.browser.browser_fake import NOTICE, NOTICE_VERSION, PROCEDURE, FakeAPI

pytestmark = pytest.mark.browser

XSS = '<script>alert(1)</script><img src=x onerror="window.__pwned=1">'


def send(page: Any, text: str) -> None:
    page.fill("#input", text)
    page.click("#send")


def wait_answer(page: Any, n: int = 1) -> Any:
    answer = page.locator(".msg-assistant").nth(n - 1)
    answer.and_(page.locator("[data-done=true]")).wait_for()
    return answer


def test_badge_visible_and_labelled(page: Any, live_server: str, catalogue: Catalogue) -> None:
    page.goto(live_server + "/host")
    badge = page.locator(".ag-badge-btn")
    badge.wait_for(state="visible")
    page.evaluate("aiguard.ready")
    en = catalogue.strings("widget", "en")
    assert badge.get_attribute("aria-label") == en["badge_label"]
    assert badge.inner_text() == en["badge"]
    # fixed on screen: still visible after scrolling a long page
    page.evaluate("document.body.style.height = '5000px'; window.scrollTo(0, 4000)")
    assert badge.is_visible()
    box = badge.bounding_box()
    assert box is not None and 0 <= box["y"] < 100
    # the details panel opens from the keyboard and explains what the badge means
    badge.focus()
    page.keyboard.press("Enter")
    assert page.get_by_text(en["panel_text"]).is_visible()
    assert badge.get_attribute("aria-expanded") == "true"
    page.keyboard.press("Escape")
    assert not page.get_by_text(en["panel_text"]).is_visible()


@pytest.mark.parametrize("lang", ["de", "zh-CN", "fr"])
def test_strings_follow_the_locale(
    page: Any, live_server: str, catalogue: Catalogue, lang: str
) -> None:
    page.goto(f"{live_server}/host?attrs=data-lang%3D{lang}")
    page.evaluate("aiguard.ready")
    expected = catalogue.strings("widget", lang)
    badge = page.locator(".ag-badge-btn")
    assert badge.get_attribute("aria-label") == expected["badge_label"]
    assert page.evaluate("aiguard.locale") == lang
    page.evaluate("aiguard.attachReport(document.getElementById('answer'), 'msg_1')")
    assert page.locator(".ag-report-toggle").inner_text() == expected["report_open"]


def test_consent_dialog_before_first_message(
    page: Any, live_server: str, fake_api: FakeAPI, catalogue: Catalogue
) -> None:
    fake_api.required = ["ai_interaction", "provider_processing"]
    en = catalogue.strings("widget", "en")
    page.goto(live_server + "/")
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    assert dialog.get_attribute("aria-modal") == "true"
    assert page.locator(".ag-badge-btn").is_visible()  # even above the overlay
    # the notice is plain text: its markup is shown, not interpreted
    assert page.locator(".ag-notice").inner_text() == NOTICE
    assert page.locator(".ag-notice b").count() == 0
    # focus starts inside and Tab cannot leave the dialog
    assert page.evaluate("document.querySelector('.ag-dialog').contains(document.activeElement)")
    for _ in range(4):
        page.keyboard.press("Tab")
        assert page.evaluate(
            "document.querySelector('.ag-dialog').contains(document.activeElement)"
        )
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.querySelector('.ag-dialog').contains(document.activeElement)")
    assert fake_api.posted("/v1/chat/completions") == []

    page.get_by_role("button", name=en["consent_accept"]).click()
    dialog.wait_for(state="detached")
    assert fake_api.posted("/aiguard/consent") == [
        {
            "action": "granted",
            "purposes": ["ai_interaction", "provider_processing"],
            "notice_version": NOTICE_VERSION,
        }
    ]
    send(page, "What is the capital of France?")
    wait_answer(page)
    assert len(fake_api.posted("/v1/chat/completions")) == 1

    # withdraw from the badge panel: recorded, and the next message asks again
    page.locator(".ag-badge-btn").click()
    page.get_by_role("button", name=en["consent_withdraw"]).click()
    page.get_by_text(en["consent_withdrawn"]).wait_for()
    assert fake_api.posted("/aiguard/consent/withdraw") == [{}]
    assert fake_api.missing() == ["ai_interaction", "provider_processing"]
    send(page, "And of Germany?")
    dialog.wait_for()
    page.get_by_role("button", name=en["consent_decline"]).click()
    dialog.wait_for(state="detached")
    page.get_by_text(en["demo_consent_needed"]).wait_for()
    assert fake_api.posted("/aiguard/consent")[-1]["action"] == "refused"
    assert len(fake_api.posted("/v1/chat/completions")) == 1  # nothing sent without consent
    assert page.locator(".ag-badge-btn").is_visible()


def test_consent_dialog_keyboard_only(
    page: Any, live_server: str, fake_api: FakeAPI, catalogue: Catalogue
) -> None:
    fake_api.required = ["ai_interaction"]
    page.goto(live_server + "/")
    page.get_by_role("dialog").wait_for()
    # Accept has focus first; Enter activates it
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == catalogue.strings("widget", "en")["consent_accept"]
    page.keyboard.press("Enter")
    page.get_by_role("dialog").wait_for(state="detached")
    assert fake_api.consent == {"ai_interaction": "granted"}


def test_428_from_chat_endpoint_reopens_dialog(
    page: Any, live_server: str, fake_api: FakeAPI, catalogue: Catalogue
) -> None:
    fake_api.required = ["ai_interaction"]
    page.goto(live_server + "/host?attrs=data-consent%3Dmanual")
    page.evaluate("aiguard.ready")
    assert page.get_by_role("dialog").count() == 0  # manual mode: nothing opens on load
    # kept on window: evaluate() would wait for the promise, which waits for the click below
    page.evaluate(
        """() => { window.__handled = fetch('/v1/chat/completions', {method: 'POST',
        headers: {'Content-Type': 'application/json'},
        body: JSON.stringify({model: 'x', messages: [], stream: true})})
        .then(r => aiguard.handleResponse(r)); }"""
    )
    page.get_by_role("dialog").wait_for()
    page.get_by_role("button", name=catalogue.strings("widget", "en")["consent_accept"]).click()
    assert page.evaluate("window.__handled") is True
    assert fake_api.consent == {"ai_interaction": "granted"}


def test_report_flow_renders_user_text_as_text(
    page: Any, live_server: str, fake_api: FakeAPI, catalogue: Catalogue
) -> None:
    en = catalogue.strings("widget", "en")
    alerts: list[str] = []
    page.on("dialog", lambda d: (alerts.append(d.message), d.dismiss()))
    page.goto(live_server + "/")
    send(page, "What is the capital of France?")
    answer = wait_answer(page)
    message_id = answer.get_attribute("data-message-id")
    assert message_id == fake_api.message_ids[0]
    scripts_before = page.locator("script").count()

    answer.get_by_role("button", name=en["report_open"]).click()
    form = answer.locator("form.ag-report-form")
    assert form.is_visible()
    form.get_by_label(en["report_category"]).select_option("outdated")
    form.get_by_label(en["report_comment"]).fill(XSS)
    form.get_by_label(en["report_correction"]).fill("It is still Paris.")
    form.get_by_role("button", name=en["report_submit"]).click()

    receipt = answer.locator(".ag-receipt")
    receipt.wait_for()
    (report_id,) = fake_api.reports
    assert receipt.locator(".ag-receipt-title").inner_text() == en["report_received"].format(
        id=report_id
    )
    assert receipt.locator(".ag-receipt-procedure").inner_text() == PROCEDURE
    assert fake_api.reports[report_id] == {
        "message_id": message_id,
        "category": "outdated",
        "comment": XSS,
        "correction": "It is still Paris.",
    }
    # the comment is echoed as visible text; nothing in it became markup or ran
    assert receipt.locator(".ag-receipt-comment").inner_text() == XSS
    assert page.get_by_text("<script>alert(1)</script>", exact=False).is_visible()
    assert page.locator("script").count() == scripts_before
    assert page.locator(".ag-root img, .msg img").count() == 0
    assert page.evaluate("window.__pwned") is None
    assert alerts == []


def test_report_error_is_shown(page: Any, live_server: str, catalogue: Catalogue) -> None:
    en = catalogue.strings("widget", "en")
    page.goto(live_server + "/host")
    page.evaluate("aiguard.ready")
    page.evaluate("aiguard.attachReport(document.getElementById('answer'), 'msg_unknown')")
    page.get_by_role("button", name=en["report_open"]).click()
    page.get_by_role("button", name=en["report_submit"]).click()
    page.get_by_text(en["error_not_found"]).wait_for()
    assert page.locator(".ag-receipt").count() == 0


@pytest.mark.parametrize("page", [{"width": 320, "height": 640}], indirect=True)
def test_mobile_width(page: Any, live_server: str, fake_api: FakeAPI) -> None:
    fake_api.required = ["ai_interaction"]
    page.goto(live_server + "/")
    dialog = page.get_by_role("dialog")
    dialog.wait_for()
    box = dialog.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 320
    for name in ("consent_accept", "consent_decline"):
        button = page.get_by_role("button", name=page.evaluate(f"aiguard.t('{name}')"))
        b = button.bounding_box()
        assert b is not None and b["x"] + b["width"] <= 320 and b["height"] >= 40
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    assert page.locator(".ag-badge-btn").is_visible()
