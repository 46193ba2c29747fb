"""HTTP API of inaccuracy reports (mounted under the policy prefix by the middleware).

Reporter side (identity from ``scope["aiguard.identity"]``):

* ``POST /reports`` ``{"message_id", "category", "comment"?, "correction"?}`` -> 201 (new) or
  200 (updated / unchanged) ``{"report", "procedure", "status_url"}``.
* ``GET /reports/{id}`` -> ``{"report"}`` with status received/forwarded/resolved and the
  provider's resolution once there is one.

Provider side (``Authorization: Bearer <reports.provider_token>``; unset token = 404):

* ``GET /provider/reports?cursor=&limit=`` -> ``{"items", "next_cursor", "has_more"}``: the event
  documents webhooks receive, oldest first.
* ``POST /provider/reports/{id}/resolution`` ``{"outcome", "reply", "revision"?}``
  -> ``{"report"}``.

Every error is ``application/problem+json``. Someone else's report or message is a 404 exactly
like an unknown one, so ids cannot be probed.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from aiguard.asgi.auth import bearer_check
from aiguard.asgi.problem import problem
from aiguard.asgi.requests import read_json_object, request_identity
from aiguard.errors import StoreError
from aiguard.policy.models import Policy
from aiguard.services.reports import (
    Conflict,
    InvalidReport,
    NotFound,
    RateLimited,
    ReportService,
)

# JSON can spell one character in up to 12 bytes (an escaped surrogate pair), so the body limit
# follows the policy's text limits: valid input never meets a 413, floods of bytes do.
_BYTES_PER_CHAR = 12
_BODY_SLACK = 8192
MAX_PULL_LIMIT = 500
DEFAULT_PULL_LIMIT = 100
_NO_STORE = {"Cache-Control": "no-store"}

log = logging.getLogger("aiguard.reports")


class ReportsRuntime(Protocol):
    """The part of ``aiguard.runtime.Runtime`` these routes use."""

    @property
    def policy(self) -> Policy: ...

    @property
    def reports(self) -> ReportService | None:
        """``None`` until the runtime has started (routes are built before that)."""
        ...


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(data, status_code=status, headers={**_NO_STORE, **(headers or {})})


def body_limit(policy: Policy) -> int:
    rp = policy.reports
    chars = max(rp.comment_max_chars + rp.correction_max_chars, rp.reply_max_chars)
    return _BYTES_PER_CHAR * chars + _BODY_SLACK


def _store_down(exc: StoreError) -> Response:
    log.error("reports: storage failed: %s", exc)
    resp = problem(503, "store_unavailable", "Storage is unavailable, try again shortly")
    resp.headers["Retry-After"] = "5"
    return resp


def _not_ready() -> Response:
    resp = problem(503, "not_ready", "Reports are starting up")
    resp.headers["Retry-After"] = "1"
    return resp


def _invalid(exc: InvalidReport) -> Response:
    return problem(
        422,
        "invalid_report",
        "Invalid report",
        str(exc),
        errors=[{"field": exc.field, "detail": str(exc).partition(": ")[2]}],
    )


def routes(runtime: ReportsRuntime) -> list[BaseRoute]:
    """The report routes, relative to the prefix; none when ``reports.enabled`` is false."""
    policy = runtime.policy
    if not policy.reports.enabled:
        return []
    limit = body_limit(policy)
    provider_denied = bearer_check(
        policy.reports.provider_token, realm="aiguard-provider", title="Provider token required"
    )

    async def submit(request: Request) -> Response:
        identity = request_identity(request)
        if isinstance(identity, Response):
            return identity
        data = await read_json_object(request, limit)
        if isinstance(data, Response):
            return data
        service = runtime.reports
        if service is None:
            return _not_ready()
        try:
            report = await service.submit(
                identity,
                data.get("message_id"),
                data.get("category"),
                data.get("comment"),
                data.get("correction"),
            )
        except NotFound:
            return problem(404, "message_not_found", "Message not found")
        except InvalidReport as exc:
            return _invalid(exc)
        except StoreError as exc:
            return _store_down(exc)
        except RateLimited as exc:
            resp = problem(
                429, "rate_limited", "Too many reports", str(exc), retry_after=exc.retry_after
            )
            resp.headers["Retry-After"] = str(exc.retry_after)
            return resp
        status_url = f"{policy.prefix}/reports/{report.id}"
        procedure = service.procedure(identity.locale)
        created = report.changed and report.revision == 1
        return _json(
            {
                "report": report.public(),
                "procedure": {**procedure.ref(), "text": procedure.text},
                "status_url": status_url,
            },
            201 if created else 200,
            {"Location": status_url} if created else None,
        )

    async def status(request: Request) -> Response:
        identity = request_identity(request)
        if isinstance(identity, Response):
            return identity
        service = runtime.reports
        if service is None:
            return _not_ready()
        try:
            report = await service.status(identity, request.path_params["report_id"])
        except NotFound:
            return problem(404, "report_not_found", "Report not found")
        except StoreError as exc:
            return _store_down(exc)
        return _json({"report": report.public()})

    async def pull(request: Request) -> Response:
        denied = provider_denied(request)
        if denied is not None:
            return denied
        raw_cursor = request.query_params.get("cursor") or "0"
        raw_limit = request.query_params.get("limit") or str(DEFAULT_PULL_LIMIT)
        if not raw_cursor.isdigit() or len(raw_cursor) > 19 or int(raw_cursor) >= 2**63:
            return problem(400, "invalid_parameter", "Invalid cursor", parameter="cursor")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PULL_LIMIT:
            return problem(
                400, "invalid_parameter", f"limit must be 1..{MAX_PULL_LIMIT}", parameter="limit"
            )
        service = runtime.reports
        if service is None:
            return _not_ready()
        limit = int(raw_limit)
        try:
            items, next_cursor = await service.pull(int(raw_cursor), limit)
        except StoreError as exc:
            return _store_down(exc)
        return _json(
            {"items": items, "next_cursor": str(next_cursor), "has_more": len(items) == limit}
        )

    async def resolve(request: Request) -> Response:
        denied = provider_denied(request)
        if denied is not None:
            return denied
        data = await read_json_object(request, limit)
        if isinstance(data, Response):
            return data
        service = runtime.reports
        if service is None:
            return _not_ready()
        try:
            report = await service.resolve(
                request.path_params["report_id"],
                data.get("outcome"),
                data.get("reply"),
                data.get("revision"),
            )
        except NotFound:
            return problem(404, "report_not_found", "Report not found")
        except InvalidReport as exc:
            return _invalid(exc)
        except Conflict as exc:
            return problem(409, "report_changed", "Report changed", str(exc))
        except StoreError as exc:
            return _store_down(exc)
        return _json({"report": report.provider()})

    return [
        Route("/reports", submit, methods=["POST"]),
        Route("/reports/{report_id}", status, methods=["GET"]),
        Route("/provider/reports", pull, methods=["GET"]),
        Route("/provider/reports/{report_id}/resolution", resolve, methods=["POST"]),
    ]
