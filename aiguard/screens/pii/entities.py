"""The entity labels the PII screen knows (light: no presidio import)."""

from __future__ import annotations

LANGUAGES: tuple[str, ...] = ("en", "zh", "nl", "de", "fr", "es")

PATTERN_ENTITIES = frozenset(
    {
        "EMAIL_ADDRESS",
        "PHONE_NUMBER",
        "CREDIT_CARD",
        "US_SSN",
        "IBAN_CODE",
        "IP_ADDRESS",
        "URL",
        "CN_RESIDENT_ID",
        "NL_BSN",
        "DE_TAX_ID",
        "DE_ID_CARD",
    }
)
NER_ENTITIES = frozenset({"PERSON", "LOCATION"})
SUPPORTED_ENTITIES = PATTERN_ENTITIES | NER_ENTITIES

# URLs are off by default: in chatbot answers they are mostly documentation links, and the
# personal part of a personal URL (an e-mail, a number) is caught on its own.
DEFAULT_ENTITIES = SUPPORTED_ENTITIES - {"URL"}
