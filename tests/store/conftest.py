from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    # asyncpg is asyncio-only, so every async store test runs on asyncio
    return "asyncio"
