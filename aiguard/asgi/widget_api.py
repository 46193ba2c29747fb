"""The embeddable widget: its static assets and the UI strings it shows.

``GET /widget.js`` and ``GET /widget.css`` are read once when the routes are built and served
from memory with a strong ETag (a browser revalidates with ``If-None-Match`` and gets a 304).
``GET /i18n`` answers the ``widget`` strings for the caller's locale: ``?lang=`` wins, then the
locale the middleware resolved into ``scope["aiguard.identity"]``, then ``Accept-Language``
(for when the routes are mounted without the middleware, e.g. in tests).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from aiguard.policy.prompts import Catalogue

STATIC_DIR = Path(__file__).resolve().parent / "static"
STRINGS_NAME = "widget"  # prompts/<locale>/widget.toml
# Short enough that a deployment upgrade reaches browsers quickly; the ETag makes the
# revalidation after expiry cost a 304 instead of the whole file.
ASSET_CACHE_CONTROL = "public, max-age=300"
# Strings depend on the caller's language, so only the browser may cache them.
I18N_CACHE_CONTROL = "private, max-age=300"


class WidgetRuntime(Protocol):
    """The part of ``aiguard.runtime.Runtime`` these routes use."""

    @property
    def catalogue(self) -> Catalogue: ...


@dataclass(frozen=True, slots=True)
class StaticAsset:
    body: bytes
    media_type: str
    etag: str

    @classmethod
    def load(cls, name: str, media_type: str) -> StaticAsset:
        body = static_bytes(name)
        return cls(body, media_type, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')

    def response(self, request: Request) -> Response:
        headers = {
            "ETag": self.etag,
            "Cache-Control": ASSET_CACHE_CONTROL,
            "X-Content-Type-Options": "nosniff",
        }
        if _etag_matches(request.headers.get("if-none-match"), self.etag):
            return Response(status_code=304, headers=headers)
        return Response(self.body, media_type=self.media_type, headers=headers)


def _etag_matches(header: str | None, etag: str) -> bool:
    if not header:
        return False
    if header.strip() == "*":
        return True
    # weak comparison (RFC 9110 §13.1.2): a proxy may have turned our tag into W/"..."
    return any(tag.strip().removeprefix("W/") == etag for tag in header.split(","))


def static_bytes(name: str) -> bytes:
    """One file of ``aiguard/asgi/static/`` (works from a wheel and a source tree)."""
    return (STATIC_DIR / name).read_bytes()


def demo_html(prefix: str = "/aiguard") -> bytes:
    """The demo chat page, with its widget URLs pointed at ``prefix``."""
    page = static_bytes("demo.html")
    if prefix == "/aiguard":
        return page
    return page.replace(b'"/aiguard/', b'"' + prefix.encode("utf-8") + b"/").replace(
        b'data-prefix="/aiguard"', b'data-prefix="' + prefix.encode("utf-8") + b'"'
    )


def _locale(request: Request, catalogue: Catalogue) -> str:
    lang = request.query_params.get("lang")
    if lang:
        return catalogue.resolve(lang[:35])
    identity = request.scope.get("aiguard.identity")
    locale = getattr(identity, "locale", None)
    if isinstance(locale, str) and locale:
        return catalogue.resolve(locale)
    return catalogue.negotiate(request.headers.get("accept-language"))


def routes(runtime: WidgetRuntime) -> list[BaseRoute]:
    """``/widget.js``, ``/widget.css`` and ``/i18n``, relative to the aiguard prefix."""
    catalogue = runtime.catalogue
    script = StaticAsset.load("widget.js", "text/javascript; charset=utf-8")
    style = StaticAsset.load("widget.css", "text/css; charset=utf-8")

    async def widget_js(request: Request) -> Response:
        return script.response(request)

    async def widget_css(request: Request) -> Response:
        return style.response(request)

    async def i18n(request: Request) -> Response:
        locale = _locale(request, catalogue)
        text = catalogue.text(STRINGS_NAME, locale)
        body = {
            "locale": text.locale,
            "version": text.version,
            "sha256": text.sha256,
            "strings": catalogue.strings(STRINGS_NAME, locale),
        }
        headers = {
            "Cache-Control": I18N_CACHE_CONTROL,
            "Vary": "Accept-Language, Cookie",
            "Content-Language": text.locale,
        }
        return JSONResponse(body, headers=headers)

    return [
        Route("/widget.js", widget_js, methods=["GET", "HEAD"]),
        Route("/widget.css", widget_css, methods=["GET", "HEAD"]),
        Route("/i18n", i18n, methods=["GET"]),
    ]
