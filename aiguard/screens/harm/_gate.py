"""A vectorised literal gate: which regex rules could possibly match this text?

Python's ``re`` scans an alternation of hundreds of rules position by position (~100x slower
than one rule). Instead each rule contributes the literal that every match must contain (found
with the stdlib regex parser), keyed by its first 2-4 characters; a text's character n-grams
are hashed with numpy and intersected with those keys, and only the rules whose key occurs are
run. Benign text usually triggers none or a handful.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

try:  # the stdlib parser is private; without it every rule simply runs (slower, same result)
    from re import _parser as _sre_parse  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover
    _sre_parse = None

_PRIME = np.uint64(1_000_003)
_KEY_LEN = 6  # longer keys are rarer: "l ever" is not in every text, "very" is
_MAX_ALTERNATIVES = 64
_MIX = np.uint64(0x9E3779B97F4A7C15)
_BITMAP_BITS = 20
_SHIFT = np.uint64(64 - _BITMAP_BITS)


def required_literals(pattern: str) -> set[str] | None:
    """Lower-cased strings of which every match contains at least one, or None if unknown."""
    sets = required_literal_sets(pattern)
    return sets[0] if sets else None


def required_literal_sets(pattern: str, limit: int = 3) -> list[set[str]]:
    """Up to ``limit`` literal sets, most distinctive first; every match hits each of them."""
    if _sre_parse is None:
        return []
    try:
        parsed = _sre_parse.parse(pattern)
    except re.error:
        return []
    return _ranked(_candidates(list(parsed)))[:limit]


def _candidates(items: list[Any]) -> list[set[str]]:
    """Sets of literals, one set per stretch of the pattern that every match must contain.

    A literal run is extended across groups of literal alternatives by cross product
    ("kill (?:you|him)" -> {"kill you", "kill him"}); sre factors shared prefixes out of
    alternations ("ab|ac" -> "a(?:b|c)"), so this also recovers whole words.
    """
    out: list[set[str]] = []
    runs: set[str] = {""}

    def flush() -> None:
        nonlocal runs
        if any(runs):
            out.append(runs)
        runs = {""}

    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            runs = {r + chr(av) for r in runs}
        elif name in _ZERO_WIDTH:  # \b, ^, lookarounds: the literal run continues across them
            continue
        elif name in ("SUBPATTERN", "BRANCH"):
            alts = _alternatives(list(av[-1])) if name == "SUBPATTERN" else _branch(av[1])
            if alts is None:
                flush()
                continue
            full, prefixes = alts
            joined = {r + a for r in runs for a in prefixes}
            if len(joined) > _MAX_ALTERNATIVES:
                flush()
                out.append(prefixes)
                continue
            runs = joined
            if not full:  # some alternative continues with a non-literal: the run ends here
                flush()
        else:
            flush()
    flush()
    return out


def _alternatives(items: list[Any]) -> tuple[bool, set[str]] | None:
    if len(items) == 1 and str(items[0][0]) == "BRANCH":
        return _branch(items[0][1][1])
    prefix, full = _prefix(items)
    return (full, {prefix}) if prefix else None


def _branch(alternatives: Iterable[Any]) -> tuple[bool, set[str]] | None:
    out: set[str] = set()
    all_full = True
    for alt in alternatives:
        prefix, full = _prefix(list(alt))
        if not prefix:
            return None
        out.add(prefix)
        all_full &= full
    return all_full, out


def _prefix(items: list[Any]) -> tuple[str, bool]:
    """The leading literal run of a sequence, and whether the sequence is nothing but it."""
    run = ""
    for op, av in items:
        name = str(op)
        if name == "LITERAL":
            run += chr(av)
        elif name not in _ZERO_WIDTH:
            return run, False
    return run, True


def _ranked(candidates: list[set[str]]) -> list[set[str]]:
    """Sets by their weakest key's distinctiveness ("fuck" before {"her hard", "me raw"})."""
    scored = [
        (min(_key_score(s) for s in c), -len(c), i)
        for i, c in enumerate(candidates)
        if c and min(len(s.strip()) for s in c) >= 2
    ]
    return [{s.lower() for s in candidates[i]} for _, _, i in sorted(scored, reverse=True)]


def _key_score(literal: str) -> int:
    return sum(_rarity(c) for c in _rarest_window(literal.lower()))


_ZERO_WIDTH = frozenset({"AT", "ASSERT", "ASSERT_NOT"})
_COMMON = frozenset("etaoinsrhldcu")


def _rarest_window(literal: str) -> str:
    """The literal's most distinctive 6-character window ("umbr", not "ich "), as the key."""
    if len(literal) <= _KEY_LEN:
        return literal
    windows = [literal[i : i + _KEY_LEN] for i in range(len(literal) - _KEY_LEN + 1)]
    return max(windows, key=lambda w: sum(_rarity(c) for c in w))


def _rarity(c: str) -> int:
    # spaces occur everywhere ("ate " is in "late "), frequent letters nearly so
    return 0 if c.isspace() else 1 if c in _COMMON else 3


def _hashes(codes: npt.NDArray[np.uint64], n: int) -> npt.NDArray[np.uint64]:
    m = codes.shape[0] - n + 1
    if m <= 0:
        return np.zeros(0, dtype=np.uint64)
    h = codes[:m].copy()
    for k in range(1, n):
        h = h * _PRIME + codes[k : k + m]
    return h


def _codes(text: str) -> npt.NDArray[np.uint64]:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)


class LiteralGate:
    """Maps rule ids to literal keys; ``candidates(text)`` returns the rules worth running.

    A rule passes when the text holds a key of *each* of its (up to three) literal sets: every
    match contains one literal of every set, so requiring all is exact and far more selective
    than one common key ("kill" and "someone" and "how to", not just "someone").
    """

    def __init__(self) -> None:
        self._keys: dict[int, dict[int, list[tuple[int, int]]]] = {}  # len -> hash -> (rule, set)
        self._sets: dict[int, int] = {}  # rule -> number of literal sets
        self.always: list[int] = []  # rules without a usable literal

    def add(self, rule: int, pattern: str) -> None:
        sets = required_literal_sets(pattern)
        if not sets:
            self.always.append(rule)
            return
        self._sets[rule] = len(sets)
        for j, literals in enumerate(sets):
            for lit in literals:
                key = _rarest_window(lit)
                h = int(_hashes(_codes(key), len(key))[0])
                self._keys.setdefault(len(key), {}).setdefault(h, []).append((rule, j))

    def freeze(self) -> None:
        # a bitmap per key length answers "could this n-gram be a key?" with one numpy gather;
        # the exact dict lookup then runs only for the few positions that pass
        self._bitmaps: dict[int, npt.NDArray[np.bool_]] = {}
        for n, keys in self._keys.items():
            bitmap = np.zeros(1 << _BITMAP_BITS, dtype=np.bool_)
            bitmap[(np.array(sorted(keys), dtype=np.uint64) * _MIX) >> _SHIFT] = True
            self._bitmaps[n] = bitmap

    def candidates(self, text: str) -> dict[int, list[int]]:
        """Rule id -> positions of its most distinctive key (empty list: run everywhere).

        Positions let the caller run a rule only on the sentences that can match, which matters
        for rules with large alternations (identity terms)."""
        codes = _codes(text.lower())
        seen: dict[int, set[int]] = {}
        positions: dict[int, list[int]] = {}
        for n, bitmap in self._bitmaps.items():
            h = _hashes(codes, n)
            if h.shape[0] == 0:
                continue
            hits = np.flatnonzero(bitmap[(h * _MIX) >> _SHIFT])
            if hits.shape[0] == 0:
                continue
            keys = self._keys[n]
            for pos, value in zip(hits.tolist(), h[hits].tolist(), strict=True):
                for rule, j in keys.get(value, ()):
                    seen.setdefault(rule, set()).add(j)
                    if j == 0:
                        positions.setdefault(rule, []).append(pos)
        found: dict[int, list[int]] = {rule: [] for rule in self.always}
        for rule, sets in seen.items():
            if len(sets) == self._sets[rule]:
                found[rule] = positions[rule]
        return found
