"""The reconciliation statement's balances, every account from one query of table
statements, against one query per account and currency (the way they were first
read, kept here as the reference; its order among statements of one period is made
explicit: the order they were loaded in)."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import duckdb

from recon import db as D
from recon.reports import brs

AS_OF = date(2026, 3, 31)
MARCH = (date(2026, 3, 1), date(2026, 3, 31))


def _reference(con: duckdb.DuckDBPyConnection, account: str, currency: str) -> brs.Balances:
    rows = con.execute(
        """select opening_balance, closing_balance, start_date, end_date from statements
        where coalesce(account, '') = ? and coalesce(currency, ?) = ?
          and (end_date is null or end_date <= ?)
          and file_id in (select file_id from files where side = 'bank')
        order by start_date nulls first, end_date nulls last, file_id, seq""",
        [account, currency, currency, AS_OF],
    ).fetchall()
    return brs._picked(rows, currency)


def _store(con: duckdb.DuckDBPyConnection, side: str, statements: list[tuple]) -> None:
    """A file of `side` stating `statements` (account, currency, opening, closing,
    start, end)."""
    file_id = con.execute("select coalesce(max(file_id), 0) + 1 from files").fetchall()[0][0]
    con.execute(
        "insert into files (file_id, path, sha256, side) values (?, ?, ?, ?)",
        [file_id, f"f{file_id}", f"sha{file_id}", side],
    )
    for seq, st in enumerate(statements, start=1):
        con.execute(
            "insert into statements values (?, ?, null, ?, ?, ?, ?, ?, ?, 1)",
            [file_id, seq, *st],
        )


def test_balances_of_every_account_equal_one_query_per_account() -> None:
    rnd = random.Random(7)
    con = D.connect(":memory:")

    def some(*values: object) -> object:
        return rnd.choice(values)

    for _ in range(40):
        _store(con, str(some("bank", "bank", "ledger", "statement")), [
            (some(None, "", "A", "B"), some(None, "EUR", "USD"),
             some(None, Decimal(rnd.randint(-10**6, 10**6)) / 100),
             some(None, Decimal(rnd.randint(-10**6, 10**6)) / 100),
             some(None, date(2026, rnd.randint(1, 4), 1)),
             some(None, date(2026, rnd.randint(1, 4), 28)))
            for _ in range(rnd.randint(1, 3))
        ])
    # an opening and no closing; no opening in the first statement, one in the next
    _store(con, "bank", [("D", "EUR", Decimal(10), None, *MARCH),
                         ("E", "EUR", None, None, date(2026, 2, 1), date(2026, 2, 28)),
                         ("E", "EUR", Decimal(5), Decimal(6), *MARCH)])
    keys = [(a, c) for a in ("", "A", "B", "C", "D", "E") for c in ("EUR", "USD", "JPY")]
    got = brs._balances(con, keys, AS_OF)
    assert got == {(a, c): _reference(con, a, c) for a, c in keys}
    # the cases the reference has to agree on are there
    assert got[("C", "EUR")].note == (" (no statement balance in the files: opening + bank "
                                      "lines, opening taken as 0.00)")
    assert got[("D", "EUR")].note == " (no statement balance in the files: opening + bank lines)"
    assert got[("E", "EUR")] == brs.Balances(Decimal(5), MARCH[0], Decimal(6), MARCH[1], "")
    assert sum(b.closing is not None for b in got.values()) > 6


def test_statements_of_one_period_are_taken_in_the_order_they_were_loaded() -> None:
    # DuckDB's sort keeps no order among ties: sorting thirty accounts' statements
    # together took another file's opening than one account's query did
    con = D.connect(":memory:")
    accounts = [f"A{n:02}" for n in range(30)]
    for first in (True, False):
        _store(con, "bank", [
            (a, "EUR", Decimal(1 if first else 2), Decimal(3 if first else 4), *MARCH)
            for a in accounts
        ])
    got = brs._balances(con, [(a, "EUR") for a in accounts], AS_OF)
    assert {(b.opening, b.closing) for b in got.values()} == {(Decimal(1), Decimal(4))}
