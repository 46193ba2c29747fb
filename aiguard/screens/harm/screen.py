"""``HarmScreen``: one screen, interchangeable backends, per-category thresholds."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from aiguard.errors import ConfigError, ScreenError
from aiguard.policy.models import Policy
from aiguard.screens.base import ScreenContext, ScreenResult, Span, Verdict
from aiguard.screens.harm._backend import Finding, HarmBackend, SpanBackend
from aiguard.screens.harm._categories import CATEGORIES, resolve_thresholds


class HarmScreen:
    """Blocks an answer when any enforced category's score reaches its threshold.

    Failures (backend exception, timeout inside the client, unparseable judge reply) raise
    ``ScreenError``; the pipeline decides fail-open or fail-closed. Spans cover the offending
    term or sentence when the backend knows it (the local one does), else the whole text.
    """

    def __init__(
        self,
        name: str = "harm",
        backend: HarmBackend | None = None,
        thresholds: Mapping[str, float] | None = None,
        *,
        categories: Iterable[str] | None = None,
    ) -> None:
        if backend is None:
            from aiguard.screens.harm.local import LocalBackend

            backend = LocalBackend()
        if not isinstance(backend, HarmBackend):
            raise ConfigError(f"{backend!r} does not implement HarmBackend")
        self.name = name
        self.backend = backend
        self.thresholds = resolve_thresholds(thresholds)
        enforced = tuple(categories) if categories is not None else CATEGORIES
        unknown = [c for c in enforced if c not in CATEGORIES]
        if unknown:
            raise ConfigError(f"unknown harm categories {unknown}; expected some of {CATEGORIES}")
        self.categories = enforced
        self._span_backend: tuple[HarmBackend, SpanBackend | None] | None = None

    @classmethod
    def from_policy(cls, policy: Policy) -> HarmScreen:
        """Used by the screen registry: ``policy.screening.harm`` (``HarmPolicy``, or a mapping
        with the ``build_harm_screen`` keys), else the defaults (local backend and thresholds)."""
        section = getattr(policy.screening, "harm", None)
        if section is None:
            return cls()
        dump = getattr(section, "model_dump", None)
        # unset fields are None: only what the operator wrote reaches the factory, so an option
        # of another backend ("offload_chars" with "openai") is a ConfigError, not ignored
        config = dict(dump(exclude_none=True) if callable(dump) else section)
        return build_harm_screen(config)

    @property
    def io_bound(self) -> bool:
        """Remote backends wait on the network: let the pipeline run other screens meanwhile."""
        return self.backend.name != "local"

    @property
    def _spans(self) -> SpanBackend | None:
        # runtime Protocol checks cost ~50 us each: decide once per backend, not per answer
        if self._span_backend is None or self._span_backend[0] is not self.backend:
            backend = self.backend
            self._span_backend = (backend, backend if isinstance(backend, SpanBackend) else None)
        return self._span_backend[1]

    async def load(self) -> None:
        await self.backend.load()

    async def aclose(self) -> None:
        """Release the backend's resources (HTTP clients) if it holds any."""
        close = getattr(self.backend, "aclose", None)
        if close is not None:
            await close()

    async def screen(self, text: str, context: ScreenContext) -> ScreenResult:
        start = time.perf_counter()
        if not text.strip():
            return ScreenResult(self.name, Verdict.ALLOW)
        try:
            if self._spans is not None:
                findings = await self._spans.findings(text)
            else:
                scores = await self.backend.classify(text)
                findings = [
                    Finding(
                        cat,
                        0,
                        len(text),
                        min(1.0, max(0.0, float(s))),
                        f"{self.backend.name}: {cat} {float(s):.2f}",
                    )
                    for cat, s in scores.items()
                    if cat in CATEGORIES
                ]
        except ScreenError:
            raise
        except Exception as exc:  # any backend failure is the pipeline's fail-mode decision
            raise ScreenError(
                f"harm backend {self.backend.name!r} failed: {type(exc).__name__}: {exc}"
            ) from exc
        spans = tuple(
            Span(f.category, f.start, f.end, f.score, f.explanation)
            for f in findings
            if f.category in self.categories and f.score >= self.thresholds[f.category]
        )
        return ScreenResult(
            screen=self.name,
            verdict=Verdict.BLOCK if spans else Verdict.ALLOW,
            spans=spans,
            elapsed_ms=(time.perf_counter() - start) * 1000.0,
        )


_COMMON_KEYS = {"name", "backend", "thresholds", "categories"}
_BACKEND_KEYS = {
    "local": {"model_path", "lexicon_path", "offload_chars"},
    "openai": {"model", "api_key", "base_url", "timeout", "max_retries"},
    "llm": {"locale", "max_chars"},
}


def build_harm_screen(config: Mapping[str, Any] | None = None, **objects: Any) -> HarmScreen:
    """Build a ``HarmScreen`` from plain configuration (e.g. a TOML table); validates eagerly.

    ``config``: ``name`` ("harm"), ``backend`` ("local" | "openai" | "llm"), ``thresholds``
    ({category: score}), ``categories`` (enforced subset) and backend options: local
    ``model_path, lexicon_path, offload_chars``; openai ``model, api_key, base_url, timeout,
    max_retries``; llm ``locale, max_chars``. Objects that cannot come from a file are keyword
    arguments: ``chat_model`` (required for "llm"), ``catalogue`` (llm), ``client`` (openai).
    """
    cfg = dict(config or {})
    kind = str(cfg.pop("backend", "local"))
    if kind not in _BACKEND_KEYS:
        raise ConfigError(f"unknown harm backend {kind!r}; expected one of {sorted(_BACKEND_KEYS)}")
    common = {k: cfg.pop(k) for k in list(cfg) if k in _COMMON_KEYS}
    unknown = set(cfg) - _BACKEND_KEYS[kind]
    if unknown:
        raise ConfigError(f"unknown option(s) for the {kind} harm backend: {sorted(unknown)}")
    backend: HarmBackend
    if kind == "local":
        from aiguard.screens.harm.local import LocalBackend

        backend = LocalBackend(**cfg)
    elif kind == "openai":
        from aiguard.screens.harm.openai_moderation import OpenAIModerationBackend

        backend = OpenAIModerationBackend(client=objects.get("client"), **cfg)
    else:
        from aiguard.screens.harm.llm import LLMJudgeBackend

        chat_model = objects.get("chat_model")
        if chat_model is None:
            raise ConfigError("the llm harm backend needs a chat_model (a LangChain BaseChatModel)")
        backend = LLMJudgeBackend(chat_model, catalogue=objects.get("catalogue"), **cfg)
    return HarmScreen(
        name=str(common.get("name", "harm")),
        backend=backend,
        thresholds=common.get("thresholds"),
        categories=common.get("categories"),
    )
