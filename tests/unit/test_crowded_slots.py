"""Crowded slots: summing only near a count past a third (a ninth) of the bound finds the
slots that summing every count over its weeks (and buckets) either side finds."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.matchers.base import BLOCK_FAN, FAN, _crowded_slots, _crowded_slots_sql

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


def _in_crowded_windows(
    rows: list[tuple[str, str | None, int, int, int]], by_name: bool, most: int
) -> list[tuple]:
    """The counts in a window of three buckets and three weeks summing past `most`, by
    hand: every window around every count's slot summed."""
    cells = {(cur, nb if by_name else None, k, wk): n for cur, nb, k, wk, n in rows
             if nb is not None or not by_name}
    near = (-1, 0, 1)
    kept = set()
    for cur, nb, k, wk in cells:
        for ck in (k - 1, k, k + 1):
            for cw in (wk - 1, wk, wk + 1):
                window = [(cur, nb, ck + a, cw + b) for a in near for b in near]
                if sum(cells.get(c, 0) for c in window) > most:
                    kept |= {c for c in window if c in cells}
    if by_name:
        return sorted((cur, k, wk, nb, cells[cur, nb, k, wk]) for cur, nb, k, wk in kept)
    return sorted((cur, k, wk, cells[cur, nb, k, wk]) for cur, nb, k, wk in kept)


# few slots, so that windows fill up; counts near a ninth of either bound (the seeds:
# 5 and 21), windows of nine small counts past it, and counts near the bound itself
slot_counts = st.lists(
    st.tuples(
        st.sampled_from(["EUR", "USD"]),
        st.sampled_from([None, "MUEL", "NORD"]),
        st.integers(-1, 2),
        st.integers(0, 3),
        st.one_of(st.integers(1, 12), st.integers(18, 30), st.integers(1, 200)),
    ),
    max_size=80,
    unique_by=lambda c: c[:4],
)


@settings(max_examples=300, deadline=None)
@given(slot_counts, st.booleans(), st.sampled_from([FAN, BLOCK_FAN]))
def test_counts_kept_for_later_passes_are_those_of_crowded_windows(
    rows: list[tuple[str, str | None, int, int, int]], by_name: bool, most: int
) -> None:
    """_crowded_slots (what bucket_counts_sql keeps for a later pass) sums only the
    windows around a count past a ninth of `most`, and finds every window summing past
    it."""
    con = duckdb.connect()
    if by_name:
        con.execute("create table c (cur varchar, k bigint, wk bigint, nb varchar, n bigint)")
        data = [(cur, k, wk, nb, n) for cur, nb, k, wk, n in rows]
    else:
        con.execute("create table c (cur varchar, k bigint, wk bigint, n bigint)")
        # one count per (cur, k, wk): the slot counts of a bucket join have no name
        data = list({(cur, k, wk): (cur, k, wk, n) for cur, _, k, wk, n in rows}.values())
        rows = [(cur, None, k, wk, n) for cur, k, wk, n in data]
    if data:
        con.executemany(f"insert into c values ({', '.join('?' * len(data[0]))})", data)
    got = sorted(con.execute(_crowded_slots("c", ("nb",) if by_name else (), most)).fetchall())
    assert got == _in_crowded_windows(rows, by_name, most)


def test_nine_small_counts_crowd_their_window() -> None:
    """Nine slots of 6 right rows (54 > FAN), none past a third of FAN: their window is
    found from the counts past a ninth of it, and a slot beside it is not kept."""
    con = duckdb.connect()
    con.execute("create table c (cur varchar, k bigint, wk bigint, n bigint)")
    window = [[k, w, 6] for k in (4, 5, 6) for w in (9, 10, 11)]
    con.executemany("insert into c values ('EUR', ?, ?, ?)", [*window, [9, 10, 6]])
    got = sorted(con.execute(_crowded_slots("c", (), FAN)).fetchall())
    assert got == sorted(("EUR", k, w, 6) for k, w, _ in window)
