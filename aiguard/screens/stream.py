"""Streaming screening: hold text back only until it can be screened, then release it.

Algorithm (see docs/screening.md, "Streaming"):

* Pending text ``buf`` grows with each ``push``. A *cut* is chosen at the last sentence boundary
  (``. ! ? …`` followed by whitespace, ``。！？`` and newlines) within the first ``window`` chars;
  without one, once ``buf`` holds ``window`` chars, at the last whitespace before
  ``window - overlap`` (or right there when the window has none). So a trailing run of non-space
  characters is never released until a boundary or whitespace follows it, and no more than
  ``window`` characters are ever held back.
* The screens see ``tail + buf[:cut + lookahead]``: ``tail`` is released text before the cut
  (context; up to ``overlap`` characters, no longer than the release itself, at least 16) and
  ``lookahead`` up to ``overlap = min(64, window / 2)`` characters past the cut. A finding that
  crosses the cut moves the cut before it (held back, screened again with more text) or, when
  it starts at the release's beginning, past it, so a redaction is never split between two
  releases. A redaction reaching the very end of the screened text (a token longer than the
  window) swallows the rest of its non-space run when that arrives.
* Each character is screened ``1 + (tail + lookahead) / cut`` times; cuts at whitespace are at
  least ``(window - overlap) / 2`` long amortised, so total work is linear in the answer.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from aiguard.screens._actions import Decision, decide
from aiguard.screens.base import (
    PipelineResult,
    ScreenContext,
    ScreenResult,
    Span,
    StreamStep,
    Verdict,
)

if TYPE_CHECKING:
    from aiguard.screens.pipeline import ScreenPipeline

# A sentence end: Latin punctuation (plus closing quotes/brackets) before whitespace, or a
# full-width CJK stop / newline on its own. The cut goes right after the match.
_BOUNDARY = re.compile(r"""[.!?…]["'”’)\]]*(?=\s)|[。！？；\n]["'”’」』）]*""")
_SPACES = " \t\u3000\u00a0"
_NON_SPACE = re.compile(r"\S+")
_SPACE = re.compile(r"\s+")
# How far back a new push re-scans: a boundary needs the character after the punctuation.
_RESCAN = 4
_MIN_TAIL = 16

_EMPTY = StreamStep("")


class _Aggregate:
    """Per-screen accumulation of results over all windows (absolute answer offsets)."""

    __slots__ = ("elapsed_ms", "error", "seen", "spans", "verdict")

    def __init__(self) -> None:
        self.verdict = Verdict.ALLOW
        self.spans: list[Span] = []
        self.seen: set[tuple[str, int, int]] = set()
        self.error: str | None = None
        self.elapsed_ms = 0.0


class WindowedStreamScreener:
    """Per-answer ``StreamScreener`` built by ``ScreenPipeline.stream(ctx)``."""

    def __init__(self, pipeline: ScreenPipeline, context: ScreenContext) -> None:
        self._pipeline = pipeline
        self._context = context
        self._window = pipeline.settings.window_chars
        self._overlap = max(4, min(64, self._window // 2))
        active = pipeline.active(context)
        self._passthrough = not active
        self._buf = ""  # pending, unreleased original text
        self._base = 0  # offset of buf[0] in the whole answer
        # released original text kept as context: `overlap` characters, or more for a screen
        # that needs a longer history (``stream_context_chars``: the infringement screen)
        wants = [int(getattr(s, "stream_context_chars", 0)) for s in active]
        self._keep = max([self._overlap, *wants])
        self._tail = ""
        self._scan = 0  # buf index where the boundary search resumes
        self._released: list[str] = []
        self._result: PipelineResult | None = None
        self._blocked = False
        self._finished = False
        self._redacted = False
        self._continues: str | None = None  # label of a redaction cut by the window edge
        self._aggregates: dict[str, _Aggregate] = {}
        self._categories: dict[str, None] = {}
        # observability (and the linear-work tests): calls and characters handed to the screens
        self.screen_calls = 0
        self.chars_screened = 0

    # -- StreamScreener --------------------------------------------------------------------------

    async def push(self, text: str) -> StreamStep:
        if self._blocked or self._finished or not text:
            return _EMPTY
        if self._passthrough:
            self._released.append(text)
            self._result = None
            self._base += len(text)
            return StreamStep(text)
        self._buf += text
        out: list[str] = []
        while (cut := self._next_cut()) is not None:
            step = await self._release(cut, final=False)
            out.append(step.release)
            if step.blocked:
                return StreamStep("".join(out), blocked=True)
        return StreamStep("".join(out))

    async def finish(self) -> StreamStep:
        if self._blocked or self._finished:
            return _EMPTY
        self._finished = True
        if not self._buf:
            return _EMPTY
        return await self._release(len(self._buf), final=True)

    def result(self) -> PipelineResult:
        """Cached until more text is screened or released (it joins the released text)."""
        if self._result is None:
            self._result = self._build_result()
        return self._result

    def _build_result(self) -> PipelineResult:
        results = tuple(
            ScreenResult(
                name,
                agg.verdict,
                tuple(sorted(agg.spans, key=lambda s: (s.start, s.end))),
                agg.error,
                agg.elapsed_ms,
            )
            for name, agg in self._aggregates.items()
        )
        if self._blocked:
            verdict = Verdict.BLOCK
        else:
            verdict = Verdict.REDACT if self._redacted else Verdict.ALLOW
        return PipelineResult(verdict, "".join(self._released), results, tuple(self._categories))

    # -- internals -------------------------------------------------------------------------------

    def _next_cut(self) -> int | None:
        """Where the next release may end, or None to wait for more text."""
        buf = self._buf
        limit = min(len(buf), self._window)
        last = None
        for m in _BOUNDARY.finditer(buf, self._scan, limit):
            last = m.end()
        # everything before here holds no boundary other than `last`; a boundary needs the
        # character after its punctuation, so the last few characters are scanned again
        self._scan = max(0, limit - _RESCAN)
        if last is not None:
            return last
        if len(buf) < self._window:
            return None
        # No boundary in a full window: cut after the last whitespace, leaving `overlap`
        # characters of lookahead so a finding that crosses the cut is seen whole.
        reach = self._window - self._overlap
        space = max(buf.rfind(c, 0, reach) for c in _SPACES)
        return space + 1 if space >= 0 else reach

    async def _release(self, cut: int, *, final: bool) -> StreamStep:
        pipeline = self._pipeline
        buf = self._buf
        # context before the cut: the released tail, no longer than the text being released,
        # so a run of tiny sentences does not re-screen `overlap` characters each time
        n_tail = min(self._overlap, max(_MIN_TAIL, cut), len(self._tail))
        tail = self._tail[len(self._tail) - n_tail :]
        # start the context at a word, not mid-word: a fragment like "rd." misleads classifiers
        space = _SPACE.search(tail, 0, len(tail) // 2)
        if space is not None:
            tail = tail[space.end() :]
        before = self._tail[: len(self._tail) - len(tail)]
        look_end = len(buf) if final else min(len(buf), cut + self._overlap)
        off = len(tail)
        screened = tail + buf[:look_end]
        self.screen_calls += 1
        self.chars_screened += len(screened)
        results, _ = await pipeline.evaluate(screened, self._context, before=before)
        self._result = None
        # Act only on findings in the text being released (or crossing into it): the context
        # was judged when it was released, the lookahead is judged again with what follows it.
        results = tuple(_within(r, off, off + cut) for r in results)
        decision = decide(results, pipeline.settings, len(screened))

        if decision.verdict is Verdict.BLOCK:
            self._record(results, off, off + cut)
            self._blocked = True
            self._categories.update(dict.fromkeys(decision.categories))
            lead = "\n" if any(self._released) else ""
            message = lead + pipeline.blocked_text(self._context)
            self._released.append(message)
            self._buf = ""
            return StreamStep(message, blocked=True)

        planned, cut = cut, self._adjust_cut(cut, off, decision)
        self._record(results, off, off + cut)

        # A redaction released up to the very edge of what was screened may continue in text
        # not seen yet (a token longer than the window): swallow the rest of its non-space run.
        skip = 0
        if self._continues is not None:
            run = _NON_SPACE.match(buf, 0, cut)
            skip = run.end() if run else 0
            self._redacted = True
            self._extend_recorded(self._continues, self._base, self._base + skip)
        edge = None
        if not final and cut == look_end:
            edge = next((r for r in decision.redactions if r.end == off + cut), None)
        if edge is not None:
            self._continues = edge.label
        elif skip < cut:
            self._continues = None  # the run ended in this segment
        segment = buf[skip:cut]
        local = tuple(
            Span(
                s.label,
                max(s.start, off + skip) - off - skip,
                min(s.end, off + cut) - off - skip,
                s.score,
            )
            for s in decision.redactions
            if s.end > off + skip and s.start < off + cut
        )
        if local:
            self._redacted = True
            self._categories.update(dict.fromkeys(s.label for s in local))
            segment = pipeline.redact(segment, Decision(decision.verdict, local, ()))
        self._released.append(segment)
        self._tail = (self._tail + buf[:cut])[-self._keep :]
        self._base += cut
        self._buf = buf[cut:]
        # keep the boundary search linear: what was scanned past the cut is not scanned again,
        # unless the cut moved back before a finding (a boundary may lie between the two)
        self._scan = self._scan - cut if cut == planned and self._scan >= cut else 0
        return StreamStep(segment)

    @staticmethod
    def _adjust_cut(cut: int, off: int, decision: Decision) -> int:
        """Never split a redaction between releases (redactions are sorted, disjoint)."""
        at = off + cut
        for s in decision.redactions:
            if s.start < at < s.end:
                # hold the finding back (screened again later with its full context), unless
                # it starts where this release starts: then release it whole, redacted
                return s.start - off if s.start > off else s.end - off
        return cut

    def _extend_recorded(self, label: str, end: int, new_end: int) -> None:
        if new_end == end:
            return
        for agg in self._aggregates.values():
            for i, s in enumerate(agg.spans):
                if s.label == label and s.end == end:
                    agg.spans[i] = Span(label, s.start, new_end, s.score, s.explanation)
                    agg.seen.add((label, s.start, new_end))

    @staticmethod
    def _merge_recorded(agg: _Aggregate, label: str, start: int, end: int) -> bool:
        for i in range(len(agg.spans) - 1, max(-1, len(agg.spans) - 5), -1):
            old = agg.spans[i]
            if old.label == label and old.start < end and start < old.end:
                if end > old.end:
                    agg.spans[i] = Span(label, old.start, end, old.score, old.explanation)
                return True
        return False

    def _record(self, results: tuple[ScreenResult, ...], lo: int, hi: int) -> None:
        """Keep findings that touch the released part, in whole-answer offsets."""
        shift = self._base - lo  # screened offset -> answer offset (lo = context length)
        for r in results:
            agg = self._aggregates.setdefault(r.screen, _Aggregate())
            agg.elapsed_ms += r.elapsed_ms
            if r.error is not None and agg.error is None:
                agg.error = r.error
            touched = False
            for s in r.spans:
                if s.end <= lo or s.start >= hi:
                    continue  # context already reported, or lookahead screened again later
                touched = True
                key = (s.label, s.start + shift, s.end + shift)
                if key in agg.seen:
                    continue
                agg.seen.add(key)
                if s.start < lo and self._merge_recorded(agg, *key):
                    continue  # the same finding seen again through the context tail
                agg.spans.append(Span(s.label, *key[1:], s.score, s.explanation))
            if touched or not r.spans:
                agg.verdict = max(agg.verdict, r.verdict)


def _within(result: ScreenResult, lo: int, hi: int) -> ScreenResult:
    """``result`` keeping only spans that overlap ``[lo, hi)``; a screen whose every span fell
    outside proposes nothing (a spanless verdict, a whole-text classifier's, is kept)."""
    kept = tuple(s for s in result.spans if s.end > lo and s.start < hi)
    if len(kept) == len(result.spans):
        return result
    verdict = result.verdict if kept else Verdict.ALLOW
    return ScreenResult(result.screen, verdict, kept, result.error, result.elapsed_ms)
