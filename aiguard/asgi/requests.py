"""Reading requests to aiguard's own API: the caller's identity and a bounded JSON object."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from aiguard.asgi.identity import RequestIdentity
from aiguard.asgi.problem import problem
from aiguard.wire import jsoncodec


def request_identity(request: Request) -> RequestIdentity | Response:
    """The identity the middleware resolved for this request (it always does under the prefix)."""
    identity: RequestIdentity | None = request.scope.get("aiguard.identity")
    if identity is None:
        return problem(500, "identity_missing", "Request identity missing")  # a wiring bug
    return identity


def _too_large(limit: int) -> Response:
    return problem(413, "body_too_large", "Request body too large", f"limit {limit} bytes")


async def read_json_object(
    request: Request, limit: int, *, allow_empty: bool = False
) -> dict[str, Any] | Response:
    """The request's JSON object, or the problem response explaining why not.

    The body is read at most ``limit`` bytes far (a lying or absent Content-Length cannot make
    us buffer more); ``allow_empty`` turns an empty body into ``{}``.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return _too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return _too_large(limit)
    if allow_empty and not body.strip():
        return {}
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json" and not ctype.endswith("+json"):
        return problem(415, "unsupported_media_type", "Send application/json")
    try:
        data = jsoncodec.loads(bytes(body))
    except ValueError as exc:
        return problem(400, "invalid_json", "Body is not valid JSON", str(exc)[:200])
    if not isinstance(data, dict):
        return problem(400, "invalid_json", "Body must be a JSON object")
    return data
