"""The pipeline and the streaming screener with the real PII screen (presidio, offline, English
patterns only): PII split at every position of a stream is still redacted."""

from __future__ import annotations

import pytest

from aiguard.policy.models import Policy
from aiguard.policy.prompts import Catalogue
from aiguard.screens.base import Screen, ScreenContext
from aiguard.screens.pipeline import ScreenPipeline

pytestmark = pytest.mark.anyio
CTX = ScreenContext()

TEXTS = [
    ("Sure. Write to maria.gonzalez@example.com and she will answer.", "maria.gonzalez@example"),
    ("Refunds go to DE89 3704 0044 0532 0130 00 within a week, thanks.", "0532 0130"),
    ("Call our agent on +44 20 7946 0958 between nine and five.", "7946 0958"),
]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def pipeline() -> ScreenPipeline:
    pii = pytest.importorskip("aiguard.screens.pii")
    screen: Screen = pii.PIIScreen(languages=["en"], ner_models={})
    await screen.load()
    policy = Policy.model_validate({"screening": {"screens": ["pii"]}})
    return ScreenPipeline(policy, Catalogue(), [screen])


@pytest.mark.parametrize(("text", "secret"), TEXTS, ids=["email", "iban", "phone"])
async def test_real_pii_split_anywhere_is_redacted(
    pipeline: ScreenPipeline, text: str, secret: str
) -> None:
    whole = await pipeline.screen(text, CTX)
    assert secret not in whole.text and whole.categories
    for i in [*range(len(text) + 1), -1]:
        chunks = list(text) if i < 0 else [text[:i], text[i:]]
        stream = pipeline.stream(CTX)
        out = [(await stream.push(c)).release for c in chunks]
        out.append((await stream.finish()).release)
        assert "".join(out) == whole.text, i
