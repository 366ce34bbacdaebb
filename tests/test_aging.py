"""`recon aging`: buckets, settlement from matches, and tie-out to generated books."""

from __future__ import annotations

import csv
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from recon.aging import aging_frame, bucket_columns, write_aging
from recon.db import connect
from recon.run import Inputs, run
from tests.conftest import BANK_HEADER, RULES, run_books, write_csv, write_rows
from tests.fixtures.customers.books import CUSTOMERS

DATES = (date(2026, 2, 15), date(2026, 4, 1), date(2026, 6, 30))


@pytest.fixture(scope="module")
def books_db(tmp_path_factory):
    """Generated books run through `recon run` (bank pass), with the customer master."""
    return run_books(tmp_path_factory.mktemp("books"), 7, date(2026, 6, 30))


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_bank_pass_matched_every_payment_to_its_invoices(books_db):
    books, db = books_db
    con = connect(db)
    got = dict(con.execute(
        """select string_agg(t.source_id, ';') filter (where t.side = 'bank'),
                  string_agg(t.source_id, ';' order by t.source_id) filter (where t.side = 'ledger')
        from matches m join match_members mm using (match_id) join txns t using (txn_id)
        where m.active group by m.match_id""").fetchall())
    assert got == {b: ";".join(sorted(inv)) for b, inv in books.bank_pays.items()}


@pytest.mark.parametrize("policy", ["none", "oldest_first"])
def test_aging_ties_to_the_ledger_to_the_cent(books_db, policy):
    books, db = books_db
    con = connect(db)
    names = [n for n, _ in bucket_columns()]
    for as_of in DATES:
        frame = aging_frame(con, as_of, policy=policy)
        totals = {r["customer"]: Decimal(r["total"]) for r in frame.iter_rows(named=True)}
        for cid, _, _ in CUSTOMERS:
            assert totals.get(cid, Decimal(0)) == books.balance(cid, as_of), (cid, as_of)
        for r in frame.iter_rows(named=True):
            assert sum(Decimal(r[n]) for n in names) == Decimal(r["total"])
        # every invoice's open amount: matched and quoted invoices settled, FIFO for the rest
        opened = dict(con.execute(
            "select source_id, open_amount from __recon__ar_items where kind = 'invoice'"
        ).fetchall())
        assert opened == books.open_amounts(as_of, policy)
        # nothing dropped: customers + unlinked = every receivable line, ledger and bank
        unlinked = con.execute("select coalesce(sum(-amount), 0) from __recon__ar_unlinked"
                               ).fetchone()[0]
        everything = sum((x.effect() for x in books.ledger + books.bank
                          if x.date <= as_of and (x.customer or x.doc_type)), Decimal(0))
        assert sum(totals.values()) + unlinked == everything


def test_receipts_settle_the_invoices_they_were_matched_to(books_db):
    books, db = books_db
    con = connect(db)
    aging_frame(con, date(2026, 6, 30), policy="oldest_first")
    alloc = con.execute(
        """select c.source_id, d.source_id, a.amount, a.method from __recon__ar_alloc a
        join __recon__ar_items c on c.txn_id = a.credit_id
        join __recon__ar_items d on d.txn_id = a.debit_id where c.source = 'bank'"""
    ).fetchall()
    by_bank: dict[str, set[str]] = {}
    for bank_id, invoice, _, method in alloc:
        assert method == "match"
        by_bank.setdefault(bank_id, set()).add(invoice)
    assert by_bank == {b: set(inv) for b, inv in books.bank_pays.items()}


@pytest.fixture(scope="module")
def hand_made(tmp_path_factory) -> Path:
    """Two invoices of one customer; the bank pays the newer one (quoting it)."""
    tmp_path = tmp_path_factory.mktemp("hand")
    ledger = tmp_path / "ledger.csv"
    ledger.write_text(
        "id,date,amount,currency,counterparty,reference,description,due_date,doc_type,customer_id\n"
        "I1,2026-01-02,100.00,EUR,Acme,INV-2026-00001,old invoice,,invoice,C1\n"
        "I2,2026-02-01,250.10,EUR,Acme,INV-2026-00002,new invoice,,invoice,C1\n"
        "I3,2026-03-01,0.10,EUR,Acme,INV-2026-00003,due 2026-03-10,2026-03-10,invoice,C1\n"
        "I4,2026-03-01,0.20,EUR,Acme,INV-2026-00004,due on the date,,invoice,C1\n",
        encoding="utf-8")
    bank = tmp_path / "bank.csv"
    bank.write_text(
        "id,date,amount,currency,counterparty,reference,description\n"
        "B1,2026-02-10,250.10,EUR,Acme,INV-2026-00002,payment\n", encoding="utf-8")
    db = tmp_path / "r.duckdb"
    run(RULES, Inputs(bank=[bank], ledger=[ledger]), db_path=db, out_dir=tmp_path / "out",
        as_of=date(2026, 3, 31))
    return db


def test_matched_receipt_settles_its_invoice_not_the_oldest(hand_made, tmp_path):
    db = hand_made
    con = connect(db)
    for policy in ("none", "oldest_first"):
        aging_frame(con, date(2026, 3, 31), policy=policy)
        opened = dict(con.execute(
            "select source_id, open_amount from __recon__ar_items where kind = 'invoice'"
        ).fetchall())
        assert opened == {"I1": Decimal("100"), "I2": Decimal("0"), "I3": Decimal("0.1"),
                          "I4": Decimal("0.2")}


def test_buckets_by_days_past_due_with_exact_boundaries(hand_made, tmp_path, cli):
    db = hand_made
    # on 2026-04-10: I1 due 01-02 (98 days), I3 due 03-10 (31), I4 due 03-01 (40)
    code, _, err = cli("aging", "--as-of", "2026-04-10", "--db", db, "--out", tmp_path / "a.csv")
    assert code == 0, err
    rows = _read(tmp_path / "a.csv")
    assert rows == [{"customer": "C1", "not_due": "0.00", "d1_30": "0.00", "d31_60": "0.30",
                     "d61_90": "0.00", "d90_plus": "100.00", "total": "100.30", "name": "",
                     "currency": "EUR", "segment": "", "region": "", "written_off": "0.00"}]
    # on 2026-03-10 I3 is due today (not due) and I4 9 days late; I1 is 67 days late
    cli("aging", "--as-of", "2026-03-10", "--db", db, "--out", tmp_path / "b.csv")
    (row,) = _read(tmp_path / "b.csv")
    assert (row["not_due"], row["d1_30"], row["d61_90"], row["d90_plus"]) == (
        "0.10", "0.20", "100.00", "0.00")
    # a past date gives that day's figures: before the payment I2 (4 days late) is open
    cli("aging", "--as-of", "2026-02-05", "--db", db, "--out", tmp_path / "c.csv")
    (row,) = _read(tmp_path / "c.csv")
    assert (row["d1_30"], row["d31_60"], row["total"]) == ("250.10", "100.00", "350.10")


def test_buckets_come_from_the_rules_file(hand_made, tmp_path, cli):
    db = hand_made
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES.read_text(encoding="utf-8").replace(
        "buckets: [30, 60, 90]", "buckets: [15, 45]"), encoding="utf-8")
    assert "[15, 45]" in rules.read_text(encoding="utf-8")
    code, _, err = cli("aging", "--as-of", "2026-04-10", "--db", db, "--rules", rules,
                       "--out", tmp_path / "a.csv")
    assert code == 0, err
    (row,) = _read(tmp_path / "a.csv")
    assert list(row)[:5] == ["customer", "not_due", "d1_15", "d16_45", "d45_plus"]
    assert (row["d16_45"], row["d45_plus"]) == ("0.30", "100.00")


def test_cli_writes_segments_and_unlinked_files(books_db, tmp_path, cli):
    _, db = books_db
    out = tmp_path / "aging.csv"
    code, stdout, err = cli("aging", "--as-of", "2026-06-30", "--db", db, "--out", out)
    assert code == 0, err
    assert "1 unlinked lines" in stdout
    rows = _read(out)
    segs = _read(tmp_path / "aging_segments.csv")
    overall = next(r for r in segs if r["dimension"] == "all")
    assert Decimal(overall["total"]) == sum(Decimal(r["total"]) for r in rows)
    assert int(overall["customers"]) == len(rows)
    by_segment = [r for r in segs if r["dimension"] == "segment"]
    assert sum(Decimal(r["total"]) for r in by_segment) == Decimal(overall["total"])
    assert {r["value"] for r in by_segment} <= {"Wholesale", "Retail", "Services"}
    assert {r["name"] for r in rows} >= {"Acme Trading GmbH", "上海华盛贸易有限公司"}
    (unlinked,) = _read(tmp_path / "aging_unlinked.csv")
    assert (unlinked["counterparty"], unlinked["reason"]) == ("Unknown Payer", "no_customer")


def test_the_run_lists_the_unlinked_lines_beside_its_aging(tmp_path):
    """The run's aging.csv left out the receivable lines that link to no customer, so
    its totals did not tie to the ledger: they are in aging_unlinked.csv, as written by
    `recon aging`."""
    from tests.fixtures.customers.books import make_books

    ledger, bank = make_books(7).write(tmp_path)
    db, out = tmp_path / "r.duckdb", tmp_path / "out"
    run(RULES, Inputs(bank=[bank], ledger=[ledger]), db_path=db, out_dir=out,
        as_of=date(2026, 6, 30))
    unlinked = _read(out / "aging_unlinked.csv")
    assert {r["counterparty"] for r in unlinked} == {"Northwind", "Unknown Payer"}
    con = connect(db)
    try:
        files = write_aging(con, date(2026, 6, 30), tmp_path / "by_command" / "aging.csv")
    finally:
        con.close()
    assert (out / "aging.csv").read_bytes() == files.aging.read_bytes()
    assert (out / "aging_unlinked.csv").read_bytes() == files.unlinked.read_bytes()


def test_a_bank_payment_of_lines_linked_to_no_customer_is_listed_unlinked(tmp_path):
    """With no master, Northwind's invoices link to nobody: they were listed unlinked at
    their full amounts while the bank lines paying them were dropped from both files,
    24,407.48 of receipts. The aging and the unlinked list now tie to the books."""
    from tests.fixtures.customers.books import make_books

    books = make_books(7)
    ledger, bank = books.write(tmp_path)
    as_of = date(2026, 6, 30)
    out = tmp_path / "out"
    run(RULES, Inputs(bank=[bank], ledger=[ledger]), db_path=tmp_path / "r.duckdb",
        out_dir=out, as_of=as_of)
    unlinked = _read(out / "aging_unlinked.csv")
    paid = [r for r in unlinked if r["id"].startswith("B")]
    assert paid and {r["reason"] for r in paid} == {"no_customer"}
    assert sum(Decimal(r["effect"]) for r in paid) == Decimal("-24407.48")
    everything = sum((x.effect() for x in books.ledger + books.bank
                      if x.date <= as_of and (x.customer or x.doc_type)), Decimal(0))
    assert (sum(Decimal(r["total"]) for r in _read(out / "aging.csv"))
            + sum(Decimal(r["effect"]) for r in unlinked)) == everything


def test_cli_errors_exit_2(tmp_path, cli):
    code, _, err = cli("aging", "--as-of", "2026-04-10", "--db", tmp_path / "none.duckdb",
                       "--out", tmp_path / "a.csv")
    assert code == 2 and "no database here" in err
    code, _, _ = cli("aging", "--as-of", "2026-13-01", "--out", tmp_path / "a.csv")
    assert code == 2
    code, _, _ = cli("aging", "--as-of", "2026-04-10", "--apply", "newest", "--out", "a.csv")
    assert code == 2
    assert not (tmp_path / "a.csv").exists()


def test_a_ledger_receipt_booking_a_bank_payment_of_invoices_is_counted_once(tmp_path):
    """B1 pays invoice I1 straight from the bank, and our ledger books the same money as
    receipt R1 two days later: R1 settles I1 and B1 is not a second credit.  R3 books
    money another bank line (B4) brought in: it is matched, so it is no twin of B3,
    which pays I4 the same day; Gamma has paid twice."""
    ledger = tmp_path / "ledger.csv"
    ledger.write_text(
        "id,date,amount,currency,counterparty,reference,description,due_date,doc_type,customer_id\n"
        "I1,2026-01-25,100.00,EUR,Acme,INV-2026-00011,invoice one,,invoice,C1\n"
        "I2,2026-01-20,40.00,EUR,Acme,INV-2026-00012,invoice two,,invoice,C1\n"
        "R1,2026-02-12,100.00,EUR,Acme,,receipt booked by hand,,receipt,C1\n"
        "I4,2026-02-01,55.00,EUR,Gamma,INV-2026-00014,invoice,,invoice,C3\n"
        "R3,2026-02-16,55.00,EUR,Gamma,,receipt,,receipt,C3\n",
        encoding="utf-8")
    bank = tmp_path / "bank.csv"
    bank.write_text(
        "id,date,amount,currency,counterparty,reference,description\n"
        "B1,2026-02-10,100.00,EUR,Acme,INV-2026-00011,payment\n"
        "B3,2026-02-15,55.00,EUR,Gamma,INV-2026-00014,payment\n"
        "B4,2026-02-16,55.00,EUR,Gamma,,transfer\n", encoding="utf-8")
    db = tmp_path / "r.duckdb"
    run(RULES, Inputs(bank=[bank], ledger=[ledger]), db_path=db, out_dir=tmp_path / "out",
        as_of=date(2026, 3, 31))
    con = connect(db)
    pairs = con.execute(
        """select string_agg(t.source_id, '+' order by t.side, t.source_id)
        from matches m join match_members mm using (match_id) join txns t using (txn_id)
        where m.active group by m.match_id order by 1""").fetchall()
    assert pairs == [("B1+I1",), ("B3+I4",), ("B4+R3",)]
    frame = aging_frame(con, date(2026, 3, 31), policy="oldest_first")
    assert {r["customer"]: r["total"] for r in frame.iter_rows(named=True)} == {
        "C1": "40.00", "C3": "-55.00"}
    twins = con.execute(
        """select b.source_id, r.source_id from __recon__ar_twins w
        join txns b on b.txn_id = w.bank_id join txns r on r.txn_id = w.receipt_id"""
    ).fetchall()
    assert twins == [("B1", "R1")]
    opened = dict(con.execute(
        "select source_id, open_amount from __recon__ar_items where kind = 'invoice'"
    ).fetchall())
    assert opened == {"I1": Decimal("0"), "I2": Decimal("40"), "I4": Decimal("0")}


LEDGER = "id,date,amount,currency,counterparty,reference,description,due_date,doc_type,customer_id"


def _run(tmp_path: Path, bank: list[str], ledger: list[str]) -> duckdb.DuckDBPyConnection:
    """`recon run` (default rules, as of 2026-03-31) over canonical bank and ledger rows."""
    write_csv(tmp_path / "bank.csv", BANK_HEADER, bank)
    write_csv(tmp_path / "ledger.csv", LEDGER, ledger)
    _rerun(tmp_path)
    return connect(tmp_path / "r.duckdb")


def _rerun(tmp_path: Path) -> None:
    run(RULES, Inputs(bank=[tmp_path / "bank.csv"], ledger=[tmp_path / "ledger.csv"]),
        db_path=tmp_path / "r.duckdb", out_dir=tmp_path / "out", as_of=date(2026, 3, 31))


def _receipts(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, Decimal, str, Decimal]]:
    """(id, customer, amount, currency, open amount) of the bank receipts, after aging_frame."""
    return con.execute(
        """select source_id, customer, amount, currency, open_amount from __recon__ar_items
        where source = 'bank' order by all""").fetchall()


def _matched(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """(members as 'B1+I1', status) of each active match."""
    return con.execute(
        """select string_agg(t.source_id, '+' order by t.side, t.source_id), any_value(m.status)
        from matches m join match_members mm using (match_id) join txns t using (txn_id)
        where m.active group by m.match_id order by 1""").fetchall()


def test_a_refund_of_a_credit_note_through_the_bank_settles_it(tmp_path):
    """We pay Gamma's credit note CN1 back (bank B1, -20.00, matched to CN1): the refund
    is a debit of 20.00 on Gamma's account that the credit note settles, not lost."""
    con = _run(
        tmp_path,
        ["B1,2026-03-20,-20.00,EUR,Gamma Ltd,CN-2026-00077,refund CN-2026-00077"],
        ["CN1,2026-03-15,-20.00,EUR,Gamma Ltd,CN-2026-00077,credit note,,credit_note,C3"])
    assert _matched(con) == [("B1+CN1", "auto")]
    frame = aging_frame(con, date(2026, 3, 31), policy="oldest_first")
    assert frame.height == 0
    alloc = con.execute(
        """select d.source_id, c.source_id, a.amount, a.method from __recon__ar_alloc a
        join txns d on d.txn_id = a.debit_id join txns c on c.txn_id = a.credit_id"""
    ).fetchall()
    assert alloc == [("B1", "CN1", Decimal("20"), "match")]


def test_a_bank_payment_of_invoices_of_two_customers_pays_each_its_own(tmp_path):
    """Omega Group pays the invoices of Omega Nord (C1, 100.00) and Omega Sud (C2, 200.00)
    with one transfer, matched to both: each customer's invoice is settled by its share of
    the transfer, and nobody is reminded of an invoice that was paid."""
    con = _run(
        tmp_path,
        ["B1,2026-03-10,300.00,EUR,Omega Group,PAYRUN-0310,Omega Group payment run"],
        ["I1,2026-03-05,100.00,EUR,Omega Group,PAYRUN-0310,invoice Omega Nord,2026-03-20,"
         "invoice,C1",
         "I2,2026-03-06,200.00,EUR,Omega Group,PAYRUN-0310,invoice Omega Sud,2026-03-20,"
         "invoice,C2"])
    assert _matched(con) == [("B1+I1+I2", "auto")]
    frame = aging_frame(con, date(2026, 3, 31), policy="none")
    assert frame.height == 0
    assert _receipts(con) == [("B1", "C1", Decimal("100"), "EUR", Decimal("0")),
                              ("B1", "C2", Decimal("200"), "EUR", Decimal("0"))]
    # before the transfer both are open
    frame = aging_frame(con, date(2026, 3, 9), policy="none")
    assert {r["customer"]: r["total"] for r in frame.iter_rows(named=True)} == {
        "C1": "100.00", "C2": "200.00"}


def test_a_bank_payment_of_a_linked_and_an_unlinked_invoice_settles_the_linked_one(tmp_path):
    """One transfer pays C1's invoice and one whose customer_id is empty: C1's invoice
    stayed open (the whole bank line was dropped); now C1 is paid its share and the
    rest is a receipt of no customer, listed unlinked beside its invoice."""
    con = _run(
        tmp_path,
        ["B1,2026-03-10,300.00,EUR,Omega Group,PAYRUN-0310,Omega Group payment run"],
        ["I1,2026-03-05,100.00,EUR,Omega Group,PAYRUN-0310,invoice Omega Nord,2026-03-20,"
         "invoice,C1",
         "I2,2026-03-06,200.00,EUR,Omega Group,PAYRUN-0310,invoice Omega Sud,2026-03-20,"
         "invoice,"])
    assert _matched(con) == [("B1+I1+I2", "auto")]
    assert aging_frame(con, date(2026, 3, 31), policy="none").height == 0
    assert _receipts(con) == [("B1", "C1", Decimal("100"), "EUR", Decimal("0"))]
    assert sorted(con.execute("select source_id, kind, amount from __recon__ar_unlinked"
                              ).fetchall()) == [("B1", "receipt", Decimal("200")),
                                                ("I2", "invoice", Decimal("200"))]


def test_a_short_payment_of_two_customers_invoices_leaves_the_shortfall_open(tmp_path, cli):
    """The same payer sends 290.00 for 100.00 (C1) and 200.00 (C2), matched by hand: the
    receipts add up to the money received, the 10.00 short stays open on the larger
    share's customer (who paid it cannot be told), and C1's invoice is settled."""
    _run(tmp_path,
         ["B1,2026-03-10,290.00,EUR,Omega Group,PAYRUN-0310,Omega Group payment run"],
         ["I1,2026-03-05,100.00,EUR,Omega Nord,INV-2026-00001,invoice,2026-03-20,invoice,C1",
          "I2,2026-03-06,200.00,EUR,Omega Sud,INV-2026-00002,invoice,2026-03-20,invoice,C2"]
         ).close()
    rows = [{"side": "left", "id": "B1", "reason": "no_candidate", "decision": "match",
             "match_with": "I1;I2", "note": "payment run"}]
    code, _, err = cli("apply", write_rows(tmp_path / "dec.csv", rows),
                       "--db", tmp_path / "r.duckdb", "--user", "anna")
    assert code == 0, err
    _rerun(tmp_path)
    con = connect(tmp_path / "r.duckdb")
    assert _matched(con) == [("B1+I1+I2", "manual")]
    frame = aging_frame(con, date(2026, 3, 31), policy="none")
    assert {r["customer"]: r["total"] for r in frame.iter_rows(named=True)} == {"C2": "10.00"}
    assert _receipts(con) == [("B1", "C1", Decimal("100"), "EUR", Decimal("0")),
                              ("B1", "C2", Decimal("190"), "EUR", Decimal("0"))]


def test_an_invoice_paid_in_another_currency_is_settled_in_its_own(tmp_path):
    """Alpha pays its 100.00 EUR invoice with a USD wire (108.70 USD, matched by the fx
    rule): the invoice is settled, and no USD credit of -108.70 is left on Alpha's account."""
    con = _run(
        tmp_path,
        ["B1,2026-03-10,108.70,USD,Alpha Inc,INV-2026-00001,wire INV-2026-00001"],
        ["I1,2026-03-05,100.00,EUR,Alpha Inc,INV-2026-00001,invoice,2026-03-03,invoice,C1"])
    assert _matched(con) == [("B1+I1", "auto")]
    assert con.execute("select rule from matches where active").fetchall() == [("fx",)]
    for policy in ("none", "oldest_first"):
        frame = aging_frame(con, date(2026, 3, 31), policy=policy)
        assert frame.height == 0
        assert _receipts(con) == [("B1", "C1", Decimal("100"), "EUR", Decimal("0"))]


def test_a_foreign_currency_payment_of_two_customers_pays_each_in_its_own():
    """A USD transfer (matched by hand) pays a EUR invoice of C1 and a GBP one of C2: each
    is settled in its currency, at its amount."""
    con = connect(":memory:")
    con.executemany(
        """insert into txns (txn_id, side, source_id, date, amount, currency, doc_type,
            customer_id) values (?, ?, ?, ?, ?, ?, ?, ?)""",
        [(1, "ledger", "I1", "2026-03-01", "100.00", "EUR", "invoice", "C1"),
         (2, "ledger", "I2", "2026-03-02", "200.00", "GBP", "invoice", "C2"),
         (3, "bank", "B1", "2026-03-10", "360.00", "USD", None, None)])
    con.execute("insert into matches (match_id, status, active) values ('M1', 'manual', true)")
    con.executemany("insert into match_members values ('M1', ?, ?)",
                    [(3, "left"), (1, "right"), (2, "right")])
    assert aging_frame(con, date(2026, 3, 31)).height == 0
    assert _receipts(con) == [("B1", "C1", Decimal("100"), "EUR", Decimal("0")),
                              ("B1", "C2", Decimal("200"), "GBP", Decimal("0"))]


def test_twins_pair_each_bank_receipt_with_the_nearest_ledger_receipt_left(tmp_path):
    """B1 (03-10) and B2 (03-12) pay Delta's invoices I1 and I2; our ledger books them as
    receipts R1 (03-11) and R2 (03-20). R1 is the nearest receipt to both bank lines and
    goes to B1, the nearer; B2 then takes R2 (8 days, within TWIN_DAYS): each payment is
    counted once and Delta owes nothing, where B2 and R2 were both counted before."""
    con = _run(
        tmp_path,
        ["B1,2026-03-10,100.00,EUR,Delta SARL,INV-2026-00001,virement INV-2026-00001",
         "B2,2026-03-12,100.00,EUR,Delta SARL,INV-2026-00002,virement INV-2026-00002"],
        ["I1,2026-03-01,100.00,EUR,Delta SARL,INV-2026-00001,invoice,2026-03-31,invoice,C4",
         "I2,2026-03-02,100.00,EUR,Delta SARL,INV-2026-00002,invoice,2026-03-31,invoice,C4",
         "R1,2026-03-11,100.00,EUR,Delta SARL,,Zahlungseingang,,receipt,C4",
         "R2,2026-03-20,100.00,EUR,Delta SARL,,Zahlungseingang,,receipt,C4"])
    assert _matched(con) == [("B1+I1", "auto"), ("B2+I2", "auto")]
    frame = aging_frame(con, date(2026, 3, 31), policy="oldest_first")
    assert frame.height == 0
    twins = con.execute(
        """select b.source_id, r.source_id from __recon__ar_twins w
        join txns b on b.txn_id = w.bank_id join txns r on r.txn_id = w.receipt_id
        order by 1""").fetchall()
    assert twins == [("B1", "R1"), ("B2", "R2")]


def test_twins_are_paired_nearest_first_over_as_many_rounds_as_it_takes():
    """R1 is the nearest receipt to B1 and B2 (1 day each: the tie goes to the lower id,
    B1), and B2 takes R2 (2 days) in a second round; B3 takes R3. Each payment counts once."""
    con = connect(":memory:")
    rows = [(k, "ledger", f"I{k}", "2026-03-01", "invoice") for k in (1, 2, 3)]
    rows += [(10 + k, "bank", f"B{k}", d, None)
             for k, d in ((1, "2026-03-10"), (2, "2026-03-10"), (3, "2026-03-17"))]
    rows += [(20 + k, "ledger", f"R{k}", d, "receipt")
             for k, d in ((1, "2026-03-11"), (2, "2026-03-12"), (3, "2026-03-20"))]
    con.executemany(
        """insert into txns (txn_id, side, source_id, date, amount, currency, doc_type,
            customer_id) values (?, ?, ?, ?, 100.00, 'EUR', ?, 'C1')""", rows)
    for k in (1, 2, 3):
        con.execute("insert into matches (match_id, status, active) values (?, 'auto', true)",
                    [f"M{k}"])
        con.executemany("insert into match_members values (?, ?, ?)",
                        [(f"M{k}", 10 + k, "left"), (f"M{k}", k, "right")])
    assert aging_frame(con, date(2026, 3, 31)).height == 0
    twins = con.execute(
        """select b.source_id, r.source_id from __recon__ar_twins w
        join txns b on b.txn_id = w.bank_id join txns r on r.txn_id = w.receipt_id
        order by 1""").fetchall()
    assert twins == [("B1", "R1"), ("B2", "R2"), ("B3", "R3")]
