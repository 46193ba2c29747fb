"""A raw ASGI harness: scripted ``receive``, recorded ``send``; no HTTP client in between."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio
from starlette.types import ASGIApp, Message

from aiguard.policy.models import Policy


def make_policy(tmp_path: Path, **overrides: Any) -> Policy:
    base: dict[str, Any] = {
        "identity": {"secret": "test-secret-0123456789abcdef"},
        "screening": {"enabled": False},
        "reports": {"enabled": False},
        "storage": {"url": f"sqlite:///{tmp_path / 'aiguard.db'}"},
        "provider": "Acme Bot",
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return Policy.model_validate(base)


class Recorder:
    def __init__(self) -> None:
        self.messages: list[Message] = []

    async def __call__(self, message: Message) -> None:
        self.messages.append(message)

    @property
    def start(self) -> Message:
        return next(m for m in self.messages if m["type"] == "http.response.start")

    @property
    def status(self) -> int:
        return int(self.start["status"])

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode().lower(): v.decode() for k, v in self.start.get("headers", [])}

    def header_list(self, name: str) -> list[str]:
        name_b = name.lower().encode()
        return [v.decode() for k, v in self.start.get("headers", []) if k.lower() == name_b]

    @property
    def bodies(self) -> list[Message]:
        return [m for m in self.messages if m["type"] == "http.response.body"]

    @property
    def body(self) -> bytes:
        return b"".join(m.get("body", b"") for m in self.bodies)

    def json(self) -> Any:
        return json.loads(self.body)


def scope(
    path: str = "/v1/chat/completions",
    method: str = "POST",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    hdrs = {"content-type": "application/json", **(headers or {})}
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in hdrs.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def call(
    app: ASGIApp,
    body: bytes | Any = b"",
    *,
    path: str = "/v1/chat/completions",
    method: str = "POST",
    headers: dict[str, str] | None = None,
    chunks: list[bytes] | None = None,
) -> Recorder:
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
    parts = chunks if chunks is not None else [body]
    queue = [
        {"type": "http.request", "body": p, "more_body": i < len(parts) - 1}
        for i, p in enumerate(parts)
    ]

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        await anyio.sleep_forever()  # the client stays connected
        raise AssertionError("unreachable")

    rec = Recorder()
    await app(scope(path, method, headers), receive, rec)
    return rec


def chat(content: str = "hi", *, stream: bool = False, history: bool = False) -> dict[str, Any]:
    messages: list[dict[str, str]] = [{"role": "user", "content": content}]
    if history:
        messages = [
            {"role": "user", "content": "earlier"},
            {"role": "assistant", "content": "earlier answer"},
            *messages,
        ]
    return {"model": "m-1", "messages": messages, "stream": stream}
