"""Reversal pairs by two keyed joins (same name; same reference) are the pairs of the
one join filtered by either that they replace; a missing name or reference (null, or an
empty reference) is the same as no other."""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from recon.matchers.base import DateWindow
from recon.matchers.reversal import Reversal

maybe = st.sampled_from
rows = st.lists(
    st.tuples(
        # few values, so rows pair often: the name and the reference decide
        maybe([-100, -50, 100]),
        maybe([None, "", "", "DE01"]),
        maybe(["EUR", "EUR", "USD"]),
        st.integers(0, 14),
        maybe([None, "", "acme", "beta"]),
        maybe([None, "", "R1", "R2"]),
    ),
    max_size=40,
)


def filtered_sql(table: str, days: int) -> str:
    """The single join filtered by name or reference (before the two keyed joins)."""
    return f"""select p.id as l, n.id as r
        from {table} p join {table} n
          on n.amount = -p.amount and p.amount > 0
         and coalesce(p.account, '') = coalesce(n.account, '') and p.currency = n.currency
         and abs(date_diff('day', p.date, n.date)) <= {days}
         and (p.name_key = n.name_key or p.reference = n.reference and p.reference <> '')"""


@settings(deadline=None, max_examples=150)
@given(rows, st.integers(0, 12))
# an empty reference meets neither a missing one nor another empty one
@example([(100, None, "EUR", 1, "acme", ""), (-100, None, "EUR", 2, "beta", None)], 5)
@example([(100, None, "EUR", 1, "acme", None), (-100, None, "EUR", 2, "beta", "")], 5)
def test_keyed_joins_pair_what_the_filtered_join_paired(
    values: list[tuple[int, str | None, str, int, str | None, str | None]], days: int
) -> None:
    start = dt.date(2026, 3, 1)
    frame = pl.DataFrame(  # noqa: F841 (read by DuckDB)
        {
            "id": list(range(1, len(values) + 1)),
            "amount": [v[0] for v in values],
            "account": [v[1] for v in values],
            "currency": [v[2] for v in values],
            "date": [start + dt.timedelta(days=v[3]) for v in values],
            "name_key": [v[4] for v in values],
            "reference": [v[5] for v in values],
        },
        schema={
            "id": pl.Int64,
            "amount": pl.Decimal(20, 4),
            "account": pl.String,
            "currency": pl.String,
            "date": pl.Date,
            "name_key": pl.String,
            "reference": pl.String,
        },
    )
    con = duckdb.connect()
    con.execute("create table t as select * from frame")
    m = Reversal(date=DateWindow(0, days))
    got = con.execute(f"select l, r from ({m.pairs_sql('t')}) order by all").fetchall()
    want = con.execute(f"select l, r from ({filtered_sql('t', days)}) order by all").fetchall()
    assert got == want
    # and without the name condition, one join on amount, account and currency
    loose = Reversal(date=DateWindow(0, days), require_same_name=False)
    assert len(con.execute(loose.pairs_sql("t")).fetchall()) >= len(got)
