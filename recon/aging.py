"""`recon aging`: receivables per customer by days past due (CONTRACT.md).

Writes three CSV files next to each other (for ``--out aging.csv``):

``aging.csv`` — one row per customer and currency with an open balance::

    customer,not_due,d1_30,d31_60,d61_90,d90_plus,total,name,currency,segment,region,
    written_off

  The bucket columns follow the rules file's ``aging.buckets`` (default
  ``[30, 60, 90]``): ``not_due`` (due on or after --as-of), ``d1_<b1>``,
  ``d<b1+1>_<b2>`` ..., ``d<bn>_plus`` (more than bn days past due).
  ``total`` is the customer's balance: the sum of the buckets.  Unapplied
  credits (receipts and credit notes not settled against an invoice) are
  negative amounts aged by their own date.  ``written_off``: the part of
  ``total`` in invoices written off in recon (``recon apply``, decision
  ``write_off``) that the ledger has not settled yet: still owed in the books,
  so still in the buckets, but no longer chased (``recon reminders``); it goes
  when the ledger books the write-off (a credit note quoting the invoice).

``aging_segments.csv`` — the same buckets summed by segment, by region and
overall: ``dimension,value,currency,<buckets>,total,customers`` with
``dimension`` one of ``segment``, ``region``, ``all`` (``value`` is
``(none)`` where the master gives none).

``aging_unlinked.csv`` — receivable lines that link to no customer (listed,
never dropped): ``id,date,amount,currency,counterparty,reference,description,
doc_type,effect,reason``.  The aging totals plus these effects equal the
ledger's receivable lines to the cent.

Money is exact (DECIMAL sums in DuckDB); see :mod:`recon.openitems` for how
lines link to customers and how receipts settle invoices.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import duckdb
import polars as pl

from recon import openitems
from recon.reports.csvout import copy_atomic

DEFAULT_BUCKETS = (30, 60, 90)


def bucket_columns(buckets: tuple[int, ...] = DEFAULT_BUCKETS) -> list[tuple[str, str]]:
    """(column name, SQL condition on `days_past_due`) for each bucket, in order."""
    out = [("not_due", "days_past_due <= 0")]
    lo = 1
    for b in buckets:
        out.append((f"d{lo}_{b}", f"days_past_due between {lo} and {b}"))
        lo = b + 1
    out.append((f"d{buckets[-1]}_plus" if buckets else "overdue", f"days_past_due >= {lo}"))
    return out


def _sums_sql(buckets: tuple[int, ...]) -> str:
    cols = [f"coalesce(sum(open_amount) filter (where {cond}), 0) as {name}"
            for name, cond in bucket_columns(buckets)]
    return ", ".join([*cols, "coalesce(sum(open_amount), 0) as total"])


def _fmt_cols(buckets: tuple[int, ...]) -> str:
    names = [n for n, _ in bucket_columns(buckets)] + ["total"]
    return ", ".join(f"recon_fmt({n}, currency) as {n}" for n in names)


def aging_sql(buckets: tuple[int, ...] = DEFAULT_BUCKETS) -> str:
    """Per customer and currency (over openitems.CUSTOMER_ITEMS, see openitems.prepare)."""
    return f"""
        with s as (
            select customer, currency, any_value(name) as name,
                   any_value(segment) as segment, any_value(region) as region,
                   {_sums_sql(buckets)}
                   , coalesce(sum(open_amount) filter (where written_off), 0) as written_off
            from {openitems.CUSTOMER_ITEMS} where open_amount <> 0 group by customer, currency)
        select recon_safe(customer) as customer, {_fmt_cols(buckets)},
               recon_safe(name) as name, currency, recon_safe(segment) as segment,
               recon_safe(region) as region, recon_fmt(written_off, currency) as written_off
        from s order by s.customer, currency"""


def segments_sql(buckets: tuple[int, ...] = DEFAULT_BUCKETS) -> str:
    """Bucket totals by segment, by region and overall."""
    parts = []
    for dim, expr in (("segment", "coalesce(segment, '(none)')"),
                      ("region", "coalesce(region, '(none)')"), ("all", "'all'")):
        parts.append(f"""select '{dim}' as dimension, {expr} as value, currency,
                   {_sums_sql(buckets)}, count(distinct customer) as customers
            from {openitems.CUSTOMER_ITEMS} where open_amount <> 0 group by 2, currency""")
    return f"""
        select dimension, recon_safe(value) as value, currency, {_fmt_cols(buckets)}, customers
        from ({' union all '.join(parts)})
        order by case dimension when 'segment' then 1 when 'region' then 2 else 3 end,
                 value, currency"""


def unlinked_sql() -> str:
    """Receivable lines without a customer (after openitems.build_lines)."""
    return f"""
        select recon_safe(source_id) as id, date, recon_fmt(amount, currency) as amount, currency,
               recon_safe(counterparty) as counterparty, recon_safe(reference) as reference,
               recon_safe(description) as description, recon_safe(doc_type) as doc_type,
               recon_fmt({openitems.effect_sql('kind', 'amount')}, currency) as effect, reason
        from {openitems.UNLINKED} order by date, source_id"""


def aging_frame(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    buckets: tuple[int, ...] = DEFAULT_BUCKETS,
    policy: str = "oldest_first",
) -> pl.DataFrame:
    """The aging table as of `as_of` (amounts as decimal strings, as in the CSV)."""
    openitems.prepare(con, as_of, policy)
    frame: pl.DataFrame = con.sql(aging_sql(buckets)).pl()
    return frame


@dataclass(frozen=True, slots=True)
class AgingFiles:
    """Where `write_aging` put its outputs, and how many rows each has."""

    aging: Path
    segments: Path
    unlinked: Path
    customers: int
    unlinked_lines: int


def write_aging(
    con: duckdb.DuckDBPyConnection,
    as_of: date,
    out: Path,
    buckets: tuple[int, ...] = DEFAULT_BUCKETS,
    policy: str = "oldest_first",
) -> AgingFiles:
    """Compute the aging as of `as_of` and write the three CSV files."""
    openitems.prepare(con, as_of, policy)
    out.parent.mkdir(parents=True, exist_ok=True)
    segments = out.with_name(f"{out.stem}_segments{out.suffix or '.csv'}")
    unlinked = out.with_name(f"{out.stem}_unlinked{out.suffix or '.csv'}")
    n = copy_atomic(con, aging_sql(buckets), out)
    copy_atomic(con, segments_sql(buckets), segments)
    m = copy_atomic(con, unlinked_sql(), unlinked)
    return AgingFiles(out, segments, unlinked, n, m)
