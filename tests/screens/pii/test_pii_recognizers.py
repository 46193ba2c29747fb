"""Each recognizer, per language: positives (valid check digits, usual spellings) and negatives
(one digit off, wrong shape). Through the loaded screen, so prefilter + presidio are exercised."""

from __future__ import annotations

import pytest

from aiguard.screens.pii import PIIScreen

# (language, text, label, the exact text of the span)
POSITIVE = [
    # e-mail
    (
        "en",
        "Write to jane.doe@example.co.uk for details.",
        "EMAIL_ADDRESS",
        "jane.doe@example.co.uk",
    ),
    ("zh", "请发邮件到 zhang.wei@example.cn 联系我们", "EMAIL_ADDRESS", "zhang.wei@example.cn"),
    (
        "de",
        "Schreiben Sie an max.mustermann@beispiel.de.",
        "EMAIL_ADDRESS",
        "max.mustermann@beispiel.de",
    ),
    # phone numbers
    ("en", "Call me at +1 (212) 555-0187 tomorrow.", "PHONE_NUMBER", "+1 (212) 555-0187"),
    ("en", "My number is 212-555-0187.", "PHONE_NUMBER", "212-555-0187"),
    ("de", "Rufen Sie +49 30 12345678 an.", "PHONE_NUMBER", "+49 30 12345678"),
    ("nl", "Bel mij op +31 6 12345678.", "PHONE_NUMBER", "+31 6 12345678"),
    ("fr", "Appelez le +33 6 12 34 56 78.", "PHONE_NUMBER", "+33 6 12 34 56 78"),
    ("es", "Llámame al +34 612 345 678.", "PHONE_NUMBER", "+34 612 345 678"),
    # Chinese mobile numbers, with and without +86 and separators, inside Chinese text
    ("zh", "我的手机号是13812345678，谢谢", "PHONE_NUMBER", "13812345678"),
    ("zh", "请拨打 +86 138-1234-5678", "PHONE_NUMBER", "+86 138-1234-5678"),
    ("zh", "电话：0086 159 1234 5678", "PHONE_NUMBER", "0086 159 1234 5678"),
    ("zh", "手机１３８１２３４５６７８", "PHONE_NUMBER", "１３８１２３４５６７８"),  # fullwidth
    ("en", "Her mobile in Shanghai is 186 2345 6789.", "PHONE_NUMBER", "186 2345 6789"),
    # cards
    ("en", "Card number 4111 1111 1111 1111 expires 12/29.", "CREDIT_CARD", "4111 1111 1111 1111"),
    ("de", "Kreditkarte: 5555-5555-5555-4444", "CREDIT_CARD", "5555-5555-5555-4444"),
    # card numbers outside presidio's pattern (Luhn-valid), with a context word
    ("en", "What is the limit for card 501864667909?", "CREDIT_CARD", "501864667909"),
    ("en", "My card 4131034282458809939 is expiring.", "CREDIT_CARD", "4131034282458809939"),
    # US SSN
    ("en", "His SSN is 219-09-9999.", "US_SSN", "219-09-9999"),
    # IBANs
    (
        "en",
        "IBAN: DE89 3704 0044 0532 0130 00 (BIC COBADEFFXXX)",
        "IBAN_CODE",
        "DE89 3704 0044 0532 0130 00",
    ),
    ("nl", "Maak het over naar NL91ABNA0417164300.", "IBAN_CODE", "NL91ABNA0417164300"),
    (
        "fr",
        "Virement sur FR14 2004 1010 0505 0001 3M02 606 merci",
        "IBAN_CODE",
        "FR14 2004 1010 0505 0001 3M02 606",
    ),
    ("es", "Cuenta ES91 2100 0418 4502 0005 1332.", "IBAN_CODE", "ES91 2100 0418 4502 0005 1332"),
    ("zh", "账户GB82WEST12345698765432转账", "IBAN_CODE", "GB82WEST12345698765432"),
    ("en", "Pay to NO93 8601 1117 947 today.", "IBAN_CODE", "NO93 8601 1117 947"),
    # IP addresses
    ("en", "The server at 192.168.10.24 is down.", "IP_ADDRESS", "192.168.10.24"),
    (
        "en",
        "Use 2001:db8:85a3::8a2e:370:7334 instead.",
        "IP_ADDRESS",
        "2001:db8:85a3::8a2e:370:7334",
    ),
    # Chinese resident ID
    ("zh", "身份证号码11010519491231002X已登记", "CN_RESIDENT_ID", "11010519491231002X"),
    ("en", "ID 11010519491231002X on file.", "CN_RESIDENT_ID", "11010519491231002X"),
    # Dutch BSN: bare in Dutch, with context elsewhere
    ("nl", "Mijn nummer is 111222333.", "NL_BSN", "111222333"),
    ("en", "Her BSN is 123456782.", "NL_BSN", "123456782"),
    ("nl", "BSN 1234.56.782", "NL_BSN", "1234.56.782"),
    # German tax ID
    ("de", "Meine Nummer: 86095742719", "DE_TAX_ID", "86095742719"),
    ("en", "Steuer-ID 86 095 742 719", "DE_TAX_ID", "86 095 742 719"),
    # German ID card: with check digit anywhere, without only with context
    ("de", "Nummer T220001293 bitte prüfen", "DE_ID_CARD", "T220001293"),
    ("en", "German ID card L01X00T471", "DE_ID_CARD", "L01X00T471"),
    ("de", "Meine Ausweisnummer ist L01X00T47.", "DE_ID_CARD", "L01X00T47"),
]

# (language, text, label that must NOT be reported)
NEGATIVE = [
    ("en", "Write to jane.doe@example for details.", "EMAIL_ADDRESS"),  # no public suffix
    ("en", "Card number 4111 1111 1111 1112 expires.", "CREDIT_CARD"),  # Luhn off by one
    ("en", "IBAN: DE89 3704 0044 0532 0130 01", "IBAN_CODE"),  # mod 97 off by one
    ("en", "Reference 501864667909 was archived.", "CREDIT_CARD"),  # Luhn-valid, no context
    ("en", "What is the limit for card 501864667908?", "CREDIT_CARD"),  # Luhn off by one
    ("en", "IBAN: DE88 3704 0044 0532 0130 00", "IBAN_CODE"),
    ("en", "IBAN: XX89 3704 0044 0532 0130 00", "IBAN_CODE"),
    ("zh", "身份证号码110105194912310021已登记", "CN_RESIDENT_ID"),  # check char off
    ("zh", "身份证号码11010519491331002X已登记", "CN_RESIDENT_ID"),  # month 13
    ("nl", "Mijn BSN is 111222334.", "NL_BSN"),  # 11-proof off by one
    ("en", "Order 123456782 has shipped.", "NL_BSN"),  # valid 11-proof, no context, not Dutch
    ("de", "Steuer-ID 86095742718", "DE_TAX_ID"),  # check digit off
    ("de", "Steuer-ID 12345678903", "DE_TAX_ID"),  # repetition rule
    ("de", "Ausweis T220001294", "DE_ID_CARD"),  # check digit off
    ("en", "The part L01X00T47 is in stock.", "DE_ID_CARD"),  # no check digit, no context
    ("en", "Version 10.2.3 was released in 2024.", "IP_ADDRESS"),
    ("zh", "订单号 23812345678000 已发货", "PHONE_NUMBER"),  # 14 digits is not a CN mobile
    ("en", "It costs 1,299.99 dollars and weighs 12.5 kg.", "PHONE_NUMBER"),
    ("en", "See https://docs.python.org/3/library/re.html", "URL"),  # URL off by default
]


@pytest.mark.parametrize(("lang", "text", "label", "value"), POSITIVE)
def test_positive(pii: PIIScreen, lang: str, text: str, label: str, value: str) -> None:
    found = {(s.label, text[s.start : s.end]) for s in pii.find(text, lang)}
    assert (label, value) in found, found


@pytest.mark.parametrize(("lang", "text", "label"), NEGATIVE)
def test_negative(pii: PIIScreen, lang: str, text: str, label: str) -> None:
    found = [(s.label, text[s.start : s.end]) for s in pii.find(text, lang)]
    assert label not in {lab for lab, _ in found}, found


def test_scores_are_in_range_and_explained(pii: PIIScreen) -> None:
    text = " ".join(t for _, t, _, _ in POSITIVE)
    spans = pii.find(text, "en")
    assert len(spans) >= 25
    for s in spans:
        assert 0.0 <= s.score <= 1.0
        assert s.explanation


def test_a_luhn_valid_card_is_not_also_a_phone(pii: PIIScreen) -> None:
    text = "Card number 4111 1111 1111 1111."
    assert [s.label for s in pii.find(text, "en")] == ["CREDIT_CARD"]


def test_on_equal_scores_the_specific_label_wins(pii: PIIScreen) -> None:
    # "number" lifts the phone guess to the SSN's score; the SSN is the better explanation
    text = "His social security number is 853-37-1694"
    assert [s.label for s in pii.find(text, "en")] == ["US_SSN"]


def test_clean_answers_have_no_findings(pii: PIIScreen) -> None:
    text = (
        "To reset your password, open Settings, choose Security and follow the steps. "
        "In 2023 the policy changed: version 4.2 requires 12 characters. Costs: 19.99 EUR. "
        "我们会在3个工作日内回复。Wir antworten innerhalb von 24 Stunden."
    )
    for lang in ("en", "zh", "de", "nl", "fr", "es"):
        assert pii.find(text, lang) == ()
