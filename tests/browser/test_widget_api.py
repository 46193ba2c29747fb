"""The widget routes over HTTP (no browser needed): assets, caching, i18n negotiation."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from aiguard.asgi.identity import RequestIdentity
from aiguard.asgi.widget_api import demo_html, routes, static_bytes
from aiguard.policy.prompts import Catalogue

LOCALES = ["en", "zh-CN", "nl", "de", "fr", "es"]
CATEGORIES = ["inaccurate", "outdated", "harmful", "infringing", "privacy", "other"]


class _Runtime:
    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue


class _WithIdentity:
    """Stands in for the middleware: the identity's locale is what it negotiated."""

    def __init__(self, app: ASGIApp, locale: str) -> None:
        self.app, self.locale = app, locale

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["aiguard.identity"] = RequestIdentity("0" * 32, "c" * 32, self.locale)
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue()


@pytest.fixture
def client(catalogue: Catalogue) -> Iterator[TestClient]:
    app = Starlette(routes=[Mount("/aiguard", routes=routes(_Runtime(catalogue)))])
    with TestClient(app) as c:
        yield c


@pytest.mark.parametrize(
    ("path", "media_type", "file"),
    [
        ("/aiguard/widget.js", "text/javascript; charset=utf-8", "widget.js"),
        ("/aiguard/widget.css", "text/css; charset=utf-8", "widget.css"),
    ],
)
def test_static_assets_with_etag(client: TestClient, path: str, media_type: str, file: str) -> None:
    r = client.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"] == media_type
    assert r.headers["cache-control"] == "public, max-age=300"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.content == static_bytes(file)
    etag = r.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)

    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert client.get(path, headers={"If-None-Match": "W/" + etag}).status_code == 304
    assert client.get(path, headers={"If-None-Match": '"other", ' + etag}).status_code == 304
    assert client.get(path, headers={"If-None-Match": '"other"'}).status_code == 200
    head = client.head(path)
    assert head.status_code == 200 and head.headers["etag"] == etag


@pytest.mark.parametrize(
    ("query", "accept_language", "expected"),
    [
        ("", None, "en"),
        ("", "de-DE,de;q=0.9,en;q=0.5", "de"),
        ("", "zh-TW", "zh-CN"),
        ("?lang=fr", "de", "fr"),
        ("?lang=es-MX", None, "es"),
        ("?lang=xx", "nl", "en"),  # unknown tag: the default, not Accept-Language
        ("", "xx, *;q=0.1", "en"),
    ],
)
def test_i18n_negotiation(
    client: TestClient,
    catalogue: Catalogue,
    query: str,
    accept_language: str | None,
    expected: str,
) -> None:
    headers = {"Accept-Language": accept_language} if accept_language else {}
    r = client.get("/aiguard/i18n" + query, headers=headers)
    assert r.status_code == 200
    body = r.json()
    assert body["locale"] == expected
    assert body["strings"] == catalogue.strings("widget", expected)
    assert body["version"] == "1" and len(body["sha256"]) == 64
    assert r.headers["content-language"] == expected
    assert r.headers["cache-control"].startswith("private")
    assert "Accept-Language" in r.headers["vary"]


def test_i18n_uses_the_identity_locale(catalogue: Catalogue) -> None:
    inner = Starlette(routes=[Mount("/aiguard", routes=routes(_Runtime(catalogue)))])
    with TestClient(_WithIdentity(inner, "nl")) as c:
        assert c.get("/aiguard/i18n", headers={"Accept-Language": "de"}).json()["locale"] == "nl"
        assert c.get("/aiguard/i18n?lang=es").json()["locale"] == "es"  # ?lang= still wins


def test_every_locale_has_every_string(catalogue: Catalogue) -> None:
    english = catalogue._strings[("widget", "en")]
    needed = {"badge", "badge_label", "consent_title", "consent_accept", "consent_decline"}
    needed |= {"consent_withdraw", "report_open", "report_received", "report_submit"}
    needed |= {f"category_{c}" for c in CATEGORIES}
    assert needed <= english.keys()
    for locale in LOCALES:
        table = catalogue._strings[("widget", locale)]
        assert table.keys() == english.keys(), locale
        for key, text in table.items():
            assert text.strip(), (locale, key)
            placeholders = set(re.findall(r"\{(\w+)\}", text))
            assert placeholders == set(re.findall(r"\{(\w+)\}", english[key])), (locale, key)
            if locale != "en" and key not in {"badge", "demo_assistant"}:
                # a real translation, not a copy of the English text
                assert text != english[key] or len(text) < 12, (locale, key)


def test_widget_knows_every_string_key_it_uses(catalogue: Catalogue) -> None:
    english = catalogue._strings[("widget", "en")]
    code = static_bytes("widget.js").decode() + static_bytes("demo.html").decode()
    used = set(re.findall(r"""\bt\(\s*["']([a-z_]+)["']\s*[,)]""", code))
    used |= set(re.findall(r"""(?:textKey|labelKey):\s*["']([a-z_]+)["']""", code))
    used |= {f"category_{c}" for c in CATEGORIES}
    assert used, "no keys found: the pattern is stale"
    assert used <= english.keys(), used - english.keys()


def test_demo_html_follows_the_prefix() -> None:
    assert demo_html() == static_bytes("demo.html")
    page = demo_html("/guard").decode()
    assert 'src="/guard/widget.js"' in page and 'data-prefix="/guard"' in page
    assert 'href="/guard/widget.css"' in page
    assert "/aiguard/" not in page
