"""The llm backend with LangChain fake chat models (real message objects), and the parser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import (
    FakeListChatModel,
    GenericFakeChatModel,
)
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult

from aiguard.errors import ConfigError, ScreenError
from aiguard.policy.prompts import Catalogue
from aiguard.screens.base import ScreenContext, Verdict
from aiguard.screens.harm import HarmScreen, build_harm_screen
from aiguard.screens.harm._parse import VerdictParseError, parse_verdict
from aiguard.screens.harm.llm import LLMJudgeBackend
from tests.screens.harm.fake_openai import FakeOpenAI
from tests.servers import serve

CTX = ScreenContext()

PARSED = [
    (
        '{"flagged": true, "categories": {"hate": 0.92, "violence": 0.1}}',
        {"hate": 0.92, "violence": 0.1},
    ),
    ('```json\n{"categories": {"self-harm": 0.8}}\n```', {"self-harm": 0.8}),
    (
        'Sure! Here is my verdict: {"hate": true, "harassment": false} Hope that helps.',
        {"hate": 1.0},
    ),
    ('{"categories": [{"category": "sexual/minors", "score": 0.99}]}', {"sexual/minors": 0.99}),
    (
        '{"category_scores": {"self_harm_intent": 0.7, "illicit/violent": "0.6"}}',
        {"self-harm": 0.7, "illicit": 0.6},
    ),
    ('{"categories": {"violence": 85}}', {"violence": 0.85}),  # percentages
    ('{"flagged": false}', {}),
    ('{"flagged": false, "categories": {}}', {}),
    ("safe", {}),
    ("unsafe\nS10", {"hate": 1.0}),
    ("unsafe\nS1,S11", {"violence": 1.0, "self-harm": 1.0}),
    ("unsafe\nS4", {"sexual/minors": 1.0}),
    ("unsafe\nS9", {"illicit": 1.0, "violence": 1.0}),
    ("unsafe\nS7", {}),  # privacy: the pii screen's business, nothing here
    ('{"note": "x"} then {"categories": {"hate": 0.7}}', {"hate": 0.7}),  # first usable object
]


@pytest.mark.parametrize(("raw", "expected"), PARSED)
def test_parse_verdict(raw: str, expected: dict[str, float]) -> None:
    scores = parse_verdict(raw)
    assert {k: v for k, v in scores.items() if v} == pytest.approx(expected)
    assert len(scores) == 7


@pytest.mark.parametrize("raw", ["", "I think it is fine.", "unsafe", '{"foo": 1}', "{broken"])
def test_parse_verdict_rejects_replies_without_a_verdict(raw: str) -> None:
    with pytest.raises(VerdictParseError):
        parse_verdict(raw)


class RecordingChatModel(BaseChatModel):
    """A real BaseChatModel that records the messages it receives and answers a fixed reply."""

    reply: str = '{"categories": {"harassment": 0.9}}'
    seen: list[list[BaseMessage]]

    @property
    def _llm_type(self) -> str:
        return "recording"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.seen.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=self.reply))])


def screen_for(model: BaseChatModel) -> HarmScreen:
    return build_harm_screen({"backend": "llm"}, chat_model=model)


@pytest.mark.anyio
async def test_prompt_comes_from_the_catalogue_and_answer_is_fenced() -> None:
    model = RecordingChatModel(seen=[])
    screen = screen_for(model)
    await screen.load()
    result = await screen.screen("you absolute clown", CTX)
    assert result.verdict is Verdict.BLOCK
    assert [s.label for s in result.spans] == ["harassment"]
    system, human = model.seen[0]
    assert isinstance(system, SystemMessage) and isinstance(human, HumanMessage)
    assert system.content == Catalogue().text("harm_judge", "en").text
    assert human.content == "<answer>\nyou absolute clown\n</answer>"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("reply", "verdict", "labels"),
    [
        (AIMessage(content="unsafe\nS10"), Verdict.BLOCK, ["hate"]),
        (AIMessage(content="safe"), Verdict.ALLOW, []),
        (
            AIMessage(content=[{"type": "text", "text": '{"categories": {"violence": 0.9}}'}]),
            Verdict.BLOCK,
            ["violence"],
        ),
        (AIMessage(content='{"categories": {"sexual": 0.3}}'), Verdict.ALLOW, []),
    ],
)
async def test_generic_fake_model_replies(
    reply: AIMessage, verdict: Verdict, labels: list[str]
) -> None:
    screen = screen_for(GenericFakeChatModel(messages=iter([reply])))
    await screen.load()
    result = await screen.screen("some answer", CTX)
    assert result.verdict is verdict
    assert [s.label for s in result.spans] == labels


@pytest.mark.anyio
async def test_unparseable_reply_raises_screen_error() -> None:
    screen = screen_for(FakeListChatModel(responses=["I'd rather not say."]))
    await screen.load()
    with pytest.raises(ScreenError, match="VerdictParseError"):
        await screen.screen("some answer", CTX)


def test_llm_backend_requires_a_chat_model() -> None:
    with pytest.raises(ConfigError, match="chat_model"):
        build_harm_screen({"backend": "llm"})


@pytest.fixture
def fake_server() -> Iterator[tuple[FakeOpenAI, str]]:
    pytest.importorskip(
        "langchain_openai", reason="langchain-openai is not installed (optional, not a dependency)"
    )
    server = FakeOpenAI()
    with serve(server.app, lifespan="off") as url:
        yield server, f"{url}/v1"


@pytest.mark.anyio
async def test_chat_openai_against_fake_server(fake_server: tuple[FakeOpenAI, str]) -> None:
    import langchain_openai  # type: ignore[import-not-found, unused-ignore]

    server, url = fake_server
    server.chat_reply = '{"flagged": true, "categories": {"hate": 0.88}}'
    model = langchain_openai.ChatOpenAI(
        model="gpt-fake", api_key="sk-test", base_url=url, max_retries=0
    )
    screen = HarmScreen(backend=LLMJudgeBackend(model))
    await screen.load()
    result = await screen.screen("an answer", CTX)
    assert [s.label for s in result.spans] == ["hate"]
    assert server.requests[-1]["body"]["messages"][0]["role"] == "system"
