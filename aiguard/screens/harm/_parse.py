"""Turn an LLM judge's reply into ``{category: score}``: strict JSON, loosely found, or Llama Guard.

Judges wrap JSON in prose or code fences, use booleans or percentages, or (Llama Guard) answer
"safe" / "unsafe\\nS1,S10". Everything unrecognisable is an error, never a silent "safe".
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiguard.screens.harm._categories import CATEGORIES, LLAMA_GUARD, canonical

_JSON = json.JSONDecoder()
_CODES_RE = re.compile(r"\bS(\d{1,2})\b", re.IGNORECASE)


class VerdictParseError(ValueError):
    """The judge's reply holds no verdict we can read."""


def parse_verdict(raw: str) -> dict[str, float]:
    text = raw.strip()
    if not text:
        raise VerdictParseError("empty reply")
    guard = _llama_guard(text)
    if guard is not None:
        return guard
    for obj in _json_objects(text):
        scores = _from_json(obj)
        if scores is not None:
            return scores
    raise VerdictParseError(f"no verdict in reply: {text[:200]!r}")


def _llama_guard(text: str) -> dict[str, float] | None:
    lines = [ln.strip().lower() for ln in text.splitlines() if ln.strip()]
    if not lines or lines[0].strip(".") not in {"safe", "unsafe"}:
        return None
    scores = dict.fromkeys(CATEGORIES, 0.0)
    if lines[0].startswith("unsafe"):
        codes = _CODES_RE.findall(" ".join(lines[1:]))
        mapped = [c for code in codes for c in LLAMA_GUARD.get(f"S{int(code)}", ())]
        if not codes:
            raise VerdictParseError("'unsafe' without hazard codes")
        for cat in mapped:
            scores[cat] = 1.0
    return scores


def _json_objects(text: str) -> list[Any]:
    """Every top-level JSON object in the text, in order (code fences and prose ignored)."""
    out: list[Any] = []
    i = text.find("{")
    while i != -1:
        try:
            obj, end = _JSON.raw_decode(text, i)
        except json.JSONDecodeError:
            i = text.find("{", i + 1)
            continue
        out.append(obj)
        i = text.find("{", end)
    return out


def _score(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        v = float(value)
    elif isinstance(value, str):
        try:
            v = float(value.strip().rstrip("%"))
        except ValueError:
            return None
    elif isinstance(value, dict):
        return _score(value.get("score", value.get("probability")))
    else:
        return None
    if 1.0 < v <= 100.0:  # a percentage
        v /= 100.0
    return min(1.0, max(0.0, v))


def _from_json(obj: Any) -> dict[str, float] | None:
    if not isinstance(obj, dict):
        return None
    body: Any = obj.get("categories", obj.get("category_scores", obj.get("scores", obj)))
    items: list[tuple[str, Any]] = []
    if isinstance(body, dict):
        items = [(str(k), v) for k, v in body.items()]
    elif isinstance(body, list):  # [{"category": "hate", "score": 0.9}] or ["hate", ...]
        for entry in body:
            if isinstance(entry, dict) and "category" in entry:
                items.append((str(entry["category"]), entry.get("score", 1.0)))
            elif isinstance(entry, str):
                items.append((entry, 1.0))
    scores = dict.fromkeys(CATEGORIES, 0.0)
    known = False
    for key, value in items:
        cat = canonical(key)
        score = _score(value)
        if cat is None or score is None:
            continue
        known = True
        scores[cat] = max(scores[cat], score)
    flagged = obj.get("flagged", obj.get("unsafe"))
    if not known and isinstance(flagged, bool) and not flagged:
        return scores  # {"flagged": false} with no categories: a clean verdict
    return scores if known else None
