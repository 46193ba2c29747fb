"""aiguard for LangChain: wrap a runnable so its answers disclose AI and are screened.

``guard_runnable(chat_model_or_chain, policy=policy)`` returns a :class:`GuardedRunnable` that
behaves like the wrapped runnable (``invoke``/``ainvoke``/``stream``/``astream``/``batch``, in
chains with ``|``) and

* prepends the localized disclosure when the policy's disclosure mode says so;
* screens the answer with the runtime's screener (whole answers, or streamed chunks released by
  the windowed stream screener; a block ends the stream with the localized replacement);
* attaches ``response_metadata["aiguard"]`` to ``AIMessage`` output, the same object the
  middleware adds to JSON answers.

Per-call settings come from ``config["configurable"]``: ``conversation_id`` (any string; it
is pseudonymized before use), ``locale`` (a language tag such as ``"de"`` or ``"zh-CN"``) and
``user_id`` (the end user, pseudonymized like the middleware's subject header, so that user can
report the answer through aiguard's ``/reports`` API when reports are enabled).

The wrapped runnable must produce text: ``str`` or an ``AIMessage`` (streams of ``str`` or
``AIMessageChunk``). Anything else raises ``TypeError``: unguarded output is never passed on
silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from langchain_core.callbacks import (
    AsyncCallbackManagerForChainRun,
    CallbackManagerForChainRun,
)
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import ConfigurableFieldSpec, Runnable, RunnableConfig
from langchain_core.runnables.config import patch_config
from langchain_core.runnables.utils import get_unique_config_specs
from langchain_core.utils.pydantic import TypeBaseModel

from aiguard.asgi.identity import new_message_id
from aiguard.errors import ConfigError
from aiguard.policy.loading import load_policy
from aiguard.policy.models import Policy
from aiguard.policy.prompts import Text
from aiguard.runtime import Runtime
from aiguard.screens.base import PipelineResult, ScreenContext, StreamScreener, StreamStep
from aiguard.services.message import MessageRecord

T = TypeVar("T")

ROUTE = "langchain"
"""``ScreenContext.route`` of guarded runnables (per-route screen overrides may name it)."""


def guard_runnable(
    runnable: Runnable[Any, Any],
    *,
    policy: Policy | None = None,
    runtime: Runtime | None = None,
) -> GuardedRunnable:
    """Wrap ``runnable`` with aiguard's disclosure and screening.

    Pass ``runtime=`` to share one :class:`~aiguard.Runtime` with an ``AIGuardMiddleware``
    (same screens, same disclosure memory); else ``policy=`` (default: ``load_policy()``).
    """
    if runtime is None:
        runtime = Runtime(policy if policy is not None else load_policy())
    elif policy is not None and policy is not runtime.policy:
        raise ConfigError("guard_runnable: pass policy= or runtime=, not two different policies")
    return GuardedRunnable(runnable, runtime)


class GuardedRunnable(Runnable[Any, Any]):
    """A runnable whose text output is disclosed and screened by aiguard."""

    def __init__(self, bound: Runnable[Any, Any], runtime: Runtime) -> None:
        self.bound = bound
        self.runtime = runtime
        self.name = "aiguard"
        # the loop the runtime was started on (by us): its record writer lives there
        self._home: asyncio.AbstractEventLoop | None = None

    # -- what LangChain introspects: the wrapped runnable's types, plus our two settings ---------

    @property
    def InputType(self) -> Any:
        return self.bound.InputType

    @property
    def OutputType(self) -> Any:
        return self.bound.OutputType

    def get_input_schema(self, config: RunnableConfig | None = None) -> TypeBaseModel:
        return self.bound.get_input_schema(config)

    def get_output_schema(self, config: RunnableConfig | None = None) -> TypeBaseModel:
        return self.bound.get_output_schema(config)

    @property
    def config_specs(self) -> list[ConfigurableFieldSpec]:
        return get_unique_config_specs(
            [
                *self.bound.config_specs,
                ConfigurableFieldSpec(
                    id="conversation_id",
                    annotation=str,
                    name="Conversation id",
                    description="Groups answers for aiguard's disclosure schedule.",
                    default="",
                    is_shared=True,
                ),
                ConfigurableFieldSpec(
                    id="user_id",
                    annotation=str,
                    name="User id",
                    description="End user (pseudonymized) whom aiguard's reports API accepts "
                    "reports about this answer from.",
                    default="",
                    is_shared=True,
                ),
                ConfigurableFieldSpec(
                    id="locale",
                    annotation=str,
                    name="Locale",
                    description="Language of aiguard's disclosure and replacement texts.",
                    default="",
                    is_shared=True,
                ),
            ]
        )

    # -- invoke ----------------------------------------------------------------------------------

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self._call_with_config(self._invoke, input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await self._acall_with_config(self._ainvoke, input, config, **kwargs)

    def _invoke(
        self,
        input: Any,
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Any:
        answer = _Answer(self, input, config)
        output = self.bound.invoke(
            input, patch_config(config, callbacks=run_manager.get_child()), **kwargs
        )
        return _bridge.run(answer.whole(output))

    async def _ainvoke(
        self,
        input: Any,
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Any:
        answer = _Answer(self, input, config)
        output = await self.bound.ainvoke(
            input, patch_config(config, callbacks=run_manager.get_child()), **kwargs
        )
        return await answer.whole(output)

    # -- stream ----------------------------------------------------------------------------------

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> Iterator[Any]:
        yield from self._transform_stream_with_config(iter([input]), self._stream, config, **kwargs)

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> AsyncIterator[Any]:
        async def one() -> AsyncIterator[Any]:
            yield input

        async for chunk in self._atransform_stream_with_config(
            one(), self._astream, config, **kwargs
        ):
            yield chunk

    def _stream(
        self,
        inputs: Iterator[Any],
        run_manager: CallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> Iterator[Any]:
        input = next(inputs)
        answer = _Answer(self, input, config)
        child = patch_config(config, callbacks=run_manager.get_child())
        # closing() stops the model as soon as a block ends the answer
        with contextlib.closing(self.bound.stream(input, child, **kwargs)) as pieces:  # type: ignore[type-var]
            for piece in pieces:
                out, done = _bridge.run(answer.push(piece))
                yield from out
                if done:
                    return
        yield from _bridge.run(answer.finish())

    async def _astream(
        self,
        inputs: AsyncIterator[Any],
        run_manager: AsyncCallbackManagerForChainRun,
        config: RunnableConfig,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        input = await anext(inputs)
        answer = _Answer(self, input, config)
        child = patch_config(config, callbacks=run_manager.get_child())
        pieces = self.bound.astream(input, child, **kwargs)
        try:
            async for piece in pieces:
                out, done = await answer.push(piece)
                for item in out:
                    yield item
                if done:
                    return
        finally:
            # stop the model as soon as a block ends the answer
            close = getattr(pieces, "aclose", None)
            if close is not None:
                await close()
        for item in await answer.finish():
            yield item

    # -- lifecycle -------------------------------------------------------------------------------

    async def _ensure_started(self) -> None:
        if not self.runtime.started:
            await self.runtime.ensure_started()
            if self._home is None:
                self._home = asyncio.get_running_loop()

    def _add_record(self, record: MessageRecord) -> None:
        records = self.runtime.records
        if records is None:
            return
        home = self._home
        if home is None or home is asyncio.get_running_loop():
            records.add(record)
        elif not home.is_closed():
            home.call_soon_threadsafe(records.add, record)

    async def aclose(self) -> None:
        """Stop the runtime (storage, workers) if this wrapper's calls started it.

        A runtime started elsewhere (e.g. by ``AIGuardMiddleware`` on ASGI lifespan) is left to
        its owner. The stop runs on the loop the runtime was started on.
        """
        home = self._home
        if home is None or not self.runtime.started:
            return
        if home is asyncio.get_running_loop() or home.is_closed():
            await self.runtime.stop()
        else:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.runtime.stop(), home))
        self._home = None

    def close(self) -> None:
        """Sync :meth:`aclose` (after sync ``invoke``/``stream`` calls)."""
        _bridge.run(self.aclose())


class _Answer:
    """Disclosure and screening state for one answer; its async methods run on one loop."""

    def __init__(self, guard: GuardedRunnable, input: Any, config: RunnableConfig) -> None:
        self.guard = guard
        self.rt = runtime = guard.runtime
        configurable: Mapping[str, Any] = config.get("configurable") or {}
        self.message_id = new_message_id()
        self.created = time.time()
        pz = runtime.pseudonymizer
        raw_conv = configurable.get("conversation_id")
        # without an id every answer is a conversation of its own: disclosed, never skipped
        self.conversation_id = pz.conversation(
            "lc:" + str(raw_conv) if raw_conv else "msg:" + self.message_id
        )
        # the same pseudonym the middleware derives from its subject header, so a report sent
        # through aiguard's API by that user finds this answer
        raw_user = configurable.get("user_id")
        self.subject_id = pz.subject(
            "u:" + str(raw_user) if raw_user else "conv:" + self.conversation_id
        )
        self.model = runtime.policy.model
        self._sent: list[str] = []
        self._recorded = False
        tag = configurable.get("locale") or runtime.policy.locale
        self.locale = runtime.catalogue.resolve(str(tag) if tag else None)
        history = _has_assistant_turn(input)
        # An AI turn in the input proves a follow-up. Its absence proves nothing when the caller
        # names the conversation (prompts often carry no history): then the conversation's
        # memory decides. Without an id, a history-less input is a first answer.
        self.has_assistant_turn = True if history else (None if raw_conv else history)
        self.ctx = ScreenContext(locale=self.locale, route=ROUTE, message_id=self.message_id)
        self._disclosure: Text | None = None
        self._shown = False
        self._stream: StreamScreener | None = None
        self._kind: type | None = None  # str or AIMessageChunk, fixed by the first piece
        self._opened = False  # the first piece arrived
        self._disclosed = False  # the first text arrived: the disclosure was decided and sent
        self._finished = False
        self._chunk_id: str | None = None

    async def _start(self) -> None:
        await self.guard._ensure_started()
        self._disclosure = self.rt.disclosure.text(self.locale)

    def _decide(self) -> None:
        """Decide the disclosure once, for an answer that has text.

        Not for text-less answers (a tool-calling step of an agent): the user never sees those,
        and in ``first`` mode they would use up the disclosure meant for the real answer.
        """
        self._shown = self.rt.disclosure.should_show(self.conversation_id, self.has_assistant_turn)
        self._disclosed = True

    @property
    def prefix(self) -> str:
        assert self._disclosure is not None
        if not self._shown:
            return ""
        return self._disclosure.text + self.rt.policy.disclosure.separator

    def metadata(self, result: PipelineResult | None) -> dict[str, Any] | None:
        if not self.rt.policy.disclosure.metadata:
            return None
        assert self._disclosure is not None
        meta = self.rt.disclosure.metadata(self._disclosure, self._shown, self.message_id)
        if result is not None:
            meta["screening"] = result.to_json()
        return meta

    # -- whole answers ---------------------------------------------------------------------------

    async def whole(self, output: Any) -> Any:
        if isinstance(output, str):
            text, others = output, None
        elif isinstance(output, AIMessage):
            text, others = _split(output.content)
        else:
            raise TypeError(_unsupported(output))
        await self._start()
        result: PipelineResult | None = None
        screener = self.rt.screener
        if text:
            self._decide()
            if screener is not None:
                result = await screener.screen(text, self.ctx)
                text = result.text
            text = self.prefix + text
            self._sent.append(text)
        if isinstance(output, AIMessage):
            self._note_model(output)
        self._record(result, streamed=False)
        if isinstance(output, str):
            return text
        update: dict[str, Any] = {"content": _join(text, others)}
        meta = self.metadata(result)
        if meta is not None:
            update["response_metadata"] = {**output.response_metadata, "aiguard": meta}
        return output.model_copy(update=update)

    # -- streams ---------------------------------------------------------------------------------

    async def push(self, piece: Any) -> tuple[list[Any], bool]:
        """Outputs for one streamed piece, and whether the answer ended (blocked)."""
        if isinstance(piece, str):
            kind: type = str
            text, others, last = piece, None, False
        elif isinstance(piece, AIMessage):
            kind = AIMessageChunk
            text, others = _split(piece.content)
            last = isinstance(piece, AIMessageChunk) and piece.chunk_position == "last"
        else:
            raise TypeError(_unsupported(piece))
        out: list[Any] = []
        if not self._opened:
            await self._open(kind, piece)
        elif kind is not self._kind:
            raise TypeError("aiguard: a stream mixed str and message chunks")
        if text and not self._disclosed:
            self._disclose(out)
        if isinstance(piece, AIMessage):
            self._note_model(piece)
        step = await self._push(text)
        if step.blocked:
            out.append(self._blocked_chunk(step.release))
            return out, True
        release = step.release
        result: PipelineResult | None = None
        if last:  # the model's final chunk: nothing may follow it, so finish the screening here
            end = await self._finish()
            release += end.release
            result = self._result() if self._disclosed else None
            if end.blocked:
                out.append(self._blocked_chunk(release))
                return out, True
        self._sent.append(release)
        if last:
            self._record(result, streamed=True)
        if kind is str:
            if release:
                out.append(release)
            return out, False
        assert isinstance(piece, AIMessage)
        chunk = _as_chunk(piece, _join(release, others))
        if result is not None:
            chunk = _with_screening(chunk, result)
        if release or others or _carries_more_than_text(chunk):
            out.append(chunk)
        return out, False

    async def finish(self) -> list[Any]:
        """After the model's stream ended: release what the screener still holds."""
        if not self._disclosed or self._finished:
            return []  # no text at all (empty, or tool calls only): nothing to disclose
        step = await self._finish()
        if step.blocked:
            return [self._blocked_chunk(step.release)]
        result = self._result()
        self._sent.append(step.release)
        self._record(result, streamed=True)
        if self._kind is str:
            return [step.release] if step.release else []
        if not step.release and result is None:
            return []
        chunk = AIMessageChunk(content=step.release, id=self._chunk_id)
        return [_with_screening(chunk, result) if result is not None else chunk]

    async def _open(self, kind: type, piece: Any) -> None:
        await self._start()
        self._kind = kind
        self._opened = True
        screener = self.rt.screener
        self._stream = screener.stream(self.ctx) if screener is not None else None
        if kind is not str:
            self._chunk_id = piece.id

    def _disclose(self, out: list[Any]) -> None:
        """Before the first text: the disclosure (and for messages, the metadata) chunk."""
        self._decide()
        prefix = self.prefix
        self._sent.append(prefix)
        if self._kind is str:
            if prefix:
                out.append(prefix)
            return
        meta = self.metadata(None)
        if prefix or meta is not None:
            # the first chunk carries the disclosure object; the last adds "screening" to it,
            # so chunks summed with + merge into the middleware's aiguard object
            out.append(
                AIMessageChunk(
                    content=prefix,
                    id=self._chunk_id,
                    response_metadata={"aiguard": meta} if meta is not None else {},
                )
            )

    def _note_model(self, message: AIMessage) -> None:
        name = message.response_metadata.get("model_name") or message.response_metadata.get("model")
        if isinstance(name, str) and name:
            self.model = name

    def _record(self, result: PipelineResult | None, *, streamed: bool) -> None:
        """Hand the answer to the record writer, so it can be reported (once per answer)."""
        if self._recorded or not self._disclosed or self.rt.records is None:
            return  # text-less answers (tool calls) are not shown to anyone: nothing to report
        self._recorded = True
        assert self._disclosure is not None
        self.guard._add_record(
            MessageRecord(
                message_id=self.message_id,
                conversation_id=self.conversation_id,
                subject_id=self.subject_id,
                route=ROUTE,
                model=self.model,
                locale=self.locale,
                status=200,
                streamed=streamed,
                disclosure=self._disclosure.ref() if self._shown else None,
                verdict=result.verdict.name.lower() if result is not None else "unscreened",
                screening=result.to_json() if result is not None else {},
                answer="".join(self._sent),
                created_at=self.created,
            )
        )

    async def _push(self, text: str) -> StreamStep:
        if self._stream is None or not text:
            return StreamStep(text)
        return await self._stream.push(text)

    async def _finish(self) -> StreamStep:
        self._finished = True
        if self._stream is None:
            return StreamStep("")
        return await self._stream.finish()

    def _result(self) -> PipelineResult | None:
        return self._stream.result() if self._stream is not None else None

    def _blocked_chunk(self, release: str) -> Any:
        self._finished = True
        self._sent.append(release)
        result = self._result()
        self._record(result, streamed=True)
        if self._kind is str:
            return release
        chunk = AIMessageChunk(
            content=release,
            id=self._chunk_id,
            response_metadata={"finish_reason": "content_filter"},
            chunk_position="last",
        )
        return _with_screening(chunk, result) if result is not None else chunk


# -- content helpers ---------------------------------------------------------------------------


def _split(content: str | list[Any]) -> tuple[str, list[Any] | None]:
    """The text of message content, and its non-text blocks (None for plain string content)."""
    if isinstance(content, str):
        return content, None
    texts: list[str] = []
    others: list[Any] = []
    for block in content:
        if isinstance(block, str):
            texts.append(block)
        elif (
            isinstance(block, dict)
            and block.get("type") == "text"
            and isinstance(block.get("text"), str)
        ):
            texts.append(block["text"])
        else:
            others.append(block)  # tool use, images, reasoning: kept, not screened
    return "".join(texts), others


def _join(text: str, others: list[Any] | None) -> str | list[Any]:
    if others is None:
        return text
    blocks: list[Any] = [{"type": "text", "text": text}] if text else []
    return [*blocks, *others]


def _as_chunk(piece: AIMessage, content: str | list[Any]) -> AIMessageChunk:
    if isinstance(piece, AIMessageChunk):
        return piece.model_copy(update={"content": content})
    return AIMessageChunk(
        content=content,
        id=piece.id,
        additional_kwargs=piece.additional_kwargs,
        response_metadata=piece.response_metadata,
        usage_metadata=piece.usage_metadata,
        tool_call_chunks=[
            {"name": tc["name"], "args": json.dumps(tc["args"]), "id": tc["id"], "index": i}
            for i, tc in enumerate(piece.tool_calls)
        ],
    )


def _carries_more_than_text(chunk: AIMessageChunk) -> bool:
    return bool(
        chunk.tool_call_chunks
        or chunk.usage_metadata
        or chunk.response_metadata
        or chunk.additional_kwargs
        or chunk.chunk_position
    )


def _with_screening(chunk: AIMessageChunk, result: PipelineResult) -> AIMessageChunk:
    meta = {**chunk.response_metadata, "aiguard": {"screening": result.to_json()}}
    return chunk.model_copy(update={"response_metadata": meta})


def _unsupported(output: Any) -> str:
    return (
        f"aiguard can only guard runnables that produce str or AIMessage output, got "
        f"{type(output).__name__}; wrap the model, not a parser that turns its text into data"
    )


def _has_assistant_turn(input: Any) -> bool | None:
    """Whether the conversation sent to the model already holds an answer (None: unknown)."""
    if isinstance(input, PromptValue):
        input = input.to_messages()
    if isinstance(input, Mapping):
        found = [_has_assistant_turn(v) for v in input.values() if isinstance(v, list)]
        known = [f for f in found if f is not None]
        return any(known) if known else None
    if isinstance(input, BaseMessage):
        input = [input]
    if not isinstance(input, Sequence) or isinstance(input, str):
        return None
    roles = [_role(m) for m in input]
    if not any(r is not None for r in roles):
        return None
    return any(r in ("ai", "assistant") for r in roles)


def _role(message: Any) -> str | None:
    if isinstance(message, BaseMessage):
        return message.type
    if isinstance(message, Mapping) and isinstance(message.get("role"), str):
        return str(message["role"])
    if isinstance(message, tuple) and len(message) == 2 and isinstance(message[0], str):
        return message[0]
    return None


# -- running async work from sync calls --------------------------------------------------------


class _LoopThread:
    """One private event loop on a daemon thread for sync ``invoke``/``stream``.

    The screens are async; a sync caller may or may not be inside an event loop of its own,
    so the async work runs here and the caller waits. One loop for the process keeps the
    screens' per-loop state (thread limiters, locks) in one place.
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("aiguard: sync invoke/stream called on aiguard's own loop")
        future = asyncio.run_coroutine_threadsafe(coro, self._ensure())
        return future.result()

    def _ensure(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="aiguard-langchain", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop


_bridge = _LoopThread()
