"""matches.xlsx: the run's outputs as one workbook for people who live in Excel.

One sheet per output (summary, bank reconciliation, matches, exceptions,
discrepancies), frozen header row, number formats on amounts, sensible column
widths, an autofilter.  Text cells are written as text, never as formulas, so
a counterparty named ``=HYPERLINK(...)`` stays a name.  The reviewer can
fill ``decision``/``match_with``/``note`` here and give the workbook to
``recon apply``.
"""

from __future__ import annotations

import os
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import polars as pl
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.worksheet.worksheet import Worksheet

NUMERIC = {
    "left_amount",
    "right_amount",
    "amount_diff",
    "amount",
    "difference",
    "score",
    "best_score",
    "age_days",
    "date_diff_days",
    "line",
}
MONEY = {"left_amount", "right_amount", "amount_diff", "amount", "difference"}
HEADER_FONT = Font(bold=True, color="FFFFFF")
HEADER_FILL = PatternFill("solid", fgColor="1F4E79")
MAX_ROWS = 1_048_575  # Excel's sheet limit, less the header


def write_workbook(path: Path, sheets: dict[str, pl.DataFrame], summary: dict[str, Any]) -> None:
    """Write the workbook atomically (temporary name, then rename)."""
    wb = Workbook(write_only=True)
    _summary_sheet(wb.create_sheet("summary"), summary)
    for name, frame in sheets.items():
        _frame_sheet(wb.create_sheet(name), frame)
    tmp = path.with_name(f".{path.name}.tmp")
    wb.save(tmp)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _summary_sheet(ws: Worksheet, summary: dict[str, Any]) -> None:
    ws.column_dimensions["A"].width = 28
    ws.column_dimensions["B"].width = 60
    rows: list[tuple[str, Any]] = [
        ("run_id", summary.get("run_id")),
        ("as_of", summary.get("as_of")),
        ("finished_at", summary.get("finished_at")),
        ("match_rate", summary.get("match_rate")),
    ]
    rows += [(k, v) for k, v in (summary.get("counts") or {}).items()]
    rows += [(f"rule {k}", v) for k, v in (summary.get("by_rule") or {}).items()]
    rows += [
        (f"exceptions: {k}", v) for k, v in (summary.get("exceptions_by_reason") or {}).items()
    ]
    for key, value in rows:
        ws.append([_text(ws, key), value if isinstance(value, int | float) else _text(ws, value)])


def _frame_sheet(ws: Worksheet, frame: pl.DataFrame) -> None:
    ws.freeze_panes = "A2"
    for i, col in enumerate(frame.columns):
        width = min(60, max(10, len(col) + 2, *(len(v or "") + 1 for v in frame[col].head(200))))
        ws.column_dimensions[_letter(i)].width = width
    header = []
    for col in frame.columns:
        cell = WriteOnlyCell(ws, value=col)
        cell.font, cell.fill = HEADER_FONT, HEADER_FILL
        cell.alignment = Alignment(vertical="center")
        header.append(cell)
    ws.append(header)
    for row in frame.head(MAX_ROWS).iter_rows():
        ws.append([_cell(ws, col, v) for col, v in zip(frame.columns, row, strict=True)])
    if frame.height:
        ws.auto_filter.ref = f"A1:{_letter(len(frame.columns) - 1)}{frame.height + 1}"


def _cell(ws: Worksheet, col: str, value: str | None) -> Any:
    if value is None or value == "":
        return None
    if col in NUMERIC:
        try:
            number = Decimal(value)
        except InvalidOperation:
            return _text(ws, value)
        if col not in MONEY:
            return int(number) if number == number.to_integral() else float(number)
        cell = WriteOnlyCell(ws, value=float(number))  # Excel cells are doubles; the CSV is exact
        cell.number_format = "#,##0.00;[Red]-#,##0.00"
        return cell
    text = value[1:] if value.startswith("'") else value
    # plain text is written as is (fast); only what would read as a formula needs a typed cell
    return _text(ws, text) if text[:1] in _FORMULA_START else text


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _text(ws: Worksheet, value: Any) -> WriteOnlyCell:
    """A cell that is text, never a formula, whatever it starts with."""
    cell = WriteOnlyCell(ws, value=None if value is None else str(value))
    cell.data_type = "s"
    return cell


def _letter(i: int) -> str:
    from openpyxl.utils import get_column_letter

    return str(get_column_letter(i + 1))
