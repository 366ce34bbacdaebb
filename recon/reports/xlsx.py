"""matches.xlsx: the run's outputs as one workbook for people who live in Excel.

One sheet per output (summary, bank reconciliation, matches, exceptions,
discrepancies), frozen header row, number formats on amounts, sensible column
widths, an autofilter.  Text cells are written as text, never as formulas, so
a counterparty named ``=HYPERLINK(...)`` stays a name.  The reviewer can
fill ``decision``/``match_with``/``note`` here and give the workbook to
``recon apply``.

Written with xlsxwriter in constant-memory mode: rows go to disk as they are
written, so memory stays flat whatever the row count.  The per-cell work is
kept small: numbers are parsed by polars a column at a time, each column gets
its writer once, and the loop only hands values to xlsxwriter.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from typing import Any

import polars as pl
import xlsxwriter

from recon.reports.csvout import unguard

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


def money_format(places: int) -> str:
    """The number format of an amount with `places` decimals, negatives in red."""
    number = "#,##0" + ("." + "0" * places if places else "")
    return f"{number};[Red]-{number}"


#: an amount of a two-decimal currency; the CSV gives JPY 0 decimals and KWD 3, and each
#: cell shows the decimals of its CSV text (its currency's minor units)
MONEY_FORMAT = money_format(2)
HEADER_FORMAT = {
    "bold": True,
    "font_color": "#FFFFFF",
    "bg_color": "#1F4E79",
    "pattern": 1,
    "valign": "vcenter",
}
MAX_ROWS = 1_048_575  # Excel's sheet limit, less the header
#: every text cell goes through write_string: no formulas, numbers or links guessed from text
OPTIONS = {
    "constant_memory": True,
    "strings_to_formulas": False,
    "strings_to_numbers": False,
    "strings_to_urls": False,
}
_MAX_CHARS = 32_767  # Excel's limit on a cell's text, in UTF-16 units
_CHUNK = 16_384  # rows turned into Python values at a time: memory stays flat

Writer = Callable[[int, int, Any], Any]


def write_workbook(path: Path, sheets: dict[str, pl.DataFrame], summary: dict[str, Any]) -> None:
    """Write the workbook atomically (temporary name, then rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    wb = xlsxwriter.Workbook(str(tmp), OPTIONS)
    try:
        fmt = _Formats(wb)
        _summary_sheet(wb.add_worksheet("summary"), summary, fmt)
        for name, frame in sheets.items():
            _frame_sheet(wb.add_worksheet(name), frame, fmt)
        wb.close()
    except BaseException:
        if not wb.fileclosed:
            with contextlib.suppress(Exception):
                wb.close()  # removes the sheets' temporary row files
        tmp.unlink(missing_ok=True)
        raise
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class _Formats:
    """The workbook's cell formats, created once (a format per cell would be slow)."""

    def __init__(self, wb: Any) -> None:
        self.header = wb.add_format(HEADER_FORMAT)
        self.plain = wb.add_format()  # the font of a text run in a guarded cell
        self._wb = wb
        self._money: dict[int, Any] = {}

    def money(self, places: int) -> Any:
        """The format of an amount with `places` decimals."""
        if places not in self._money:
            self._money[places] = self._wb.add_format({"num_format": money_format(places)})
        return self._money[places]


def _summary_sheet(ws: Any, summary: dict[str, Any], fmt: _Formats) -> None:
    _set_width(ws, 0, 28)
    _set_width(ws, 1, 60)
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
    for r, (key, value) in enumerate(rows):
        _write_text(ws, r, 0, str(key), fmt)
        if isinstance(value, bool):
            ws.write_boolean(r, 1, value)
        elif isinstance(value, int | float) and math.isfinite(value):
            ws.write_number(r, 1, value)
        elif value is not None:
            _write_text(ws, r, 1, str(value), fmt)


def _frame_sheet(ws: Any, frame: pl.DataFrame, fmt: _Formats) -> None:
    ws.freeze_panes(1, 0)
    for i, col in enumerate(frame.columns):
        head = frame[col].cast(pl.String).head(200)
        width = min(60, max(10, len(col) + 2, *(len(v or "") + 1 for v in head)))
        _set_width(ws, i, width)
    for i, col in enumerate(frame.columns):
        _write_text(ws, 0, i, col, fmt, fmt.header)
    body = frame.head(MAX_ROWS)
    order = range(body.width)
    for start in range(0, body.height, _CHUNK):
        part = body.slice(start, _CHUNK)
        columns, writers = [], []
        for col in part.columns:
            values, writer = _column(ws, col, part.get_column(col), fmt)
            columns.append(values)
            writers.append(writer)
        for r, row in enumerate(zip(*columns, strict=True), start=start + 1):
            for c, write, value in zip(order, writers, row, strict=True):
                if value is not None:
                    write(r, c, value)
    if body.height and body.width:
        ws.autofilter(0, 0, body.height, body.width - 1)


def _column(ws: Any, col: str, series: pl.Series, fmt: _Formats) -> tuple[list[Any], Writer]:
    """The cells of (a slice of) a column, None for a blank one, and their writer."""
    raw = series.cast(pl.String)
    if col in NUMERIC:
        return _numbers(ws, col, raw, fmt)
    # the CSV writer's formula guard (a leading apostrophe) is not needed in a text cell
    text = pl.select(unguard(pl.lit(raw))).to_series()
    text = pl.select(pl.when(text != "").then(text)).to_series()
    if (text.str.starts_with("<r>") & text.str.ends_with("</r>")).any():
        return text.to_list(), partial(_write_text, ws, fmt=fmt)
    return text.to_list(), ws.write_string


def _numbers(ws: Any, col: str, raw: pl.Series, fmt: _Formats) -> tuple[list[Any], Writer]:
    """The cells of a numeric column: numbers, or text where a cell holds none.

    An amount shows the decimals of its CSV text, its currency's minor units (JPY 0,
    KWD 3); a column of several currencies' units gets a format per cell.
    """
    numbers = raw.cast(pl.Float64, strict=False)
    values: list[Any] = numbers.to_list()
    places = _places(raw) if col in MONEY else pl.Series([], dtype=pl.Int64)
    kinds = places.unique().to_list()
    per_cell = len(kinds) > 1
    write_number: Writer = ws.write_number
    if per_cell:  # (number, format) pairs
        formats = [fmt.money(p) for p in places.to_list()]
        values = [v if v is None else (v, f) for v, f in zip(values, formats, strict=True)]

        def write_number(r: int, c: int, v: tuple[float, Any]) -> Any:
            return ws.write_number(r, c, v[0], v[1])
    elif col in MONEY:
        write_number = partial(ws.write_number, cell_format=fmt.money(kinds[0] if kinds else 2))
    # polars reads the CSV's plain decimals; anything else it did not read as a finite
    # number (bar "", a blank) is read again as Decimal reads it ("1_000", " 12");
    # what is still no finite number is written as text ("n/a", "Infinity")
    odd = ((raw != "") & numbers.is_finite().not_().fill_null(True)).fill_null(False)
    if not odd.any():
        return values, write_number
    for i, v in zip(odd.arg_true().to_list(), raw.filter(odd).to_list(), strict=True):
        number = _number_or_text(v)
        per = per_cell and isinstance(number, float)
        values[i] = (number, fmt.money(places[i])) if per else number

    def write_mixed(r: int, c: int, v: Any) -> None:
        if isinstance(v, str):
            _write_text(ws, r, c, v, fmt)
        else:
            write_number(r, c, v)

    return values, write_mixed


def _places(raw: pl.Series) -> pl.Series:
    """Decimals of each amount text (`-1234.500` 3, `1000` 0), 0 for a blank."""
    digits = raw.str.extract(r"\.([0-9]+)$", 1).str.len_chars()
    return digits.fill_null(0).cast(pl.Int64)


def _number_or_text(value: str) -> float | str:
    """A number as Decimal reads it, if Excel can hold it; else the text as it is."""
    try:
        number = float(Decimal(value))  # Excel cells are doubles; the CSV is exact
    except InvalidOperation:
        return value
    return number if math.isfinite(number) else value


def _write_text(ws: Any, r: int, c: int, text: str, fmt: _Formats, cell_format: Any = None) -> None:
    """A cell that is text, never a formula, whatever it starts with.

    In constant-memory mode xlsxwriter copies a string shaped like ``<r>...</r>``
    into the XML as a rich-text run, unescaped; such a string is written as a
    two-run rich string instead, so it stays text and the file stays valid.
    """
    if text.startswith("<r>") and text.endswith("</r>"):
        text = _clip(text)
        if text.endswith("</r>"):
            if cell_format is None:
                ws.write_rich_string(r, c, text[0], fmt.plain, text[1:])
            else:
                ws.write_rich_string(r, c, text[0], cell_format, text[1:], cell_format)
            return
    ws.write_string(r, c, text, cell_format)


def _clip(text: str) -> str:
    """`text` cut to what an Excel cell holds (write_string does this itself)."""
    if len(text) <= _MAX_CHARS // 2:
        return text
    units = text.encode("utf-16-le", "surrogatepass")[: 2 * _MAX_CHARS]
    return units.decode("utf-16-le", "ignore")


def _set_width(ws: Any, col: int, width: int) -> None:
    """Column width `width` as stored in the file (set_column would add Excel's padding)."""
    ws.set_column_pixels(col, col, 7 * width)
