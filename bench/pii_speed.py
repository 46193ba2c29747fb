"""PII screen speed vs presidio's default AnalyzerEngine, on the same ~1 KB chatbot answers.

    .venv/bin/python bench/pii_speed.py [--answers 300] [--pii-share 0.2] [--seed 7]

Answers are generated: paragraphs of the kind support and how-to bots write (with years,
prices, versions, times and step numbers, which is what makes a naive prefilter fire), ~20%
of them with personal data inserted at known places. Both engines see the same texts:

- ours: ``PIIScreen.find`` (prefilter, windows, only the recognizers the hits can feed);
- presidio: ``AnalyzerEngine()`` with its default registry (all predefined recognizers) on the
  same blank spaCy pipeline (no NER for either), tldextract pointed at its bundled snapshot.

Recall is measured on the inserted spans (a finding of the same type overlapping the gold span
counts); presidio gets every result it returns (threshold 0), ours only what it reports at its
default threshold. Prints p50/p99/mean per engine, split clean vs PII answers, and the ratio.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import anyio

CLEAN_PARAGRAPHS = [
    "Sure! To reset your password, open Settings, choose Security and click 'Reset password'. "
    "You will receive a confirmation within 5 minutes. If nothing arrives, check your spam "
    "folder first; our filters were updated in March 2024 and some messages land there.",
    "Here is a quick summary of the release: version 3.12.1 fixes the memory leak reported in "
    "issue 4711, improves start-up time by about 30% and drops support for Python 3.8. "
    "Upgrading is recommended for everyone running 3.11 or older.",
    "The Standard plan costs 12.99 EUR per month (or 129 EUR per year) and includes 50 GB of "
    "storage, 3 users and priority support. The Pro plan adds single sign-on and audit logs "
    "for 24.99 EUR per user.",
    "Step 1: preheat the oven to 220 C. Step 2: mix 500 g flour, 10 g salt, 7 g yeast and "
    "350 ml warm water. Step 3: knead for 10 minutes, then let it rise for 1 to 2 hours until "
    "it has doubled in size. Bake for 35 to 40 minutes.",
    "Our opening hours are Monday to Friday, 9:00 to 17:30, and Saturday 10:00 to 14:00. "
    "During public holidays the store is closed, but the online shop stays open 24/7 and "
    "orders placed before 15:00 ship the same day.",
    "In Python you can read a file line by line with `for line in open(path)`. For large "
    "files prefer `with open(path, encoding='utf-8') as f:` so the handle is closed even on "
    "errors; `pathlib.Path(path).read_text()` is fine for files under a few MB.",
    "The French Revolution began in 1789 and reshaped European politics for decades. Key "
    "events include the storming of the Bastille on 14 July 1789, the Declaration of the "
    "Rights of Man, and the rise of Napoleon Bonaparte in 1799.",
    "Your order has been processed and will arrive in 3-5 business days. You can track the "
    "parcel in the app under Orders > Tracking. Delivery is free for orders over 49 EUR; "
    "otherwise a flat fee of 4.95 EUR applies.",
    "To configure the router, connect to its admin page, enter the default credentials from "
    "the label and change them immediately. Enable WPA3 if all your devices support it, "
    "otherwise WPA2-AES, and disable WPS.",
    "A balanced weekly plan: 3 sessions of 30 minutes of cardio, 2 strength sessions and at "
    "least one rest day. Aim for 7-9 hours of sleep and about 1.6 g of protein per kg of "
    "body weight if you want to build muscle.",
    "The meeting notes: we agreed to ship the beta on the 15th, move the retro to Thursday "
    "and review the Q3 budget next week. Action items were assigned in the tracker; please "
    "update your tickets by Friday noon.",
    "C++ tip: prefer std::vector over raw arrays, use std::unique_ptr for ownership, and "
    "mark single-argument constructors explicit. In C++20, std::span gives you a cheap "
    "non-owning view over contiguous memory.",
]


def _luhn_complete(prefix: str, rng: random.Random, length: int = 16) -> str:
    from aiguard.screens.pii.checksums import luhn_valid

    while True:
        body = prefix + "".join(rng.choice("0123456789") for _ in range(length - len(prefix) - 1))
        for d in "0123456789":
            if luhn_valid(body + d):
                return body + d


def _iban(country: str, bban: str) -> str:
    raw = bban + country + "00"
    check = 98 - int("".join(str(int(ch, 36)) for ch in raw)) % 97
    return f"{country}{check:02d}{bban}"


def _grouped(s: str) -> str:
    return " ".join(s[i : i + 4] for i in range(0, len(s), 4))


def _cn_id(rng: random.Random) -> str:
    from aiguard.screens.pii.checksums import _CN_CHECK, _CN_WEIGHTS

    body = f"{rng.choice(['110105', '310104', '440305'])}{rng.randint(1950, 2004)}"
    body += f"{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{rng.randint(0, 999):03d}"
    total = sum(int(d) * w for d, w in zip(body, _CN_WEIGHTS, strict=True))
    return body + _CN_CHECK[total % 11]


def _bsn(rng: random.Random) -> str:
    from aiguard.screens.pii.checksums import nl_bsn_valid

    while True:
        cand = str(rng.randint(100000000, 999999999))
        if nl_bsn_valid(cand):
            return cand


def make_pii(rng: random.Random) -> tuple[str, str, str]:
    """(sentence template with {v}, value, entity type)."""
    first = rng.choice(["anna", "li.wei", "j.smith", "maria.garcia", "pieter", "k.mueller"])
    dom = rng.choice(["example.com", "mail.example.org", "example.co.uk", "example.de"])
    n = rng.randint
    choices = [
        ("You can reach the account owner at {v}.", f"{first}@{dom}", "EMAIL_ADDRESS"),
        (
            "The number on file is {v}.",
            f"+1 {rng.choice(['212', '415', '617', '312', '206'])}-{n(200, 989)}-{n(1000, 9999)}",
            "PHONE_NUMBER",
        ),
        (
            "Call the office on {v} during opening hours.",
            f"+44 20 7{n(100, 999)} {n(1000, 9999)}",
            "PHONE_NUMBER",
        ),
        ("Sie erreichen ihn unter {v}.", f"+49 30 {n(1000000, 99999999)}", "PHONE_NUMBER"),
        (
            "她的手机号是{v}。",
            f"1{rng.choice('3589')}{n(0, 9)}{n(10000000, 99999999)}",
            "PHONE_NUMBER",
        ),
        (
            "Refunds go to {v}.",
            _grouped(_iban("DE", f"{n(10000000, 99999999)}{n(10**9, 10**10 - 1)}")),
            "IBAN_CODE",
        ),
        ("Pay to {v} please.", _iban("NL", f"ABNA{n(10**9, 10**10 - 1)}"), "IBAN_CODE"),
        (
            "The card {v} was charged.",
            _luhn_complete(rng.choice(["4", "51", "37"]), rng, 16),
            "CREDIT_CARD",
        ),
        ("The SSN provided was {v}.", f"{n(100, 665)}-{n(10, 99)}-{n(1000, 9999)}", "US_SSN"),
        (
            "The login came from {v}.",
            f"{n(11, 223)}.{n(0, 255)}.{n(0, 255)}.{n(1, 254)}",
            "IP_ADDRESS",
        ),
        ("身份证号为{v}。", _cn_id(rng), "CN_RESIDENT_ID"),
        ("Haar BSN is {v}.", _bsn(rng), "NL_BSN"),
    ]
    return rng.choice(choices)


@dataclass
class Answer:
    text: str
    gold: list[tuple[int, int, str]]


def make_answers(count: int, pii_share: float, seed: int) -> list[Answer]:
    rng = random.Random(seed)
    out: list[Answer] = []
    for i in range(count):
        paragraphs = rng.sample(CLEAN_PARAGRAPHS, 4)
        text = ""
        gold: list[tuple[int, int, str]] = []
        with_pii = i < int(count * pii_share)
        for j, para in enumerate(paragraphs):
            text += para + ("\n\n" if j < 3 else "")
            if with_pii and j < rng.randint(1, 3):
                template, value, label = make_pii(rng)
                before, after = template.split("{v}")
                text += " " + before
                gold.append((len(text), len(text) + len(value), label))
                text += value + after + " "
        out.append(Answer(text[:1400], [g for g in gold if g[1] <= 1400]))
    rng.shuffle(out)
    return out


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def recall(
    found: list[list[tuple[int, int, str]]], answers: list[Answer]
) -> tuple[Counter[str], Counter[str]]:
    hit: Counter[str] = Counter()
    total: Counter[str] = Counter()
    for spans, answer in zip(found, answers, strict=True):
        for start, end, label in answer.gold:
            total[label] += 1
            if any(s < end and start < e and lab == label for s, e, lab in spans):
                hit[label] += 1
    return hit, total


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--answers", type=int, default=300)
    ap.add_argument("--pii-share", type=float, default=0.2)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeat", type=int, default=3, help="runs per answer; the best counts")
    args = ap.parse_args()

    import tldextract.tldextract

    from aiguard.screens.pii import PIIScreen
    from aiguard.screens.pii.engine import default_presidio_analyzer
    from aiguard.screens.pii.recognizers import offline_tldextract

    # presidio's EmailRecognizer calls tldextract.extract(): make that offline for the baseline
    tldextract.tldextract.TLD_EXTRACTOR = offline_tldextract()

    answers = make_answers(args.answers, args.pii_share, args.seed)
    sizes = [len(a.text.encode()) for a in answers]
    print(
        f"{len(answers)} answers, {statistics.mean(sizes):.0f} B mean, "
        f"{sum(1 for a in answers if a.gold)} with PII ({sum(len(a.gold) for a in answers)} spans)"
    )

    screen = PIIScreen(languages=["en"], ner_models={})
    anyio.run(screen.load)
    presidio = default_presidio_analyzer(["en"])
    for a in answers[:5]:  # warm both (lazy regex compilation)
        screen.find(a.text)
        presidio.analyze(a.text, language="en")

    def timed(fn: object, text: str) -> tuple[float, list[tuple[int, int, str]]]:
        best = float("inf")
        spans: list[tuple[int, int, str]] = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            spans = fn(text)  # type: ignore[operator]
            best = min(best, (time.perf_counter() - t) * 1e6)
        return best, spans

    def ours(text: str) -> list[tuple[int, int, str]]:
        return [(s.start, s.end, s.label) for s in screen.find(text)]

    def theirs(text: str) -> list[tuple[int, int, str]]:
        return [(r.start, r.end, r.entity_type) for r in presidio.analyze(text, language="en")]

    # interleaved, best of --repeat per answer: both engines see the same machine load
    ours_t, ours_f, pres_t, pres_f = [], [], [], []
    for a in answers:
        t, f = timed(ours, a.text)
        ours_t.append(t)
        ours_f.append(f)
        t, f = timed(theirs, a.text)
        pres_t.append(t)
        pres_f.append(f)

    def row(name: str, times: list[float], which: list[bool]) -> str:
        sel = [t for t, w in zip(times, which, strict=True) if w]
        return (
            f"  {name:<9} p50 {percentile(sel, 50):9.1f} us   p99 {percentile(sel, 99):9.1f} us"
            f"   mean {statistics.mean(sel):9.1f} us"
        )

    for title, which in (
        ("all answers", [True] * len(answers)),
        ("clean answers", [not a.gold for a in answers]),
        ("answers with PII", [bool(a.gold) for a in answers]),
    ):
        if not any(which):
            continue
        print(title)
        print(row("aiguard", ours_t, which))
        print(row("presidio", pres_t, which))
        o = sum(t for t, w in zip(ours_t, which, strict=True) if w)
        p = sum(t for t, w in zip(pres_t, which, strict=True) if w)
        print(f"  speed-up (total time): {p / o:.1f}x")

    async def through_screen() -> list[float]:
        from aiguard.screens.base import ScreenContext

        ctx = ScreenContext(locale="en")
        times = []
        for a in answers:
            t = time.perf_counter()
            await screen.screen(a.text, ctx)
            times.append((time.perf_counter() - t) * 1e6)
        return times

    async_t = anyio.run(through_screen)
    clean_async = [t for t, a in zip(async_t, answers, strict=True) if not a.gold]
    pii_async = [t for t, a in zip(async_t, answers, strict=True) if a.gold]
    print(
        f"await screen() incl. thread hop: clean p50 {percentile(clean_async, 50):.1f} us, "
        f"with PII p50 {percentile(pii_async, 50):.1f} us"
    )

    oh, total = recall(ours_f, answers)
    ph, _ = recall(pres_f, answers)
    print("recall on inserted spans      aiguard   presidio   (n)")
    for label in sorted(total):
        print(
            f"  {label:<16} {oh[label] / total[label]:>16.3f} "
            f"{ph[label] / total[label]:>10.3f}   ({total[label]})"
        )
    print(
        f"  {'ALL':<16} {sum(oh.values()) / sum(total.values()):>16.3f} "
        f"{sum(ph.values()) / sum(total.values()):>10.3f}   ({sum(total.values())})"
    )
    clean_flags = sum(1 for f, a in zip(ours_f, answers, strict=True) if f and not a.gold)
    clean_flags_p = sum(1 for f, a in zip(pres_f, answers, strict=True) if f and not a.gold)
    n_clean = sum(1 for a in answers if not a.gold)
    print(
        f"clean answers with any finding: aiguard {clean_flags}/{n_clean}, "
        f"presidio {clean_flags_p}/{n_clean}"
    )


if __name__ == "__main__":
    main()
