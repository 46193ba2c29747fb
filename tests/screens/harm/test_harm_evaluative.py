"""The evaluative gate on the model's normalised text (identity terms folded to "qqid")."""

from __future__ import annotations

import pytest

from aiguard.errors import ConfigError
from aiguard.screens.harm._evaluative import EvaluativeGate
from aiguard.screens.harm._lexicon import Lexicon

GATE = Lexicon.load().evaluative

LOWERED = [
    "qqid celebrate eid at the end of ramadan.",
    "we do not cover many qqid authors.",  # adjective before any noun names a group
    "i will never tolerate the murder of qqid.",  # denied negative term
    "qqid lives are not worth any less than anyone else's.",  # double negation praises
    "i have nothing against qqid.",
    "qqid feiern das zuckerfest.",
]
KEPT = [
    "qqid are vermin.",
    "qqid are not ¬human.",  # a denied positive term
    "i don't ¬have ¬anything ¬against ¬qqid but they are disgusting.",  # "but" ends the denial
    "i feel nothing ¬but ¬contempt ¬for ¬qqid.",  # intensifying negation
    "i don't ¬want ¬those ¬fucking ¬qqid here.",  # profanity stays hostile when negated
    "qqid are so disugsting.",  # neighbouring letters swapped
    "ihate qqid.",  # swallowed space
    "h a t e qqid.",  # spelled out
    "diese volksverräter und qqid.",  # German compound
    "qqid都是垃圾",
    "the weather is nice.",  # no group named: the gate does not apply
]


@pytest.mark.parametrize("segment", LOWERED)
def test_group_named_without_negative_evaluation_is_lowered(segment: str) -> None:
    assert GATE.factor(segment) < 1.0


@pytest.mark.parametrize("segment", KEPT)
def test_explicit_negative_evaluation_keeps_the_score(segment: str) -> None:
    assert GATE.factor(segment) == 1.0


def test_chinese_is_lowered_less_than_latin_script() -> None:
    assert GATE.factor("很多qqid在医院工作。") > GATE.factor("many qqid work in hospitals.")


def test_without_an_evaluative_section_nothing_is_lowered() -> None:
    assert EvaluativeGate(None).factor("qqid celebrate eid.") == 1.0


def test_factors_outside_the_unit_interval_are_rejected() -> None:
    with pytest.raises(ConfigError):
        EvaluativeGate({"factor": {"latin": 1.5}, "negative": {"en": "vermin"}})
