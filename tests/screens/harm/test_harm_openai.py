"""The openai backend against a real HTTP server on loopback speaking /v1/moderations."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from aiguard.errors import ConfigError, ScreenError
from aiguard.screens.base import ScreenContext, Verdict
from aiguard.screens.harm import HarmScreen, build_harm_screen
from aiguard.screens.harm.openai_moderation import OpenAIModerationBackend
from tests.screens.harm.fake_openai import FakeOpenAI
from tests.servers import serve

pytestmark = pytest.mark.anyio
CTX = ScreenContext()
Fake = tuple[FakeOpenAI, str]
Make = Callable[..., OpenAIModerationBackend]


@pytest.fixture(scope="module")
def fake() -> Iterator[tuple[FakeOpenAI, str]]:
    server = FakeOpenAI()
    with serve(server.app, lifespan="off") as url:
        yield server, f"{url}/v1"


@pytest.fixture
async def backend() -> AsyncIterator[Callable[..., OpenAIModerationBackend]]:
    """Builds backends for the fake server and closes their HTTP clients afterwards."""
    made: list[OpenAIModerationBackend] = []

    def make(url: str, **kw: object) -> OpenAIModerationBackend:
        opts: dict[str, object] = {
            "api_key": "sk-test",
            "base_url": url,
            "timeout": 5.0,
            "max_retries": 0,
        }
        opts.update(kw)
        made.append(OpenAIModerationBackend(**opts))  # type: ignore[arg-type]
        return made[-1]

    yield make
    for b in made:
        await b.aclose()


async def test_scores_map_onto_our_categories_with_subcategories_rolled_up(
    fake: Fake, backend: Make
) -> None:
    server, url = fake
    b = backend(url, model="omni-moderation-2024-09-26")
    await b.load()
    scores = await b.classify("they kill and hate")
    assert scores["hate"] == pytest.approx(0.91)
    assert scores["harassment"] == pytest.approx(0.7)  # harassment/threatening > harassment
    assert scores["violence"] == pytest.approx(0.97)  # violence/graphic rolls up
    assert set(scores) == {
        "hate",
        "harassment",
        "self-harm",
        "sexual",
        "sexual/minors",
        "violence",
        "illicit",
    }
    sent = server.requests[-1]
    assert sent["path"] == "/v1/moderations"
    assert sent["body"] == {"model": "omni-moderation-2024-09-26", "input": "they kill and hate"}
    assert sent["auth"] == "Bearer sk-test"


async def test_screen_blocks_with_whole_text_spans(fake: Fake, backend: Make) -> None:
    _, url = fake
    screen = build_harm_screen(
        {"backend": "openai", "api_key": "sk-test", "base_url": url, "max_retries": 0}
    )
    await screen.load()
    text = "I hate them."
    try:
        result = await screen.screen(text, CTX)
        clean = await screen.screen("The weather is nice.", CTX)
    finally:
        await screen.aclose()
    assert result.verdict is Verdict.BLOCK
    labels = {s.label: s for s in result.spans}
    assert set(labels) == {"hate"}  # harassment 0.62 < its default threshold 0.7
    assert (labels["hate"].start, labels["hate"].end) == (0, len(text))
    assert "openai" in labels["hate"].explanation
    assert clean.verdict is Verdict.ALLOW and clean.spans == ()


async def test_thresholds_are_configurable(fake: Fake, backend: Make) -> None:
    _, url = fake
    screen = HarmScreen(backend=backend(url), thresholds={"hate": 0.95, "harassment": 0.6})
    await screen.load()
    result = await screen.screen("I hate them.", CTX)
    assert [s.label for s in result.spans] == ["harassment"]


async def test_http_500_raises_screen_error(fake: Fake, backend: Make) -> None:
    server, url = fake
    screen = HarmScreen(backend=backend(url))
    await screen.load()
    before = len(server.requests)
    with pytest.raises(ScreenError, match="InternalServerError"):
        await screen.screen("FAIL500 please", CTX)
    assert len(server.requests) == before + 1  # max_retries=0: one attempt


async def test_retries_are_honoured(fake: Fake, backend: Make) -> None:
    server, url = fake
    screen = HarmScreen(backend=backend(url, max_retries=1))
    await screen.load()
    before = len(server.requests)
    with pytest.raises(ScreenError):
        await screen.screen("FAIL500 again", CTX)
    assert len(server.requests) == before + 2


async def test_timeout_raises_screen_error_promptly(fake: Fake, backend: Make) -> None:
    _, url = fake
    screen = HarmScreen(backend=backend(url, timeout=0.3))
    await screen.load()
    start = time.monotonic()
    with pytest.raises(ScreenError, match="Timeout"):
        await screen.screen("answer SLOWLY", CTX)
    assert time.monotonic() - start < 1.8


async def test_missing_api_key_fails_at_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        await OpenAIModerationBackend().load()


@pytest.mark.parametrize("kw", [{"timeout": 0}, {"max_retries": -1}])
def test_invalid_options_fail_at_construction(kw: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        OpenAIModerationBackend(**kw)  # type: ignore[arg-type]
