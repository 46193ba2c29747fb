"""The infringement screen: verbatim reproduction of protected works, and a deny-list of terms.

* ``verbatim``: the answer reproduces at least ``min_words`` consecutive words, or ``min_chars``
  characters, or ``min_work_fraction`` of a short work, of any file in ``corpus_dir``, ignoring
  case, punctuation and whitespace. Proposes BLOCK; the span covers the reproduced run and the
  explanation names the work.
* ``denylist``: a listed term or trademark, case-insensitive, as a whole word (a term made of
  CJK characters matches anywhere: those scripts have no spaces between words). Proposes REDACT.

The index is built once in ``load()`` in a worker thread (see ``_shingles``) and, with
``cache_dir``, saved under the corpus' content hash so later starts only hash and memory-map.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import anyio.to_thread

from aiguard.errors import ConfigError
from aiguard.policy.models import Policy
from aiguard.screens._shingles import (
    ANSWER_TOKEN,
    NO_SPACE_SCRIPTS,
    IndexParams,
    ShingleIndex,
    answer_token_hashes,
    corpus_key,
)
from aiguard.screens.base import ScreenContext, ScreenResult, Span, Verdict
from aiguard.screens.cpu import run_cpu

log = logging.getLogger("aiguard.screens.infringement")

_INLINE_CHARS = 16_000  # about 5 ms of work: above this, screen in a worker thread

_CJK = NO_SPACE_SCRIPTS
# A letter or digit of a script that separates words with spaces: the only thing that may not
# touch a deny-listed term (so "Acme" matches in "买Acme产品" but not in "Acmeville").
_SPACED_WORD = rf"[^\W_{_CJK}]"


def _term_pattern(term: str) -> str:
    body = r"\s+".join(re.escape(part) for part in term.split())
    before = f"(?<!{_SPACED_WORD})" if re.match(_SPACED_WORD, term[0]) else ""
    after = f"(?!{_SPACED_WORD})" if re.match(_SPACED_WORD, term[-1]) else ""
    return before + body + after


def compile_denylist(terms: Sequence[str]) -> re.Pattern[str] | None:
    terms = sorted({t.strip() for t in terms if t.strip()}, key=len, reverse=True)
    if not terms:
        return None
    return re.compile("|".join(_term_pattern(t) for t in terms), re.IGNORECASE)


def work_name(path: Path, text: str) -> str:
    """``Title: ...`` on the first line names the work; otherwise the file name does."""
    first = text.lstrip("\ufeff").split("\n", 1)[0].strip()
    if first.lower().startswith("title:") and first[6:].strip():
        return first[6:].strip()
    return path.stem


class InfringementScreen:
    def __init__(
        self,
        name: str = "infringement",
        *,
        corpus_dir: Path | str | None = None,
        min_words: int = 50,
        min_chars: int = 300,
        min_work_fraction: float = 0.5,
        shingle_words: int = 8,
        denylist: Sequence[str] = (),
        cache_dir: Path | str | None = None,
    ) -> None:
        if shingle_words < 4 or min_words < shingle_words:
            raise ConfigError("infringement: need 4 <= shingle_words <= min_words")
        self.name = name
        self.corpus_dir = Path(corpus_dir) if corpus_dir is not None else None
        if self.corpus_dir is not None and not self.corpus_dir.is_dir():
            raise ConfigError(f"infringement.corpus_dir is not a folder: {self.corpus_dir}")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.min_words = min_words
        self.min_chars = min_chars
        self.min_work_fraction = min_work_fraction
        # a run of min_chars characters has at least min_chars / 10 words in practice
        guarantee = max(shingle_words, min(min_words, min_chars // 10))
        self.params = IndexParams(shingle_words, guarantee, min_work_fraction)
        self._deny = compile_denylist(denylist)
        self.index: ShingleIndex | None = None
        self.build_seconds = 0.0

    @classmethod
    def from_policy(cls, policy: Policy) -> InfringementScreen:
        s = policy.screening.infringement
        return cls(
            corpus_dir=s.corpus_dir,
            min_words=s.min_words,
            min_chars=s.min_chars,
            min_work_fraction=s.min_work_fraction,
            shingle_words=s.shingle_words,
            denylist=s.denylist,
            cache_dir=s.cache_dir,
        )

    # -- loading ---------------------------------------------------------------------------------

    async def load(self) -> None:
        if self.corpus_dir is None or self.index is not None:
            return
        started = time.perf_counter()
        self.index = await anyio.to_thread.run_sync(self._load_index)
        self.build_seconds = time.perf_counter() - started
        log.info(
            "infringement index: %d works, %d fingerprints (%.1f MB) in %.1f s",
            len(self.index.names),
            len(self.index.fp_hash),
            self.index.nbytes / 1e6,
            self.build_seconds,
        )

    def index_works(self, works: Iterable[tuple[str, str]]) -> ShingleIndex:
        """Build the index from ``(name, text)`` pairs instead of a folder (sync: call it in a
        worker thread from async code). For evaluations and embedding; ``load()`` uses files."""
        self.index = ShingleIndex.build(iter(works), self.params)
        return self.index

    def _files(self) -> list[tuple[str, Path]]:
        assert self.corpus_dir is not None
        found = sorted(p for p in self.corpus_dir.rglob("*.txt") if p.is_file())
        return [(p.relative_to(self.corpus_dir).as_posix(), p) for p in found]

    def _works(self, files: list[tuple[str, Path]]) -> Iterator[tuple[str, str]]:
        for _, path in files:
            text = path.read_text(encoding="utf-8", errors="replace")
            yield work_name(path, text), text

    def _load_index(self) -> ShingleIndex:
        files = self._files()
        if self.cache_dir is None:
            return ShingleIndex.build(self._works(files), self.params)
        cached = self.cache_dir / f"infringement-{corpus_key(files, self.params)}.npz"
        index = ShingleIndex.open(cached)
        if index is None:
            index = ShingleIndex.build(self._works(files), self.params)
            try:
                index.save(cached)
            except OSError as exc:  # a read-only cache folder must not stop the app
                log.warning("cannot write infringement index cache %s: %s", cached, exc)
        return index

    # -- screening -------------------------------------------------------------------------------

    @property
    def stream_context_chars(self) -> int:
        """Released text a streamed window is screened with (read by the streaming screener).

        A run that must be flagged and ends in the window either fits in ``min_chars`` or
        covers at least ``min_chars`` of it; the margin absorbs a token cut at the edge.
        """
        return self.min_chars + 64 if self.index is not None else 0

    async def screen(self, text: str, context: ScreenContext) -> ScreenResult:
        # ~0.3 ms per KB: a chat-sized answer is cheaper on the event loop than a thread hop; a
        # long document would stall the loop, so it goes to the shared CPU threads
        spans = self.find(text) if len(text) <= _INLINE_CHARS else await run_cpu(self.find, text)
        if any(s.label == "verbatim" for s in spans):
            verdict = Verdict.BLOCK
        else:
            verdict = Verdict.REDACT if spans else Verdict.ALLOW
        return ScreenResult(self.name, verdict, tuple(spans))

    def find(self, text: str) -> list[Span]:
        spans = self._verbatim(text) if self.index is not None else []
        if self._deny is not None:
            spans += [
                Span("denylist", m.start(), m.end(), 1.0, f"deny-listed term {m.group()!r}")
                for m in self._deny.finditer(text)
            ]
        return spans

    def _verbatim(self, text: str) -> list[Span]:
        index = self.index
        assert index is not None
        matches = list(ANSWER_TOKEN.finditer(text))
        if len(matches) < self.params.k:
            return []
        hashes = answer_token_hashes([m.group() for m in matches])
        spans: list[Span] = []
        for run in index.runs(hashes):
            words = run.a_end - run.a_start
            start, end = matches[run.a_start].start(), matches[run.a_end - 1].end()
            whole = index.work_tokens(run.work)
            if (
                words >= self.min_words
                or end - start >= self.min_chars
                or words >= max(self.params.k, self.min_work_fraction * whole)
            ):
                name = index.names[run.work]
                why = f"{words} consecutive words of {name!r} (word {run.w_start + 1} of {whole})"
                spans.append(Span("verbatim", start, end, 1.0, why))
        return spans
