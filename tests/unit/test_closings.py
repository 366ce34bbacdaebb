"""The closings log: of the rows open when a rule took a closing number, those open now
are told by the rows that left since or by the rows open now, whichever are fewer
(recon.matchers.base.still_open), and both ways tell the same rows."""

from __future__ import annotations

import duckdb
import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from recon.matchers.base import closed_seq, new_closings, still_open
from recon.pipeline import _close

TABLE = "__recon__left"


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sets(st.integers(1, 30), max_size=25), min_size=1, max_size=5))
# most rows leave, then one: both ways are taken
@example([set(range(1, 26)), {26}])
def test_still_open_tells_which_rows_open_then_are_open_now(waves: list[set[int]]) -> None:
    con = duckdb.connect()
    con.execute(f"create temp table {TABLE} as select i::bigint as id from range(1, 31) t(i)")
    new_closings(con, (TABLE,))
    open_ids = set(range(1, 31))
    taken: list[tuple[int, set[int]]] = []  # (closing number, the rows open then)
    for wave in waves:
        taken.append((closed_seq(con), set(open_ids)))
        _close(con, TABLE, pl.Series(sorted(wave & open_ids), dtype=pl.Int64))
        open_ids -= wave
        for seen, then in taken:
            still = still_open(con, TABLE, seen)
            # the fewer are named (counted from the log of closings)
            assert still.out == (len(then - open_ids) <= len(open_ids))
            rows = pl.DataFrame({"id": sorted(then)}, schema={"id": pl.Int64})
            assert set(rows.filter(still.expr("id"))["id"].to_list()) == open_ids
