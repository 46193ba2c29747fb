"""Turn screen results into one decision (policy actions per category) and apply redactions.

Pure functions: the pipeline and the streaming screener both call them, so a streamed answer and
a whole answer get the same decision for the same findings.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache

from aiguard.policy.screening import ScreeningPolicy
from aiguard.screens.base import Action, ScreenResult, Span, Verdict

SCREEN_ERROR = "screen_error"

# Short, readable placeholders for common labels; anything else becomes ``[LABEL]``.
_SHORT = {
    "EMAIL_ADDRESS": "EMAIL",
    "PHONE_NUMBER": "PHONE",
    "IBAN_CODE": "IBAN",
    "CREDIT_CARD": "CARD",
    "US_SSN": "SSN",
    "IP_ADDRESS": "IP",
    "STREET_ADDRESS": "ADDRESS",
}


@dataclass(frozen=True, slots=True)
class Decision:
    verdict: Verdict
    redactions: tuple[Span, ...]  # sorted, non-overlapping, in the screened text's offsets
    categories: tuple[str, ...]  # labels that triggered block or redact, first-seen order


def _action_of(result: ScreenResult, label: str, policy: ScreeningPolicy) -> Action:
    name = policy.actions.get(label) or policy.actions.get(result.screen)
    if name is not None:
        return Action(name)
    # no policy entry: the screen's own proposal decides
    if result.verdict is Verdict.BLOCK:
        return Action.BLOCK
    return Action.REDACT if result.verdict is Verdict.REDACT else Action.ANNOTATE


def decide(results: Iterable[ScreenResult], policy: ScreeningPolicy, text_len: int) -> Decision:
    """Apply ``policy.actions`` to every finding at or above its threshold.

    A screen whose own verdict is ALLOW only annotates (its spans are below its own bar).
    A failed screen blocks under ``fail_mode = "closed"`` and is ignored under ``"open"``.
    """
    verdict = Verdict.ALLOW
    spans: list[Span] = []
    categories: dict[str, None] = {}
    for r in results:
        if r.error is not None:
            if policy.fail_mode == "closed":
                verdict = Verdict.BLOCK
                categories[SCREEN_ERROR] = None
            continue
        if r.verdict is Verdict.ALLOW:
            continue
        acted = False
        for s in r.spans:
            if s.score < policy.threshold(s.label, r.screen):
                continue
            acted = True
            action = _action_of(r, s.label, policy)
            if action is Action.BLOCK:
                verdict = Verdict.BLOCK
                categories[s.label] = None
            elif action is Action.REDACT:
                start, end = min(s.start, text_len), min(s.end, text_len)
                if end > start:
                    spans.append(Span(s.label, start, end, s.score, s.explanation))
                    verdict = max(verdict, Verdict.REDACT)
                    categories[s.label] = None
        if not r.spans and not acted and _action_of(r, r.screen, policy) is Action.BLOCK:
            # a whole-text verdict (a classifier with no spans)
            verdict = Verdict.BLOCK
            categories[r.screen] = None
    return Decision(verdict, merge(spans), tuple(categories))


def merge(spans: Iterable[Span]) -> tuple[Span, ...]:
    """Union overlapping spans so every flagged character is hidden exactly once."""
    out: list[Span] = []
    for s in sorted(spans, key=lambda s: (s.start, -s.end)):
        if out and s.start < out[-1].end:
            last = out[-1]
            if s.end > last.end:
                out[-1] = Span(last.label, last.start, s.end, max(last.score, s.score))
            continue
        out.append(s)
    return tuple(out)


@cache
def _pii_placeholders() -> Mapping[str, str]:
    """The PII screen's placeholders (``[EMAIL]``, ``[NAME]``...) so both screens' findings
    read the same; importing the package is cheap (presidio loads in ``PIIScreen.load``)."""
    try:
        from aiguard.screens import pii
    except ImportError:
        return {}
    table = getattr(pii, "PLACEHOLDERS", None)
    return table if isinstance(table, Mapping) else {}


def placeholder(label: str) -> str:
    found = _pii_placeholders().get(label)
    return found if isinstance(found, str) else f"[{_SHORT.get(label, label.upper())}]"


def redact(text: str, spans: Sequence[Span]) -> str:
    """Replace each (sorted, non-overlapping) span with its readable placeholder."""
    parts: list[str] = []
    pos = 0
    for s in spans:
        parts.append(text[pos : s.start])
        parts.append(placeholder(s.label))
        pos = s.end
    parts.append(text[pos:])
    return "".join(parts)
