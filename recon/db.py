"""The DuckDB database: schema, connection, and storing loaded files.

Tables (internal scratch tables start with ``__recon__``)::

    meta           key/value: schema_version
    files          one row per loaded file (sha256 unique): path, side, format, rows
    statements     balances per statement block of a bank file
    txns           canonical transactions of every side; amount DECIMAL(20,4)
    txn_details    single payments inside a batch bank entry (CAMT TxDtls)
    runs           one row per `recon run`, with its summary
    matches        every match ever made; `active` false once broken
    match_members  txn ids of each match, role left/right
    decisions      reviewer decisions from `recon apply`
    audit_log      append-only history of loads, runs and decisions
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from recon.errors import LockedError, ReconError
from recon.loaders.base import LoadResult
from recon.names import name_key_expr

SCHEMA_VERSION = 1

SCHEMA_SQL = """
create table if not exists meta (key varchar primary key, value varchar);
create table if not exists files (
    file_id integer primary key, path varchar not null, name varchar, sha256 varchar not null,
    side varchar not null, format varchar, profile varchar, encoding varchar,
    rows integer, new_rows integer, loaded_at timestamp, run_id varchar);
create table if not exists statements (
    file_id integer, seq integer, statement_id varchar, account varchar, currency varchar,
    opening_balance decimal(20,4), closing_balance decimal(20,4),
    start_date date, end_date date, transactions integer);
create table if not exists txns (
    txn_id bigint primary key, side varchar not null, source_id varchar not null,
    file_id integer, line bigint, account varchar, date date not null, value_date date,
    due_date date, amount decimal(20,4) not null, currency varchar not null,
    counterparty varchar, reference varchar, description varchar, iban varchar,
    doc_type varchar, customer_id varchar, name_key varchar);
create table if not exists txn_details (
    txn_id bigint, seq integer, amount decimal(20,4), currency varchar, counterparty varchar,
    reference varchar, end_to_end_id varchar, description varchar);
create table if not exists runs (
    run_id varchar primary key, started_at timestamp, finished_at timestamp,
    rules_path varchar, rules_sha256 varchar, as_of date, engine_version varchar,
    status varchar, summary varchar);
create table if not exists matches (
    match_id varchar primary key, run_id varchar, rule varchar, rule_index integer,
    kind varchar, status varchar, score double, left_amount decimal(20,4),
    right_amount decimal(20,4), amount_diff decimal(20,4), date_diff_days integer,
    explanation varchar, created_at timestamp, active boolean,
    ended_run varchar, ended_reason varchar, diff_type varchar, ended_at timestamp);
create table if not exists match_members (match_id varchar, txn_id bigint, role varchar);
create table if not exists decisions (
    decision_id bigint, txn_id bigint, decision varchar, match_id varchar,
    note varchar, actor varchar, source_file varchar, decided_at timestamp, active boolean);
create table if not exists run_exceptions (
    run_id varchar, side varchar, txn_id bigint, reason varchar);
create table if not exists periods (
    period varchar primary key, start_date date, end_date date, closed boolean,
    closed_at timestamp, closed_by varchar, reason varchar);
create table if not exists audit_log (
    seq bigint primary key, logged_at timestamp, actor varchar, action varchar,
    object varchar, detail varchar, prev_hash varchar, hash varchar);
"""

#: Minor-unit exponent of currencies that do not use 2 decimals.
CURRENCY_EXPONENTS = {
    "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0, "ISK": 0, "HUF": 2, "XOF": 0, "XAF": 0,
    "BHD": 3, "KWD": 3, "OMR": 3, "JOD": 3, "TND": 3, "LYD": 3, "IQD": 3,
}

MACROS_SQL = """
create or replace temp macro recon_exp(cur) as
    coalesce(map_extract_value({exps}, cur), 2);
create or replace temp macro recon_fmt(a, cur) as
    case recon_exp(cur)
        when 0 then cast(cast(a as decimal(20,0)) as varchar)
        when 3 then cast(cast(a as decimal(20,3)) as varchar)
        else cast(cast(a as decimal(20,2)) as varchar) end;
create or replace temp macro recon_safe(s) as
    case when regexp_matches(s, '^[=+\\-@\\t\\r]') then '''' || s else s end;
"""


def _macros() -> str:
    pairs = ", ".join(f"'{k}': {v}" for k, v in CURRENCY_EXPONENTS.items())
    return MACROS_SQL.format(exps="MAP {" + pairs + "}")


def connect(path: str | Path, *, memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """Open (creating if needed) the recon database at `path`."""
    try:
        con = duckdb.connect(str(path))
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise LockedError(
                f"{path}: another recon process holds the database ({exc}); "
                "wait for it to finish or check for a stuck job"
            ) from exc
        raise ReconError(f"{path}: cannot open database: {exc}") from exc
    if memory_limit:
        con.execute(f"set memory_limit = '{_checked_limit(memory_limit)}'")
    con.execute(SCHEMA_SQL)
    con.execute(_macros())
    row = first(con, "select value from meta where key = 'schema_version'")
    if row is None:
        con.execute("insert into meta values ('schema_version', ?)", [str(SCHEMA_VERSION)])
    elif int(row[0]) > SCHEMA_VERSION:
        raise ReconError(
            f"{path}: database schema version {row[0]} is newer than this recon "
            f"({SCHEMA_VERSION}); upgrade recon"
        )
    return con


def _checked_limit(text: str) -> str:
    import re

    if not re.fullmatch(r"\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*", text, re.I):
        raise ReconError(f"--memory-limit: expected a size like '4GB', got {text!r}")
    return text.strip()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection, *, commit: bool = True) -> Iterator[None]:
    """All-or-nothing: commit on success (roll back instead when `commit` is false)."""
    con.execute("begin transaction")
    try:
        yield
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit" if commit else "rollback")


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class StoredFile:
    """What storing one loaded file did."""

    file_id: int
    path: str
    side: str
    format: str
    profile: str | None
    rows: int
    new_rows: int
    sha256: str
    already_loaded: bool


def known_file(con: duckdb.DuckDBPyConnection, sha: str, side: str) -> StoredFile | None:
    """The earlier load of a file with these bytes on this side, if any."""
    row = first(
        con,
        "select file_id, path, format, profile, rows from files where sha256 = ? and side = ?",
        [sha, side],
    )
    if row is None:
        return None
    return StoredFile(row[0], row[1], side, row[2], row[3], row[4], 0, sha, True)


def store_file(
    con: duckdb.DuckDBPyConnection, result: LoadResult, *, side: str, sha: str, run_id: str
) -> StoredFile:
    """Insert a loaded file's rows; rows already stored (same side, account, id) are skipped.

    Call inside a transaction: the caller commits all files of a run at once.
    """
    file_id = con.execute("select coalesce(max(file_id), 0) + 1 from files").fetchall()[0][0]
    start = con.execute("select coalesce(max(txn_id), 0) from txns").fetchall()[0][0]
    frame = result.frame.with_columns(
        pl.lit(side).alias("side"),
        name_key_expr(pl.col("counterparty")).alias("name_key"),
        (pl.int_range(1, result.frame.height + 1, dtype=pl.Int64) + start).alias("txn_id"),
    )
    con.register("__recon__incoming", frame)
    # coalesce: a null account must not let the same id in twice
    con.execute(
        """insert into txns
        select i.txn_id, i.side, i.id, ?, i.line, i.account, i.date, i.value_date, i.due_date,
               i.amount, upper(i.currency), i.counterparty, i.reference, i.description, i.iban,
               i.doc_type, i.customer_id, i.name_key
        from __recon__incoming i
        where not exists (select 1 from txns t where t.side = i.side
                          and coalesce(t.account, '') = coalesce(i.account, '')
                          and t.source_id = i.id)""",
        [file_id],
    )
    new_rows = con.execute(
        "select count(*) from txns where txn_id > ?", [start]
    ).fetchall()[0][0]
    con.unregister("__recon__incoming")
    _store_details(con, result, side, file_id)
    _store_statements(con, result, file_id)
    con.execute(
        "insert into files values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [file_id, str(result.path), result.path.name, sha, side, result.format, result.profile,
         result.encoding, result.frame.height, new_rows, _now(), run_id],
    )
    return StoredFile(file_id, str(result.path), side, result.format, result.profile,
                      result.frame.height, new_rows, sha, False)


def _store_details(con: duckdb.DuckDBPyConnection, result: LoadResult, side: str, file_id: int) -> None:
    if result.details is None or result.details.height == 0:
        return
    con.register("__recon__details", result.details)
    con.execute(
        """insert into txn_details
        select t.txn_id, d.seq, d.amount, d.currency, d.counterparty, d.reference,
               d.end_to_end_id, d.description
        from __recon__details d join txns t
          on t.side = ? and t.file_id = ? and t.source_id = d.parent_id""",
        [side, file_id],
    )
    con.unregister("__recon__details")


def _store_statements(con: duckdb.DuckDBPyConnection, result: LoadResult, file_id: int) -> None:
    for seq, st in enumerate(result.statements, start=1):
        con.execute(
            "insert into statements values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [file_id, seq, st.statement_id, st.account, st.currency, st.opening_balance,
             st.closing_balance, st.start_date, st.end_date, st.transactions],
        )


def first(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> tuple[Any, ...] | None:
    """First row of a query (the result is fully consumed), or None."""
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def scalar(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """The single value of a one-row, one-column query."""
    row = first(con, sql, params)
    return None if row is None else row[0]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def audit(con: duckdb.DuckDBPyConnection, actor: str, action: str, obj: str, detail: Any) -> None:
    """Append one record to the audit log, chained to the previous record's hash."""
    import json

    prev = first(con, "select seq, hash from audit_log order by seq desc limit 1")
    seq = (prev[0] + 1) if prev else 1
    prev_hash = prev[1] if prev else "0" * 64
    at = _now()
    body = json.dumps(detail, sort_keys=True, default=str)
    digest = hashlib.sha256(
        "\x1f".join([str(seq), at.isoformat(), actor, action, obj, body, prev_hash]).encode()
    ).hexdigest()
    con.execute(
        "insert into audit_log values (?, ?, ?, ?, ?, ?, ?, ?)",
        [seq, at, actor, action, obj, body, prev_hash, digest],
    )
