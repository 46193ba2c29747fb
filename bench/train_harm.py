"""Train the local harm model: hashed character n-grams + multi-label logistic regression.

    .venv/bin/python bench/train_harm.py            # writes aiguard/screens/harm/data/model.npz

Reproducible: the data split is a hash of each example's group key, initialisation is zero and
the optimiser is deterministic full-batch Adam, so the same datasets give the same weights.
Reads the development datasets from ../shared/datasets (see NOTICE for their sources).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
import tomllib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harm_data import Example, available, load_all

from aiguard.screens.harm._features import (
    NGRAM_SIZES,
    IdentityMask,
    featurize,
    mark_scopes,
    normalize,
)
from aiguard.screens.harm._lexicon import DEFAULT_LEXICON

HEADS = ("hate", "harassment")
OUT = Path(__file__).resolve().parents[1] / "aiguard" / "screens" / "harm" / "data" / "model.npz"
# Relative total weight of each source, so 25k COLD posts do not drown 3k HateCheck cases.
SOURCE_WEIGHT = {
    "hatecheck_en": 3.0,
    "cold_zh": 3.0,
    "germeval2018_de": 2.0,
    "identity_templates": 1.5,
    "toxigen_seeds_en": 1.0,
    "benign_en": 2.0,
    "authored_benign": 2.0,  # our identity templates, filled with every group
    "authored_answers": 0.5,  # our refusals and plain answers
}


def identity_lists(enabled: bool) -> dict[str, list[str]]:
    """The identity terms of the shipped lexicon; the model stores its own copy."""
    if not enabled:
        return {"latin": [], "cjk": [], "adjectives": []}
    ids = tomllib.loads(DEFAULT_LEXICON.read_text(encoding="utf-8"))["identities"]
    return {
        "latin": sorted({*ids["latin"], *ids["generic"]}),
        "cjk": list(ids["zh"]),
        "adjectives": sorted(ids["adjectives"]),
    }


def design(
    examples: list[Example], bits: int, mask: IdentityMask, scopes: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    buckets, segs, norms = [], [], []
    offset = 0
    for i in range(0, len(examples), 4000):
        chunk = [mask(normalize(ex.text)) for ex in examples[i : i + 4000]]
        if scopes:
            chunk = [mark_scopes(t) for t in chunk]
        b, s, n = featurize(chunk, bits)
        buckets.append(b)
        segs.append(s + offset)
        norms.append(n)
        offset += len(chunk)
    return np.concatenate(buckets), np.concatenate(segs), np.concatenate(norms)


def train(
    examples: list[Example],
    bits: int,
    l2: float,
    steps: int,
    lr: float,
    mask: IdentityMask,
    scopes: bool,
) -> tuple[np.ndarray, np.ndarray]:
    dim = 1 << bits
    bucket, seg, norm = design(examples, bits, mask, scopes)
    n = len(examples)
    y = np.array([[ex.labels[h] for h in HEADS] for ex in examples])
    # Each source gets its share of the total weight, split equally between its harmful and
    # harmless examples: HateCheck is 68% hateful, and unbalanced it teaches "identity = hate".
    totals: dict[tuple[str, bool], int] = {}
    for ex in examples:
        key = (ex.source, ex.labels["harassment"] >= 0.5)
        totals[key] = totals.get(key, 0) + 1
    sw = np.array(
        [
            SOURCE_WEIGHT[ex.source]
            / totals[(ex.source, ex.labels["harassment"] >= 0.5)]
            / (2 if (ex.source, ex.labels["harassment"] < 0.5) in totals else 1)
            for ex in examples
        ]
    )
    sw *= n / sw.sum()
    feat_w = norm[seg]
    w = np.zeros((dim, len(HEADS)))
    b = np.zeros(len(HEADS))
    m_w, v_w = np.zeros_like(w), np.zeros_like(w)
    m_b, v_b = np.zeros_like(b), np.zeros_like(b)
    beta1, beta2, eps = 0.9, 0.999, 1e-8
    for step in range(1, steps + 1):
        grad_w = np.empty_like(w)
        grad_b = np.empty_like(b)
        loss = 0.0
        for k in range(len(HEADS)):
            z = np.bincount(seg, weights=w[bucket, k] * feat_w, minlength=n) + b[k]
            p = 1.0 / (1.0 + np.exp(-z))
            err = (p - y[:, k]) * sw / n
            grad = np.bincount(bucket, weights=err[seg] * feat_w, minlength=dim)
            grad_w[:, k] = grad + l2 * w[:, k]
            grad_b[k] = err.sum()
            pc = np.clip(p, 1e-7, 1 - 1e-7)
            loss += float(-(sw * (y[:, k] * np.log(pc) + (1 - y[:, k]) * np.log(1 - pc))).mean())
        m_w = beta1 * m_w + (1 - beta1) * grad_w
        v_w = beta2 * v_w + (1 - beta2) * grad_w**2
        m_b = beta1 * m_b + (1 - beta1) * grad_b
        v_b = beta2 * v_b + (1 - beta2) * grad_b**2
        corr1, corr2 = 1 - beta1**step, 1 - beta2**step
        w -= lr * (m_w / corr1) / (np.sqrt(v_w / corr2) + eps)
        b -= lr * (m_b / corr1) / (np.sqrt(v_b / corr2) + eps)
        if step % 25 == 0 or step == 1:
            print(f"step {step:4d} loss {loss:.4f}", flush=True)
    return w, b


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bits", type=int, default=18)
    ap.add_argument("--l2", type=float, default=1e-6)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--all", action="store_true", help="also train on the held-out split")
    ap.add_argument(
        "--weight",
        action="append",
        default=[],
        metavar="SOURCE=W",
        help="override a source weight (0 drops the source)",
    )
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--no-mask", action="store_true", help="keep identity terms as features")
    ap.add_argument("--no-scopes", action="store_true", help="do not mark negation/quote scopes")
    args = ap.parse_args()
    if not available():
        sys.exit("datasets not found: set AIGUARD_DATASETS or place them in ../shared/datasets")
    t0 = time.perf_counter()
    for item in args.weight:
        name, _, value = item.partition("=")
        SOURCE_WEIGHT[name] = float(value)
    examples = [
        ex for ex in load_all() if (args.all or not ex.test) and SOURCE_WEIGHT.get(ex.source, 0) > 0
    ]
    print(f"{len(examples)} training examples", flush=True)
    identities = identity_lists(not args.no_mask)
    mask = IdentityMask(identities["latin"], identities["cjk"], identities["adjectives"])
    w, b = train(examples, args.bits, args.l2, args.steps, args.lr, mask, not args.no_scopes)
    meta = {
        "version": 1,
        "heads": list(HEADS),
        "bits": args.bits,
        "ngrams": list(NGRAM_SIZES),
        "trained_on": "all" if args.all else "train-split",
        "examples": len(examples),
        "params": {"l2": args.l2, "steps": args.steps, "lr": args.lr},
        "source_weights": {k: v for k, v in SOURCE_WEIGHT.items() if v > 0},
        "sources": sorted({ex.source for ex in examples}),
        "identities": identities,
        "scopes": not args.no_scopes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.out,
        weights=w.astype(np.float16),
        bias=b.astype(np.float32),
        meta=np.array(json.dumps(meta)),
    )
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()[:16]
    print(
        f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, sha256 {digest}) "
        f"in {time.perf_counter() - t0:.0f}s"
    )


if __name__ == "__main__":
    main()
