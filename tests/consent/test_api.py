"""The consent HTTP API over a tiny Starlette app (the lead's middleware is stood in for)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import anyio
import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiguard.asgi.consent_api import MAX_BODY_BYTES, routes
from aiguard.policy import Policy
from aiguard.policy.prompts import Catalogue
from aiguard.services.consent import ConsentService
from aiguard.store import Database
from tests.consent.conftest import ADMIN, REQUIRED, identity, make_policy

pytestmark = pytest.mark.anyio
SUBJECT = "a" * 32


class SetIdentity:
    """Stands in for AIGuardMiddleware: puts the caller's identity in the scope."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            subject = headers.get(b"x-subject", SUBJECT.encode()).decode()
            locale = headers.get(b"x-locale", b"en").decode()
            scope = {**scope, "aiguard.identity": identity(subject, locale)}
        await self.app(scope, receive, send)


def build_app(service: ConsentService, policy: Policy, catalogue: Catalogue) -> Starlette:
    runtime = SimpleNamespace(policy=policy, catalogue=catalogue, consent=service)
    app = Starlette(routes=[Mount("/aiguard", routes=routes(runtime))])
    app.add_middleware(SetIdentity)
    return app


@pytest.fixture
async def client(
    service: ConsentService, policy: Policy, catalogue: Catalogue
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=build_app(service, policy, catalogue))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


async def _count(db: Database) -> int:
    row = await db.fetchone("SELECT count(*) AS n FROM consent_records")
    assert row is not None
    return int(row["n"])


async def test_status_grant_withdraw_roundtrip(
    client: httpx.AsyncClient, service: ConsentService
) -> None:
    r = await client.get("/aiguard/consent", headers={"x-locale": "nl"})
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    assert body["subject"] == SUBJECT and body["required"] == REQUIRED
    assert body["purposes"]["ai_interaction"]["status"] == "none"
    assert body["notice"]["locale"] == "nl" and body["notice"]["text"]
    r = await client.post(
        "/aiguard/consent",
        json={"action": "granted", "purposes": REQUIRED, "notice_version": "1"},
    )
    assert r.status_code == 201
    assert [x["purpose"] for x in r.json()["records"]] == REQUIRED
    assert (await service.check(SUBJECT)).allowed
    r = await client.get("/aiguard/consent")
    assert r.json()["purposes"]["provider_processing"]["status"] == "granted"
    r = await client.post("/aiguard/consent/withdraw")  # no body: withdraw everything granted
    assert r.status_code == 201
    assert sorted(x["purpose"] for x in r.json()["records"]) == sorted(REQUIRED)
    assert not (await service.check(SUBJECT)).allowed
    r = await client.post("/aiguard/consent/withdraw", json={})
    assert r.status_code == 201 and r.json()["records"] == []


async def test_notice_endpoint_negotiates_and_overrides(client: httpx.AsyncClient) -> None:
    r = await client.get("/aiguard/consent/notice", headers={"x-locale": "de"})
    assert r.json()["locale"] == "de" and "KI" in r.json()["text"]
    r = await client.get("/aiguard/consent/notice?lang=zh")
    assert r.json()["locale"] == "zh-CN" and r.json()["version"] == "1"
    r = await client.get("/aiguard/consent/notice?lang=%3Cscript%3E")
    assert r.status_code == 400


BAD_BODIES: list[tuple[str, dict[str, str], bytes | str, int, str]] = [
    (
        "malformed json",
        {"content-type": "application/json"},
        b'{"action": "granted",',
        400,
        "invalid_json",
    ),
    ("not an object", {"content-type": "application/json"}, b"[1, 2]", 400, "invalid_json"),
    ("not json", {"content-type": "text/plain"}, b"granted", 415, "unsupported_media_type"),
    (
        "unknown purpose",
        {},
        json.dumps({"action": "granted", "purposes": ["marketing"]}),
        422,
        "unknown_purpose",
    ),
    (
        "withdrawn is not a POST /consent action",
        {},
        json.dumps({"action": "withdrawn", "purposes": ["ai_interaction"]}),
        422,
        "invalid_consent",
    ),
    ("no purposes", {}, json.dumps({"action": "granted", "purposes": []}), 422, "invalid_consent"),
    (
        "purpose not a string",
        {},
        json.dumps({"action": "granted", "purposes": [1]}),
        422,
        "invalid_consent",
    ),
    (
        "extra field",
        {},
        json.dumps({"action": "granted", "purposes": REQUIRED, "admin": True}),
        422,
        "invalid_consent",
    ),
    (
        "oversized purpose",
        {},
        json.dumps({"action": "granted", "purposes": ["p" * 65]}),
        422,
        "field_too_large",
    ),
    (
        "oversized notice_version",
        {},
        json.dumps({"action": "granted", "purposes": REQUIRED, "notice_version": "1" * 33}),
        422,
        "field_too_large",
    ),
    (
        "oversized body",
        {},
        json.dumps({"action": "granted", "purposes": ["x" * MAX_BODY_BYTES]}),
        413,
        "body_too_large",
    ),
    (
        "stale notice",
        {},
        json.dumps({"action": "granted", "purposes": REQUIRED, "notice_version": "0"}),
        409,
        "notice_outdated",
    ),
]


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [case[1:] for case in BAD_BODIES],
    ids=[case[0] for case in BAD_BODIES],
)
async def test_bad_input_is_a_clear_problem_and_writes_nothing(
    client: httpx.AsyncClient,
    db: Database,
    headers: dict[str, str],
    body: bytes | str,
    status: int,
    code: str,
) -> None:
    sent = {"content-type": "application/json", **headers}
    r = await client.post("/aiguard/consent", content=body, headers=sent)
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["status"] == status and problem["type"].endswith(":" + code)
    assert problem["title"]
    assert await _count(db) == 0


async def test_withdraw_rejects_bad_input(client: httpx.AsyncClient, db: Database) -> None:
    r = await client.post("/aiguard/consent/withdraw", json={"purposes": ["nope"]})
    assert r.status_code == 422 and r.json()["purposes"] == ["nope"]
    r = await client.post(
        "/aiguard/consent/withdraw",
        content=b"{oops",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    r = await client.post("/aiguard/consent/withdraw", json={"purposes": "ai_interaction"})
    assert r.status_code == 422
    assert await _count(db) == 0


@pytest.mark.parametrize(
    ("auth", "status"),
    [
        (None, 401),
        ("Bearer wrong-token-0123456789", 401),
        ("Basic " + ADMIN, 401),
        ("Bearer " + ADMIN, 200),
    ],
)
async def test_admin_export_requires_the_token(
    client: httpx.AsyncClient, service: ConsentService, auth: str | None, status: int
) -> None:
    await service.record(identity(), REQUIRED, "granted")
    headers = {"authorization": auth} if auth else {}
    r = await client.get("/aiguard/admin/consent/export?format=csv", headers=headers)
    assert r.status_code == status
    if status == 401:
        assert r.headers["content-type"] == "application/problem+json"
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert "cons_" not in r.text
    else:
        assert r.headers["content-type"].startswith("text/csv")
        assert "attachment" in r.headers["content-disposition"]
        assert len(r.text.splitlines()) == 3


async def test_admin_export_is_absent_without_a_token(db: Database, catalogue: Catalogue) -> None:
    policy = make_policy()  # no admin_token
    app = build_app(ConsentService(db, policy, catalogue), policy, catalogue)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        r = await c.get("/aiguard/admin/consent/export", headers={"authorization": "Bearer x"})
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "query",
    ["format=xml", "since=yesterday", "subject=" + "s" * 65, "until=2026-13-01", "bogus=1"],
)
async def test_admin_export_rejects_bad_queries(client: httpx.AsyncClient, query: str) -> None:
    r = await client.get(
        "/aiguard/admin/consent/export?" + query, headers={"authorization": "Bearer " + ADMIN}
    )
    assert r.status_code in {400, 422}
    assert r.headers["content-type"] == "application/problem+json"


@pytest.mark.timeout(30)
async def test_admin_export_streams(
    service: ConsentService, policy: Policy, catalogue: Catalogue, db: Database
) -> None:
    """Raw ASGI: the export arrives as several body messages, the first before the last row."""
    for i in range(150):
        await service.record(identity(f"{i:032x}"), REQUIRED, "granted", "widget")
    app = build_app(service, policy, catalogue)
    sent: list[Message] = []
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/aiguard/admin/consent/export",
        "raw_path": b"/aiguard/admin/consent/export",
        "root_path": "",
        "query_string": b"format=jsonl",
        "headers": [(b"authorization", ("Bearer " + ADMIN).encode())],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }

    requested = False

    async def receive() -> Message:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await anyio.sleep_forever()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope, receive, send)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    bodies = [m for m in sent[1:] if m["type"] == "http.response.body"]
    assert len([b for b in bodies if b.get("body")]) >= 2  # streamed in chunks, not one blob
    assert all(b.get("more_body") for b in bodies[:-1]) and not bodies[-1].get("more_body")
    lines = b"".join(b.get("body", b"") for b in bodies).decode().splitlines()
    assert len(lines) == 300 and json.loads(lines[0])["method"] == "widget"
