"""Verbatim-match precision / recall of the infringement screen, and its scale on a big corpus.

Evaluation (default): on ../shared/datasets/public_domain_texts (100 book openings, 100 poems;
read in place, never copied). Every other work is indexed; answers are generated that quote:

  positives   a run of >= min_words words of an indexed work (55, 80, 150 words), a whole
              indexed poem, a >= min_words run with case/punctuation/line-break changes
  negatives   short runs (20, 35, 45 words, < 300 chars) of indexed works, long runs of
              unindexed works, and paraphrase-like edits (every 5th word replaced)

and the screen's verdicts give precision, recall and attribution accuracy (right work named).

Scale (``--scale-mb 100``): generates N MB of pseudo-random word text (Zipf-distributed made-up
words) in a temp folder, then in a fresh process builds the index (time, peak RSS, index size),
opens it again from the on-disk cache, and times 1 KB queries.

    python bench/eval_infringement.py [--json]
    python bench/eval_infringement.py --scale-mb 100
"""

from __future__ import annotations

import argparse
import json
import random
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from aiguard.screens.infringement import InfringementScreen, work_name  # noqa: E402

DATASET = HERE.parent.parent / "shared" / "datasets" / "public_domain_texts"
WRAP_BEFORE = [
    "Sure! Here is the passage you asked for:\n\n",
    "Of course. The text reads as follows: ",
    "Here you go —\n",
]
WRAP_AFTER = ["\n\nI hope this helps!", " Let me know if you need more.", ""]
FILLER = (
    "In short, the author sets the scene quickly and introduces the main characters with a "
    "few well chosen details, which is why readers still enjoy it today."
)
SWAPS = ["indeed", "perhaps", "quite", "rather", "also", "still", "often", "then"]


def _works() -> list[tuple[str, str]]:
    files = sorted((DATASET / "bsnc").glob("*.txt")) + sorted((DATASET / "bep").glob("*.txt"))
    return [(work_name(p, t), t) for p in files for t in [p.read_text(encoding="utf-8")]]


def _answer(rng: random.Random, quote: str) -> str:
    return rng.choice(WRAP_BEFORE) + quote + rng.choice(WRAP_AFTER)


def _run(words: list[str], rng: random.Random, n: int) -> str:
    start = rng.randrange(0, max(1, len(words) - n))
    return " ".join(words[start : start + n])


def _near_verbatim(quote: str) -> str:
    """Case, punctuation and whitespace changes only."""
    out = re.sub(r"[,;:](?=\s)", "", quote.lower())
    out = re.sub(r"[’']", "'", out)
    return re.sub(r"\s+", lambda m: "\n" if len(m.group()) > 1 else "  ", out)


def _paraphrase(quote: str, rng: random.Random) -> str:
    words = quote.split()
    for i in range(2, len(words), 5):
        words[i] = rng.choice(SWAPS)
    return " ".join(words)


def cases(
    works: list[tuple[str, str]], min_words: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str, str | None, bool]]]:
    """(indexed works, [(category, answer, expected work or None, expected flagged)])."""
    rng = random.Random(20261129)
    indexed = works[0::2]
    held_out = works[1::2]
    out: list[tuple[str, str, str | None, bool]] = []
    for name, text in indexed:
        # words as a reader counts them: a lone dash is not a word
        words = [w for w in text.split() if any(c.isalnum() for c in w)]
        if len(words) >= min_words + 10:
            for n in (min_words + 5, min_words + 30, 150):
                if len(words) >= n:
                    out.append(
                        (
                            f"verbatim >= {min_words} words",
                            _answer(rng, _run(words, rng, n)),
                            name,
                            True,
                        )
                    )
            q = _run(words, rng, min_words + 10)
            out.append(
                ("near-verbatim (case/punct/space)", _answer(rng, _near_verbatim(q)), name, True)
            )
            out.append(
                (
                    "paraphrase (every 5th word)",
                    _answer(rng, _paraphrase(_run(words, rng, 100), rng)),
                    None,
                    False,
                )
            )
        else:
            out.append(("whole short poem", _answer(rng, text.strip()), name, True))
        for n in (20, 35, min_words - 5):
            q = _run(words, rng, n)
            if len(words) > n and len(q) < 300 and n < 0.5 * len(words):
                out.append((f"short run (< {min_words} words)", _answer(rng, q), None, False))
    for _name, text in held_out:
        words = [w for w in text.split() if any(c.isalnum() for c in w)]
        q = _run(words, rng, min(len(words), 120))
        out.append(("unindexed work", _answer(rng, q) + " " + FILLER, None, False))
    return indexed, out


def evaluate(min_words: int = 50, min_chars: int = 300) -> list[dict[str, Any]]:
    """Rows for bench/eval.py: ``screen, dataset, metric, value, n, notes``."""
    if not DATASET.is_dir():
        print(f"skip: {DATASET} is absent", file=sys.stderr)
        return []
    works = _works()
    indexed, queries = cases(works, min_words)
    screen = InfringementScreen(min_words=min_words, min_chars=min_chars)
    started = time.perf_counter()
    screen.index_works(indexed)
    build_ms = (time.perf_counter() - started) * 1000
    per_cat: dict[str, list[bool]] = {}
    tp = fp = fn = tn = right_work = 0
    times: list[float] = []
    for _, answer, _, _ in queries[:20]:  # warm up (first numpy calls allocate)
        screen.find(answer)
    for category, answer, work, expected in queries:
        t0 = time.perf_counter()
        spans = [s for s in screen.find(answer) if s.label == "verbatim"]
        times.append((time.perf_counter() - t0) * 1000)
        flagged = bool(spans)
        per_cat.setdefault(category, []).append(flagged)
        if expected and flagged:
            tp += 1
            right_work += any(f"{work!r}" in s.explanation for s in spans)
        elif expected:
            fn += 1
        elif flagged:
            fp += 1
        else:
            tn += 1
    ds = "public_domain_texts"
    rows: list[dict[str, Any]] = []

    def row(metric: str, value: float, n: int, notes: str = "") -> None:
        rows.append(
            {
                "screen": "infringement",
                "dataset": ds,
                "metric": metric,
                "value": round(value, 4),
                "n": n,
                "notes": notes,
            }
        )

    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    row("verbatim precision", precision, tp + fp, f"min_words={min_words}, min_chars={min_chars}")
    row("verbatim recall", recall, tp + fn)
    row("attribution (right work named)", right_work / tp if tp else 1.0, tp)
    for category, flags in per_cat.items():
        row(f"flag rate: {category}", sum(flags) / len(flags), len(flags))
    row("query p50 ms", statistics.median(times), len(times))
    row("query p99 ms", _p99(times), len(times))
    row(
        "index build ms",
        build_ms,
        len(indexed),
        f"{len(indexed)} works, {screen.index.nbytes if screen.index else 0} B",
    )
    return rows


def _p99(xs: list[float]) -> float:
    return sorted(xs)[min(len(xs) - 1, int(0.99 * len(xs)))]


# -- scale -------------------------------------------------------------------------------------


def generate_corpus(root: Path, mb: int, seed: int = 1) -> None:
    import numpy as np

    rng = np.random.default_rng(seed)
    letters = np.array(list("etaoinshrdlucmfwypvbgkjqxz"))
    vocab = ["".join(rng.choice(letters, size=int(rng.integers(2, 10)))) for _ in range(50_000)]
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 1.05
    weights /= weights.sum()
    for i in range(mb):
        ids = rng.choice(len(vocab), size=190_000, p=weights)
        words = [vocab[j] for j in ids.tolist()]
        lines = [" ".join(words[k : k + 14]) + "." for k in range(0, len(words), 14)]
        text = "\n".join(lines)[: 1 << 20]
        (root / f"work-{i:04d}.txt").write_text(text, encoding="utf-8")


def _child(corpus: str, cache: str) -> None:
    """Runs in a fresh process so peak RSS is the index build's own."""
    import anyio

    screen = InfringementScreen(corpus_dir=corpus, cache_dir=cache)
    started = time.perf_counter()
    anyio.run(screen.load)
    build_s = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    index = screen.index
    assert index is not None
    again = InfringementScreen(corpus_dir=corpus, cache_dir=cache)
    started = time.perf_counter()
    anyio.run(again.load)
    cached_s = time.perf_counter() - started
    files = sorted(Path(corpus).glob("*.txt"))
    rng = random.Random(3)
    clean = " ".join(
        rng.choice(["alpha", "beta", "gamma", "delta", "model", "answer"]) for _ in range(170)
    )[:1024]
    quotes = []
    for f in files[:20]:
        words = f.read_text().split()
        quotes.append(" ".join(words[5000:5170])[:1024])
    times = {"clean": [], "quote": []}
    for _ in range(30):
        for q in [clean]:
            t0 = time.perf_counter()
            again.find(q)
            times["clean"].append((time.perf_counter() - t0) * 1000)
        for q in quotes:
            t0 = time.perf_counter()
            found = again.find(q)
            times["quote"].append((time.perf_counter() - t0) * 1000)
            assert found, "a quote from the corpus was not found"
    print(
        json.dumps(
            {
                "corpus_mb": sum(f.stat().st_size for f in files) / 1e6,
                "tokens": len(index.tokens),
                "fingerprints": len(index.fp_hash),
                "fingerprint_mb": index.nbytes / 1e6,
                "token_array_mb": index.tokens.nbytes / 1e6,
                "build_s": round(build_s, 2),
                "peak_rss_mb": round(rss_mb, 1),
                "cached_open_s": round(cached_s, 2),
                "query_clean_p50_ms": round(statistics.median(times["clean"]), 3),
                "query_quote_p50_ms": round(statistics.median(times["quote"]), 3),
                "query_quote_p99_ms": round(_p99(times["quote"]), 3),
            }
        )
    )


def scale(mb: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="aiguard-corpus-") as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        started = time.perf_counter()
        generate_corpus(corpus, mb)
        print(f"generated {mb} MB in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        out = subprocess.run(
            [sys.executable, __file__, "--_child", str(corpus), str(Path(tmp) / "cache")],
            check=True,
            capture_output=True,
            text=True,
        )
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", action="store_true", help="print rows as one JSON list")
    ap.add_argument("--scale-mb", type=int, default=0, help="measure the index on N MB instead")
    ap.add_argument("--_child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args._child:
        _child(*args._child)
        return
    if args.scale_mb:
        result = scale(args.scale_mb)
        for k, v in result.items():
            print(f"{k:22} {v}")
        return
    rows = evaluate()
    if args.json:
        print(json.dumps(rows))
        return
    for r in rows:
        print(f"{r['metric']:45} {r['value']:>10} n={r['n']:<5} {r['notes']}")


if __name__ == "__main__":
    main()
