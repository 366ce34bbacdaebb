"""Closed periods: matches and decisions dated in a closed month are frozen.

``recon close-period 2026-10`` freezes the month; `recon apply` then refuses
to reject, accept, write off or ignore anything dated in it, until
``recon reopen-period 2026-10 --reason ...`` (audited) opens it again.

A match is dated by its latest row, as the reconciliation statement reads it: at a
cut-off a match closes its rows only when its last row is dated by then (see
recon.pipeline.open_items_sql).  So an outstanding cheque of a closed month cleared
by a bank line of the next is a match of the next month, made and reviewed freely; a
match whose rows are all dated by the end of a closed month would change what its
statement showed.  A run makes no such match (:func:`drop_frozen`): a late line of
the month stays open (reason ``period_closed``) until the month is reopened.
"""

from __future__ import annotations

import calendar
import re
from datetime import date

import duckdb
import polars as pl

from recon.db import _now, audit, first
from recon.errors import ReconError


def parse_period(text: str) -> tuple[str, date, date]:
    """'2026-10' -> ('2026-10', first day, last day)."""
    m = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if not m or not 1 <= int(m[2]) <= 12:
        raise ReconError(f"period: expected a month like 2026-10, got {text!r}")
    y, mo = int(m[1]), int(m[2])
    return f"{y:04d}-{mo:02d}", date(y, mo, 1), date(y, mo, calendar.monthrange(y, mo)[1])


def close_period(con: duckdb.DuckDBPyConnection, text: str, *, user: str, reason: str = "") -> str:
    """Close a month; closing a closed month is a no-op that says so."""
    period, start, end = parse_period(text)
    row = first(con, "select closed from periods where period = ?", [period])
    if row and row[0]:
        return f"period {period} is already closed"
    con.execute("delete from periods where period = ?", [period])
    con.execute(
        "insert into periods values (?, ?, ?, true, ?, ?, ?)",
        [period, start, end, _now(), user, reason],
    )
    audit(con, user, "close_period", period, {"reason": reason})
    # closed, a suggestion can be neither accepted nor rejected: say so, with how many
    pending = first(con, """select count(*) from (
        select m.match_id from matches m
        join match_members mm using (match_id) join txns t using (txn_id)
        where m.active and m.status = 'suggested' group by m.match_id
        having max(t.date) between ? and ?)""", [start, end])
    n = int(pending[0]) if pending else 0
    if n:
        return (f"period {period} closed; {n} suggested match(es) dated in it "
                "await review and are frozen with it (reopen-period to accept or reject "
                "them)")
    return f"period {period} closed"


def reopen_period(con: duckdb.DuckDBPyConnection, text: str, *, user: str, reason: str) -> str:
    """Reopen a closed month; the reason is required and audited."""
    period, _, _ = parse_period(text)
    if not reason.strip():
        raise ReconError("reopen-period: --reason is required (it goes to the audit log)")
    row = first(con, "select closed from periods where period = ?", [period])
    if not row or not row[0]:
        raise ReconError(f"period {period} is not closed")
    con.execute("update periods set closed = false, reason = ? where period = ?", [reason, period])
    audit(con, user, "reopen_period", period, {"reason": reason})
    return f"period {period} reopened"


def _in_closed_sql(date_expr: str) -> str:
    """SQL: whether period `p` is closed and holds `date_expr`."""
    return f"p.closed and {date_expr} between p.start_date and p.end_date"


def closed_period_of_sql(date_expr: str) -> str:
    """SQL: the closed period containing `date_expr`, or null."""
    return f"(select period from periods p where {_in_closed_sql(date_expr)} limit 1)"


def closed_date_sql(date_expr: str) -> str:
    """SQL: whether `date_expr` falls in a closed period."""
    return f"exists (select 1 from periods p where {_in_closed_sql(date_expr)})"


#: The open rows (id, date) of a pass dated in a closed month: a match whose latest row
#: is one of them would be dated in the month (see :func:`drop_frozen`).
FROZEN = "__recon__frozen"


def mark_frozen(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> None:
    """Fill table FROZEN from the open tables `tables` (id, date, ...)."""
    rows = " union all ".join(
        f"select o.id, o.date from {t} o join periods p on {_in_closed_sql('o.date')}"
        for t in tables
    )
    con.execute(f"create or replace temp table {FROZEN} as {rows}")


def frozen_mask(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, ids: tuple[str, ...]
                ) -> pl.Series:
    """Per row of `frame` (candidate pairs, or groups), whether its rows, in columns
    `ids` (an id, or a list of ids, each), are dated by the end of a closed month, the
    latest in it: a match of them would be dated in the month (see the module's
    docstring).  Only rows of table FROZEN can be the latest."""
    none = pl.Series("frozen", [False] * frame.height, dtype=pl.Boolean)
    if frame.is_empty():
        return none
    frozen = con.sql(f"select id from {FROZEN}").pl()["id"]
    if frozen.is_empty():
        return none
    keyed = frame.select(ids).with_row_index("__k")
    members = pl.concat([
        keyed.select("__k", pl.col(c).alias("id")).explode("id")
        if isinstance(frame.schema[c], pl.List) else keyed.select("__k", pl.col(c).alias("id"))
        for c in ids
    ])
    touched = members.filter(pl.col("id").is_in(frozen.implode()))["__k"].unique()
    if touched.is_empty():
        return none
    # read by DuckDB from this variable, not registered (see recon.db)
    suspect = members.filter(pl.col("__k").is_in(touched.implode()))  # noqa: F841
    barred = con.sql(
        f"""select __k from (select s.__k, max(t.date) as last from suspect s
                              join txns t on t.txn_id = s.id group by s.__k)
        where {closed_date_sql("last")}"""
    ).pl()["__k"]
    return keyed["__k"].is_in(barred.implode()).alias("frozen")


def drop_frozen(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, ids: tuple[str, ...]
                ) -> pl.DataFrame:
    """`frame` without the rows :func:`frozen_mask` marks: a run makes no match dated in
    a closed month."""
    mask = frozen_mask(con, frame, ids)
    return frame.filter(~mask) if mask.any() else frame
