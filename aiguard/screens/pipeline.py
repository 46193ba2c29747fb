"""The screen pipeline: runs the policy's screens concurrently over an answer and applies actions.

``build_screener(policy, catalogue)`` builds it from names; ``await pipeline.load()`` once at
startup; then ``await pipeline.screen(text, ctx)`` per whole answer or ``pipeline.stream(ctx)``
per streamed answer.

Screen authors: run CPU-heavy or blocking work through ``run_cpu`` (or pass ``cpu_limiter()``
to ``anyio.to_thread.run_sync``; both live in ``aiguard.screens.cpu`` and are re-exported here)
so all screens share one small pool of threads instead of starving the loop or each other.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import anyio

from aiguard.errors import ConfigError
from aiguard.policy.models import Policy
from aiguard.policy.prompts import Catalogue
from aiguard.screens import registry
from aiguard.screens._actions import Decision, decide, redact
from aiguard.screens.base import (
    PipelineResult,
    Screen,
    ScreenContext,
    ScreenResult,
    Span,
    Verdict,
)
from aiguard.screens.cpu import cpu_limiter, run_cpu

if TYPE_CHECKING:
    from aiguard.screens.stream import WindowedStreamScreener

__all__ = ["ScreenPipeline", "build_screener", "cpu_limiter", "run_cpu"]

log = logging.getLogger("aiguard.screens")


class ScreenPipeline:
    """An ``AnswerScreener``: one instance per middleware, shared by all requests."""

    def __init__(self, policy: Policy, catalogue: Catalogue, screens: list[Screen]) -> None:
        names = [s.name for s in screens]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ConfigError(f"screening.screens: duplicate screen names {dupes}")
        self.policy = policy
        self.settings = policy.screening
        self.catalogue = catalogue
        self.screens: dict[str, Screen] = {s.name: s for s in screens}
        self._loaded = False
        self._load_lock: anyio.Lock | None = None
        catalogue.text("blocked", catalogue.default_locale)  # fail now, not mid-request

    # -- lifecycle -----------------------------------------------------------------------------

    async def load(self) -> None:
        """Load every screen's assets once, concurrently. Safe to call more than once."""
        if self._loaded:
            return
        if self._load_lock is None:
            self._load_lock = anyio.Lock()
        async with self._load_lock:
            if self._loaded:
                return
            started = time.perf_counter()
            failures: list[str] = []

            async def load_one(screen: Screen) -> None:
                try:
                    await screen.load()
                except Exception as exc:  # collected: one clear startup error, not a group
                    failures.append(f"{screen.name!r}: {exc}")

            async with anyio.create_task_group() as tg:
                for screen in self.screens.values():
                    tg.start_soon(load_one, screen)
            if failures:
                raise ConfigError(f"screens failed to load: {'; '.join(sorted(failures))}")
            self._loaded = True
            log.info(
                "screens loaded: %s in %.0f ms",
                ", ".join(self.screens) or "(none)",
                (time.perf_counter() - started) * 1000,
            )

    # -- whole answers -------------------------------------------------------------------------

    def active(self, context: ScreenContext) -> list[Screen]:
        """The screens that apply to ``context.route`` (all when no route override matches)."""
        if not self.settings.enabled:
            return []
        names = self.settings.screens_for(context.route)
        return [self.screens[n] for n in names if n in self.screens]

    async def screen(self, text: str, context: ScreenContext) -> PipelineResult:
        results, decision = await self.evaluate(text, context)
        if decision.verdict is Verdict.BLOCK:
            out = self.blocked_text(context)
        elif decision.redactions:
            out = self.redact(text, decision)
        else:
            out = text
        return PipelineResult(decision.verdict, out, results, decision.categories)

    def stream(self, context: ScreenContext) -> WindowedStreamScreener:
        from aiguard.screens.stream import WindowedStreamScreener

        return WindowedStreamScreener(self, context)

    # -- building blocks (also used by the streaming screener) ----------------------------------

    async def evaluate(
        self, text: str, context: ScreenContext, *, before: str = ""
    ) -> tuple[tuple[ScreenResult, ...], Decision]:
        """Run the active screens over ``text``; spans and the decision index ``text``.

        ``before`` (streaming) is released text preceding ``text``: a screen declaring
        ``stream_context_chars`` sees that much of it in front of ``text`` (the infringement
        screen must see a whole run of words, longer than one window).
        """
        screens = self.active(context)
        if not screens or not text:
            return (), Decision(Verdict.ALLOW, (), ())
        started = time.perf_counter()
        results: list[ScreenResult | None] = [None] * len(screens)

        async def run(i: int, screen: Screen) -> None:
            want = getattr(screen, "stream_context_chars", 0) if before else 0
            if not want:
                results[i] = await self._run_one(screen, text, context)
                return
            extra = before[-want:]
            result = await self._run_one(screen, extra + text, context)
            results[i] = _shift(result, len(extra))

        # One deadline for all screens (they start together): a cancel scope per screen would
        # cost more than a fast screen's whole run. Whoever has no result when it fires timed out.
        timeout = self.settings.timeout_seconds
        with anyio.move_on_after(timeout):
            if not any(getattr(s, "io_bound", False) for s in screens):
                # CPU-bound screens gain nothing from interleaving on one loop (they share the
                # GIL): back to back saves a task group (~100-250 us per answer, measured)
                for i, screen in enumerate(screens):
                    await run(i, screen)
            else:
                async with anyio.create_task_group() as tg:
                    for i, screen in enumerate(screens):
                        tg.start_soon(run, i, screen)
        done = tuple(
            r or self._failed(s, f"timed out after {timeout:g} s", started, context)
            for r, s in zip(results, screens, strict=True)
        )
        return done, decide(done, self.settings, len(text))

    def redact(self, text: str, decision: Decision) -> str:
        return redact(text, decision.redactions)

    def blocked_text(self, context: ScreenContext) -> str:
        return self.catalogue.text("blocked", context.locale).text

    async def _run_one(self, screen: Screen, text: str, context: ScreenContext) -> ScreenResult:
        started = time.perf_counter()
        try:
            result = await screen.screen(text, context)
        except Exception as exc:  # any screen bug is contained here; fail_mode decides
            return self._failed(screen, f"{type(exc).__name__}: {exc}", started, context)
        if not isinstance(result, ScreenResult):
            error = f"returned {type(result).__name__}, not a ScreenResult"
            return self._failed(screen, error, started, context)
        spans = result.spans
        if any(s.end > len(text) for s in spans):  # a screen bug must not shift offsets
            spans = tuple(
                Span(s.label, s.start, len(text), s.score, s.explanation)
                for s in spans
                if s.start < len(text)
            )
        if result.screen != screen.name or not result.elapsed_ms or spans is not result.spans:
            elapsed = result.elapsed_ms or (time.perf_counter() - started) * 1000
            result = ScreenResult(screen.name, result.verdict, spans, result.error, elapsed)
        return result

    def _failed(
        self, screen: Screen, error: str, started: float, context: ScreenContext
    ) -> ScreenResult:
        closed = self.settings.fail_mode == "closed"
        log.warning(
            "screen %s failed (%s) on message %s: fail-%s, answer %s",
            screen.name,
            error,
            context.message_id or "-",
            self.settings.fail_mode,
            "blocked" if closed else "allowed",
        )
        verdict = Verdict.BLOCK if closed else Verdict.ALLOW
        return ScreenResult(screen.name, verdict, (), error, (time.perf_counter() - started) * 1000)


def _shift(result: ScreenResult, by: int) -> ScreenResult:
    """Spans of ``extra + text`` re-indexed to ``text`` (clipped at its start)."""
    spans = tuple(
        Span(s.label, max(0, s.start - by), s.end - by, s.score, s.explanation)
        for s in result.spans
        if s.end > by
    )
    return ScreenResult(result.screen, result.verdict, spans, result.error, result.elapsed_ms)


def build_screener(policy: Policy, catalogue: Catalogue) -> ScreenPipeline:
    """Build the screens named in ``policy.screening.screens`` (ConfigError on an unknown one)."""
    screens = [registry.create(name, policy) for name in policy.screening.screens]
    return ScreenPipeline(policy, catalogue, screens)
