"""A band join (amount buckets, and a shared name word or name block) pairs exactly the
rows a plain join on the conditions pairs, when no crowding bound cuts (fewer rows than
FAN): every pair within the amount tolerance, absolute or relative, right up to its
edges."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.matchers.base import (
    AmountTolerance,
    DateWindow,
    Tables,
    band_join_sql,
    date_condition_sql,
)

WORDS = st.lists(st.integers(1, 4), max_size=3, unique=True)


@st.composite
def rows(draw: st.DrawFn, near: list[tuple] | None = None, pct: Decimal = Decimal(0),
         tol_abs: Decimal = Decimal(0)) -> list[tuple]:
    """Rows (date, amount, name block, words): with `near` (rows), amounts on and around
    the edges of the tolerance of theirs, dates a little after theirs (bank lines come
    after the ledger's) or further."""
    out = []
    for _ in range(draw(st.integers(1, 20))):
        if near:
            day, base, _, _ = draw(st.sampled_from(near))
            p = pct / 100
            # a right amount's tolerance is relative to itself: left = right(1 -/+ p)
            edge = draw(st.sampled_from([base / (1 - p), base / (1 + p), base - tol_abs,
                                         base + tol_abs, base]))
            amount = edge.quantize(Decimal("0.01")) + Decimal(draw(st.integers(-2, 2))) / 100
            day -= timedelta(days=draw(st.integers(-6, 16)))
        else:
            amount = draw(st.decimals(Decimal("-3000"), Decimal("3000"), places=2))
            day = date(2025, 1, 1) + timedelta(days=draw(st.integers(0, 40)))
        out.append((day, amount, draw(st.sampled_from(["ac", "be"])), draw(WORDS)))
    return out


def _table(con: duckdb.DuckDBPyConnection, name: str, data: list[tuple]) -> None:
    con.execute(f"""create table {name} (id integer, date date, amount decimal(18,4),
        currency varchar, nb varchar, toks integer[])""")
    con.executemany(f"insert into {name} values (?, ?, ?, 'EUR', ?, ?)",
                    [(i, *r) for i, r in enumerate(data)])


@settings(max_examples=100, deadline=None)
@given(
    left=rows(),
    data=st.data(),
    tol_abs=st.sampled_from([Decimal(0), Decimal("1.00"), Decimal("25.00")]),
    tol_pct=st.sampled_from([Decimal(0), Decimal("0.5"), Decimal(3), Decimal(20)]),
    names=st.sampled_from(["", "word", "block"]),
)
def test_band_join_pairs_every_pair_within_the_tolerance(
    left: list[tuple], data: st.DataObject, tol_abs: Decimal, tol_pct: Decimal, names: str
) -> None:
    right = data.draw(rows(left, tol_pct, tol_abs))
    con = duckdb.connect()
    _table(con, "l0", left)
    _table(con, "r0", right)
    tol, window = AmountTolerance(tol_abs, tol_pct), DateWindow(5, 14)
    extra = ["l.currency = r.currency", date_condition_sql(window)]
    sql = band_join_sql(Tables("l0", "r0"), tol, extra, names=names)
    assert sql is not None
    got = set(con.execute(sql).fetchall())
    shared = {
        "": "true",
        "word": "len(list_intersect(l.toks, r.toks)) > 0",
        "block": "l.nb = r.nb",
    }["" if tol.exact else names]  # identical amounts pair by amount alone
    want = set(con.execute(f"""select l.id, r.id from l0 l join r0 r
        on sign(l.amount) = sign(r.amount)
        and abs(l.amount - r.amount) <= greatest({tol.abs}, abs(r.amount) * {tol.pct} / 100)
        and date_diff('day', r.date, l.date) between -5 and 14 and {shared}""").fetchall())
    assert got == want


CROWD = st.tuples(
    st.sampled_from([Decimal("100.00"), Decimal("100.40"), Decimal("101.20"), Decimal("250.00")]),
    st.integers(0, 20),
    st.sampled_from(["ac", "be"]),
    st.lists(st.integers(1, 3), min_size=1, max_size=2, unique=True),
)


@settings(max_examples=60, deadline=None)
@given(
    left=st.lists(CROWD, min_size=1, max_size=15),
    right=st.lists(CROWD, min_size=1, max_size=40),
    data=st.data(),
    tol=st.sampled_from([
        AmountTolerance(Decimal("1.00"), Decimal("0.5")),  # the fuzzy rule's two keys
        AmountTolerance(Decimal("1.00"), Decimal(0)),
        AmountTolerance(Decimal(0), Decimal(3)),
    ]),
    names=st.sampled_from(["", "word"]),
)
def test_levels_read_from_counts_less_the_rows_gone_equal_levels_counted_afresh(
    left: list[tuple], right: list[tuple], data: st.DataObject, tol: AmountTolerance, names: str
) -> None:
    """A later pass reads a bucket or word join's levels from the right rows counted per
    slot before (only the slots of crowded windows kept), less those of the rows that
    left since: the levels that counting the open right rows afresh gives."""
    import polars as pl

    if names == "" and tol.abs and tol.pct:
        return  # two bucket keys: counted in the joins, not per slot (counts_sql None)
    gone = data.draw(st.sets(st.sampled_from(range(len(right))), max_size=len(right)))

    def dated(data: list[tuple]) -> list[tuple]:
        return [(date(2025, 1, 1) + timedelta(days=d), a, nb, w) for a, d, nb, w in data]

    con = duckdb.connect()
    _table(con, "l0", dated(left))
    _table(con, "r0", dated(right))
    con.execute(f"create table g0 as select * from r0 where id in ({','.join(map(str, gone)) or 'null'})")
    con.execute("create table r1 as select * from r0 where id not in (select id from g0)")
    extra = ["l.currency = r.currency", date_condition_sql(DateWindow(5, 14))]

    def ask(t: Tables, out: str) -> pl.DataFrame:
        sql = band_join_sql(t, tol, extra, names=names, out=out)
        assert sql is not None
        return con.sql(sql).pl()

    from_counts, afresh = _levels_both_ways(con, ask)
    assert set(from_counts.iter_rows()) == set(afresh.iter_rows())


def _levels_both_ways(con: duckdb.DuckDBPyConnection, ask):  # type: ignore[no-untyped-def]
    """The levels of l0's rows against r1 (r0 less g0), read from r0's counts less g0's
    and counted afresh, with FAN 3 (BLOCK_FAN 6)."""
    from unittest import mock

    from recon import pipeline
    from recon.matchers import base

    with mock.patch.object(base, "FAN", 3), mock.patch.object(base, "BLOCK_FAN", 6):
        counted = pipeline._typed_counts(ask(Tables("l0", "r0"), "counts"))
        now = pipeline._less(counted, pipeline._typed_counts(ask(Tables("l0", "g0"), "tally")))
        con.register("now", now)
        return ask(Tables("l0", "r1", counts="now"), "levels"), ask(Tables("l0", "r1"), "levels")


def test_pruned_counts_keep_every_slot_of_a_crowded_window() -> None:
    """A word slot is crowded by the rows of its week and the weeks either side: the
    counts kept for a later pass hold all three weeks of a crowded slot, also those of
    weeks not crowded themselves (1 + 1 + 2 rows in three weeks, FAN 3: only the middle
    week's slot is crowded)."""
    monday = date(2025, 1, 6)
    week = [monday, monday + timedelta(days=7), monday + timedelta(days=14)]
    con = duckdb.connect()
    a = Decimal("100.00")
    _table(con, "l0", [(week[1], a, "ac", [1])])
    _table(con, "r0", [(week[0], a, "ac", [1]), (week[1], a, "ac", [1]),
                       (week[2], a, "ac", [1]), (week[2], a, "ac", [1])])
    con.execute("create table g0 as select * from r0 where false")
    con.execute("create table r1 as select * from r0")
    tol = AmountTolerance(Decimal("1.00"), Decimal(0))
    extra = ["l.currency = r.currency", date_condition_sql(DateWindow(5, 14))]

    def ask(t: Tables, out: str):  # type: ignore[no-untyped-def]
        sql = band_join_sql(t, tol, extra, names="word", out=out)
        assert sql is not None
        return con.sql(sql).pl()

    from_counts, afresh = _levels_both_ways(con, ask)
    assert afresh.rows() == [(0, 1)]
    assert from_counts.rows() == [(0, 1)]
