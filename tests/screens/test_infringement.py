"""The infringement screen on a small generated corpus: verbatim runs, thresholds, near-verbatim
edits, short works, CJK, the deny-list, the on-disk index cache, and the pipeline's action."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import numpy as np
import pytest

from aiguard.errors import ConfigError
from aiguard.policy.models import Policy
from aiguard.policy.prompts import Catalogue
from aiguard.screens.base import ScreenContext, Span, Verdict
from aiguard.screens.infringement import InfringementScreen
from aiguard.screens.pipeline import ScreenPipeline, build_screener

pytestmark = pytest.mark.anyio

CTX = ScreenContext()
VOCAB = [
    *[
        "sun",
        "sea",
        "sky",
        "old",
        "oak",
        "red",
        "fox",
        "owl",
        "ice",
        "elm",
        "ash",
        "bay",
        "dew",
        "fog",
        "hay",
        "ink",
        "jar",
        "key",
        "log",
        "map",
        "nut",
        "oar",
        "pen",
        "rye",
        "tea",
        "urn",
        "van",
        "web",
        "yew",
        "zinc",
        "a",
        "of",
        "to",
        "the",
        "and",
        "in",
        "on",
    ]
]


def prose(rng: random.Random, words: int) -> str:
    out = []
    for i in range(words):
        w = rng.choice(VOCAB)
        out.append(w.capitalize() if i % 12 == 0 else w)
        if i % 12 == 11:
            out[-1] += "."
    return " ".join(out)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("works")
    rng = random.Random(7)
    for i in range(6):
        (root / f"Novel {i}.txt").write_text(prose(rng, 3000), encoding="utf-8")
    (root / "poems").mkdir()
    (root / "poems" / "fog.txt").write_text(
        "Title: Fog\nThe fog comes\non little cat feet.\nIt sits looking\nover harbor and city\n"
        "on silent haunches\nand then moves on.\n",
        encoding="utf-8",
    )
    (root / "春晓.txt").write_text("春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。" * 12)
    return root


@pytest.fixture(scope="module")
async def screen(corpus: Path) -> InfringementScreen:
    s = InfringementScreen(corpus_dir=corpus, denylist=["Acme"])
    await s.load()
    return s


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


def words_of(corpus: Path, work: str, start: int, n: int) -> str:
    return " ".join((corpus / f"{work}.txt").read_text().split()[start : start + n])


@pytest.mark.parametrize(
    ("n", "flagged"), [(60, True), (50, True), (49, False), (20, False), (8, False)]
)
async def test_min_words_threshold(
    screen: InfringementScreen, corpus: Path, n: int, flagged: bool
) -> None:
    quote = words_of(corpus, "Novel 3", 1000, n)
    assert len(quote) < 300  # short words: only the word threshold applies here
    answer = f"As the book puts it: {quote} — a fine passage."
    r = await screen.screen(answer, CTX)
    assert (r.verdict is Verdict.BLOCK) is flagged
    if flagged:
        (span,) = r.spans
        assert answer[span.start : span.end].split() == quote.split()
        assert "'Novel 3'" in span.explanation and f"{n} consecutive words" in span.explanation


async def test_min_chars_threshold(corpus: Path) -> None:
    s = InfringementScreen(corpus_dir=corpus, min_words=200, min_chars=120)
    await s.load()
    quote = words_of(corpus, "Novel 1", 500, 36)
    assert len(quote) >= 120
    assert (await s.screen(quote, CTX)).verdict is Verdict.BLOCK
    assert (await s.screen(words_of(corpus, "Novel 1", 500, 12), CTX)).verdict is Verdict.ALLOW


async def test_near_verbatim_edits_still_match(screen: InfringementScreen, corpus: Path) -> None:
    quote = words_of(corpus, "Novel 0", 200, 80)
    edited = re.sub(r"[.]", ";", quote.upper()).replace(" ", "\n  ")
    r = await screen.screen("«" + edited + "»", CTX)
    assert r.verdict is Verdict.BLOCK and "Novel 0" in r.spans[0].explanation


@pytest.mark.parametrize(
    ("corpus_text", "answer", "words"),
    [
        ("I don’t think the lady’s maid would say so", "i DON'T think the ladys maid would say", 8),
        ("He said 'tis the season of rock 'n' roll", "he said tis the season of rock n roll", 9),
        ("The brand 谷歌 and Acme were both named", "The brand谷歌and Acme were both named", 9),
        ("İstanbul was once called Constantinople", "İSTANBUL WAS ONCE CALLED CONSTANTINOPLE", 5),
        ("the cat sat on the mat today and then it slept", "the cat sat on a mat today", 0),
    ],
)
def test_tokens(corpus_text: str, answer: str, words: int) -> None:
    s = InfringementScreen(min_words=8, min_chars=1000, shingle_words=4)
    s.index_works([("w", corpus_text)])
    spans = s.find(answer)
    if words:
        (span,) = spans
        assert span.explanation.startswith(f"{words} consecutive words of 'w'")
    else:
        assert spans == []


async def test_stitched_short_runs_do_not_match(screen: InfringementScreen, corpus: Path) -> None:
    parts = [words_of(corpus, f"Novel {i}", 300 + 40 * i, 30) for i in range(5)]
    r = await screen.screen(" ".join(parts), CTX)
    assert r.verdict is Verdict.ALLOW, r.spans


async def test_unindexed_text_is_clean(screen: InfringementScreen) -> None:
    other = prose(random.Random(99), 300)
    assert (await screen.screen(other, CTX)).verdict is Verdict.ALLOW


async def test_whole_short_work_and_title_line(screen: InfringementScreen) -> None:
    answer = (
        "Sandburg wrote: The fog comes on little cat feet. It sits looking over harbor and city"
    )
    answer += " on silent haunches and then moves on."
    r = await screen.screen(answer, CTX)
    assert r.verdict is Verdict.BLOCK
    assert "'Fog'" in r.spans[0].explanation  # named by its Title: line
    half = "The fog comes on little cat feet."
    assert (await screen.screen(half, CTX)).verdict is Verdict.ALLOW


async def test_cjk_work_matches_by_character(screen: InfringementScreen) -> None:
    answer = "诗云：" + "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。" * 3
    r = await screen.screen(answer, CTX)
    assert r.verdict is Verdict.BLOCK and "春晓" in r.spans[0].explanation


@pytest.mark.parametrize(
    ("terms", "text", "found"),
    [
        (["Acme"], "We recommend ACME products.", ["ACME"]),
        (["Acme"], "Acmeville and acme-like", ["acme"]),
        (["Acme"], "Acmeville only", []),
        (["Acme"], "买Acme产品", ["Acme"]),
        (["Big Corp"], "ask big   corp today", ["big   corp"]),
        (["谷歌"], "我爱谷歌搜索", ["谷歌"]),
        (["ซัมซุง"], "ฉันชอบซัมซุงมาก", ["ซัมซุง"]),
        (["삼성"], "삼성은 회사입니다", ["삼성"]),
        (["Müller"], "MÜLLER's shop, müllerei", ["MÜLLER"]),
        (["C++"], "I like C++ and C", ["C++"]),
        (["Acme", "Acme Pro"], "Acme Pro is new", ["Acme Pro"]),
    ],
)
def test_denylist(terms: list[str], text: str, found: list[str]) -> None:
    s = InfringementScreen(denylist=terms)
    spans = s.find(text)
    assert [text[x.start : x.end] for x in spans] == found
    assert all(x.label == "denylist" for x in spans)


async def test_index_cache_is_reused_and_keyed_by_content(corpus: Path, tmp_path: Path) -> None:
    work = tmp_path / "w"
    work.mkdir()
    (work / "a.txt").write_text((corpus / "Novel 2.txt").read_text())
    cache = tmp_path / "cache"
    first = InfringementScreen(corpus_dir=work, cache_dir=cache)
    await first.load()
    assert len(list(cache.glob("*.npz"))) == 1
    second = InfringementScreen(corpus_dir=work, cache_dir=cache)
    await second.load()
    assert second.index is not None and isinstance(second.index.tokens, np.memmap)
    quote = words_of(work, "a", 10, 60)
    assert (await second.screen(quote, CTX)).verdict is Verdict.BLOCK
    (work / "a.txt").write_text("something else entirely " * 50)
    third = InfringementScreen(corpus_dir=work, cache_dir=cache)
    await third.load()
    assert len(list(cache.glob("*.npz"))) == 2
    assert (await third.screen(quote, CTX)).verdict is Verdict.ALLOW


async def test_empty_corpus_and_bad_settings(tmp_path: Path) -> None:
    s = InfringementScreen(corpus_dir=tmp_path)
    await s.load()
    assert (await s.screen("anything at all " * 40, CTX)).verdict is Verdict.ALLOW
    with pytest.raises(ConfigError, match="not a folder"):
        InfringementScreen(corpus_dir=tmp_path / "missing")
    with pytest.raises(ConfigError):
        InfringementScreen(min_words=5, shingle_words=8)


async def test_through_the_pipeline(corpus: Path) -> None:
    policy = Policy.model_validate(
        {
            "screening": {
                "screens": ["infringement"],
                "infringement": {"corpus_dir": str(corpus), "denylist": ["Acme"]},
            }
        }
    )
    catalogue = Catalogue()
    p: ScreenPipeline = build_screener(policy, catalogue)
    await p.load()
    r = await p.screen("Buy Acme now.", CTX)
    assert (r.verdict, r.text, r.categories) == (
        Verdict.REDACT,
        "Buy [DENYLIST] now.",
        ("denylist",),
    )
    r = await p.screen(words_of(corpus, "Novel 4", 0, 70), ScreenContext(locale="es"))
    assert r.blocked and r.categories == ("verbatim",)
    assert r.text == catalogue.text("blocked", "es").text


def test_screen_is_fast(screen: InfringementScreen) -> None:
    """Sanity bound only (the real numbers are in bench/screens.py): 1 KB in well under 1 ms."""
    answer = prose(random.Random(5), 400)[:1024]
    screen.find(answer)
    start = time.perf_counter()
    for _ in range(50):
        screen.find(answer)
    assert (time.perf_counter() - start) / 50 < 0.005  # generous: the machine is shared


@pytest.mark.parametrize("w", [1, 2, 3, 7, 23, 50])
@pytest.mark.parametrize("n", [1, 2, 5, 31, 1000])
def test_linear_winnowing_equals_the_definition(n: int, w: int) -> None:
    from numpy.lib.stride_tricks import sliding_window_view

    from aiguard.screens._shingles import winnow

    h = np.random.default_rng(n * 100 + w).integers(0, 2**63, size=n, dtype=np.uint64)
    if w == 1:
        expected = np.arange(n)
    elif n <= w:
        expected = np.array([h.argmin()])
    else:
        expected = np.unique(sliding_window_view(h, w).argmin(axis=1) + np.arange(n - w + 1))
    assert np.array_equal(winnow(h, w), expected)


@pytest.mark.parametrize(("n", "blocked"), [(70, True), (45, False)])
async def test_streamed_quote_is_blocked_when_the_run_reaches_the_threshold(
    corpus: Path, n: int, blocked: bool
) -> None:
    """Each streamed window is shorter than 50 words: the screen must see released history."""
    s = InfringementScreen(corpus_dir=corpus)
    await s.load()
    policy = Policy.model_validate({"screening": {"screens": ["infringement"]}})
    p = ScreenPipeline(policy, Catalogue(), [s])
    quote = words_of(corpus, "Novel 5", 2000, n)
    answer = "Here it is. " + quote + " That is all."
    stream = p.stream(CTX)
    released = []
    for i in range(0, len(answer), 5):
        step = await stream.push(answer[i : i + 5])
        released.append(step.release)
        if step.blocked:
            break
    else:
        released.append((await stream.finish()).release)
    text = "".join(released)
    assert stream.result().blocked is blocked
    if blocked:
        shown = text.split("\n")[0].removeprefix("Here it is. ").split()
        assert 0 < len(shown) < 50  # the user never saw min_words words of the work
        assert quote.startswith(" ".join(shown))
    else:
        assert text == answer


async def test_long_answers_are_screened_off_the_event_loop(
    screen: InfringementScreen, corpus: Path
) -> None:
    import threading

    seen: list[str] = []
    original = screen.find

    def spy(text: str) -> list[Span]:
        seen.append(threading.current_thread().name)
        return original(text)

    screen.find = spy  # type: ignore[method-assign]
    try:
        long_answer = prose(random.Random(1), 5000) + " " + words_of(corpus, "Novel 2", 10, 60)
        assert len(long_answer) > 16_000
        assert (await screen.screen(long_answer, CTX)).verdict is Verdict.BLOCK
        await screen.screen("short answer", CTX)
    finally:
        del screen.find
    assert seen[0] != threading.main_thread().name and seen[1] == threading.main_thread().name
