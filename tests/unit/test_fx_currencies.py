"""The fx rule reads the converted ledger rows in the buckets the bank rows of their
target currency reach only (`same_cur` of recon.matchers.base.bucket_join_sql): the
same pairs, bound levels and touched rows as reading them in the buckets any bank
row reaches, with several currencies, rates into currencies no bank row has, and
crowded buckets (more than FAN rows, some sharing a name block)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from unittest import mock

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.matchers import base
from recon.matchers.base import FAN, DateWindow, Tables
from recon.matchers.fx import RATES as FX
from recon.matchers.fx import Fx

CURRENCIES = ("EUR", "USD", "GBP", "CHF")
RATE_TABLE = {("USD", "EUR"): Decimal("0.92"), ("GBP", "EUR"): Decimal("1.17"),
              ("CHF", "EUR"): Decimal("1.05"), ("GBP", "USD"): Decimal("1.27")}

amounts = st.decimals(min_value=Decimal("-3000"), max_value=Decimal("3000"), places=2)
days = st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 3, 31))
blocks = st.sampled_from(["ac", "be", "ce", None])
row = st.tuples(days, amounts, st.sampled_from(CURRENCIES), blocks)


@st.composite
def crowd(draw: st.DrawFn) -> list[tuple[date, Decimal, str, str | None]]:
    """Rows around one amount in one currency and week: a crowded bucket once converted."""
    size = draw(st.integers(FAN - 5, FAN + 40))
    amount = draw(st.decimals(min_value=Decimal(50), max_value=Decimal(900), places=2))
    day, cur = draw(days), draw(st.sampled_from(CURRENCIES))
    block = draw(blocks)
    return [(day + timedelta(days=i % 9), amount + Decimal(i % 7) / 100, cur, block)
            for i in range(size)]


def _rate(src: str, dst: str) -> Decimal | None:
    """One `src` in `dst` (the table's rate or its inverse)."""
    if (src, dst) in RATE_TABLE:
        return RATE_TABLE[src, dst]
    inverse = RATE_TABLE.get((dst, src))
    return None if inverse is None else (1 / inverse).quantize(Decimal("1E-10"))


def _paying(
    rows: list[tuple], draw: st.DrawFn, currency: str | None = None
) -> list[tuple[date, Decimal, str, str | None]]:
    """Bank rows paying some of `rows` in another currency (in `currency` if given) at the
    rate give or take 4%: pairs inside, on and outside the rule's 3%."""
    out = []
    for d, a, cur, block in rows:
        target = currency or draw(st.sampled_from([c for c in CURRENCIES if c != cur]))
        rate = _rate(cur, target)
        if rate is None or target == cur:
            continue
        factor = draw(st.decimals(min_value=Decimal("0.96"), max_value=Decimal("1.04"), places=3))
        shift = timedelta(days=draw(st.integers(-5, 16)))
        out.append((d + shift, (a * rate * factor).quantize(Decimal("0.01")), target, block))
    return out


def _table(con: duckdb.DuckDBPyConnection, name: str, rows: list[tuple]) -> None:
    con.execute(
        f"create table {name} (id integer, date date, amount decimal(18,2), "
        "currency varchar, nb varchar)"
    )
    if rows:
        con.executemany(
            f"insert into {name} values (?, ?, ?, ?, ?)", [(i, *r) for i, r in enumerate(rows)]
        )


def _results(con: duckdb.DuckDBPyConnection, m: Fx) -> dict[str, set[tuple]]:
    """What the rule's join gives: pairs, bound levels, touched rows, and pairs and levels."""
    t = Tables("l", "r")
    queries = {"pairs": m.candidates_sql(t), "levels": m.bounds_sql(t),
               "touched": m.touched_sql(t), "both": m.paired_sql(t)}
    return {out: set(con.execute(sql).fetchall()) for out, sql in queries.items() if sql}


def _reaching_any(*args: object, **kwargs: object) -> str:
    kwargs["same_cur"] = False
    return base.bucket_join_sql(*args, **kwargs)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(
    left=st.lists(row, max_size=20),
    right=st.lists(row, max_size=30),
    crowds=st.lists(crowd(), max_size=2),
    data=st.data(),
)
def test_reading_the_buckets_of_the_bank_rows_currency_changes_nothing(
    left: list[tuple], right: list[tuple], crowds: list[list[tuple]], data: st.DataObject
) -> None:
    right = right + [r for c in crowds for r in c]
    # bank rows paying ledger rows, and a few near each crowd (in one currency: its
    # converted rows crowd their buckets)
    left = left + _paying(right[: len(right) // 2], data.draw)
    for c in crowds:
        left += _paying(c[:3], data.draw, "USD" if c[0][2] != "USD" else "EUR")
    con = duckdb.connect()
    _table(con, "l", left)
    _table(con, "r", right)
    con.execute(f"create temp table {FX} (from_cur varchar, to_cur varchar, rate decimal(20,10))")
    for a, b in RATE_TABLE:
        con.execute(f"insert into {FX} values (?, ?, ?)", [a, b, _rate(a, b)])
        con.execute(f"insert into {FX} values (?, ?, ?)", [b, a, _rate(b, a)])
    m = Fx(pct=Decimal(3), date=DateWindow(3, 14))
    new = _results(con, m)
    with mock.patch("recon.matchers.fx.bucket_join_sql", _reaching_any):
        old = _results(con, m)
    assert new == old
    # "both" gives the pairs and the levels of one query
    assert {p[:2] for p in new["both"] if p[1] is not None} == new["pairs"]
