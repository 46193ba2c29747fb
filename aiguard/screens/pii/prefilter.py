"""Decide, in microseconds, whether presidio must run at all, on which windows, for which entities.

Every pattern entity the screen knows has a cheap necessary condition: an e-mail has an "@",
an IBAN starts with two letters and two digits, every number-shaped identifier is a cluster
of at least 7 digits (with the separators people type), an IP address is a dotted quad or has
"::" or three "h:" groups. One compiled regex finds all of them in one pass; most chatbot
answers have none and are allowed without touching presidio.

A hit becomes a window: the whitespace-delimited token around it plus a margin (48 characters
before, 8 after), snapped out to whitespace. Every pattern recognizer matches text made of the hit's
own token run (identifiers never contain more than single separators between groups), so
running it on the window finds what it would find on the whole text; the margin keeps the
five words before it that presidio's context enhancer reads (it reads none after). Windows
that touch are merged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# presidio's context enhancer reads the 5 words *before* an entity and none after, so the
# window reaches further back than forward.
MARGIN_BEFORE = 48  # chars, then out to a space: ~8 words of prose
MARGIN_AFTER = 8
_TOKEN_REACH = 256  # bound on the token expansion, for text without spaces (Chinese)

# Minimum digits in a cluster for each number-shaped entity (the shortest form people write).
MIN_DIGITS: dict[str, int] = {
    "PHONE_NUMBER": 7,
    "NL_BSN": 8,
    "US_SSN": 9,
    "DE_TAX_ID": 11,
    "CREDIT_CARD": 12,
    "CN_RESIDENT_ID": 17,
}

_D = "0-9\uff10-\uff19"  # ASCII and fullwidth digits (the screen maps fullwidth to ASCII 1:1)

# One regex per kind, each starting with a character class so ``re`` skips ahead in C instead
# of trying alternatives at every position (a single alternation of all kinds measured 5-10x
# slower), and separate so that one kind never consumes another's evidence ("LZ6311T47" is
# both IBAN-shaped and an ID card). A kind runs only if its gate character is in the text.
_KINDS: dict[str, tuple[str, str, frozenset[str]]] = {
    # kind: (gate, regex, entities it can feed)
    "email": ("@", r"[@\uff20]", frozenset({"EMAIL_ADDRESS"})),
    "url": (":.", r":(?=//)|\.(?<=www\.)", frozenset({"URL"})),
    "ip6": (":", r":(?::|[0-9A-Fa-f]{1,4}:[0-9A-Fa-f]{0,4}:)", frozenset({"IP_ADDRESS"})),
    "digits": ("0", rf"[{_D}](?:[ \-.()/]{{0,2}}[{_D}]){{6,}}", frozenset(MIN_DIGITS)),
    "ip4": (
        "0",
        rf"[{_D}]{{1,3}}\.[{_D}]{{1,3}}\.[{_D}]{{1,3}}\.[{_D}]{{1,3}}",
        frozenset({"IP_ADDRESS"}),
    ),
    # an ID card number starts with a letter of its charset, so its first digit follows one
    "deid": ("0", r"[0-9](?<=[CFGHJKLMNPRTVWXYZ][0-9])", frozenset({"DE_ID_CARD"})),
    # two letters then the check digits, anchored on the digits
    "iban": ("0", r"[0-9](?<=[A-Za-z]{2}[0-9])[0-9][ -]?[A-Za-z0-9]{4}", frozenset({"IBAN_CODE"})),
}
# "0" stands for "any digit": the gate regex below finds the first gate character at C speed.
_GATE_CLASS = {"@": "@\uff20", ":": ":", ".": ".", "0": _D}

_DIGIT = re.compile(rf"[{_D}]")


@dataclass(frozen=True, slots=True)
class Window:
    start: int
    end: int
    entities: frozenset[str]


class Prefilter:
    """Built once for a screen's entity set; ``windows(text)`` is the hot path."""

    def __init__(self, entities: frozenset[str]) -> None:
        self._scans: list[tuple[str, str, re.Pattern[str], frozenset[str]]] = []
        gates: set[str] = set()
        for kind, (gate, regex, wanted) in _KINDS.items():
            if wanted & entities:
                self._scans.append((kind, gate, re.compile(regex), wanted & entities))
                gates.update(gate)
        self._scans_digits = any(scan[0] == "digits" for scan in self._scans)
        chars = "".join(sorted({_GATE_CLASS[g] for g in gates}))
        self._gate = re.compile(f"[{chars}]") if chars else None

    @property
    def active(self) -> bool:
        return self._gate is not None

    def windows(self, text: str) -> list[Window]:
        """The merged windows presidio must look at, each with the entities it may hold."""
        if self._gate is None or self._gate.search(text) is None:
            return []  # the common case: no digit, "@" or ":" at all
        has = {
            "@": "@" in text or "\uff20" in text,
            ":": ":" in text,
            ".": "." in text,
            "0": _DIGIT.search(text) is not None,
            "cluster": not self._scans_digits,  # without that scan, IBANs are searched anyway
        }
        spans: list[tuple[int, int, frozenset[str]]] = []
        for kind, gate, regex, entities in self._scans:
            if not any(has[g] for g in gate):
                continue
            if kind == "iban" and not has["cluster"]:
                continue  # every registry IBAN holds a run of >= 7 digits (its account number)
            for match in regex.finditer(text):
                found = entities
                if kind == "digits":
                    has["cluster"] = True
                    n = len(_DIGIT.findall(match.group()))
                    found = frozenset(e for e in entities if MIN_DIGITS[e] <= n)
                    if not found:
                        continue
                start, end = _expand(text, match.start(), match.end())
                spans.append((start, end, found))
        return _merge(spans)


def _expand(text: str, start: int, end: int) -> tuple[int, int]:
    # the token around the hit (bounded), then the margin, then out to the next whitespace
    n = len(text)
    lo = start
    floor = max(0, start - _TOKEN_REACH)
    while lo > floor and not text[lo - 1].isspace():
        lo -= 1
    hi = end
    ceil = min(n, end + _TOKEN_REACH)
    while hi < ceil and not text[hi].isspace():
        hi += 1
    lo = max(0, lo - MARGIN_BEFORE)
    hi = min(n, hi + MARGIN_AFTER)
    floor = max(0, lo - 32)
    while lo > floor and not text[lo - 1].isspace():
        lo -= 1
    ceil = min(n, hi + 32)
    while hi < ceil and not text[hi].isspace():
        hi += 1
    return lo, hi


def _merge(spans: list[tuple[int, int, frozenset[str]]]) -> list[Window]:
    spans.sort(key=lambda s: s[0])
    out: list[Window] = []
    for start, end, entities in spans:
        if out and start <= out[-1].end:
            last = out[-1]
            out[-1] = Window(last.start, max(last.end, end), last.entities | entities)
        else:
            out.append(Window(start, end, entities))
    return out
