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
_KEY_LEN = 4
_MAX_ALTERNATIVES = 64
_MIX = np.uint64(0x9E3779B97F4A7C15)
_BITMAP_BITS = 20
_SHIFT = np.uint64(64 - _BITMAP_BITS)


def required_literals(pattern: str) -> set[str] | None:
    """Lower-cased strings of which every match contains at least one, or None if unknown."""
    if _sre_parse is None:
        return None
    try:
        parsed = _sre_parse.parse(pattern)
    except re.error:
        return None
    best = _best(_candidates(list(parsed)))
    return best


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
            alts = (_alternatives(list(av[-1])) if name == "SUBPATTERN"
                    else _branch(av[1]))
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


def _best(candidates: list[set[str]]) -> set[str] | None:
    # spaces make a key common (" you"): rank by the stripped length, then fewer alternatives
    scored = [(min(len(s.strip()) for s in c), -len(c), i) for i, c in enumerate(candidates) if c]
    if not scored:
        return None
    length, _, i = max(scored)
    return {s.lower() for s in candidates[i]} if length >= 2 else None


_ZERO_WIDTH = frozenset({"AT", "ASSERT", "ASSERT_NOT"})
_COMMON = frozenset("etaoinsrhldcu ")


def _rarest_window(literal: str) -> str:
    """The literal's most distinctive 4-character window ("umbr", not "ich "), as the key."""
    if len(literal) <= _KEY_LEN:
        return literal
    windows = [literal[i : i + _KEY_LEN] for i in range(len(literal) - _KEY_LEN + 1)]
    return max(reversed(windows), key=lambda w: sum(1 if c in _COMMON else 3 for c in w))


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
    """Maps rule ids to their literal keys; ``candidates(text)`` returns the ids worth running."""

    def __init__(self) -> None:
        self._keys: dict[int, dict[int, list[int]]] = {}  # key length -> hash -> rule ids
        self.always: list[int] = []  # rules without a usable literal

    def add(self, rule: int, pattern: str) -> None:
        literals = required_literals(pattern)
        if literals is None:
            self.always.append(rule)
            return
        for lit in literals:
            key = _rarest_window(lit)
            h = int(_hashes(_codes(key), len(key))[0])
            self._keys.setdefault(len(key), {}).setdefault(h, []).append(rule)

    def freeze(self) -> None:
        # a bitmap per key length answers "could this n-gram be a key?" with one numpy gather;
        # the exact dict lookup then runs only for the few positions that pass
        self._bitmaps: dict[int, npt.NDArray[np.bool_]] = {}
        for n, keys in self._keys.items():
            bitmap = np.zeros(1 << _BITMAP_BITS, dtype=np.bool_)
            bitmap[(np.array(sorted(keys), dtype=np.uint64) * _MIX) >> _SHIFT] = True
            self._bitmaps[n] = bitmap

    def candidates(self, text: str) -> dict[int, list[int]]:
        """Rule id -> positions in ``text`` where its key occurs (empty list: run everywhere).

        Positions let the caller run a rule only on the sentences that can match, which matters
        for rules with large alternations (identity terms)."""
        codes = _codes(text.lower())
        found: dict[int, list[int]] = {rule: [] for rule in self.always}
        for n, bitmap in self._bitmaps.items():
            h = _hashes(codes, n)
            if h.shape[0] == 0:
                continue
            positions = np.flatnonzero(bitmap[(h * _MIX) >> _SHIFT])
            if positions.shape[0] == 0:
                continue
            keys = self._keys[n]
            for pos, value in zip(positions.tolist(), h[positions].tolist(), strict=True):
                for rule in keys.get(value, ()):
                    found.setdefault(rule, []).append(pos)
        return found
