"""The consent gate: what check() decides, and how fast a change takes effect."""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio
import pytest

from aiguard.errors import AIGuardError
from aiguard.policy import Policy
from aiguard.policy.prompts import Catalogue
from aiguard.services.consent import (
    ConsentDecision,
    ConsentService,
    InvalidConsentError,
    NoticeOutdatedError,
    UnknownPurposeError,
)
from aiguard.store import Database
from tests.consent.conftest import REQUIRED, identity, make_policy

pytestmark = pytest.mark.anyio
SUBJECT = "a" * 32


async def test_grant_withdraw_and_refuse_drive_the_gate(service: ConsentService) -> None:
    assert await service.check(SUBJECT) == ConsentDecision(False, tuple(REQUIRED))
    records = await service.record(identity(), ["ai_interaction"], "granted")
    assert [r.purpose for r in records] == ["ai_interaction"]
    # the cache (ttl 60 s) must not hide this process's own writes
    assert await service.check(SUBJECT) == ConsentDecision(False, ("provider_processing",))
    await service.record(identity(), ["provider_processing", "transcript_retention"], "granted")
    assert await service.check(SUBJECT) == ConsentDecision(True, ())
    await service.record(identity(), ["provider_processing"], "withdrawn")
    assert await service.check(SUBJECT) == ConsentDecision(False, ("provider_processing",))
    await service.record(identity(), ["provider_processing"], "granted")
    assert (await service.check(SUBJECT)).allowed
    await service.record(identity(), ["ai_interaction"], "refused")
    assert await service.check(SUBJECT) == ConsentDecision(False, ("ai_interaction",))
    # another subject is unaffected
    assert not (await service.check("b" * 32)).allowed


async def test_new_notice_version_blocks_until_consent_is_given_again(
    db: Database, policy: Policy, prompts_v2: Callable[[str], Catalogue]
) -> None:
    v1 = ConsentService(db, policy, prompts_v2("1"))
    await v1.record(identity(locale="de"), REQUIRED, "granted")
    assert (await v1.check(SUBJECT)).allowed
    v2 = ConsentService(db, policy, prompts_v2("2"))  # the deployment ships notice version 2
    assert await v2.check(SUBJECT) == ConsentDecision(False, tuple(REQUIRED))
    status = await v2.status(SUBJECT, "de")
    assert status["purposes"]["ai_interaction"]["status"] == "outdated"
    assert status["notice"]["version"] == "2"
    with pytest.raises(NoticeOutdatedError):
        await v2.record(identity(locale="de"), REQUIRED, "granted", notice_version="1")
    records = await v2.record(identity(locale="de"), REQUIRED, "granted", notice_version="2")
    assert {(r.notice_version, r.notice_locale) for r in records} == {("2", "de")}
    assert (await v2.check(SUBJECT)).allowed


async def test_invalid_requests_raise_and_write_nothing(
    service: ConsentService, db: Database
) -> None:
    with pytest.raises(UnknownPurposeError) as err:
        await service.record(identity(), ["ai_interaction", "marketing"], "granted")
    assert isinstance(err.value, ValueError) and isinstance(err.value, AIGuardError)
    assert err.value.code == "unknown_purpose" and err.value.purposes == ["marketing"]
    for purposes, action, method in [
        ([], "granted", "api"),
        (["ai_interaction"], "maybe", "api"),
        (["ai_interaction"], "granted", "Bad Method!"),
    ]:
        with pytest.raises(InvalidConsentError):
            await service.record(identity(), purposes, action, method)  # type: ignore[arg-type]
    assert await db.fetchone("SELECT count(*) AS n FROM consent_records") == {"n": 0}


async def test_record_fields_and_evidence(service: ConsentService, policy: Policy) -> None:
    [a] = await service.record(identity(ip="203.0.113.7"), ["ai_interaction"], "granted", "widget")
    [b] = await service.record(identity(ip="203.0.113.200"), ["ai_interaction"], "granted")
    [c] = await service.record(identity(ip="198.51.100.1"), ["ai_interaction"], "granted")
    [d] = await service.record(identity(ip="2001:db8:1:2::1"), ["ai_interaction"], "granted")
    [e] = await service.record(identity(ip="2001:db8:1:ffff::9"), ["ai_interaction"], "granted")
    notice = service.notice("en")
    assert (a.notice_id, a.notice_version, a.notice_locale, a.notice_sha256) == (
        "consent_notice",
        notice.version,
        "en",
        notice.sha256,
    )
    assert a.method == "widget" and a.jurisdiction == policy.consent.jurisdiction
    assert a.created_at.endswith("Z") and a.created_at < b.created_at
    assert a.seq + 1 == b.seq and b.prev_hash == a.hash
    # same /24 -> same evidence; other /24 -> different; IPv6 grouped by /48
    assert a.ip_hash == b.ip_hash != c.ip_hash
    assert d.ip_hash == e.ip_hash != a.ip_hash
    assert a.ua_hash is not None and a.ip_hash is not None
    assert "203.0.113" not in repr(a) and "Mozilla" not in repr(a)


async def test_gate_is_off_without_required_purposes(db: Database, catalogue: Catalogue) -> None:
    service = ConsentService(db, make_policy(required=[]), catalogue)
    assert await service.check(SUBJECT) == ConsentDecision(True, ())


async def test_cached_check_is_microseconds_and_other_replicas_see_changes_after_ttl(
    db: Database, catalogue: Catalogue
) -> None:
    policy = make_policy(cache_ttl_seconds=0.3)
    here, replica = ConsentService(db, policy, catalogue), ConsentService(db, policy, catalogue)
    assert not (await replica.check(SUBJECT)).allowed
    await here.record(identity(), REQUIRED, "granted")
    assert (await here.check(SUBJECT)).allowed
    assert not (await replica.check(SUBJECT)).allowed  # cached on the other replica
    t = time.perf_counter()
    for _ in range(1000):
        await replica.check(SUBJECT)
    per_check = (time.perf_counter() - t) / 1000
    assert per_check < 50e-6, f"cached check took {per_check * 1e6:.1f} µs"
    await anyio.sleep(0.35)
    assert (await replica.check(SUBJECT)).allowed


async def test_challenge_carries_the_notice(service: ConsentService) -> None:
    body = service.challenge(["ai_interaction"], "fr")
    notice = service.notice("fr")
    assert body == {
        "purposes": ["ai_interaction"],
        "notice": {**notice.ref(), "text": notice.text},
        "consent_url": "/aiguard/consent",
    }
    assert body["notice"]["locale"] == "fr" and "IA" in body["notice"]["text"]
