"""XLSX and Parquet loaders: canonical ledger exports, typed cells, profiles, sniffing."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from recon.errors import InputFileError
from recon.loaders import CANONICAL_SCHEMA, detect_format
from recon.loaders.parquet import ParquetLoader
from recon.loaders.xlsx import XlsxLoader, cell_text

CANON = ["id", "date", "amount", "currency", "counterparty", "reference", "description"]
D = Decimal


def workbook(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, rows in sheets.items():
        ws = wb.create_sheet(title)
        for row in rows:
            ws.append(row)
    wb.save(path)
    return path


# --- XLSX ---------------------------------------------------------------------


def test_xlsx_canonical_ledger_with_typed_cells(tmp_path):
    path = workbook(tmp_path / "ledger.xlsx", {"Ledger": [
        ["Ledger export March"], [],
        [*CANON, "due_date", "customer_id"],
        ["L-1", datetime(2026, 3, 1), 1234.56, "EUR", "Globex", "INV-1", "Invoice 1",
         date(2026, 3, 31), "C-1"],
        [2, date(2026, 3, 2), -0.1 - 0.2, "EUR", "Initech", None, "noise", None, None],
        ["L-3", "2026-03-03", 10, "EUR", "Umbrella", "INV-3", None, None, 17],
    ]})
    result = XlsxLoader().load(path)
    frame = result.frame
    assert frame.schema == pl.Schema(CANONICAL_SCHEMA)
    assert frame["amount"].to_list() == [D("1234.56"), D("-0.3"), D("10")]
    assert frame["date"].to_list() == [date(2026, 3, 1), date(2026, 3, 2), date(2026, 3, 3)]
    assert frame["id"].to_list() == ["L-1", "2", "L-3"]
    assert frame["line"].to_list() == [4, 5, 6]  # sheet rows, title rows counted
    assert frame["due_date"][0] == date(2026, 3, 31) and frame["customer_id"][2] == "17"
    assert result.profile == "canonical" and result.format == "xlsx"
    assert result.notes[0] == "sheet 'Ledger'"


def test_xlsx_sub_cent_float_is_reported_not_rounded(tmp_path):
    path = workbook(tmp_path / "x.xlsx", {"S": [CANON, ["a", "2026-03-01", 1.23456, "EUR",
                                                        "x", "y", "z"]]})
    with pytest.raises(InputFileError) as info:
        XlsxLoader().load(path)
    assert info.value.line == 2 and "'1.23456'" in str(info.value)


def test_xlsx_bad_date_names_the_sheet_row(tmp_path):
    path = workbook(tmp_path / "x.xlsx", {"S": [[], CANON, ["a", "2026-02-30", 1, "EUR",
                                                            "x", "y", "z"]]})
    with pytest.raises(InputFileError) as info:
        XlsxLoader().load(path)
    assert info.value.line == 3 and "'2026-02-30'" in str(info.value)


def test_xlsx_profile_sheet_option_and_header_offset(tmp_path):
    path = workbook(tmp_path / "bank.xlsx", {
        "Info": [["Account", "ES12"]],
        "Data": [["Movements"], [], ["Booked", "Value", "Text"],
                 [date(2026, 3, 1), 100, "in"], [date(2026, 3, 2), -40.5, "out"],
                 ["Total", 59.5, None]],
    })
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\nsheet: Data\ndecimal: ','\ndate_format: DD.MM.YYYY\n"
                       "footer_lines: 1\ncolumns: {date: Booked, amount: Value, "
                       "description: Text}\ncurrency: EUR\n")
    result = XlsxLoader().load(path, profile=str(profile))
    assert result.frame["amount"].to_list() == [D("100"), D("-40.5")]
    assert result.frame["line"].to_list() == [4, 5]
    assert result.notes[0] == "sheet 'Data'"
    profile.write_text(profile.read_text().replace("sheet: Data", "sheet: Daten"))
    with pytest.raises(InputFileError, match=r"no sheet 'Daten'.*'Info', 'Data'"):
        XlsxLoader().load(path, profile=str(profile))


def test_xlsx_footer_is_checked_as_in_a_csv(tmp_path):
    # footer_lines dropped the last row whatever it was: a month's export without its
    # total row lost its last transaction.
    data = [["Booked", "Value", "Text"], [date(2026, 3, 1), 100, "in"],
            [date(2026, 3, 2), -40.5, "out"]]
    path = workbook(tmp_path / "bank.xlsx", {"Data": data})
    profile = tmp_path / "p.yaml"
    profile.write_text("name: p\ndate_format: DD.MM.YYYY\nfooter_lines: 1\ncolumns: "
                       "{date: Booked, amount: Value, description: Text}\ncurrency: EUR\n")
    with pytest.raises(InputFileError) as info:
        XlsxLoader().load(path, profile=str(profile))
    assert info.value.line == 3 and "reads as a transaction" in info.value.message
    assert "footer_line" in (info.value.hint or "")
    profile.write_text(profile.read_text() + "footer_line: '^Total'\n")
    result = XlsxLoader().load(path, profile=str(profile))
    assert result.frame["amount"].to_list() == [D("100"), D("-40.5")]
    assert any("no footer" in n for n in result.notes)
    workbook(path, {"Data": [*data, [], ["Total", 59.5, None], [None, None, None]]})
    result = XlsxLoader().load(path, profile=str(profile))
    assert result.frame["amount"].to_list() == [D("100"), D("-40.5")]
    assert "dropped the last 1 line(s) (footer)" in result.notes


def test_xlsx_detection_tries_every_sheet(tmp_path):
    path = workbook(tmp_path / "two.xlsx", {"Cover": [["Report"]],
                                            "Rows": [CANON, ["a", "2026-03-01", 5, "EUR",
                                                             "x", "y", "z"]]})
    result = XlsxLoader().load(path)
    assert result.notes[0] == "sheet 'Rows'" and result.frame.height == 1


def test_xlsx_not_a_workbook(tmp_path):
    path = tmp_path / "fake.xlsx"
    path.write_text("id,date\n")
    with pytest.raises(InputFileError, match=r"cannot open as an Excel \.xlsx workbook"):
        XlsxLoader().load(path)


def test_xlsx_with_an_entry_marked_encrypted_is_refused():
    """A bank workbook mutated by the fuzz test so that a zip entry is flagged encrypted:
    zipfile raises RuntimeError, and the loader refuses the file naming it."""
    path = Path(__file__).parents[1] / "fixtures" / "hostile" / "xlsx_entry_marked_encrypted.xlsx"
    with pytest.raises(InputFileError, match=r"cannot open as an Excel \.xlsx workbook"):
        XlsxLoader().load(path)


@pytest.mark.parametrize(("value", "decimal", "expected"), [
    (1234.5, ",", "1234,5"), (0.1 + 0.2, ".", "0.3000"), (1e16, ".", "10000000000000000"),
    (7, ".", "7"), (D("2.50"), ",", "2,50"), (datetime(2026, 3, 1, 12), ".", "01.03.2026"),
    (None, ".", None), (" text ", ".", " text "), (True, ".", "TRUE"),
])
def test_cell_text(value, decimal, expected):
    assert cell_text(value, "%d.%m.%Y", decimal) == expected


def test_xlsx_sniff(tmp_path):
    path = workbook(tmp_path / "x.xlsx", {"S": [CANON]})
    head = path.read_bytes()[:65536]
    assert XlsxLoader.sniff(head, path) == 95
    assert XlsxLoader.sniff(b"id,date\n", path) == 0
    assert detect_format(path)[0] == "xlsx"


# --- Parquet ------------------------------------------------------------------


def ledger_frame() -> pl.DataFrame:
    return pl.DataFrame({
        "id": [101, 102],
        "date": [date(2026, 3, 1), date(2026, 3, 2)],
        "amount": pl.Series([D("250.00"), D("-19.99")], dtype=pl.Decimal(12, 2)),
        "currency": ["EUR", "EUR"],
        "counterparty": ["Globex", "Initech"],
        "reference": ["INV-7", None],
        "description": ["receipt", "fee"],
        "due_date": [datetime(2026, 3, 31, 0, 0), None],
        "doc_type": pl.Series(["invoice", "fee"], dtype=pl.Categorical),
    })


def test_parquet_canonical_ledger(tmp_path):
    path = tmp_path / "ledger.parquet"
    ledger_frame().write_parquet(path)
    result = ParquetLoader().load(path)
    frame = result.frame
    assert frame.schema == pl.Schema(CANONICAL_SCHEMA)
    assert frame["id"].to_list() == ["101", "102"]
    assert frame["amount"].to_list() == [D("250.00"), D("-19.99")]
    assert frame["due_date"].to_list() == [date(2026, 3, 31), None]
    assert frame["doc_type"].to_list() == ["invoice", "fee"]
    assert frame["line"].to_list() == [1, 2]
    assert (result.format, result.profile, result.encoding) == ("parquet", "canonical", None)


def test_parquet_float_amounts_exact_or_reported(tmp_path):
    path = tmp_path / "f.parquet"
    ledger_frame().with_columns(pl.Series("amount", [0.1 + 0.2, -19.99])).write_parquet(path)
    assert ParquetLoader().load(path).frame["amount"].to_list() == [D("0.3"), D("-19.99")]
    ledger_frame().with_columns(pl.Series("amount", [0.123456, 1.0])).write_parquet(path)
    with pytest.raises(InputFileError) as info:
        ParquetLoader().load(path)
    assert info.value.line == 1 and "amount" in str(info.value)


def test_parquet_with_a_profile(tmp_path):
    path = tmp_path / "revolut.parquet"
    pl.DataFrame({
        "Type": ["TOPUP"], "Product": ["Current"],
        "Started Date": [datetime(2024, 3, 1, 9, 12)], "Completed Date": [None],
        "Description": ["Top-Up"], "Amount": [500.0], "Fee": [0.0], "Currency": ["GBP"],
        "State": ["COMPLETED"], "Balance": [500.0],
    }).write_parquet(path)
    result = ParquetLoader().load(path)
    assert result.profile == "revolut"
    row = result.frame.row(0, named=True)
    assert (row["date"], row["amount"], row["currency"]) == (date(2024, 3, 1), D("500"), "GBP")


def test_parquet_missing_column(tmp_path):
    path = tmp_path / "m.parquet"
    ledger_frame().drop("currency").write_parquet(path)
    with pytest.raises(InputFileError, match="missing column 'currency'"):
        ParquetLoader().load(path)


def test_parquet_corrupt_and_sniff(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"PAR1 not really")
    assert ParquetLoader.sniff(path.read_bytes(), path) == 95
    assert ParquetLoader.sniff(b"id,date\n", path) == 0
    with pytest.raises(InputFileError, match="cannot read as Parquet"):
        ParquetLoader().load(path)
