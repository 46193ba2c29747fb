"""An offline presidio AnalyzerEngine: blank spaCy pipelines, optional local NER, no downloads.

presidio's defaults load (and download) spaCy's en_core_web_lg, and tldextract fetches the
public-suffix list. Here nothing is fetched: each language gets ``spacy.blank(lang)`` (rules
only: tokenizer, plus a lower-casing "lemmatizer" so presidio's context words still match),
unless an installed NER pipeline is configured for it (``en_core_web_sm``, or a ``Language``
object), in which case PERSON and LOCATION come from that model. Everything here is
synchronous and slow (hundreds of ms); callers run it once, in a worker thread.
"""

from __future__ import annotations

import importlib.util
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import phonenumbers.re_util
import spacy
from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
from presidio_analyzer.nlp_engine import NerModelConfiguration, NlpArtifacts, SpacyNlpEngine
from presidio_analyzer.predefined_recognizers import SpacyRecognizer
from spacy.language import Language
from spacy.tokens import Doc
from spacy.vocab import Vocab

from aiguard.errors import ConfigError
from aiguard.screens.pii.recognizers import NER_ENTITIES, build_recognizers, offline_tldextract

log = logging.getLogger(__name__)

DEFAULT_NER_MODELS: Mapping[str, str] = {"en": "en_core_web_sm"}

# spaCy model labels -> presidio entities; everything else the model emits is dropped.
_NER_MAPPING = {"PERSON": "PERSON", "PER": "PERSON", "GPE": "LOCATION", "LOC": "LOCATION"}


class RunTokenizer:
    """A rules-only tokenizer for the blank pipelines: one token per run of Han characters,
    per run of other word characters, per run of whitespace (a single space after a token is
    its trailing space), and per other character.

    Pattern recognizers need no tokens at all; presidio's context enhancer needs words and
    their offsets. spaCy's blank tokenizer (prefix/suffix/infix rules, URL matching) costs
    most of a windowed analysis, and its blank "zh" makes one token per character, which no
    multi-character context word ("手机", "身份证") can match.
    """

    _RUN = re.compile(
        r"[\u3400-\u9fff\uf900-\ufaff]+|[^\W\u3400-\u9fff\uf900-\ufaff]+|\s+|.", re.DOTALL
    )

    def __init__(self, vocab: Vocab) -> None:
        self.vocab = vocab

    def __call__(self, text: str) -> Doc:
        words: list[str] = []
        spaces: list[bool] = []
        for part in self._RUN.findall(text):
            if part == " " and words and not spaces[-1] and not words[-1].isspace():
                spaces[-1] = True
            else:
                words.append(part)
                spaces.append(False)
        return Doc(self.vocab, words=words, spaces=spaces)


def blank_pipeline(language: str) -> Language:
    nlp = spacy.blank(language)
    nlp.tokenizer = RunTokenizer(nlp.vocab)
    return nlp


def _model_installed(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def load_pipeline(language: str, model: str | Language | None) -> tuple[Language, bool]:
    """The pipeline for one language and whether it does NER; never downloads anything."""
    if isinstance(model, Language):
        return model, model.has_pipe("ner") or model.has_pipe("entity_ruler")
    if model and _model_installed(model):
        # spaCy's trained pipelines give "ner" its own tok2vec, so the rest can stay out
        nlp = spacy.load(
            model, exclude=["parser", "tagger", "attribute_ruler", "lemmatizer", "senter"]
        )
        return nlp, nlp.has_pipe("ner")
    if model:
        log.info(
            "spaCy model %s is not installed: no NER (PERSON, LOCATION) for %s", model, language
        )
    return blank_pipeline(language), False


class LoadedSpacyNlpEngine(SpacyNlpEngine):
    """presidio's SpacyNlpEngine over pipelines we built; its ``load()`` (which downloads) is
    never needed because ``is_loaded()`` is already true."""

    def __init__(self, pipelines: Mapping[str, Language]) -> None:
        super().__init__(
            models=[{"lang_code": lang, "model_name": "aiguard-offline"} for lang in pipelines],
            ner_model_configuration=NerModelConfiguration(
                model_to_presidio_entity_mapping=dict(_NER_MAPPING),
                labels_to_ignore=[],
            ),
        )
        self.nlp = dict(pipelines)  # type: ignore[assignment]  # presidio annotates it None

    def load(self) -> None:  # pragma: no cover - guarded: presidio only calls it when unloaded
        raise ConfigError("the offline NLP engine is built loaded; it never downloads models")

    def _doc_to_nlp_artifact(self, doc: Doc, language: str) -> NlpArtifacts:
        # presidio's context enhancer compares context words with lemmas; blank pipelines
        # (and models loaded without their lemmatizer) have none, so the lower-cased form
        # stands in: enough for "email", "iban", "bsn", "telefon" ...
        entities, scores = self._get_updated_entities(  # maps GPE -> LOCATION etc.
            self._get_entities(doc), self._get_scores_for_entities(doc)
        )
        return NlpArtifacts(
            entities=entities,
            tokens=doc,
            tokens_indices=[token.idx for token in doc],
            lemmas=[token.lemma_ or token.lower_ for token in doc],
            nlp_engine=self,
            language=language,
            scores=scores,
        )

    def _get_entities(self, doc: Doc) -> list[Any]:
        # Keep only labels we map: a full model also emits DATE, ORG, CARDINAL ...
        return [ent for ent in doc.ents if ent.label_ in _NER_MAPPING]

    def _get_scores_for_entities(self, doc: Doc) -> list[float]:
        score = self.ner_model_configuration.default_score or 0.85
        return [score] * len(self._get_entities(doc))


@dataclass(frozen=True, slots=True)
class OfflineAnalyzer:
    analyzer: AnalyzerEngine
    ner_languages: frozenset[str]  # languages whose pipeline does NER


def build_nlp_engine(
    languages: Iterable[str], ner_models: Mapping[str, str | Language] | None = None
) -> tuple[LoadedSpacyNlpEngine, frozenset[str]]:
    models = DEFAULT_NER_MODELS if ner_models is None else ner_models
    pipelines: dict[str, Language] = {}
    ner: set[str] = set()
    for lang in languages:
        nlp, has_ner = load_pipeline(lang, models.get(lang))
        pipelines[lang] = nlp
        if has_ner:
            ner.add(lang)
    return LoadedSpacyNlpEngine(pipelines), frozenset(ner)


def build_analyzer(
    entities: frozenset[str],
    languages: Iterable[str],
    ner_models: Mapping[str, str | Language] | None = None,
) -> OfflineAnalyzer:
    """An AnalyzerEngine with only the recognizers for ``entities``, warmed up."""
    langs = list(dict.fromkeys(languages))
    nlp_engine, ner_languages = build_nlp_engine(langs, ner_models)
    recognizers = []
    for lang in langs:
        recognizers.extend(build_recognizers(entities, lang))
        wanted = sorted(entities & NER_ENTITIES)
        if lang in ner_languages and wanted:
            recognizers.append(SpacyRecognizer(supported_language=lang, supported_entities=wanted))
    registry = RecognizerRegistry(recognizers=recognizers, supported_languages=langs)
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=langs)
    # libphonenumber compiles its metadata regexes through re's 512-entry cache, which its
    # ~8 regions' patterns overflow: recompiling cost ~1 ms per answer. Its own opt-in cache
    # keeps them (bounded by the metadata: a few thousand patterns).
    phonenumbers.re_util.enable_pattern_cache()
    offline_tldextract()("warm.example.com")  # parse the bundled suffix list now, not mid-request
    for lang in langs:  # compile every pattern once (presidio compiles lazily on first use)
        analyzer.analyze("warm-up a@b.com +1 212 555 0100 DE89 3704", language=lang)
    return OfflineAnalyzer(analyzer, ner_languages)


def default_presidio_analyzer(languages: Iterable[str] = ("en",)) -> AnalyzerEngine:
    """presidio's default-configured engine (all predefined recognizers) on blank pipelines:
    the baseline the benchmarks compare against. Callers must make tldextract offline first."""
    langs = list(languages)
    nlp_engine, _ = build_nlp_engine(langs, {})
    return AnalyzerEngine(nlp_engine=nlp_engine, supported_languages=langs)
