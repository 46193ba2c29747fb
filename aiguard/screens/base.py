"""The screen plug-in protocol and its result types (model: presidio's RecognizerResult)."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


class Verdict(enum.IntEnum):
    """Ordered by severity so the pipeline's verdict is ``max()`` of its screens'."""

    ALLOW = 0
    REDACT = 1
    BLOCK = 2


class Action(enum.StrEnum):
    """What the policy does with a category that a screen flagged."""

    ANNOTATE = "annotate"  # record and report in metadata, change nothing
    REDACT = "redact"  # replace the span in place, e.g. "[EMAIL]"
    BLOCK = "block"  # replace the whole answer with the localized "blocked" message


@dataclass(frozen=True, slots=True)
class Span:
    """One finding. ``start``/``end`` index the screened text (Python str offsets)."""

    label: str  # category, e.g. "EMAIL_ADDRESS", "hate", "verbatim"
    start: int
    end: int
    score: float  # in [0, 1]
    explanation: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"score must be in [0, 1], got {self.score}")
        if not 0 <= self.start <= self.end:
            raise ValueError(f"bad span [{self.start}, {self.end})")


@dataclass(frozen=True, slots=True)
class ScreenResult:
    """What one screen found. ``verdict`` is the screen's own proposal before policy actions."""

    screen: str  # instance name
    verdict: Verdict
    spans: tuple[Span, ...] = ()
    error: str | None = None  # set when the screen failed or timed out
    elapsed_ms: float = 0.0

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "screen": self.screen,
            "verdict": self.verdict.name.lower(),
            "spans": [
                {
                    "label": s.label,
                    "start": s.start,
                    "end": s.end,
                    "score": round(s.score, 4),
                    "explanation": s.explanation,
                }
                for s in self.spans
            ],
        }
        if self.error:
            out["error"] = self.error
        return out


@dataclass(frozen=True, slots=True)
class ScreenContext:
    """What a screen may know about the answer beyond its text."""

    locale: str = "en"
    route: str = ""
    message_id: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class Screen(Protocol):
    """A screen inspects answer text. Heavy assets load in ``load()``, once, at startup.

    A screen that waits on the network (a moderation API, an LLM judge) should also expose
    ``io_bound = True``: the pipeline then runs the screens concurrently instead of back to back.
    """

    name: str

    async def load(self) -> None: ...

    async def screen(self, text: str, context: ScreenContext) -> ScreenResult: ...


@dataclass(frozen=True, slots=True)
class PipelineResult:
    """The pipeline's decision for one answer (or one streamed window of it)."""

    verdict: Verdict
    text: str  # what to send: original, redacted, or the localized replacement when blocked
    results: tuple[ScreenResult, ...] = ()
    categories: tuple[str, ...] = ()  # labels that triggered a redact/block action

    @property
    def blocked(self) -> bool:
        return self.verdict is Verdict.BLOCK

    def to_json(self) -> dict[str, object]:
        return {
            "verdict": self.verdict.name.lower(),
            "categories": list(self.categories),
            "screens": [r.to_json() for r in self.results],
        }


@dataclass(frozen=True, slots=True)
class StreamStep:
    """Text that became safe to send; ``blocked`` means: send ``release`` then end the stream."""

    release: str
    blocked: bool = False


class StreamScreener(Protocol):
    """Per-answer streaming state: holds text back until a boundary, screens, releases."""

    async def push(self, text: str) -> StreamStep: ...

    async def finish(self) -> StreamStep:
        """Screen and release whatever is held back; call once at end of stream."""
        ...

    def result(self) -> PipelineResult:
        """Aggregate over everything screened so far (for metadata and the message record)."""
        ...


class AnswerScreener(Protocol):
    """What the middleware needs from the screening layer."""

    async def screen(self, text: str, context: ScreenContext) -> PipelineResult: ...

    def stream(self, context: ScreenContext) -> StreamScreener: ...
