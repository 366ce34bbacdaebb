"""Parquet files: ledger exports with canonical column names, or any layout via a profile.

Typed columns are used as they are: dates and datetimes, Decimal or integer
amounts.  Floating-point amounts are accepted when they are whole cents up
to binary noise; anything else is reported rather than rounded.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import polars as pl

from recon.errors import InputFileError
from recon.loaders.base import Loader, LoadResult
from recon.loaders.csv import to_canonical
from recon.loaders.profiles import Layout, find_layout, resolve_profile
from recon.normalise import DATE_FORMATS

_FLOAT_NOISE = 1e-9


def _float_text(col: pl.Series) -> pl.Series:
    rounded = col.round(4)
    if ((col - rounded).abs().fill_null(0) < _FLOAT_NOISE).all():
        col = rounded  # 0.30000000000000004 -> 0.3
    return col.cast(pl.String)


def column_text(col: pl.Series, strf: str, decimal: str) -> pl.Series:
    """A typed column as the text the profile's parsing expects."""
    dtype = col.dtype
    if dtype == pl.String:
        return col
    if dtype in (pl.Date, pl.Datetime) or isinstance(dtype, pl.Datetime):
        return col.dt.strftime(strf)
    if dtype.is_float():
        text = _float_text(col)
    elif dtype.is_numeric():
        text = col.cast(pl.String)
    else:
        return col.cast(pl.String)
    return text.str.replace(".", decimal, literal=True) if decimal != "." else text


def _text_frame(frame: pl.DataFrame, layout: Layout, path: Path) -> pl.DataFrame:
    p = layout.profile
    out = {}
    for fld, cols in layout.columns.items():
        fmts = p.value_date_format if fld in ("value_date", "due_date") else None
        fmt = (fmts or p.date_format)[0]
        for name in cols:
            try:
                out[name] = column_text(frame[name], DATE_FORMATS.get(fmt, fmt), p.decimal)
            except pl.exceptions.PolarsError as exc:
                raise InputFileError(path, f"column {name!r} has type {frame[name].dtype}; "
                                     "expected text, a number or a date",
                                     field=name) from exc
    lines = pl.int_range(1, frame.height + 1, dtype=pl.Int64, eager=True)
    return pl.DataFrame(out).with_columns(lines.alias("line")) if out else pl.DataFrame(
        {"line": lines})


class ParquetLoader(Loader):
    """Parquet ledger exports (and statements converted to Parquet)."""

    format: ClassVar[str] = "parquet"
    extensions: ClassVar[tuple[str, ...]] = (".parquet", ".pq")

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        """95 for the PAR1 magic number, else 0."""
        return 95 if head[:4] == b"PAR1" else 0

    def load(self, path: Path, *, profile: str | None = None) -> LoadResult:
        """Read with polars, match the column names to a profile, map to canonical rows."""
        forced = resolve_profile(profile) if profile else None
        try:
            frame = pl.read_parquet(path)
        except (OSError, pl.exceptions.PolarsError) as exc:
            raise InputFileError(path, f"cannot read as Parquet: {exc}") from exc
        header = [list(frame.columns)]
        layout = find_layout(lambda _p: header, path, candidates=[forced] if forced else None,
                             forced=bool(forced))
        mapped = to_canonical(_text_frame(frame, layout, path), layout, path,
                              undated_balances=self.undated_balances)
        notes = [f"columns match {layout.reason.split(':', 1)[0]}", *mapped.notes]
        return LoadResult(path=path, format=self.format, frame=mapped.frame,
                          statements=mapped.statements, profile=layout.profile.name,
                          notes=notes)
