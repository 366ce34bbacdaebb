"""Agreeing a customer's statement with our books: every difference, and nothing else."""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

from recon.agreement import COLUMNS, agreement_frame
from recon.db import connect
from tests.conftest import BANK_HEADER, LEDGER_HEADER, RULES, write_csv

AS_OF = date(2026, 2, 28)
LEDGER = """id,date,amount,currency,counterparty,reference,description,due_date,doc_type,customer_id
L1,2026-01-05,1000.00,EUR,Acme GmbH,INV-2026-00001,Invoice,,invoice,C1
L2,2026-01-12,2500.00,EUR,Acme GmbH,INV-2026-00002,Invoice,,invoice,C1
L3,2026-01-20,1234.50,EUR,Acme GmbH,INV-2026-00003,Invoice,,invoice,C1
L4,2026-02-03,1000.00,EUR,Acme GmbH,INV-2026-00001,Receipt,,receipt,C1
L5,2026-02-10,780.00,EUR,Acme GmbH,INV-2026-00004,Invoice,,invoice,C1
L6,2026-02-11,300.00,EUR,Other Ltd,INV-2026-00005,Invoice,,invoice,C2
L7,2026-02-12,120.00,EUR,Acme GmbH,CN-2026-00001,Credit note,,credit_note,C1
"""
# theirs: no INV-2026-00004 (missing invoice), a payment we never got, 1234.05 for 1234.50
STATEMENT = """id,date,amount,currency,counterparty,reference,description,doc_type
S1,2026-01-05,1000.00,EUR,Acme GmbH,INV-2026-00001,Invoice,invoice
S2,2026-01-12,2500.00,EUR,Acme GmbH,INV-2026-00002,Invoice,invoice
S3,2026-01-20,1234.05,EUR,Acme GmbH,INV-2026-00003,Invoice,invoice
S4,2026-02-03,1000.00,EUR,Acme GmbH,INV-2026-00001,Payment,payment
S5,2026-02-20,500.00,EUR,Acme GmbH,TRF 8841,Payment,payment
S6,2026-02-12,120.00,EUR,Acme GmbH,CN-2026-00001,Credit note,credit_note
"""


def _items(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.filter(~pl.col("line").is_in(["closing_balance", "unexplained"]))


def _check_identity(frame: pl.DataFrame) -> None:
    """Per customer and currency: item differences add up to the closing difference."""
    for (_, _), g in frame.group_by(["customer", "currency"]):
        (closing,) = g.filter(pl.col("line") == "closing_balance")["difference"].to_list()
        items = _items(g)["difference"].to_list()
        assert sum((Decimal(x) for x in items), Decimal(0)) == Decimal(closing)
        (unexplained,) = g.filter(pl.col("line") == "unexplained")["difference"].to_list()
        assert Decimal(unexplained) == 0


def _recon_run(cli, tmp_path: Path, statement: str, ledger: str = LEDGER,
               bank: str | None = None) -> Path:
    (tmp_path / "their.csv").write_text(statement, encoding="utf-8")
    (tmp_path / "ours.csv").write_text(ledger, encoding="utf-8")
    db = tmp_path / "recon.duckdb"
    args = ["run", "--rules", RULES, "--statement", tmp_path / "their.csv",
            "--ledger", tmp_path / "ours.csv", "--db", db, "--out", tmp_path / "out",
            "--as-of", AS_OF.isoformat()]
    if bank:
        (tmp_path / "bank.csv").write_text(bank, encoding="utf-8")
        args[1:1] = ["--bank", tmp_path / "bank.csv"]
    code, _, err = cli(*args)
    assert code == 0, err
    return db


@pytest.fixture(scope="module")
def done_means_db(tmp_path_factory) -> Path:
    """`recon run --statement their.csv --ledger ours.csv` on the issue's example."""
    from recon.cli import run_cli

    def cli(*args):
        return run_cli(["-q", *map(str, args)]), "", ""

    return _recon_run(cli, tmp_path_factory.mktemp("agree"), STATEMENT)


def test_missing_invoice_extra_payment_and_typo_are_exactly_the_differences(done_means_db):
    frame = agreement_frame(connect(done_means_db), AS_OF)
    assert frame.columns == list(COLUMNS)
    assert set(frame["customer"]) == {"C1"}  # C2 sent no statement
    items = _items(frame).select("line", "their_ids", "our_ids", "kind", "their_amount",
                                 "our_amount", "difference").rows()
    assert sorted(items, key=str) == sorted([
        ("amount_differs", "S3", "L3", "invoice", "1234.05", "1234.50", "-0.45"),
        ("only_ours", None, "L5", "invoice", None, "780.00", "-780.00"),
        ("only_theirs", "S5", None, "receipt", "-500.00", None, "-500.00"),
    ], key=str)
    closing = frame.filter(pl.col("line") == "closing_balance").row(0, named=True)
    # theirs 1000 + 2500 + 1234.05 - 1000 - 500 - 120; ours 1000 + 2500 + 1234.50 - 1000 + 780 - 120
    assert (closing["their_amount"], closing["our_amount"], closing["difference"]) == (
        "3114.05", "4394.50", "-1280.45")
    _check_identity(frame)
    differs = frame.filter(pl.col("line") == "amount_differs").row(0, named=True)
    assert differs["match_id"] and "matched by rule" in differs["note"]


def test_our_closing_balance_is_the_aging_total(done_means_db):
    from recon.aging import aging_frame

    con = connect(done_means_db)
    closing = agreement_frame(con, AS_OF).filter(pl.col("line") == "closing_balance")
    aging = aging_frame(con, AS_OF).filter(pl.col("customer") == "C1")
    assert closing["our_amount"].to_list() == aging["total"].to_list()


def test_with_a_bank_pass_too_the_receipt_counts_once(cli, tmp_path):
    # the bank line may be matched to the invoice it quotes or to our receipt: either way
    # our balance holds the receipt once, and their payment agrees with it
    statement = STATEMENT.replace("1234.05", "1250.00").replace(
        "S4,2026-02-03,1000.00,EUR,Acme GmbH,INV-2026-00001", "S4,2026-02-05,1000.00,EUR,ACME,")
    bank = ("id,date,amount,currency,counterparty,reference,description\n"
            "B1,2026-02-03,1000.00,EUR,Acme GmbH,INV-2026-00001,transfer\n")
    db = _recon_run(cli, tmp_path, statement, bank=bank)
    frame = agreement_frame(connect(db), AS_OF)
    items = _items(frame).select("line", "their_ids", "our_ids", "difference").rows()
    assert sorted(items, key=str) == sorted([
        ("amount_differs", "S3", "L3", "15.50"), ("only_ours", None, "L5", "-780.00"),
        ("only_theirs", "S5", None, "-500.00")], key=str)
    closing = frame.filter(pl.col("line") == "closing_balance").row(0, named=True)
    assert closing["our_amount"] == "4394.50"  # the ledger's figure: no bank line added
    _check_identity(frame)


def test_leftovers_pair_by_reference_or_by_a_unique_amount_and_date():
    con = _db_with([
        (1, "ledger", "I7", "2026-01-02", "900.00", "A", "INV-7", "invoice", "C1"),
        (2, "ledger", "R1", "2026-02-03", "100.00", "A", "", "receipt", "C1"),
        (3, "ledger", "R2", "2026-02-10", "50.00", "A", "", "receipt", "C1"),
        (4, "ledger", "R3", "2026-02-11", "50.00", "A", "", "receipt", "C1"),
        (11, "statement", "s7", "2026-01-02", "9000.00", "us", "inv 7", "invoice", "C1"),
        (12, "statement", "p1", "2026-02-05", "100.00", "us", "", "payment", "C1"),
        (13, "statement", "p2", "2026-02-09", "50.00", "us", "", "payment", "C1"),
        (14, "statement", "p3", "2026-02-12", "50.00", "us", "", "payment", "C1"),
    ])
    frame = agreement_frame(con, date(2026, 2, 28))
    items = _items(frame).select("line", "their_ids", "our_ids", "difference", "note").rows()
    assert ("amount_differs", "s7", "I7", "8100.00",
            "paired by reference; amounts differ") in items
    # p1/R1 agree (no row); the two 50.00 receipts each side are ambiguous: listed, netting 0
    assert sorted((r[0], r[1] or r[2]) for r in items if r[0] != "amount_differs") == [
        ("only_ours", "R2"), ("only_ours", "R3"), ("only_theirs", "p2"), ("only_theirs", "p3")]
    _check_identity(frame)


def _db_with(rows):
    """An in-memory database holding `rows` as txns (see _insert)."""
    con = connect(":memory:")
    _insert(con, rows)
    return con


def _insert(con, rows):
    from recon.names import name_keys

    for txn_id, side, sid, when, amount, cp, ref, doc, cid in rows:
        con.execute(
            """insert into txns (txn_id, side, source_id, file_id, date, amount, currency,
                counterparty, reference, doc_type, customer_id, name_key)
            values (?, ?, ?, ?, ?, ?, 'EUR', ?, ?, ?, ?, ?)""",
            [txn_id, side, sid, 1 if side == "statement" else 2, when, amount, cp, ref, doc,
             cid, name_keys([cp])[0]])


def _match(con, match_id, left, right, diff="0"):
    con.execute("""insert into matches (match_id, rule, kind, status, amount_diff, active)
                   values (?, 'test', 'one_to_one', 'auto', ?, true)""", [match_id, diff])
    for t in left:
        con.execute("insert into match_members values (?, ?, 'left')", [match_id, t])
    for t in right:
        con.execute("insert into match_members values (?, ?, 'right')", [match_id, t])


def test_odd_matches_still_explain_the_whole_difference():
    con = _db_with([
        (1, "ledger", "I1", "2026-01-02", "100.00", "A", "INV-1", "invoice", "C1"),
        (2, "ledger", "R1", "2026-01-20", "100.00", "A", "PAY-1", "receipt", "C1"),
        (3, "ledger", "X1", "2026-01-21", "55.00", "B", "INV-9", "invoice", "C2"),
        (4, "ledger", "V1", "2026-01-22", "-40.00", "Vendor", "PO-1", "payment", "V7"),
        (11, "statement", "s1", "2026-01-02", "100.00", "us", "INV-1", "", None),
        (12, "statement", "s2", "2026-01-20", "100.00", "us", "PAY-1", "invoice", None),
        (13, "statement", "s3", "2026-01-21", "55.00", "us", "INV-9", "invoice", "C1"),
        (14, "statement", "s4", "2026-01-22", "-40.00", "us", "PO-1", "payment", None),
    ])
    _match(con, "M1", [11], [1])  # no doc_type on their side: takes ours (invoice)
    _match(con, "M2", [12], [2])  # their invoice vs our receipt
    _match(con, "M3", [13], [3])  # our line belongs to another customer
    _match(con, "M4", [14], [4])  # matched to a supplier payment
    frame = agreement_frame(con, date(2026, 1, 31))
    assert set(frame["customer"]) == {"C1"}  # the file's customer, from its matches
    items = _items(frame)
    notes = dict(zip(items["their_ids"], items["note"], strict=True))
    assert set(notes) == {"s2", "s3", "s4"}  # s1 agrees
    assert "theirs is a invoice and ours a receipt" in notes["s2"]
    assert "not a receivable of this customer" in notes["s3"]
    _check_identity(frame)


@pytest.mark.parametrize("seed", range(4))
def test_random_statements_are_explained_to_the_cent(seed):
    rng = random.Random(seed)
    rows, tid = [], iter(range(1, 10_000))
    start = date(2026, 1, 1)
    ours = []
    for k in range(12):
        kind = rng.choice(["invoice", "invoice", "receipt", "credit_note"])
        amount = Decimal(rng.randint(100, 99_999)) / 100
        when = (start + timedelta(days=rng.randint(0, 50))).isoformat()
        t = next(tid)
        rows.append((t, "ledger", f"L{k}", when, amount, "Acme", f"R{k}", kind, "C1"))
        ours.append((t, kind, amount, when, k))
    matches = []
    for t, kind, amount, when, k in ours:
        fate = rng.choice(["same", "same", "typo", "missing"])
        if fate == "missing":
            continue
        theirs = amount + (Decimal(rng.randint(1, 999)) / 100 if fate == "typo" else 0)
        s = next(tid)
        rows.append((s, "statement", f"S{k}", when, theirs, "us", f"R{k}", kind, "C1"))
        if rng.random() < 0.7:
            matches.append((f"M{k}", [s], [t], theirs - amount))
    for j in range(rng.randint(0, 3)):  # payments only they know of
        rows.append((next(tid), "statement", f"X{j}", "2026-02-01",
                     Decimal(rng.randint(100, 9_999)) / 100, "us", "", "payment", "C1"))
    con = _db_with(rows)
    for m in matches:
        _match(con, *m)
    frame = agreement_frame(con, date(2026, 3, 1))
    _check_identity(frame)
    closing = frame.filter(pl.col("line") == "closing_balance").row(0, named=True)

    def effect(kind, amount):
        return abs(amount) if kind == "invoice" else -abs(amount) if kind == "credit_note" \
            else -amount

    theirs = sum((effect(r[7] if r[7] != "payment" else "receipt", Decimal(r[4]))
                  for r in rows if r[1] == "statement"), Decimal(0))
    mine = sum((effect(r[7], Decimal(r[4])) for r in rows if r[1] == "ledger"), Decimal(0))
    assert (Decimal(closing["their_amount"]), Decimal(closing["our_amount"])) == (theirs, mine)


def test_a_bank_payment_for_two_customers_agrees_with_both_statements():
    """One transfer (B1) pays C1's and C2's invoices; each statement shows its own share of
    it as a payment: both agree with our books, each payment paired with its share."""
    con = _db_with([
        (1, "ledger", "I1", "2026-01-05", "100.00", "Omega Nord", "INV-1", "invoice", "C1"),
        (2, "ledger", "I2", "2026-01-06", "200.00", "Omega Sud", "INV-2", "invoice", "C2"),
        (3, "bank", "B1", "2026-01-20", "300.00", "Omega Group", "PAYRUN-0310", None, None),
        (11, "statement", "s1", "2026-01-05", "100.00", "us", "INV-1", "invoice", "C1"),
        (12, "statement", "p1", "2026-01-21", "100.00", "us", "PAYRUN-0310", "payment", "C1"),
        (21, "statement", "s2", "2026-01-06", "200.00", "us", "INV-2", "invoice", "C2"),
        (22, "statement", "p2", "2026-01-22", "200.00", "us", "PAYRUN-0310", "payment", "C2"),
    ])
    _match(con, "M1", [3], [1, 2])
    frame = agreement_frame(con, date(2026, 1, 31))
    assert _items(frame).height == 0
    closing = frame.filter(pl.col("line") == "closing_balance")
    assert closing.select("customer", "their_amount", "our_amount").rows() == [
        ("C1", "0.00", "0.00"), ("C2", "0.00", "0.00")]
    _check_identity(frame)


def test_a_statement_in_another_currency_says_its_fx_matches_are_the_same_items():
    # their USD invoices matched by the fx rule to our EUR ones: each side is in its own
    # currency's rows, and the notes said the lines belonged to another customer
    con = _db_with([
        (1, "ledger", "L1", "2026-01-05", "1000.00", "Acme", "INV-1", "invoice", "C1"),
        (2, "ledger", "L2", "2026-01-12", "2500.00", "Acme", "INV-2", "invoice", "C1"),
        (11, "statement", "S1", "2026-01-05", "1080.00", "us", "INV-1", "invoice", "C1"),
        (12, "statement", "S2", "2026-01-12", "2700.00", "us", "INV-2", "invoice", "C1"),
    ])
    con.execute("update txns set currency = 'USD' where side = 'statement'")
    _match(con, "M1", [11], [1], "-6.96")
    _match(con, "M2", [12], [2], "-17.39")
    frame = agreement_frame(con, date(2026, 1, 31))
    notes = _items(frame).select("currency", "their_ids", "our_ids", "note").rows()
    assert sorted(notes, key=str) == sorted([
        ("EUR", None, "L1", "matched by rule test to their S1 in USD: the same item in "
                            "another currency"),
        ("EUR", None, "L2", "matched by rule test to their S2 in USD: the same item in "
                            "another currency"),
        ("USD", "S1", None, "matched by rule test to our L1 in EUR: the same item in "
                            "another currency"),
        ("USD", "S2", None, "matched by rule test to our L2 in EUR: the same item in "
                            "another currency"),
    ], key=str)
    _check_identity(frame)


def test_a_statement_only_run_counts_statement_lines_not_bank_lines(cli, tmp_path):
    # with no bank file, the statement is the left side: the summary said "6/6 bank lines"
    (tmp_path / "their.csv").write_text(STATEMENT, encoding="utf-8")
    (tmp_path / "ours.csv").write_text(LEDGER, encoding="utf-8")
    code, out, err = cli("run", "--rules", RULES, "--statement", tmp_path / "their.csv",
                         "--ledger", tmp_path / "ours.csv", "--db", tmp_path / "r.duckdb",
                         "--out", tmp_path / "out", "--as-of", AS_OF.isoformat())
    assert code == 0, err
    assert " statement lines matched (" in out and "bank" not in out
    assert "exceptions: 1 statement, " in out


def test_two_invoices_with_different_numbers_are_not_paired_by_amount(cli, tmp_path):
    # their INV-2026-00007 and our INV-2026-00009, 500.00 each, 5 days apart: the pairing
    # by amount and date agreed them silently, and nobody chased either invoice
    ledger = """id,date,amount,currency,counterparty,reference,description,doc_type,customer_id
L1,2026-01-05,1000.00,EUR,Acme GmbH,INV-2026-00001,Invoice,invoice,C1
L9,2026-01-15,500.00,EUR,Acme GmbH,INV-2026-00009,Invoice,invoice,C1
L8,2026-01-22,300.00,EUR,Acme GmbH,INV-2026-00008,Invoice,invoice,C1
"""
    statement = """id,date,amount,currency,counterparty,reference,description,doc_type,customer_id
S1,2026-01-05,1000.00,EUR,Supplier AG,INV-2026-00001,Invoice,invoice,C1
S7,2026-01-10,500.00,EUR,Supplier AG,INV-2026-00007,Invoice,invoice,C1
S8,2026-01-20,300.00,EUR,Supplier AG,PO 55,Invoice,invoice,C1
"""
    db = _recon_run(cli, tmp_path, statement, ledger)
    frame = agreement_frame(connect(db), AS_OF)
    items = _items(frame).select("line", "their_ids", "our_ids", "difference").rows()
    # S8 quotes their own order number, which names no invoice: still paired with L8
    assert sorted(items, key=str) == sorted([
        ("only_ours", None, "L9", "-500.00"), ("only_theirs", "S7", None, "500.00")], key=str)
    _check_identity(frame)


# December is before their statement's period: their balance brought forward holds it.
# Our ledger's own opening line (L00) is a receivable like any other
LEDGER_WITH_DECEMBER = LEDGER + """L00,2025-10-01,250.00,EUR,Acme GmbH,,Balance brought forward,,invoice,C1
L01,2025-11-20,1500.00,EUR,Acme GmbH,INV-2025-00090,Invoice,,invoice,C1
L02,2025-12-10,1000.00,EUR,Acme GmbH,INV-2025-00101,Invoice,,invoice,C1
L03,2025-12-15,1500.00,EUR,Acme GmbH,INV-2025-00090,Receipt,,receipt,C1
"""
STATEMENT_HEADER = "id,date,amount,currency,counterparty,reference,description,doc_type\n"


def _agreement_csv(db: Path) -> pl.DataFrame:
    """statement_agreement.csv of the run that wrote `db`, as text."""
    return pl.read_csv(db.parent / "out" / "statement_agreement.csv", infer_schema=False)


def test_a_balance_brought_forward_is_their_opening_balance_not_a_payment(cli, tmp_path):
    # the line was read as a payment of 1000.00 we had not received, and our December
    # lines as missing from their statement
    statement = STATEMENT_HEADER + "S0,2026-01-01,1250.00,EUR,Acme GmbH,,Balance brought forward,\n"
    db = _recon_run(cli, tmp_path, statement + STATEMENT.split("\n", 1)[1],
                    LEDGER_WITH_DECEMBER)
    frame = _agreement_csv(db)
    opening = frame.filter(pl.col("line") == "opening_balance")
    assert opening.select("date", "their_amount", "our_amount", "difference").rows() == [
        ("2025-12-31", "1250.00", "1250.00", "0.00")]
    assert "their.csv" in opening["note"][0]
    items = _items(frame).filter(pl.col("line") != "opening_balance")
    assert sorted(items.select("line", "their_ids", "our_ids", "difference").rows(),
                  key=str) == sorted([
        ("amount_differs", "S3", "L3", "-0.45"), ("only_ours", None, "L5", "-780.00"),
        ("only_theirs", "S5", None, "-500.00")], key=str)
    closing = frame.filter(pl.col("line") == "closing_balance").row(0, named=True)
    assert (closing["their_amount"], closing["our_amount"]) == ("4364.05", "5644.50")
    _check_identity(_numbers(frame))
    exceptions = pl.read_csv(db.parent / "out" / "exceptions.csv", infer_schema=False)
    assert "S0" not in exceptions["id"].to_list()


def _numbers(frame: pl.DataFrame) -> pl.DataFrame:
    """The CSV's empty differences as zero, for _check_identity."""
    return frame.with_columns(pl.col("difference").fill_null("0"))


def test_an_opening_balance_that_disagrees_is_one_line_and_totals_are_no_lines(cli, tmp_path):
    # 期初余额 is 1200.00 where our December closed at 1250.00; 期末余额 and 合计 end it
    statement = (STATEMENT_HEADER
                 + "S0,2026-01-01,1200.00,EUR,Acme GmbH,,期初余额,\n"
                 + STATEMENT.split("\n", 1)[1]
                 + "S8,2026-02-28,4314.05,EUR,Acme GmbH,,期末余额,\n"
                 + "S9,2026-02-28,5854.05,EUR,Acme GmbH,,合计,\n")
    db = _recon_run(cli, tmp_path, statement, LEDGER_WITH_DECEMBER)
    frame = _agreement_csv(db)
    assert not {"S0", "S8", "S9"} & set(frame["their_ids"].drop_nulls())
    opening = frame.filter(pl.col("line") == "opening_balance")
    assert opening.select("their_amount", "our_amount", "difference").rows() == [
        ("1200.00", "1250.00", "-50.00")]
    closing = frame.filter(pl.col("line") == "closing_balance").row(0, named=True)
    assert (closing["their_amount"], closing["difference"]) == ("4314.05", "-1330.45")
    _check_identity(_numbers(frame))


def test_a_payment_of_the_balance_is_still_a_payment(cli, tmp_path):
    # their first line pays the rest of an invoice: words of a balance, but a transaction
    statement = (STATEMENT_HEADER
                 + "P1,2026-01-02,250.00,EUR,Acme GmbH,,Payment of balance INV-2026-00012,\n"
                 + "P2,2026-01-03,90.00,EUR,Acme GmbH,INV-2026-00013,Balance,payment\n")
    db = _recon_run(cli, tmp_path, statement + STATEMENT.split("\n", 1)[1])
    frame = _agreement_csv(db)
    assert frame.filter(pl.col("line") == "opening_balance").height == 0
    theirs = frame.filter(pl.col("line") == "only_theirs")
    assert {"P1", "P2"} <= set(theirs["their_ids"])
    _check_identity(_numbers(frame))


def test_a_payment_matched_to_our_receipt_before_their_period_explains_the_opening():
    # we booked their payment on 30 December, they on 2 January: their balance brought
    # forward is 100.00 higher than ours, and their payment is the item that explains it
    con = _db_with([
        (1, "ledger", "I0", "2025-12-20", "100.00", "A", "INV-0", "invoice", "C1"),
        (2, "ledger", "R0", "2025-12-30", "100.00", "A", "INV-0", "receipt", "C1"),
        (3, "ledger", "I1", "2026-01-05", "200.00", "A", "INV-1", "invoice", "C1"),
        (11, "statement", "p0", "2026-01-02", "100.00", "us", "INV-0", "payment", "C1"),
        (12, "statement", "s1", "2026-01-05", "200.00", "us", "INV-1", "invoice", "C1"),
    ])
    con.execute("insert into files (file_id, path, name, sha256, side) "
                "values (1, 'their.csv', 'their.csv', 'x', 'statement')")
    con.execute("insert into statements values "
                "(1, 1, null, null, 'EUR', 100.00, null, '2026-01-01', '2026-01-05', 2)")
    _match(con, "M0", [11], [2])
    _match(con, "M1", [12], [3])
    frame = agreement_frame(con, date(2026, 1, 31))
    rows = frame.select("line", "their_ids", "our_ids", "date", "their_amount", "our_amount",
                        "difference").rows()
    assert rows[:3] == [
        ("closing_balance", None, None, None, "200.00", "200.00", "0.00"),
        ("opening_balance", None, None, date(2025, 12, 31), "100.00", "0.00", "100.00"),
        ("amount_differs", "p0", None, date(2025, 12, 30), "-100.00", None, "-100.00"),
    ]
    assert "to our R0, dated before their statement's period" in frame["note"][2]
    _check_identity(frame)


def test_their_stated_closing_balance_is_theirs_and_what_their_lines_miss_is_a_line(
        cli, tmp_path):
    # 期末余额 says 4414.05; their opening balance and lines make 4314.05: a line of
    # theirs is missing (or their figure is wrong). The agreement used 4314.05 as their
    # closing balance, and nothing said their statement does not add up
    statement = (STATEMENT_HEADER
                 + "S0,2026-01-01,1200.00,EUR,Acme GmbH,,期初余额,\n"
                 + STATEMENT.split("\n", 1)[1]
                 + "S8,2026-02-28,4414.05,EUR,Acme GmbH,,期末余额,\n")
    db = _recon_run(cli, tmp_path, statement, LEDGER_WITH_DECEMBER)
    frame = _agreement_csv(db)
    closing = frame.filter(pl.col("line") == "closing_balance").row(0, named=True)
    assert (closing["their_amount"], closing["our_amount"], closing["difference"]) == (
        "4414.05", "5644.50", "-1230.45")
    (gap,) = frame.filter(pl.col("line") == "balance_break").iter_rows(named=True)
    assert (gap["date"], gap["their_amount"], gap["our_amount"], gap["difference"]) == (
        "2026-02-28", "100.00", None, "100.00")
    assert gap["note"] == (
        "their closing balance 4414.05 (their.csv) is not their opening balance and "
        "lines up to 2026-02-28, 4314.05: a line missing from their statement, or a "
        "figure wrong")
    assert frame["line"].to_list()[:3] == ["closing_balance", "opening_balance",
                                           "balance_break"]
    _check_identity(_numbers(frame))
    # the same break as summary.json tells it
    summary = json.loads((db.parent / "out" / "summary.json").read_text(encoding="utf-8"))
    (only,) = summary["integrity"]
    assert (only["expected"], only["found"]) == ("4314.05", "4414.05")


def test_a_statement_that_adds_up_has_no_balance_break_line(cli, tmp_path):
    statement = (STATEMENT_HEADER
                 + "S0,2026-01-01,1200.00,EUR,Acme GmbH,,期初余额,\n"
                 + STATEMENT.split("\n", 1)[1]
                 + "S8,2026-02-28,4314.05,EUR,Acme GmbH,,期末余额,\n")
    frame = _agreement_csv(_recon_run(cli, tmp_path, statement, LEDGER_WITH_DECEMBER))
    assert "balance_break" not in frame["line"].to_list()
    closing = frame.filter(pl.col("line") == "closing_balance").row(0, named=True)
    assert closing["their_amount"] == "4314.05"


# Their statement of test_a_balance_brought_forward_is_their_opening_balance_not_a_payment,
# closing as its lines make it, and its page lines: 1250.00 + 1000.00 + 2500.00 = 4750.00
# at the foot of page 1, + 1234.05 - 1000.00 = 4984.05 at the foot of page 2
ONE_PAGE = (STATEMENT_HEADER
            + "S0,2026-01-01,1250.00,EUR,Acme GmbH,,Balance brought forward,\n"
            + STATEMENT.split("\n", 1)[1]
            + "S9,2026-02-28,4364.05,EUR,Acme GmbH,,Closing balance,\n")
PAGES = {
    "English": {
        "S3": "P1,2026-01-12,4750.00,EUR,Acme GmbH,,Balance carried forward,\n"
              "P2,2026-01-13,4750.00,EUR,Acme GmbH,,Balance brought forward,\n",
        "S5": "P3,2026-02-03,234.05,EUR,Acme GmbH,,Sub total,\n"
              "P4,2026-02-03,4984.05,EUR,Acme GmbH,,Carried forward,\n"
              "P5,2026-02-04,4984.05,EUR,Acme GmbH,,Brought forward 4 February 2026,\n"},
    "Chinese, undated": {
        "S3": "P1,,3500.00,EUR,Acme GmbH,,本页小计,\n"
              "P2,,4750.00,EUR,Acme GmbH,,过次页,\n"
              "P3,,4750.00,EUR,Acme GmbH,,承前页,\n",
        "S5": "P4,,234.05,EUR,Acme GmbH,,本页合计,\n"
              "P5,,4984.05,EUR,Acme GmbH,,转下页,\n"
              "P6,,4984.05,EUR,Acme GmbH,,承上页,\n"},
}


def _with_pages(statement: str, before: dict[str, str]) -> str:
    """`statement` with the lines `before[id]` put before its row `id`."""
    return "".join(before.get(row.split(",", 1)[0], "") + row
                   for row in statement.splitlines(keepends=True))


@pytest.mark.parametrize("pages", PAGES.values(), ids=PAGES)
def test_a_statement_on_pages_agrees_as_the_same_statement_on_one_page(cli, tmp_path, pages):
    # each carried and brought-forward balance and subtotal was a payment of theirs we
    # had not received, and their statement did not add up (English: a balance_break of
    # 19702.15 and a balance integrity break); the Chinese one's undated page lines
    # refused the file ("cannot parse date None")
    (tmp_path / "one").mkdir()
    (tmp_path / "paged").mkdir()
    one = _agreement_csv(_recon_run(cli, tmp_path / "one", ONE_PAGE, LEDGER_WITH_DECEMBER))
    db = _recon_run(cli, tmp_path / "paged", _with_pages(ONE_PAGE, pages),
                    LEDGER_WITH_DECEMBER)
    paged = _agreement_csv(db)
    assert paged.equals(one)
    assert sorted(_items(paged).select("line", "their_ids", "our_ids").rows(), key=str) == [
        ("amount_differs", "S3", "L3"), ("only_ours", None, "L5"),
        ("only_theirs", "S5", None), ("opening_balance", None, None)]
    summary = json.loads((db.parent / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["integrity"] == []
    exceptions = pl.read_csv(db.parent / "out" / "exceptions.csv", infer_schema=False)
    assert not any(i.startswith("P") for i in exceptions["id"])


def test_a_payment_of_the_balance_between_transactions_is_still_a_payment(cli, tmp_path):
    # words of a balance with an invoice number: a transaction wherever it stands
    statement = _with_pages(ONE_PAGE, {
        "S3": "P1,2026-01-14,250.00,EUR,Acme GmbH,,Payment of balance INV-2026-00012,\n"})
    frame = _agreement_csv(_recon_run(cli, tmp_path, statement, LEDGER_WITH_DECEMBER))
    theirs = frame.filter(pl.col("line") == "only_theirs")
    assert "P1" in theirs["their_ids"].to_list()
    _check_identity(_numbers(frame))


def _demo_with_statement(tmp_path: Path, *lines: str) -> tuple[object, ...]:
    """`recon run` arguments: the demo month and a statement of customer C000101 (the
    demo's Hartmann Nord) with `lines` (id, date, amount, reference), into tmp_path."""
    from .conftest import ROOT

    demo = ROOT / "sample_data" / "demo"
    name = "Hartmann Nord Handelsgesellschaft GmbH & Co. KG"
    rows = [f"{i},{d},{a},EUR,{name},{ref},invoice,C000101,invoice"
            for i, d, a, ref in (line.split(",") for line in lines)]
    (tmp_path / "their.csv").write_text(
        "id,date,amount,currency,counterparty,reference,description,customer_id,doc_type\n"
        + "\n".join(rows) + "\n", encoding="utf-8")
    return ("run", "--rules", RULES, "--bank", demo / "bank.csv", "--statement",
            tmp_path / "their.csv", "--ledger", demo / "ledger.csv",
            "--db", tmp_path / "r.duckdb", "--out", tmp_path / "out", "--as-of", "2026-03-31")


def test_statement_exceptions_list_the_statement_customers_lines_not_every_ledger_row(
    cli, tmp_path
):
    """A customer's statement checked against the demo month: statement_exceptions.csv
    listed every open ledger row of the month (344: supplier payments, card lines, other
    customers' receipts) beside the statement's one line.  It lists that customer's
    lines in our books, as the agreement reads them."""
    from .conftest import ROOT

    code, _, err = cli(*_demo_with_statement(tmp_path, "S1,2026-03-05,913.00,INV-2026-02593",
                                             "S2,2026-03-20,120.00,INV-2026-02777"))
    assert code == 0, err
    rows = _read(tmp_path / "out" / "statement_exceptions.csv")
    ledger = {r["id"]: r for r in _read(ROOT / "sample_data" / "demo" / "ledger.csv")}
    ours = [r["id"] for r in rows if r["side"] == "right"]
    assert ours and {ledger[i]["customer_id"] for i in ours} == {"C000101"}
    assert "S2" in {r["id"] for r in rows if r["side"] == "left"}
    # the bank pass's exceptions are those of a run without the statement
    assert len(_read(tmp_path / "out" / "exceptions.csv")) == 31  # the demo month's own 31 (16 bank lines, 15 ledger rows)


def _read(path: Path) -> list[dict[str, str]]:
    import csv

    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_a_rerun_with_a_customer_statement_changes_nothing(cli, tmp_path):
    """The demo month with a customer's statement, run twice: the second run stopped
    with "match id ... was made for two different matches" (exit 1).  The demo ledger's
    payment and its refund (L0000233, L0000305) are each matched to their bank line in
    the bank pass, so the statement pass found them open and cancelled them against
    each other, a ledger-only match no pass owned: every later run made it again.
    Ledger rows cancel each other in the first pass only; the other passes take such
    matches as their own, as their outputs already show them.  Then changes.csv listed
    325 'resolved' exceptions and statement_changes.csv the bank pass's matches: each
    pass was compared with every pass of the run before."""
    args = _demo_with_statement(tmp_path, "S1,2026-03-05,913.00,INV-2026-02593")
    code, _, err = cli(*args)
    assert code == 0, err
    first = {p.name: p.read_bytes() for p in (tmp_path / "out").glob("*matches.csv")}
    code, _, err = cli(*args)
    assert code == 0, err
    for name in ("changes.csv", "statement_changes.csv"):
        assert _read(tmp_path / "out" / name) == [], name
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").glob("*matches.csv")} == first
    stmt = _read(tmp_path / "out" / "statement_matches.csv")
    assert not any(r["kind"] == "reversal" and "L0000233" in r["right_ids"] for r in stmt)


def test_a_receipt_and_its_refund_matched_to_a_statement_are_not_cancelled_by_the_bank(
        cli, tmp_path):
    """A customer's payment and its refund, each matched to their statement's line one
    night (no bank file yet), were cancelled against each other by the next night's bank
    pass: a ledger-only match, which every pass owns, so each row stood in two active
    matches of the statement pass.  A ledger-only reversal pairs rows no pass matched."""
    ledger = write_csv(tmp_path / "ledger.csv", f"{LEDGER_HEADER},doc_type,customer_id", [
        "R1,2026-03-05,500.00,EUR,Acme GmbH,INV-2026-00001,receipt,receipt,C1",
        "F1,2026-03-09,-500.00,EUR,Acme GmbH,INV-2026-00001,refund,refund,C1",
        "I1,2026-03-01,500.00,EUR,Acme GmbH,INV-2026-00001,invoice,invoice,C1",
    ])
    theirs = write_csv(tmp_path / "theirs.csv", f"{LEDGER_HEADER},doc_type,customer_id", [
        "S1,2026-03-01,500.00,EUR,Acme GmbH,INV-2026-00001,invoice,invoice,C1",
        "S2,2026-03-05,500.00,EUR,Acme GmbH,INV-2026-00001,payment,payment,C1",
        "S3,2026-03-09,-500.00,EUR,Acme GmbH,INV-2026-00001,refund,refund,C1",
    ])
    bank = write_csv(tmp_path / "bank.csv", BANK_HEADER,
                     ["B1,2026-03-20,-12.00,EUR,Bank,FEE-03,account fee"])
    common = ("--rules", RULES, "--ledger", ledger, "--statement", theirs,
              "--db", tmp_path / "r.duckdb", "--as-of", "2026-03-31")
    code, _, err = cli("run", *common, "--out", tmp_path / "night1")
    assert code == 0, err
    code, _, err = cli("run", *common, "--bank", bank, "--out", tmp_path / "night2")
    assert code == 0, err
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    try:
        twice = con.execute("""select t.source_id, count(*) from match_members mm
            join matches m using (match_id) join txns t using (txn_id)
            where m.active and t.side = 'ledger' group by 1 having count(*) > 1
            order by 1""").fetchall()
        reversals = con.execute(
            "select count(*) from matches where active and kind = 'reversal'").fetchall()
    finally:
        con.close()
    assert twice == [] and reversals == [(0,)]
