from __future__ import annotations

import anyio
import pytest

from aiguard.screens.pii import PIIScreen


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def pii() -> PIIScreen:
    """One loaded screen (all languages, default entities) for the whole session: loading
    presidio takes seconds, screening is stateless."""
    screen = PIIScreen()
    anyio.run(screen.load)
    return screen
