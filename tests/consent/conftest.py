"""Fixtures for the consent ledger: a policy with a gate, the packaged notice, a service factory."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from aiguard.asgi.identity import RequestIdentity
from aiguard.policy import Policy, load_policy
from aiguard.policy.prompts import Catalogue, packaged_prompts_dir
from aiguard.services.consent import MIGRATIONS, ConsentService
from aiguard.store import Database, open_database

REQUIRED = ["ai_interaction", "provider_processing"]
ADMIN = "admin-token-0123456789"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_policy(**consent: Any) -> Policy:
    settings: dict[str, Any] = {"required": REQUIRED, "cache_ttl_seconds": 60.0, **consent}
    return load_policy(environ={}, consent=settings, identity={"secret": "s" * 32})


@pytest.fixture
def policy() -> Policy:
    return make_policy(admin_token=ADMIN)


@pytest.fixture
def catalogue() -> Catalogue:
    return Catalogue()


def identity(
    subject: str = "a" * 32, locale: str = "en", ip: str = "203.0.113.7"
) -> RequestIdentity:
    return RequestIdentity(
        subject_id=subject,
        conversation_id="c" * 32,
        locale=locale,
        client_ip=ip,
        user_agent="Mozilla/5.0 (test)",
    )


@pytest.fixture
async def db(db_url: str) -> AsyncIterator[Database]:
    database = open_database(db_url)
    await database.connect()
    await database.migrate(MIGRATIONS)
    yield database
    await database.close()


@pytest.fixture
def service(db: Database, policy: Policy, catalogue: Catalogue) -> ConsentService:
    return ConsentService(db, policy, catalogue)


@pytest.fixture
def prompts_v2(tmp_path: Path) -> Callable[[str], Catalogue]:
    """A copy of the packaged prompts whose consent notice has the given version."""

    def build(version: str) -> Catalogue:
        root = tmp_path / f"prompts-v{version}"
        if not root.exists():
            shutil.copytree(packaged_prompts_dir(), root)
            for f in root.glob("*/consent_notice.toml"):
                text = f.read_text(encoding="utf-8")
                f.write_text(text.replace('version = "1"', f'version = "{version}"'), "utf-8")
        return Catalogue(root)

    return build
