"""Stored rows are numbered in (date, source id, line) order, whatever the file's order."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.db import _txn_ids

rows = st.lists(
    st.tuples(
        st.integers(0, 5).map(lambda d: date(2026, 3, 1) + timedelta(days=d)),
        st.text(alphabet="aAbZ09-éü票 ", max_size=4),
        st.one_of(st.none(), st.integers(1, 6)),
    ),
    max_size=40,
)


def _frame(data: list[tuple[date, str, int | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        data, schema={"date": pl.Date, "id": pl.String, "line": pl.Int64}, orient="row"
    )


@settings(max_examples=200, deadline=None)
@given(rows, st.integers(0, 10**6))
def test_numbering_is_sql_order_by_date_id_line(data, start) -> None:
    frame = _frame(data)  # read by DuckDB below
    expected = duckdb.sql(
        f"""select {start} + row_number() over (order by date, id, line nulls last, pos)
        from (select *, row_number() over () as pos from frame) order by pos"""
    ).fetchall()
    assert _txn_ids(frame, start).to_list() == [e[0] for e in expected]


@settings(max_examples=100, deadline=None)
@given(rows, st.randoms(use_true_random=False))
def test_a_reordered_export_gives_each_row_the_same_id(data, rnd) -> None:
    distinct = list(dict.fromkeys(data))
    shuffled = distinct[:]
    rnd.shuffle(shuffled)
    before = dict(zip(distinct, _txn_ids(_frame(distinct), 100).to_list(), strict=True))
    after = dict(zip(shuffled, _txn_ids(_frame(shuffled), 100).to_list(), strict=True))
    assert before == after
