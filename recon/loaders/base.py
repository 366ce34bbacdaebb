"""The loader interface: one input file -> canonical rows (a polars frame).

Every loader returns a :class:`LoadResult` whose ``frame`` has exactly the
columns of :data:`CANONICAL_SCHEMA`.  Loaders never touch the database; the
caller stores the frame in one transaction, so a file with one bad row loads
nothing (the loader raises :class:`~recon.errors.InputFileError` instead).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

import polars as pl

from recon.errors import InputFileError, SchemaError

#: Money is exact: four decimal places cover every ISO 4217 currency.
AMOUNT = pl.Decimal(20, 4)

CANONICAL_SCHEMA: dict[str, pl.DataType] = {
    "id": pl.String(),  # the source's own id (FITID, entry reference, ledger number)
    "line": pl.Int64(),  # line (or record number) in the source file, for messages
    "account": pl.String(),
    "date": pl.Date(),
    "value_date": pl.Date(),
    "due_date": pl.Date(),
    "amount": AMOUNT,  # signed, seen from the bank account: money in > 0
    "currency": pl.String(),
    "counterparty": pl.String(),
    "reference": pl.String(),
    "description": pl.String(),
    "iban": pl.String(),
    "doc_type": pl.String(),
    "customer_id": pl.String(),
}

#: Single payments listed inside one bank entry (CAMT ``TxDtls``, batch bookings).
DETAIL_SCHEMA: dict[str, pl.DataType] = {
    "parent_id": pl.String(),
    "seq": pl.Int64(),
    "amount": AMOUNT,
    "currency": pl.String(),
    "counterparty": pl.String(),
    "reference": pl.String(),
    "end_to_end_id": pl.String(),
    "description": pl.String(),
}

REQUIRED = ("id", "date", "amount", "currency")


@dataclass(frozen=True, slots=True)
class StatementInfo:
    """One statement inside a file (an OFX STMTRS, an MT940 :20: block, a CAMT Stmt)."""

    account: str | None
    currency: str | None
    opening_balance: Decimal | None
    closing_balance: Decimal | None
    start_date: date | None
    end_date: date | None
    transactions: int
    statement_id: str | None = None


@dataclass(slots=True)
class LoadResult:
    """What a loader read from one file."""

    path: Path
    format: str
    frame: pl.DataFrame
    statements: list[StatementInfo] = field(default_factory=list)
    details: pl.DataFrame | None = None
    profile: str | None = None
    encoding: str | None = None
    notes: list[str] = field(default_factory=list)  # why this format/profile was chosen
    #: The rows whose id the source does not keep unique from file to file (an MT940
    #: line's customer reference, taken when the bank gives no reference of its own:
    #: 'Rente' every month), with every id a file may have stored the row under (see
    #: recon.db.store_file): columns ``line``; ``plain``, the source's id; ``qualified``,
    #: told apart by date and amount ('Rente~2026-02-28~0.98'); ``legacy``, the hash id
    #: ('syn-...') earlier versions of recon gave it when the id repeated in its file.
    weak_rows: pl.DataFrame | None = None
    #: A customer statement's page lines that carry its balance from page to page,
    #: taken out of `frame` (recon.loaders.balances.split_balances; None: not split).
    carried: pl.DataFrame | None = None


class Loader(ABC):
    """Reads one file format into canonical rows."""

    format: ClassVar[str]
    extensions: ClassVar[tuple[str, ...]] = ()

    def __init__(self, *, undated_balances: bool = False) -> None:
        #: The file is a customer statement: a balance line may have no date
        #: (recon.loaders.balances).  Only the run knows a file's side; formats whose
        #: balances are no rows (OFX, MT940 ...) have none to date.
        self.undated_balances = undated_balances

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        """Return 0..100: how sure this loader is that it reads `path`."""
        return 30 if path.suffix.lower() in cls.extensions else 0

    @abstractmethod
    def load(self, path: Path, *, profile: str | None = None) -> LoadResult:
        """Parse `path`; raise InputFileError naming the line on bad input."""


def canonical(frame: pl.DataFrame, path: Path) -> pl.DataFrame:
    """Add missing optional columns, order and type them; check required ones."""
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise SchemaError(f"{path}: loader output lacks column(s) {', '.join(missing)}")
    cols = []
    for name, dtype in CANONICAL_SCHEMA.items():
        if name in frame.columns:
            cols.append(pl.col(name).cast(dtype))
        else:
            cols.append(pl.lit(None, dtype=dtype).alias(name))
    out = frame.select(cols)
    if "line" not in frame.columns:
        out = out.with_columns(pl.int_range(1, out.height + 1, dtype=pl.Int64).alias("line"))
    check_required(out, path)
    return out


def check_required(frame: pl.DataFrame, path: Path) -> None:
    """Raise on the first row whose id, date, amount or currency is empty."""
    for name in REQUIRED:
        # only text can be empty: a date or an amount cast to text never is (and
        # casting a million of them cost more than the rest of the check)
        empty = pl.col(name).is_null()
        if frame.schema[name] == pl.String:
            empty = empty | (pl.col(name) == "")
        bad = frame.filter(empty)
        if bad.height:
            line = bad["line"][0]
            raise InputFileError(
                path, f"empty {name!r}; every row needs id, date, amount and currency",
                line=int(line) if line is not None else None, field=name,
            )
    # counting the distinct ids is cheaper than marking every row (0.7 against 1.2 s for
    # 5M ids): the duplicates are looked for only when there are some
    if frame["id"].n_unique() < frame.height:
        dup = frame.filter(pl.col("id").is_duplicated())
        first = dup.sort("line").row(0, named=True)
        raise InputFileError(
            path, f"id {first['id']!r} appears more than once in the file; ids must be unique",
            line=first["line"], field="id",
        )
