"""Text normalisation, sentence splitting and hashed character n-grams (numpy-vectorised).

Training (``bench/train_harm.py``) and scoring share this module, so the features a model was
trained on are exactly the features it is scored on. Hashing is our own polynomial hash over
Unicode code points in wrapping uint64 arithmetic: stable across processes and platforms
(Python's ``hash()`` is salted per process, so it cannot be used for shipped weights).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

NGRAM_SIZES = (1, 2, 3, 4, 5)
_PRIME = np.uint64(1_000_003)
_MIX = np.uint64(0x9E3779B97F4A7C15)  # golden-ratio multiplier: spreads low-entropy keys
_SALT = 0xD6E8FEB86659FD93
# one salt per n-gram size (computed in Python ints: numpy warns on scalar uint64 overflow)
_SALTS = {n: np.uint64((_SALT * n) & 0xFFFFFFFFFFFFFFFF) for n in NGRAM_SIZES}
_INV_PRIME = np.uint64(pow(1_000_003, -1, 1 << 64))  # P * P^-1 == 1 (mod 2^64)
_WORD_SALTS = (np.uint64(0x94D049BB133111EB), np.uint64(0xBF58476D1CE4E5B9))
_SEP = "\x00"  # joins segments; n-grams that cross it are dropped

# Obfuscation ("1d10t", "h4te", "$hit") is a HateCheck functionality and common in practice.
# Digits/symbols are mapped to letters only next to a letter so "12-year-old" survives intact.
# "!" and "*" are left alone: they touch letters in ordinary prose and Markdown.
_LEET = str.maketrans(
    {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s"}
)
_LEET_RE = re.compile(r"[013457@$]+")  # cheap charset scan; the callback checks the neighbours
_REPEAT_RE = re.compile(r"(.)\1{2,}")  # "sooooo" -> "soo": elongation is style, not content
_TRIPLE_RE = re.compile(r"(.)\1\1")
_INVISIBLE_RE = re.compile("[\u200b-\u200f\u2060\ufeff\u00ad]")
# Code points that end a word (the apostrophe is kept inside: "don't" is one word).
# As a lookup table over the BMP (code points above it count as word characters).
_NON_WORD = np.zeros(0x10000, dtype=np.bool_)
_NON_WORD[:33] = True
_NON_WORD[[ord(c) for c in '!"#%&()*+,-./:;<=>?[\\]^_`{|}~']] = True
_NON_WORD[[ord(c) for c in "，。！？、；：“”‘’「」『』（）《》【】…—–«»¿¡"]] = True
_NON_WORD[0xFFFF] = False


def _powers(base: np.uint64, n: int) -> npt.NDArray[np.uint64]:
    out = np.full(n, base, dtype=np.uint64)
    out[0] = 1
    return np.cumprod(out, dtype=np.uint64)


_POW_CACHE = 1 << 14  # covers a 16 KB window; longer texts compute their own powers
_INV_POW = _powers(_INV_PRIME, _POW_CACHE)
_FWD_POW = _powers(_PRIME, _POW_CACHE)

# A sentence ends at . ! ? (ASCII or CJK full width), ; or a newline. Bullet lines are sentences.
_SENTENCE_RE = re.compile(r"[^.!?。！？；;\n]+(?:[.!?。！？；;]+|\n|$)")


def normalize(text: str) -> str:
    """Lower-case, fold width/compatibility forms, undo leetspeak, squeeze elongations."""
    text = unicodedata.normalize("NFKC", text)
    text = _INVISIBLE_RE.sub("", text).casefold()
    text = _LEET_RE.sub(lambda m: _unleet(m, text), text)
    if _TRIPLE_RE.search(text):  # rare: skip the substitution pass when nothing repeats
        text = _REPEAT_RE.sub(r"\1\1", text)
    return " ".join(text.split())  # str.split is the fast whitespace squeeze


def _unleet(m: re.Match[str], text: str) -> str:
    """Map the run to letters only when it touches a letter ("h4te" yes, "12-year" no)."""
    a, b = m.span()
    before = a > 0 and text[a - 1].isalpha()
    after = b < len(text) and text[b].isalpha()
    return m.group(0).translate(_LEET) if before or after else m.group(0)


PLACEHOLDER = "qqid"
_WORD_EDGE = ".,;:!?\"'()[]{}«»“”‘’„…-–—/*"


class IdentityMask:
    """Replaces identity terms ("muslims", "Frauen", "黑人") with one placeholder token.

    Identity words co-occur with abuse in training data far more than with anything else; with
    all of them folded into one token the model learns from what is said about a group, not
    from which group is named. Latin-script terms match whole words, CJK terms substrings.
    """

    def __init__(
        self, latin: Sequence[str] = (), cjk: Sequence[str] = (), adjectives: Sequence[str] = ()
    ) -> None:
        # adjectives ("black", "old", "gay") name a group only before a noun: "black people"
        # is masked, "black coffee" is not
        self.adjectives = frozenset(adjectives)
        self.latin = frozenset(latin) - self.adjectives
        self.cjk = tuple(sorted(cjk, key=len, reverse=True))  # longest first: "残障人士" > "残障"

    def __call__(self, text: str) -> str:
        if self.latin:
            words = text.split(" ")
            cores = [w.strip(_WORD_EDGE) for w in words]
            changed = False
            for i, core in enumerate(cores):
                is_group = core in self.latin or (
                    core in self.adjectives
                    and i + 1 < len(cores)
                    and (cores[i + 1] in self.latin or cores[i + 1] in self.adjectives)
                )
                if is_group:
                    words[i] = words[i].replace(core, PLACEHOLDER)
                    changed = True
            if changed:
                text = " ".join(words)
        for term in self.cjk:
            if term in text:
                text = text.replace(term, PLACEHOLDER)
        return text


_NEGATIONS = frozenset(
    {
        "not",
        "no",
        "never",
        "nobody",
        "nothing",
        "cannot",
        "dont",
        "nor",
        "neither",
        "nicht",
        "kein",
        "keine",
        "keinen",
        "keiner",
        "nie",
        "niemals",
        "niemand",
        "pas",
        "jamais",
        "personne",
        "rien",
        "ne",
        "nunca",
        "jamás",
        "nadie",
        "nada",
        "tampoco",
        "niet",
        "geen",
        "nooit",
    }
)
_NEGATION_SCOPE = 5  # words; a negation rarely reaches further, and clauses end earlier
_CLAUSE_END = frozenset(".,;:!?")
_QUOTE_CHARS = frozenset('"“”„«»')
_PUNCT_TO_SPACE = str.maketrans({c: " " for c in '.,;:!?"()[]{}«»“”„'})


def _has_scope_cue(text: str) -> bool:
    """Cheap pre-check (C-level string ops): most sentences hold no quote and no negation."""
    if "n't" in text or "n’t" in text or any(q in text for q in _QUOTE_CHARS):
        return True
    return not _NEGATIONS.isdisjoint(text.translate(_PUNCT_TO_SPACE).split())


NEGATED = "¬"  # prefixes words in a negation's scope ("don't ¬hate ¬qqid")
QUOTED = "¤"  # prefixes words inside quotes: a mention, not a use


def mark_scopes(text: str) -> str:
    """Prefix words under a negation or inside quotes so they become different features.

    A linear n-gram model cannot see that "I don't hate women" negates "hate women", or that
    'If you say "I hate women", you are a bigot' quotes it; marking the scope of the negation
    (until the clause ends) and the quoted words (mention, not use) lets it learn both.
    """
    if not _has_scope_cue(text):
        return text
    words = text.split(" ")
    negated = 0
    quoted = False
    out = []
    for word in words:
        opens = bool(word) and word[0] in _QUOTE_CHARS
        closes = len(word) > 1 and word.rstrip(".,;:!?")[-1:] in _QUOTE_CHARS
        if opens:
            quoted = not quoted if not closes else quoted
        core = word.strip(_WORD_EDGE)
        if (quoted or (opens and closes)) and core:
            word = QUOTED + word
        elif negated and core:
            word = NEGATED + word
            negated -= 1
        if core in _NEGATIONS or core.endswith("n't") or core.endswith("n’t"):
            negated = _NEGATION_SCOPE
        if word and word[-1] in _CLAUSE_END:
            negated = 0
        if closes and not opens:
            quoted = False
        out.append(word)
    return " ".join(out)


def normalize_all(segments: Sequence[str]) -> list[str]:
    """``[normalize(s) for s in segments]`` in one pass of each regex (same result)."""
    if len(segments) == 1:
        return [normalize(segments[0])]
    joined = normalize(_SEP.join(s.replace(_SEP, " ") for s in segments))
    return [part.strip() for part in joined.split(_SEP)]


def sentences(text: str) -> list[tuple[int, int]]:
    """Offsets ``[start, end)`` of the non-blank sentences of ``text`` (original offsets)."""
    out: list[tuple[int, int]] = []
    for m in _SENTENCE_RE.finditer(text):
        start, end = m.span()
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            out.append((start, end))
    return out


def featurize(
    segments: Sequence[str], bits: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Hash the n-grams of each (already normalised) segment.

    Besides character 1-5-grams, word unigrams and bigrams are hashed: a bigram such as
    "not hate" or "say that" is the cheapest way for a linear model to see negation and quotes.
    Returns ``(bucket, segment, norm)``: one bucket index and segment number per n-gram, and
    per segment ``1/sqrt(number of n-grams)`` so scores do not grow with length.
    """
    joined = _SEP.join(f" {s} " for s in segments)
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    seg_of = np.cumsum(codes == 0, dtype=np.int64)  # segment number at every position
    n_chars = codes.shape[0]
    shift = np.uint64(64 - bits)
    buckets: list[npt.NDArray[np.uint64]] = []
    owners: list[npt.NDArray[np.int64]] = []
    for n in NGRAM_SIZES:
        m = n_chars - n + 1
        if m <= 0:
            break
        h = codes[:m].copy()
        for k in range(1, n):
            h = h * _PRIME + codes[k : k + m]
        keep = seg_of[:m] == seg_of[n - 1 : n - 1 + m]
        if n == 1:
            keep &= codes[:m] != np.uint64(32)  # a lone space carries no signal
        keep &= codes[:m] != 0
        h = (h[keep] ^ _SALTS[n]) * _MIX
        buckets.append(h >> shift)
        owners.append(seg_of[:m][keep])
    _word_ngrams(codes, seg_of, shift, buckets, owners)
    bucket = np.concatenate(buckets).astype(np.int64)
    segment = np.concatenate(owners)
    counts = np.bincount(segment, minlength=len(segments)).astype(np.float64)
    norm = 1.0 / np.sqrt(np.maximum(counts, 1.0))
    return bucket, segment, norm


def _word_ngrams(
    codes: npt.NDArray[np.uint64],
    seg_of: npt.NDArray[np.int64],
    shift: np.uint64,
    buckets: list[npt.NDArray[np.uint64]],
    owners: list[npt.NDArray[np.int64]],
) -> None:
    """Append hashed word unigrams and bigrams (same segment only) to ``buckets``/``owners``.

    Any substring hash in O(1) from prefix sums: with G[i] = sum_{j<i} c[j] * P^-j,
    hash[a, b) = (G[b] - G[a]) * P^a = sum c[j] * P^-(j-a), independent of the position.
    """
    n = codes.shape[0]
    word = ~_NON_WORD[np.minimum(codes, 0xFFFF)]
    edge = np.diff(np.concatenate(([0], word.astype(np.int8), [0])))
    starts = np.flatnonzero(edge == 1)
    ends = np.flatnonzero(edge == -1)
    if starts.shape[0] == 0:
        return
    inv_pow = _INV_POW[:n] if n <= _POW_CACHE else _powers(_INV_PRIME, n)
    pow_at = _FWD_POW[:n] if n <= _POW_CACHE else _powers(_PRIME, n)
    prefix = np.concatenate((np.zeros(1, np.uint64), np.cumsum(codes * inv_pow, dtype=np.uint64)))
    for order, salt in enumerate(_WORD_SALTS):
        a = starts[: starts.shape[0] - order]
        b = ends[order:]
        owner = seg_of[a]
        keep = owner == seg_of[b - 1]
        h = (prefix[b[keep]] - prefix[a[keep]]) * pow_at[a[keep]]
        buckets.append(((h ^ salt) * _MIX) >> shift)
        owners.append(owner[keep])
