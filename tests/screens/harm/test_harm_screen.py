"""Backend contract, HarmScreen behaviour, the factory, and the rule engine's literal gate."""

from __future__ import annotations

import re
import tomllib

import pytest
from langchain_core.language_models.fake_chat_models import FakeListChatModel

from aiguard.errors import ConfigError, ScreenError
from aiguard.screens.base import Screen, ScreenContext, Verdict
from aiguard.screens.harm import (
    CATEGORIES,
    DEFAULT_THRESHOLDS,
    HarmBackend,
    HarmScreen,
    LocalBackend,
    SpanBackend,
    build_harm_screen,
)
from aiguard.screens.harm._features import featurize, normalize, sentences
from aiguard.screens.harm._gate import required_literals
from aiguard.screens.harm._lexicon import DEFAULT_LEXICON, Lexicon, identity_patterns
from aiguard.screens.harm.llm import LLMJudgeBackend
from aiguard.screens.harm.openai_moderation import OpenAIModerationBackend
from tests.screens.harm.test_harm_local import HARMFUL, HARMLESS

CTX = ScreenContext()


class FixedBackend:
    """A third-party backend: only ``classify``, no spans."""

    name = "fixed"

    def __init__(self, scores: dict[str, float] | Exception) -> None:
        self.scores = scores
        self.loaded = False

    async def load(self) -> None:
        self.loaded = True

    async def classify(self, text: str) -> dict[str, float]:
        if isinstance(self.scores, Exception):
            raise self.scores
        return self.scores


def test_backends_implement_the_protocols() -> None:
    assert isinstance(LocalBackend(), SpanBackend)
    assert isinstance(OpenAIModerationBackend(api_key="x"), HarmBackend)
    assert isinstance(LLMJudgeBackend(FakeListChatModel(responses=["safe"])), HarmBackend)
    assert isinstance(FixedBackend({}), HarmBackend)
    assert not isinstance(FixedBackend({}), SpanBackend)
    assert isinstance(HarmScreen(backend=FixedBackend({})), Screen)


@pytest.mark.anyio
async def test_custom_backend_gets_whole_text_spans_and_threshold_per_category() -> None:
    backend = FixedBackend({"hate": 0.6, "violence": 0.59, "unknown": 1.0})
    screen = HarmScreen("harm-strict", backend, thresholds={"violence": 0.5})
    await screen.load()
    assert backend.loaded
    result = await screen.screen("some text", CTX)
    assert result.screen == "harm-strict"
    assert result.verdict is Verdict.BLOCK
    assert sorted((s.label, s.start, s.end) for s in result.spans) == [
        ("hate", 0, 9),
        ("violence", 0, 9),
    ]
    assert result.elapsed_ms >= 0


@pytest.mark.anyio
async def test_only_enforced_categories_block() -> None:
    screen = HarmScreen(backend=FixedBackend({"sexual": 0.99}), categories=["hate", "violence"])
    assert (await screen.screen("x", CTX)).verdict is Verdict.ALLOW


@pytest.mark.anyio
async def test_backend_failure_becomes_screen_error() -> None:
    screen = HarmScreen(backend=FixedBackend(ConnectionError("down")))
    with pytest.raises(ScreenError, match="ConnectionError: down") as info:
        await screen.screen("x", CTX)
    assert isinstance(info.value.__cause__, ConnectionError)
    assert info.value.code == "screen_error"


@pytest.mark.parametrize("thresholds", [{"gore": 0.5}, {"hate": 0.0}, {"hate": 1.5}])
def test_bad_thresholds_fail_at_construction(thresholds: dict[str, float]) -> None:
    with pytest.raises(ConfigError):
        HarmScreen(backend=FixedBackend({}), thresholds=thresholds)


def test_defaults_cover_every_category() -> None:
    assert set(DEFAULT_THRESHOLDS) == set(CATEGORIES)
    assert HarmScreen(backend=FixedBackend({})).thresholds == dict(DEFAULT_THRESHOLDS)


@pytest.mark.parametrize(
    "config",
    [
        {"backend": "perspective"},
        {"backend": "local", "model": "x"},
        {"backend": "openai", "offload_chars": 3},
        {"categories": ["gore"]},
    ],
)
def test_factory_rejects_bad_config(config: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        build_harm_screen(config)


def test_factory_defaults_to_local() -> None:
    screen = build_harm_screen({"name": "h", "thresholds": {"hate": 0.8}})
    assert screen.name == "h" and isinstance(screen.backend, LocalBackend)
    assert screen.thresholds["hate"] == 0.8
    openai_screen = build_harm_screen(
        {"backend": "openai", "model": "m", "timeout": 2.0, "max_retries": 3, "api_key": "k"}
    )
    assert isinstance(openai_screen.backend, OpenAIModerationBackend)
    assert openai_screen.backend.model == "m" and openai_screen.backend.max_retries == 3


def test_sentences_are_original_offsets() -> None:
    text = "  First one.  Second!\n- bullet line\n最后一句。"
    assert [text[a:b] for a, b in sentences(text)] == [
        "First one.",
        "Second!",
        "- bullet line",
        "最后一句。",
    ]


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("H4TE 1d10ts", "hate idiots"),
        ("a 12-year-old", "a 12-year-old"),
        ("sooooo   baaad", "soo baad"),
        ("ｆｕｌｌ\u200bwidth", "fullwidth"),
    ],
)
def test_normalize(raw: str, norm: str) -> None:
    assert normalize(raw) == norm


def test_feature_hashes_are_stable() -> None:
    """The shipped weights are indexed by these hashes: a change here needs retraining."""
    bucket, segment, _ = featurize(["ab"], 18)
    assert bucket.tolist()[:4] == EXPECTED_BUCKETS
    assert segment.tolist() == [0] * len(segment)


EXPECTED_BUCKETS = [3713, 103843, 42393, 198787]


def test_gate_never_hides_a_matching_rule() -> None:
    """Gate + per-sentence windows find exactly what running every rule on the text finds."""
    lexicon = Lexicon.load()
    data = tomllib.loads(DEFAULT_LEXICON.read_text(encoding="utf-8"))
    macros = identity_patterns(data["identities"])
    rules = []
    for category, by_lang in data["terms"].items():
        for entries in by_lang.values():
            for raw, _ in entries:
                for key, value in macros.items():
                    raw = raw.replace(key, value)
                rules.append((category, re.compile(raw, re.IGNORECASE)))
    harmless = [p.values[1] if hasattr(p, "values") else p[1] for p in HARMLESS]
    texts = [t for _, _, t in HARMFUL] + [str(t) for t in harmless]
    texts.append(" ".join(texts))  # one long multilingual text with many sentences
    for text in texts:
        expected = {(cat, m.start(), m.end()) for cat, r in rules for m in r.finditer(text)}
        found = {(h.category, h.start, h.end) for h in lexicon.hits(text, sentences(text))}
        assert expected <= found, text


@pytest.mark.parametrize(
    ("pattern", "literals"),
    [
        (r"\b(?:anal|oral) sex\b", {"anal sex", "oral sex"}),
        (r"\bkill (?:your ?self|urself)\b", {"kill your", "kill urself"}),
        (r"你(?:怎么)?去死", {"去死"}),
        (r"\bthinspo\w*", {"thinspo"}),
        (r"\w+", None),
    ],
)
def test_required_literals(pattern: str, literals: set[str] | None) -> None:
    assert required_literals(pattern) == literals


def test_registry_builds_the_default_harm_screen() -> None:
    from aiguard.policy.models import Policy
    from aiguard.screens import registry

    screen = registry.create("harm", Policy())
    assert isinstance(screen, HarmScreen) and isinstance(screen.backend, LocalBackend)


def test_from_policy_reads_the_harm_section() -> None:
    from aiguard.policy.models import Policy

    policy = Policy.model_validate(
        {
            "screening": {
                "harm": {
                    "backend": "openai",
                    "api_key": "k",
                    "model": "m",
                    "thresholds": {"violence": 0.4},
                }
            }
        }
    )
    screen = HarmScreen.from_policy(policy)
    assert isinstance(screen.backend, OpenAIModerationBackend)
    assert screen.backend.model == "m" and screen.thresholds["violence"] == 0.4
    wrong = Policy.model_validate(
        {"screening": {"harm": {"backend": "openai", "offload_chars": 10}}}
    )
    with pytest.raises(ConfigError, match="offload_chars"):
        HarmScreen.from_policy(wrong)


@pytest.mark.parametrize(
    ("raw", "marked"),
    [
        ("i don't hate qqid, but i hate spinach.", "i don't ¬hate ¬qqid, but i hate spinach."),
        (
            'if you say "i hate qqid", you are a bigot!',
            'if you say ¤"i ¤hate ¤qqid", you are a bigot!',
        ),
        ("je ne déteste pas les qqid.", "je ne ¬déteste ¬pas ¬les ¬qqid."),
        ("no way, you are an idiot.", "no ¬way, you are an idiot."),
    ],
)
def test_negation_and_quote_scopes(raw: str, marked: str) -> None:
    from aiguard.screens.harm._features import mark_scopes

    assert mark_scopes(raw) == marked
