"""Check-digit validators: valid published examples vs the same with one digit changed."""

from __future__ import annotations

import datetime

import pytest

from aiguard.screens.pii import checksums as c


def _bump(s: str, index: int) -> str:
    """The same identifier with one digit off by one (the classic typo the checks catch)."""
    ch = s[index]
    return s[:index] + str((int(ch) + 1) % 10) + s[index + 1 :]


@pytest.mark.parametrize(
    "iban",
    [
        "DE89 3704 0044 0532 0130 00",
        "GB82 WEST 1234 5698 7654 32",
        "NL91ABNA0417164300",
        "FR1420041010050500013M02606",
        "BE68539007547034",
        "NO9386011117947",  # shortest (15)
        "LC55HEMM000100010012001200023015",  # 32
        "RU0204452560040702810412345678901",  # 33
        "MT84MALT011000012345MTLCAST001S",
        "BR1800360305000010009795493C1",
        "PT50000201231234567890154",
        "QA58DOHB00001234567890ABCDEFG",
        "CH9300762011623852957",
        "ES9121000418450200051332",
        "de89370400440532013000",  # lower case as typed
    ],
)
def test_iban_valid(iban: str) -> None:
    assert c.iban_valid(iban)


@pytest.mark.parametrize(
    "iban",
    [
        "DE89 3704 0044 0532 0130 01",  # off by one
        "DE88 3704 0044 0532 0130 00",  # check digits off by one
        "DE89 3704 0044 0532 0130 0",  # too short for DE
        "DE89 3704 0044 0532 0130 000",  # too long for DE
        "XX89 3704 0044 0532 0130 00",  # no such country
        "NL91ABNA0417164301",
        "DE89A704004405320130 00",  # letter in an all-digit BBAN
        "GB00 WEST 1234 5698 7654 32",
        "",
    ],
)
def test_iban_invalid(iban: str) -> None:
    assert not c.iban_valid(iban)


def test_iban_table_lengths_are_plausible() -> None:
    assert all(15 <= n <= 34 for n in c.IBAN_LENGTHS.values())
    assert len(c.IBAN_LENGTHS) >= 85


@pytest.mark.parametrize(
    ("rid", "ok"),
    [
        ("11010519491231002X", True),  # the GB 11643 textbook example
        ("11010519491231002x", True),
        ("110105194912310021", False),  # check char wrong
        ("11010519491331002X", False),  # month 13
        ("11010519490230002X", False),  # 30 Feb
        ("91010519491231002X", False),  # no region starts with 9
        ("11010518991231002X", False),  # before 1900
        ("1101051949123100", False),
    ],
)
def test_cn_resident_id(rid: str, ok: bool) -> None:
    assert c.cn_resident_id_valid(rid) is ok


def test_cn_resident_id_future_birth_date() -> None:
    # 2030-01-01 is a valid date but not a birth date yet; build one with the right check char
    body = "11010520300101002"
    total = sum(int(d) * w for d, w in zip(body, c._CN_WEIGHTS, strict=True))
    rid = body + c._CN_CHECK[total % 11]
    assert c.cn_resident_id_valid(rid, today=datetime.date(2031, 1, 1))
    assert not c.cn_resident_id_valid(rid, today=datetime.date(2026, 1, 1))


@pytest.mark.parametrize(
    ("bsn", "ok"),
    [
        ("111222333", True),
        ("123456782", True),
        ("1234.56.782", True),
        ("12345678", False),  # 012345678 fails
        ("123456783", False),
        ("111222334", False),
        ("000000000", False),
        ("12345678a", False),
    ],
)
def test_nl_bsn(bsn: str, ok: bool) -> None:
    assert c.nl_bsn_valid(bsn) is ok


@pytest.mark.parametrize("tin", ["86095742719", "47036892816", "65929970489", "86 095 742 719"])
def test_de_tax_id_valid(tin: str) -> None:
    assert c.de_tax_id_valid(tin)


@pytest.mark.parametrize(
    "tin",
    [
        "86095742718",  # check digit off
        "12345678903",  # no repeated digit in the first ten
        "11145678903",  # a digit three times in a row
        "11224567890",  # two digits repeated
        "06095742719",  # leading zero
        "8609574271",  # ten digits
    ],
)
def test_de_tax_id_invalid(tin: str) -> None:
    assert not c.de_tax_id_valid(tin)


@pytest.mark.parametrize("index", range(10))
def test_de_tax_id_any_single_digit_typo_is_caught(index: int) -> None:
    assert not c.de_tax_id_valid(_bump("86095742719", index))


@pytest.mark.parametrize("index", range(9))
def test_nl_bsn_any_single_digit_typo_is_caught(index: int) -> None:
    assert not c.nl_bsn_valid(_bump("111222333", index))


@pytest.mark.parametrize("index", [0, 5, 10, 16])
def test_cn_resident_id_typos_are_caught(index: int) -> None:
    assert not c.cn_resident_id_valid(_bump("11010519491231002X", index))


@pytest.mark.parametrize(
    ("doc", "ok"),
    [
        ("T220001293", True),  # old specimen: T22000129 + check digit 3
        ("L01X00T471", True),  # nPA specimen: L01X00T47 + check digit 1
        ("L01X00T472", False),
        ("T220001294", False),
        ("L01A00T471", False),  # A is not in the charset
        ("0220001293", False),  # must start with a letter
    ],
)
def test_de_id_card(doc: str, ok: bool) -> None:
    assert c.de_id_card_valid(doc) is ok


def test_icao_check_digit_matches_the_specimens() -> None:
    assert c.icao_check_digit("T22000129") == 3
    assert c.icao_check_digit("L01X00T47") == 1


@pytest.mark.parametrize(("num", "ok"), [("4111111111111111", True), ("4111111111111112", False)])
def test_luhn(num: str, ok: bool) -> None:
    assert c.luhn_valid(num) is ok
