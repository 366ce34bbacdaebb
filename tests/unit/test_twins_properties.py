"""The aging's twins, paired in one pass by the compiled greedy kernel, are the pairs the
rounds of SQL statements it replaced gave, and those of a plain greedy in Python.

The candidates are drawn as ``twin_candidates_sql`` gives them: a ledger receipt has
one customer and currency; a bank line may be a receipt of several customers and
currencies (a group's payer, a payment in another currency), one of each, so a ledger
receipt meets a bank line at most once.  Days are drawn from a few values, so ties are
common, and a receipt is a candidate of many bank receipts.
"""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recon import openitems
from recon.openitems import TWINS, _pair_twins

Candidate = tuple[int, str, str, str, int, int]

CANDIDATES = "__test_twin_candidates"


@st.composite
def candidate_sets(draw: st.DrawFn) -> list[Candidate]:
    """(bank_id, customer, currency, match_id, receipt_id, days) rows."""
    customers = st.sampled_from(("C1", "C2"))
    currencies = st.sampled_from(("EUR", "USD"))
    receipt_ids = draw(st.lists(st.integers(1, 60), unique=True, max_size=10))
    receipts = [(r, draw(customers), draw(currencies)) for r in receipt_ids]
    # few bank ids: a bank line is often a receipt of several customers or currencies
    banks = draw(
        st.lists(st.tuples(st.integers(1, 5), customers, currencies), unique=True, max_size=12)
    )
    return [
        (b, customer, currency, f"M{b}", r, draw(st.integers(0, 3)))
        for b, customer, currency in banks
        for r, r_customer, r_currency in receipts
        if (r_customer, r_currency) == (customer, currency) and draw(st.booleans())
    ]


def rounds_pair_twins_before_the_kernel(con: duckdb.DuckDBPyConnection) -> None:
    """The reference: recon.openitems._pair_twins as it was before the compiled kernel
    (commit 4cc144e), one SQL statement a round, each round pairing the candidates first
    on both their sides."""
    cand = "__recon__ar_twin_candidates"
    n = con.execute(
        f"create or replace temp table {cand} as {openitems.twin_candidates_sql()}"
    ).fetchall()[0][0]
    con.execute(f"""create or replace temp table {TWINS} (bank_id bigint, customer varchar,
        currency varchar, match_id varchar, receipt_id bigint)""")
    for _ in range(n):
        added = con.execute(f"""insert into {TWINS}
            with c as (
                select * from {cand} c
                where not exists (select 1 from {TWINS} w where w.receipt_id = c.receipt_id)
                  and not exists (select 1 from {TWINS} w where w.bank_id = c.bank_id
                                  and w.customer = c.customer and w.currency = c.currency)),
            r as (
                select *, row_number() over (partition by bank_id, customer, currency
                                             order by days, receipt_id) as rb,
                          row_number() over (partition by receipt_id
                                             order by days, bank_id) as rr
                from c)
            select bank_id, customer, currency, match_id, receipt_id from r
            where rb = 1 and rr = 1""").fetchall()[0][0]
        if not added:
            break
    con.execute(f"drop table {cand}")


def plain_greedy(candidates: list[Candidate]) -> list[tuple[int, str, str, str, int]]:
    """Nearest first (then bank id, receipt id), each bank receipt and ledger receipt once."""
    banks, receipts, twins = set(), set(), []
    for b, customer, currency, match_id, r, _ in sorted(
        candidates, key=lambda c: (c[5], c[0], c[4])
    ):
        if (b, customer, currency) not in banks and r not in receipts:
            banks.add((b, customer, currency))
            receipts.add(r)
            twins.append((b, customer, currency, match_id, r))
    return sorted(twins)


def _twins(con: duckdb.DuckDBPyConnection) -> tuple[list[tuple], list[tuple]]:
    """(column names and types, rows) of table TWINS."""
    columns = con.execute(f"select column_name, column_type from (describe {TWINS})").fetchall()
    return columns, con.execute(f"select * from {TWINS} order by all").fetchall()


@given(candidate_sets())
def test_the_kernel_pairs_the_twins_the_rounds_paired(candidates: list[Candidate]) -> None:
    con = duckdb.connect()
    con.execute(f"""create temp table {CANDIDATES} (bank_id bigint, customer varchar,
        currency varchar, match_id varchar, receipt_id bigint, days bigint)""")
    if candidates:
        con.executemany(f"insert into {CANDIDATES} values (?, ?, ?, ?, ?, ?)", candidates)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(openitems, "twin_candidates_sql", lambda: f"select * from {CANDIDATES}")
        rounds_pair_twins_before_the_kernel(con)
        before = _twins(con)
        _pair_twins(con)
        after = _twins(con)
    assert after == before
    assert after[1] == plain_greedy(candidates)
