"""``AIGuardMiddleware``: pure ASGI, one short chain of cheap guards per request."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import cookie_parser
from starlette.routing import Mount, Router
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aiguard.asgi.identity import RequestIdentity, new_cookie_value
from aiguard.asgi.problem import problem
from aiguard.asgi.responder import Responder, StreamAborted
from aiguard.errors import ConfigError
from aiguard.policy.loading import load_policy
from aiguard.policy.models import Policy, RouteRule
from aiguard.runtime import Runtime
from aiguard.wire import jsoncodec
from aiguard.wire.openai_chat import has_assistant_turn, request_info

log = logging.getLogger("aiguard")


class AIGuardMiddleware:
    """Wrap an ASGI chatbot app: disclose AI, gate on consent, screen answers, record them.

    ``AIGuardMiddleware(app, policy=load_policy("aiguard.toml"))``, or keyword overrides
    (``AIGuardMiddleware(app, provider="Acme", disclosure={"mode": "every"})``) on top of
    ``AIGUARD_*`` environment variables. Place it inside compression middleware.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        policy: Policy | None = None,
        runtime: Runtime | None = None,
        **overrides: Any,
    ) -> None:
        if runtime is not None:
            policy = runtime.policy
        elif policy is None:
            policy = load_policy(**overrides)
        elif overrides:
            raise ConfigError("pass either policy= or keyword overrides, not both")
        self.app = app
        self.policy = policy
        self.runtime = runtime or Runtime(policy)
        self._exact: dict[str, RouteRule] = {}
        self._prefixed: list[tuple[str, RouteRule]] = []
        for rule in policy.routes:
            if rule.path.endswith("*"):
                self._prefixed.append((rule.path[:-1], rule))
            else:
                self._exact[rule.path] = rule
        self._api_prefix = policy.prefix
        self._api_slash = policy.prefix + "/"
        self._api: ASGIApp | None = None
        self._max_body = policy.max_body_bytes
        idp = policy.identity
        self._cookie_name = idp.cookie_name
        self._cookie_attrs = (
            f"; Path=/; Max-Age={idp.cookie_max_age_days * 86400}; HttpOnly; SameSite=Lax"
            + ("; Secure" if idp.cookie_secure else "")
        )
        self._subject_header = idp.subject_header.lower().encode("latin-1")
        self._conversation_header = idp.conversation_header.lower().encode("latin-1")
        self._wanted_headers = frozenset(
            {
                b"content-type",
                b"cookie",
                b"accept-language",
                b"user-agent",
                self._subject_header,
                self._conversation_header,
            }
        )
        self._fixed_locale = (
            self.runtime.catalogue.resolve(policy.locale) if policy.locale else None
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            rule = self._exact.get(path)
            if rule is None and self._prefixed:
                rule = next((r for p, r in self._prefixed if path.startswith(p)), None)
            if rule is not None and scope["method"] in rule.methods:
                await self._guard(rule, scope, receive, send)
            elif path.startswith(self._api_slash) or path == self._api_prefix:
                await self._serve_api(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    # -- lifespan -----------------------------------------------------------------------------

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = self.runtime
        first = await receive()
        if first["type"] == "lifespan.startup":
            try:
                await runtime.ensure_started()
            except Exception as exc:  # report it the ASGI way; the server then refuses to start
                log.exception("aiguard could not start")
                await send({"type": "lifespan.startup.failed", "message": repr(exc)})
                return
        replayed = False

        async def wrapped_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return first
            return await receive()

        async def wrapped_send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete" and runtime.started:
                await runtime.stop()
            await send(message)

        await self.app(scope, wrapped_receive, wrapped_send)

    # -- shared steps ---------------------------------------------------------------------------

    async def _ready(self, send: Send) -> bool:
        if self.runtime.started:
            return True
        try:
            await self.runtime.ensure_started()
        except Exception:
            log.exception("aiguard could not start")
            await _respond(
                problem(503, "aiguard_unavailable", "Service unavailable", "aiguard is starting"),
                send,
            )
            return False
        return True

    def _read_headers(self, scope: Scope) -> dict[bytes, str]:
        """The request headers aiguard uses, in one pass (ASGI names are lower-case bytes)."""
        wanted = self._wanted_headers
        found: dict[bytes, str] = {}
        for key, value in scope["headers"]:
            if key in wanted:
                if key not in found:
                    found[key] = value.decode("latin-1")
                elif key == b"cookie":  # HTTP/2 may split cookies over several fields
                    found[key] += "; " + value.decode("latin-1")
        return found

    def _identify(
        self, scope: Scope, headers: dict[bytes, str], user: str | None
    ) -> RequestIdentity:
        rt = self.runtime
        pz = rt.pseudonymizer
        cookie_value: str | None = None
        raw_cookie = headers.get(b"cookie")
        if raw_cookie:
            token = cookie_parser(raw_cookie).get(self._cookie_name)
            if token:
                cookie_value = pz.unsign(token)
        set_cookie: str | None = None
        raw_subject = headers.get(self._subject_header)
        if raw_subject:
            subject = pz.subject("u:" + raw_subject)
        elif cookie_value:
            subject = pz.subject("c:" + cookie_value)
        elif user:
            subject = pz.subject("u:" + user)
        else:
            cookie_value = new_cookie_value()
            set_cookie = f"{self._cookie_name}={pz.sign(cookie_value)}{self._cookie_attrs}"
            subject = pz.subject("c:" + cookie_value)
        raw_conv = headers.get(self._conversation_header)
        if raw_conv:
            conversation = pz.conversation("h:" + raw_conv[:256])
        elif user:
            conversation = pz.conversation("u:" + user)
        else:
            conversation = pz.conversation("c:" + (cookie_value or subject))
        locale = self._fixed_locale or rt.catalogue.negotiate(headers.get(b"accept-language"))
        client = scope.get("client")
        return RequestIdentity(
            subject_id=subject,
            conversation_id=conversation,
            locale=locale,
            client_ip=client[0] if client else None,
            user_agent=headers.get(b"user-agent"),
            set_cookie=set_cookie,
        )

    # -- guarded chat routes --------------------------------------------------------------------

    async def _guard(self, rule: RouteRule, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.runtime.started and not await self._ready(send):
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self._max_body:
                await _respond(
                    problem(
                        413,
                        "request_too_large",
                        "Request body too large",
                        f"the limit is {self._max_body} bytes",
                    ),
                    send,
                )
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        headers = self._read_headers(scope)
        request_json: Any = None
        if body and "json" in headers.get(b"content-type", ""):
            try:
                request_json = jsoncodec.loads(body)
            except ValueError as exc:
                await _respond(
                    problem(400, "invalid_json", "Malformed JSON request body", str(exc)), send
                )
                return
        model, user, messages, _ = request_info(request_json)
        identity = self._identify(scope, headers, user)
        scope = {**scope, "aiguard.identity": identity}
        rt = self.runtime
        if rt.consent is not None and self.policy.consent.required:
            decision = await rt.consent.check(identity.subject_id)
            if not decision.allowed:
                challenge = rt.consent.challenge(list(decision.missing), identity.locale)
                response = problem(
                    428,
                    "consent_required",
                    "Consent required",
                    "record consent before chatting",
                    **challenge,
                )
                if identity.set_cookie:
                    response.headers.append("set-cookie", identity.set_cookie)
                await _respond(response, send)
                return
        responder = Responder(
            self.runtime,
            send,
            rule=rule,
            identity=identity,
            method=scope["method"],
            model=model,
            has_assistant_turn=has_assistant_turn(messages) if messages is not None else None,
        )
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        try:
            await self.app(scope, replay, responder.send)
        except StreamAborted:
            pass  # we ended the stream on purpose (blocked answer): stop the upstream too
        except ExceptionGroup as group:
            # apps that send from inside a task group wrap our abort in a group
            _, rest = group.split(StreamAborted)
            if rest is not None:
                await responder.upstream_failed(rest)
        except Exception as exc:
            await responder.upstream_failed(exc)
        await responder.close()

    # -- aiguard's own API ----------------------------------------------------------------------

    async def _serve_api(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.runtime.started and not await self._ready(send):
            return
        identity = self._identify(scope, self._read_headers(scope), None)
        scope = {**scope, "aiguard.identity": identity}
        if self._api is None:
            self._api = Router(
                routes=[
                    Mount(
                        self._api_prefix,
                        app=Router(routes=self.runtime.api_routes(), default=_not_found),
                    )
                ],
                default=_not_found,
            )
        started = False

        async def api_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if identity.set_cookie:
                    message.setdefault("headers", [])
                    message["headers"] = [
                        *message["headers"],
                        (b"set-cookie", identity.set_cookie.encode("latin-1")),
                    ]
            await send(message)

        try:
            await self._api(scope, receive, api_send)
        except Exception:
            log.exception("aiguard API error on %s", scope["path"])
            if not started:
                await _respond(problem(500, "internal_error", "Internal error"), send)


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    await _respond(problem(404, "not_found", "Not found", scope["path"]), send)


async def _respond(response: Any, send: Send) -> None:
    async def no_receive() -> Message:
        return {"type": "http.disconnect"}

    await response({"type": "http"}, no_receive, send)
