"""Customer master data: load a customers file (CSV or XLSX) into the database.

Columns (header names, any case; only ``id`` and ``name`` are required)::

    id                  the customer id the ledger's ``customer_id`` uses
    name                legal name (normalised with recon.names for linking)
    aliases             other names, ';'-separated ("ACME LTD;Acme Trading")
    segment, region     free text, for aging totals
    credit_limit        a decimal like 5000.00; empty: no limit
    payment_terms_days  whole days after the invoice date; empty: due on the invoice date
    email               where statements and reminders go
    language            en or zh (also english, chinese, zh-CN ...); empty: en

Tables (created by :func:`ensure_schema`)::

    customers          one row per id; row_hash makes reloading idempotent
    customer_aliases   (customer_id, alias, alias_key): alias_key = name_key of the alias

Loading is all-or-nothing and idempotent: rows are validated first (a bad
value raises :class:`~recon.errors.InputFileError` naming file, line and
field); a customer whose data did not change is not touched, and loading the
same file twice changes nothing.  Customers missing from a later file are
kept (a partial file updates only the customers it names).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl

from recon.db import audit, scalar, transaction
from recon.errors import InputFileError
from recon.names import name_key_expr

COLUMNS = (
    "id", "name", "aliases", "segment", "region", "credit_limit", "payment_terms_days",
    "email", "language",
)
REQUIRED = ("id", "name")

#: Accepted spellings of each supported language.
LANGUAGES = {
    "en": "en", "eng": "en", "english": "en", "en-gb": "en", "en-us": "en",
    "zh": "zh", "zho": "zh", "chinese": "zh", "zh-cn": "zh", "zh_cn": "zh", "zh-hans": "zh",
    "cn": "zh", "中文": "zh",
}

SCHEMA_SQL = """
create table if not exists customers (
    customer_id varchar primary key, name varchar not null, name_key varchar,
    segment varchar, region varchar, credit_limit decimal(20,4), payment_terms_days integer,
    email varchar, language varchar, row_hash varchar, source_file varchar,
    loaded_at timestamp);
create table if not exists customer_aliases (
    customer_id varchar not null, alias varchar not null, alias_key varchar);
"""


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the customer tables if they are missing (safe to call every time)."""
    con.execute(SCHEMA_SQL)


@dataclass(frozen=True, slots=True)
class LoadStats:
    """What loading one customers file did."""

    path: str
    rows: int
    new: int
    updated: int
    unchanged: int


def read_customers(path: str | Path) -> pl.DataFrame:
    """Read and validate a customers file; every column comes back as text (nulls for empty)."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError(p, "no such file")
    frame = _read_xlsx(p) if p.suffix.lower() in (".xlsx", ".xlsm") else _read_csv(p)
    frame = _normalise_header(p, frame)
    _validate(p, frame)
    return frame


def _read_csv(p: Path) -> pl.DataFrame:
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputFileError(p, f"not UTF-8 text ({exc.reason} at byte {exc.start})",
                             hint="save the file as UTF-8 CSV") from exc
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        rows = list(reader)
    except csv.Error as exc:
        raise InputFileError(p, f"cannot read as CSV: {exc}", line=reader.line_num) from exc
    if not rows:
        raise InputFileError(p, "the file is empty", hint="put the header in line 1")
    width = len(rows[0])
    for n, r in enumerate(rows[1:], start=2):
        if any(c.strip() for c in r[width:]):
            raise InputFileError(
                p, f"{len(r)} fields where the header has {width}", line=n,
                hint="quote a value holding a comma: \"Acme, Inc.\"")
    return _frame(p, rows[0], [r[:width] for r in rows[1:]])


def _read_xlsx(p: Path) -> pl.DataFrame:
    import openpyxl

    try:
        wb = openpyxl.load_workbook(p, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken file
        raise InputFileError(p, f"cannot read as XLSX: {exc}") from exc
    try:
        rows = [list(r) for r in wb.worksheets[0].iter_rows(values_only=True)]
    finally:
        wb.close()
    if not rows:
        raise InputFileError(p, "the first sheet is empty", hint="put the header in row 1")
    header = [str(h).strip() if h is not None else "" for h in rows[0]]
    return _frame(p, header, [[_cell_text(v) for v in r[: len(header)]] for r in rows[1:]])


def _frame(p: Path, header: list[str], body: Sequence[Sequence[str | None]]) -> pl.DataFrame:
    """The rows as text columns named by the header (short rows padded, blank names
    made unique)."""
    _check_header(p, header)
    names = [h or f"column_{i}" for i, h in enumerate(header)]
    padded = [[*r, *[None] * (len(names) - len(r))] for r in body]
    return pl.DataFrame(padded, schema=dict.fromkeys(names, pl.String), orient="row")


def _cell_text(value: object) -> str | None:
    """A cell as the XLSX loaders read it (1500*1.1 is 1650.0000, not 1650.0000000000002)."""
    from recon.loaders.xlsx import cell_text

    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # Excel stores 30 as 30.0
    return cell_text(value, "%Y-%m-%d", ".")


def _column_key(name: str) -> str:
    """What a header cell names: `Credit Limit` -> `credit_limit`."""
    return name.strip().lower().replace(" ", "_")


def _check_header(p: Path, header: list[str]) -> None:
    """Refuse a header naming a column twice (`Name` and `name `): which would count?"""
    seen: dict[str, int] = {}
    for i, cell in enumerate(header, start=1):
        key = _column_key(cell)
        if key and key in seen:
            raise InputFileError(
                p, f"column {key!r} is in the header twice: {header[seen[key] - 1]!r} "
                   f"(column {seen[key]}) and {cell!r} (column {i})",
                line=1, hint="delete or rename one of them")
        seen.setdefault(key, i)


def _normalise_header(p: Path, frame: pl.DataFrame) -> pl.DataFrame:
    names = {c: _column_key(c) for c in frame.columns}
    missing = [c for c in REQUIRED if c not in names.values()]
    if missing:
        found = ", ".join(repr(c) for c in frame.columns)
        raise InputFileError(p, f"missing column {missing[0]!r}; found: {found}",
                             hint="expected columns: " + ",".join(COLUMNS))
    frame = frame.rename(names)
    exprs = [
        pl.col(c).str.strip_chars().replace("", None).alias(c) if c in frame.columns
        else pl.lit(None, dtype=pl.String).alias(c)
        for c in COLUMNS
    ]
    # header is line 1: the first data row is line 2 (no multi-line cells in a master file)
    frame = frame.with_row_index("line", offset=2)
    # a row with nothing in it (a blank line, a CSV line of commas, an emptied or merely
    # formatted spreadsheet row) is no customer, as the ledger loaders skip it
    blank = pl.all_horizontal(pl.col(c).str.strip_chars().replace("", None).is_null()
                              for c in names.values())
    return frame.filter(~blank).select("line", *exprs)


#: (field, failing-row expression, what was expected)
_CHECKS: tuple[tuple[str, pl.Expr, str], ...] = (
    ("id", pl.col("id").is_null(), "a customer id"),
    ("id", pl.col("id").is_not_null() & pl.col("id").is_duplicated(),
     "each id once (this id is repeated)"),
    ("name", pl.col("name").is_null(), "a customer name"),
    ("credit_limit", ~pl.col("credit_limit").str.contains(r"^\d{1,15}(\.\d{1,4})?$"),
     "a non-negative amount like 5000.00 (or empty for no limit)"),
    ("payment_terms_days", ~pl.col("payment_terms_days").str.contains(r"^\d{1,4}$"),
     "a whole number of days like 30 (or empty)"),
    ("email", ~pl.col("email").str.contains(r"^[^@\s;,]+@[^@\s;,]+\.[^@\s;,]+$"),
     "an e-mail address like ap@example.com (or empty)"),
    ("language", ~pl.col("language").str.to_lowercase().is_in(list(LANGUAGES)),
     "a language: " + ", ".join(sorted(set(LANGUAGES.values())))),
)


def _validate(p: Path, frame: pl.DataFrame) -> None:
    """Raise InputFileError for the first bad value (by line), counting the others."""
    bad = pl.concat([
        frame.filter(cond.fill_null(False)).select(
            "line", pl.lit(fld).alias("field"), pl.col(fld).alias("value"),
            pl.lit(expected).alias("expected"))
        for fld, cond, expected in _CHECKS
    ]).sort("line", maintain_order=True)
    if bad.height == 0:
        return
    line, fld, value, expected = bad.row(0)
    more = f" ({bad.height - 1} more problems in this file)" if bad.height > 1 else ""
    raise InputFileError(p, f"expected {expected}, got {value!r}{more}", line=line, field=fld)


def load_customers(
    con: duckdb.DuckDBPyConnection, path: str | Path, *, actor: str = "recon"
) -> LoadStats:
    """Validate `path` and upsert its customers; unchanged customers are left alone."""
    frame = read_customers(path)
    ensure_schema(con)
    incoming = _incoming(frame)
    con.register("__recon__cust_in", incoming)
    try:
        with transaction(con):
            stats = _upsert(con, str(path), incoming.height)
            if stats.new or stats.updated:
                audit(con, actor, "load_customers", str(path),
                      {"rows": stats.rows, "new": stats.new, "updated": stats.updated})
    finally:
        con.unregister("__recon__cust_in")
    return stats


def _incoming(frame: pl.DataFrame) -> pl.DataFrame:
    aliases = (
        pl.col("aliases").fill_null("").str.split(";")
        .list.eval(pl.element().str.strip_chars().filter(pl.element() != ""))
        .list.unique(maintain_order=True)
    )
    out = frame.with_columns(
        name_key_expr(pl.col("name")).alias("name_key"),
        aliases.alias("alias_list"),
        pl.col("language").str.to_lowercase().replace_strict(LANGUAGES, default="en")
        .fill_null("en").alias("language"),
    )
    return out


_HASHED = ("id", "name", "segment", "region", "credit_limit", "payment_terms_days", "email",
           "language")


def _upsert(con: duckdb.DuckDBPyConnection, path: str, rows: int) -> LoadStats:
    fields = ", ".join(f"coalesce({c}, chr(0))" for c in _HASHED)
    con.execute(
        f"""create or replace temp table __recon__cust_rows as
        select *, md5(concat_ws(chr(31), {fields},
                                array_to_string(list_sort(alias_list), ';'))) as row_hash
        from __recon__cust_in"""
    )
    con.execute(
        """create or replace temp table __recon__cust_changed as
        select i.id, c.customer_id is null as is_new from __recon__cust_rows i
        left join customers c on c.customer_id = i.id
        where c.row_hash is distinct from i.row_hash"""
    )
    changed = "(select id from __recon__cust_changed)"
    con.execute(f"delete from customer_aliases where customer_id in {changed}")
    con.execute(f"delete from customers where customer_id in {changed}")
    con.execute(
        f"""insert into customers
        select id, name, name_key, segment, region, cast(credit_limit as decimal(20,4)),
               cast(payment_terms_days as integer), email, language, row_hash, ?,
               current_timestamp::timestamp
        from __recon__cust_rows where id in {changed}""",
        [path],
    )
    aliases = con.sql(
        f"select id, unnest(alias_list) as alias from __recon__cust_in where id in {changed}"
    ).pl()
    if aliases.height:
        keyed = aliases.with_columns(name_key_expr(pl.col("alias")).alias("alias_key"))
        con.register("__recon__alias_in", keyed)
        con.execute("insert into customer_aliases select id, alias, alias_key from __recon__alias_in")
        con.unregister("__recon__alias_in")
    new = int(scalar(con, "select count(*) from __recon__cust_changed where is_new") or 0)
    total = int(scalar(con, "select count(*) from __recon__cust_changed") or 0)
    return LoadStats(path, rows, new, total - new, rows - total)
