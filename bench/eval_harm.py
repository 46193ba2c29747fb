"""Measure the local harm backend: quality per dataset/category/language, and latency.

    .venv/bin/python bench/eval_harm.py                # held-out split, markdown tables
    .venv/bin/python bench/eval_harm.py --split all    # every example (includes training data!)
    .venv/bin/python bench/eval_harm.py --latency-only

Verdicts come from HarmScreen with its default thresholds, i.e. the shipped behaviour. An
example counts as flagged when the screen blocks it for a category relevant to the dataset
(hate/harassment/violence for the abuse sets). Datasets are read from ../shared/datasets.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harm_data import (
    DATASETS,
    Example,
    available,
    benign_en,
    cold,
    germeval,
    harmful_requests,
    hatecheck,
    identity_templates,
    identity_unseen,
    toxigen,
)

from aiguard.screens.base import ScreenContext
from aiguard.screens.harm import HarmScreen, LocalBackend

ABUSE = frozenset({"hate", "harassment", "violence"})
COUNTER = ("counter_quote_nh", "counter_ref_nh")
REQUEST_EXPECTED = {  # HarmBench / StrongREJECT category -> our categories that should fire
    "chemical_biological": {"illicit", "violence"},
    "cybercrime_intrusion": {"illicit"},
    "illegal": {"illicit", "violence"},
    "harassment_bullying": {"harassment", "hate"},
    "Violence": {"violence", "illicit"},
    "Sexual content": {"sexual", "sexual/minors"},
    "Hate, harassment and discrimination": {"hate", "harassment"},
    "Illegal goods and services": {"illicit"},
    "Non-violent crimes": {"illicit"},
}


@dataclass
class Counts:
    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0
    extra: dict[str, int] = field(default_factory=dict)

    def add(self, truth: bool, flagged: bool) -> None:
        if truth and flagged:
            self.tp += 1
        elif flagged:
            self.fp += 1
        elif truth:
            self.fn += 1
        else:
            self.tn += 1

    def row(self) -> str:
        n = self.tp + self.fp + self.fn + self.tn
        p = self.tp / (self.tp + self.fp) if self.tp + self.fp else float("nan")
        r = self.tp / (self.tp + self.fn) if self.tp + self.fn else float("nan")
        f1 = 2 * p * r / (p + r) if self.tp else (0.0 if self.tp + self.fn else float("nan"))
        fpr = self.fp / (self.fp + self.tn) if self.fp + self.tn else float("nan")
        fp_share = f"{_f(fpr, 3)} ({self.fp}/{self.fp + self.tn})" if self.fp + self.tn else "–"
        return " | ".join([str(n), _f(p), _f(r), _f(f1), fp_share])


def _f(x: float, digits: int = 2) -> str:
    return "–" if x != x else f"{x:.{digits}f}"


def flagged_categories(screen: HarmScreen, text: str) -> set[str]:
    result = asyncio.run(screen.screen(text, ScreenContext()))
    return {s.label for s in result.spans}


def evaluate(screen: HarmScreen, split: str) -> None:
    rows: dict[tuple[str, str, str], Counts] = defaultdict(Counts)
    keep: Callable[[Example], bool] = (lambda ex: ex.test) if split == "test" else (lambda ex: True)

    def run(
        source: Iterable[Example],
        truth_key: str,
        slicer: Callable[[Example], list[str]],
        relevant: frozenset[str] = ABUSE,
    ) -> None:
        for ex in source:
            if not keep(ex):
                continue
            cats = flagged_categories(screen, ex.text)
            truth = ex.labels.get(truth_key, 0.0) >= 0.5
            for sl in slicer(ex):
                rows[(ex.source, ex.lang, sl)].add(truth, bool(cats & relevant))
                if truth_key == "hate" and sl == "all":
                    rows[(ex.source, ex.lang, "hate category only")].add(truth, "hate" in cats)

    def hatecheck_slices(ex: Example) -> list[str]:
        out = ["all"]
        if ex.group in COUNTER:
            out.append("counter-speech")
        if ex.group == "negate_neg_nh":
            out.append("negation")
        if ex.group.startswith("ident_"):
            out.append("identity neutral/positive")
        if ex.labels["hate"] >= 0.5:
            out.append("hateful functionalities")
        out.append(f"func={ex.group}")  # per functionality: FPR for *_nh, recall for *_h
        return out

    run(hatecheck(), "hate", hatecheck_slices)
    run(cold(), "hate", lambda ex: ["all", f"topic={ex.group}"])
    run(germeval(), "harassment", lambda ex: ["all", f"fine={ex.group}"])
    run(
        identity_templates(),
        "harassment",
        lambda ex: ["all", "nontoxic only" if ex.group.endswith(":nontoxic") else "toxic only"],
    )
    run(
        identity_unseen(),
        "harassment",
        lambda ex: ["all", "nontoxic only" if ex.group.endswith(":nontoxic") else "toxic only"],
    )
    run(toxigen(), "hate", lambda ex: ["all"])
    run(benign_en(), "hate", lambda ex: ["all"], relevant=frozenset(screen.categories))

    print(f"\n### Quality ({split} split; flagged = blocked for hate, harassment or violence)\n")
    print("| dataset | lang | slice | n | precision | recall | F1 | FPR (FP/negatives) |")
    print("|---|---|---|---|---|---|---|---|")
    for (source, lang, sl), c in sorted(
        rows.items(), key=lambda kv: (kv[0][0], kv[0][2] != "all", kv[0][2])
    ):
        print(f"| {source} | {lang} | {sl} | {c.row()} |")

    print("\n### Harmful requests (prompts, not answers): share flagged\n")
    print("| source | category | n | any category | expected category |")
    print("|---|---|---|---|---|")
    req: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    for ex in harmful_requests():
        cats = flagged_categories(screen, ex.text)
        acc = req[(ex.source, ex.group)]
        acc[0] += 1
        acc[1] += bool(cats)
        acc[2] += bool(cats & REQUEST_EXPECTED.get(ex.group, set()))
    for (source, group), (n, anyc, exp) in sorted(req.items()):
        expected = f"{exp / n:.2f}" if group in REQUEST_EXPECTED else "n/a"
        print(f"| {source} | {group} | {n} | {anyc / n:.2f} | {expected} |")


def latency(backend: LocalBackend, rounds: int) -> None:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\n### Latency of the local backend (~1 KB answers, {rounds} calls per row; "
        f"load average {load:.1f} on {os.cpu_count()} cores)\n"
    )
    print("| texts | distinct | p50 ms | p90 ms | p99 ms | max ms |")
    print("|---|---|---|---|---|---|")
    for name, texts in _answers_of_1kb().items():
        for t in texts[:20]:
            backend.findings_sync(t)  # warm caches
        samples = []
        for i in range(rounds):
            text = texts[i % len(texts)]
            start = time.perf_counter()
            backend.findings_sync(text)
            samples.append((time.perf_counter() - start) * 1000)
        samples.sort()
        p50 = statistics.median(samples)
        p90 = samples[int(len(samples) * 0.9)]
        p99 = samples[int(len(samples) * 0.99) - 1]
        print(f"| {name} | {len(texts)} | {p50:.3f} | {p90:.3f} | {p99:.3f} | {samples[-1]:.3f} |")


def _answers_of_1kb() -> dict[str, list[str]]:
    """~1 KB texts: harmless English prose, and the abuse sets' posts (many rule triggers)."""
    pools = {
        "harmless prose (en)": [ex.text for ex in benign_en(cap=1500)],
        "abusive/mixed posts (en)": [ex.text for ex in hatecheck()][::3],
        "tweets (de)": [ex.text for ex in germeval()][:1200],
        "posts (zh)": [ex.text for ex in cold()][:800],
    }
    out: dict[str, list[str]] = {}
    for name, pool in pools.items():
        chunks, buf = [], []
        for sentence in pool:
            buf.append(sentence.strip())
            if sum(len(s) + 1 for s in buf) >= 1000:
                chunks.append(" ".join(buf)[:1024])
                buf = []
        out[name] = chunks
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--split", choices=["test", "all"], default="test")
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=3000)
    ap.add_argument("--latency-only", action="store_true")
    args = ap.parse_args()
    if not available():
        sys.exit(f"datasets not found at {DATASETS}: set AIGUARD_DATASETS")
    backend = LocalBackend(model_path=args.model)
    backend.load_sync()
    screen = HarmScreen(backend=backend)
    if not args.latency_only:
        evaluate(screen, args.split)
    latency(backend, args.rounds)


if __name__ == "__main__":
    main()
