"""The default backend: offline linear model (hate, harassment) + multilingual rules (all)."""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread

from aiguard.errors import ConfigError
from aiguard.screens.harm._backend import Finding
from aiguard.screens.harm._categories import CATEGORIES
from aiguard.screens.harm._features import sentences
from aiguard.screens.harm._lexicon import DEFAULT_LEXICON, Lexicon
from aiguard.screens.harm._model import DEFAULT_MODEL, LinearModel

# Measured on an idle core: ~0.21 ms for 100 chars (fixed numpy/regex overhead), 0.25 ms for 200,
# 0.33 ms for 400, ~0.5 ms per KB; an anyio thread hop costs ~0.14 ms when idle. Under load the
# hop costs far more: the worker holds the GIL and the loop thread waits for it (switch interval
# 5 ms). bench/overhead.py "full" on uvicorn: offloading above 512 chars gave 366 req/s, above
# 4096 chars 752 req/s. So only long answers (~2 ms of work) go to a worker thread.
DEFAULT_OFFLOAD_CHARS = 4096
# Sentence-level classifier scores below this are noise; dropping them keeps results small.
_MIN_SCORE = 0.05
# The evaluative gate (~5-20 us a sentence) runs only where lowering can matter: scores below
# this stay far under every sensible threshold either way.
_GATE_FROM = 0.3
# Rule categories whose hit in a sentence counts as explicit evaluation for the classifier.
_EVALUATIVE_RULES = ("hate", "harassment", "violence")


class LocalBackend:
    """Hashed character/word n-gram logistic regression plus curated rules, fully offline."""

    name = "local"

    def __init__(
        self,
        *,
        model_path: Path | str | None = None,
        lexicon_path: Path | str | None = None,
        offload_chars: int = DEFAULT_OFFLOAD_CHARS,
    ) -> None:
        if offload_chars < 0:
            raise ConfigError("offload_chars must be >= 0")
        self.model_path = Path(model_path) if model_path else DEFAULT_MODEL
        self.lexicon_path = Path(lexicon_path) if lexicon_path else DEFAULT_LEXICON
        self.offload_chars = offload_chars
        self._model: LinearModel | None = None
        self._lexicon: Lexicon | None = None

    async def load(self) -> None:
        if self._model is None or self._lexicon is None:
            self._model, self._lexicon = await anyio.to_thread.run_sync(self._load_sync)

    def _load_sync(self) -> tuple[LinearModel, Lexicon]:
        return LinearModel.load(self.model_path), Lexicon.load(self.lexicon_path)

    def load_sync(self) -> None:
        """Blocking load, for scripts and benchmarks outside an event loop."""
        self._model, self._lexicon = self._load_sync()

    async def classify(self, text: str) -> dict[str, float]:
        return top_scores(await self.findings(text))

    async def findings(self, text: str) -> list[Finding]:
        if len(text) > self.offload_chars:
            # anyio's default limiter is per event loop and shared by everyone who offloads:
            # a module-level limiter would be bound to whichever loop created it first
            return await anyio.to_thread.run_sync(self.findings_sync, text)
        return self.findings_sync(text)

    def findings_sync(self, text: str) -> list[Finding]:
        """Per (category, sentence): the larger of the classifier and the rules' evidence."""
        if self._model is None or self._lexicon is None:
            raise RuntimeError("LocalBackend.load() was not awaited")
        spans = sentences(text)
        if not spans:
            return []
        best: dict[tuple[str, int], Finding] = {}
        # rules: evidence within one sentence combines as 1 - prod(1 - s)
        by_sentence: dict[tuple[str, int], list[Finding]] = {}
        for hit in self._lexicon.hits(text, spans):
            a = _sentence_start(spans, hit.start)
            by_sentence.setdefault((hit.category, a), []).append(
                Finding(hit.category, hit.start, hit.end, hit.score, hit.explanation)
            )
        scored = self._model.score(text, spans)
        gate = self._lexicon.evaluative
        for i, (a, b) in enumerate(scored.spans):
            probs = scored.probs[i]
            # a sentence that names a group counts in full only with explicit negative
            # evaluation (or a hate/harassment/violence rule hit): the classifier alone
            # over-reads sentence shapes ("I'll cherish any Muslim like you")
            factor = 1.0
            if float(probs.max()) >= _GATE_FROM and not any(
                (c, a) in by_sentence for c in _EVALUATIVE_RULES
            ):
                factor = gate.factor(scored.segments[i])
            for k, head in enumerate(self._model.heads):
                p = float(probs[k])
                why = f"classifier: {head} {p:.2f}"
                if factor < 1.0:
                    p *= factor
                    why += f", lowered to {p:.2f}: group named without negative evaluation"
                if p >= _MIN_SCORE:
                    best[(head, a)] = Finding(head, a, b, p, why)
        for key, hits in by_sentence.items():
            miss = 1.0
            for h in hits:
                miss *= 1.0 - h.score
            top = max(hits, key=lambda h: h.score)
            why = "; ".join(dict.fromkeys(h.explanation for h in hits))
            rule = Finding(top.category, top.start, top.end, min(1.0, 1.0 - miss), f"rules: {why}")
            current = best.get(key)
            if current is None or rule.score >= current.score:
                best[key] = rule
        return sorted(best.values(), key=lambda f: (f.start, f.category))


def top_scores(findings: list[Finding]) -> dict[str, float]:
    scores = dict.fromkeys(CATEGORIES, 0.0)
    for f in findings:
        if f.score > scores.get(f.category, 0.0):
            scores[f.category] = f.score
    return scores


def _sentence_start(spans: list[tuple[int, int]], pos: int) -> int:
    for a, b in spans:
        if a <= pos < b:
            return a
    return 0
