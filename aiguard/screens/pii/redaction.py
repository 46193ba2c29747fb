"""Replace found spans with readable placeholders: "mail [EMAIL] or call [PHONE]"."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from aiguard.screens.base import Span

PLACEHOLDERS: Mapping[str, str] = {
    "EMAIL_ADDRESS": "[EMAIL]",
    "PHONE_NUMBER": "[PHONE]",
    "IBAN_CODE": "[IBAN]",
    "CREDIT_CARD": "[CREDIT_CARD]",
    "IP_ADDRESS": "[IP]",
    "URL": "[URL]",
    "PERSON": "[NAME]",
    "LOCATION": "[LOCATION]",
    # national identifiers: what they are matters less to a reader than that one was there
    "US_SSN": "[ID]",
    "CN_RESIDENT_ID": "[ID]",
    "NL_BSN": "[ID]",
    "DE_TAX_ID": "[ID]",
    "DE_ID_CARD": "[ID]",
}
DEFAULT_PLACEHOLDER = "[REDACTED]"


def placeholder(label: str) -> str:
    return PLACEHOLDERS.get(label, DEFAULT_PLACEHOLDER)


def redact(text: str, spans: Iterable[Span], placeholders: Mapping[str, str] = PLACEHOLDERS) -> str:
    """``text`` with every span replaced by its label's placeholder.

    Overlapping or touching spans merge into one replacement whose label is the one of the
    highest-scoring span among them (ties: the longest), so "[PHONE][ID]" fragments and
    half-replaced numbers never appear. Spans past the end of ``text`` are clipped.
    """
    ordered = sorted(
        (s for s in spans if s.start < len(text) and s.end > s.start),
        key=lambda s: (s.start, -s.end),
    )
    groups: list[tuple[int, int, Span]] = []  # (start, end, label-giving span)
    for span in ordered:
        end = min(span.end, len(text))
        if groups and span.start < groups[-1][1]:
            start, last_end, best = groups[-1]
            if (span.score, span.end - span.start) > (best.score, best.end - best.start):
                best = span
            groups[-1] = (start, max(last_end, end), best)
        else:
            groups.append((span.start, end, span))
    out: list[str] = []
    cursor = 0
    for start, end, best in groups:
        out.append(text[cursor:start])
        out.append(placeholders.get(best.label, DEFAULT_PLACEHOLDER))
        cursor = end
    out.append(text[cursor:])
    return "".join(out)
