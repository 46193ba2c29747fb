"""Precision / recall / F1 per entity type on presidio-research's synthetic PII sentences.

    .venv/bin/python bench/eval_pii.py [--write-docs]

Data: ``pii_synth_en/synth_dataset_v2.json`` in the shared datasets folder (``$AIGUARD_DATASETS``
or ``../shared/datasets`` beside the repository); skipped with a message when absent. The data
is read in place, never copied.

Compared: our ``PIIScreen`` (default entities, default threshold 0.5, no NER model installed)
and plain presidio (``AnalyzerEngine()`` default registry, every result, on the same blank
spaCy pipeline, tldextract offline). A prediction is a true positive when it overlaps a gold
span of the same type (gold types mapped to ours: GPE -> LOCATION, DOMAIN_NAME -> URL); each
gold span is matched at most once. ``--write-docs`` puts the table into docs/pii.md between
the ``eval_pii`` markers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GOLD_TO_OURS = {"GPE": "LOCATION", "DOMAIN_NAME": "URL"}
BEGIN, END = "<!-- eval_pii:begin -->", "<!-- eval_pii:end -->"


def dataset_file() -> Path | None:
    root = Path(os.environ.get("AIGUARD_DATASETS") or REPO.parent / "shared" / "datasets")
    path = root / "pii_synth_en" / "synth_dataset_v2.json"
    return path if path.is_file() else None


Spans = list[tuple[int, int, str]]


def score(gold: list[Spans], pred: list[Spans]) -> dict[str, tuple[int, int, int]]:
    """label -> (true positives, predicted, gold)."""
    tp: Counter[str] = Counter()
    npred: Counter[str] = Counter()
    ngold: Counter[str] = Counter()
    for g_spans, p_spans in zip(gold, pred, strict=True):
        for _, _, label in g_spans:
            ngold[label] += 1
        used: set[int] = set()
        for ps, pe, plabel in p_spans:
            npred[plabel] += 1
            for i, (gs, ge, glabel) in enumerate(g_spans):
                if i not in used and glabel == plabel and ps < ge and gs < pe:
                    used.add(i)
                    tp[plabel] += 1
                    break
    return {k: (tp[k], npred[k], ngold[k]) for k in set(npred) | set(ngold)}


def prf(tp: int, npred: int, ngold: int) -> tuple[float | None, float | None, float | None]:
    p = tp / npred if npred else None
    r = tp / ngold if ngold else None
    f = 2 * p * r / (p + r) if p is not None and r is not None and p + r else None
    if f is None and p is not None and r is not None:
        f = 0.0
    return p, r, f


def fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.2f}"


def table(ours: dict[str, tuple[int, int, int]], base: dict[str, tuple[int, int, int]]) -> str:
    labels = sorted(set(ours) | set(base), key=lambda k: (-max(ours.get(k, (0, 0, 0))[2], 0), k))
    lines = [
        "| entity | gold | aiguard P | R | F1 | presidio P | R | F1 |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label in labels:
        o = ours.get(label, (0, 0, base.get(label, (0, 0, 0))[2]))
        b = base.get(label, (0, 0, o[2]))
        op, orr, of = prf(*o)
        bp, br, bf = prf(*b)
        lines.append(
            f"| {label} | {o[2]} | {fmt(op)} | {fmt(orr)} | {fmt(of)} "
            f"| {fmt(bp)} | {fmt(br)} | {fmt(bf)} |"
        )
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--write-docs", action="store_true", help="update docs/pii.md")
    args = ap.parse_args()
    path = dataset_file()
    if path is None:
        print("pii_synth_en not found: set AIGUARD_DATASETS or put shared/datasets beside the repo")
        print("skipped")
        return 0

    import anyio
    import tldextract.tldextract

    from aiguard.screens.pii import PIIScreen
    from aiguard.screens.pii.engine import default_presidio_analyzer
    from aiguard.screens.pii.recognizers import offline_tldextract

    tldextract.tldextract.TLD_EXTRACTOR = offline_tldextract()  # presidio's e-mail check, offline

    rows = json.loads(path.read_text(encoding="utf-8"))
    texts = [r["full_text"] for r in rows]
    gold = [
        [
            (
                s["start_position"],
                s["end_position"],
                GOLD_TO_OURS.get(s["entity_type"], s["entity_type"]),
            )
            for s in r["spans"]
        ]
        for r in rows
    ]

    screen = PIIScreen(languages=["en"])
    anyio.run(screen.load)
    presidio = default_presidio_analyzer(["en"])

    t = time.perf_counter()
    ours = [[(s.start, s.end, s.label) for s in screen.find(x)] for x in texts]
    t_ours = time.perf_counter() - t
    t = time.perf_counter()
    base = [
        [(r.start, r.end, r.entity_type) for r in presidio.analyze(x, language="en")] for x in texts
    ]
    t_base = time.perf_counter() - t

    ours_s, base_s = score(gold, ours), score(gold, base)
    ner = (
        "with NER (" + ", ".join(sorted(screen.ner_languages)) + ")"
        if screen.ner_languages
        else "no NER model installed"
    )
    head = (
        f"{len(texts)} sentences ({path.parent.name}); aiguard {ner}, threshold "
        f"{screen.score_threshold}; presidio defaults, all results. Time: aiguard "
        f"{t_ours * 1000:.0f} ms, presidio {t_base * 1000:.0f} ms."
    )
    # totals over the entity types aiguard targets (pattern entities present in the gold)
    active = {e for e in screen.entities if e not in ("PERSON", "LOCATION") or screen.ner_languages}
    targeted = sorted(k for k in ours_s if k in active and ours_s[k][2])
    tot_o = tuple(sum(ours_s[k][i] for k in targeted) for i in range(3))
    tot_b = tuple(sum(base_s.get(k, (0, 0, 0))[i] for k in targeted) for i in range(3))
    body = table(ours_s, base_s)
    op, orr, of = prf(*tot_o)  # type: ignore[arg-type]
    bp, br, bf = prf(*tot_b)  # type: ignore[arg-type]
    summary = (
        f"On the types aiguard targets and the data holds ({', '.join(targeted)}): aiguard "
        f"P {fmt(op)} R {fmt(orr)} F1 {fmt(of)}; presidio P {fmt(bp)} R {fmt(br)} F1 {fmt(bf)}."
    )
    out = f"{head}\n\n{body}\n\n{summary}"
    print(out)
    if args.write_docs:
        doc = REPO / "docs" / "pii.md"
        text = doc.read_text(encoding="utf-8")
        if BEGIN in text and END in text:
            pre, rest = text.split(BEGIN, 1)
            _, post = rest.split(END, 1)
            doc.write_text(f"{pre}{BEGIN}\n{out}\n{END}{post}", encoding="utf-8")
            print(f"updated {doc}")
        else:
            print(f"{doc} has no {BEGIN} / {END} markers; not written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
