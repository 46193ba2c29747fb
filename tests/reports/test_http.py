"""End to end over real HTTP: app on uvicorn, a real signed-webhook receiver, the provider API."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import free_port
from tests.reports.conftest import PROVIDER_TOKEN
from tests.reports.harness import Receiver, app_policy, build_app, serve_on, wait_for

ALICE = {"x-test-subject": "a" * 32}
BOB = {"x-test-subject": "b" * 32}
PROVIDER = {"Authorization": f"Bearer {PROVIDER_TOKEN}"}


def chat(client: httpx.Client, who: dict[str, str]) -> str:
    resp = client.post("/chat", headers=who)
    assert resp.status_code == 200
    return str(resp.json()["message_id"])


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_report_reaches_webhook_once_and_resolution_comes_back(tmp_path: Path) -> None:
    receiver = Receiver()
    db = tmp_path / "a.db"
    with (
        serve_on(receiver.app()) as hook_base,
        serve_on(build_app(app_policy(f"sqlite:///{db}", hook_base + "/hook"))) as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        message_id = chat(client, ALICE)
        resp = client.post(
            "/aiguard/reports",
            json={"message_id": message_id, "category": "inaccurate", "comment": "Berlin!"},
            headers={**ALICE, "x-test-locale": "de"},
        )
        assert resp.status_code == 201, resp.text
        body = resp.json()
        report_id = body["report"]["id"]
        assert resp.headers["location"] == body["status_url"] == f"/aiguard/reports/{report_id}"
        assert resp.headers["cache-control"] == "no-store"
        assert body["report"]["status"] == "received"
        assert body["procedure"]["id"] == "report_procedure"
        assert body["procedure"]["locale"] == "de"
        assert body["procedure"]["text"].startswith("Vielen Dank")

        wait_for(lambda: receiver.accepted, what="webhook delivery")
        assert receiver.accepted == [f"{report_id}.1"]
        assert receiver.bad_signatures == 0
        [event] = receiver.bodies
        assert event["type"] == "report.created"
        assert event["report"]["id"] == report_id and event["report"]["comment"] == "Berlin!"
        assert event["message"]["message_id"] == message_id
        assert event["message"]["answer"] == "Paris is the capital of Germany."

        wait_for(
            lambda: (
                client.get(f"/aiguard/reports/{report_id}", headers=ALICE).json()["report"][
                    "status"
                ]
                == "forwarded"
            ),
            what="forwarded status",
        )

        # the provider pulls the same document and answers
        assert client.get("/aiguard/provider/reports").status_code == 401
        pulled = client.get("/aiguard/provider/reports?cursor=0&limit=10", headers=PROVIDER)
        assert pulled.status_code == 200
        feed = pulled.json()
        assert [i["id"] for i in feed["items"]] == [f"{report_id}.1"]
        assert feed["items"][0]["report"] == event["report"]
        assert feed["has_more"] is False
        again = client.get(
            f"/aiguard/provider/reports?cursor={feed['next_cursor']}", headers=PROVIDER
        )
        assert again.json()["items"] == []
        resolved = client.post(
            f"/aiguard/provider/reports/{report_id}/resolution",
            json={"outcome": "corrected", "reply": "Thanks, the capital is Berlin.", "revision": 1},
            headers=PROVIDER,
        )
        assert resolved.status_code == 200, resolved.text

        seen = client.get(f"/aiguard/reports/{report_id}", headers=ALICE).json()["report"]
        assert seen["status"] == "resolved"
        assert seen["resolution"]["outcome"] == "corrected"
        assert seen["resolution"]["reply"] == "Thanks, the capital is Berlin."
        other = client.get(f"/aiguard/reports/{report_id}", headers=BOB)
        assert other.status_code == 404
        assert other.headers["content-type"] == "application/problem+json"

        # an unchanged re-submit (double click) is 200 and sends nothing new
        dup = client.post(
            "/aiguard/reports",
            json={"message_id": message_id, "category": "inaccurate", "comment": "Berlin!"},
            headers=ALICE,
        )
        assert dup.status_code == 200 and dup.json()["report"]["id"] == report_id

        # the longest valid report, every character escaped as a surrogate pair, still fits
        longest = json.dumps(
            {
                "message_id": chat(client, ALICE),
                "category": "other",
                "comment": "\U0001f600" * 2000,
                "correction": "\U0001f600" * 4000,
            },
            ensure_ascii=True,
        )
        assert len(longest) > 64 * 1024
        big = client.post(
            "/aiguard/reports",
            content=longest,
            headers={**ALICE, "content-type": "application/json"},
        )
        assert big.status_code == 201, big.text
        big_key = big.json()["report"]["id"] + ".1"
        wait_for(lambda: big_key in receiver.accepted, what="second delivery")
    # each report reached the receiver exactly once, the double click added nothing
    assert receiver.accepted == [f"{report_id}.1", big_key]
    assert receiver.requests == receiver.accepted
    assert receiver.bad_signatures == 0


def test_provider_down_then_up_gets_the_report_once(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    port = free_port()  # nothing listens here yet: connection refused
    receiver = Receiver(fail=2)
    with (
        serve_on(build_app(app_policy(f"sqlite:///{db}", f"http://127.0.0.1:{port}/hook"))) as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        message_id = chat(client, ALICE)
        resp = client.post(
            "/aiguard/reports",
            json={"message_id": message_id, "category": "outdated"},
            headers=ALICE,
        )
        assert resp.status_code == 201
        key = resp.json()["report"]["id"] + ".1"
        wait_for(
            lambda: rows(db, "SELECT attempts FROM aiguard_outbox")[0][0] >= 2,
            what="retries while the receiver is down",
        )
        [(state, error)] = rows(db, "SELECT state, last_error FROM aiguard_outbox")
        assert state == "pending" and "Connect" in error
        with serve_on(receiver.app(), port):
            wait_for(lambda: receiver.accepted, what="delivery after recovery")
            wait_for(
                lambda: rows(db, "SELECT state FROM aiguard_outbox") == [("delivered",)],
                what="outbox marked delivered",
            )
    assert receiver.requests == [key, key, key]  # two 503s, then the accepted one
    assert receiver.accepted == [key]


def test_bad_input_gets_problem_json_and_stores_nothing(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    policy = app_policy(f"sqlite:///{db}", None, rate_limit=2)
    with (
        serve_on(build_app(policy)) as base,
        httpx.Client(base_url=base, timeout=10) as client,
    ):
        mine = chat(client, ALICE)
        theirs = chat(client, BOB)
        cases: list[tuple[dict[str, Any], int, str]] = [
            ({"json": {"message_id": "msg_nope", "category": "other"}}, 404, "message_not_found"),
            ({"json": {"message_id": theirs, "category": "other"}}, 404, "message_not_found"),
            ({"json": {"message_id": mine, "category": "rude"}}, 422, "invalid_report"),
            (
                {"json": {"message_id": mine, "category": "other", "comment": "x" * 2001}},
                422,
                "invalid_report",
            ),
            (
                {"content": b"{not json", "headers": {"content-type": "application/json"}},
                400,
                "invalid_json",
            ),
            ({"json": ["a list"]}, 400, "invalid_json"),
            (
                {"content": b"message_id=1", "headers": {"content-type": "text/plain"}},
                415,
                "unsupported_media_type",
            ),
            (
                {"json": {"message_id": mine, "category": "other", "comment": "x" * 100_000}},
                413,
                "body_too_large",
            ),
        ]
        for kwargs, status, code in cases:
            headers = {**ALICE, **kwargs.pop("headers", {})}
            resp = client.post("/aiguard/reports", headers=headers, **kwargs)
            assert resp.status_code == status, (kwargs, resp.text)
            assert resp.headers["content-type"] == "application/problem+json"
            assert resp.json()["type"].endswith(":" + code)
        invalid = client.post(
            "/aiguard/reports",
            json={"message_id": mine, "category": "other", "comment": "x" * 2001},
            headers=ALICE,
        ).json()
        assert invalid["errors"] == [{"field": "comment", "detail": "at most 2000 characters"}]
        assert rows(db, "SELECT COUNT(*) FROM aiguard_reports") == [(0,)]

        # flood: the budget is 2 per window
        ids = [chat(client, ALICE) for _ in range(3)]
        for mid in ids[:2]:
            ok = client.post(
                "/aiguard/reports", json={"message_id": mid, "category": "other"}, headers=ALICE
            )
            assert ok.status_code == 201
        flood = client.post(
            "/aiguard/reports", json={"message_id": ids[2], "category": "other"}, headers=ALICE
        )
        assert flood.status_code == 429
        assert flood.headers["content-type"] == "application/problem+json"
        assert int(flood.headers["retry-after"]) > 0
        assert rows(db, "SELECT COUNT(*) FROM aiguard_reports") == [(2,)]
        assert rows(db, "SELECT COUNT(*) FROM aiguard_report_events") == [(2,)]

        # the provider API: token set here; wrong token 401, bad cursor 400, unknown report 404
        assert (
            client.get(
                "/aiguard/provider/reports", headers={"Authorization": "Bearer no"}
            ).status_code
            == 401
        )
        assert (
            client.get("/aiguard/provider/reports?cursor=-1", headers=PROVIDER).status_code == 400
        )
        assert client.get("/aiguard/provider/reports?limit=0", headers=PROVIDER).status_code == 400
        too_far = client.get("/aiguard/provider/reports?cursor=" + "9" * 19, headers=PROVIDER)
        assert too_far.status_code == 400  # beyond int64: the store could not even compare it
        missing = client.post(
            "/aiguard/provider/reports/rep_x/resolution",
            json={"outcome": "corrected"},
            headers=PROVIDER,
        )
        assert missing.status_code == 404


def test_provider_api_is_absent_without_a_token(tmp_path: Path) -> None:
    policy = app_policy(f"sqlite:///{tmp_path / 'a.db'}", None, provider_token=None)
    with serve_on(build_app(policy)) as base, httpx.Client(base_url=base) as client:
        resp = client.get("/aiguard/provider/reports", headers=PROVIDER)
        assert resp.status_code == 404
        assert resp.headers["content-type"] == "application/problem+json"
