"""guard_runnable with LangChain's fake chat models and small deterministic screens."""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator, Iterator
from functools import reduce
from pathlib import Path
from typing import Any

import anyio
import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import FakeListChatModel, GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable, RunnableGenerator, RunnableLambda

from aiguard import Runtime
from aiguard.errors import ConfigError
from aiguard.integrations.langchain import GuardedRunnable, guard_runnable
from aiguard.screens.pipeline import ScreenPipeline
from tests.asgi.harness import make_policy
from tests.asgi.test_screened_responses import BombScreen, EmailScreen

pytestmark = pytest.mark.anyio

DISCLOSURE = "You are chatting with an AI, not a person."
BLOCKED = "This answer was withheld"
ANSWER = "Paris is the capital of France. Mail paris@example.org for more."
REDACTED = "Paris is the capital of France. Mail [EMAIL] for more."
HARMFUL = ["Sure. ", "To make a ", "bomb ", "you ", "need ", *["things. "] * 30]


def runtime(tmp_path: Path, *, screens: bool = True, **kw: Any) -> Runtime:
    if screens:
        kw["screening"] = {"enabled": True, "screens": ["pii", "harm"]}
    policy = make_policy(tmp_path, **kw)
    rt = Runtime(policy)
    if screens:
        rt.screener = ScreenPipeline(policy, rt.catalogue, [EmailScreen(), BombScreen()])
    return rt


def model(*answers: str) -> GenericFakeChatModel:
    return GenericFakeChatModel(messages=iter(answers or [ANSWER]))


def conv(cid: str | None = None, **extra: str) -> dict[str, Any]:
    configurable = {**({"conversation_id": cid} if cid else {}), **extra}
    return {"configurable": configurable}


def total(chunks: list[Any]) -> Any:
    return reduce(operator.add, chunks)


def token_source(tokens: list[str], produced: list[str]) -> Runnable[Any, str]:
    """A runnable streaming str tokens, noting how far the model got."""

    def gen(_: Iterator[Any]) -> Iterator[str]:
        for tok in tokens:
            produced.append(tok)
            yield tok

    async def agen(_: AsyncIterator[Any]) -> AsyncIterator[str]:
        for tok in tokens:
            produced.append(tok)
            await anyio.sleep(0)
            yield tok

    return RunnableGenerator(gen, agen)


# -- invoke --------------------------------------------------------------------------------------


def test_invoke_discloses_screens_and_attaches_metadata(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    out = guard_runnable(model(), runtime=rt).invoke("What is the capital of France?")
    assert isinstance(out, AIMessage)
    assert out.content == DISCLOSURE + out.content[len(DISCLOSURE) :]
    assert isinstance(out.content, str) and out.content.endswith("\n\n" + REDACTED)
    meta = out.response_metadata["aiguard"]
    text = rt.disclosure.text("en")
    expected = rt.disclosure.metadata(text, True, meta["message_id"])
    assert {k: v for k, v in meta.items() if k != "screening"} == expected
    assert meta["screening"]["verdict"] == "redact"
    assert meta["screening"]["categories"] == ["EMAIL_ADDRESS"]


async def test_ainvoke_matches_invoke(tmp_path: Path) -> None:
    out = await guard_runnable(model(), runtime=runtime(tmp_path)).ainvoke("q")
    assert isinstance(out.content, str)
    assert out.content.startswith(DISCLOSURE) and out.content.endswith(REDACTED)
    assert out.response_metadata["aiguard"]["disclosure"]["shown"] is True


def test_blocked_whole_answer_is_replaced(tmp_path: Path) -> None:
    out = guard_runnable(model("".join(HARMFUL)), runtime=runtime(tmp_path)).invoke("q")
    assert "bomb" not in out.content and BLOCKED in out.content
    assert out.response_metadata["aiguard"]["screening"]["verdict"] == "block"


def test_follow_up_turn_is_not_disclosed_again(tmp_path: Path) -> None:
    guarded = guard_runnable(model(), runtime=runtime(tmp_path))
    history = [HumanMessage("hi"), AIMessage("Hello."), HumanMessage("capital?")]
    out = guarded.invoke(history)
    assert out.content == REDACTED
    assert out.response_metadata["aiguard"]["disclosure"]["shown"] is False
    # OpenAI-style dicts and (role, text) tuples count too
    assert (
        guard_runnable(model(), runtime=runtime(tmp_path))
        .invoke([("user", "a"), ("assistant", "b"), ("user", "c")])
        .content
        == REDACTED
    )


def test_conversation_id_drives_first_mode_when_the_input_has_no_history(
    tmp_path: Path,
) -> None:
    guarded = guard_runnable(model(ANSWER, ANSWER, ANSWER, ANSWER), runtime=runtime(tmp_path))
    first = guarded.invoke("q", conv("c-1"))
    again = guarded.invoke("q", conv("c-1"))
    other = guarded.invoke("q", conv("c-2"))
    anonymous = guarded.invoke("q")  # no id: a conversation of its own, disclosed
    assert [m.content.startswith(DISCLOSURE) for m in (first, again, other, anonymous)] == [
        True,
        False,
        True,
        True,
    ]


def test_conversation_id_counts_when_the_prompt_carries_no_history(tmp_path: Path) -> None:
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    chain = prompt | guard_runnable(model(ANSWER, ANSWER, ANSWER), runtime=runtime(tmp_path))
    first = chain.invoke({"question": "a"}, conv("c-1"))
    again = chain.invoke({"question": "b"}, conv("c-1"))
    unnamed = chain.invoke({"question": "c"})
    assert [m.content.startswith(DISCLOSURE) for m in (first, again, unnamed)] == [
        True,
        False,
        True,
    ]


def test_interval_mode_and_locale(tmp_path: Path) -> None:
    rt = runtime(tmp_path, disclosure={"mode": "every"})
    guarded = guard_runnable(model(ANSWER, "".join(HARMFUL)), runtime=rt)
    out = guarded.invoke("q", conv("c", locale="de-AT"))
    assert out.content.startswith("Sie chatten mit einer KI")
    assert out.response_metadata["aiguard"]["disclosure"]["locale"] == "de"
    blocked = guarded.invoke("q", conv("c", locale="de"))
    assert "Diese Antwort wurde zurückgehalten" in blocked.content


def test_str_runnable_and_chains(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    out = guard_runnable(RunnableLambda(lambda q: ANSWER), runtime=rt).invoke("q")
    assert out == DISCLOSURE + out[len(DISCLOSURE) :] and out.endswith(REDACTED)
    prompt = ChatPromptTemplate.from_messages([("human", "{question}")])
    chain = prompt | guard_runnable(model(ANSWER, ANSWER), runtime=rt) | StrOutputParser()
    assert chain.invoke({"question": "capital?"}).endswith(REDACTED)
    streamed = "".join(chain.stream({"question": "capital?"}))
    assert streamed.startswith(DISCLOSURE) and streamed.endswith(REDACTED)


def test_unsupported_output_raises(tmp_path: Path) -> None:
    guarded = guard_runnable(
        RunnableLambda(lambda q: {"answer": ANSWER}), runtime=runtime(tmp_path)
    )
    with pytest.raises(TypeError, match="str or AIMessage"):
        guarded.invoke("q")
    with pytest.raises(TypeError, match="str or AIMessage"):
        list(guarded.stream("q"))


def test_list_content_keeps_non_text_blocks(tmp_path: Path) -> None:
    reasoning = {"type": "reasoning", "reasoning": "thinking"}
    message = AIMessage(content=[reasoning, {"type": "text", "text": ANSWER}])
    out = guard_runnable(RunnableLambda(lambda q: message), runtime=runtime(tmp_path)).invoke("q")
    assert out.content[0]["type"] == "text" and out.content[0]["text"].endswith(REDACTED)
    assert out.content[1] == reasoning


# -- stream --------------------------------------------------------------------------------------


def test_stream_disclosure_first_then_screened_chunks(tmp_path: Path) -> None:
    rt = runtime(tmp_path)
    chunks = list(guard_runnable(model(), runtime=rt).stream("q"))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    assert chunks[0].content.startswith(DISCLOSURE)
    assert chunks[0].response_metadata["aiguard"]["ai_generated"] is True
    merged = total(chunks)
    assert merged.content == chunks[0].content + REDACTED
    meta = merged.response_metadata["aiguard"]
    assert meta["message_id"] == chunks[0].response_metadata["aiguard"]["message_id"]
    assert meta["message_id"].startswith("msg_") and meta["message_id"].count("msg_") == 1
    assert meta["screening"]["verdict"] == "redact"
    assert chunks[-1].chunk_position == "last"  # nothing follows the model's last chunk
    assert len(chunks) == 3  # disclosure, then one release per sentence


@pytest.mark.parametrize("split", range(1, 20, 3))
def test_email_split_across_character_chunks(tmp_path: Path, split: int) -> None:
    text = "Hi. " * split + ANSWER
    chunks = list(
        guard_runnable(FakeListChatModel(responses=[text]), runtime=runtime(tmp_path)).stream("q")
    )
    merged = total(chunks)
    assert merged.content.endswith(REDACTED) and "example.org" not in merged.content


async def test_astream_matches_stream(tmp_path: Path) -> None:
    guarded = guard_runnable(model(), runtime=runtime(tmp_path))
    chunks = [c async for c in guarded.astream("q", conv("c-9"))]
    merged = total(chunks)
    assert merged.content.startswith(DISCLOSURE) and merged.content.endswith(REDACTED)
    assert merged.response_metadata["aiguard"]["screening"]["verdict"] == "redact"


def test_stream_releases_before_the_model_finishes(tmp_path: Path) -> None:
    produced: list[str] = []
    tokens = ["First sentence. ", "Second ", "one. ", *["More text. "] * 20]
    seen_at: list[int] = []
    guarded = guard_runnable(token_source(tokens, produced), runtime=runtime(tmp_path))
    out: list[str] = []
    for piece in guarded.stream("q"):
        out.append(piece)
        if "First sentence." in piece and not seen_at:
            seen_at.append(len(produced))
    assert seen_at and seen_at[0] < len(tokens)
    assert "".join(out).startswith(DISCLOSURE) and "".join(out).endswith("More text. ")


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_block_mid_stream_ends_cleanly_and_stops_the_model(tmp_path: Path, mode: str) -> None:
    produced: list[str] = []
    guarded = guard_runnable(token_source(HARMFUL, produced), runtime=runtime(tmp_path))
    out = list(guarded.stream("q")) if mode == "sync" else [c async for c in guarded.astream("q")]
    text = "".join(out)
    assert text.startswith(DISCLOSURE) and "Sure." in text
    assert "bomb" not in text and text.rstrip().endswith(
        BLOCKED + " because it may contain harmful, unlawful or protected content."
    )
    assert len(produced) < len(HARMFUL)


def test_blocked_message_stream_ends_with_content_filter(tmp_path: Path) -> None:
    chunks = list(guard_runnable(model("".join(HARMFUL)), runtime=runtime(tmp_path)).stream("q"))
    last = chunks[-1]
    assert last.response_metadata["finish_reason"] == "content_filter"
    assert last.chunk_position == "last"
    merged = total(chunks)
    assert BLOCKED in merged.content and "bomb" not in merged.content
    assert merged.response_metadata["aiguard"]["screening"]["verdict"] == "block"


def test_without_screens_chunks_flow_one_for_one(tmp_path: Path) -> None:
    rt = runtime(tmp_path, screens=False)
    plain = list(model().stream("q"))
    guarded = list(guard_runnable(model(), runtime=rt).stream("q"))
    assert len(guarded) == len(plain) + 1  # the disclosure chunk, then the model's own
    assert total(guarded).content.endswith(ANSWER)
    assert "screening" not in total(guarded).response_metadata["aiguard"]


# -- plumbing ------------------------------------------------------------------------------------


async def test_sync_calls_work_inside_a_running_loop(tmp_path: Path) -> None:
    guarded = guard_runnable(model(ANSWER, ANSWER), runtime=runtime(tmp_path))
    assert guarded.invoke("q").content.endswith(REDACTED)  # runs on aiguard's helper loop
    assert (await guarded.ainvoke("q")).content.endswith(REDACTED)  # then on this one


def test_batch_and_tracing(tmp_path: Path) -> None:
    class Names(BaseCallbackHandler):
        def __init__(self) -> None:
            self.chains: list[str] = []

        def on_chain_start(self, serialized: Any, inputs: Any, **kw: Any) -> None:
            self.chains.append(kw.get("name") or "")

    names = Names()
    guarded = guard_runnable(model(ANSWER, ANSWER), runtime=runtime(tmp_path))
    outs = guarded.batch(["a", "b"], {"callbacks": [names]})
    assert all(o.content.endswith(REDACTED) for o in outs)
    assert names.chains.count("aiguard") == 2


def test_config_specs_and_types(tmp_path: Path) -> None:
    guarded = guard_runnable(model(), runtime=runtime(tmp_path))
    assert isinstance(guarded, GuardedRunnable)
    assert {s.id for s in guarded.config_specs} >= {"conversation_id", "locale"}
    assert guarded.OutputType is model().OutputType
    with pytest.raises(ConfigError):
        guard_runnable(model(), policy=make_policy(tmp_path), runtime=runtime(tmp_path))


async def test_answers_are_recorded_and_reportable_through_the_api(tmp_path: Path) -> None:
    import httpx
    from starlette.applications import Starlette

    from aiguard import AIGuardMiddleware

    rt = runtime(tmp_path, reports={"enabled": True})
    guarded = guard_runnable(model(ANSWER, ANSWER), runtime=rt)
    out = await guarded.ainvoke("q", conv("c-1", user_id="alice"))
    message_id = out.response_metadata["aiguard"]["message_id"]
    api = AIGuardMiddleware(Starlette(), runtime=rt)  # the web app's middleware, same runtime
    transport = httpx.ASGITransport(app=api)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
            report = {"message_id": message_id, "category": "inaccurate", "comment": "Lyon?"}
            mallory = await http.post(
                "/aiguard/reports", json=report, headers={"x-aiguard-subject": "mallory"}
            )
            assert mallory.status_code == 404  # someone else's answer
            alice = await http.post(
                "/aiguard/reports", json=report, headers={"x-aiguard-subject": "alice"}
            )
            assert alice.status_code == 201, alice.text
        assert rt.records is not None
        stored = await rt.records.get(message_id)
        assert stored is not None and stored["route"] == "langchain"
        assert stored["verdict"] == "redact"
        streamed = total([c async for c in guarded.astream("q", conv("c-2", user_id="bob"))])
        stream_id = streamed.response_metadata["aiguard"]["message_id"]
        record = rt.records.queued(stream_id) or await rt.records.get(stream_id)
        assert record is not None
    finally:
        await guarded.aclose()


def test_tool_call_steps_do_not_use_up_the_first_disclosure(tmp_path: Path) -> None:
    call = {"name": "search", "args": {"q": "capital"}, "id": "call_1", "type": "tool_call"}
    tool_step = AIMessage(content="", tool_calls=[call])
    rt = runtime(tmp_path)
    guarded = guard_runnable(model(tool_step, ANSWER), runtime=rt)  # type: ignore[arg-type]
    step = guarded.invoke("q", conv("agent-1"))
    assert step.content == "" and step.tool_calls[0]["name"] == "search"
    assert step.response_metadata["aiguard"]["disclosure"]["shown"] is False
    final = guarded.invoke("q", conv("agent-1"))
    assert final.content.startswith(DISCLOSURE)

    def tool_chunks(_: Iterator[Any]) -> Iterator[AIMessageChunk]:
        args = '{"q": "capital"}'
        tcc = {"name": "search", "args": args, "id": "c", "index": 0}
        yield AIMessageChunk(content="", tool_call_chunks=[tcc])  # type: ignore[list-item]
        yield AIMessageChunk(content="", chunk_position="last")

    streamed = list(
        guard_runnable(RunnableGenerator(tool_chunks), runtime=rt).stream("q", conv("agent-2"))
    )
    merged = total(streamed)
    assert merged.content == "" and merged.tool_calls[0]["args"] == {"q": "capital"}
    assert "aiguard" not in merged.response_metadata
    later = guard_runnable(model(), runtime=rt).invoke("q", conv("agent-2"))
    assert later.content.startswith(DISCLOSURE)


def test_sync_calls_start_and_close_the_runtime_on_the_helper_loop(tmp_path: Path) -> None:
    rt = runtime(tmp_path, reports={"enabled": True})
    guarded = guard_runnable(model(), runtime=rt)
    out = guarded.invoke("q", conv("c", user_id="alice"))
    assert rt.started and rt.records is not None
    guarded.close()  # flushes the record writer on the loop that owns it
    assert not rt.started
    import sqlite3

    with sqlite3.connect(tmp_path / "aiguard.db") as db:
        rows = db.execute("SELECT message_id, route FROM aiguard_messages").fetchall()
    assert rows == [(out.response_metadata["aiguard"]["message_id"], "langchain")]
