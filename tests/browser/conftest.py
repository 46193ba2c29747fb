"""Headless Chromium harness: Debian's /usr/bin/chromium driven by Playwright over CDP.

- ``chromium``: one browser for this package's tests (package scope: playwright's sync API keeps
  an event loop running in the main thread, which must be gone before other async tests run).
  Playwright launches it with a fresh temporary ``--user-data-dir`` of its own and
  ``--remote-debugging-pipe``; we add the flags that keep it off the network.
  ``playwright install`` is never needed.
- ``aiguard_app``: the ASGI app under test. The default is the in-test fake
  (``browser_fake.build_app``); override this one fixture to run the same tests against the real
  middleware and services.
- ``live_server``: uvicorn on a random loopback port in a thread, serving ``aiguard_app``.
- ``page``: a new browser context (own cookies) per test.

Without Chromium or Playwright the tests skip with the reason, except under ``CI=true`` where
they fail: CI installs both.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aiguard.policy.prompts import Catalogue
from tests.browser.browser_fake import FakeAPI, build_app
from tests.servers import serve

CHROMIUM = os.environ.get("AIGUARD_CHROMIUM", "/usr/bin/chromium")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
    "--disable-dev-shm-usage",
]
TIMEOUT_MS = 10_000


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}; CI requires it (.ci/run installs chromium and playwright)")
    pytest.skip(f"{reason}; install it to run the browser tests")


@pytest.fixture(scope="package")
def chromium() -> Iterator[Any]:
    path = shutil.which(CHROMIUM) or (CHROMIUM if os.access(CHROMIUM, os.X_OK) else None)
    if path is None:
        _unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed (pip install playwright)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS, timeout=30_000
        )
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def catalogue() -> Catalogue:
    return Catalogue()


@pytest.fixture
def fake_api(catalogue: Catalogue) -> FakeAPI:
    return FakeAPI(catalogue=catalogue)


@pytest.fixture
def aiguard_app(fake_api: FakeAPI) -> Any:
    return build_app(fake_api)


@pytest.fixture
def live_server(aiguard_app: Any) -> Iterator[str]:
    with serve(aiguard_app) as url:
        yield url


@pytest.fixture
def page(chromium: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    viewport = getattr(request, "param", None) or {"width": 1024, "height": 720}
    context = chromium.new_context(viewport=viewport, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    yield pg
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def screenshot_dir() -> Path | None:
    """Set AIGUARD_SCREENSHOT_DIR (e.g. docs/img) to refresh the documentation screenshots."""
    value = os.environ.get("AIGUARD_SCREENSHOT_DIR")
    return Path(value) if value else None
