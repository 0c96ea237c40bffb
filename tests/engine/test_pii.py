"""The personal-data detectors, their masks and the data file readers."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from pytest_aiml.engine.pii import (
    PiiKind,
    data_format,
    detect_value,
    find_in_text,
    header_hints,
    is_iban,
    luhn_valid,
    mask,
    read_cells,
    scan_data_file,
)


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("jane.doe@gmail.com", PiiKind.EMAIL),
        ("+44 20 7946 0958", PiiKind.PHONE),
        ("+14155552671", PiiKind.PHONE),
        ("(415) 555-2671", PiiKind.PHONE),
        ("415.555.2671 x12", PiiKind.PHONE),
        ("0049 30 901820", PiiKind.PHONE),
        ("4242 4242 4242 4242", PiiKind.CARD),
        ("378282246310005", PiiKind.CARD),
        ("5555-5555-5555-4444", PiiKind.CARD),
        ("123-45-6789", PiiKind.SSN),
        ("AB 12 34 56 C", PiiKind.NINO),
        ("GB82 WEST 1234 5698 7654 32", PiiKind.IBAN),
        ("DE89370400440532013000", PiiKind.IBAN),
        ("8.8.8.8", PiiKind.IP),
        ("2606:4700:4700::1111", PiiKind.IP),
    ],
)
def test_value_detected(value: str, kind: PiiKind) -> None:
    assert detect_value(value) is kind


@pytest.mark.parametrize(
    "value",
    [
        "ann@example.com",  # RFC 2606 documentation domain
        "bob@mail.test",
        "icon@2x.png",
        "4242 4242 4242 4241",  # fails the Luhn check
        "9999999999999995",  # Luhn-valid, but no issuer uses the prefix
        "0.4242424242424242",  # a float
        "1617181920123",  # a millisecond timestamp
        "4155552671",  # a bare digit run
        "004930901820",  # ``00`` and digits alone
        "+12345678",  # a signed number
        "2021-05-12",
        "12:30:45",
        "666-45-6789",  # area 666 is never issued
        "900-12-3456",
        "078-05-1120",  # voided after it was printed in an advertisement
        "QQ 12 34 56 C",  # Q is no prefix letter
        "GB 12 34 56 A",  # GB is an unused prefix
        "GB82WEST12345698765431",  # fails mod 97
        "10.0.0.1",
        "192.168.1.20",
        "127.0.0.1",
        "203.0.113.9",  # documentation range
        "2001:db8::1",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "550e8400-e29b-41d4-a716-446655440000",
    ],
)
def test_value_not_detected(value: str) -> None:
    assert detect_value(value) is None


def test_bare_ssn_needs_header_hint() -> None:
    assert detect_value("123456789") is None
    assert detect_value("123456789", frozenset({PiiKind.SSN})) is PiiKind.SSN


def test_loose_phone_needs_header_hint() -> None:
    assert detect_value("043-797-5229") is None
    assert detect_value("043-797-5229", frozenset({PiiKind.PHONE})) is PiiKind.PHONE


def test_luhn_and_iban_checks() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
    assert is_iban("FR14 2004 1010 0505 0001 3M02 606")
    assert not is_iban("FR14 2004 1010 0505 0001 3M02 607")


def test_text_search_skips_decimal_digits() -> None:
    assert list(find_in_text("score 0.4242424242424242 and 12.5")) == []


def test_text_search_finds_validated_values() -> None:
    found = dict(find_in_text("mail jane.doe@gmail.com, card 4242-4242-4242-4242, v1.2.3.4, call +44 20 7946 0958"))
    assert set(found) == {PiiKind.EMAIL, PiiKind.CARD, PiiKind.PHONE}


@pytest.mark.parametrize(
    ("kind", "value", "masked"),
    [
        (PiiKind.EMAIL, "jane.doe@gmail.com", "j***@g***.com"),
        (PiiKind.CARD, "4242 4242 4242 4242", "**** **** **** 4242"),
        (PiiKind.SSN, "123-45-6789", "***-**-6789"),
        (PiiKind.NINO, "AB 12 34 56 C", "********C"),
        (PiiKind.IBAN, "GB82 WEST 1234 5698 7654 32", "GB****************5432"),
        (PiiKind.PHONE, "+44 20 7946 0958", "+** ** **** **58"),
        (PiiKind.IP, "8.8.4.4", "8.*.*.*"),
        (PiiKind.IP, "2606:4700:4700::1111", "2606:****"),
    ],
)
def test_mask_hides_value(kind: PiiKind, value: str, masked: str) -> None:
    assert mask(kind, value) == masked
    assert value not in mask(kind, value)


def test_header_hints_split_words() -> None:
    assert header_hints("customerEmail") == {PiiKind.EMAIL}
    assert header_hints("E-Mail") == {PiiKind.EMAIL}
    assert header_hints("social_security_number") == {PiiKind.SSN}
    assert header_hints("client_ip") == {PiiKind.IP}
    assert header_hints("shipping") == frozenset()


def test_data_format_by_suffix() -> None:
    assert data_format("data/a.CSV") == "csv"
    assert data_format("data/a.ndjson") == "jsonl"
    assert data_format("data/raw/emails") == "text"
    assert data_format("data/a.xlsx") is None


def test_csv_cells_carry_row_and_line(tmp_path) -> None:
    path = tmp_path / "a.csv"
    path.write_text('id,note\n1,"two\nlines"\n2,plain\n', encoding="utf-8")
    cells = [(cell.row, cell.line, cell.column, cell.value) for cell in read_cells(path, "csv")]
    assert cells == [(1, 2, "id", "1"), (1, 2, "note", "two\nlines"), (2, 4, "id", "2"), (2, 4, "note", "plain")]


def test_csv_without_header(tmp_path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("ann.lee@gmail.com,1\nbo.chan@yahoo.co.uk,2\n", encoding="utf-8")
    (found,) = scan_data_file(path, "csv")
    assert found.column == "column 1"
    assert (found.first_row, found.first_line, found.hits) == (1, 1, 2)


def test_row_limit_bounds_the_sample(tmp_path) -> None:
    path = tmp_path / "a.csv"
    rows = ["id,email"] + [f"{index},user{index}@gmail.com" for index in range(50)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    (found,) = scan_data_file(path, "csv", max_rows=10)
    assert (found.hits, found.values) == (10, 10)


def test_byte_limit_skips_large_json(tmp_path, caplog) -> None:
    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"email": f"user{index}@gmail.com"} for index in range(100)]), encoding="utf-8")
    with caplog.at_level(logging.DEBUG, logger="pytest_aiml.pii"):
        assert scan_data_file(path, "json", max_bytes=200) == []
    assert "larger than 200 bytes" in caplog.text
    assert scan_data_file(path, "json")[0].hits == 100


def test_json_numbers_read_as_text(tmp_path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"card": 4242424242424242, "score": 0.5}\n{"card": 5555555555554444, "score": 1.5}\n', encoding="utf-8")
    (found,) = scan_data_file(path, "jsonl")
    assert (found.column, found.kind) == ("card", PiiKind.CARD)


def test_version_column_holds_no_addresses(tmp_path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("firmware_version,ip\n1.2.3.4,8.8.8.8\n4.3.2.1,1.1.1.1\n", encoding="utf-8")
    assert [(found.column, found.kind) for found in scan_data_file(path, "csv")] == [("ip", PiiKind.IP)]


def test_parquet_without_pyarrow_logs(tmp_path, monkeypatch, caplog) -> None:
    path = tmp_path / "a.parquet"
    path.write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with caplog.at_level(logging.DEBUG, logger="pytest_aiml.pii"):
        assert scan_data_file(path, "parquet") == []
    assert "pyarrow is not installed" in caplog.text


def test_parquet_columns_scanned(tmp_path) -> None:
    pyarrow = pytest.importorskip("pyarrow")
    parquet = pytest.importorskip("pyarrow.parquet")
    table = pyarrow.table({"email": ["ann.lee@gmail.com", "bo.chan@yahoo.co.uk"], "score": [0.1, 0.2]})
    path = tmp_path / "a.parquet"
    parquet.write_table(table, path)
    (found,) = scan_data_file(path, "parquet")
    assert (found.column, found.kind, found.first_line) == ("email", PiiKind.EMAIL, 0)
