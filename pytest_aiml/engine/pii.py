"""Detectors of personal data (PII) in committed data files, and the masks that hide it.

The scan reads the head of each data file (CSV, TSV, JSON, JSON Lines, Parquet when
pyarrow is installed, plain text) and decides per column. Precision comes first:

- Every detector validates what it finds. Card numbers pass the Luhn check and carry
  an issuer prefix. IBANs pass the ISO 13616 mod-97 check. US social security numbers
  have a valid area, group and serial. UK national insurance numbers use only the
  letters HMRC issues. Phone numbers need an international prefix or separators, so a
  bare run of digits (an id, a timestamp) is never a phone number.
- A column is reported for a kind only when most of its sampled values are that kind,
  or when its header names the kind (``email``, ``phone``, ``ssn``) and at least one
  value is. One stray address in a free-text column is not enough.
- Addresses that identify no person are skipped: e-mail domains reserved for
  documentation (RFC 2606: ``example.com``, ``.test``, ...), and IP addresses that are
  not globally routable (private, loopback, link-local, documentation ranges), as
  ``ipaddress`` classifies them. A column named for versions never contains IP addresses.

A detected value never leaves this module unmasked: :func:`mask` keeps only what a
reviewer needs to recognise the kind (``j***@g***.com``, ``**** **** **** 4242``).
"""

from __future__ import annotations

import csv
import enum
import io
import ipaddress
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

log = logging.getLogger("pytest_aiml.pii")

#: The maximum number of data rows read from one file. Column decisions need a sample, not the whole file.
MAX_DATA_ROWS = 2000
#: The maximum number of bytes read from one file. A JSON document (not JSON Lines) larger than this is skipped.
MAX_DATA_BYTES = 8 * 1024 * 1024
#: A column is "mostly" a kind when at least this share of its non-empty sampled values are.
MAJORITY = 0.5
#: Without a header hint, a column needs at least this many values of a kind.
MIN_UNHINTED_HITS = 2


class PiiKind(str, enum.Enum):
    """A kind of personal data; the value is how findings name it."""

    EMAIL = "e-mail address"
    PHONE = "phone number"
    CARD = "payment card number"
    SSN = "US social security number"
    NINO = "UK national insurance number"
    IBAN = "IBAN"
    IP = "IP address"

    @property
    def plural(self) -> str:
        return self.value + ("es" if self.value.endswith("ss") else "s")


# -- validators ------------------------------------------------------------------------

_EMAIL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}")
#: Domains that RFC 2606 and RFC 6761 reserve, so no mailbox there belongs to anyone.
_RESERVED_DOMAINS = ("example.com", "example.org", "example.net", "localhost")
_RESERVED_TLDS = ("example", "test", "invalid", "localhost", "local")
#: Suffixes that make ``icon@2x.png`` look like an address.
_FILE_SUFFIXES = frozenset({"png", "jpg", "jpeg", "gif", "svg", "webp", "bmp", "tif", "tiff", "ico"})


def is_email(value: str) -> bool:
    if not _EMAIL.fullmatch(value):
        return False
    domain = value.rsplit("@", 1)[1].lower()
    tld = domain.rsplit(".", 1)[1]
    if tld in _FILE_SUFFIXES or tld in _RESERVED_TLDS:
        return False
    return not any(domain == reserved or domain.endswith("." + reserved) for reserved in _RESERVED_DOMAINS)


#: ``+`` or ``00``, a country code, then digit groups; at least one separator unless the
#: whole number is written in E.164 form (``+14155552671``).
_INTERNATIONAL_PHONE = re.compile(r"(?:\+|00)[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,6}")
#: North American numbers with separators: ``(415) 555-2671``, ``415-555-2671``, ``415.555.2671``.
#: An extension may follow: ``415-555-2671 x123``.
_NANP_PHONE = re.compile(
    r"(?:\+?1[ .-]?|001-)?(?:\([2-9]\d{2}\)\s?|[2-9]\d{2}[.-])[2-9]\d{2}[.-]\d{4}(?:\s?(?:x|ext\.?)\s?\d{1,5})?"
)


#: The same shape without the numbering plan's digit rules, for columns named for phones.
_HINTED_NANP_PHONE = re.compile(
    r"(?:\+?1[ .-]?|001-)?(?:\(\d{3}\)\s?|\d{3}[.-])\d{3}[.-]\d{4}(?:\s?(?:x|ext\.?)\s?\d{1,5})?"
)


def is_phone(value: str, *, hinted: bool = False) -> bool:
    """Tell whether ``value`` is a phone number; in a column named for phones, ``043-797-5229`` counts too."""
    if _NANP_PHONE.fullmatch(value) or (hinted and _HINTED_NANP_PHONE.fullmatch(value)):
        return True
    if not _INTERNATIONAL_PHONE.fullmatch(value):
        return False
    digits = re.sub(r"\D", "", value)
    separated = bool(re.search(r"[ .()-]", value))
    if value.startswith("00"):
        # ``00`` and digits alone is a bare digit run, which could be anything.
        return separated and 8 <= len(digits) - 2 <= 15
    # E.164 numbers have at most 15 digits. Without separators, fewer than 10 digits
    # after ``+`` read as much like a signed number as like a phone number.
    return 8 <= len(digits) <= 15 if separated else 10 <= len(digits) <= 15


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = int(char)
        if index % 2 == 1:
            number *= 2
            if number > 9:
                number -= 9
        total += number
    return total % 10 == 0


def _card_issuer_matches(digits: str) -> bool:
    """Tell whether the number starts with an issuer prefix valid for its length (ISO/IEC 7812 ranges)."""
    length = len(digits)
    prefix2, prefix3, prefix4, prefix6 = int(digits[:2]), int(digits[:3]), int(digits[:4]), int(digits[:6])
    if digits[0] == "4":  # Visa
        return length in (13, 16, 19)
    if 51 <= prefix2 <= 55 or 2221 <= prefix4 <= 2720:  # Mastercard
        return length == 16
    if prefix2 in (34, 37):  # American Express
        return length == 15
    if prefix4 == 6011 or 644 <= prefix3 <= 649 or prefix2 == 65 or 622126 <= prefix6 <= 622925:  # Discover
        return 16 <= length <= 19
    if 3528 <= prefix4 <= 3589:  # JCB
        return 16 <= length <= 19
    if 300 <= prefix3 <= 305 or prefix2 in (36, 38, 39):  # Diners Club
        return 14 <= length <= 19
    if prefix2 == 62:  # UnionPay
        return 16 <= length <= 19
    return False


#: Groups of digits separated by single spaces or dashes, or one run of 13 to 19 digits.
_CARD_SHAPE = re.compile(r"\d{13,19}|\d{4}(?:[ -]\d{2,6}){2,4}")


def is_card(value: str) -> bool:
    if not _CARD_SHAPE.fullmatch(value):
        return False
    digits = re.sub(r"\D", "", value)
    return 13 <= len(digits) <= 19 and _card_issuer_matches(digits) and luhn_valid(digits)


_SSN_DASHED = re.compile(r"(\d{3})-(\d{2})-(\d{4})")
_SSN_BARE = re.compile(r"(\d{3})(\d{2})(\d{4})")
#: Numbers the Social Security Administration voided after they were printed in advertising.
_VOID_SSNS = frozenset({"078051120", "219099999"})


def is_ssn(value: str, *, bare: bool = False) -> bool:
    """Tell whether ``value`` is a valid SSN: ``123-45-6789``, or nine digits when ``bare`` (a hinted column)."""
    match = _SSN_DASHED.fullmatch(value) or (_SSN_BARE.fullmatch(value) if bare else None)
    if match is None:
        return False
    area, group, serial = match.groups()
    if area in ("000", "666") or area >= "900" or group == "00" or serial == "0000":
        return False
    return area + group + serial not in _VOID_SSNS


#: HMRC issues neither D, F, I, Q, U nor V as a prefix letter, nor O as the second.
_NINO = re.compile(r"([A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]) ?(\d{2}) ?(\d{2}) ?(\d{2}) ?([A-D])")
_NINO_UNUSED_PREFIXES = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def is_nino(value: str) -> bool:
    match = _NINO.fullmatch(value)
    return match is not None and match.group(1) not in _NINO_UNUSED_PREFIXES


#: IBAN lengths by country (ISO 13616 registry); a country missing here is not accepted.
_IBAN_LENGTHS: Mapping[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
    "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24,
    "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21,
    "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31,
    "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22,
    "SA": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}
_IBAN_SHAPE = re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}")


def is_iban(value: str) -> bool:
    if not _IBAN_SHAPE.fullmatch(value):
        return False
    compact = value.replace(" ", "")
    if _IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(char, 36)) for char in rearranged)) % 97 == 1


_IP_SHAPE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f:]*:[0-9A-Fa-f:]*:[0-9A-Fa-f:.]*")


def is_public_ip(value: str) -> bool:
    """Tell whether ``value`` is a globally routable IPv4 or IPv6 address.

    Private, loopback, link-local, multicast and documentation ranges identify no
    person outside one network, so they are not personal data here.
    """
    if not _IP_SHAPE.fullmatch(value):
        return False
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return address.is_global and not address.is_multicast


def detect_value(value: str, hints: frozenset[PiiKind] = frozenset()) -> PiiKind | None:
    """Return the kind of personal data that the whole of ``value`` is, or None.

    ``hints`` are the kinds the column header names: a hinted SSN column may hold the
    nine digits without dashes, and a hinted phone column numbers outside the North
    American numbering plan's digit rules.
    """
    value = value.strip()
    if len(value) < 7 or len(value) > 320:
        return None
    if "@" in value:
        return PiiKind.EMAIL if is_email(value) else None
    if is_card(value):
        return PiiKind.CARD
    if is_ssn(value, bare=PiiKind.SSN in hints):
        return PiiKind.SSN
    if is_iban(value):
        return PiiKind.IBAN
    if is_nino(value):
        return PiiKind.NINO
    if is_phone(value, hinted=PiiKind.PHONE in hints):
        return PiiKind.PHONE
    if is_public_ip(value):
        return PiiKind.IP
    return None


#: Patterns that find a kind inside longer text. Only kinds that a validator confirms
#: are searched there: IP addresses in prose are too often version numbers.
_IN_TEXT: tuple[tuple[PiiKind, re.Pattern[str]], ...] = (
    (PiiKind.EMAIL, re.compile(r"(?<![\w.%+-])" + _EMAIL.pattern)),
    # Digits after a decimal point or before a decimal fraction are part of a number.
    (PiiKind.CARD, re.compile(r"(?<![\d.,-])(?:\d{4}[ -]){3}\d{1,7}(?![\d-]|[.,]\d)|(?<![\d.,])\d{13,19}(?!\d|[.,]\d)")),
    (PiiKind.SSN, re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")),
    (PiiKind.IBAN, re.compile(r"(?<![A-Z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?(?![A-Z0-9])")),
    (PiiKind.NINO, re.compile(r"(?<![A-Z0-9])[A-Z]{2} ?\d{2} ?\d{2} ?\d{2} ?[A-D](?![A-Za-z0-9])")),
    # Dots are left out of phone numbers in prose, where they separate decimals more often.
    (PiiKind.PHONE, re.compile(r"(?<![\w+])\+[1-9]\d{0,2}(?:[ -]\(?\d{1,4}\)?){2,6}(?![\d.])")),
)


def find_in_text(text: str) -> Iterator[tuple[PiiKind, str]]:
    """Yield each validated piece of personal data found inside free text."""
    for kind, pattern in _IN_TEXT:
        for match in pattern.finditer(text):
            if detect_value(match.group(0)) is kind:
                yield kind, match.group(0)


# -- masks -----------------------------------------------------------------------------


def mask(kind: PiiKind, value: str) -> str:
    """Hide a detected value, keeping only enough to recognise its kind."""
    value = value.strip()
    if kind is PiiKind.EMAIL:
        local, domain = value.rsplit("@", 1)
        host, tld = domain.rsplit(".", 1)
        return f"{local[0]}***@{host[0]}***.{tld}"
    if kind is PiiKind.CARD:
        return "**** **** **** " + re.sub(r"\D", "", value)[-4:]
    if kind is PiiKind.SSN:
        return "***-**-" + re.sub(r"\D", "", value)[-4:]
    if kind is PiiKind.IBAN:
        compact = value.replace(" ", "")
        return compact[:2] + "*" * (len(compact) - 6) + compact[-4:]
    if kind is PiiKind.NINO:
        compact = value.replace(" ", "")
        return "*" * (len(compact) - 1) + compact[-1]
    if kind is PiiKind.PHONE:
        digits = sum(char.isdigit() for char in value)
        masked, seen = [], 0
        for char in value:
            if char.isdigit():
                seen += 1
                masked.append(char if seen > digits - 2 else "*")
            else:
                masked.append(char)
        return "".join(masked)
    if ":" in value:
        return value.split(":", 1)[0] + ":****"
    return value.split(".", 1)[0] + ".*.*.*"


# -- column headers --------------------------------------------------------------------

#: Header words that name a kind, matched against the words of a column name
#: (``customerEmail`` and ``customer_email`` both have the word ``email``).
_HINT_WORDS: Mapping[PiiKind, frozenset[str]] = {
    PiiKind.EMAIL: frozenset({"email", "emails", "mail", "mailbox", "contact"}),
    PiiKind.PHONE: frozenset({"phone", "phones", "telephone", "tel", "mobile", "cell", "fax", "msisdn", "contact"}),
    PiiKind.CARD: frozenset({"card", "cc", "ccn", "pan", "creditcard"}),
    PiiKind.SSN: frozenset({"ssn"}),
    PiiKind.NINO: frozenset({"nino"}),
    PiiKind.IBAN: frozenset({"iban", "bank", "account"}),
    PiiKind.IP: frozenset({"ip", "ipv4", "ipv6", "ipaddr", "ipaddress"}),
}
#: Header words that name a kind only together: ``e_mail``, ``social_security_number``.
_HINT_PAIRS = ((("e", "mail"), "email"), (("social", "security"), "ssn"), (("national", "insurance"), "nino"))
#: Words of a column that contains version or release strings, never addresses.
_VERSION_WORDS = frozenset({"version", "versions", "ver", "release", "tag", "build", "revision", "firmware"})


def header_words(column: str) -> frozenset[str]:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", column)
    words = {word for word in re.split(r"[^a-z0-9]+", spaced.lower()) if word}
    for pair, combined in _HINT_PAIRS:
        if all(word in words for word in pair):
            words.add(combined)
    return frozenset(words)


def header_hints(column: str | None) -> frozenset[PiiKind]:
    if column is None:
        return frozenset()
    words = header_words(column)
    return frozenset(kind for kind, names in _HINT_WORDS.items() if words & names)


def names_versions(column: str | None) -> bool:
    return column is not None and bool(header_words(column) & _VERSION_WORDS)


# -- reading ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """One value of a data file: its 1-based data row, its line (0 when unknown) and its column."""

    row: int
    line: int
    column: str | None
    value: str


#: Readable formats by suffix; ``text`` files are read line by line as one column.
FORMATS: Mapping[str, str] = {
    ".csv": "csv", ".tsv": "tsv", ".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl",
    ".parquet": "parquet", ".txt": "text", "": "text",
}


def data_format(path: str) -> str | None:
    """Return how a data file is read (``csv``, ``json``, ``text``, ...), or None when it is not read."""
    return FORMATS.get(PurePosixPath(path).suffix.lower())


def bytes_read(fmt: str, max_bytes: int = MAX_DATA_BYTES) -> int | None:
    """Return how many bytes from the start of a file :func:`read_cells` reads; None for all of it (Parquet)."""
    return None if fmt == "parquet" else max_bytes + 1


def read_cells(path: Path, fmt: str, *, max_rows: int = MAX_DATA_ROWS, max_bytes: int = MAX_DATA_BYTES) -> Iterator[Cell]:
    """Yield the cells of the first ``max_rows`` rows of a data file, reading at most ``max_bytes``.

    Unreadable or malformed files yield nothing; the reason is logged at debug level.
    """
    if fmt == "parquet":
        yield from _parquet_cells(path, max_rows)
        return
    try:
        with path.open("rb") as stream:
            head = stream.read(max_bytes + 1)
    except OSError as error:
        log.debug("cannot read %s: %s", path, error)
        return
    if b"\0" in head[:8192]:
        log.debug("not reading %s: binary content", path)
        return
    truncated = len(head) > max_bytes
    text = head[:max_bytes].decode("utf-8", errors="replace")
    if truncated:
        # Drop the partial last line; a JSON document cut short cannot be parsed at all.
        if fmt == "json":
            log.debug("not reading %s: a JSON document larger than %d bytes", path, max_bytes)
            return
        text = text.rsplit("\n", 1)[0]
    if fmt in ("csv", "tsv"):
        yield from _delimited_cells(text, "\t" if fmt == "tsv" else ",", max_rows)
    elif fmt == "jsonl":
        yield from _json_lines_cells(text, max_rows, path)
    elif fmt == "json":
        yield from _json_cells(text, max_rows, path)
    else:
        for index, line in enumerate(text.splitlines()[:max_rows], start=1):
            if line.strip():
                yield Cell(index, index, None, line)


def _delimited_cells(text: str, delimiter: str, max_rows: int) -> Iterator[Cell]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        return
    # A first row with a value of personal data, or with numbers only, is data, not a header.
    if any(detect_value(name) for name in header) or all(re.fullmatch(r"[\d.,+-]*", name.strip()) for name in header):
        columns = [f"column {index + 1}" for index in range(len(header))]
        rows: Iterator[list[str]] = _chain_first(header, reader)
        row_number, line = 0, 0
    else:
        columns = [name.strip() or f"column {index + 1}" for index, name in enumerate(header)]
        rows = reader
        row_number, line = 0, reader.line_num
    try:
        for values in rows:
            start = line + 1
            line = reader.line_num
            if not any(value.strip() for value in values):
                continue
            row_number += 1
            if row_number > max_rows:
                return
            for index, value in enumerate(values):
                if value.strip():
                    column = columns[index] if index < len(columns) else f"column {index + 1}"
                    yield Cell(row_number, start, column, value)
    except csv.Error as error:
        log.debug("stopped reading a delimited file at line %d: %s", reader.line_num, error)


def _chain_first(first: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rest


def _flatten(record: object, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(dotted key, text)`` for the string and integer leaves of a JSON record.

    Floats and booleans are skipped: no personal data kind here is a float.
    """
    if isinstance(record, dict):
        for key, value in record.items():
            yield from _flatten(value, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(record, list):
        for value in record:
            yield from _flatten(value, prefix + "[]")
    elif isinstance(record, str):
        yield prefix or "value", record
    elif isinstance(record, int) and not isinstance(record, bool):
        yield prefix or "value", str(record)


def _json_lines_cells(text: str, max_rows: int, path: Path) -> Iterator[Cell]:
    row = 0
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            log.debug("not reading %s further: line %d is not JSON", path, line_number)
            return
        row += 1
        if row > max_rows:
            return
        for column, value in _flatten(record):
            yield Cell(row, line_number, column, value)


def _json_cells(text: str, max_rows: int, path: Path) -> Iterator[Cell]:
    try:
        document = json.loads(text)
    except ValueError as error:
        log.debug("not reading %s: invalid JSON: %s", path, error)
        return
    records = _record_list(document)
    if records is None:
        log.debug("not reading %s: no list of records in it", path)
        return
    for row, record in enumerate(records[:max_rows], start=1):
        for column, value in _flatten(record):
            yield Cell(row, 0, column, value)


def _record_list(document: object) -> list[object] | None:
    """Return the records of a JSON document: a top-level list of objects, or the longest one one level down.

    A single object (a configuration, a package manifest) has no records.
    """
    if isinstance(document, list):
        return document if any(isinstance(item, dict) for item in document) else None
    if isinstance(document, dict):
        lists = [value for value in document.values() if isinstance(value, list) and any(isinstance(item, dict) for item in value)]
        if lists:
            return max(lists, key=len)
    return None


def _parquet_cells(path: Path, max_rows: int) -> Iterator[Cell]:
    try:
        import pyarrow.parquet as parquet
    except ImportError:
        log.debug("not reading %s: pyarrow is not installed, so Parquet files are not scanned for PII", path)
        return
    try:
        table = parquet.ParquetFile(path)
        row = 0
        for batch in table.iter_batches(batch_size=min(max_rows, 1024)):
            for record in batch.to_pylist():
                row += 1
                if row > max_rows:
                    return
                for column, value in _flatten(record):
                    yield Cell(row, 0, column, value)
    except (OSError, ValueError) as error:  # pyarrow's errors derive from these
        log.debug("cannot read %s as Parquet: %s", path, error)


# -- the scan --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PiiColumn:
    """One kind of personal data in one column of a data file, as a finding reports it."""

    column: str | None
    kind: PiiKind
    #: Sampled rows holding the kind, and sampled rows with any value in the column.
    hits: int
    values: int
    first_row: int
    first_line: int
    #: The first value found, masked.
    masked: str
    hinted: bool


_DECIMAL = re.compile(r"[+-]?\d*[.,]\d+(?:[eE][+-]?\d+)?|[+-]?\d+(?:\.\d*)?[eE][+-]?\d+")


@dataclass
class _ColumnTally:
    values: int = 0
    hits: dict[PiiKind, int] = field(default_factory=dict)
    first: dict[PiiKind, tuple[int, int, str]] = field(default_factory=dict)

    def add(self, kind: PiiKind, cell: Cell, value: str) -> None:
        self.hits[kind] = self.hits.get(kind, 0) + 1
        self.first.setdefault(kind, (cell.row, cell.line, mask(kind, value)))


def scan_data_file(path: Path, fmt: str, *, max_rows: int = MAX_DATA_ROWS, max_bytes: int = MAX_DATA_BYTES) -> list[PiiColumn]:
    """Return the kinds of personal data each column of a data file contains, by column order."""
    tallies: dict[str | None, _ColumnTally] = {}
    for cell in read_cells(path, fmt, max_rows=max_rows, max_bytes=max_bytes):
        tally = tallies.setdefault(cell.column, _ColumnTally())
        tally.values += 1
        if _DECIMAL.fullmatch(cell.value.strip()):
            continue
        hints = header_hints(cell.column)
        kind = detect_value(cell.value, hints)
        if kind is not None:
            if not (kind is PiiKind.IP and names_versions(cell.column)):
                tally.add(kind, cell, cell.value)
            continue
        found = {}
        for text_kind, value in find_in_text(cell.value):
            found.setdefault(text_kind, value)
        for text_kind, value in found.items():
            tally.add(text_kind, cell, value)
    columns = []
    for column, tally in tallies.items():
        hints = header_hints(column)
        for kind in PiiKind:
            hits = tally.hits.get(kind, 0)
            if not hits:
                continue
            hinted = kind in hints
            mostly = hits >= MIN_UNHINTED_HITS and hits / tally.values >= MAJORITY
            if not (hinted or mostly):
                continue
            row, line, masked = tally.first[kind]
            columns.append(PiiColumn(column, kind, hits, tally.values, row, line, masked, hinted))
    return columns
