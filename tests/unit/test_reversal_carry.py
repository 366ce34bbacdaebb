"""A reversal rule's later pass takes the pairs of the pass before whose rows are both
still open: they equal the pairs found afresh over the rows still open.

Rows of one side (amounts and their opposites, a few accounts and currencies, names
and references alike or not, dates a few days apart) leave the open table in waves,
as matches take them; after each wave the carried pairs must be the self-join's.
"""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.matchers.base import DateWindow, new_closings
from recon.matchers.reversal import Reversal
from recon.periods import FROZEN
from recon.pipeline import ReversalCarry, _close, reversal_pairs

TABLE = "__recon__left"


@st.composite
def rows(draw: st.DrawFn) -> list[tuple[int, str, str, str, date, str, str | None]]:
    """(id, amount, account, currency, date, name_key, reference): 2-30 rows whose
    amounts are a few values and their opposites."""
    amounts = draw(st.lists(st.sampled_from(["10.00", "25.50"]), min_size=2, max_size=30))
    out = []
    for i, a in enumerate(amounts, start=1):
        sign = draw(st.sampled_from(["", "-"]))
        out.append(
            (
                i,
                sign + a,
                draw(st.sampled_from(["DE01", "DE01", "DE02"])),
                draw(st.sampled_from(["EUR", "EUR", "USD"])),
                date(2026, 3, 1) + timedelta(days=draw(st.integers(0, 12))),
                draw(st.sampled_from(["acme", "globex"])),
                draw(st.sampled_from([None, "INV-1", "INV-2"])),
            )
        )
    return out


def _open(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"create or replace temp table {TABLE} (id bigint, amount decimal(20,4), "
        "account varchar, currency varchar, date date, name_key varchar, reference varchar)"
    )
    # no row dated in a closed month (see recon.periods)
    con.execute(f"create or replace temp table {FROZEN} (id bigint, date date)")


@settings(max_examples=80, deadline=None)
@given(
    rows(),
    st.lists(st.sets(st.integers(1, 30), max_size=8), min_size=1, max_size=4),
    st.booleans(),
)
def test_carried_reversal_pairs_equal_pairs_found_afresh(
    stored: list[tuple[int, str, str, str, date, str, str | None]],
    waves: list[set[int]],
    same_name: bool,
) -> None:
    m = Reversal(date=DateWindow(0, 10), require_same_name=same_name)  # as rules/default.yaml
    con = duckdb.connect()
    _open(con)
    con.executemany(f"insert into {TABLE} values (?, ?, ?, ?, ?, ?, ?)", stored)
    new_closings(con, (TABLE,))
    carry = ReversalCarry()
    first = reversal_pairs(con, m, TABLE, "left", carry)
    assert set(first.iter_rows()) == set(reversal_pairs(con, m, TABLE, "left").iter_rows())
    for wave in waves:
        # the rows of the wave still open leave, as a match records them
        still = [i for i in sorted(wave) if i <= len(stored)]
        _close(con, TABLE, pl.Series(still, dtype=pl.Int64))
        carried = reversal_pairs(con, m, TABLE, "left", carry)
        afresh = reversal_pairs(con, m, TABLE, "left")
        assert set(carried.iter_rows()) == set(afresh.iter_rows())
        assert carried.height == afresh.height  # no pair twice
