"""Settlement of debits by credits (recon.openitems._allocate) against a plain oldest-first
allocation written in Python: each part's credits, oldest first, pay its debits in
due-date order (those written off in recon last), after what earlier passes applied."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from recon import openitems

START = date(2026, 3, 1)

#: (customer, effect in cents, day, due day offset): a debit (effect > 0) or a credit
LINE = st.tuples(
    st.sampled_from("ABC"),
    st.integers(-50_000, 50_000).filter(lambda c: c != 0),
    st.integers(0, 20),
    st.integers(0, 40),
)
#: lines and, per line, an optional reference key (the first pass's parts) and whether it
#: is written off in recon
LINES = st.lists(st.tuples(LINE, st.sampled_from([None, "R1", "R2"]), st.booleans()),
                 min_size=1, max_size=30)


def _oracle(
    lines: list[tuple[int, str, Decimal, date, date]],
    parts: dict[int, str],
    done: dict[int, Decimal],
    off: set[int],
) -> list[tuple[int, int, Decimal]]:
    """(debit, credit, amount) of one pass over `parts` (txn id -> part), after `done`;
    the debits `off` (written off) are paid last."""
    out = []
    for part in sorted(set(parts.values())):
        mine = [x for x in lines if parts.get(x[0]) == part]
        debits = sorted((x for x in mine if x[2] > 0), key=lambda x: (x[0] in off, x[4], x[3], x[0]))
        credits = sorted((x for x in mine if x[2] < 0), key=lambda x: (x[3], x[0]))
        left = {x[0]: abs(x[2]) - done.get(x[0], Decimal(0)) for x in mine}
        ds = [x[0] for x in debits if left[x[0]] > 0]
        cs = [x[0] for x in credits if left[x[0]] > 0]
        while ds and cs:
            d, c = ds[0], cs[0]
            amount = min(left[d], left[c])
            out.append((d, c, amount))
            left[d] -= amount
            left[c] -= amount
            if left[d] == 0:
                ds.pop(0)
            if left[c] == 0:
                cs.pop(0)
    return out


@settings(max_examples=60, deadline=None)
@given(LINES)
def test_passes_allocate_oldest_first_within_each_part(drawn) -> None:  # type: ignore[no-untyped-def]
    lines = []
    refs: dict[int, str] = {}
    off: set[int] = set()
    for i, ((cust, cents, day, due), ref, written_off) in enumerate(drawn, start=1):
        if written_off and cents > 0:
            off.add(i)
        d = START + timedelta(days=day)
        lines.append((i, cust, Decimal(cents) / 100, d, d + timedelta(days=due)))
        if ref is not None:
            refs[i] = f"{cust}|{ref}"
    con = duckdb.connect()
    con.execute(
        "create temp table __recon__ar_base (txn_id bigint, customer varchar, "
        "currency varchar, effect decimal(20,4), date date, due date, ref_key varchar, "
        "written_off boolean)"
    )
    con.executemany(
        "insert into __recon__ar_base values (?, ?, 'EUR', ?, ?, ?, ?, ?)",
        [(i, c, e, d, due if e > 0 else d, refs.get(i), i in off) for i, c, e, d, due in lines],
    )
    con.execute(
        f"create temp table {openitems.ALLOC} (debit_id bigint, credit_id bigint, "
        "amount decimal(20,4), method varchar, customer varchar, currency varchar)"
    )
    # aged like the real base: a credit is due on its own date
    lines = [(i, c, e, d, due if e > 0 else d) for i, c, e, d, due in lines]
    openitems._allocate(
        con,
        "reference",
        f"select {openitems.KEY}, customer || '|' || ref_key as part from __recon__ar_base "
        "where ref_key is not null",
    )
    openitems._allocate(
        con, "oldest_first", f"select {openitems.KEY}, customer as part from __recon__ar_base"
    )
    got = con.execute(
        f"select method, debit_id, credit_id, amount from {openitems.ALLOC}"
    ).fetchall()

    first = _oracle(lines, refs, {}, off)
    done: dict[int, Decimal] = {}
    for d, c, amount in first:
        done[d] = done.get(d, Decimal(0)) + amount
        done[c] = done.get(c, Decimal(0)) + amount
    second = _oracle(lines, {i: c for i, c, *_ in lines}, done, off)
    want = [("reference", *x) for x in first] + [("oldest_first", *x) for x in second]
    assert sorted(got) == sorted(want)
    # nothing is applied twice: a line's allocations never exceed its amount
    for i, _, effect, _, _ in lines:
        applied = sum(a for _, d, c, a in got if i in (d, c))
        assert applied <= abs(effect)
