"""Streaming screening: nothing unscreened is released, PII split anywhere is redacted,
releases happen as boundaries arrive, and the work is linear in the answer."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

import pytest

from aiguard.policy.prompts import Catalogue
from aiguard.screens.base import ScreenContext, ScreenResult, Span, Verdict
from aiguard.screens.pipeline import ScreenPipeline
from aiguard.screens.stream import WindowedStreamScreener

from .conftest import Broken, FakeHarm, FakePII

pytestmark = pytest.mark.anyio

Make = Callable[..., ScreenPipeline]
CTX = ScreenContext()


async def run(p: ScreenPipeline, chunks: Iterable[str]) -> tuple[list[str], WindowedStreamScreener]:
    s = p.stream(CTX)
    out = []
    for c in chunks:
        step = await s.push(c)
        out.append(step.release)
        if step.blocked:
            break
    out.append((await s.finish()).release)
    return out, s


def splits(text: str) -> Iterable[tuple[str, list[str]]]:
    for i in range(len(text) + 1):
        yield f"split@{i}", [text[:i], text[i:]]
    yield "per-char", list(text)


PII_TEXTS = {
    "email": "Sure. You can reach the author at jane.q.doe+news@mail.example.co.uk for more.",
    "iban-spaced": "Pay the invoice to NL91 ABNA 0417 1643 00 before Friday, thanks",
    "iban-compact": "Account DE89370400440532013000\nReference 77.",
    "two-in-a-row": "x@y.example.com NL91ABNA0417164300 z@w.example.org",
}


@pytest.mark.parametrize("window", [200, 24])
@pytest.mark.parametrize("name", list(PII_TEXTS))
async def test_pii_split_at_every_position_is_redacted(
    make_pipeline: Make, name: str, window: int
) -> None:
    text = PII_TEXTS[name]
    p = make_pipeline(FakePII(), window_chars=window)
    whole = await p.screen(text, CTX)
    for how, chunks in splits(text):
        out, s = await run(p, chunks)
        released = "".join(out)
        assert released == whole.text, how
        result = s.result()
        assert result.verdict is Verdict.REDACT
        assert result.text == released
        # spans are whole-answer offsets, equal to the non-streamed result's
        expected = sorted(whole.results[0].spans, key=lambda x: x.start)
        assert list(result.results[0].spans) == expected, how


async def test_iban_across_forced_window_cuts(make_pipeline: Make) -> None:
    """No sentence boundary at all: cuts fall at whitespace, maybe inside the spaced IBAN."""
    p = make_pipeline(FakePII(), window_chars=64)  # lookahead 32 > len(IBAN)
    for pad in range(0, 130, 3):
        text = "word " * (pad // 5) + "w" * (pad % 5) + " NL91 ABNA 0417 1643 00 tail words here"
        out, _ = await run(p, list(text))
        assert "".join(out) == (await p.screen(text, CTX)).text, pad
        assert "[IBAN]" in "".join(out)


async def test_releases_at_boundaries_before_the_end(make_pipeline: Make) -> None:
    p = make_pipeline(FakePII())
    s = p.stream(CTX)
    assert (await s.push("Hello")).release == ""  # no boundary yet
    assert (await s.push(" world.")).release == ""  # "." may still be "world.com"
    assert (await s.push(" Next")).release == "Hello world."
    assert s.result() is s.result()  # cached: the middleware may ask after every push
    assert (await s.push(" line\n")).release == " Next line\n"
    assert (await s.push("好的。然后")).release == "好的。"
    assert (await s.push("呢")).release == ""
    assert (await s.finish()).release == "然后呢"
    assert await s.finish() == (await s.push("more"))  # both empty once finished


async def test_long_text_without_boundaries_is_released_within_the_window(
    make_pipeline: Make,
) -> None:
    p = make_pipeline(FakePII(), window_chars=100)
    s = p.stream(CTX)
    held = 0
    for word in ["lorem"] * 200:
        step = await s.push(word + " ")
        held += len(word) + 1 - len(step.release)
        assert held < 100  # never more than the window held back
    assert held > 0


async def test_harmful_sentence_mid_stream_blocks_with_nothing_of_it_released(
    make_pipeline: Make, catalogue: Catalogue
) -> None:
    harm = FakeHarm()
    p = make_pipeline(FakePII(), harm)
    answer = "Here is a story. Then we detonate the old bridge at dawn. And more after."
    out, s = await run(p, [answer[i : i + 3] for i in range(0, len(answer), 3)])
    blocked_text = catalogue.text("blocked", "en").text
    released = "".join(out)
    assert released == "Here is a story.\n" + blocked_text
    assert "Then" not in released and "bridge" not in released
    r = s.result()
    assert r.blocked and r.text == released and r.categories == ("violence",)
    harm_result = next(x for x in r.results if x.screen == "harm")
    span = harm_result.spans[0]
    assert answer[span.start : span.end] == "detonate"  # whole-answer offsets
    assert (await s.push("again")).release == "" and (await s.finish()).release == ""


async def test_block_at_first_window_has_no_leading_newline(
    make_pipeline: Make, catalogue: Catalogue
) -> None:
    p = make_pipeline(FakeHarm())
    out, _ = await run(p, ["detonate ", "it"])
    assert "".join(out) == catalogue.text("blocked", "en").text


async def test_fail_closed_mid_stream(make_pipeline: Make) -> None:
    p = make_pipeline(Broken(), fail_mode="closed")
    out, s = await run(p, ["Hello. ", "World."])
    assert s.result().blocked and s.result().categories == ("screen_error",)
    assert "Hello" not in "".join(out)
    p = make_pipeline(Broken(), fail_mode="open")
    out, s = await run(p, ["Hello. ", "World."])
    assert "".join(out) == "Hello. World." and s.result().results[0].error


async def test_no_screens_passes_through(make_pipeline: Make) -> None:
    p = make_pipeline(FakePII(), enabled=False)
    s = p.stream(CTX)
    assert (await s.push("x@y.example.com")).release == "x@y.example.com"
    assert (await s.finish()).release == ""


@pytest.mark.parametrize(
    ("shape", "piece"),
    [
        ("no-spaces-no-boundaries", "x"),
        ("words-no-boundaries", "lorem "),
        ("short-sentences", "Hi. "),
        ("typical", "The cat sat on the mat, and then it slept for a while. "),
    ],
)
@pytest.mark.parametrize("chunk", [1, 7, 4096])
async def test_work_is_linear(make_pipeline: Make, shape: str, piece: str, chunk: int) -> None:
    n = 100_000 if chunk > 1 else 20_000
    text = (piece * (n // len(piece) + 1))[:n]
    pii = FakePII()
    p = make_pipeline(pii)
    s = p.stream(CTX)
    released = []
    for i in range(0, n, chunk):
        released.append((await s.push(text[i : i + chunk])).release)
    released.append((await s.finish()).release)
    assert "".join(released) == text
    # every character is screened a small constant number of times, whatever the shape
    factor = {"short-sentences": 6, "typical": 3}.get(shape, 2)
    assert pii.chars <= factor * n, (pii.chars / n, pii.calls)
    assert s.chars_screened == pii.chars
    if shape.endswith("no-boundaries"):
        assert pii.calls <= n / 50  # one call per ~window, not per push


class FragmentFlagger:
    """Misfires on fragments, like a sentence classifier does: flags the first word when the
    text starts with a lowercase one, and the last word when the text ends inside it."""

    name = "fragile"

    async def load(self) -> None:
        return None

    async def screen(self, text: str, context: ScreenContext) -> ScreenResult:
        spans = []
        first = re.match(r"[a-z]\w*", text)
        if first:
            spans.append(Span("hate", 0, first.end(), 0.9))
        last = re.search(r"\w+$", text)
        if last:
            spans.append(Span("hate", last.start(), len(text), 0.9))
        return ScreenResult(self.name, Verdict.BLOCK if spans else Verdict.ALLOW, tuple(spans))


@pytest.mark.parametrize("chunk", [1, 5, 23, 1000])
async def test_findings_only_in_context_or_lookahead_do_not_block(
    make_pipeline: Make, chunk: int
) -> None:
    answer = "Hello there, this is fine. And more words follow here. The end.\n" * 6
    p = make_pipeline(FragmentFlagger(), window_chars=40)
    assert not (await p.screen(answer, CTX)).blocked
    out, s = await run(p, [answer[i : i + chunk] for i in range(0, len(answer), chunk)])
    assert "".join(out) == answer
    assert not s.result().blocked


PIECES = [
    "Sure thing.",
    "Write to ann.lee@example.org today.",
    "IBAN NL91 ABNA 0417 1643 00 is ours",
    "or DE89370400440532013000,",
    "a",
    "longwordwithoutanyspacesatallthatgoesonandonforawhile",
    "新的一行。",
    "Zeile\n",
    "?!",
    "x@y.example.com",
]


@pytest.mark.parametrize("seed", range(40))
async def test_random_streams_equal_whole_answer(make_pipeline: Make, seed: int) -> None:
    import random

    rng = random.Random(seed)
    text = " ".join(rng.choice(PIECES) for _ in range(rng.randint(5, 60)))
    window = rng.choice([64, 80, 200, 500])
    p = make_pipeline(FakePII(), window_chars=window)
    whole = await p.screen(text, CTX)
    chunks, i = [], 0
    while i < len(text):
        n = rng.choice([1, 2, 3, 8, 40, 300])
        chunks.append(text[i : i + n])
        i += n
    out, s = await run(p, chunks)
    assert "".join(out) == whole.text
    assert s.result().text == whole.text
    assert "@" not in whole.text and "0417" not in whole.text


@pytest.mark.parametrize("seed", range(30))
async def test_random_streams_block_exactly_when_the_whole_answer_does(
    make_pipeline: Make, seed: int
) -> None:
    import random

    rng = random.Random(1000 + seed)
    pieces = [*PIECES, "Then we detonate it at noon."]
    text = " ".join(rng.choice(pieces) for _ in range(rng.randint(3, 30)))
    p = make_pipeline(FakePII(), FakeHarm(), window_chars=rng.choice([64, 200]))
    whole = await p.screen(text, CTX)
    chunks = [text[i : i + 7] for i in range(0, len(text), 7)]
    out, s = await run(p, chunks)
    released = "".join(out)
    assert s.result().blocked is whole.blocked
    if whole.blocked:
        assert "deton" not in released and released.endswith(whole.text)
    else:
        assert released == whole.text
