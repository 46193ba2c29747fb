"""The guarding proxy over real loopback HTTP: fake upstream <- proxy <- the real openai client."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import openai
import pytest

from aiguard import Runtime
from aiguard.cli_proxy import handler, register, upstream_key
from aiguard.errors import ConfigError
from aiguard.proxy import build_proxy
from aiguard.screens.pipeline import ScreenPipeline
from tests.asgi.harness import make_policy
from tests.asgi.test_screened_responses import BombScreen, EmailScreen
from tests.conftest import free_port
from tests.proxy.upstream import ANSWER, Upstream
from tests.servers import serve

DISCLOSURE = "You are chatting with an AI, not a person."


def ask(marker: str) -> list[Any]:
    return [{"role": "user", "content": marker}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[tuple[Upstream, str]]:
    fake = Upstream()
    with serve(fake.app()) as url:
        yield fake, url + "/v1"


@pytest.fixture(scope="module")
def proxy(
    upstream: tuple[Upstream, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    policy = make_policy(tmp_path_factory.mktemp("proxy"))
    with serve(build_proxy(upstream[1], policy=policy)) as url:
        yield url + "/v1"


def sent(fake: Upstream, marker: str) -> dict[str, Any]:
    found = [r for r in fake.requests if marker in json.dumps(r.get("json"))]
    assert len(found) == 1, f"upstream got {len(found)} requests for {marker}"
    return found[0]


_clients: list[openai.OpenAI] = []


def client(base_url: str, **kw: Any) -> openai.OpenAI:
    oa = openai.OpenAI(base_url=base_url, api_key="client-key", max_retries=0, **kw)
    _clients.append(oa)
    return oa


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _clients:
        _clients.pop().close()


def test_sync_non_stream(proxy: str, upstream: tuple[Upstream, str]) -> None:
    fake, _ = upstream
    oa = client(proxy, default_headers={"x-aiguard-subject": "alice", "cookie": "a=b"})
    raw = oa.chat.completions.with_raw_response.create(model="ok", messages=ask("q-sync"))
    out = raw.parse()
    content = out.choices[0].message.content or ""
    assert content.startswith(DISCLOSURE) and content.endswith(ANSWER)
    assert out.usage is not None and out.usage.total_tokens == 13  # upstream fields kept
    assert raw.headers["ai-disclosure"].startswith("mode=machine-generated")
    assert (out.model_extra or {})["aiguard"]["message_id"] == raw.headers["x-aiguard-message-id"]
    req = sent(fake, "q-sync")
    headers = req["headers"]
    assert headers["authorization"] == "Bearer client-key"  # passed through
    assert headers["accept-encoding"] == "identity"
    assert "x-aiguard-subject" not in headers and "cookie" not in headers
    assert req["json"]["model"] == "ok"


def test_sync_stream_is_incremental(proxy: str, upstream: tuple[Upstream, str]) -> None:
    fake, _ = upstream
    stream = client(proxy).chat.completions.create(
        model="gated", messages=ask("q-gated"), stream=True
    )
    parts: list[str] = []
    released_after_first_token = False
    for c in stream:
        text = c.choices[0].delta.content or "" if c.choices else ""
        parts.append(text)
        if "Paris" in text and not fake.released.is_set():
            # the upstream holds the rest of its answer until we saw its first token
            released_after_first_token = True
            fake.release()
    content = "".join(parts)
    assert released_after_first_token
    assert "[NEVER RELEASED]" not in content
    assert content.startswith(DISCLOSURE) and content.endswith(ANSWER)
    assert sent(fake, "q-gated")["json"]["stream"] is True


async def test_async_non_stream_and_stream(proxy: str, upstream: tuple[Upstream, str]) -> None:
    fake, _ = upstream
    async with openai.AsyncOpenAI(base_url=proxy, api_key="k", max_retries=0) as oa:
        out = await oa.chat.completions.create(model="ok", messages=ask("q-async-1"))
        stream = await oa.chat.completions.create(
            model="ok", messages=ask("q-async-2"), stream=True
        )
        chunks = [c async for c in stream]
    assert (out.choices[0].message.content or "").startswith(DISCLOSURE)
    parts = [c.choices[0].delta.content or "" for c in chunks if c.choices]
    assert parts[0].startswith(DISCLOSURE) and parts[0].endswith("\n\n")
    assert "".join(parts[1:]) == ANSWER
    assert len(parts) > 5  # token by token, not one blob
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert (chunks[0].model_extra or {})["aiguard"]["ai_generated"] is True
    sent(fake, "q-async-1"), sent(fake, "q-async-2")


def test_follow_up_turn_has_no_human_disclosure(proxy: str) -> None:
    history = [*ask("q-follow"), {"role": "assistant", "content": "Hi."}, *ask("more")]
    out = client(proxy).chat.completions.create(model="ok", messages=history)
    assert out.choices[0].message.content == ANSWER


def test_models_forwarded_everything_else_404(proxy: str) -> None:
    assert [m.id for m in client(proxy).models.list()] == ["ok"]
    with httpx.Client(base_url=proxy.removesuffix("/v1"), timeout=10) as http:
        r = http.post("/v1/embeddings", json={"input": "x"})
        assert r.status_code == 404
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith(":not_found")
        r = http.get("/v1/chat/completions")
        assert r.status_code == 405 and r.json()["type"].endswith(":method_not_allowed")


@pytest.mark.parametrize(
    ("model", "error", "status"),
    [
        ("rate-limited", openai.RateLimitError, 429),
        ("boom", openai.InternalServerError, 500),
    ],
)
def test_upstream_errors_pass_through(
    proxy: str, model: str, error: type[openai.APIStatusError], status: int
) -> None:
    with pytest.raises(error) as info:
        client(proxy).chat.completions.create(model=model, messages=ask("q-" + model))
    assert info.value.status_code == status
    assert info.value.response.headers["content-type"] == "application/json"
    if status == 429:
        assert info.value.response.headers["retry-after"] == "7"
        assert "slow down" in info.value.message


def test_upstream_down_is_502_problem(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    with serve(build_proxy(dead, policy=make_policy(tmp_path))) as url:
        r = httpx.post(url + "/v1/chat/completions", json={"model": "x", "messages": ask("q")})
        assert r.status_code == 502
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"].endswith(":upstream_unreachable")
        with pytest.raises(openai.APIStatusError) as info:
            client(url + "/v1").models.list()
        assert info.value.status_code == 502


def test_upstream_timeout_is_504(upstream: tuple[Upstream, str], tmp_path: Path) -> None:
    app = build_proxy(upstream[1], policy=make_policy(tmp_path), timeout=0.3)
    with serve(app) as url:
        started = time.monotonic()
        with pytest.raises(openai.APIStatusError) as info:
            client(url + "/v1").chat.completions.create(model="slow", messages=ask("q-slow"))
        assert info.value.status_code == 504
        assert info.value.body["type"].endswith(":upstream_timeout")  # type: ignore[index]
        assert time.monotonic() - started < 1.5


def test_broken_upstream_stream_ends_with_error_event(proxy: str) -> None:
    with httpx.stream(
        "POST",
        proxy + "/chat/completions",
        json={"model": "broken", "messages": ask("q-broken-raw"), "stream": True},
        timeout=10,
    ) as r:
        assert r.status_code == 200
        body = r.read().decode()
    events = [line[6:] for line in body.splitlines() if line.startswith("data: ")]
    assert "capital" not in body  # the upstream died after its third token
    assert json.loads(events[-1])["error"]["code"] == "upstream_stream_broken"
    stream = client(proxy).chat.completions.create(
        model="broken", messages=ask("q-broken"), stream=True
    )
    seen: list[str] = []
    with pytest.raises(openai.APIError, match="upstream stream broke"):
        for c in stream:
            seen.append(c.choices[0].delta.content or "" if c.choices else "")
    assert "".join(seen).endswith("Paris is the ")


def test_client_disconnect_stops_the_upstream(proxy: str, upstream: tuple[Upstream, str]) -> None:
    fake, _ = upstream
    with httpx.stream(
        "POST",
        proxy + "/chat/completions",
        json={"model": "endless", "messages": ask("q-endless"), "stream": True},
        timeout=10,
    ) as r:
        for i, _line in enumerate(r.iter_lines()):
            if i > 6:
                break
    deadline = time.monotonic() + 5
    while "endless" not in fake.cancelled and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "endless" in fake.cancelled


def test_compressed_upstream_answer_is_decoded_and_guarded(proxy: str) -> None:
    out = client(proxy).chat.completions.create(model="gzip", messages=ask("q-gzip"))
    content = out.choices[0].message.content or ""
    assert content.startswith(DISCLOSURE) and content.endswith(ANSWER)


def test_configured_key_replaces_the_callers(
    upstream: tuple[Upstream, str], tmp_path: Path
) -> None:
    fake, base = upstream
    with serve(build_proxy(base, policy=make_policy(tmp_path), api_key="server-key")) as url:
        client(url + "/v1").chat.completions.create(model="ok", messages=ask("q-key"))
        client(url + "/v1").models.list()
    assert sent(fake, "q-key")["headers"]["authorization"] == "Bearer server-key"
    assert fake.requests[-1]["headers"]["authorization"] == "Bearer server-key"


def test_upstream_query_is_kept_after_the_forwarded_path(
    upstream: tuple[Upstream, str], tmp_path: Path
) -> None:
    fake, base = upstream
    with serve(build_proxy(base + "?api-version=2024-10", policy=make_policy(tmp_path))) as url:
        oa = client(url + "/v1", default_query={"trace": "1"})
        oa.chat.completions.create(model="ok", messages=ask("q-query"))
    req = sent(fake, "q-query")
    assert req["path"] == "/v1/chat/completions"
    assert req["query"] == "api-version=2024-10&trace=1"


def test_screening_applies_to_proxied_answers(
    upstream: tuple[Upstream, str], tmp_path: Path
) -> None:
    policy = make_policy(tmp_path, screening={"enabled": True, "screens": ["pii", "harm"]})
    rt = Runtime(policy)
    rt.screener = ScreenPipeline(policy, rt.catalogue, [EmailScreen(), BombScreen()])
    with serve(build_proxy(upstream[1], policy=policy, runtime=rt)) as url:
        oa = client(url + "/v1")
        out = oa.chat.completions.create(model="ok", messages=ask("q-screen-1"))
        content = out.choices[0].message.content or ""
        assert "paris@example.org" not in content and "Mail [EMAIL] for more." in content
        assert (out.model_extra or {})["aiguard"]["screening"]["verdict"] == "redact"
        stream = oa.chat.completions.create(model="ok", messages=ask("q-screen-2"), stream=True)
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text.endswith("Mail [EMAIL] for more.") and "example.org" not in text


def test_blocked_stream_stops_the_upstream(
    upstream: tuple[Upstream, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fake, base = upstream
    policy = make_policy(tmp_path, screening={"enabled": True, "screens": ["pii", "harm"]})
    rt = Runtime(policy)
    rt.screener = ScreenPipeline(policy, rt.catalogue, [EmailScreen(), BombScreen()])
    with serve(build_proxy(base, policy=policy, runtime=rt)) as url:
        stream = client(url + "/v1").chat.completions.create(
            model="bomb", messages=ask("q-bomb"), stream=True
        )
        chunks = list(stream)
        deadline = time.monotonic() + 5
        while "bomb" not in fake.cancelled and time.monotonic() < deadline:
            time.sleep(0.02)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "bomb" not in text and "This answer was withheld" in text
    assert chunks[-1].choices[0].finish_reason == "content_filter"
    assert "bomb" in fake.cancelled and "bomb" not in fake.finished
    # the middleware saw its own StreamAborted, not a failure of the proxied app
    assert not [r for r in caplog.records if "upstream app failed" in r.getMessage()]


def test_consent_gate_stops_requests_before_the_upstream(
    upstream: tuple[Upstream, str], tmp_path: Path
) -> None:
    fake, base = upstream
    policy = make_policy(tmp_path, consent={"required": ["ai_interaction"]})
    with serve(build_proxy(base, policy=policy)) as url:
        with pytest.raises(openai.APIStatusError) as info:
            client(
                url + "/v1", default_headers={"x-aiguard-subject": "bob"}
            ).chat.completions.create(model="ok", messages=ask("q-consent"))
        assert info.value.status_code == 428
        assert info.value.body["consent_url"] == "/aiguard/consent"  # type: ignore[index]
        # the caller records consent through the proxy's own API, then chats
        with httpx.Client(base_url=url, headers={"x-aiguard-subject": "bob"}) as http:
            r = http.post(
                "/aiguard/consent",
                json={"action": "granted", "purposes": ["ai_interaction"], "notice_version": "1"},
            )
            assert r.status_code == 201, r.text
        out = client(url + "/v1", default_headers={"x-aiguard-subject": "bob"})
        answer = out.chat.completions.create(model="ok", messages=ask("q-consent-2"))
        assert (answer.choices[0].message.content or "").startswith(DISCLOSURE)
    assert not [r for r in fake.requests if 'q-consent"' in json.dumps(r.get("json"))]
    sent(fake, "q-consent-2")


@pytest.mark.parametrize(
    ("upstream_url", "kw", "match"),
    [
        ("ftp://x/v1", {}, "http"),
        ("/v1", {}, "http"),
        ("http://x/v1", {"timeout": 0}, "timeout"),
        ("http://x/v1", {"routes": [{"path": "/chat"}]}, "guard POST"),
    ],
)
def test_configuration_errors(
    upstream_url: str, kw: dict[str, Any], match: str, tmp_path: Path
) -> None:
    timeout = kw.pop("timeout", 60)
    with pytest.raises(ConfigError, match=match):
        build_proxy(upstream_url, policy=make_policy(tmp_path, **kw), timeout=timeout)


def test_cli_parser_and_key_from_env(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["proxy", "--upstream", "http://u/v1", "--upstream-key-env", "K"])
    assert (args.host, args.port, args.timeout, args.func) == ("127.0.0.1", 8080, 60.0, handler)
    assert upstream_key("K", {"K": "sk-1"}) == "sk-1"
    assert upstream_key(None, {}) is None
    with pytest.raises(ConfigError, match="K is unset"):
        upstream_key("K", {})


pytestmark = pytest.mark.anyio


async def test_forwarder_raises_send_errors_unwrapped(upstream: tuple[Upstream, str]) -> None:
    """The middleware tells a blocked answer (StreamAborted) from an app failure by type."""
    from aiguard.asgi.responder import StreamAborted
    from aiguard.proxy import Forwarder
    from tests.asgi.harness import scope

    forwarder = Forwarder(upstream[1], api_key=None, timeout=10, max_body=1 << 20)
    body = json.dumps({"model": "endless", "messages": ask("q-raw"), "stream": True}).encode()
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Any:
        if messages:
            return messages.pop()
        await anyio.sleep_forever()

    bodies = 0

    async def send(message: Any) -> None:
        nonlocal bodies
        if message["type"] == "http.response.body":
            bodies += 1
            if bodies == 3:
                raise StreamAborted

    async with forwarder.lifespan(None):
        with pytest.raises(StreamAborted):
            await forwarder(scope(), receive, send)
