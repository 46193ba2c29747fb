"""A verbatim-reuse index: winnowed word-shingle fingerprints plus the corpus' token hashes.

Build (once, in a worker thread): every work is tokenised (case-folded words, CJK characters one
token each, punctuation and whitespace dropped), each token hashed to 32 bits (crc32), each run of
``k`` tokens hashed to 64 bits, and per window of ``w`` consecutive shingles the minimum kept
(winnowing, Schleimer et al. 2003): any common run of at least ``w + k - 1`` tokens shares a kept
fingerprint, at a density of about ``2 / (w + 1)``. Kept: sorted fingerprints (8 bytes) with their
corpus token position (4 bytes), and the corpus token hashes (4 bytes a word, memory-mapped when
cached on disk) to measure each candidate run exactly.

Query: hash every shingle of the answer, look them up with one ``searchsorted``, and extend each
hit left and right over the token hashes; a hit's diagonal is skipped once measured.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

# A character of a script without spaces between words is a token on its own; otherwise a
# token is a run of letters and digits. Apostrophes join ("don't", "lady's" are one word,
# hashed without the apostrophe so a typed ' matches a typeset ’); other punctuation separates.
# Scripts written without spaces between words: Thai, Lao, Myanmar, Khmer, kana, CJK, hangul
# (Korean particles attach to nouns). Each character is a token / may touch a term.
NO_SPACE_SCRIPTS = (
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff"
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
)
_CJK = NO_SPACE_SCRIPTS
_WORD = rf"[^\W_{_CJK}]+"
_APOSTROPHES = "'\u2019\u02bc"
_DROP_APOSTROPHES = str.maketrans("", "", _APOSTROPHES)
_CORPUS_TOKEN = re.compile(rf"[{_CJK}]|{_WORD}")  # applied after apostrophes are dropped
_ASCII_TOKEN = re.compile(rb"[a-z0-9]+")
ANSWER_TOKEN = re.compile(rf"[{_CJK}]|{_WORD}(?:[{_APOSTROPHES}]{_WORD})*")
_FORMAT = 4  # bump when the on-disk layout or the hashing changes
_MULT = np.uint64(0x100000001B3)
_MAX_HITS_PER_SHINGLE = 8  # a shingle common to many works: measuring 8 of them is enough


def corpus_token_hashes(text: str) -> U32:
    """Hashes of the normalised tokens of a whole work (a few passes in C over the text)."""
    text = text.translate(_DROP_APOSTROPHES)
    if text.isascii():  # the common case: fold once, tokenise bytes, hash without encoding
        raw: list[bytes] = _ASCII_TOKEN.findall(text.lower().encode("ascii"))
        return np.fromiter(map(zlib.crc32, raw), dtype=np.uint32, count=len(raw))
    tokens = _CORPUS_TOKEN.findall(text)
    # case-fold the tokens, not the text: folding can split a token ("İ" -> "i" + U+0307)
    folded = "\n".join(tokens).casefold().split("\n") if tokens else []
    return token_hashes(folded)


def answer_token_hash(token: str) -> int:
    """The hash of one ``ANSWER_TOKEN`` match, equal to its corpus token's."""
    return zlib.crc32(token.translate(_DROP_APOSTROPHES).casefold().encode())


def answer_token_hashes(tokens: list[str]) -> list[int]:
    """``answer_token_hash`` of each token, normalising them all in one pass."""
    if not tokens:
        return []
    joined = "\n".join(tokens).translate(_DROP_APOSTROPHES).casefold()  # never makes "\n"
    return list(map(zlib.crc32, joined.encode().split(b"\n")))


def token_hashes(tokens: list[str]) -> U32:
    return np.fromiter(map(zlib.crc32, map(str.encode, tokens)), dtype=np.uint32, count=len(tokens))


def shingle_hashes(tokens: U32, k: int) -> U64:
    """64-bit hash of every run of ``k`` token hashes (wrapping arithmetic, then a mixer)."""
    n = len(tokens) - k + 1
    if n <= 0:
        return np.empty(0, dtype=np.uint64)
    x = tokens.astype(np.uint64)
    h = np.zeros(n, dtype=np.uint64)
    for j in range(k):
        h *= _MULT
        h += x[j : j + n]
    # splitmix64 finaliser: spreads the bits so window minima are uniformly placed
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return h


def _sliding(a: U64, w: int, op: np.ufunc, pad: int) -> U64:
    """``op``-reduction of every window of ``w`` values in O(n) (van Herk / Gil-Werman:
    per block of ``w``, prefix and suffix reductions; a window spans at most two blocks)."""
    n = len(a)
    padded = np.concatenate([a, np.full((-n) % w, pad, dtype=a.dtype)])
    blocks = padded.reshape(-1, w)
    prefix = op.accumulate(blocks, axis=1).ravel()
    suffix = op.accumulate(blocks[:, ::-1], axis=1)[:, ::-1].ravel()
    result: U64 = op(suffix[: n - w + 1], prefix[w - 1 : n])
    return result


def winnow(h: U64, w: int) -> I64:
    """Positions holding the minimum of some window of ``w`` consecutive hashes (sorted)."""
    if w == 1:
        return np.arange(len(h), dtype=np.int64)
    if len(h) <= w:
        return np.array([int(h.argmin())], dtype=np.int64)
    top = np.iinfo(np.uint64).max
    minima = _sliding(h, w, np.minimum, top)  # minima[j] = min(h[j : j + w])
    # h[i] is some window's minimum iff the largest minimum of the windows holding i is h[i]
    edge = np.zeros(w - 1, dtype=np.uint64)
    best = _sliding(np.concatenate([edge, minima, edge]), w, np.maximum, 0)
    return np.nonzero(best == h)[0].astype(np.int64)


@dataclass(frozen=True, slots=True)
class IndexParams:
    k: int  # tokens per shingle
    guarantee: int  # runs of at least this many tokens are always found
    min_fraction: float  # ... or this fraction of a short work

    def window(self, work_tokens: int) -> int:
        need = min(self.guarantee, max(self.k, int(np.ceil(self.min_fraction * work_tokens))))
        return max(1, need - self.k + 1)


@dataclass(frozen=True, slots=True)
class Run:
    work: int
    a_start: int  # answer token range [a_start, a_end)
    a_end: int
    w_start: int  # token offset in the work


class ShingleIndex:
    def __init__(
        self,
        params: IndexParams,
        names: list[str],
        starts: I64,
        tokens: U32,
        fp_hash: U64,
        fp_pos: U32,
    ) -> None:
        self.params = params
        self.names = names
        self.starts = starts  # len(names) + 1 token offsets into `tokens`
        self.tokens = tokens
        self.fp_hash = fp_hash
        self.fp_pos = fp_pos

    @property
    def nbytes(self) -> int:
        """Resident size of the fingerprints (the token array may be memory-mapped)."""
        return int(self.fp_hash.nbytes + self.fp_pos.nbytes + self.starts.nbytes)

    def work_tokens(self, work: int) -> int:
        return int(self.starts[work + 1] - self.starts[work])

    # -- building --------------------------------------------------------------------------------

    @classmethod
    def build(cls, works: Iterable[tuple[str, str]], params: IndexParams) -> ShingleIndex:
        names: list[str] = []
        starts = [0]
        token_parts: list[U32] = []
        hash_parts: list[U64] = []
        pos_parts: list[U32] = []
        for name, text in works:
            toks = corpus_token_hashes(text)
            base = starts[-1]
            names.append(name)
            starts.append(base + len(toks))
            token_parts.append(toks)
            h = shingle_hashes(toks, params.k)
            if len(h) == 0:
                continue  # shorter than one shingle: nothing to match
            keep = winnow(h, params.window(len(toks)))
            hash_parts.append(h[keep])
            pos_parts.append((keep + base).astype(np.uint32))
        if starts[-1] >= 2**32:
            raise ValueError("corpus too large: more than 2**32 tokens")
        fp_hash = np.concatenate(hash_parts) if hash_parts else np.empty(0, np.uint64)
        fp_pos = np.concatenate(pos_parts) if pos_parts else np.empty(0, np.uint32)
        order = np.argsort(fp_hash, kind="stable")
        tokens = np.concatenate(token_parts) if token_parts else np.empty(0, np.uint32)
        return cls(params, names, np.array(starts, np.int64), tokens, fp_hash[order], fp_pos[order])

    # -- querying --------------------------------------------------------------------------------

    def runs(self, answer: list[int]) -> list[Run]:
        """Every maximal run of answer tokens found verbatim in a work (at least ``k`` long)."""
        k = self.params.k
        if len(answer) < k or len(self.fp_hash) == 0:
            return []
        a = np.array(answer, dtype=np.uint32)
        h = shingle_hashes(a, k)
        lo = np.searchsorted(self.fp_hash, h, side="left")
        hi = np.searchsorted(self.fp_hash, h, side="right")
        hit_at = np.nonzero(hi > lo)[0]
        out: list[Run] = []
        measured: dict[tuple[int, int], int] = {}  # (work, diagonal) -> answer end measured
        n = len(answer)
        for i in hit_at.tolist():
            for j in range(int(lo[i]), min(int(hi[i]), int(lo[i]) + _MAX_HITS_PER_SHINGLE)):
                g = int(self.fp_pos[j])
                work = int(np.searchsorted(self.starts, g, side="right")) - 1
                if measured.get((work, g - i), -1) > i:
                    continue
                run = self._extend(answer, i, g, work, n)
                if run is None:
                    continue
                measured[(work, g - i)] = run.a_end
                out.append(run)
        return out

    def _extend(self, answer: list[int], i: int, g: int, work: int, n: int) -> Run | None:
        ws, we = int(self.starts[work]), int(self.starts[work + 1])
        lo_g = max(ws, g - i)
        hi_g = min(we, g + (n - i))
        seg: list[int] = self.tokens[lo_g:hi_g].tolist()
        at = g - lo_g  # position of g inside seg
        right = 0
        while at + right < len(seg) and answer[i + right] == seg[at + right]:
            right += 1
        if right < self.params.k:
            return None  # a hash collision, not a match
        left = 0
        while at - left - 1 >= 0 and answer[i - left - 1] == seg[at - left - 1]:
            left += 1
        return Run(work, i - left, i + right, g - left - ws)

    # -- persistence -----------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write ``path`` (.npz: fingerprints, names) and ``path.tokens.npy`` atomically."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tok_path = _tokens_path(path)
        tok_tmp = tok_path.with_name(tok_path.name + f".{os.getpid()}.tmp")
        with open(tok_tmp, "wb") as f:
            np.save(f, self.tokens)
        meta = json.dumps({"format": _FORMAT, "names": self.names, "params": _params(self.params)})
        with open(tmp, "wb") as f:
            np.savez(f, meta=np.array(meta), starts=self.starts, h=self.fp_hash, p=self.fp_pos)
        os.replace(tok_tmp, tok_path)
        os.replace(tmp, path)

    @classmethod
    def open(cls, path: Path) -> ShingleIndex | None:
        """Load a saved index (token hashes memory-mapped), or None when absent or stale."""
        tok_path = _tokens_path(path)
        if not path.is_file() or not tok_path.is_file():
            return None
        try:
            with np.load(path) as z:
                meta: dict[str, Any] = json.loads(str(z["meta"]))
                if meta.get("format") != _FORMAT:
                    return None
                starts, fp_hash, fp_pos = z["starts"], z["h"], z["p"]
            tokens = np.load(tok_path, mmap_mode="r")
        except (OSError, ValueError, KeyError):
            return None
        params = IndexParams(**meta["params"])
        return cls(params, list(meta["names"]), starts, tokens, fp_hash, fp_pos)


def _tokens_path(path: Path) -> Path:
    return path.with_name(path.stem + ".tokens.npy")


def _params(p: IndexParams) -> dict[str, Any]:
    return {"k": p.k, "guarantee": p.guarantee, "min_fraction": p.min_fraction}


def corpus_key(files: list[tuple[str, Path]], params: IndexParams) -> str:
    """Content hash of the corpus (names and bytes) and the index parameters."""
    digest = hashlib.sha256(json.dumps([_FORMAT, _params(params)]).encode())
    for rel, path in files:
        digest.update(f"{rel}\0{path.stat().st_size}\0".encode())
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()[:32]
