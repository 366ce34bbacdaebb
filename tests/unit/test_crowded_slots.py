"""The word join's crowded slots: summing only near a count past a third of FAN finds the
slots that summing every count over its week and the weeks either side finds."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.matchers.base import FAN, _crowded_slots_sql

#: The slots as first written: every count spread over three weeks, then summed.
EVERY_COUNT = f"""select cur, tok, k, w from (select *, unnest([wk - 1, wk, wk + 1]) as w
                  from tf) group by all having sum(n) > {FAN}"""

# few currencies, words, buckets and weeks: counts meet in the same slots often;
# counts around FAN / 3 and FAN, where the two forms could part
counts = st.lists(
    st.tuples(
        st.sampled_from(["EUR", "USD"]),
        st.sampled_from(["mueller", "global", "nord"]),
        st.integers(-2, 2),
        st.integers(0, 6),
        st.one_of(
            st.integers(1, 3), st.integers(FAN // 3 - 2, FAN // 3 + 2), st.integers(1, 2 * FAN)
        ),
    ),
    max_size=60,
    unique_by=lambda c: c[:4],
)


@settings(max_examples=300, deadline=None)
@given(counts)
def test_crowded_slots_equal_the_sum_of_every_count(
    rows: list[tuple[str, str, int, int, int]],
) -> None:
    con = duckdb.connect()
    con.execute("create table tf (cur varchar, tok varchar, k bigint, wk bigint, n bigint)")
    if rows:
        con.executemany("insert into tf values (?, ?, ?, ?, ?)", rows)
    got = sorted(con.execute(_crowded_slots_sql("tf")).fetchall())
    assert got == sorted(con.execute(EVERY_COUNT).fetchall())


def test_a_slot_is_crowded_by_three_weeks_together() -> None:
    """17 + 16 + 16 right rows in three weeks crowd the middle week's slot (49 > 48), and
    only it: the weeks either side see two of the counts."""
    con = duckdb.connect()
    con.execute("create table tf (cur varchar, tok varchar, k bigint, wk bigint, n bigint)")
    con.executemany(
        "insert into tf values ('EUR', 'nord', 5, ?, ?)", [[9, 16], [10, 17], [11, 16]]
    )
    assert con.execute(_crowded_slots_sql("tf")).fetchall() == [("EUR", "nord", 5, 10)]
