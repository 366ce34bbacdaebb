"""Closed periods: matches and decisions dated in a closed month are frozen.

``recon close-period 2026-10`` freezes the month; `recon apply` then refuses
to reject, accept, write off or ignore anything dated in it, until
``recon reopen-period 2026-10 --reason ...`` (audited) opens it again.
"""

from __future__ import annotations

import calendar
import re
from datetime import date

import duckdb

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
    pending = first(con, """select count(distinct m.match_id) from matches m
        join match_members mm using (match_id) join txns t using (txn_id)
        where m.active and m.status = 'suggested' and t.date between ? and ?""", [start, end])
    n = int(pending[0]) if pending else 0
    if n:
        return (f"period {period} closed; {n} suggested match(es) with a row dated in it "
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


def closed_period_of_sql(date_expr: str) -> str:
    """SQL: the closed period containing `date_expr`, or null."""
    return (
        f"(select period from periods p where p.closed and {date_expr} "
        f"between p.start_date and p.end_date limit 1)"
    )
