"""Curated multilingual rules (``data/lexicon.toml``): terms, co-occurrence pairs, dampeners.

A literal gate (``_gate.py``) picks the few rules a text can trigger, so the cost does not grow
with the number of rules; co-occurrence and context checks only run around the (rare) matches.
"""

from __future__ import annotations

import bisect
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiguard.errors import ConfigError
from aiguard.screens.harm._categories import CATEGORIES
from aiguard.screens.harm._evaluative import EvaluativeGate
from aiguard.screens.harm._gate import LiteralGate

DEFAULT_LEXICON = Path(__file__).resolve().parent / "data" / "lexicon.toml"
_FLAGS = re.IGNORECASE | re.UNICODE
_CLAUSE_RE = re.compile(r"[,;:，、；：]")
_CLAUSE_WINDOW = 60  # chars before a match in which a negation counts
# Refusals and instructions span clauses ("I'm sorry, but I won't explain how to make ...").
_SENTENCE_NEGATION = frozenset({"illicit", "violence", "self-harm"})
_COUNTER_SPEECH = frozenset({"hate", "harassment", "violence"})
_SUPPORTIVE = frozenset({"self-harm", "sexual/minors"})
_OBJECT_BASE = 1 << 20  # gate ids at and above this are pair objects, below are terms
_QUOTES = '"“”„«»‘’「」『』'


@dataclass(frozen=True, slots=True)
class Hit:
    category: str
    start: int
    end: int
    score: float
    explanation: str


@dataclass(frozen=True, slots=True)
class _Pair:
    category: str
    score: float
    cue: re.Pattern[str]
    object_score: float


def _joined(by_lang: Mapping[str, str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in by_lang.values()), _FLAGS)


def identity_patterns(identities: Mapping[str, Any]) -> dict[str, str]:
    """``{ID}`` and ``{ID_ZH}`` alternations: group nouns, or group adjectives before a noun."""
    adjectives = set(identities.get("adjectives", ()))
    latin = [t for t in identities.get("latin", ()) if t not in adjectives]
    nouns = sorted({*latin, *identities.get("generic", ())}, key=len, reverse=True)

    def alt(terms: Iterable[str]) -> str:
        return "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))

    latin_id = f"(?:{alt(latin)}|(?:{alt(adjectives)}) (?:{alt(nouns)}))" if latin else "(?!)"
    zh = identities.get("zh", ())
    return {"{ID}": latin_id, "{ID_ZH}": f"(?:{alt(zh)})" if zh else "(?!)"}


def _expand(pattern: str, macros: Mapping[str, str]) -> str:
    for key, value in macros.items():
        pattern = pattern.replace(key, value)
    return pattern


class Lexicon:
    def __init__(self, data: Mapping[str, Any]) -> None:
        self.identities: Mapping[str, Any] = data.get("identities", {})
        macros = identity_patterns(self.identities)
        # one compiled rule per pattern; the gate decides which ones a text can trigger
        self._terms: list[tuple[str, float, re.Pattern[str]]] = []
        self._objects: list[tuple[int, re.Pattern[str]]] = []  # (pair index, object pattern)
        self._gate = LiteralGate()
        for category, by_lang in data.get("terms", {}).items():
            if category not in CATEGORIES:
                raise ConfigError(f"lexicon: unknown category {category!r}")
            for entries in by_lang.values():
                for raw, score in entries:
                    pattern = _expand(raw, macros)
                    self._gate.add(len(self._terms), pattern)
                    self._terms.append((category, float(score), re.compile(pattern, _FLAGS)))
        self._pairs: list[_Pair] = []
        for category, p in data.get("pairs", {}).items():
            if category not in CATEGORIES:
                raise ConfigError(f"lexicon: unknown category {category!r}")
            for pattern in p["object"].values():
                self._gate.add(_OBJECT_BASE + len(self._objects), pattern)
                self._objects.append((len(self._pairs), re.compile(pattern, _FLAGS)))
            self._pairs.append(
                _Pair(
                    category,
                    float(p["score"]),
                    _joined(p["cue"]),
                    float(p.get("object_score", 0.0)),
                )
            )
        self._gate.freeze()
        damp = data.get("dampen", {})
        self._factor = float(damp.get("factor", 0.25))
        self._negation = re.compile(damp["negation"], _FLAGS) if "negation" in damp else None
        self._report = re.compile(damp["report"], _FLAGS) if "report" in damp else None
        self._support = re.compile(damp["support"], _FLAGS) if "support" in damp else None
        self.evaluative = EvaluativeGate(data.get("evaluative"), self.identities)

    @classmethod
    def load(cls, path: Path = DEFAULT_LEXICON) -> Lexicon:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            return cls(data)
        except (OSError, tomllib.TOMLDecodeError, re.error, KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"cannot load harm lexicon {path}: {exc}") from None

    def hits(self, text: str, spans: Sequence[tuple[int, int]]) -> list[Hit]:
        """Every rule match, scored after context dampening; offsets index ``text``."""
        found: list[Hit] = []
        for rule, positions in self._gate.candidates(text).items():
            # run the rule only over the sentences holding its key (all text if unknown)
            windows = sorted({_sentence_of(spans, p, len(text)) for p in positions}) or [
                (0, len(text))
            ]
            if rule < _OBJECT_BASE:
                category, score, pattern = self._terms[rule]
                found += [
                    Hit(category, m.start(), m.end(), score, f"matched term {m.group(0)!r}")
                    for a, b in windows
                    for m in pattern.finditer(text, a, b)
                ]
                continue
            pair_index, pattern = self._objects[rule - _OBJECT_BASE]
            pair = self._pairs[pair_index]
            for m in (m for a, b in windows for m in pattern.finditer(text, a, b)):
                a, b = _sentence_of(spans, m.start(), len(text))
                cue = pair.cue.search(text, a, b)
                if cue is not None:
                    found.append(
                        Hit(
                            pair.category,
                            m.start(),
                            m.end(),
                            pair.score,
                            f"{m.group(0)!r} with {cue.group(0)!r} in one sentence",
                        )
                    )
                elif pair.object_score > 0:
                    found.append(
                        Hit(
                            pair.category,
                            m.start(),
                            m.end(),
                            pair.object_score,
                            f"mentions {m.group(0)!r}",
                        )
                    )
        if not found:
            return found
        # one match per (category, place): the same term may be listed for several languages
        found = list({(h.category, h.start, h.end): h for h in found}.values())
        supportive: bool | None = None
        out: list[Hit] = []
        for hit in found:
            a, b = _sentence_of(spans, hit.start, len(text))
            reason = self._context(text, a, b, hit)
            if reason is None and self._support is not None:
                if hit.category in _SUPPORTIVE:
                    if supportive is None:
                        supportive = self._support.search(text) is not None
                    reason = "supportive context" if supportive else None
                elif hit.category == "illicit" and self._support.search(text, a, b):
                    reason = "protective context"
            if reason is not None:
                hit = Hit(
                    hit.category,
                    hit.start,
                    hit.end,
                    hit.score * self._factor,
                    f"{hit.explanation}, lowered: {reason}",
                )
            out.append(hit)
        return out

    def _context(self, text: str, sent_start: int, sent_end: int, hit: Hit) -> str | None:
        prefix_start = sent_start
        if hit.category not in _SENTENCE_NEGATION:
            # a negation counts only in the same clause, shortly before the term
            window_start = max(sent_start, hit.start - _CLAUSE_WINDOW)
            prefix_start = window_start
            for clause in _CLAUSE_RE.finditer(text, window_start, hit.start):
                prefix_start = clause.end()
        if self._negation is not None and self._negation.search(text, prefix_start, hit.start):
            return "negation before it"
        if hit.category in _COUNTER_SPEECH:
            quoted = any(q in text[sent_start : hit.start] for q in _QUOTES) and any(
                q in text[hit.end : sent_end] for q in _QUOTES
            )
            if quoted:
                return "quoted"
            if self._report is not None and self._report.search(text, sent_start, sent_end):
                return "reported or condemned"
        return None


def _sentence_of(spans: Sequence[tuple[int, int]], pos: int, length: int) -> tuple[int, int]:
    """The sentence holding ``pos`` (the whole text when there are no sentence spans)."""
    i = bisect.bisect_right(spans, (pos, length + 1)) - 1
    if 0 <= i < len(spans) and spans[i][0] <= pos < spans[i][1]:
        return spans[i]
    return (0, length)
