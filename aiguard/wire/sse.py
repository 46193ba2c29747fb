"""Incremental Server-Sent Events codec (WHATWG HTML "event stream" parsing rules).

``SSEDecoder.feed(bytes)`` returns the events completed by those bytes; partial lines and partial
UTF-8 sequences are carried over, so input may be split at any byte. Only complete events are
returned; ``flush()`` at end of stream returns an event left without its terminating blank line.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass


@dataclass(slots=True, eq=True)
class SSEEvent:  # not frozen: built once per event on the hot path, never mutated
    data: str
    event: str = ""
    id: str | None = None
    retry: int | None = None
    comment: str | None = None  # a ":" line (keep-alive); never carries fields

    def encode(self) -> bytes:
        if self.comment is not None:
            return b":" + self.comment.encode("utf-8") + b"\n\n"
        return encode_event(self.data, event=self.event, id=self.id, retry=self.retry)


def encode_event(
    data: str, *, event: str = "", id: str | None = None, retry: int | None = None
) -> bytes:
    parts: list[str] = []
    if event:
        parts.append(f"event: {event}\n")
    if id is not None:
        parts.append(f"id: {id}\n")
    if retry is not None:
        parts.append(f"retry: {retry}\n")
    for line in data.split("\n"):
        parts.append(f"data: {line}\n")
    parts.append("\n")
    return "".join(parts).encode("utf-8")


class SSEDecoder:
    __slots__ = ("_data", "_decoder", "_event", "_id", "_line", "_pending_cr", "_retry", "_seen")

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._line = ""  # carried partial line
        self._pending_cr = False  # last chunk ended in "\r": a following "\n" belongs to it
        self._data: list[str] = []
        self._event = ""
        self._id: str | None = None
        self._retry: int | None = None
        self._seen = False  # any field seen since the last dispatch

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        text = self._decoder.decode(chunk)
        return self._lines(text)

    def flush(self) -> list[SSEEvent]:
        events = self._lines(self._decoder.decode(b"", final=True))
        if self._line:
            self._field(self._line)
            self._line = ""
        if self._seen:
            ev = self._dispatch()
            if ev is not None:
                events.append(ev)
        return events

    def _lines(self, text: str) -> list[SSEEvent]:
        if not text:
            return []
        if self._pending_cr:
            self._pending_cr = False
            if text[0] == "\n":
                text = text[1:]
        buf = self._line + text
        if "\r" in buf:
            lines, self._line = self._split_any(buf)
        else:  # the common case: "\n" line ends, split in C
            lines = buf.split("\n")
            self._line = lines.pop()
        events: list[SSEEvent] = []
        for line in lines:
            if not line:
                ev = self._dispatch()
                if ev is not None:
                    events.append(ev)
            elif line[0] == ":":
                if not self._seen:  # keep-alives between events are forwarded, in order
                    events.append(SSEEvent("", comment=line[1:]))
            else:
                self._field(line)
        return events

    def _split_any(self, buf: str) -> tuple[list[str], str]:
        """Split on CRLF, CR or LF; a trailing CR may be the first half of a CRLF."""
        lines: list[str] = []
        start = 0
        n = len(buf)
        while True:
            i_n = buf.find("\n", start)
            i_r = buf.find("\r", start)
            if i_n < 0 and i_r < 0:
                break
            if i_r < 0 or (0 <= i_n < i_r):
                end, nxt = i_n, i_n + 1
            else:
                end = i_r
                if i_r + 1 < n:
                    nxt = i_r + 2 if buf[i_r + 1] == "\n" else i_r + 1
                else:
                    nxt = i_r + 1
                    self._pending_cr = True
            lines.append(buf[start:end])
            start = nxt
        return lines, buf[start:]

    def _field(self, line: str) -> None:
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        self._seen = True
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self._retry = int(value)

    def _dispatch(self) -> SSEEvent | None:
        if not self._seen:
            return None
        ev = SSEEvent("\n".join(self._data), self._event, self._id, self._retry)
        self._data = []
        self._event = ""
        self._retry = None
        self._seen = False
        # WHATWG: an event with no data is not dispatched; we keep it (id/retry-only events must
        # still reach the client unchanged)
        return ev
