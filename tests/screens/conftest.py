"""Small fake screens: real Screen implementations with predictable findings, so the pipeline and
the streaming screener are tested without the PII/harm models."""

from __future__ import annotations

import re
from collections.abc import Callable

import anyio
import pytest

from aiguard.policy.models import Policy
from aiguard.policy.prompts import Catalogue
from aiguard.screens.base import ScreenContext, ScreenResult, Span, Verdict
from aiguard.screens.pipeline import ScreenPipeline

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[a-z]{2,}")
# IBAN, compact or in groups of four: "NL91ABNA0417164300", "NL91 ABNA 0417 1643 00"
IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){3,7}(?: ?[A-Z0-9]{1,3})?\b")


class FakePII:
    """Finds e-mail addresses and IBANs; proposes REDACT."""

    def __init__(self, name: str = "pii") -> None:
        self.name = name
        self.calls = 0
        self.chars = 0
        self.loaded = 0

    async def load(self) -> None:
        self.loaded += 1

    async def screen(self, text: str, context: ScreenContext) -> ScreenResult:
        self.calls += 1
        self.chars += len(text)
        spans = [Span("EMAIL_ADDRESS", m.start(), m.end(), 0.9) for m in EMAIL.finditer(text)]
        spans += [Span("IBAN_CODE", m.start(), m.end(), 0.95) for m in IBAN.finditer(text)]
        return ScreenResult(self.name, Verdict.REDACT if spans else Verdict.ALLOW, tuple(spans))


class FakeHarm:
    """Flags every sentence containing a trigger word (default "detonate"); proposes BLOCK."""

    def __init__(self, name: str = "harm", word: str = "detonate") -> None:
        self.name = name
        self.word = word
        self.seen: list[str] = []

    async def load(self) -> None:
        return None

    async def screen(self, text: str, context: ScreenContext) -> ScreenResult:
        self.seen.append(text)
        i = text.find(self.word)
        if i < 0:
            return ScreenResult(self.name, Verdict.ALLOW)
        span = Span("violence", i, i + len(self.word), 0.99)
        return ScreenResult(self.name, Verdict.BLOCK, (span,))


class Broken:
    def __init__(self, name: str = "broken", *, hang: bool = False) -> None:
        self.name = name
        self.hang = hang

    async def load(self) -> None:
        return None

    async def screen(self, text: str, context: ScreenContext) -> ScreenResult:
        if self.hang:
            await anyio.sleep(60)
        raise RuntimeError("model exploded")


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return Catalogue()


@pytest.fixture
def make_pipeline(catalogue: Catalogue) -> Callable[..., ScreenPipeline]:
    def make(*screens: object, **screening: object) -> ScreenPipeline:
        names = [s.name for s in screens]  # type: ignore[attr-defined]
        policy = Policy.model_validate({"screening": {"screens": names, **screening}})
        return ScreenPipeline(policy, catalogue, list(screens))  # type: ignore[arg-type]

    return make
