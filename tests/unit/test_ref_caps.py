"""The reference caps of a later pass, kept up to date from the keys over the cap alone,
equal the caps counted from scratch over the rows still open.

A key carried by more than MAX_REF_ROWS open rows of a side is not used to pair rows.
Rows only leave during a run, so a key's count only falls: the later passes count
again only the keys that were over the cap (see recon.pipeline._recap).  Here the cap
is three rows, keys are shared by one to eight rows, and rows leave in a few waves,
as matches take them; after each wave the capped keys, the keys gained and the rows'
has_ref flags must be those of the definition.
"""

from __future__ import annotations

from collections import Counter

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon import pipeline

CAP = 3
REFS = "__recon__left_refs"
TABLE = "__recon__left"


def _capped(keys: set[tuple[int, str]], open_ids: set[int]) -> set[tuple[int, str]]:
    """The definition: the keys of the open rows that at most CAP open rows carry."""
    live = {(i, k) for i, k in keys if i in open_ids}
    count = Counter(k for _, k in live)
    return {(i, k) for i, k in live if count[k] <= CAP}


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> set[tuple[int, str]]:
    rows = [(int(i), str(k)) for i, k in con.execute(sql).fetchall()]
    assert len(rows) == len(set(rows)), "a key held twice"
    return set(rows)


@st.composite
def runs(draw: st.DrawFn) -> tuple[set[tuple[int, str]], list[set[int]]]:
    """Keys of 40 rows (each key on 1-8 rows, a row holding none, one or several) and
    the waves of rows leaving, one per later pass."""
    n = 40
    keys: set[tuple[int, str]] = set()
    for k in range(draw(st.integers(3, 12))):
        holders = draw(st.sets(st.integers(1, n), min_size=1, max_size=8))
        keys |= {(i, f"invoice:{k}") for i in holders}
    waves = draw(st.lists(st.sets(st.integers(1, n), max_size=12), min_size=1, max_size=4))
    return keys, waves


@settings(max_examples=80, deadline=None)
@given(runs())
def test_later_caps_equal_caps_counted_from_scratch(
    run: tuple[set[tuple[int, str]], list[set[int]]],
) -> None:
    keys, waves = run
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "MAX_REF_ROWS", CAP)
        con = duckdb.connect()
        con.execute(f"create temp table {REFS} (id bigint, ref varchar)")
        if keys:
            con.executemany(f"insert into {REFS} values (?, ?)", sorted(keys))
        open_ids = set(range(1, 41))
        con.execute(
            f"create temp table {TABLE} as select i::bigint as id from range(1, 41) t(i)"
        )
        pipeline._cap(con, REFS)
        # the rows of the keys over the cap, set aside for the later passes
        assert _rows(con, f"select id, ref from {REFS}_capped") == keys - _capped(keys, open_ids)
        capped = _capped(keys, open_ids)
        assert _rows(con, f"select id, ref from {REFS}") == capped
        con.execute(f"alter table {TABLE} add column has_ref boolean")
        con.execute(f"update {TABLE} set has_ref = id in (select id from {REFS})")
        for wave in waves:
            open_ids -= wave
            con.execute(
                f"delete from {TABLE} where id in (select unnest(?::bigint[]))", [sorted(wave)]
            )
            before = capped
            pipeline._recap(con, TABLE, REFS)
            capped = _capped(keys, open_ids)
            assert _rows(con, f"select id, ref from {REFS}") == capped
            # the rows of the keys that came under the cap, and only those
            assert _rows(con, f"select id, ref from {REFS}_gain") == capped - before
            flagged = {
                int(i) for (i,) in con.execute(f"select id from {TABLE} where has_ref").fetchall()
            }
            assert flagged == {i for i, _ in capped}
