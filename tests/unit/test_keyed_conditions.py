"""The join conditions over keyed rows (day number, sign and the right row's tolerance
computed once per row, see recon.matchers.base.keyed_sql) pair exactly the rows the
per-pair expressions they replace paired: same dates in the window, same signs, same
amounts within the tolerance, to the last cent and across month and year ends."""

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
    amount_condition_sql,
    date_condition_sql,
    keyed_sql,
    log_bucket_sql,
)
from recon.matchers.fx import Fx

amounts = st.decimals(min_value=Decimal("-5000"), max_value=Decimal("5000"), places=2)
days = st.dates(min_value=date(2023, 12, 1), max_value=date(2025, 3, 1))
rows = st.lists(st.tuples(days, amounts), min_size=1, max_size=25)


@st.composite
def near(
    draw: st.DrawFn,
    left: list[tuple[date, Decimal]],
    scale: Decimal = Decimal(1),
    edges: tuple[Decimal, ...] = (),
    shifts: tuple[Decimal, ...] = (),
) -> list[tuple[date, Decimal]]:
    """Right rows near the left rows: amount times `scale` and a factor (give or take
    8%, or one of `edges`: where a tolerance ends), plus one of `shifts`, give or take
    a cent or two; dates up to three weeks apart.  Pairs then sit on every boundary."""
    ratios = st.decimals(min_value=Decimal("0.92"), max_value=Decimal("1.08"), places=3)
    out = []
    for d, a in left:
        factor = draw(st.sampled_from(edges) | ratios if edges else ratios)
        shift = draw(st.sampled_from(shifts)) if shifts else Decimal(0)
        cents = Decimal(draw(st.integers(-2, 2))) / 100
        amount = (a * scale * factor).quantize(Decimal("0.01")) + shift + cents
        out.append((d + timedelta(days=draw(st.integers(-21, 21))), amount))
    return out


def _table(con: duckdb.DuckDBPyConnection, name: str, data: list[tuple[date, Decimal]]) -> None:
    con.execute(f"create table {name} (id integer, date date, amount decimal(18,4))")
    con.executemany(
        f"insert into {name} values (?, ?, ?)", [(i, d, a) for i, (d, a) in enumerate(data)]
    )


def _pairs(con: duckdb.DuckDBPyConnection, left: str, right: str, where: str) -> set[tuple]:
    return set(
        con.execute(f"select l.id, r.id from {left} l join {right} r on {where}").fetchall()
    )


@settings(max_examples=60, deadline=None)
@given(
    left=rows,
    data=st.data(),
    before=st.integers(0, 40),
    after=st.integers(0, 40),
    tol_abs=st.decimals(min_value=Decimal(0), max_value=Decimal(30), places=2),
    tol_pct=st.decimals(min_value=Decimal(0), max_value=Decimal(20), places=1),
)
def test_keyed_conditions_pair_what_the_expressions_paired(
    left: list[tuple[date, Decimal]],
    data: st.DataObject,
    before: int,
    after: int,
    tol_abs: Decimal,
    tol_pct: Decimal,
) -> None:
    p = tol_pct / 100
    right = data.draw(near(left, edges=(1 / (1 - p), 1 / (1 + p)), shifts=(tol_abs, -tol_abs)))
    right += data.draw(rows)
    con = duckdb.connect()
    _table(con, "a", left)
    _table(con, "b", right)
    tol = AmountTolerance(tol_abs, tol_pct)
    window = DateWindow(before, after)
    old = (
        f"date_diff('day', r.date, l.date) between {-before} and {after} and "
        + (
            "l.amount = r.amount"
            if tol.exact
            else f"sign(l.amount) = sign(r.amount) and abs(l.amount - r.amount) <= "
            f"greatest({tol.abs}, abs(r.amount) * {tol.pct} / 100)"
        )
    )
    new = f"{date_condition_sql(window)} and {amount_condition_sql(tol)}"
    assert _pairs(con, keyed_sql("a"), keyed_sql("b", tol), new) == _pairs(con, "a", "b", old)


@settings(max_examples=40, deadline=None)
@given(
    left=rows,
    data=st.data(),
    rate=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("200"), places=4),
    pct=st.sampled_from([Decimal(1), Decimal(3), Decimal("7.5")]),
)
def test_fx_pairs_as_the_per_pair_conversion_did(
    left: list[tuple[date, Decimal]], data: st.DataObject, rate: Decimal, pct: Decimal
) -> None:
    """The fx rule's sign and tolerance of the converted amount, computed per right row
    of the buckets reached, pair the rows the per-pair conversion paired."""
    p = pct / 100
    right = data.draw(near(left, 1 / rate, edges=(1 / (1 - p), 1 / (1 + p)))) + data.draw(rows)
    con = duckdb.connect()
    _table(con, "l0", left)
    _table(con, "r0", right)
    con.execute("create table l as select *, 'EUR' as currency, null::varchar as nb from l0")
    con.execute("create table r as select *, 'USD' as currency, null::varchar as nb from r0")
    con.execute("create temp table __recon__fx (from_cur varchar, to_cur varchar, rate decimal(20,10))")
    con.execute("insert into __recon__fx values ('USD', 'EUR', ?)", [rate])
    m = Fx(pct=pct, date=DateWindow(3, 14))
    got = set(con.execute(m.candidates_sql(Tables("l", "r"))).fetchall())
    # the conditions as the join evaluated them per pair, over every pair: the
    # buckets hold all pairs within the tolerance (with at most 25 rows a side no
    # bound cuts, see FAN)
    old = f"""select l.id, r.id from l join (
              select r.*, r.amount * fx.rate as conv, fx.to_cur,
                     r.amount::double * fx.rate::double as conv_d
              from r join __recon__fx fx on fx.from_cur = r.currency) r
        on l.currency = r.to_cur and sign(l.amount) = sign(r.conv)
        and abs(l.amount - r.conv) <= abs(r.conv) * {pct} / 100
        and date_diff('day', r.date, l.date) between -3 and 14"""
    assert got == set(con.execute(old).fetchall())


@settings(max_examples=300, deadline=None)
@given(
    ledger=st.decimals(min_value=Decimal("0.01"), max_value=Decimal("10000000"), places=2),
    pct=st.decimals(min_value=Decimal("0.1"), max_value=Decimal("49.9"), places=1),
    negative=st.booleans(),
    inward=st.integers(0, 3),
)
def test_log_buckets_put_every_amount_within_the_tolerance_beside_its_own(
    ledger: Decimal, pct: Decimal, negative: bool, inward: int
) -> None:
    """An amount within pct% of the ledger amount, either way and right up to the edge,
    is in the ledger amount's log bucket or one beside it: the joins on those buckets
    (the FX rule's, the fuzzy rule's percentage key) find every pair the tolerance
    allows.  Below the ledger amount the edge is further away on the log scale than
    above it: a bucket as wide as ln(1 + pct/100) left some bank lines 2.99% below an
    FX rule's 3% apart, two buckets away."""
    sign = -1 if negative else 1
    p = pct / 100
    edge = Decimal("0.0001")  # the stored amounts' last digit, towards the ledger amount
    low = min(ledger, (ledger * (1 - p)).quantize(edge, rounding="ROUND_CEILING") + inward * edge)
    high = max(ledger, (ledger * (1 + p)).quantize(edge, rounding="ROUND_FLOOR") - inward * edge)
    con = duckdb.connect()
    rows = [(sign * ledger,), (sign * low,), (sign * high,)]
    con.execute("create table a (amount decimal(18,4))")
    con.executemany("insert into a values (?)", rows)
    got = [k for (k,) in con.execute(f"select {log_bucket_sql('amount', pct)} from a").fetchall()]
    assert abs(got[1] - got[0]) <= 1 and abs(got[2] - got[0]) <= 1, (rows, got)
