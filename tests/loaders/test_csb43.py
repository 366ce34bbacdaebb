"""Norma 43 loader: fixed-width records, signs, accounts, trailer checks."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from recon.errors import InputFileError
from recon.loaders.csb43 import Csb43Loader

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "banks" / "n43" / "two_accounts.n43"


def lines() -> list[str]:
    return FIXTURE.read_bytes().decode("latin-1").splitlines()


def load(tmp_path: Path, records: list[str]):
    path = tmp_path / "s.n43"
    path.write_bytes(("\r\n".join(records) + "\r\n").encode("latin-1"))
    return Csb43Loader().load(path)


def put(record: str, start: int, value: str) -> str:
    """Overwrite columns start.. (0-based) of a fixed-width record."""
    return record[:start] + value + record[start + len(value):]


def test_two_accounts_movements_and_balances() -> None:
    result = Csb43Loader().load(FIXTURE)
    rows = result.frame.to_dicts()
    assert [r["amount"] for r in rows] == [Decimal("250"), Decimal("-75.20"),
                                           Decimal("100")]
    assert [r["line"] for r in rows] == [2, 4, 8]
    first = rows[0]
    assert (first["account"], first["currency"], first["reference"]) == (
        "2100-0418-0200051332", "EUR", "FRA-2026-0001")
    assert "TRANSFERENCIA DE CLIENTE UNO SA" in first["description"]
    assert first["description"].startswith("04 giros")  # common concept named
    assert str(rows[1]["value_date"]) == "2026-03-04"
    one, two = result.statements
    assert (one.opening_balance, one.closing_balance, one.transactions) == (
        Decimal("1500.00"), Decimal("1674.80"), 2)
    assert (two.opening_balance, two.closing_balance) == (Decimal("-100.00"), Decimal("0"))
    assert (str(one.start_date), str(one.end_date)) == ("2026-03-01", "2026-03-31")
    assert all(i.startswith("syn-") for i in result.frame["id"])  # N43 has no ids
    assert result.encoding == "cp1252"


def test_sniff() -> None:
    assert Csb43Loader.sniff(FIXTURE.read_bytes(), Path("extracto.txt")) == 95
    assert Csb43Loader.sniff(b"11 not a header\n", Path("x.txt")) == 0


@pytest.mark.parametrize(("index", "start", "value", "words"), [
    (1, 27, "3", "debit/credit code '3'"),
    (1, 10, "260230", "impossible date '260230'"),
    (1, 30, "12O4", "expected 14 digits"),
    (0, 47, "999", "currency code '999'"),
    (2, 0, "27", "unknown record type '27'"),
])
def test_bad_fields_name_their_line(tmp_path: Path, index: int, start: int, value: str,
                                    words: str) -> None:
    records = lines()
    records[index] = put(records[index], start, value)
    with pytest.raises(InputFileError) as err:
        load(tmp_path, records)
    assert words in err.value.message and err.value.line == index + 1


def test_cut_amount_field_is_refused(tmp_path: Path) -> None:
    records = lines()
    records[1] = records[1][:35]  # a line cut in the middle of the amount
    with pytest.raises(InputFileError, match="expected 14 digits"):
        load(tmp_path, records)


def test_concept_before_movement_is_refused(tmp_path: Path) -> None:
    records = lines()
    records.insert(1, records[2])
    with pytest.raises(InputFileError, match=r"concept record \(23\) without a movement"):
        load(tmp_path, records)


def test_missing_trailer_and_wrong_totals_are_noted(tmp_path: Path) -> None:
    records = lines()
    result = load(tmp_path, records[:5])  # first account without 33, no 88
    assert result.statements[0].closing_balance is None
    assert any("no trailer record (33)" in n for n in result.notes)
    assert any("no end-of-file record (88)" in n for n in result.notes)
    records[5] = put(records[5], 20, "00002")  # trailer claims two debits
    assert any("trailer states 2 debits" in n for n in load(tmp_path, records).notes)
