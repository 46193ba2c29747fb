"""What a harm backend is: ``classify(text) -> {category: score}``, optionally with spans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class Finding:
    """One piece of evidence: ``category`` scored ``score`` on ``text[start:end]``."""

    category: str
    start: int
    end: int
    score: float
    explanation: str


@runtime_checkable
class HarmBackend(Protocol):
    """Scores a text per category (keys from ``CATEGORIES``; missing keys mean 0.0).

    ``load()`` runs once at startup (models, clients, prompts); ``classify`` raises on failure
    and the screen turns any exception into ``ScreenError``.
    """

    name: str

    async def load(self) -> None: ...

    async def classify(self, text: str) -> dict[str, float]: ...


@runtime_checkable
class SpanBackend(HarmBackend, Protocol):
    """A backend that can also say *where*: the screen then reports term/sentence spans."""

    async def findings(self, text: str) -> list[Finding]: ...
