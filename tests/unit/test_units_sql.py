"""groups.units_sql: an amount in ten-thousandths, the same integer on both of its paths."""

from __future__ import annotations

from decimal import Decimal

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.groups import units_sql

#: amounts whose ten-thousandths fit a bigint (beyond, the group rules cannot add them)
LIMIT = Decimal("922337203685477.5807")

amounts = st.one_of(
    st.decimals(min_value=-LIMIT, max_value=LIMIT, places=4),
    # around the switch between the 64-bit and the 128-bit path
    st.integers(-(10**4), 10**4).map(lambda d: Decimal(10**9) + Decimal(d) / 10000),
    st.integers(-(10**4), 10**4).map(lambda d: -Decimal(10**9) + Decimal(d) / 10000),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(amounts, min_size=1, max_size=50))
def test_units_are_the_exact_ten_thousandths(values: list[Decimal]) -> None:
    con = duckdb.connect()
    con.execute("create table t (amount decimal(20,4))")
    con.executemany("insert into t values (?)", [[v] for v in values])
    got = [r[0] for r in con.execute(f"select {units_sql('amount')} from t").fetchall()]
    assert got == [int(v * 10000) for v in values]
