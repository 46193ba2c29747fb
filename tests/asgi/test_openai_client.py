"""The real ``openai`` client, sync and async, stream and not, against uvicorn on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from aiguard import AIGuardMiddleware
from examples.chatbot import ScriptedModel, build_app, scripted_answer
from tests.asgi.harness import make_policy
from tests.servers import serve

DISCLOSURE = "You are chatting with an AI, not a person."
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]
ANSWER = scripted_answer(QUESTION)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("oa")
    app = AIGuardMiddleware(build_app(ScriptedModel(delay=0.001)), policy=make_policy(Path(tmp)))
    with serve(app) as url:
        yield url + "/v1"


def test_sync_non_stream(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    raw = client.chat.completions.with_raw_response.create(model="x", messages=QUESTION)  # type: ignore[arg-type]
    out = raw.parse()
    content = out.choices[0].message.content or ""
    assert content.startswith(DISCLOSURE) and content.endswith(ANSWER)
    assert raw.headers["ai-disclosure"].startswith("mode=machine-generated")
    extra = out.model_extra or {}
    assert extra["aiguard"]["message_id"] == raw.headers["x-aiguard-message-id"]


def test_sync_stream(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    stream = client.chat.completions.create(model="x", messages=QUESTION, stream=True)  # type: ignore[arg-type]
    chunks = list(stream)
    content = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert content.startswith(DISCLOSURE) and content.endswith(ANSWER)
    assert (chunks[0].model_extra or {})["aiguard"]["ai_generated"] is True
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_async_non_stream_and_stream(base_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="unused", max_retries=0)
    out = await client.chat.completions.create(model="x", messages=QUESTION)  # type: ignore[arg-type]
    assert (out.choices[0].message.content or "").startswith(DISCLOSURE)
    stream = await client.chat.completions.create(model="x", messages=QUESTION, stream=True)  # type: ignore[arg-type]
    parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(parts).startswith(DISCLOSURE)
    assert len(parts) > 10  # token by token, not one blob
    await client.close()


def test_follow_up_turn_has_no_human_disclosure(base_url: str) -> None:
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    history = [
        *QUESTION,
        {"role": "assistant", "content": "Paris."},
        {"role": "user", "content": "hello"},
    ]
    out = client.chat.completions.create(model="x", messages=history)  # type: ignore[arg-type]
    assert not (out.choices[0].message.content or "").startswith(DISCLOSURE)


pytestmark = pytest.mark.anyio
