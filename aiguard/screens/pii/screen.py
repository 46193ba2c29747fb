"""``PIIScreen``: presidio-analyzer behind a prefilter, offline, off the event loop."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from aiguard.errors import ConfigError, ScreenError
from aiguard.screens.base import ScreenContext, ScreenResult, Span, Verdict
from aiguard.screens.pii.entities import (
    DEFAULT_ENTITIES,
    LANGUAGES,
    NER_ENTITIES,
    PATTERN_ENTITIES,
    SUPPORTED_ENTITIES,
)
from aiguard.screens.pii.prefilter import Prefilter, Window

if TYPE_CHECKING:
    from aiguard.policy.models import Policy
    from aiguard.screens.pii.engine import OfflineAnalyzer


# Fullwidth ASCII (common in Chinese text) -> ASCII, one char for one so offsets hold.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)} | {0x3000: 0x20}
# A capitalised word not at a sentence start: what a name or place looks like to the
# prefilter when NER is on (German capitalises every noun, so NER runs on most German text).
# Between joined windows: breaks every pattern (no recognizer spans a blank line or "zzz"),
# and six neutral words fill presidio's five-word context look-back.
_SEPARATOR = "\n\n" + " ".join(["zzz"] * 6) + "\n\n"
_CAPITALISED = re.compile(r"[\w,;:)] +[A-Z][a-z]|[\u4e00-\u9fff]")


class PIIScreen:
    """Finds personal data in answers; proposes ``Verdict.REDACT`` with one span per finding.

    Pattern entities always work offline; PERSON and LOCATION need an installed spaCy NER
    pipeline for the language (``ner_models``), otherwise they are silently not found.
    """

    def __init__(
        self,
        *,
        name: str = "pii",
        entities: Iterable[str] | None = None,
        score_threshold: float = 0.5,
        languages: Sequence[str] = LANGUAGES,
        ner_models: Mapping[str, Any] | None = None,
        limiter: anyio.CapacityLimiter | None = None,
    ) -> None:
        self.name = name
        chosen = frozenset(DEFAULT_ENTITIES if entities is None else entities)
        unknown = sorted(chosen - SUPPORTED_ENTITIES)
        if unknown:
            raise ConfigError(
                f"pii: unknown entities {unknown}; supported: {sorted(SUPPORTED_ENTITIES)}"
            )
        if not chosen:
            raise ConfigError("pii: entities must not be empty")
        if not 0.0 <= score_threshold <= 1.0:
            raise ConfigError(f"pii: score_threshold must be in [0, 1], got {score_threshold}")
        langs = tuple(dict.fromkeys(languages))
        if not langs or any(lang not in LANGUAGES for lang in langs):
            raise ConfigError(f"pii: languages must be a non-empty subset of {list(LANGUAGES)}")
        self.entities = chosen
        self.score_threshold = score_threshold
        self.languages = langs
        self._ner_models = ner_models  # None: en_core_web_sm for "en" when installed
        self._limiter = limiter
        self._prefilter = Prefilter(chosen & PATTERN_ENTITIES)
        self._analyzer: OfflineAnalyzer | None = None
        self._ner_entities: frozenset[str] = frozenset()
        self._ner_languages: frozenset[str] = frozenset()

    @classmethod
    def from_policy(cls, policy: Policy) -> PIIScreen:
        """Defaults, plus ``policy.screening.pii`` (entities, languages, score_threshold,
        ner_models) once that section exists; the threshold falls back to the pipeline's."""
        screening = policy.screening
        section: Any = getattr(screening, "pii", None)
        threshold = getattr(section, "score_threshold", None)
        if threshold is None:
            threshold = screening.thresholds.get("pii", screening.min_score)
        return cls(
            entities=getattr(section, "entities", None),
            score_threshold=threshold,
            languages=getattr(section, "languages", None) or LANGUAGES,
            ner_models=getattr(section, "ner_models", None),
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def load(self) -> None:
        """Build the presidio engine once (seconds of CPU), in a worker thread."""
        if self._analyzer is not None:
            return
        from aiguard.screens.pii.engine import build_analyzer  # heavy imports, off the loop too

        built = await anyio.to_thread.run_sync(
            build_analyzer, self.entities, self.languages, self._ner_models
        )
        self._ner_languages = built.ner_languages
        self._ner_entities = self.entities & NER_ENTITIES if built.ner_languages else frozenset()
        self._analyzer = built

    @property
    def loaded(self) -> bool:
        return self._analyzer is not None

    @property
    def ner_languages(self) -> frozenset[str]:
        """Languages for which PERSON/LOCATION are detected (an NER model was found)."""
        return self._ner_languages

    # -- screening ---------------------------------------------------------------------------

    async def screen(self, text: str, context: ScreenContext) -> ScreenResult:
        started = time.perf_counter()
        if self._analyzer is None:
            raise ScreenError(f"screen {self.name!r}: await load() before screen()")
        language = self.language_for(context.locale)
        windows = self._prefilter.windows(text)
        whole_text = self._needs_ner(text, language)
        if not windows and not whole_text:  # the common case: no thread hop, microseconds
            return ScreenResult(self.name, Verdict.ALLOW, elapsed_ms=_ms(started))
        spans = await anyio.to_thread.run_sync(
            self._find, text, language, windows, whole_text, limiter=self._limiter
        )
        verdict = Verdict.REDACT if spans else Verdict.ALLOW
        return ScreenResult(self.name, verdict, spans, elapsed_ms=_ms(started))

    def find(self, text: str, language: str = "en") -> tuple[Span, ...]:
        """Blocking: the spans in ``text`` (benchmarks, scripts; ``screen`` uses a thread)."""
        if self._analyzer is None:
            raise ScreenError(f"screen {self.name!r}: call load() first")
        windows = self._prefilter.windows(text)
        whole_text = self._needs_ner(text, language)
        if not windows and not whole_text:
            return ()
        return self._find(text, language, windows, whole_text)

    def language_for(self, locale: str) -> str:
        lang = locale.split("-", 1)[0].split("_", 1)[0].lower()
        return lang if lang in self.languages else self.languages[0]

    def _needs_ner(self, text: str, language: str) -> bool:
        return (
            bool(self._ner_entities)
            and language in self._ner_languages
            and _CAPITALISED.search(text) is not None
        )

    def _find(
        self, text: str, language: str, windows: list[Window], whole_text: bool
    ) -> tuple[Span, ...]:
        if whole_text:  # NER reads whole sentences: one pass over everything wanted
            wanted = self._ner_entities.union(*(w.entities for w in windows))
            windows = [Window(0, len(text), wanted)]
        return _resolve(self._analyze(text, language, windows))

    def _analyze(self, text: str, language: str, windows: list[Window]) -> list[Span]:
        """One presidio call for all windows, joined by a separator no pattern crosses and
        that fills the context enhancer's five-word look-back, so no window lends its words
        to the next. (One call instead of one per window halves presidio's per-call cost.)"""
        assert self._analyzer is not None
        pieces: list[tuple[int, int, int]] = []  # (offset in chunk, offset in text, length)
        parts: list[str] = []
        at = 0
        for w in windows:
            if parts:
                parts.append(_SEPARATOR)
                at += len(_SEPARATOR)
            parts.append(text[w.start : w.end])
            pieces.append((at, w.start, w.end - w.start))
            at += w.end - w.start
        chunk = "".join(parts).translate(_FULLWIDTH)
        results = self._analyzer.analyzer.analyze(
            chunk,
            language=language,
            entities=sorted(frozenset().union(*(w.entities for w in windows))),
            score_threshold=self.score_threshold,
            return_decision_process=True,
        )
        spans: list[Span] = []
        for r in results:
            for chunk_at, text_at, length in pieces:
                if chunk_at <= r.start and r.end <= chunk_at + length:
                    spans.append(
                        Span(
                            label=r.entity_type,
                            start=text_at + r.start - chunk_at,
                            end=text_at + r.end - chunk_at,
                            score=min(1.0, max(0.0, float(r.score))),
                            explanation=_explain(r),
                        )
                    )
                    break
        return spans


# Labels that many strings satisfy; they lose ties against identifiers with a structure.
_GENERIC = {"PHONE_NUMBER": 2, "URL": 2, "PERSON": 1, "LOCATION": 1}


def _resolve(spans: list[Span]) -> tuple[Span, ...]:
    """Drop a finding inside (or equal to) a stronger one: a Luhn-valid card number is not
    also reported as a phone number. On equal scores the more specific label wins ("SSN"
    over "some phone number"). Partial overlaps stay; ``redact`` merges them."""
    kept: list[Span] = []
    order = sorted(spans, key=lambda s: (-s.score, _GENERIC.get(s.label, 0), -(s.end - s.start)))
    for span in order:
        if not any(k.start <= span.start and span.end <= k.end for k in kept):
            kept.append(span)
    return tuple(sorted(kept, key=lambda s: (s.start, s.end)))


def _explain(result: Any) -> str:
    exp = result.analysis_explanation
    if exp is None:
        return str(result.entity_type)
    parts = [f"{exp.recognizer}"]
    if exp.pattern_name:
        parts.append(f"pattern {exp.pattern_name!r}")
    if exp.validation_result:
        parts.append("validated (check digits, suffix list or number plan)")
    if exp.supportive_context_word:
        parts.append(f"context word {exp.supportive_context_word!r}")
    return "; ".join(parts)


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0
