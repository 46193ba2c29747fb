"""Per-request response state machine (model: Starlette's ``GZipResponder``).

Holds ``http.response.start`` until it knows the answer's shape, then:
- complete JSON body: buffer (bounded), rewrite, fix ``Content-Length``;
- event stream: send headers and the disclosure chunk at once, then forward each event as soon
  as it is complete and screened;
- ``text/plain``: same, for raw text streams;
- anything else: headers only.
"""

from __future__ import annotations

import codecs
import logging
import time
from typing import TYPE_CHECKING, Any

from starlette.types import Message, Send

from aiguard.asgi.identity import RequestIdentity, new_message_id
from aiguard.asgi.problem import problem
from aiguard.policy.models import RouteRule
from aiguard.screens.base import (
    AnswerScreener,
    PipelineResult,
    ScreenContext,
    StreamScreener,
    StreamStep,
)
from aiguard.services.disclosure import ai_disclosure_header
from aiguard.services.message import MessageRecord
from aiguard.wire import fieldpath, jsoncodec
from aiguard.wire.openai_chat import chunk as make_chunk
from aiguard.wire.openai_chat import is_chunk, is_completion
from aiguard.wire.sse import SSEDecoder, SSEEvent, encode_event

if TYPE_CHECKING:
    from aiguard.policy.prompts import Text
    from aiguard.runtime import Runtime

log = logging.getLogger("aiguard")

_NO_BODY_STATUS = {204, 205, 304}
_OWN_HEADERS = frozenset({b"ai-disclosure", b"x-aiguard-message-id"})
_OWN_HEADERS_AND_LENGTH = _OWN_HEADERS | {b"content-length"}


class StreamAborted(Exception):
    """Raised into the wrapped app after aiguard ended a stream (a blocked answer)."""


def _dumps(obj: Any) -> str:
    return jsoncodec.dumps(obj).decode("utf-8")


class Responder:
    def __init__(
        self,
        runtime: Runtime,
        send: Send,
        *,
        rule: RouteRule,
        identity: RequestIdentity,
        method: str,
        model: str | None,
        has_assistant_turn: bool | None,
    ) -> None:
        self.rt = runtime
        self._send = send
        self.rule = rule
        self.identity = identity
        self.method = method
        self.model = model or runtime.policy.model
        self.has_assistant_turn = has_assistant_turn
        self.message_id = new_message_id()
        self.created = time.time()
        self.mode = "init"  # init | pass | json | sse | text | done
        self.status = 0
        self._start: Message | None = None
        self._complete = False
        self._body: list[bytes] = []
        self._size = 0
        self._sent_text: list[str] = []
        self._disclosure: Text | None = None
        self._disclosure_shown = False
        self._result: PipelineResult | None = None  # whole-answer result (JSON answers)
        self._stream0: StreamScreener | None = None  # choice 0's screener (streamed answers)
        self._record = False
        self._screener: AnswerScreener | None = runtime.screener
        self._context: ScreenContext | None = None
        # stream state
        self._decoder: SSEDecoder | None = None
        self._text_decoder: codecs.IncrementalDecoder | None = None
        self._streams: dict[int, StreamScreener] = {}
        self._raw: list[bytes] = []  # unscreened stream bytes kept for the record
        self._json_events = False  # a non-OpenAI stream whose events are JSON objects
        self._raw_size = 0
        self._openai = rule.format in ("auto", "openai")
        self._chunk_id = "chatcmpl-" + self.message_id[4:]

    @property
    def _ctx(self) -> ScreenContext:
        if self._context is None:
            self._context = ScreenContext(
                locale=self.identity.locale, route=self.rule.path, message_id=self.message_id
            )
        return self._context

    # -- disclosure and headers -----------------------------------------------------------------

    def _decide_disclosure(self) -> str:
        """The disclosure prefix for this answer ('' when not shown); decided once."""
        if self._disclosure is None:
            dis = self.rt.disclosure
            self._disclosure = dis.text(self.identity.locale)
            self._disclosure_shown = dis.should_show(
                self.identity.conversation_id, self.has_assistant_turn
            )
        if not self._disclosure_shown:
            return ""
        return self._disclosure.text + self.rt.policy.disclosure.separator

    def _metadata(self) -> dict[str, Any]:
        self._decide_disclosure()
        assert self._disclosure is not None
        return self.rt.disclosure.metadata(
            self._disclosure, self._disclosure_shown, self.message_id
        )

    def _guard_headers(
        self, message: Message, *, drop_length: bool = False, length: int | None = None
    ) -> None:
        """Add aiguard's headers in one pass over the raw list (no MutableHeaders scans)."""
        policy = self.rt.policy
        drop = _OWN_HEADERS_AND_LENGTH if (drop_length or length is not None) else _OWN_HEADERS
        vary = b""
        headers: list[tuple[bytes, bytes]] = []
        for key, value in message.get("headers", ()):
            lower = key.lower()
            if lower in drop:
                continue
            if lower == b"vary":
                vary = vary + b", " + value if vary else value
                continue
            headers.append((key, value))
        if policy.disclosure.header:
            value = ai_disclosure_header(policy.provider, self.model, int(self.created))
            headers.append((b"ai-disclosure", value.encode("latin-1")))
        headers.append((b"x-aiguard-message-id", self.message_id.encode("ascii")))
        if self.identity.set_cookie:
            headers.append((b"set-cookie", self.identity.set_cookie.encode("latin-1")))
        if length is not None:
            headers.append((b"content-length", str(length).encode("ascii")))
        if self.mode in ("sse", "text"):
            headers.append((b"x-accel-buffering", b"no"))  # keep proxies from collecting streams
        if not policy.locale and b"accept-language" not in vary.lower():
            vary = vary + b", Accept-Language" if vary else b"Accept-Language"
        if vary:
            headers.append((b"vary", vary))
        message["headers"] = headers

    # -- ASGI send ------------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        mtype = message["type"]
        if self.mode == "done":
            if mtype == "http.response.body":
                raise StreamAborted
            return
        if mtype == "http.response.start":
            await self._on_start(message)
        elif mtype == "http.response.body":
            if self.mode == "json":
                await self._on_json_body(message)
            elif self.mode == "sse":
                await self._on_sse_body(message)
            elif self.mode == "text":
                await self._on_text_body(message)
            else:
                if not message.get("more_body", False):
                    self._complete = True
                await self._send(message)
        else:
            await self._send(message)

    async def _on_start(self, message: Message) -> None:
        self.status = status = int(message["status"])
        ctype = encoding = ""
        for key, value in message.get("headers", ()):
            lower = key.lower()
            if lower == b"content-type":
                ctype = value.decode("latin-1").lower()
            elif lower == b"content-encoding":
                encoding = value.decode("latin-1").strip().lower()
        guarded = 200 <= status < 300 and status not in _NO_BODY_STATUS
        if not guarded:
            self.mode = "pass"
            await self._send(message)
            return
        self._record = True
        if self.method == "HEAD":
            self.mode = "pass"
        elif encoding not in ("", "identity"):
            log.warning(
                "aiguard: %s answer is %s-encoded; passed through unmodified (mount aiguard "
                "inside compression middleware)",
                self.rule.path,
                encoding,
            )
            self.mode = "pass"
        elif ctype.startswith("text/event-stream"):
            self.mode = "sse"
        elif ctype.startswith("application/json") or "+json" in ctype.split(";")[0]:
            self.mode = "json"
        elif ctype.startswith("text/plain") and _is_utf8(ctype):
            self.mode = "text"
        else:
            self.mode = "pass"
        if self.mode == "json":
            self._start = message  # held until the body is complete
            return
        if self.mode == "pass":
            self._guard_headers(message)
            await self._send(message)
            return
        self._guard_headers(message, drop_length=True)
        await self._send(message)
        if self.mode == "sse":
            self._decoder = SSEDecoder()
            await self._send_sse_opening()
        else:
            self._text_decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            prefix = self._decide_disclosure()
            if prefix:
                self._sent_text.append(prefix)
                await self._body_out(prefix.encode("utf-8"))

    async def _body_out(self, data: bytes, more: bool = True) -> None:
        if not more:
            self._complete = True
        await self._send({"type": "http.response.body", "body": data, "more_body": more})

    # -- JSON -----------------------------------------------------------------------------------

    async def _on_json_body(self, message: Message) -> None:
        chunk = message.get("body", b"")
        self._size += len(chunk)
        self._body.append(chunk)
        if self._size > self.rt.policy.max_body_bytes:
            log.warning(
                "aiguard: %s JSON answer exceeds %d bytes; passed through unmodified",
                self.rule.path,
                self.rt.policy.max_body_bytes,
            )
            await self._release_unmodified(message.get("more_body", False))
            return
        if message.get("more_body", False):
            return
        body = b"".join(self._body)
        self._body = []
        new_body = await self._rewrite_json(body)
        assert self._start is not None
        start = self._start
        if new_body is None:
            self._guard_headers(start)
            await self._send(start)
            await self._body_out(body, more=False)
        else:
            self._guard_headers(start, length=len(new_body))
            await self._send(start)
            await self._body_out(new_body, more=False)
        self.mode = "pass"

    async def _release_unmodified(self, more: bool) -> None:
        assert self._start is not None
        self._guard_headers(self._start)
        await self._send(self._start)
        data = b"".join(self._body)
        self._body = []
        self.mode = "pass"
        await self._body_out(data, more=more)

    async def _rewrite_json(self, body: bytes) -> bytes | None:
        try:
            obj = jsoncodec.loads(body)
        except ValueError:
            log.warning("aiguard: %s answer is not UTF-8 JSON; passed through", self.rule.path)
            return None
        if self._openai and is_completion(obj):
            meta = self._metadata()
            prefix = self._decide_disclosure()
            results: list[dict[str, Any]] = []
            for choice in obj["choices"]:
                msg = choice["message"]
                content = msg.get("content")
                if not isinstance(content, str):
                    continue
                screened = await self._screen(content)
                if screened is not None:
                    content = screened.text
                    results.append(screened.to_json())
                    if screened.blocked:
                        choice["finish_reason"] = "content_filter"
                msg["content"] = prefix + content
                self._sent_text.append(msg["content"])
            if results:
                meta["screening"] = results[0] if len(results) == 1 else results
            if isinstance(obj.get("model"), str):
                self.model = obj["model"]
            if self.rt.policy.disclosure.metadata:
                obj["aiguard"] = meta
            return jsoncodec.dumps(obj)
        if self.rule.format in ("auto", "json"):
            value = fieldpath.get(obj, self.rule.field)
            if not isinstance(value, str):
                return None
            screened = await self._screen(value)
            text = screened.text if screened is not None else value
            text = self._decide_disclosure() + text
            fieldpath.set_(obj, self.rule.field, text)
            self._sent_text.append(text)
            if isinstance(obj, dict) and self.rt.policy.disclosure.metadata:
                meta = self._metadata()
                if screened is not None:
                    meta["screening"] = screened.to_json()
                obj["aiguard"] = meta
            return jsoncodec.dumps(obj)
        return None

    async def _screen(self, text: str) -> PipelineResult | None:
        if self._screener is None or not text:
            return None
        result = await self._screener.screen(text, self._ctx)
        self._result = result
        return result

    # -- event streams --------------------------------------------------------------------------

    def _sse_chunk(self, content: str | None, **kw: Any) -> bytes:
        obj = make_chunk(
            id=self._chunk_id,
            model=self.model or "unknown",
            created=int(self.created),
            content=content,
            **kw,
        )
        return encode_event(_dumps(obj))

    async def _send_sse_opening(self) -> None:
        prefix = self._decide_disclosure()
        meta = self._metadata() if self.rt.policy.disclosure.metadata else None
        if not self._openai:
            if not prefix and meta is None:
                return
            payload: dict[str, Any] = {}
            if prefix:
                payload = _nest(self.rule.field, prefix)
            if meta is not None:
                payload["aiguard"] = meta
            self._sent_text.append(prefix)
            await self._body_out(encode_event(_dumps(payload)))
            return
        self._sent_text.append(prefix)
        extra = {"aiguard": meta} if meta is not None else None
        await self._body_out(self._sse_chunk(prefix, role="assistant", extra=extra))

    async def _on_sse_body(self, message: Message) -> None:
        assert self._decoder is not None
        more = message.get("more_body", False)
        if self._screener is None:
            await self._forward_sse(message, more)
            return
        events = self._decoder.feed(message.get("body", b""))
        if not more:
            events.extend(self._decoder.flush())
        out: list[bytes] = []
        for event in events:
            blocked = await self._sse_event(event, out)
            if blocked:
                await self._body_out(b"".join(out), more=False)
                self.mode = "done"
                return
        if not more:
            blocked = await self._finish_streams(out)
            self.mode = "done"
            await self._body_out(b"".join(out), more=False)
            return
        if out:
            await self._body_out(b"".join(out))

    async def _forward_sse(self, message: Message, more: bool) -> None:
        """Nothing to screen: forward upstream bytes as they are.

        The text is only needed for the message record, so the raw bytes are kept (bounded)
        and decoded once after the stream, not event by event on the way through.
        """
        if self.rt.records is not None and self._raw_size <= self.rt.policy.max_body_bytes:
            chunk = message.get("body", b"")
            self._raw.append(chunk)
            self._raw_size += len(chunk)
        if not more:
            self.mode = "done"
        await self._send(message)

    def _collect_raw(self) -> None:
        if not self._raw:
            return
        assert self._decoder is not None
        events = self._decoder.feed(b"".join(self._raw))
        events.extend(self._decoder.flush())
        self._raw = []
        for event in events:
            if event.data.startswith("{"):
                self._collect_text(event.data)

    def _collect_text(self, data: str) -> None:
        try:
            obj = jsoncodec.loads(data)
        except ValueError:
            return
        if self._openai and is_chunk(obj):
            for choice in obj["choices"]:
                delta = choice.get("delta") if isinstance(choice, dict) else None
                if (
                    isinstance(delta, dict)
                    and isinstance(delta.get("content"), str)
                    and choice.get("index", 0) == 0
                ):
                    self._sent_text.append(delta["content"])
        elif isinstance(obj, dict):
            value = fieldpath.get(obj, self.rule.field)
            if isinstance(value, str):
                self._sent_text.append(value)

    async def _sse_event(self, event: SSEEvent, out: list[bytes]) -> bool:
        """Translate one upstream event into zero or more output events; True = blocked."""
        if event.comment is not None:
            out.append(event.encode())
            return False
        data = event.data
        if data == "[DONE]":
            if await self._finish_streams(out):
                return True
            out.append(event.encode())
            return False
        try:
            obj = jsoncodec.loads(data)
        except ValueError:
            obj = None
        if self._openai and is_chunk(obj):
            return await self._openai_chunk(obj, event, out)
        if isinstance(obj, dict) and not self._openai:
            value = fieldpath.get(obj, self.rule.field)
            if isinstance(value, str):
                self._json_events = True
                step = await self._push(0, value)
                if step.blocked:
                    out.append(self._tail(0, step.release, blocked=True))
                    return True
                if step.release:
                    fieldpath.set_(obj, self.rule.field, step.release)
                    out.append(encode_event(_dumps(obj), event=event.event, id=event.id))
                return False
        if obj is None and not self._openai and event.event in ("", "message"):
            step = await self._push(0, data)
            if step.release:
                out.append(encode_event(step.release, event=event.event, id=event.id))
            return step.blocked
        out.append(event.encode())
        return False

    async def _openai_chunk(self, obj: dict[str, Any], event: SSEEvent, out: list[bytes]) -> bool:
        if isinstance(obj.get("model"), str):
            self.model = obj["model"]
        # re-encoded chunks share the id of aiguard's opening chunk: one answer, one id
        obj["id"] = self._chunk_id
        keep = bool(obj.get("usage")) or any(
            k
            not in (
                "id",
                "object",
                "created",
                "model",
                "choices",
                "system_fingerprint",
                "service_tier",
                "usage",
            )
            for k in obj
        )
        finishing: list[int] = []
        for choice in obj["choices"]:
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0) if isinstance(choice.get("index"), int) else 0
            delta = choice.get("delta")
            if isinstance(delta, dict):
                content = delta.get("content")
                if isinstance(content, str) and content:
                    step = await self._push(index, content)
                    if step.blocked:
                        out.append(self._blocked_tail(index, step.release))
                        return True
                    if step.release:
                        delta["content"] = step.release
                        keep = True
                    else:
                        del delta["content"]
                if any(k != "content" for k in delta):
                    keep = True
            if choice.get("finish_reason"):
                finishing.append(index)
                keep = True
                step = await self._finish(index)
                released = delta.get("content", "") if isinstance(delta, dict) else ""
                if step.blocked:
                    if released:  # what this chunk released still goes first
                        out.append(self._sse_chunk(released, index=index))
                    out.append(self._blocked_tail(index, step.release))
                    return True
                if step.release:  # the held-back tail follows this chunk's own text
                    if not isinstance(delta, dict):
                        delta = choice["delta"] = {}
                    delta["content"] = released + step.release
            if choice.get("logprobs"):
                keep = True
        result = self._screening()
        if finishing and result is not None:
            obj["aiguard"] = {"message_id": self.message_id, "screening": result.to_json()}
        if keep:
            out.append(encode_event(_dumps(obj), event=event.event, id=event.id))
        return False

    def _blocked_tail(self, index: int, replacement: str) -> bytes:
        meta: dict[str, Any] = {"message_id": self.message_id}
        result = self._screening()
        if result is not None:
            meta["screening"] = result.to_json()
        return (
            self._sse_chunk(replacement, index=index)
            + self._sse_chunk(
                None, index=index, finish_reason="content_filter", extra={"aiguard": meta}
            )
            + encode_event("[DONE]")
        )

    async def _push(self, index: int, text: str) -> StreamStep:
        if self._screener is None:
            if index == 0:
                self._sent_text.append(text)
            return StreamStep(text)
        stream = self._streams.get(index)
        if stream is None:
            stream = self._streams[index] = self._screener.stream(self._ctx)
        step = await stream.push(text)
        self._note(index, step)
        return step

    async def _finish(self, index: int) -> StreamStep:
        stream = self._streams.pop(index, None)
        if stream is None:
            return StreamStep("")
        step = await stream.finish()
        self._note(index, step, stream)
        return step

    def _note(self, index: int, step: StreamStep, stream: StreamScreener | None = None) -> None:
        if step.release and index == 0:  # the record is of choice 0, like its metadata
            self._sent_text.append(step.release)
        if index == 0 and self._stream0 is None:
            self._stream0 = stream or self._streams.get(0)

    def _screening(self) -> PipelineResult | None:
        """The screening result so far; for streams it is built on demand (it copies text)."""
        if self._stream0 is not None:
            return self._stream0.result()
        return self._result

    def _tail(self, index: int, text: str, *, blocked: bool = False) -> bytes:
        """Held-back text (or a block's replacement) in the shape of this stream's events."""
        if self._openai:
            return (
                self._blocked_tail(index, text) if blocked else self._sse_chunk(text, index=index)
            )
        if self._json_events:
            return encode_event(_dumps(_nest(self.rule.field, text)))
        return encode_event(text)

    async def _finish_streams(self, out: list[bytes]) -> bool:
        for index in sorted(self._streams):
            step = await self._finish(index)
            if step.blocked:
                out.append(self._tail(index, step.release, blocked=True))
                return True
            if step.release:
                out.append(self._tail(index, step.release))
        return False

    # -- text streams ---------------------------------------------------------------------------

    async def _on_text_body(self, message: Message) -> None:
        assert self._text_decoder is not None
        more = message.get("more_body", False)
        text = self._text_decoder.decode(message.get("body", b""), final=not more)
        parts: list[str] = []
        if text:
            step = await self._push(0, text)
            parts.append(step.release)
            if step.blocked:
                self.mode = "done"
                await self._body_out("".join(parts).encode("utf-8"), more=False)
                return
        if not more:
            step = await self._finish(0)
            parts.append(step.release)
            self.mode = "done"
            await self._body_out("".join(parts).encode("utf-8"), more=False)
            return
        data = "".join(parts)
        if data:
            await self._body_out(data.encode("utf-8"))

    # -- failure and completion -----------------------------------------------------------------

    async def upstream_failed(self, exc: BaseException) -> None:
        log.error(
            "aiguard: upstream app failed on %s (message %s): %r",
            self.rule.path,
            self.message_id,
            exc,
        )
        if self._complete:
            return  # the answer was complete (a failing background task, Starlette's 500 page)
        self._record = False
        if self.mode in ("init", "json"):
            self.mode = "done"
            response = problem(
                502, "upstream_error", "The chatbot failed to answer", type(exc).__name__
            )
            await response({"type": "http"}, _no_receive, self._send)
            return
        if self.mode == "sse":
            err = {
                "error": {
                    "message": "upstream stream broke",
                    "type": "upstream_error",
                    "code": "upstream_stream_broken",
                }
            }
            await self._body_out(encode_event(_dumps(err)), more=False)
        elif self.mode in ("text", "pass"):
            await self._body_out(b"", more=False)
        self.mode = "done"

    async def close(self) -> None:
        """After the app returned: end an unterminated stream, then hand over the record."""
        if self.mode == "sse" and self._screener is None:
            self.mode = "done"
            await self._body_out(b"", more=False)
        elif self.mode == "sse" or self.mode == "text":
            out: list[bytes] = []
            if self.mode == "sse":
                assert self._decoder is not None
                for event in self._decoder.flush():
                    if await self._sse_event(event, out):
                        break
                else:
                    await self._finish_streams(out)
            else:
                out.append((await self._finish(0)).release.encode("utf-8"))
            self.mode = "done"
            await self._body_out(b"".join(out), more=False)
        elif self.mode == "json" and self._start is not None:
            await self._release_unmodified(False)
        if self._record and self.rt.records is not None:
            self._collect_raw()
            self.rt.records.add(self.record())

    def record(self) -> MessageRecord:
        result = self._screening()
        return MessageRecord(
            message_id=self.message_id,
            conversation_id=self.identity.conversation_id,
            subject_id=self.identity.subject_id,
            route=self.rule.path,
            model=self.model,
            locale=self.identity.locale,
            status=self.status,
            streamed=self._decoder is not None or self._text_decoder is not None,
            disclosure=self._disclosure.ref()
            if self._disclosure and self._disclosure_shown
            else None,
            verdict=result.verdict.name.lower() if result is not None else "unscreened",
            screening=result.to_json() if result is not None else {},
            answer="".join(self._sent_text),
            created_at=self.created,
        )


def _nest(path: str, value: str) -> dict[str, Any]:
    """``{"data": {"reply": value}}`` for ``data.reply``: the shape the field path reads."""
    out: dict[str, Any] = {}
    node = out
    steps = path.split(".")
    for step in steps[:-1]:
        node = node.setdefault(step, {})
    node[steps[-1]] = value
    return out


def _is_utf8(ctype: str) -> bool:
    _, _, params = ctype.partition(";")
    for p in params.split(";"):
        k, _, v = p.strip().partition("=")
        if k.lower() == "charset":
            return v.strip().strip('"').lower() in ("utf-8", "utf8")
    return True


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
