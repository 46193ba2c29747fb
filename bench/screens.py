"""Per-screen and whole-pipeline latency per ~1 KB answer, and the ratio to presidio.

    .venv/bin/python bench/screens.py [--answers 200] [--seed 11]

Answers are generated (support / how-to prose, ~1 KB); half of them carry 2-4 pieces of
personal data (e-mail, phone, IBAN, card, name). Measured in one run, on the same texts:

- each screen the registry can build (``pii``, ``harm``, ``infringement`` with the public-domain
  corpus when present and a small deny-list), called as the pipeline calls it;
- the whole pipeline (``ScreenPipeline.screen``, all available screens concurrently);
- the streaming pipeline (``ScreenPipeline.stream``, the answer pushed in 4-character deltas):
  time per answer, screen calls and characters screened per answer character;
- presidio's ``AnalyzerEngine`` (default recognizers, blank spaCy English pipeline, offline).

Reports p50 / p99 in ms for clean and PII answers, and presidio p50 / pipeline p50.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import anyio  # noqa: E402

from aiguard.errors import ConfigError  # noqa: E402
from aiguard.policy.models import Policy  # noqa: E402
from aiguard.policy.prompts import Catalogue  # noqa: E402
from aiguard.screens import registry  # noqa: E402
from aiguard.screens.base import Screen, ScreenContext  # noqa: E402
from aiguard.screens.pipeline import ScreenPipeline  # noqa: E402

DATASET = HERE.parent.parent / "shared" / "datasets" / "public_domain_texts"
SENTENCES = [
    "To reset your password, open Settings, choose Security and click Reset password.",
    "You will receive a confirmation e-mail within five minutes of the request.",
    "If nothing arrives, check your spam folder first; filters were updated in March 2024.",
    "Version 3.12.1 fixes the memory leak reported in issue 4711 and speeds up start-up.",
    "The Standard plan costs 12.99 EUR per month and includes 50 GB of storage.",
    "Preheat the oven to 220 C, then mix the flour, salt, yeast and warm water.",
    "Our opening hours are Monday to Friday, 9:00 to 17:30, and Saturday 10:00 to 14:00.",
    "In Python, read a file line by line with a for loop over the open file handle.",
    "The French Revolution began in 1789 and reshaped European politics for decades.",
    "Your order will arrive in 3-5 business days; track it in the app under Orders.",
    "Enable WPA3 on the router if all your devices support it, otherwise WPA2-AES.",
    "Drink plenty of water and rest; see a doctor if the fever lasts more than three days.",
]
PII = [
    "You can write to maria.gonzalez@example.com for details.",
    "Call our agent on +44 20 7946 0958 between nine and five.",
    "Refunds go to DE89 3704 0044 0532 0130 00 within a week.",
    "The card 4111 1111 1111 1111 was charged twice.",
    "Please contact John Smith at john.smith@company.org.",
    "Her number is (212) 555-0187 and she prefers texts.",
]
DENYLIST = ["Acme", "Globex", "Initech", "谷歌"]


def make_answers(n: int, seed: int) -> list[tuple[str, str]]:
    """[(kind, text)], half "clean", half "pii", each ~1 KB."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        kind = "pii" if i % 2 else "clean"
        parts: list[str] = []
        inserts = rng.randint(2, 4) if kind == "pii" else 0
        while sum(len(p) + 1 for p in parts) < 1000:
            parts.append(rng.choice(SENTENCES))
        for _ in range(inserts):
            parts.insert(rng.randrange(len(parts)), rng.choice(PII))
        out.append((kind, " ".join(parts)[:1100]))
    return out


def policy() -> Policy:
    infringement: dict[str, Any] = {"denylist": DENYLIST}
    if DATASET.is_dir():
        infringement["corpus_dir"] = str(DATASET)
    return Policy.model_validate(
        {"screening": {"screens": ["pii", "harm", "infringement"], "infringement": infringement}}
    )


def build_screens(p: Policy) -> list[Screen]:
    screens = []
    for name in p.screening.screens:
        try:
            screens.append(registry.create(name, p))
        except ConfigError as exc:
            print(f"skip screen {name}: {exc}", file=sys.stderr)
    return screens


def presidio_engine() -> Callable[[str], object] | None:
    try:
        import tldextract.tldextract

        from aiguard.screens.pii.engine import default_presidio_analyzer
        from aiguard.screens.pii.recognizers import offline_tldextract
    except ImportError as exc:
        print(f"skip presidio baseline: {exc}", file=sys.stderr)
        return None
    # presidio's EmailRecognizer calls tldextract.extract(): point it at the bundled snapshot
    tldextract.tldextract.TLD_EXTRACTOR = offline_tldextract()
    engine = default_presidio_analyzer(["en"])
    return lambda text: engine.analyze(text, language="en")


def pct(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


async def timed(
    answers: list[tuple[str, str]], fn: Callable[[str], Awaitable[object]]
) -> dict[str, list[float]]:
    for _, text in answers[:5]:  # warm up
        await fn(text)
    out: dict[str, list[float]] = {"clean": [], "pii": []}
    for kind, text in answers:
        t0 = time.perf_counter()
        await fn(text)
        out[kind].append((time.perf_counter() - t0) * 1000)
    return out


def row(name: str, t: dict[str, list[float]], extra: str = "") -> str:
    cells = [f"{pct(t[k], 50):8.3f} {pct(t[k], 99):8.3f}" for k in ("clean", "pii")]
    return f"{name:28} {cells[0]}   {cells[1]}   {extra}"


async def main_async(n: int, seed: int) -> None:
    answers = make_answers(n, seed)
    p = policy()
    screens = build_screens(p)
    pipeline = ScreenPipeline(p, Catalogue(), screens)
    t0 = time.perf_counter()
    await pipeline.load()
    print(
        f"{len(answers)} answers (~1 KB, half with PII); screens loaded in "
        f"{time.perf_counter() - t0:.1f} s: {', '.join(pipeline.screens)}\n"
    )
    print(f"{'ms per answer':28} {'clean p50':>8} {'p99':>8}   {'pii p50':>8} {'p99':>8}")
    ctx = ScreenContext()
    results: dict[str, dict[str, list[float]]] = {}
    for screen in screens:
        results[screen.name] = await timed(answers, lambda t, s=screen: s.screen(t, ctx))
        print(row(f"screen {screen.name}", results[screen.name]))
    results["pipeline"] = await timed(answers, lambda t: pipeline.screen(t, ctx))
    print(row("pipeline (all screens)", results["pipeline"]))

    calls: list[int] = []
    ratio: list[float] = []

    async def stream(text: str) -> None:
        s = pipeline.stream(ctx)
        for i in range(0, len(text), 4):
            await s.push(text[i : i + 4])
        await s.finish()
        calls.append(s.screen_calls)
        ratio.append(s.chars_screened / len(text))

    results["stream"] = await timed(answers, stream)
    print(
        row(
            "pipeline, streamed (4-char)",
            results["stream"],
            f"{statistics.mean(calls):.1f} windows/answer, "
            f"{statistics.mean(ratio):.2f} chars screened per char",
        )
    )

    engine = presidio_engine()
    if engine is None:
        return

    async def presidio(text: str) -> None:
        engine(text)

    results["presidio"] = await timed(answers, presidio)
    print(row("presidio AnalyzerEngine", results["presidio"], "(blank spaCy en, offline)"))
    print()
    for name in [s.name for s in screens if s.name == "pii"] + ["pipeline"]:
        for kind in ("clean", "pii"):
            r = pct(results["presidio"][kind], 50) / pct(results[name][kind], 50)
            print(f"presidio p50 / {name} p50 ({kind}): {r:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--answers", type=int, default=200)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    anyio.run(main_async, args.answers, args.seed)


if __name__ == "__main__":
    main()
