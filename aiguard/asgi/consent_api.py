"""HTTP API of the consent ledger (mounted under the policy prefix by the middleware).

Caller side (identity from ``scope["aiguard.identity"]``):

* ``GET /consent`` -> ``{subject, required, purposes: {p: {status, notice_version, updated_at}},
  notice}``; ``status`` is ``none``, ``granted``, ``refused``, ``withdrawn`` or ``outdated``
  (granted for an older notice version: ask again).
* ``POST /consent`` ``{"action": "granted"|"refused", "purposes": [...], "notice_version"?,
  "locale"?, "method"?}`` -> 201 ``{"records": [...]}``.
* ``POST /consent/withdraw`` ``{"purposes"?: [...]}`` (omitted: every purpose currently granted)
  -> 201 ``{"records": [...]}``.
* ``GET /consent/notice?lang=`` -> the notice in the negotiated (or requested) locale.

Compliance side (``Authorization: Bearer <consent.admin_token>``; unset token = 404):

* ``GET /admin/consent/export?since=&until=&subject=&format=csv|jsonl|receipt`` -> streamed.

Every error is ``application/problem+json``; nothing is written when a request is rejected.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from aiguard.asgi.auth import bearer_check
from aiguard.asgi.identity import RequestIdentity
from aiguard.asgi.problem import problem
from aiguard.asgi.requests import read_json_object, request_identity
from aiguard.policy.models import Policy
from aiguard.policy.prompts import Catalogue
from aiguard.services.consent import (
    ConsentService,
    InvalidConsentError,
    NoticeOutdatedError,
    UnknownPurposeError,
    to_timestamp,
)

log = logging.getLogger("aiguard")

MAX_BODY_BYTES = 16 * 1024  # 64 purposes of 64 characters fit five times over
EXPORT_CHUNK_BYTES = 64 * 1024
_NO_STORE = {"Cache-Control": "no-store"}
_MEDIA = {"csv": "text/csv; charset=utf-8", "jsonl": "application/x-ndjson"}
_EXT = {"csv": "csv", "jsonl": "jsonl", "receipt": "receipts.jsonl"}

Purpose = Annotated[str, StringConstraints(min_length=1, max_length=64)]
Short = Annotated[str, StringConstraints(min_length=1, max_length=32)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ConsentIn(_Strict):
    action: Literal["granted", "refused"]
    purposes: list[Purpose] = Field(min_length=1, max_length=64)
    notice_version: Short | None = None
    """The notice version the subject was shown; a stale one gets 409 and the current notice."""
    locale: Annotated[str, StringConstraints(min_length=2, max_length=35)] | None = None
    method: Short = "api"


class WithdrawIn(_Strict):
    purposes: list[Purpose] | None = Field(default=None, min_length=1, max_length=64)


class ExportQuery(_Strict):
    format: Literal["csv", "jsonl", "receipt"] = "jsonl"
    since: Annotated[str, StringConstraints(max_length=40)] | None = None
    until: Annotated[str, StringConstraints(max_length=40)] | None = None
    subject: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None


class ConsentRuntime(Protocol):
    """The part of ``aiguard.runtime.Runtime`` these routes use."""

    @property
    def policy(self) -> Policy: ...

    @property
    def catalogue(self) -> Catalogue: ...

    @property
    def consent(self) -> ConsentService | None: ...


def _json(data: Any, status: int = 200) -> Response:
    return JSONResponse(data, status_code=status, headers=_NO_STORE)


def _validation_problem(exc: ValidationError) -> Response:
    errors = [
        {"field": ".".join(str(p) for p in e["loc"]) or "body", "detail": e["msg"]}
        for e in exc.errors(include_url=False, include_input=False)
    ]
    too_long = any(e["type"] in {"string_too_long", "too_long"} for e in exc.errors())
    return problem(
        422,
        "field_too_large" if too_long else "invalid_consent",
        "A field is too large" if too_long else "Invalid consent request",
        errors[0]["field"] + ": " + errors[0]["detail"],
        errors=errors,
    )


def _not_ready() -> Response:
    resp = problem(503, "not_ready", "The consent ledger is starting up")
    resp.headers["Retry-After"] = "1"
    return resp


def _unknown_purpose(exc: UnknownPurposeError, policy: Policy) -> Response:
    return problem(
        422,
        "unknown_purpose",
        "Unknown consent purpose",
        str(exc),
        purposes=exc.purposes,
        known=list(policy.consent.purposes),
    )


async def _chunked(lines: AsyncIterator[str]) -> AsyncIterator[bytes]:
    """Group export lines into ~64 KiB body messages: few sends, memory still bounded."""
    buf: list[str] = []
    size = 0
    async for line in lines:
        buf.append(line)
        size += len(line)
        if size >= EXPORT_CHUNK_BYTES:
            yield "".join(buf).encode("utf-8")
            buf, size = [], 0
    if buf:
        yield "".join(buf).encode("utf-8")


def routes(runtime: ConsentRuntime) -> list[BaseRoute]:
    """The consent routes, relative to the prefix."""
    policy = runtime.policy
    admin_denied = bearer_check(
        policy.consent.admin_token, realm="aiguard-admin", title="Admin token required"
    )

    async def status(request: Request) -> Response:
        identity = request_identity(request)
        if isinstance(identity, Response):
            return identity
        service = runtime.consent
        if service is None:
            return _not_ready()
        return _json(await service.status(identity.subject_id, identity.locale))

    async def record(request: Request) -> Response:
        identity = request_identity(request)
        if isinstance(identity, Response):
            return identity
        data = await read_json_object(request, MAX_BODY_BYTES)
        if isinstance(data, Response):
            return data
        try:
            body = ConsentIn.model_validate(data)
        except ValidationError as exc:
            return _validation_problem(exc)
        service = runtime.consent
        if service is None:
            return _not_ready()
        locale = body.locale or identity.locale
        try:
            records = await service.record(
                identity,
                list(body.purposes),
                body.action,
                body.method,
                locale,
                notice_version=body.notice_version,
            )
        except UnknownPurposeError as exc:
            return _unknown_purpose(exc, policy)
        except NoticeOutdatedError as exc:
            return problem(
                409,
                "notice_outdated",
                "The consent notice has changed",
                str(exc),
                notice=service.challenge([], locale)["notice"],
            )
        except InvalidConsentError as exc:
            return problem(422, "invalid_consent", "Invalid consent request", str(exc))
        return _json({"records": [r.as_dict() for r in records]}, 201)

    async def withdraw(request: Request) -> Response:
        identity = request_identity(request)
        if isinstance(identity, Response):
            return identity
        data = await read_json_object(request, MAX_BODY_BYTES, allow_empty=True)
        if isinstance(data, Response):
            return data
        try:
            body = WithdrawIn.model_validate(data)
        except ValidationError as exc:
            return _validation_problem(exc)
        service = runtime.consent
        if service is None:
            return _not_ready()
        purposes = list(body.purposes) if body.purposes is not None else None
        if purposes is None:  # everything the subject currently has granted
            state = (await service.status(identity.subject_id, identity.locale))["purposes"]
            purposes = [p for p, s in state.items() if s["status"] in {"granted", "outdated"}]
            if not purposes:
                return _json({"records": []}, 201)
        try:
            records = await service.record(identity, purposes, "withdrawn", "api")
        except UnknownPurposeError as exc:
            return _unknown_purpose(exc, policy)
        return _json({"records": [r.as_dict() for r in records]}, 201)

    async def notice(request: Request) -> Response:
        identity: RequestIdentity | None = request.scope.get("aiguard.identity")
        lang = request.query_params.get("lang")
        if lang is not None and (len(lang) > 35 or not lang.replace("-", "").isalnum()):
            return problem(400, "invalid_query", "lang must be a language tag")
        locale = lang or (identity.locale if identity else None) or policy.default_locale
        text = runtime.catalogue.text(policy.consent.notice, runtime.catalogue.resolve(locale))
        return _json(
            {
                **text.ref(),
                "text": text.text,
                "purposes": list(policy.consent.purposes),
                "required": list(policy.consent.required),
            }
        )

    async def export(request: Request) -> Response:
        denied = admin_denied(request)
        if denied is not None:
            return denied
        try:
            query = ExportQuery.model_validate(dict(request.query_params))
            since = to_timestamp(query.since) if query.since else None
            until = to_timestamp(query.until) if query.until else None
        except ValidationError as exc:
            return _validation_problem(exc)
        except ValueError as exc:
            return problem(400, "invalid_query", "since/until must be ISO 8601", str(exc))
        service = runtime.consent
        if service is None:
            return _not_ready()
        lines = service.export(query.format, since=since, until=until, subject_id=query.subject)
        stamp = datetime.now().strftime("%Y%m%dT%H%M%S")
        return StreamingResponse(
            _chunked(lines),
            media_type=_MEDIA.get(query.format, "application/x-ndjson"),
            headers={
                **_NO_STORE,
                "Content-Disposition": (
                    f'attachment; filename="consent-{stamp}.{_EXT[query.format]}"'
                ),
            },
        )

    return [
        Route("/consent", status, methods=["GET"]),
        Route("/consent", record, methods=["POST"]),
        Route("/consent/withdraw", withdraw, methods=["POST"]),
        Route("/consent/notice", notice, methods=["GET"]),
        Route("/admin/consent/export", export, methods=["GET"]),
    ]
