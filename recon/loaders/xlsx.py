"""Excel workbooks (.xlsx): bank exports via a profile, ledger exports with canonical names.

openpyxl reads the sheet in read-only mode.  Typed cells are turned into the
text the profile expects (dates in its date format, numbers with its decimal
mark) so they go through the same parsing, and the same error messages, as CSV.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Sequence
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from recon.errors import InputFileError
from recon.loaders.base import Loader, LoadResult
from recon.loaders.csv import footer_start, rows_from_cells, to_canonical
from recon.loaders.profiles import Layout, Profile, find_layout, resolve_profile, widen
from recon.normalise import DATE_FORMATS

HEADER_ROWS = 100  # rows searched for the header
_FLOAT_NOISE = Decimal("1e-9")


def _header_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime | date):
        return value.isoformat()[:10]
    return str(value)


def _number_text(value: float | int | Decimal) -> str:
    """Exact text of a numeric cell; binary noise of formula results is rounded away."""
    if isinstance(value, float):
        d = Decimal(repr(value))
        cents = d.quantize(Decimal("0.0001"))
        d = cents if d != cents and abs(d - cents) < _FLOAT_NOISE else d
    else:
        d = Decimal(value)
    return format(d, "f")


def cell_text(value: Any, strf: str, decimal: str) -> str | None:
    """One cell as the text a CSV export of the same sheet would hold."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, datetime | date):
        return value.strftime(strf)
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, float | int | Decimal):
        text = _number_text(value)
        return text.replace(".", decimal) if decimal != "." else text
    return str(value)


def _formats(layout: Layout) -> dict[str, str]:
    """Date format (strftime) per source column: value dates may have their own."""
    p = layout.profile
    out = {}
    for fld, cols in layout.columns.items():
        fmts = p.value_date_format if fld in ("value_date", "due_date") else None
        out.update(dict.fromkeys(cols, DATE_FORMATS.get((fmts or p.date_format)[0],
                                                        (fmts or p.date_format)[0])))
    return out


def _data_cells(rows: Sequence[Sequence[Any]], layout: Layout, path: Path,
                notes: list[str]) -> list[list[str | None]]:
    """The data rows' cells as text, without the footer (the CSV loader's rules)."""
    p = layout.profile
    default = DATE_FORMATS.get(p.date_format[0], p.date_format[0])
    per_column = _formats(layout)
    strfs = [per_column.get(n, default) for n in layout.names]
    cells = [[cell_text(v, strfs[i] if i < len(strfs) else default, p.decimal)
              for i, v in enumerate(row)] for row in rows[layout.data_row:]]
    if p.footer_lines:
        filled = [i for i, row in enumerate(cells) if any(v not in (None, "") for v in row)]
        last = filled[-p.footer_lines:]
        tail = [cells[i] for i in last]
        at = footer_start([p.delimiter.join(v or "" for v in row) for row in tail], tail,
                          layout, path, lambda k: layout.data_row + 1 + last[k], notes)
        if at is not None and last:
            del cells[last[at]:]
    return cells


def _open(path: Path) -> Any:
    import openpyxl  # lazy: only workbooks need it
    from openpyxl.utils.exceptions import InvalidFileException

    try:
        # from bytes, not the path: openpyxl refuses a workbook whose name does not
        # end in .xlsx (an .xlsx saved as .xls); the size limit was checked before
        data = io.BytesIO(path.read_bytes())
        return openpyxl.load_workbook(data, read_only=True, data_only=True)
    # zipfile raises RuntimeError for an entry marked encrypted, NotImplementedError
    # for an unknown compression method
    except (OSError, zipfile.BadZipFile, zlib.error, InvalidFileException, KeyError, ValueError,
            TypeError, EOFError, RuntimeError, NotImplementedError) as exc:
        raise InputFileError(path, f"cannot open as an Excel .xlsx workbook: {exc}",
                             hint="old .xls files must be saved as .xlsx or CSV first") from exc


def _sheets(workbook: Any, profile: Profile | None, path: Path) -> list[Any]:
    names = list(workbook.sheetnames)
    if profile is None or profile.sheet is None:
        return [workbook[n] for n in names]
    if isinstance(profile.sheet, int):
        if 0 <= profile.sheet < len(names):
            return [workbook[names[profile.sheet]]]
    elif profile.sheet in names:
        return [workbook[profile.sheet]]
    raise InputFileError(path, f"no sheet {profile.sheet!r} (profile {profile.name}); "
                         f"sheets: {', '.join(repr(n) for n in names)}", field="sheet")


def _read(sheet: Any) -> list[tuple[Any, ...]]:
    sheet.reset_dimensions()  # some exporters write a wrong <dimension>; read what is there
    try:
        return list(sheet.iter_rows(values_only=True))
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError, RuntimeError,
            NotImplementedError) as exc:
        # read-only mode inflates lazily: a damaged sheet shows up here, not on open
        raise InputFileError(
            sheet.parent.path if hasattr(sheet.parent, "path") else "workbook",
            f"sheet {sheet.title!r} is damaged: {exc}",
            hint="open and save the workbook again, or export CSV",
        ) from exc


def _layout(sheets: list[Any], path: Path, forced: Profile | None
            ) -> tuple[Any, list[tuple[Any, ...]], Layout]:
    first_error: InputFileError | None = None
    for sheet in sheets:
        rows = _read(sheet)
        head = [[_header_text(v) for v in row] for row in rows[:HEADER_ROWS]]

        def rows_for(_profile: Profile, head: list[list[str]] = head) -> list[list[str]]:
            return head  # cells need no splitting: the same rows for every profile

        try:
            layout = find_layout(rows_for, path, candidates=[forced] if forced else None,
                                 forced=bool(forced))
        except InputFileError as exc:
            first_error = first_error or exc
            continue
        return sheet, rows, layout
    raise first_error or InputFileError(path, "the workbook has no sheets")


class XlsxLoader(Loader):
    """Excel .xlsx statements and ledger exports."""

    format: ClassVar[str] = "xlsx"
    extensions: ClassVar[tuple[str, ...]] = (".xlsx", ".xlsm")

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        """95 for a zip holding xl/ (an OOXML workbook), else 0."""
        if not head.startswith(b"PK\x03\x04"):
            return 0
        if b"xl/" in head:
            return 95
        try:
            with zipfile.ZipFile(path) as archive:
                return 95 if any(n.startswith("xl/") for n in archive.namelist()) else 0
        except (OSError, zipfile.BadZipFile):
            return 0

    def load(self, path: Path, *, profile: str | None = None) -> LoadResult:
        """Find the sheet and header row, then map rows like a CSV export."""
        forced = resolve_profile(profile) if profile else None
        workbook = _open(path)
        try:
            sheet, rows, layout = _layout(_sheets(workbook, forced, path), path, forced)
        finally:
            workbook.close()
        layout = widen(layout, max((len(r) for r in rows[layout.data_row:]), default=0))
        footer: list[str] = []
        cells = _data_cells(rows, layout, path, footer)
        frame = rows_from_cells(cells, layout, first_line=layout.data_row + 1)
        mapped = to_canonical(frame, layout, path, undated_balances=self.undated_balances)
        notes = [f"sheet {sheet.title!r}", layout.reason, *footer, *mapped.notes]
        return LoadResult(path=path, format=self.format, frame=mapped.frame,
                          statements=mapped.statements, profile=layout.profile.name,
                          notes=notes)
