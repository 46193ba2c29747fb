"""Evaluative evidence: does a sentence that names a group also *say something bad* about it?

The n-gram classifier learned the shapes of hateful sentences ("I'll ... any X like you", "X
are ...") more than their predicates, so it flagged neutral and positive statements about
groups. ``EvaluativeGate`` looks for explicit negative evaluation in the model's normalised
text (``data/lexicon.toml``, section ``evaluative``); ``LocalBackend`` multiplies the
hate/harassment score of a group-naming sentence without it by ``factor``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from aiguard.errors import ConfigError
from aiguard.screens.harm._features import NEGATED, PLACEHOLDER, QUOTED

_CJK_LANGS = frozenset({"zh"})
_COMPOUND_LANGS = frozenset({"de", "nl"})
_NOT_WORD_START = _CJK_LANGS | _COMPOUND_LANGS
_QUOTED_WORD = re.compile(f"{QUOTED}\\S*")
_CJK_RE = re.compile("[\u3400-\u9fff]")
# A negative word after a negation in the same clause is being denied, not asserted: "I will
# never tolerate the murder of X", "let's not stand by while X are attacked", "X are the
# opposite of stupid". The model's own "¬" marks stop after five words; here a denial runs to
# the end of the clause (at most eight words) and the marks are then ignored.
_DENIED_CLAUSE = re.compile(
    r"(?:(?<![\w¬])(?:not|no|never|nobody|none|nothing|cannot|dont|nor|neither|nicht|kein\w*|nie"
    r"|niemals|niemand|pas|jamais|personne|rien|nunca|jamás|nadie|ninguno|tampoco|niet|geen"
    r"|nooit)(?!\w)|n't|n’t|opposite of|far from)"
    # idioms where the negation intensifies or asks rhetorically: "nothing but contempt", "no
    # better than rats", "nothing worse than", "isn't it clear that ..."
    r"(?! ¬?(?:but|better|worse|more|less|one|else|it|clear|obvious|apparent|doubt|wonder)\b)"
    # the denial ends with the clause, or at "but" ("I have nothing against X but ...")
    # (at most eight words: unpunctuated posts run on)
    r"(?:(?! ¬?(?:but|aber|mais|pero|maar)(?!\w)) ?[^ .,;:!?]+){0,8}"
)


class EvaluativeGate:
    """Compiled from the lexicon's ``[evaluative]`` table; a no-op when it is absent."""

    def __init__(
        self, section: Mapping[str, Any] | None, identities: Mapping[str, Any] | None = None
    ) -> None:
        section = section or {}
        identities = identities or {}
        factors: Mapping[str, float] = section.get("factor", {})
        self.latin_factor = float(factors.get("latin", 1.0))
        self.cjk_factor = float(factors.get("cjk", 1.0))
        if not all(0.0 <= f <= 1.0 for f in (self.latin_factor, self.cjk_factor)):
            raise ConfigError("lexicon: evaluative factors must be in [0, 1]")
        negative: Mapping[str, str] = section.get("negative", {})
        positive: Mapping[str, str] = section.get("negated_positive", {})
        always: Mapping[str, str] = section.get("always", {})
        # searched in what the sentence asserts (denied clauses cut out): negative words that
        # are neither negated nor quoted; CJK patterns carry their own negation lookbehinds
        # German and Dutch terms may end a compound ("Volksverräterin", "Lumpenpack"): those
        # match anywhere in a word, the others only at its start
        words = [
            i for lang, alt in negative.items() if lang not in _NOT_WORD_START for i in _split(alt)
        ]
        parts = [
            i for lang, alt in negative.items() if lang in _COMPOUND_LANGS for i in _split(alt)
        ]
        latin = [rf"(?<![\w{NEGATED}{QUOTED}])(?:{_by_first_letter(words)})(?!\w)"] if words else []
        latin += [rf"(?:{_by_first_letter(parts)})(?!\w)"] if parts else []
        cjk = [_by_first_letter(_split(a)) for lang, a in negative.items() if lang in _CJK_LANGS]
        # Chinese has no scope marks: a term right after one of these does not count
        negations: Mapping[str, list[str]] = section.get("negation", {})
        self._cjk_negations = tuple(n for lang in _CJK_LANGS for n in negations.get(lang, ()))
        # searched in the whole sentence: profanity and slurs (hostile even under negation,
        # though not inside quotes); Chinese negated positives ("不配", "不是人")
        slurs = _by_first_letter([i for alt in always.values() for i in _split(alt)])
        anywhere = [rf"(?<![\w{QUOTED}]){NEGATED}?(?:{slurs})(?!\w)"] if slurs else []
        anywhere += [alt for lang, alt in positive.items() if lang in _CJK_LANGS]
        # searched in each denied clause: a positive word denied ("not equal", "don't respect")
        # unless the clause also denies something negative ("not worth any less", "never
        # tolerate the murder of"): a double negation praises
        praise = _by_first_letter(
            [i for lang, alt in positive.items() if lang not in _CJK_LANGS for i in _split(alt)]
        )
        denied = [rf"(?<![\w{QUOTED}])(?:{praise})(?!\w)"] if praise else []
        # one pattern per script: a big alternation costs ~1 us per character tried
        self._latin = _compile(latin)
        self._cjk = _compile(cjk)
        self._anywhere = _compile(anywhere)
        self._denied_positive = _compile(denied)
        self._fuzzy = _FuzzyTerms(section.get("fuzzy", {}).values())
        # group adjectives the model's mask skips unless a group noun follows ("gay authors",
        # "Muslim doctors"): for the gate, an adjective before any word names a group
        adjectives = sorted(identities.get("adjectives", ()), key=len, reverse=True)
        self._adjective = (
            re.compile(rf"(?<![\w¤])¬?(?:{'|'.join(map(re.escape, adjectives))}) [¬¤]?\w")
            if adjectives
            else None
        )

    def factor(self, segment: str) -> float:
        """What to multiply the classifier's score of ``segment`` (normalised, masked,
        scope-marked) by: < 1 when it names a group without explicit negative evaluation."""
        if PLACEHOLDER not in segment and (
            self._adjective is None or self._adjective.search(segment) is None
        ):
            return 1.0
        cjk = _CJK_RE.search(segment) is not None
        negative = self._cjk if cjk else self._latin
        if negative is None and self._anywhere is None and self._denied_positive is None:
            return 1.0
        if self._anywhere is not None and self._anywhere.search(segment):
            return 1.0
        # the model's five-word negation marks are replaced by the clause-level denial above
        asserted = _DENIED_CLAUSE.sub(" ", segment).replace(NEGATED, "")
        if QUOTED in asserted:  # quoted words are mentions, never evidence
            asserted = _QUOTED_WORD.sub(" ", asserted)
        if negative is not None and self._asserts(negative, asserted, cjk):
            return 1.0
        if self._denied_positive is not None and not cjk:
            for m in _DENIED_CLAUSE.finditer(segment):
                clause = m.group(0).replace(NEGATED, "")
                if self._denied_positive.search(clause) and not (
                    negative is not None and negative.search(clause)
                ):
                    return 1.0
        if not cjk and self._fuzzy.search(asserted):
            return 1.0
        # Chinese posts carry stance in particles and irony the word list cannot see (COLD
        # recall fell from 0.85 to 0.67 with the Latin factor), so only marginal scores drop
        return self.cjk_factor if cjk else self.latin_factor

    def _asserts(self, negative: re.Pattern[str], text: str, cjk: bool) -> bool:
        if not cjk:
            return negative.search(text) is not None
        # a lookbehind per negation at every character would cost more than this loop over
        # the (few) matches
        return any(
            not text.endswith(self._cjk_negations, 0, m.start()) for m in negative.finditer(text)
        )


def _compile(alternatives: list[str]) -> re.Pattern[str] | None:
    return re.compile("|".join(alternatives)) if alternatives else None


def _split(alternation: str) -> list[str]:
    """The top-level branches of a regex alternation ("a|b(?:c|d)" -> ["a", "b(?:c|d)"])."""
    out, depth, start, escaped = [], 0, 0, False
    for i, ch in enumerate(alternation):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(alternation[start:i])
            start = i + 1
    out.append(alternation[start:])
    return [b for b in out if b]


def _by_first_letter(branches: list[str]) -> str:
    """Regroup branches under their first letter: ``re`` tries every branch at every position,
    so 400 branches cost ~1 us per character; grouped, a position fails after one test."""
    groups: dict[str, list[str]] = {}
    rest: list[str] = []
    for branch in branches:
        head = branch[0]
        if head.isalpha() and (len(branch) == 1 or branch[1] not in "?*+{"):
            groups.setdefault(head, []).append(branch[1:])
        else:
            rest.append(branch)
    parts = [f"{re.escape(h)}(?:{'|'.join(sorted(set(b)))})" for h, b in sorted(groups.items())]
    return "|".join(parts + rest)


_SPELLED_OUT = re.compile(r"(?<!\w)(?:\w ){2,}\w(?!\w)")  # "h a t e" -> "hate"
_TOKEN = re.compile(r"(?<![\w¬¤])\w+")  # words that are neither negated nor quoted


class _FuzzyTerms:
    """Obfuscated spellings of the strongest terms ("haet", "hatrd", "ihate", "h a t e").

    Exact word lists miss them, yet obfuscation is how abuse dodges filters. A word counts
    when it starts with a term, or with the term with two neighbouring letters swapped or (terms
    of 5+ letters) one letter after the first dropped ("disugsting", "deathto": a swallowed
    space), or when it ends with a term of 5+ letters or one marked ``$`` in the lexicon
    ("peopledisgust", "ihate").
    """

    def __init__(self, lists: Iterable[Iterable[str]]) -> None:
        self.variants: set[str] = set()
        suffixes: list[str] = []
        for terms in lists:
            for raw in terms:
                term = raw.rstrip("$")
                if raw.endswith("$") or len(term) >= 5:
                    suffixes.append(term)
                self.variants.add(term)
                for i in range(len(term) - 1):
                    self.variants.add(term[:i] + term[i + 1] + term[i] + term[i + 2 :])
                if len(term) >= 5:  # dropping the first letter makes real words ("rash")
                    self.variants.update(term[:i] + term[i + 1 :] for i in range(1, len(term)))
        # a variant may begin a longer word too ("disugsting", "murdred"): look prefixes up
        # by length in a set instead of scanning every variant
        self._lengths = sorted({len(v) for v in self.variants})
        self._heads = frozenset(v[:3] for v in self.variants)  # cheap first test per word
        self._suffixes = tuple(suffixes)

    def search(self, text: str) -> bool:
        if not self.variants:
            return False
        if _SPELLED_OUT.search(text):
            text = _SPELLED_OUT.sub(lambda m: m.group(0).replace(" ", ""), text)
        heads = self._heads
        for word in _TOKEN.findall(text):
            if len(word) < 3 or (word[:3] not in heads and not word.endswith(self._suffixes)):
                continue
            if any(word[:n] in self.variants for n in self._lengths if n <= len(word)):
                return True
            if word.endswith(self._suffixes):
                return True
        return False
