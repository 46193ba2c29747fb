"""Bearer-token checks for aiguard's operator endpoints (compliance export, provider API)."""

from __future__ import annotations

import hmac
from collections.abc import Callable

from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response

from aiguard.asgi.problem import problem

BearerCheck = Callable[[Request], Response | None]


def bearer_check(token: SecretStr | None, *, realm: str, title: str) -> BearerCheck:
    """A check returning ``None`` when allowed, else the problem response to send.

    No token configured means the endpoint does not exist (404), so an unconfigured deployment
    exposes nothing. The comparison is constant-time.
    """
    expected = ("Bearer " + token.get_secret_value()).encode("utf-8") if token is not None else None

    def denied(request: Request) -> Response | None:
        if expected is None:
            return problem(404, "not_found", "Not found")
        given = request.headers.get("authorization", "").encode("utf-8")
        if not hmac.compare_digest(given, expected):
            resp = problem(401, "unauthorized", title)
            resp.headers["WWW-Authenticate"] = f'Bearer realm="{realm}"'
            return resp
        return None

    return denied
