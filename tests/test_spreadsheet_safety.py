"""Outputs are safe to open: no text cell of any CSV or of matches.xlsx can run as a
formula (leading = + - @ tab or CR), while real numbers, negative amounts included,
stay numbers.  The month below is built from formula payloads and goes through the
real pipeline."""

from __future__ import annotations

import csv
import re
import zipfile
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from .conftest import RULES

DANGER = ("=", "+", "-", "@", "\t", "\r")
NUMBER = re.compile(r"-?\d+(\.\d+)?")
#: columns that hold numbers; every other column is text
NUMERIC = {"left_amount", "right_amount", "amount_diff", "amount", "difference", "score",
           "best_score", "age_days", "date_diff_days", "line", "rows", "new_rows"}
PAYLOADS = ['=HYPERLINK("http://x","click")', "+1", "-2+3", "@SUM(A1)", "\tTAB",
            "\rCR", "=cmd|' /C calc'!A0", "-", "+INV-2026-00001", "=1+1"]

BANK = ["id", "date", "amount", "currency", "counterparty", "reference", "description",
        "account"]
LEDGER = ["id", "date", "amount", "currency", "counterparty", "reference", "description"]


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_ALL)
        w.writerow(header)
        w.writerows(rows)
    return path


def _month(tmp: Path) -> tuple[Path, Path]:
    bank, ledger = [], []
    for i, p in enumerate(PAYLOADS):
        amount = f"{'-' if i % 2 else ''}{100 + i}.{i:02d}"
        day = f"2026-03-{i + 2:02d}"
        bank.append([f"{p}B{i}", day, amount, "EUR", p, p, f"{p} description", f"=ACC{i % 2}"])
        if i % 3 != 2:  # two in three are matched, the rest stay exceptions
            ledger.append([f"{p}L{i}", day, amount, "EUR", p, p, f"{p} booked"])
        else:
            ledger.append([f"{p}X{i}", day, f"-{i + 7}.77", "EUR", p, "", "@odd"])
    ledger.append(["-99", "2026-03-20", "-1234.56", "EUR", "-5", "=2*3", "+ledger only"])
    # the file name shows in exceptions.csv's `file` column
    return (_write(tmp / "bank.csv", BANK, bank), _write(tmp / "=ledger.csv", LEDGER, ledger))


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    from recon.cli import run_cli

    tmp = tmp_path_factory.mktemp("formulas")
    bank, ledger = _month(tmp)
    code = run_cli(["-q", "run", "--rules", str(RULES), "--bank", str(bank), "--ledger",
                    str(ledger), "--db", str(tmp / "r.duckdb"), "--out", str(tmp / "out"),
                    "--as-of", "2026-03-31"])
    assert code == 0
    return tmp / "out"


def _csv_cells(path: Path) -> list[tuple[int, str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        return [(i, col, v) for i, row in enumerate(reader, start=2)
                for col, v in row.items() if v]


def test_the_payloads_reached_the_outputs(out) -> None:
    text = "".join(p.read_text(encoding="utf-8") for p in out.glob("*.csv"))
    for needle in ("HYPERLINK", "SUM(A1)", "-2+3", "=2*3", "+ledger only", "ACC0", "=ledger"):
        assert needle in text, needle


#: (file, column) written without neutralising, routed to the lead (see the xfail below)
KNOWN_UNSAFE = {("bank_reconciliation.csv", "account"), ("exceptions.csv", "file")}


def _unsafe_cells(out: Path) -> list[tuple[str, str, str]]:
    bad = []
    for path in sorted(out.glob("*.csv")):
        for line, col, value in _csv_cells(path):
            if not value.startswith(DANGER):
                continue
            if col in NUMERIC and NUMBER.fullmatch(value):
                continue  # a real (negative) number
            bad.append((path.name, col, f"{path.name} line {line} column {col}: {value!r}"))
    return bad


def test_no_csv_cell_can_run_as_a_formula(out) -> None:
    names = {p.name for p in out.glob("*.csv")}
    assert {"matches.csv", "exceptions.csv", "discrepancies.csv", "changes.csv"} <= names
    bad = [text for name, col, text in _unsafe_cells(out) if (name, col) not in KNOWN_UNSAFE]
    assert not bad, "cells a spreadsheet would run:\n" + "\n".join(bad)


def test_account_and_file_name_cells_are_neutralised_too(out) -> None:
    bad = [text for name, col, text in _unsafe_cells(out) if (name, col) in KNOWN_UNSAFE]
    assert not bad, "cells a spreadsheet would run:\n" + "\n".join(bad)


def test_negative_amounts_stay_numbers_in_csv(out) -> None:
    amounts = [v for _, col, v in _csv_cells(out / "exceptions.csv") if col == "amount"]
    assert any(v.startswith("-") for v in amounts)
    assert all(NUMBER.fullmatch(v) for v in amounts), amounts
    for _, col, v in _csv_cells(out / "matches.csv"):
        if col in ("left_amount", "right_amount", "amount_diff"):
            assert NUMBER.fullmatch(v), (col, v)
            Decimal(v)


def test_no_xlsx_cell_is_a_formula_and_amounts_are_numbers(out) -> None:
    path = out / "matches.xlsx"
    with zipfile.ZipFile(path) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                xml = z.read(name).decode("utf-8")
                assert "<f>" not in xml and "<f " not in xml, f"{name} holds a formula"
                assert 't="str"' not in xml, f"{name} holds a formula result"
    wb = openpyxl.load_workbook(path)
    bad, negative = [], 0
    for ws in wb.worksheets:
        header = [c.value for c in ws[1]]
        for row in ws.iter_rows(min_row=2):
            for col, cell in zip(header, row, strict=False):
                if cell.value is None:
                    continue
                if cell.data_type == "f":
                    bad.append(f"{ws.title}!{cell.coordinate}: formula {cell.value!r}")
                elif (col in NUMERIC and ws.title not in ("summary", "bank_reconciliation")) or (
                        col == "amount" and ws.title == "bank_reconciliation"):
                    if not isinstance(cell.value, int | float):
                        bad.append(f"{ws.title}!{cell.coordinate}: number stored as text "
                                   f"{cell.value!r}")
                    negative += isinstance(cell.value, int | float) and cell.value < 0
                elif isinstance(cell.value, str) and cell.value.startswith(DANGER):
                    assert cell.data_type == "s", (ws.title, cell.coordinate)
    assert not bad, "\n".join(bad)
    assert negative > 0
