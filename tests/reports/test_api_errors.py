"""API failure paths that need a broken service: not started yet, storage down."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from aiguard.asgi.reports_api import routes
from aiguard.errors import StoreError
from tests.reports.conftest import PROVIDER_TOKEN, make_policy
from tests.reports.harness import IdentityMiddleware

pytestmark = pytest.mark.anyio
PROVIDER = {"Authorization": f"Bearer {PROVIDER_TOKEN}"}


class DownService:
    async def _down(self, *args: Any) -> Any:
        raise StoreError("postgres: connection refused")

    submit = status = pull = resolve = _down


def client_for(service: Any) -> httpx.AsyncClient:
    runtime = SimpleNamespace(policy=make_policy(provider_token=PROVIDER_TOKEN), reports=service)
    app = IdentityMiddleware(Starlette(routes=[Mount("/aiguard", routes=routes(runtime))]))
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


CALLS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/aiguard/reports", {"json": {"message_id": "m", "category": "other"}}),
    ("GET", "/aiguard/reports/rep_1", {}),
    ("GET", "/aiguard/provider/reports", {"headers": PROVIDER}),
    (
        "POST",
        "/aiguard/provider/reports/rep_1/resolution",
        {"json": {"outcome": "corrected"}, "headers": PROVIDER},
    ),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), CALLS)
@pytest.mark.parametrize(
    ("service", "code"), [(None, "not_ready"), (DownService(), "store_unavailable")]
)
async def test_unavailable_is_503_problem(
    method: str, path: str, kwargs: dict[str, Any], service: Any, code: str
) -> None:
    async with client_for(service) as client:
        resp = await client.request(method, path, **kwargs)
    assert resp.status_code == 503
    assert resp.headers["content-type"] == "application/problem+json"
    assert resp.headers["retry-after"]
    assert resp.json()["type"].endswith(":" + code)


async def test_disabled_reports_have_no_routes() -> None:
    runtime = SimpleNamespace(policy=make_policy(enabled=False), reports=None)
    assert routes(runtime) == []
