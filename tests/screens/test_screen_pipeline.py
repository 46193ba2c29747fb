"""ScreenPipeline: concurrency, timeouts, fail-open/closed, actions per category, registry."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from pydantic import ValidationError

from aiguard.errors import ConfigError
from aiguard.policy.models import Policy
from aiguard.policy.prompts import Catalogue
from aiguard.screens import registry
from aiguard.screens.base import ScreenContext, ScreenResult, Span, Verdict
from aiguard.screens.pipeline import ScreenPipeline, build_screener, cpu_limiter, run_cpu

from .conftest import Broken, FakeHarm, FakePII

pytestmark = pytest.mark.anyio

Make = Callable[..., ScreenPipeline]
CTX = ScreenContext()


class Fixed:
    """Returns the same findings for any text."""

    def __init__(self, name: str, verdict: Verdict, *spans: Span) -> None:
        self.name = name
        self.verdict = verdict
        self.spans = spans

    async def load(self) -> None:
        return None

    async def screen(self, text: str, context: ScreenContext) -> ScreenResult:
        return ScreenResult(self.name, self.verdict, self.spans)


async def test_redacts_pii_in_place(make_pipeline: Make) -> None:
    p = make_pipeline(FakePII(), FakeHarm())
    text = "Write to ann.lee@example.org or pay NL91 ABNA 0417 1643 00 today."
    r = await p.screen(text, CTX)
    assert r.verdict is Verdict.REDACT
    assert r.text == "Write to [EMAIL] or pay [IBAN] today."
    assert r.categories == ("EMAIL_ADDRESS", "IBAN_CODE")
    assert [x.screen for x in r.results] == ["pii", "harm"]
    assert r.to_json()["verdict"] == "redact"


@pytest.mark.parametrize(
    ("locale", "expected"),
    [("en", "withheld"), ("de", "zurückgehalten"), ("zh-CN", "未予显示"), ("fr-CA", "")],
)
async def test_block_replaces_answer_with_localized_text(
    make_pipeline: Make, catalogue: Catalogue, locale: str, expected: str
) -> None:
    p = make_pipeline(FakePII(), FakeHarm())
    r = await p.screen("Step one: detonate it. Mail a@b.example.com", ScreenContext(locale=locale))
    assert r.blocked
    assert r.text == catalogue.text("blocked", locale).text
    assert expected in r.text
    assert r.categories == ("EMAIL_ADDRESS", "violence")


async def test_io_bound_screens_run_concurrently(make_pipeline: Make) -> None:
    """Screen a waits for screen b: run one after the other this would time out."""
    started = anyio.Event()

    class A(Fixed):
        io_bound = True

        async def screen(self, text: str, context: ScreenContext) -> ScreenResult:
            with anyio.fail_after(2):
                await started.wait()
            return await super().screen(text, context)

    class B(Fixed):
        async def screen(self, text: str, context: ScreenContext) -> ScreenResult:
            started.set()
            return await super().screen(text, context)

    p = make_pipeline(A("a", Verdict.ALLOW), B("b", Verdict.ALLOW), timeout_seconds=5)
    r = await p.screen("hello", CTX)
    assert [x.error for x in r.results] == [None, None]


async def test_cpu_screens_run_back_to_back_in_order(make_pipeline: Make) -> None:
    order: list[str] = []

    class Rec(Fixed):
        async def screen(self, text: str, context: ScreenContext) -> ScreenResult:
            order.append(self.name + ":start")
            await anyio.sleep(0)
            order.append(self.name + ":end")
            return await super().screen(text, context)

    p = make_pipeline(Rec("a", Verdict.ALLOW), Rec("b", Verdict.ALLOW))
    await p.screen("hello", CTX)
    assert order == ["a:start", "a:end", "b:start", "b:end"]


@pytest.mark.parametrize("hang", [False, True], ids=["raises", "times-out"])
async def test_fail_closed_blocks(
    make_pipeline: Make, catalogue: Catalogue, hang: bool, caplog: pytest.LogCaptureFixture
) -> None:
    p = make_pipeline(FakePII(), Broken(hang=hang), timeout_seconds=0.05, fail_mode="closed")
    with caplog.at_level(logging.WARNING, logger="aiguard.screens"):
        r = await p.screen("fine text", ScreenContext(locale="nl", message_id="m1"))
    assert r.blocked
    assert r.categories == ("screen_error",)
    assert r.text == catalogue.text("blocked", "nl").text
    broken = r.results[1]
    assert broken.verdict is Verdict.BLOCK
    assert broken.error is not None
    assert ("timed out" in broken.error) is hang
    assert "broken" in caplog.text and "m1" in caplog.text


async def test_a_screen_returning_garbage_is_a_failure(make_pipeline: Make) -> None:
    class Garbage(Fixed):
        async def screen(self, text: str, context: ScreenContext) -> ScreenResult:
            return None  # type: ignore[return-value]

    r = await make_pipeline(Garbage("g", Verdict.ALLOW)).screen("text", CTX)
    assert r.blocked and r.results[0].error == "returned NoneType, not a ScreenResult"


async def test_spans_past_the_end_are_clipped(make_pipeline: Make) -> None:
    p = make_pipeline(Fixed("x", Verdict.REDACT, Span("ID", 2, 99, 0.9), Span("ID", 50, 60, 0.9)))
    r = await p.screen("a 123", CTX)
    assert r.text == "a [ID]" and r.results[0].spans == (Span("ID", 2, 5, 0.9),)
    out = [(await (s := p.stream(CTX)).push("a 123")).release, (await s.finish()).release]
    assert "".join(out) == "a [ID]"


async def test_fail_open_allows_and_records_error(
    make_pipeline: Make, caplog: pytest.LogCaptureFixture
) -> None:
    p = make_pipeline(FakePII(), Broken(), fail_mode="open")
    with caplog.at_level(logging.WARNING, logger="aiguard.screens"):
        r = await p.screen("mail me: x@y.example.com", CTX)
    assert r.verdict is Verdict.REDACT  # the other screens still apply
    assert r.text == "mail me: [EMAIL]"
    assert r.results[1].error == "RuntimeError: model exploded"
    assert r.results[1].to_json()["error"] == "RuntimeError: model exploded"
    assert "fail-open" in caplog.text


@pytest.mark.parametrize(
    ("screening", "text_out", "verdict"),
    [
        ({}, "a [EMAIL] b", Verdict.REDACT),
        ({"actions": {"EMAIL_ADDRESS": "annotate"}}, "a x@y.example.com b", Verdict.ALLOW),
        ({"actions": {"pii": "annotate"}}, "a x@y.example.com b", Verdict.ALLOW),
        ({"actions": {"pii": "block"}}, None, Verdict.BLOCK),
        ({"thresholds": {"EMAIL_ADDRESS": 0.95}}, "a x@y.example.com b", Verdict.ALLOW),  # 0.9
        ({"thresholds": {"pii": 0.95, "EMAIL_ADDRESS": 0.5}}, "a [EMAIL] b", Verdict.REDACT),
        ({"thresholds": {"pii": 0.99}}, "a x@y.example.com b", Verdict.ALLOW),
        # min_score is the bar screens take from the policy; the pipeline trusts their verdict
        ({"min_score": 0.95}, "a [EMAIL] b", Verdict.REDACT),
    ],
)
async def test_actions_and_thresholds(
    make_pipeline: Make, screening: dict[str, object], text_out: str | None, verdict: Verdict
) -> None:
    p = make_pipeline(FakePII(), **screening)
    r = await p.screen("a x@y.example.com b", CTX)
    assert r.verdict is verdict
    if text_out is not None:
        assert r.text == text_out


async def test_unmapped_labels_follow_the_screens_verdict(make_pipeline: Make) -> None:
    span = Span("CUSTOM_ID", 2, 5, 0.8)
    redacting = make_pipeline(Fixed("ids", Verdict.REDACT, span))
    assert (await redacting.screen("a 123 b", CTX)).text == "a [CUSTOM_ID] b"
    blocking = make_pipeline(Fixed("ids", Verdict.BLOCK, span))
    assert (await blocking.screen("a 123 b", CTX)).blocked
    # ALLOW with spans: recorded (annotate), text unchanged
    noting = make_pipeline(Fixed("ids", Verdict.ALLOW, span))
    r = await noting.screen("a 123 b", CTX)
    assert (r.verdict, r.text, r.results[0].spans) == (Verdict.ALLOW, "a 123 b", (span,))
    # a whole-text BLOCK without spans (a classifier) blocks, category = screen name
    whole = make_pipeline(Fixed("clf", Verdict.BLOCK))
    assert (await whole.screen("anything", CTX)).categories == ("clf",)


async def test_overlapping_spans_from_two_screens_are_merged(make_pipeline: Make) -> None:
    a = Fixed("a", Verdict.REDACT, Span("PERSON", 6, 13, 0.9))
    b = Fixed("b", Verdict.REDACT, Span("EMAIL_ADDRESS", 10, 30, 0.9))
    r = await make_pipeline(a, b).screen("Mail: Ann Lee <ann@example.com> now", CTX)
    assert r.text == "Mail: [NAME]> now"  # the PII screen's placeholder for PERSON


async def test_route_screens_and_disabled(make_pipeline: Make) -> None:
    pii, harm = FakePII(), FakeHarm()
    p = make_pipeline(pii, harm, route_screens={"/v1/*": ["pii"], "/v1/raw": []})
    r = await p.screen("detonate x@y.example.com", ScreenContext(route="/v1/chat/completions"))
    assert r.text == "detonate [EMAIL]" and [x.screen for x in r.results] == ["pii"]
    r = await p.screen("detonate x@y.example.com", ScreenContext(route="/v1/raw"))
    assert (r.verdict, r.results) == (Verdict.ALLOW, ())
    assert (await p.screen("detonate", ScreenContext(route="/chat"))).blocked
    off = make_pipeline(FakePII(), FakeHarm(), enabled=False)
    assert (await off.screen("detonate", CTX)).text == "detonate"


def test_policy_validation() -> None:
    s = Policy.model_validate({"screening": {"actions": {"pii": "block"}}}).screening
    assert s.actions["pii"] == "block" and s.actions["verbatim"] == "block"  # merged defaults
    with pytest.raises(ValidationError, match="route_screens"):
        Policy.model_validate({"screening": {"route_screens": {"/x": ["nope"]}}})
    with pytest.raises(ValidationError):
        Policy.model_validate({"screening": {"actions": {"pii": "shred"}}})
    with pytest.raises(ValidationError, match="repeat"):
        Policy.model_validate({"screening": {"screens": ["pii", "pii"]}})


async def test_load_runs_once(make_pipeline: Make) -> None:
    a, b = FakePII("a"), FakePII("b")
    p = make_pipeline(a, b)
    async with anyio.create_task_group() as tg:
        tg.start_soon(p.load)
        tg.start_soon(p.load)
    await p.load()
    assert (a.loaded, b.loaded) == (1, 1)


async def test_load_failure_is_one_config_error_naming_the_screens(make_pipeline: Make) -> None:
    class Unloadable(FakePII):
        async def load(self) -> None:
            raise FileNotFoundError("model.npz")

    p = make_pipeline(Unloadable("a"), FakePII("b"), Unloadable("c"))
    with pytest.raises(ConfigError, match=r"'a': model\.npz; 'c': model\.npz"):
        await p.load()


def test_build_screener_uses_registry(catalogue: Catalogue) -> None:
    registry.register("fake_pii", lambda policy: FakePII("whatever"))
    try:
        policy = Policy.model_validate({"screening": {"screens": ["fake_pii", "infringement"]}})
        p = build_screener(policy, catalogue)
        assert list(p.screens) == ["fake_pii", "infringement"]  # keyed by instance name
        with pytest.raises(ConfigError, match="already registered"):
            registry.register("fake_pii", lambda policy: FakePII())
    finally:
        registry.unregister("fake_pii")


@pytest.mark.parametrize(
    ("name", "factory", "message"),
    [
        ("nonesuch", None, "unknown screen 'nonesuch'"),
        ("ghost", registry.lazy("aiguard.screens._ghost", "Ghost"), "'ghost'"),
        ("notascreen", lambda policy: object(), "'notascreen' did not build a Screen"),
    ],
)
def test_build_screener_config_errors(
    catalogue: Catalogue, name: str, factory: registry.ScreenFactory | None, message: str
) -> None:
    if factory is not None:
        registry.register(name, factory)
    try:
        policy = Policy.model_validate({"screening": {"screens": [name]}})
        with pytest.raises(ConfigError, match=message):
            build_screener(policy, catalogue)
    finally:
        registry.unregister(name)


async def test_cpu_limiter_is_shared_and_run_cpu_works() -> None:
    assert cpu_limiter() is cpu_limiter()
    assert await run_cpu(sum, [1, 2, 3]) == 6


def test_policy_from_toml_and_environment(tmp_path: Path) -> None:
    from aiguard.policy.loading import load_policy

    corpus = tmp_path / "works"
    corpus.mkdir()
    toml = tmp_path / "aiguard.toml"
    toml.write_text(
        f"""
[screening]
screens = ["pii", "harm", "infringement"]
fail_mode = "open"
route_screens = {{ "/v1/raw*" = ["pii"] }}
actions = {{ denylist = "block", PERSON = "annotate" }}
thresholds = {{ hate = 0.8 }}

[screening.infringement]
corpus_dir = "{corpus}"
min_words = 40
denylist = ["Acme", "谷歌"]
""",
        encoding="utf-8",
    )
    env = {"AIGUARD_SCREENING__WINDOW_CHARS": "120"}
    s = load_policy(toml, environ=env).screening
    assert s.window_chars == 120 and s.fail_mode == "open"
    assert s.actions["denylist"] == "block" and s.actions["pii"] == "redact"
    assert s.screens_for("/v1/raw/x") == ["pii"] and s.screens_for("/chat") == s.screens
    assert s.threshold("hate", "harm") == 0.8 and s.threshold("PERSON", "pii") == 0.0
    assert s.infringement.corpus_dir == corpus and s.infringement.denylist == ["Acme", "谷歌"]


def test_pii_and_harm_sections_reach_their_screens(catalogue: Catalogue) -> None:
    pytest.importorskip("aiguard.screens.pii")
    pytest.importorskip("aiguard.screens.harm")
    policy = Policy.model_validate(
        {
            "screening": {
                "pii": {"entities": ["EMAIL_ADDRESS"], "languages": ["en"], "ner_models": {}},
                "harm": {"thresholds": {"hate": 0.9}, "categories": ["hate", "violence"]},
            }
        }
    )
    p = build_screener(policy, catalogue)
    pii: Any = p.screens["pii"]
    harm: Any = p.screens["harm"]
    assert pii.entities == frozenset({"EMAIL_ADDRESS"})
    assert harm.thresholds["hate"] == 0.9
    assert tuple(harm.categories) == ("hate", "violence")
    wrong = {"screening": {"harm": {"backend": "openai", "offload_chars": 5}}}
    with pytest.raises(ConfigError, match=r"'harm'.*offload_chars"):
        build_screener(Policy.model_validate(wrong), catalogue)
