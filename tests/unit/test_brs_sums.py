"""The reconciliation statement's sums, all accounts at once, against one query per
account and line (the way the statement was first written, kept here as the reference).

The demo month is reconciled, then given what it lacks: items written off on both
sides, a match spanning two bank accounts in one currency, and ledger invoices."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb

from recon import matchinfo
from recon.loaders import load_file
from recon.pipeline import open_items_sql
from recon.reports import brs

from ..conftest import ROOT, reconciled

AS_OF = date(2026, 3, 31)
SECOND = "DE91100000000123456789"  # a second EUR account


def _reference(con: duckdb.DuckDBPyConnection, account: str, currency: str) -> dict[str, Decimal]:
    def total(sql: str, *params: object) -> Decimal:
        return Decimal(
            con.execute(f"select coalesce(sum(amount), 0) from ({sql})", params).fetchall()[0][0]
        )

    acct, cur, end = "coalesce(account, '') = ?", "currency = ?", f"date <= date '{AS_OF}'"
    lacct = "txn_id in (select txn_id from __recon__ledger_acct where bank_account = ?)"
    resolved = (
        "txn_id in (select txn_id from decisions where active "
        "and decision in ('write_off', 'ignore'))"
    )
    bank = f"select amount from txns where side = 'bank' and {acct} and {cur} and {end}"
    cash = f"txn_id not in (select txn_id from {brs._DOCS})"
    ledger = (f"select amount from txns where side = 'ledger' and {lacct} and {cur} and {end} "
              f"and {cash}")
    bank_open = f"select amount from {brs._open_rows('bank')} where {acct} and {cur}"
    ledger_open = (f"select amount from {brs._open_rows('ledger')} where {lacct} and {cur} "
                   f"and {cash}")
    a, c = account, currency
    return {
        "bank_all": total(bank, a, c),
        "ledger_all": total(ledger, a, c),
        "bank_resolved": total(f"{bank} and {resolved}", a, c),
        "ledger_resolved": total(f"{ledger} and {resolved}", a, c),
        "dit": total(f"{ledger_open} and amount > 0", a, c),
        "outstanding": total(f"{ledger_open} and amount < 0", a, c),
        "unbooked_in": total(f"{bank_open} and amount > 0", a, c),
        "unbooked_out": total(f"{bank_open} and amount < 0", a, c),
        "matched_diff": total(
            "select diff as amount from __recon__brs_match where cur = cur_hi and cur = ? "
            "and bank_lo = ? and bank_hi = bank_lo and last <= ?",
            c,
            a,
            AS_OF,
        )
        + total(
            """select t.amount from match_members mm join txns t on t.txn_id = mm.txn_id
            where mm.match_id in (select match_id from __recon__brs_match where cur = cur_hi
                                  and bank_hi <> bank_lo and last <= ?)
              and t.side = 'bank' and coalesce(t.account, '') = ? and t.currency = ?
            union all
            select -t.amount from match_members mm join txns t on t.txn_id = mm.txn_id
            where mm.match_id in (select match_id from __recon__brs_match where cur = cur_hi
                                  and bank_hi <> bank_lo and last <= ?)
              and t.side = 'ledger' and t.currency = ?
              and t.txn_id in (select txn_id from __recon__ledger_acct where bank_account = ?)""",
            AS_OF,
            a,
            c,
            AS_OF,
            c,
            a,
        ),
        "foreign": total(
            """select t.amount from match_members mm join txns t on t.txn_id = mm.txn_id
            where mm.match_id in (select match_id from __recon__brs_match
                                  where cur <> cur_hi and last <= ?)
              and t.side = 'bank' and coalesce(t.account, '') = ? and t.currency = ?
            union all
            select -t.amount from match_members mm join txns t on t.txn_id = mm.txn_id
            where mm.match_id in (select match_id from __recon__brs_match
                                  where cur <> cur_hi and bank_lo is not null and last <= ?)
              and t.side = 'ledger' and t.currency = ?
              and t.txn_id in (select txn_id from __recon__ledger_acct where bank_account = ?)""",
            AS_OF,
            a,
            c,
            AS_OF,
            c,
            a,
        ),
        "documents": total(
            f"""select t.amount from match_members mm join txns t on t.txn_id = mm.txn_id
            where mm.match_id in (select match_id from __recon__brs_match
                                  where bank_lo is not null and last <= ?)
              and t.txn_id in (select txn_id from {brs._DOCS}) and t.currency = ?
              and t.txn_id in (select txn_id from __recon__ledger_acct where bank_account = ?)""",
            AS_OF,
            c,
            a,
        ),
    }


def test_sums_of_every_account_equal_one_query_per_account_and_line() -> None:
    demo = ROOT / "sample_data" / "demo"
    con = reconciled([(side, load_file(demo / f"{side}.csv")) for side in ("bank", "ledger")])
    # written off on both sides: an open bank line and an open ledger line
    for n, side in enumerate(("bank", "ledger"), start=1):
        txn = con.execute(
            f"select min(txn_id) from ({open_items_sql(side, AS_OF, 'bank')}) "
            "where currency = 'EUR'"
        ).fetchall()[0][0]
        con.execute(
            "insert into decisions values (?, ?, 'write_off', null, 'test', 'anna', "
            "'exc.csv', now(), true)",
            [n, txn],
        )
    # a second EUR account: an open bank line moves there, and a match with a
    # difference spans both accounts
    con.execute(
        f"""update txns set account = '{SECOND}' where txn_id = (select max(txn_id) from
        ({open_items_sql("bank", AS_OF, "bank")}) where currency = 'EUR')"""
    )
    spanning = con.execute(
        f"""select min(m.match_id) from matches m
        where m.active and m.kind = 'many_to_one' and m.match_id in (
            select match_id from match_members join txns using (txn_id) group by match_id
            having bool_and(currency = 'EUR') and max(date) <= date '{AS_OF}')"""
    ).fetchall()[0][0]
    con.execute(
        f"""update txns set account = '{SECOND}' where txn_id = (
            select max(mm.txn_id) from match_members mm join txns t using (txn_id)
            where mm.match_id = ? and t.side = 'bank')""",
        [spanning],
    )
    con.execute("delete from match_info where match_id = ?", [spanning])
    # ledger invoices: the only ledger row of a one-to-one match in EUR, and one of the
    # rows of a one-to-many match
    for kind, condition in (("one_to_one", "= 1"), ("one_to_many", "> 1")):
        con.execute(
            f"""update txns set doc_type = 'invoice' where txn_id = (
                select min(mm.txn_id) from matches m join match_members mm using (match_id)
                join txns t on t.txn_id = mm.txn_id
                where m.active and m.kind = '{kind}' and t.side = 'ledger'
                  and t.currency = 'EUR' and t.date <= date '{AS_OF}'
                  and mm.match_id in (select match_id from match_members x
                                      join txns y using (txn_id) where y.side = 'ledger'
                                      group by match_id having count(*) {condition}))"""
        )
    matchinfo.refresh(con)  # as a run does before its outputs
    rows = brs.statement_rows(con, AS_OF)
    sums = brs._sums(con, AS_OF)
    accounts = con.execute(
        f"select distinct coalesce(account, ''), currency from txns "
        f"where side = 'bank' and date <= date '{AS_OF}'"
    ).fetchall()
    assert (SECOND, "EUR") in accounts and len(accounts) == 5
    for account, currency in accounts:
        expected = _reference(con, account, currency)
        got = {line: by_key.get((account, currency), Decimal(0)) for line, by_key in sums.items()}
        assert got == expected, (account, currency)
    # the cases the demo month lacked are in the sums, not zero
    assert sums["bank_resolved"] and sums["ledger_resolved"]
    assert sums["matched_diff"][(SECOND, "EUR")] != 0
    assert con.execute("select count(*) from __recon__brs_match where bank_hi <> bank_lo"
                       ).fetchall()[0][0] == 1
    assert sum(sums["documents"].values())
    assert {r["account"] for r in rows} >= {SECOND}
