from __future__ import annotations

import pytest

from aiguard.wire.sse import SSEDecoder, SSEEvent, encode_event


def decode_all(chunks: list[bytes]) -> list[SSEEvent]:
    dec = SSEDecoder()
    out: list[SSEEvent] = []
    for c in chunks:
        out.extend(dec.feed(c))
    out.extend(dec.flush())
    return out


STREAMS = [
    # (raw bytes, expected (data, event, id) list)
    (b"data: hello\n\n", [("hello", "", None)]),
    (b"data: a\r\ndata: b\r\n\r\n", [("a\nb", "", None)]),
    (b"data: x\r\rdata: y\r\r", [("x", "", None), ("y", "", None)]),
    (b'event: delta\nid: 7\ndata: {"k": 1}\n\n', [('{"k": 1}', "delta", "7")]),
    (b"data:no-space\n\n", [("no-space", "", None)]),
    (b"data: \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80\n\n", [("你好 😀", "", None)]),
    (b"data: [DONE]\n\n", [("[DONE]", "", None)]),
    (b"data: tail-without-blank-line", [("tail-without-blank-line", "", None)]),
    (b"data: a\n\ndata: b\n\ndata: c\n\n", [("a", "", None), ("b", "", None), ("c", "", None)]),
]


@pytest.mark.parametrize(("raw", "expected"), STREAMS)
def test_every_split_point(raw: bytes, expected: list[tuple[str, str, str | None]]) -> None:
    whole = [(e.data, e.event, e.id) for e in decode_all([raw]) if e.comment is None]
    assert whole == expected
    for i in range(len(raw) + 1):
        got = [(e.data, e.event, e.id) for e in decode_all([raw[:i], raw[i:]])]
        assert got == expected, f"split at {i}"
    # byte by byte
    got = [(e.data, e.event, e.id) for e in decode_all([bytes([b]) for b in raw])]
    assert got == expected


def test_two_splits_everywhere_on_a_chat_stream() -> None:
    raw = (
        b": keep-alive\r\n\r\n"
        b'data: {"choices":[{"delta":{"content":"Gr\xc3\xbc\xc3\x9fe "}}]}\r\n\r\n'
        b'data: {"choices":[{"delta":{"content":"\xe4\xb8\x96\xe7\x95\x8c"}}]}\r\n\r\n'
        b"data: [DONE]\r\n\r\n"
    )
    expected = decode_all([raw])
    assert [e.comment for e in expected] == [" keep-alive", None, None, None]
    assert "Grüße" in expected[1].data and "世界" in expected[2].data
    for i in range(0, len(raw) + 1, 3):
        for j in range(i, len(raw) + 1, 5):
            assert decode_all([raw[:i], raw[i:j], raw[j:]]) == expected


def test_comment_inside_an_event_is_dropped_not_forwarded() -> None:
    events = decode_all([b"data: a\n: ping\ndata: b\n\n"])
    assert [(e.data, e.comment) for e in events] == [("a\nb", None)]


def test_encode_roundtrip_multiline() -> None:
    raw = encode_event("line1\nline2", event="x", id="3")
    assert raw == b"event: x\nid: 3\ndata: line1\ndata: line2\n\n"
    (ev,) = decode_all([raw])
    assert (ev.data, ev.event, ev.id) == ("line1\nline2", "x", "3")
    assert ev.encode() == raw


def test_invalid_utf8_is_replaced_not_fatal() -> None:
    (ev,) = decode_all([b"data: \xff\xfe ok\n\n"])
    assert ev.data.endswith(" ok")
