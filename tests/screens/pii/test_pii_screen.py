"""PIIScreen as the pipeline sees it: the Screen protocol, async, offline, off the event loop."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import anyio
import anyio.to_thread
import pytest
import spacy
import tldextract.tldextract

from aiguard.errors import ConfigError, ScreenError
from aiguard.screens.base import Screen, ScreenContext, Verdict
from aiguard.screens.pii import PIIScreen, redact
from aiguard.screens.pii.prefilter import Window
from aiguard.screens.pii.screen import _resolve

pytestmark = pytest.mark.anyio

ANSWER = (
    "Thanks for reaching out! I've updated your profile. For the record, the contact e-mail "
    "is maria.lopez@example.org and the phone number +44 20 7946 0958. Refunds go to "
    "IBAN GB82 WEST 1234 5698 7654 32. Anything else I can help with?"
)


def test_is_a_screen() -> None:
    assert isinstance(PIIScreen(), Screen)
    assert PIIScreen(name="pii-strict").name == "pii-strict"


async def test_screen_finds_and_redacts(pii: PIIScreen) -> None:
    result = await pii.screen(ANSWER, ScreenContext(locale="en-GB"))
    assert result.screen == "pii"
    assert result.verdict is Verdict.REDACT
    assert result.error is None
    assert [s.label for s in result.spans] == ["EMAIL_ADDRESS", "PHONE_NUMBER", "IBAN_CODE"]
    assert all(0.5 <= s.score <= 1.0 and s.explanation for s in result.spans)
    assert redact(ANSWER, result.spans).count("[") == 3
    assert "is [EMAIL] and the phone number [PHONE]" in redact(ANSWER, result.spans)
    assert result.elapsed_ms > 0
    assert result.to_json()["verdict"] == "redact"


async def test_clean_answer_is_allowed_inline_without_a_thread(
    pii: PIIScreen, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_thread(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a clean answer must not hop to a worker thread")

    monkeypatch.setattr(anyio.to_thread, "run_sync", no_thread)
    text = "Preheat the oven, then knead the dough for ten minutes. Enjoy your bread! " * 12
    result = await pii.screen(text, ScreenContext())
    assert result.verdict is Verdict.ALLOW
    assert result.spans == ()
    assert result.elapsed_ms < 50  # microseconds in practice; loose for a loaded CI machine


async def test_pii_work_runs_in_a_worker_thread(pii: PIIScreen) -> None:
    import threading

    main = threading.get_ident()
    seen: list[int] = []
    original = pii._find

    def spy(*args: Any) -> Any:
        seen.append(threading.get_ident())
        return original(*args)

    pii._find = spy  # type: ignore[method-assign]
    try:
        result = await pii.screen(ANSWER, ScreenContext())
    finally:
        del pii._find
    assert result.verdict is Verdict.REDACT
    assert seen and seen[0] != main


async def test_concurrent_screens_share_one_engine(pii: PIIScreen) -> None:
    limiter = anyio.CapacityLimiter(2)
    screen = PIIScreen(limiter=limiter)
    screen._analyzer = pii._analyzer  # reuse the loaded engine: same object, other limiter
    results: list[Verdict] = []

    async def one() -> None:
        results.append((await screen.screen(ANSWER, ScreenContext())).verdict)

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(one)
    assert results == [Verdict.REDACT] * 6


async def test_locale_picks_the_language(pii: PIIScreen) -> None:
    # a bare valid BSN counts in Dutch answers only
    text = "Uw nummer is 111222333."
    assert (await pii.screen(text, ScreenContext(locale="nl-NL"))).verdict is Verdict.REDACT
    assert (await pii.screen(text, ScreenContext(locale="en"))).verdict is Verdict.ALLOW
    assert pii.language_for("zh-CN") == "zh"
    assert pii.language_for("pt-BR") == "en"  # unknown: the first configured language


async def test_screen_before_load_is_an_error() -> None:
    with pytest.raises(ScreenError):
        await PIIScreen().screen("a@b.com", ScreenContext())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"entities": ["EMAIL_ADDRESS", "SHOE_SIZE"]},
        {"entities": []},
        {"score_threshold": 1.5},
        {"languages": ["en", "ja"]},
        {"languages": []},
    ],
)
def test_bad_config_fails_at_construction(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        PIIScreen(**kwargs)


WINDOW_TEXTS = [
    ANSWER,
    "Contact: +49 30 12345678, Steuer-ID 86 095 742 719, Ausweis T220001293.\n" * 3,
    "服务器 192.168.1.20 与 2001:db8::1。身份证 11010519491231002X，手机 +86 138 1234 5678。",
    "x" * 300 + " card 4111-1111-1111-1111 " + "y" * 300 + " SSN 219-09-9999",
    "Two numbers: 123456782 and 111222333 (BSN), NL91ABNA0417164300.",
]


@pytest.mark.parametrize("text", WINDOW_TEXTS)
def test_windows_find_what_the_whole_text_finds(pii: PIIScreen, text: str) -> None:
    whole = pii._find(text, "en", [Window(0, len(text), pii.entities)], False)
    assert _resolve(list(whole)) == pii.find(text, "en")
    assert whole


async def test_no_network_while_loading_and_screening(monkeypatch: pytest.MonkeyPatch) -> None:
    """E-mails and URLs need the public-suffix list: it must come from the bundled snapshot."""
    attempts: list[object] = []
    real_connect = socket.socket.connect

    def guarded_connect(self: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and not ipaddress.ip_address(host).is_loopback:
            attempts.append(address)
            raise OSError(f"network blocked in tests: {address}")
        return real_connect(self, address)

    def no_dns(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise OSError("DNS blocked in tests")

    def no_global_extractor(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("tldextract's module-level (downloading) extractor was used")

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    monkeypatch.setattr(tldextract.tldextract, "TLD_EXTRACTOR", no_global_extractor)

    screen = PIIScreen(entities=["EMAIL_ADDRESS", "URL"], languages=["en"], ner_models={})
    await screen.load()
    text = "Mail ops@example.co.uk or see https://www.example.com/path and www.test.org."
    result = await screen.screen(text, ScreenContext())
    assert {text[s.start : s.end] for s in result.spans} >= {
        "ops@example.co.uk",
        "https://www.example.com/path",
    }
    assert attempts == []


async def test_ner_model_adds_person_and_location() -> None:
    """Any spaCy pipeline with entities serves as the NER model: here a rule-based one."""
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns(
        [
            {"label": "PERSON", "pattern": [{"LOWER": "ada"}, {"LOWER": "lovelace"}]},
            {"label": "GPE", "pattern": "London"},
        ]
    )
    screen = PIIScreen(languages=["en"], ner_models={"en": nlp})
    await screen.load()
    assert screen.ner_languages == {"en"}
    text = "Yes, I spoke with Ada Lovelace in London about it."
    result = await screen.screen(text, ScreenContext())
    found = {(s.label, text[s.start : s.end]) for s in result.spans}
    assert found == {("PERSON", "Ada Lovelace"), ("LOCATION", "London")}
    assert redact(text, result.spans) == "Yes, I spoke with [NAME] in [LOCATION] about it."


async def test_without_a_model_there_is_no_ner() -> None:
    screen = PIIScreen(languages=["en"], ner_models={"en": "no_such_spacy_model_xyz"})
    await screen.load()
    assert screen.ner_languages == frozenset()
    text = "Yes, I spoke with Ada Lovelace in London about it."
    assert (await screen.screen(text, ScreenContext())).verdict is Verdict.ALLOW
