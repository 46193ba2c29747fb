"""Loaders for the development datasets used to train and measure the local harm model.

The data stays in ``../shared/datasets`` (never copied into the repository). Every example gets a
deterministic train/test assignment from a hash of a *group key*, so near-duplicates (HateCheck
cases of one template, one identity-template phrase) never straddle the split.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

DATASETS = Path(
    os.environ.get("AIGUARD_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets")
)
TEST_PERCENT = 25


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    lang: str
    source: str  # dataset name
    group: str  # finer slice for reports (functionality, template, topic, fine label)
    labels: dict[str, float] = field(default_factory=dict)  # category -> target in [0, 1]
    test: bool = False


def _held_out(key: str, percent: int = TEST_PERCENT) -> bool:
    return zlib.crc32(key.encode("utf-8")) % 100 < percent


def hatecheck() -> Iterator[Example]:
    with (DATASETS / "hatecheck_en" / "test_suite_cases.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            func = row["functionality"]
            hateful = row["label_gold"] == "hateful"
            labels = {
                "hate": float(hateful),
                # "I can't stand you" (target_indiv_nh) is borderline; labelled harmless because
                # as a positive it taught the model that "I can't ... you" is abuse
                "harassment": float(hateful),
            }
            # hold out whole templates: the test cases are unseen sentence shapes
            yield Example(
                row["test_case"].strip(),
                "en",
                "hatecheck_en",
                func,
                labels,
                _held_out("hc:" + row["case_templ"]),
            )


def cold() -> Iterator[Example]:
    for name, test in (("train.csv", False), ("dev.csv", True)):
        with (DATASETS / "cold_zh" / name).open(encoding="utf-8-sig") as f:
            for row in csv.DictReader(f):
                y = float(row["label"] == "1")
                yield Example(
                    row["TEXT"], "zh", "cold_zh", row["topic"], {"hate": y, "harassment": y}, test
                )


_MENTION = re.compile(r"@\w+|\|LBR\|")


def germeval() -> Iterator[Example]:
    path = DATASETS / "germeval2018_de" / "germeval2018.training.txt"
    with path.open(encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                continue
            text, fine = _MENTION.sub(" ", parts[0]).strip(), parts[2]
            # ABUSE is group-directed degradation (hate); INSULT targets a person (harassment);
            # bare PROFANITY is not harmful in the OpenAI taxonomy.
            labels = {
                "hate": float(fine == "ABUSE"),
                "harassment": float(fine in {"ABUSE", "INSULT"}),
            }
            yield Example(text, "de", "germeval2018_de", fine, labels, _held_out("ge:" + text))


_IDENTITY_LANG = {"en": "en", "de": "de", "nl": "nl", "zh-cn": "zh"}


def identity_templates(per_group: int = 400) -> Iterator[Example]:
    """A capped, deterministic sample per (template, toxicity): the files are 180k rows."""
    for prefix, lang in _IDENTITY_LANG.items():
        path = DATASETS / "identity_templates" / f"{prefix}_sentence_templates.csv"
        groups: dict[tuple[str, str], list[str]] = {}
        with path.open(encoding="utf-8") as f:
            for row in csv.DictReader(f):
                groups.setdefault((row["template"], row["toxicity"]), []).append(row["phrase"])
        rng = random.Random(f"identity:{lang}")
        for (template, tox), phrases in sorted(groups.items()):
            chosen = rng.sample(phrases, min(per_group, len(phrases)))
            for phrase in chosen:
                toxic = tox == "toxic"
                labels = {
                    "hate": float(toxic and template != "you_occupation"),
                    "harassment": float(toxic),
                }
                yield Example(
                    phrase,
                    lang,
                    "identity_templates",
                    f"{template}:{tox}",
                    labels,
                    _held_out(f"it:{lang}:{phrase}"),
                )


def identity_unseen(per_lang: int = 3000) -> Iterator[Example]:
    """Identity-template rows the training sample never drew (same templates, new fillers)."""
    used = {(ex.lang, ex.text) for ex in identity_templates()}
    for prefix, lang in _IDENTITY_LANG.items():
        path = DATASETS / "identity_templates" / f"{prefix}_sentence_templates.csv"
        with path.open(encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if (lang, r["phrase"]) not in used]
        rng = random.Random(f"unseen:{lang}")
        for row in rng.sample(rows, min(per_lang, len(rows))):
            toxic = row["toxicity"] == "toxic"
            yield Example(
                row["phrase"],
                lang,
                "identity_templates (unseen rows)",
                f"{row['template']}:{row['toxicity']}",
                {"hate": float(toxic), "harassment": float(toxic)},
                True,
            )


def toxigen() -> Iterator[Example]:
    path = DATASETS / "toxigen_seeds_en" / "toxigen_unique_sentences.csv"
    with path.open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            y = float(row["label"] == "hate")
            yield Example(
                row["text"],
                "en",
                "toxigen_seeds_en",
                row["target_group"],
                {"hate": y, "harassment": y},
                _held_out("tx:" + row["text"]),
            )


_SENT = re.compile(r"(?<=[.!?])\s+")


def benign_en(cap: int = 3000) -> Iterator[Example]:
    """Ordinary prose (synthetic PII sentences, public-domain books and poems) as negatives.

    None of the labelled sets looks like a chatbot answer; without these the model learns that
    any long, neutral English text is unusual.
    """
    out: list[tuple[str, str]] = []
    with (DATASETS / "pii_synth_en" / "synth_dataset_v2.json").open(encoding="utf-8") as f:
        out += [("pii_synth", r["full_text"]) for r in json.load(f)]
    for sub in ("bsnc", "bep"):
        for path in sorted((DATASETS / "public_domain_texts" / sub).glob("*.txt")):
            text = " ".join(path.read_text(encoding="utf-8", errors="replace").split())
            out += [(sub, s) for s in _SENT.split(text)[:40] if 20 <= len(s) <= 400]
    rng = random.Random("benign")
    rng.shuffle(out)
    for group, text in out[:cap]:
        yield Example(
            text,
            "en",
            "benign_en",
            group,
            {"hate": 0.0, "harassment": 0.0},
            _held_out("bn:" + text),
        )


SEED = Path(__file__).resolve().parent / "harm_seed.toml"


def authored_negatives() -> Iterator[Example]:
    """Our own harmless sentences (bench/harm_seed.toml), identity templates filled in."""
    import tomllib

    data = tomllib.loads(SEED.read_text(encoding="utf-8"))
    for lang, block in data.items():
        texts = [t.format(x=x) for t in block["templates"] for x in block["identities"]]
        # filled templates and plain answers are separate sources with their own weight: the
        # few refusals would otherwise drown among hundreds of filled templates
        sourced = [("authored_benign", t[0].upper() + t[1:]) for t in texts]
        sourced += [("authored_answers", t) for t in block["sentences"]]
        for source, text in sourced:
            yield Example(
                text,
                lang,
                source,
                lang,
                {"hate": 0.0, "harassment": 0.0},
                _held_out("ab:" + text),
            )


def harmful_requests() -> Iterator[Example]:
    """Harmful *requests* (not answers): used only to measure rule coverage, never to train."""
    base = DATASETS / "harmful_requests_en"
    with (base / "harmbench_behaviors_text_all.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            yield Example(row["Behavior"], "en", "harmbench", row["SemanticCategory"], {}, True)
    with (base / "strongreject_dataset.csv").open(encoding="utf-8") as f:
        for row in csv.DictReader(f):
            yield Example(row["forbidden_prompt"], "en", "strongreject", row["category"], {}, True)


TRAINING_SOURCES = (
    hatecheck,
    cold,
    germeval,
    identity_templates,
    toxigen,
    benign_en,
    authored_negatives,
)


def load_all() -> list[Example]:
    return [ex for source in TRAINING_SOURCES for ex in source()]


def available() -> bool:
    return (DATASETS / "hatecheck_en").is_dir()
