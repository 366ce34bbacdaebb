"""matches.csv, exceptions.csv and discrepancies.csv, written by DuckDB COPY.

Files are written to a temporary name and renamed, so a reader never sees
half a file.  Text cells a spreadsheet would run as a formula are
neutralised with a leading apostrophe (``recon_safe``); amounts stay numbers.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from recon.db import FORMULA_CLASS, sql_literal

MATCH_COLUMNS = (
    "match_id",
    "rule",
    "kind",
    "left_ids",
    "right_ids",
    "left_amount",
    "right_amount",
    "amount_diff",
    "date_diff_days",
    "score",
    "status",
)
EXCEPTION_COLUMNS = (
    "side",
    "id",
    "date",
    "amount",
    "currency",
    "counterparty",
    "reference",
    "description",
    "reason",
    "best_candidate_ids",
    "best_score",
    "age_days",
    "decision",
    "match_with",
    "note",
)
DISCREPANCY_COLUMNS = (
    "match_id",
    "type",
    "left_amount",
    "right_amount",
    "difference",
    "explanation",
)


def unguard(text: pl.Expr) -> pl.Expr:
    """`text` without the apostrophe recon_safe put before a cell starting with = + - @
    tab or CR (for outputs that are no spreadsheet: an apostrophe of the data stays)."""
    return text.str.replace(f"^'({FORMULA_CLASS})", "$1")


def copy_atomic(con: duckdb.DuckDBPyConnection, sql: str, path: Path) -> int:
    """COPY the rows of `sql` to CSV at `path` via a temporary file; return row count."""
    tmp = path.with_name(f".{path.name}.tmp")
    # COPY answers with the number of rows it wrote: the query runs once
    n = con.execute(
        f"copy ({sql}) to {sql_literal(tmp)} (header, delimiter ',', quote '\"')"
    ).fetchall()
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return int(n[0][0]) if n else 0


def scope_sql(left_side: str) -> str:
    """A match belongs to the pass of its left side; ledger-only reversals to every pass."""
    return f"(i.{left_side}_left or i.ledger_only)"


def matches_sql(left_side: str) -> str:
    """One row per active match whose left side is `left_side` (bank or statement)."""
    return f"""
    select m.match_id, m.rule, m.kind, recon_safe(i.left_ids) as left_ids,
           recon_safe(i.right_ids) as right_ids,
           -- an FX match's right_amount is in the ledger's currency; a ledger reversal
           -- has no left member, and its currency is the right members'
           recon_fmt(m.left_amount, coalesce(i.cur, i.rcur)) as left_amount,
           recon_fmt(m.right_amount, coalesce(i.rcur, i.cur)) as right_amount,
           recon_fmt(m.amount_diff, coalesce(i.cur, i.rcur)) as amount_diff,
           m.date_diff_days, round(m.score, 4) as score, m.status,
           recon_safe(m.explanation) as explanation,
           null::varchar as decision, null::varchar as note
    from matches m join match_info i using (match_id)
    where m.active and {scope_sql(left_side)}
    order by i.first_date, m.match_id"""


def exceptions_sql(as_of: date, *, mask: bool = False) -> str:
    """One row per open item, with the reason from __recon__diag (which carries the
    row's own fields too).

    With `mask`, account numbers and IBANs keep only their last four characters.
    """
    acct = "recon_mask(d.account)" if mask else "d.account"

    def text(col: str) -> str:
        return f"recon_mask_text({col})" if mask else col

    return f"""
    with ids as (
        select d.side, d.id, array_to_string(list_sort(list(t.source_id)), ';') as best
        from (select side, id, unnest(best_ids) as cand from __recon__diag) d
        join txns t on t.txn_id = d.cand group by d.side, d.id)
    select d.side, recon_safe(d.source_id) as id, d.date,
           recon_fmt(d.amount, d.currency) as amount, d.currency,
           recon_safe({text("d.counterparty")}) as counterparty,
           recon_safe({text("d.reference")}) as reference,
           recon_safe({text("d.description")}) as description, d.reason,
           recon_safe(i.best) as best_candidate_ids, round(d.best_score, 4) as best_score,
           date_diff('day', d.date, date '{as_of.isoformat()}') as age_days,
           null::varchar as decision, null::varchar as match_with, null::varchar as note,
           recon_safe({text("d.detail")}) as explanation, recon_safe({acct}) as account,
           recon_safe(f.name) as file, d.line
    from __recon__diag d
    left join ids i on i.side = d.side and i.id = d.id
    left join files f on f.file_id = d.file_id
    order by d.side, d.date, d.source_id"""


def discrepancies_sql(left_side: str, date_lag_days: int) -> str:
    """Matches whose sides differ in amount, currency or (beyond a lag) date.  A
    reversal's two rows are of one side: days between them are no lag between the bank
    and the books (it read "bank date is 8 days after the ledger date").

    After the contract's columns, `currency`: that of left_amount and difference (an
    FX match's right_amount is in the ledger's currency, which its explanation names).
    """
    lagging = f"(abs(m.date_diff_days) > {int(date_lag_days)} and m.kind <> 'reversal')"
    return f"""
    with m as (select m.*, i.cur, i.rcur, (i.cur_lo <> i.cur_hi)::int + 1 as n_cur,
                      recon_fmt(m.left_amount, i.cur) as la,
                      recon_fmt(m.right_amount, i.cur) as ra,
                      recon_fmt(m.amount_diff, i.cur) as diff,
                      recon_fmt(abs(m.amount_diff), i.cur) as absdiff
          -- formatted only for the matches that are discrepancies at all
          from matches m join match_info i using (match_id)
          where m.active and {scope_sql(left_side)}
            and (m.amount_diff <> 0 or i.cur_lo <> i.cur_hi
                 or {lagging}))
    select m.match_id,
           case when m.kind = 'reversal' then 'reversal'
                when m.n_cur > 1 then 'fx'
                when m.diff_type is not null then m.diff_type
                when abs(m.left_amount) < abs(m.right_amount) then 'short_payment'
                else 'over_payment' end as type,
           m.la as left_amount,
           case when m.n_cur > 1 then recon_fmt(m.right_amount, m.rcur) else m.ra end
               as right_amount,
           m.diff as difference,
           case when m.n_cur > 1 then
                    'ledger ' || recon_fmt(m.right_amount, m.rcur) || ' ' || m.rcur || ' booked as '
                    || m.la || ' ' || m.cur || ' (rate '
                    || round(m.left_amount / nullif(m.right_amount, 0), 6) || '); '
                    || coalesce('difference to the rate table ' || m.diff || ' ' || m.cur,
                                'matched by hand, no rate table to differ from')
                when m.diff_type = 'fee' then 'bank deducted a fee of ' || m.absdiff
                when abs(m.left_amount) < abs(m.right_amount)
                    then 'bank amount is ' || m.absdiff || ' less than the ledger'
                else 'bank amount is ' || m.absdiff || ' more than the ledger'
           end as explanation,
           m.cur as currency
    from m
    where m.amount_diff <> 0 or m.n_cur > 1
    union all
    select m.match_id, 'date_lag', m.la, m.ra, recon_fmt(0, m.cur),
           'bank date is ' || abs(m.date_diff_days) || ' days '
               || case when m.date_diff_days > 0 then 'after' else 'before' end
               || ' the ledger date', m.cur
    from m where {lagging}
    order by 1, 2"""
