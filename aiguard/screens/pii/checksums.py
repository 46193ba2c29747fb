"""Pure check-digit validators for the identifiers the PII screen recognises.

Each function takes the matched text (separators allowed where the identifier is commonly
written with them) and answers whether it is structurally valid. No presidio, no I/O: these
are the facts the recognizers' scores rest on, so they are tested on their own.
"""

from __future__ import annotations

import datetime
import string
from collections import Counter

# IBAN length per country: the SWIFT IBAN registry (release 2024+), plus the "experimental"
# countries that banks there already print (e.g. DJ, SO, YE). Length includes the country
# code and the two check digits. Unknown countries are rejected: a mod-97 check alone passes
# one random string in 97, which is too weak for free text.
IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HN": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20,
    "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20,
    "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24,
    "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25,
    "SV": 28, "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
    "YE": 30,
}  # fmt: skip

# Countries whose BBAN is digits only: a cheap extra structure check that rejects most
# random alphanumeric strings of the right length (source: the same registry's BBAN formats).
_NUMERIC_BBAN = frozenset(
    [
        "AT",
        "BA",
        "BE",
        "CZ",
        "DE",
        "DK",
        "EE",
        "ES",
        "FI",
        "FO",
        "GL",
        "HR",
        "IL",
        "IS",
        "LT",
        "NO",
        "PL",
        "PT",
        "RS",
        "SE",
        "SI",
        "SK",
        "TN",
        "XK",
    ]
)

_ALNUM = frozenset(string.ascii_uppercase + string.digits)


def compact(text: str, separators: str = " -.") -> str:
    """The identifier without the separators people type between its groups."""
    return "".join(ch for ch in text if ch not in separators)


def iban_valid(text: str) -> bool:
    """Country-specific length, BBAN structure and ISO 7064 MOD 97-10 check."""
    iban = compact(text).upper()
    if len(iban) < 5 or not set(iban) <= _ALNUM:
        return False
    country, check = iban[:2], iban[2:4]
    if IBAN_LENGTHS.get(country) != len(iban) or not check.isdigit():
        return False
    if check in {"00", "01", "99"}:  # never issued: 98 - (x mod 97) lies in 2..98
        return False
    if country in _NUMERIC_BBAN and not iban[4:].isdigit():
        return False
    rearranged = iban[4:] + iban[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


def luhn_valid(digits: str) -> bool:
    """The Luhn (mod 10) check used by payment cards."""
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_CN_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CN_CHECK = "10X98765432"  # indexed by (weighted sum mod 11)


def cn_resident_id_valid(text: str, *, today: datetime.date | None = None) -> bool:
    """GB 11643-1999: 6-digit region, YYYYMMDD birth date, 3-digit sequence, MOD 11-2 check."""
    rid = compact(text).upper()
    if len(rid) != 18 or not rid[:17].isdigit() or rid[17] not in "0123456789X":
        return False
    if rid[0] not in "12345678":  # region codes start 1-6, 7 (Taiwan), 8 (HK, Macau)
        return False
    try:
        born = datetime.date(int(rid[6:10]), int(rid[10:12]), int(rid[12:14]))
    except ValueError:
        return False
    if born.year < 1900 or born > (today or datetime.date.today()):
        return False
    total = sum(int(d) * w for d, w in zip(rid[:17], _CN_WEIGHTS, strict=True))
    return _CN_CHECK[total % 11] == rid[17]


def nl_bsn_valid(text: str) -> bool:
    """Dutch burgerservicenummer: 9 digits passing the "11-proef" (last weight is -1)."""
    bsn = compact(text)
    if len(bsn) == 8:  # written without its leading zero
        bsn = "0" + bsn
    if len(bsn) != 9 or not bsn.isdigit() or bsn == "0" * 9:
        return False
    total = sum(int(d) * w for d, w in zip(bsn, (9, 8, 7, 6, 5, 4, 3, 2, -1), strict=True))
    return total % 11 == 0


def de_tax_id_valid(text: str) -> bool:
    """German Steuer-IdNr (§ 139b AO), as the BZSt specifies it.

    11 digits, first not 0. In the first ten, exactly one digit occurs twice or three times and
    every other digit at most once; a digit occurring three times may not stand three times in
    a row. The 11th digit is the ISO 7064 MOD 11,10 check digit.
    """
    tin = compact(text, " -./")
    if len(tin) != 11 or not tin.isdigit() or tin[0] == "0":
        return False
    counts = Counter(tin[:10])
    repeated = [d for d, n in counts.items() if n > 1]
    if len(repeated) != 1 or counts[repeated[0]] > 3:
        return False
    if counts[repeated[0]] == 3 and repeated[0] * 3 in tin[:10]:
        return False
    product = 10
    for ch in tin[:10]:
        total = (int(ch) + product) % 10 or 10
        product = (total * 2) % 11
    check = (11 - product) % 10
    return check == int(tin[10])


_ICAO_WEIGHTS = (7, 3, 1)


def icao_check_digit(chars: str) -> int:
    """ICAO Doc 9303 check digit (weights 7-3-1, A=10 ... Z=35, '<' = 0)."""
    total = 0
    for i, ch in enumerate(chars):
        if ch.isdigit():
            value = int(ch)
        elif "A" <= ch <= "Z":
            value = ord(ch) - ord("A") + 10
        elif ch == "<":
            value = 0
        else:
            raise ValueError(f"not an ICAO character: {ch!r}")
        total += value * _ICAO_WEIGHTS[i % 3]
    return total % 10


DE_ID_CHARSET = "CFGHJKLMNPRTVWXYZ0123456789"  # no vowels nor look-alikes (B, D, Q, S ...)


def de_id_card_valid(text: str) -> bool:
    """German Personalausweis document number followed by its MRZ check digit (10 chars).

    The 9-character number printed on the card is followed, in the machine-readable zone, by
    a 7-3-1 check digit; e.g. specimen T22000129 has check digit 3, L01X00T47 has 1.
    """
    doc = compact(text)
    if len(doc) != 10 or not doc[9].isdigit() or not doc[0].isalpha():
        return False
    if any(ch not in DE_ID_CHARSET for ch in doc[:9]):
        return False
    return icao_check_digit(doc[:9]) == int(doc[9])


def de_id_card_shape(text: str) -> bool:
    """The 9-character document number alone (no check digit): shape only."""
    doc = compact(text)
    return (
        len(doc) == 9
        and doc[0].isalpha()
        and all(ch in DE_ID_CHARSET for ch in doc)
        and any(ch.isdigit() for ch in doc)
    )
