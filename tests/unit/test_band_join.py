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
