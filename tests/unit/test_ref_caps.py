"""The reference caps of a later pass, kept up to date from the keys over the cap alone,
equal the caps counted from scratch over the rows still open.

A key carried by more than MAX_REF_ROWS open rows of a side is not used to pair rows.
Rows only leave during a run, so a key's count only falls: the later passes count
again only the keys that were over the cap, less the rows that left since (see
recon.pipeline._recap).  Here the cap is three rows, keys are shared by one to eight
rows, and rows leave in a few waves, as matches take them; after each wave the capped
keys, the keys gained and the rows' has_ref flags must be those of the definition.
"""

from __future__ import annotations

from collections import Counter

import duckdb
import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from recon import pipeline
from recon.matchers.base import closed_seq, new_closings, ref_pairs_sql

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
        new_closings(con, (TABLE,))
        for wave in waves:
            since = closed_seq(con)
            # the wave's rows still open leave, as a match records them
            pipeline._close(con, TABLE, pl.Series(sorted(wave & open_ids), dtype=pl.Int64))
            open_ids -= wave
            before = capped
            pipeline._recap(con, TABLE, REFS, since)
            capped = _capped(keys, open_ids)
            assert _rows(con, f"select id, ref from {REFS}") == capped
            # the rows of the keys that came under the cap, and only those
            assert _rows(con, f"select id, ref from {REFS}_gain") == capped - before
            flagged = {
                int(i) for (i,) in con.execute(f"select id from {TABLE} where has_ref").fetchall()
            }
            assert flagged == {i for i, _ in capped}


@st.composite
def two_sides(
    draw: st.DrawFn,
) -> tuple[set[tuple[int, str]], set[tuple[int, str]], list[tuple[set[int], set[int]]]]:
    """Keys of 20 left and 20 right rows drawn from one pool (a row holding several, so a
    pair may share more than one key) and the waves of rows leaving on each side."""
    pool = [f"invoice:{k}" for k in range(draw(st.integers(2, 8)))]
    sides = []
    for _ in range(2):
        sides.append(
            draw(st.sets(st.tuples(st.integers(1, 20), st.sampled_from(pool)), max_size=40))
        )
    wave = st.sets(st.integers(1, 20), max_size=8)
    waves = draw(st.lists(st.tuples(wave, wave), min_size=1, max_size=4))
    return sides[0], sides[1], waves


_MOST_LEAVE = (
    {(i, "invoice:0") for i in range(1, 6)} | {(i, "invoice:1") for i in range(1, 18)},
    {(i, "invoice:0") for i in range(3, 9)} | {(i, "invoice:1") for i in range(2, 19)},
    [(set(range(1, 16)), set(range(1, 16))), ({16}, {17})],
)


@settings(max_examples=80, deadline=None)
@given(two_sides())
# most rows leave (the keys and pairs are then told by the rows still open), then one
@example(_MOST_LEAVE)
def test_ref_pairs_kept_up_to_date_equal_the_pairs_of_the_keys_now(
    run: tuple[set[tuple[int, str]], set[tuple[int, str]], list[tuple[set[int], set[int]]]],
) -> None:
    """A later pass's reference pairs, kept from the pass before (the pairs of rows that
    left dropped, those of keys that came under their caps added: see
    recon.pipeline._update_ref_pairs), are the pairs of the keys now, each once."""
    left_keys, right_keys, waves = run
    t = pipeline.T
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(pipeline, "MAX_REF_ROWS", CAP)
        con = duckdb.connect()
        for table, refs, keys in ((t.left, t.left_refs, left_keys), (t.right, t.right_refs, right_keys)):
            con.execute(
                f"create temp table {table} as select i::bigint as id, 'EUR' as currency, "
                "1.00::decimal(20,4) as amount, date '2026-03-01' as date, 'n' as nb, "
                "['n'] as toks, false as has_ref from range(1, 21) t(i)"
            )
            con.execute(f"create temp table {refs} (id bigint, ref varchar)")
            if keys:
                con.executemany(f"insert into {refs} values (?, ?)", sorted(keys))
            pipeline._cap(con, refs)
        con.execute(
            f"create temp table {pipeline.GONE} as select id, currency, amount, date, nb, toks, "
            f"0::bigint as seq from {t.right} limit 0"
        )
        new_closings(con, (t.left, t.right))
        assert t.ref_pairs is not None
        con.execute(f"create temp table {t.ref_pairs} as {ref_pairs_sql(t)}")
        open_ids = {t.left: set(range(1, 21)), t.right: set(range(1, 21))}
        for gone_left, gone_right in waves:
            since = closed_seq(con)
            for table, gone in ((t.left, gone_left), (t.right, gone_right)):
                pipeline._close(con, table, pl.Series(sorted(gone & open_ids[table]), dtype=pl.Int64))
                open_ids[table] -= gone
            pipeline._recap(con, t.left, t.left_refs, since)
            pipeline._recap(con, t.right, t.right_refs, since)
            pipeline._update_ref_pairs(con, since)
            kept = con.execute(f"select l, r from {t.ref_pairs}").fetchall()
            assert len(kept) == len(set(kept)), "a pair held twice"
            assert set(kept) == set(con.execute(ref_pairs_sql(t)).fetchall())
            # the definition: open rows sharing a key at most CAP open rows carry on a side
            lk = _capped(left_keys, open_ids[t.left])
            rk = _capped(right_keys, open_ids[t.right])
            assert set(kept) == {(i, j) for i, k in lk for j, q in rk if k == q}
