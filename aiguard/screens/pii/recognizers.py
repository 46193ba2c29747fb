"""presidio recognizers: ours (CN, NL, DE identifiers, IBAN) and presidio's, built per language.

Scores follow one rule: a check digit that passes one random string in ~10 is not proof, so
such identifiers keep a moderate pattern score that the surrounding context words (presidio's
lemma context enhancer, +0.35) must confirm; strong checks (IBAN mod 97 plus length, the
Chinese resident ID's MOD 11-2 plus birth date, Luhn) score 1.0. An identifier scores higher in
the language of the country that issues it, where a bare number is far more likely to be one.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from typing import Any

import phonenumbers
import tldextract
from presidio_analyzer import (
    AnalysisExplanation,
    EntityRecognizer,
    LocalRecognizer,
    Pattern,
    PatternRecognizer,
    RecognizerResult,
)
from presidio_analyzer.nlp_engine import NlpArtifacts
from presidio_analyzer.predefined_recognizers import (
    CreditCardRecognizer,
    EmailRecognizer,
    IpRecognizer,
    PhoneRecognizer,
    UrlRecognizer,
    UsSsnRecognizer,
)

from aiguard.screens.pii import checksums
from aiguard.screens.pii.entities import LANGUAGES, NER_ENTITIES, PATTERN_ENTITIES

# Context words per entity and language. Detection vocabulary, not user-facing text: a match
# within five tokens before an entity raises its score. Lower case; matched against lemmas.
CONTEXT: dict[str, dict[str, list[str]]] = {
    "EMAIL_ADDRESS": {
        "en": ["email", "e-mail", "mail"],
        "zh": ["邮箱", "电子邮件", "邮件"],
        "nl": ["e-mail", "email", "mail", "e-mailadres"],
        "de": ["e-mail", "email", "mail", "e-mail-adresse"],
        "fr": ["courriel", "e-mail", "email", "mail"],
        "es": ["correo", "email", "e-mail"],
    },
    "PHONE_NUMBER": {
        "en": ["phone", "number", "telephone", "tel", "cell", "mobile", "call", "fax"],
        "zh": ["电话", "手机", "手机号", "联系", "号码"],
        "nl": ["telefoon", "telefoonnummer", "mobiel", "bel", "nummer", "tel"],
        "de": ["telefon", "telefonnummer", "handy", "mobil", "anrufen", "tel", "nummer"],
        "fr": ["téléphone", "portable", "mobile", "appeler", "numéro", "tél"],
        "es": ["teléfono", "móvil", "celular", "llamar", "número", "tel"],
    },
    "CREDIT_CARD": {
        "en": ["credit", "card", "visa", "mastercard", "cc", "amex", "discover", "jcb"],
        "zh": ["信用卡", "银行卡", "卡号"],
        "nl": ["creditcard", "kaart", "kaartnummer", "visa", "mastercard"],
        "de": ["kreditkarte", "karte", "kartennummer", "visa", "mastercard"],
        "fr": ["carte", "crédit", "visa", "mastercard"],
        "es": ["tarjeta", "crédito", "visa", "mastercard"],
    },
    "IBAN_CODE": {
        "en": ["iban", "bank", "account", "transfer"],
        "zh": ["iban", "银行", "账户", "账号"],
        "nl": ["iban", "bank", "rekening", "rekeningnummer"],
        "de": ["iban", "bank", "konto", "kontonummer", "überweisung"],
        "fr": ["iban", "banque", "compte", "virement"],
        "es": ["iban", "banco", "cuenta", "transferencia"],
    },
    "IP_ADDRESS": {lang: ["ip", "ipv4", "ipv6", "address"] for lang in LANGUAGES},
    "URL": {lang: ["url", "website", "link", "site"] for lang in LANGUAGES},
    "US_SSN": {
        lang: ["social", "security", "ssn", "ssns", "ssn#", "ss#", "ssid"] for lang in LANGUAGES
    },
    "CN_RESIDENT_ID": {
        lang: ["身份证", "身份证号", "证件号", "id", "identity", "resident"] for lang in LANGUAGES
    },
    "NL_BSN": {
        lang: ["bsn", "burgerservicenummer", "sofinummer", "sofi", "citizen", "service"]
        for lang in LANGUAGES
    },
    "DE_TAX_ID": {
        lang: [
            "steuer",
            "steuerid",
            "steueridentifikationsnummer",
            "identifikationsnummer",
            "idnr",
            "tin",
            "tax",
        ]
        for lang in LANGUAGES
    },
    "DE_ID_CARD": {
        lang: [
            "personalausweis",
            "personalausweisnummer",
            "ausweis",
            "ausweisnummer",
            "dokumentennummer",
            "seriennummer",
            "identity",
            "card",
            "id",
        ]
        for lang in LANGUAGES
    },
}


def context_for(entity: str, language: str) -> list[str]:
    words = CONTEXT.get(entity, {})
    return list(words.get(language) or words.get("en") or [])


# -- tldextract, offline ------------------------------------------------------------------


@functools.cache
def offline_tldextract() -> tldextract.TLDExtract:
    """A TLDExtract that never fetches: no suffix-list URLs, no disk cache, bundled snapshot.

    tldextract's module-level extractor (used by ``tldextract.extract`` and thus by presidio's
    EmailRecognizer) downloads the public-suffix list on first use; this one cannot.
    """
    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


class OfflineEmailRecognizer(EmailRecognizer):
    """presidio's EmailRecognizer, validating the domain against the bundled suffix list."""

    def validate_result(self, pattern_text: str) -> bool:
        return bool(offline_tldextract()(pattern_text).fqdn != "")


class ScoredPhoneRecognizer(PhoneRecognizer):
    """presidio's PhoneRecognizer (libphonenumber: numbers valid for a region), made cheaper.

    - Score 0.5, not 0.4: a number libphonenumber validates is evidence enough to act on at
      the pipeline's default ``min_score`` of 0.5.
    - libphonenumber runs only on digit clusters of phone length (7 to 17 digits) with two
      characters of context each side (its matcher looks at the neighbours to reject e.g.
      "abc2125550187"), not on all the text: the matcher costs ~1 ms per region per 150
      chars of prose, most of it spent on numbers that are not phones. Card and ID numbers
      longer than E.164's 15 digits are not tried.
    - Once a region validates a cluster the other regions are skipped: they would report the
      same digits (presidio keeps one of the duplicates anyway). Regions are tried in order
      of how likely our users' numbers are; a cluster no region validates costs them all.
    """

    SCORE = 0.5
    _CLUSTER = re.compile(r"(?:\+|00)?\(?[0-9](?:[ \-.()/]{0,2}[0-9]){6,}")

    def analyze(
        self, text: str, entities: list[str], nlp_artifacts: NlpArtifacts | None = None
    ) -> list[RecognizerResult]:
        results: list[RecognizerResult] = []
        for cluster in self._CLUSTER.finditer(text):
            digits = sum(ch.isdigit() for ch in cluster.group())
            if not 7 <= digits <= 15:  # E.164 has at most 15 digits
                continue
            lo = max(0, cluster.start() - 2)
            chunk = text[lo : cluster.end() + 2]
            leniency = 1 if self.leniency is None else self.leniency
            before = len(results)
            for region in self.supported_regions:
                if len(results) > before:
                    break  # found: another region would only report the same digits again
                for match in phonenumbers.PhoneNumberMatcher(chunk, region, leniency=leniency):
                    found = phonenumbers.region_code_for_number(match.number) or region
                    results.append(
                        RecognizerResult(
                            entity_type="PHONE_NUMBER",
                            start=lo + match.start,
                            end=lo + match.end,
                            score=self.SCORE,
                            analysis_explanation=AnalysisExplanation(
                                recognizer="PhoneRecognizer",
                                original_score=self.SCORE,
                                textual_explanation=f"valid {found} number (libphonenumber)",
                            ),
                            recognition_metadata={
                                RecognizerResult.RECOGNIZER_NAME_KEY: "PhoneRecognizer",
                                RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                            },
                        )
                    )
        return EntityRecognizer.remove_duplicates(results)


# -- our pattern recognizers --------------------------------------------------------------


def _score(home: str, language: str, at_home: float, abroad: float) -> float:
    return at_home if language == home else abroad


class WideCardRecognizer(PatternRecognizer):
    """Card numbers presidio's pattern misses: 12-19 digits from any major issuer range
    (Maestro's 12, JCB's 2131/1800, Mastercard's 2221-2720, Visa's 19). Luhn passes one
    random number in ten, so a valid one keeps 0.4 and needs a context word ("card") to
    be reported; presidio's own pattern, where it matches, still scores 1.0."""

    def __init__(self, supported_language: str = "en") -> None:
        super().__init__(
            supported_entity="CREDIT_CARD",
            name="WideCardRecognizer",
            supported_language=supported_language,
            context=context_for("CREDIT_CARD", supported_language),
            patterns=[
                Pattern(
                    "Card number, any issuer (context needed)",
                    r"(?<![\d-])[1-6]\d{3}(?:[- ]?\d{2,5}){2,4}(?![\d-])",
                    0.4,
                )
            ],
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        digits = checksums.compact(pattern_text)
        return None if 12 <= len(digits) <= 19 and checksums.luhn_valid(digits) else False


class CnMobileRecognizer(PatternRecognizer):
    """Mainland China mobile numbers: 1[3-9]x xxxx xxxx, optional +86 / 0086, separators."""

    def __init__(self, supported_language: str = "en") -> None:
        bare = _score("zh", supported_language, 0.6, 0.5)
        super().__init__(
            supported_entity="PHONE_NUMBER",
            name="CnMobileRecognizer",
            supported_language=supported_language,
            context=context_for("PHONE_NUMBER", supported_language),
            patterns=[
                Pattern(
                    "CN mobile, +86",
                    r"(?<![\w+])(?:\+86|0086)[ -]?1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)",
                    0.75,
                ),
                Pattern("CN mobile", r"(?<![\d+])1[3-9]\d(?:[ -]?\d{4}){2}(?!\d)", bare),
            ],
        )

    def invalidate_result(self, pattern_text: str) -> bool:
        digits = checksums.compact(pattern_text, " -+")[-11:]
        return len(set(digits[3:])) == 1  # 138 0000 0000 style placeholders


class CnResidentIdRecognizer(PatternRecognizer):
    """China's 18-digit resident identity number (GB 11643-1999, MOD 11-2, birth date)."""

    def __init__(self, supported_language: str = "en") -> None:
        super().__init__(
            supported_entity="CN_RESIDENT_ID",
            name="CnResidentIdRecognizer",
            supported_language=supported_language,
            context=context_for("CN_RESIDENT_ID", supported_language),
            patterns=[
                Pattern(
                    "CN resident ID",
                    r"(?<!\d)[1-8]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])"
                    r"(?:0[1-9]|[12]\d|3[01])\d{3}[\dX](?![\dA-Za-z])",
                    0.5,
                )
            ],
        )

    def validate_result(self, pattern_text: str) -> bool:
        return checksums.cn_resident_id_valid(pattern_text)


class NlBsnRecognizer(PatternRecognizer):
    """Dutch burgerservicenummer: 9 digits (also 4.2.3 / 3.3.3 grouped), 11-proof."""

    def __init__(self, supported_language: str = "en") -> None:
        super().__init__(
            supported_entity="NL_BSN",
            name="NlBsnRecognizer",
            supported_language=supported_language,
            context=context_for("NL_BSN", supported_language),
            patterns=[
                Pattern(
                    "BSN",
                    r"(?<![\d.-])(?:\d{9}|\d{4}\.\d{2}\.\d{3}|\d{3}[ .]\d{3}[ .]\d{3})"
                    r"(?![\d-]|\.\d)",
                    _score("nl", supported_language, 0.5, 0.3),
                )
            ],
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        # None keeps the pattern score: 1 random number in 11 passes the 11-proof.
        return None if checksums.nl_bsn_valid(pattern_text) else False


class DeSteuerIdRecognizer(PatternRecognizer):
    """German Steuer-IdNr: 11 digits (often "86 095 742 719"), repetition rule, check digit."""

    def __init__(self, supported_language: str = "en") -> None:
        super().__init__(
            supported_entity="DE_TAX_ID",
            name="DeSteuerIdRecognizer",
            supported_language=supported_language,
            context=context_for("DE_TAX_ID", supported_language),
            patterns=[
                Pattern(
                    "Steuer-IdNr",
                    r"(?<![\d.-])[1-9]\d ?\d{3} ?\d{3} ?\d{3}(?![\d-]|\.\d)",
                    _score("de", supported_language, 0.5, 0.35),
                )
            ],
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        return None if checksums.de_tax_id_valid(pattern_text) else False


class DePersonalausweisRecognizer(PatternRecognizer):
    """German Personalausweis number: 9 chars + MRZ check digit; the bare 9 need context."""

    def __init__(self, supported_language: str = "en") -> None:
        charset = "[CFGHJKLMNPRTVWXYZ0-9]"
        super().__init__(
            supported_entity="DE_ID_CARD",
            name="DePersonalausweisRecognizer",
            supported_language=supported_language,
            context=context_for("DE_ID_CARD", supported_language),
            patterns=[
                Pattern(
                    "Personalausweis + check digit",
                    rf"(?<![A-Za-z0-9])[CFGHJKLMNPRTVWXYZ]{charset}{{8}}\d(?![A-Za-z0-9])",
                    _score("de", supported_language, 0.6, 0.45),
                ),
                Pattern(
                    "Personalausweis, no check digit (context needed)",
                    rf"(?<![A-Za-z0-9])[CFGHJKLMNPRTVWXYZ]{charset}{{8}}(?![A-Za-z0-9])",
                    0.2,
                ),
            ],
        )

    def validate_result(self, pattern_text: str) -> bool | None:
        if pattern_text != pattern_text.upper():  # flags are case-insensitive; IDs are not
            return False
        if len(pattern_text) == 10:
            return None if checksums.de_id_card_valid(pattern_text) else False
        return None if checksums.de_id_card_shape(pattern_text) else False


class IbanAllCountriesRecognizer(LocalRecognizer):
    """IBANs of every registry country: per-country length, BBAN shape and mod 97.

    A candidate is the country code and check digits followed by a run of alphanumerics and
    single spaces or hyphens; it is cut at exactly the country's length, and that cut must fall
    on a token boundary, so "DE89 3704 0044 0532 0130 00 BIC ..." yields the IBAN alone.
    """

    _CANDIDATE = re.compile(
        r"(?<![A-Za-z0-9])([A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]){11,40})", re.ASCII
    )

    def __init__(self, supported_language: str = "en") -> None:
        super().__init__(
            supported_entities=["IBAN_CODE"],
            name="IbanAllCountriesRecognizer",
            supported_language=supported_language,
            context=context_for("IBAN_CODE", supported_language),
        )

    def load(self) -> None:
        return None

    def analyze(
        self, text: str, entities: Sequence[str], nlp_artifacts: Any = None
    ) -> list[RecognizerResult]:
        results: list[RecognizerResult] = []
        for match in self._CANDIDATE.finditer(text):
            end = self._cut(text, match.start(), match.end())
            if end is None:
                continue
            results.append(
                RecognizerResult(
                    entity_type="IBAN_CODE",
                    start=match.start(),
                    end=end,
                    score=EntityRecognizer.MAX_SCORE,
                    analysis_explanation=AnalysisExplanation(
                        recognizer="IbanAllCountriesRecognizer",
                        original_score=EntityRecognizer.MAX_SCORE,
                        pattern_name="IBAN (length + mod 97)",
                        validation_result=True,
                        textual_explanation="country length, BBAN shape and mod-97 check pass",
                    ),
                    recognition_metadata={
                        RecognizerResult.RECOGNIZER_NAME_KEY: "IbanAllCountriesRecognizer",
                        RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: self.id,
                    },
                )
            )
        return results

    @staticmethod
    def _cut(text: str, start: int, stop: int) -> int | None:
        length = checksums.IBAN_LENGTHS.get(text[start : start + 2].upper())
        if length is None:
            return None
        seen = 0
        for i in range(start, stop):
            if text[i].isalnum():
                seen += 1
                if seen == length:
                    end = i + 1
                    if end < len(text) and text[end].isascii() and text[end].isalnum():
                        return None
                    return end if checksums.iban_valid(text[start:end]) else None
        return None


# -- assembling -----------------------------------------------------------------------------

# Which recognizers serve which entity (factories, one instance per language).
FACTORIES: dict[str, tuple[Any, ...]] = {
    "EMAIL_ADDRESS": (OfflineEmailRecognizer,),
    "PHONE_NUMBER": (ScoredPhoneRecognizer, CnMobileRecognizer),
    "CREDIT_CARD": (CreditCardRecognizer, WideCardRecognizer),
    "US_SSN": (UsSsnRecognizer,),
    "IBAN_CODE": (IbanAllCountriesRecognizer,),
    "IP_ADDRESS": (IpRecognizer,),
    "URL": (UrlRecognizer,),
    "CN_RESIDENT_ID": (CnResidentIdRecognizer,),
    "NL_BSN": (NlBsnRecognizer,),
    "DE_TAX_ID": (DeSteuerIdRecognizer,),
    "DE_ID_CARD": (DePersonalausweisRecognizer,),
}

assert frozenset(FACTORIES) == PATTERN_ENTITIES
__all__ = ["NER_ENTITIES", "PATTERN_ENTITIES", "build_recognizers", "offline_tldextract"]

# Regions whose national phone formats presidio's PhoneRecognizer tries (international
# "+CC ..." numbers are found whatever the region): our locales' countries and the big ones.
PHONE_REGIONS = ("US", "GB", "DE", "FR", "NL", "ES", "CN", "IN")  # US covers all of +1


def build_recognizers(entities: frozenset[str], language: str) -> list[EntityRecognizer]:
    """Fresh recognizer instances for one language, only for the entities asked for."""
    out: list[EntityRecognizer] = []
    for entity in sorted(entities & PATTERN_ENTITIES):
        for factory in FACTORIES[entity]:
            if factory is ScoredPhoneRecognizer:
                out.append(
                    ScoredPhoneRecognizer(
                        supported_language=language,
                        context=context_for(entity, language),
                        supported_regions=PHONE_REGIONS,
                    )
                )
            elif factory in (CreditCardRecognizer, IpRecognizer, UrlRecognizer, UsSsnRecognizer):
                out.append(
                    factory(supported_language=language, context=context_for(entity, language))
                )
            elif factory is OfflineEmailRecognizer:
                out.append(
                    OfflineEmailRecognizer(
                        supported_language=language, context=context_for(entity, language)
                    )
                )
            else:
                out.append(factory(supported_language=language))
    return out
