"""Fixtures for the reports area: fast policies, a migrated database per backend, records."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from aiguard.asgi.identity import RequestIdentity
from aiguard.policy import Policy, load_policy
from aiguard.services import records, reports
from aiguard.services.message import MessageRecord
from aiguard.store import Database, open_database

# delivery timings small enough that retries happen within a test
FAST: dict[str, Any] = {
    "backoff_base_seconds": 0.05,
    "backoff_max_seconds": 0.2,
    "poll_interval_seconds": 0.05,
    "lease_seconds": 2.0,
    "webhook_timeout_seconds": 1.0,
    "record_flush_ms": 10.0,
    "purge_interval_seconds": 3600.0,
}
SECRET = "whsec_test_0123456789abcdef"
PROVIDER_TOKEN = "provider-token-0123456789"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # asyncpg is asyncio-only


def make_policy(**reports_overrides: Any) -> Policy:
    return load_policy(environ={}, reports={**FAST, **reports_overrides})


def make_record(
    subject: str = "s" * 32,
    conversation: str = "c" * 32,
    answer: str = "Paris is the capital of Germany.",
    message_id: str | None = None,
    created_at: float | None = None,
) -> MessageRecord:
    return MessageRecord(
        message_id=message_id or "msg_" + uuid.uuid4().hex,
        conversation_id=conversation,
        subject_id=subject,
        route="/v1/chat/completions",
        model="gpt-test",
        locale="en",
        status=200,
        streamed=False,
        disclosure={"id": "disclosure", "version": "1", "locale": "en", "sha256": "ab"},
        verdict="allow",
        screening={"verdict": "allow", "results": {}},
        answer=answer,
        created_at=time.time() if created_at is None else created_at,
    )


def identity(subject: str = "s" * 32, conversation: str = "c" * 32) -> RequestIdentity:
    return RequestIdentity(subject_id=subject, conversation_id=conversation, locale="en")


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = open_database(db_url)
    await database.connect()
    await database.migrate([*records.MIGRATIONS, *reports.MIGRATIONS])
    try:
        yield database
    finally:
        await database.close()
