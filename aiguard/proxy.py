"""An OpenAI-compatible guarding proxy: any chatbot, in any language, gets aiguard by URL.

``build_proxy("https://api.openai.com/v1", policy=policy)`` returns an ASGI app that forwards
``POST /v1/chat/completions`` and ``GET /v1/models[/{id}]`` to the upstream base URL, wrapped in
:class:`~aiguard.AIGuardMiddleware`. Point the chatbot's OpenAI base URL at
``http://proxy:8080/v1`` and its answers carry the disclosure, pass the consent gate and the
screens, and can be reported under ``/aiguard``.

Only those two endpoints are forwarded; anything else is a 404 problem. With a configured
upstream key the proxy holds a credential the caller does not, so it must not become a general
gateway to the upstream account (files, fine-tuning, billing).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import anyio
import httpx
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiguard.asgi.middleware import AIGuardMiddleware
from aiguard.asgi.problem import problem
from aiguard.errors import ConfigError
from aiguard.policy.models import Policy
from aiguard.runtime import Runtime

log = logging.getLogger("aiguard.proxy")

CHAT_PATH = "/v1/chat/completions"
_PREFIX = "/v1"

# RFC 9110 section 7.6.1: meaningful for one connection only, never forwarded.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Set by each side itself: the outgoing connection (host, length, encoding we ask for) and
# uvicorn (date, server) would otherwise duplicate them. Cookies belong to the proxy's origin
# (aiguard's signed browser id) and mean nothing to an API upstream, in either direction.
_REQUEST_DROP = _HOP_BY_HOP | {"host", "content-length", "accept-encoding", "cookie"}
_RESPONSE_DROP = _HOP_BY_HOP | {"date", "server", "set-cookie"}


def build_proxy(
    upstream: str,
    *,
    policy: Policy,
    api_key: str | None = None,
    timeout: float = 60,
    runtime: Runtime | None = None,
) -> ASGIApp:
    """The guarding proxy as an ASGI app (serve it with uvicorn; lifespan ``on``).

    ``upstream`` is the upstream's OpenAI base URL, as given to ``openai.OpenAI(base_url=...)``
    (e.g. ``http://127.0.0.1:11434/v1``). ``api_key`` replaces the caller's ``Authorization``;
    without it the caller's header is passed through. ``timeout`` bounds connecting and each
    read (seconds between two streamed chunks, not the whole answer). ``runtime`` lets an
    embedder inject services (e.g. a screener), as with the middleware.
    """
    url = httpx.URL(upstream)
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"proxy upstream must be an http(s) URL, got {upstream!r}")
    if timeout <= 0:
        raise ConfigError("proxy timeout must be positive")
    if runtime is not None and runtime.policy is not policy:
        raise ConfigError("build_proxy: runtime.policy must be the policy passed")
    if not any(
        r.path == CHAT_PATH or (r.path.endswith("*") and CHAT_PATH.startswith(r.path[:-1]))
        for r in policy.routes
        if "POST" in r.methods
    ):
        # a proxy whose chat route is not guarded would silently forward raw answers
        raise ConfigError(f"policy.routes must guard POST {CHAT_PATH} for the proxy")
    forwarder = Forwarder(
        upstream,
        api_key=api_key,
        timeout=timeout,
        max_body=policy.max_body_bytes,
        strip_request=(policy.identity.subject_header, policy.identity.conversation_header),
    )
    app = Starlette(
        routes=[
            Route(CHAT_PATH, forwarder, methods=["POST"]),
            Route("/v1/models", forwarder, methods=["GET"]),
            Route("/v1/models/{model:path}", forwarder, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_problem},
        lifespan=forwarder.lifespan,
    )
    if runtime is not None:
        return AIGuardMiddleware(app, runtime=runtime)
    return AIGuardMiddleware(app, policy=policy)


async def _http_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 413: "request_too_large"}
    code = codes.get(exc.status_code, "http_error")
    response = problem(exc.status_code, code, exc.detail, request.url.path)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


class Forwarder:
    """The ASGI endpoint that relays one request upstream and streams the answer back."""

    def __init__(
        self,
        upstream: str,
        *,
        api_key: str | None,
        timeout: float,
        max_body: int,
        strip_request: tuple[str, ...] = (),
    ) -> None:
        url = httpx.URL(upstream)
        # path and query kept apart: some upstreams need a query on every call (Azure's
        # ?api-version=...), which must follow the forwarded path, not precede it
        self.upstream = str(url.copy_with(query=None, fragment=None)).rstrip("/")
        self._query = url.query.decode("ascii")
        self._auth = f"Bearer {api_key}" if api_key else None
        self._timeout = httpx.Timeout(timeout)
        self._max_body = max_body
        # aiguard's own identity headers are for the proxy, not the model provider
        self._drop = _REQUEST_DROP | {h.lower() for h in strip_request}
        self.client: httpx.AsyncClient | None = None

    def _new_client(self) -> httpx.AsyncClient:
        # trust_env like the openai SDK: HTTPS_PROXY / SSL_CERT_FILE reach a corporate upstream
        return httpx.AsyncClient(timeout=self._timeout)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: object) -> AsyncIterator[None]:
        self.client = self._new_client()
        try:
            yield
        finally:
            client, self.client = self.client, None
            await client.aclose()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.client is None:
            # the server sent no lifespan: one client for the process, closed at exit
            log.warning("aiguard proxy: no ASGI lifespan; HTTP client created on first request")
            self.client = self._new_client()
        body = await self._read_body(receive)
        if body is None:
            return  # client went away before the request was complete
        path: str = scope["path"]
        target = self.upstream + path[len(_PREFIX) :]
        asked = scope.get("query_string", b"").decode("latin-1")
        query = "&".join(q for q in (self._query, asked) if q)
        if query:
            target += "?" + query
        request = self.client.build_request(
            scope["method"], target, headers=self._request_headers(scope), content=body
        )
        try:
            upstream = await self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            log.warning("aiguard proxy: upstream %s timed out: %r", target, exc)
            await problem(504, "upstream_timeout", "The upstream model timed out", target)(
                scope, receive, send
            )
            return
        except httpx.HTTPError as exc:
            log.warning("aiguard proxy: upstream %s unreachable: %r", target, exc)
            await problem(502, "upstream_unreachable", "The upstream model is unreachable", target)(
                scope, receive, send
            )
            return
        try:
            await self._relay(upstream, receive, send)
        finally:
            await upstream.aclose()

    async def _read_body(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:  # the middleware limits guarded routes first
                raise HTTPException(413, "Request body too large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _request_headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        raw: list[tuple[bytes, bytes]] = scope["headers"]
        drop = self._drop | _connection_tokens(raw)
        if self._auth is not None:
            drop = drop | {"authorization"}
        headers = [(k, v) for k, v in raw if k.decode("latin-1").lower() not in drop]
        # aiguard must read the answer to screen it: never let the upstream compress it
        headers.append((b"accept-encoding", b"identity"))
        if self._auth is not None:
            headers.append((b"authorization", self._auth.encode("latin-1")))
        return headers

    async def _relay(self, upstream: httpx.Response, receive: Receive, send: Send) -> None:
        """Send the upstream answer as it arrives; stop reading when the client leaves."""
        raw = upstream.headers.raw
        drop = _RESPONSE_DROP | _connection_tokens(raw)
        encoded = upstream.headers.get("content-encoding", "identity").lower() != "identity"
        if encoded:
            # the upstream compressed anyway: decode here so the answer can still be screened
            drop = drop | {"content-encoding", "content-length"}
        headers = [(k, v) for k, v in raw if k.decode("latin-1").lower() not in drop]
        chunks = upstream.aiter_bytes() if encoded else upstream.aiter_raw()

        async def pump() -> None:
            await send(
                {"type": "http.response.start", "status": upstream.status_code, "headers": headers}
            )
            try:
                async for chunk in chunks:
                    if chunk:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.HTTPError as exc:
                # raised on purpose: aiguard's responder ends the stream with an error event
                log.warning(
                    "aiguard proxy: upstream %s broke mid-answer: %r", upstream.request.url, exc
                )
                raise
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        # The error is re-raised outside the task group, which would wrap it in an
        # ExceptionGroup: the middleware must see its own StreamAborted (a blocked answer) and
        # the httpx error of a broken upstream as they are.
        error: Exception | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
            try:
                await pump()
            except Exception as exc:
                error = exc
            finally:
                tg.cancel_scope.cancel()
        if error is not None:
            raise error


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """The caller left: cancel the relay so the upstream stops generating (and billing)."""
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


def _connection_tokens(raw: Any) -> set[str]:
    """Header names listed in ``Connection`` are hop-by-hop too (RFC 9110 section 7.6.1)."""
    names: set[str] = set()
    for key, value in raw:
        if key.lower() == b"connection":
            names.update(t.strip().lower() for t in value.decode("latin-1").split(",") if t)
    return names
