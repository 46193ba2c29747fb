"""Sinks and their policy: signatures, JSON lines, webhook failure modes, config validation."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from aiguard.errors import ConfigError
from aiguard.policy import load_policy
from aiguard.services.sinks import (
    DeliveryError,
    JsonlSink,
    WebhookSink,
    _retry_after,
    build_sinks,
    sign,
    sink_names,
    verify,
)
from tests.conftest import free_port

SECRET = b"whsec_test_0123456789abcdef"
BODY = b'{"id":"rep_1.1","type":"report.created"}'


def test_signature_roundtrip_and_tampering() -> None:
    now = int(time.time())
    header = sign(SECRET, BODY, now)
    assert header.startswith(f"t={now},v1=") and len(header.partition("v1=")[2]) == 64
    assert verify(SECRET, BODY, header)
    assert not verify(SECRET, BODY + b" ", header)  # body changed
    assert not verify(b"another-secret-0123456", BODY, header)  # wrong key
    assert not verify(SECRET, BODY, header.replace(f"t={now}", f"t={now + 1}"))  # t is signed
    assert not verify(SECRET, BODY, sign(SECRET, BODY, now - 3600))  # replayed later
    assert not verify(SECRET, BODY, "garbage")
    assert verify(SECRET, BODY, f"{header},v1=00")  # several v1 values (key rotation) are fine


def test_signature_is_the_documented_construction() -> None:
    import hashlib
    import hmac

    expected = hmac.new(SECRET, b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY, 1700000000) == f"t=1700000000,v1={expected}"


@pytest.mark.anyio
async def test_jsonl_sink_appends_one_line_per_event(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "reports.jsonl"
    sink = JsonlSink(path)
    await sink.deliver("rep_1.1", BODY)
    await sink.deliver("rep_1.2", b'{"id":"rep_1.2"}')
    lines = path.read_text().splitlines()
    assert [json.loads(line)["idempotency_key"] for line in lines] == ["rep_1.1", "rep_1.2"]
    assert json.loads(lines[0])["event"] == json.loads(BODY)
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.anyio
async def test_jsonl_sink_failure_is_a_delivery_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DeliveryError):
        await JsonlSink(blocker / "x.jsonl").deliver("k", BODY)


@pytest.mark.anyio
async def test_webhook_connection_refused_is_a_delivery_error() -> None:
    sink = WebhookSink(f"http://127.0.0.1:{free_port()}/hook", SECRET, timeout=1.0)
    try:
        with pytest.raises(DeliveryError, match="Connect"):
            await sink.deliver("k", BODY)
    finally:
        await sink.aclose()


def test_retry_after_parsing() -> None:
    assert _retry_after("7") == 7.0
    assert _retry_after(None) is None
    assert _retry_after("soon") is None
    http_date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    assert 55 <= (_retry_after(http_date) or 0) <= 61


def test_sinks_follow_the_policy(tmp_path: Path) -> None:
    assert build_sinks(load_policy(environ={})) == []
    policy = load_policy(
        environ={},
        reports={
            "webhook_url": "https://provider.example/hook",
            "webhook_secret": "s" * 16,
            "jsonl_path": str(tmp_path / "r.jsonl"),
        },
    )
    assert sink_names(policy) == ["webhook", "jsonl"]
    assert [s.name for s in build_sinks(policy)] == ["webhook", "jsonl"]


@pytest.mark.parametrize(
    ("reports", "message"),
    [
        ({"webhook_url": "https://x.example/hook"}, "webhook_secret"),
        ({"webhook_url": "ftp://x.example", "webhook_secret": "s" * 16}, "http"),
        ({"webhook_url": "https://x.example", "webhook_secret": "short"}, "16 characters"),
        ({"provider_token": "short"}, "16 characters"),
        ({"lease_seconds": 5, "webhook_timeout_seconds": 10}, "lease_seconds"),
        ({"backoff_base_seconds": 10, "backoff_max_seconds": 1}, "backoff_max_seconds"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"categories": ["x"]}, "categories"),
    ],
)
def test_bad_reports_policy_fails_at_load(reports: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_policy(environ={}, reports=reports)


def test_reports_policy_from_environment() -> None:
    policy = load_policy(
        environ={
            "AIGUARD_REPORTS__RATE_LIMIT": "3",
            "AIGUARD_REPORTS__PROVIDER_TOKEN": "t" * 20,
        }
    )
    assert policy.reports.rate_limit == 3
    assert policy.reports.provider_token is not None
    assert "t" * 20 not in repr(policy)  # secrets never print
