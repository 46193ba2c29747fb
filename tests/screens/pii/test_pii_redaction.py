from __future__ import annotations

import pytest

from aiguard.screens.base import Span
from aiguard.screens.pii import redact


def _span(label: str, text: str, part: str, score: float = 0.9) -> Span:
    start = text.index(part)
    return Span(label, start, start + len(part), score)


@pytest.mark.parametrize(
    ("label", "placeholder"),
    [
        ("EMAIL_ADDRESS", "[EMAIL]"),
        ("PHONE_NUMBER", "[PHONE]"),
        ("IBAN_CODE", "[IBAN]"),
        ("CREDIT_CARD", "[CREDIT_CARD]"),
        ("IP_ADDRESS", "[IP]"),
        ("US_SSN", "[ID]"),
        ("CN_RESIDENT_ID", "[ID]"),
        ("NL_BSN", "[ID]"),
        ("DE_TAX_ID", "[ID]"),
        ("DE_ID_CARD", "[ID]"),
        ("PERSON", "[NAME]"),
        ("SOMETHING_NEW", "[REDACTED]"),
    ],
)
def test_placeholders(label: str, placeholder: str) -> None:
    text = "value: XYZ123 end"
    assert redact(text, [_span(label, text, "XYZ123")]) == f"value: {placeholder} end"


def test_several_spans_in_any_order() -> None:
    text = "Mail a@b.com or call 212-555-0187, IBAN DE89370400440532013000."
    spans = [
        _span("IBAN_CODE", text, "DE89370400440532013000"),
        _span("EMAIL_ADDRESS", text, "a@b.com"),
        _span("PHONE_NUMBER", text, "212-555-0187"),
    ]
    assert redact(text, spans) == "Mail [EMAIL] or call [PHONE], IBAN [IBAN]."


def test_nested_spans_take_the_strongest_label() -> None:
    text = "card 4111 1111 1111 1111 ok"
    spans = [
        _span("PHONE_NUMBER", text, "1111 1111 1111", 0.5),
        _span("CREDIT_CARD", text, "4111 1111 1111 1111", 1.0),
    ]
    assert redact(text, spans) == "card [CREDIT_CARD] ok"


def test_partial_overlaps_merge_into_one_placeholder() -> None:
    text = "x 123456789012 y"
    a = Span("PHONE_NUMBER", 2, 10, 0.5)
    b = Span("NL_BSN", 6, 14, 0.7)
    assert redact(text, [a, b]) == "x [ID] y"


def test_equal_scores_prefer_the_longer_span() -> None:
    text = "x 123456789012 y"
    assert redact(text, [Span("NL_BSN", 2, 11, 0.7), Span("PHONE_NUMBER", 2, 14, 0.7)]) == (
        "x [PHONE] y"
    )


def test_touching_spans_stay_separate() -> None:
    text = "ab"
    assert redact(text, [Span("EMAIL_ADDRESS", 0, 1, 1), Span("PHONE_NUMBER", 1, 2, 1)]) == (
        "[EMAIL][PHONE]"
    )


def test_no_spans_and_out_of_range_spans() -> None:
    assert redact("hello", []) == "hello"
    assert redact("hello", [Span("PHONE_NUMBER", 3, 99, 1)]) == "hel[PHONE]"
    assert redact("hello", [Span("PHONE_NUMBER", 7, 9, 1), Span("URL", 2, 2, 1)]) == "hello"


def test_custom_placeholders() -> None:
    text = "mail a@b.com"
    out = redact(text, [_span("EMAIL_ADDRESS", text, "a@b.com")], {"EMAIL_ADDRESS": "<e>"})
    assert out == "mail <e>"
