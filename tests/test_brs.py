"""The bank reconciliation statement (bank_reconciliation.csv) on small books whose
lines are known: each case is a defect the statement had, and what it states now."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from recon.db import connect
from recon.reports import brs

from .conftest import BANK_HEADER, LEDGER_HEADER, RULES, read_rows, write_csv


def statement(cli, tmp: Path, banks: list[Path], ledger: Path, as_of: str,
              db: str = "r.duckdb") -> dict[tuple[str, str, str], str]:
    """`recon run` at `as_of` on database `db` in `tmp`; the statement's amounts by
    (account, currency, line)."""
    out = tmp / f"out-{db}-{as_of}"
    code, _, err = cli("run", "--rules", RULES, "--bank", *banks, "--ledger", ledger,
                       "--db", tmp / db, "--out", out, "--as-of", as_of)
    assert code == 0, err
    return {(r["account"], r["currency"], r["line"]): r["amount"]
            for r in read_rows(out / "bank_reconciliation.csv")}


def test_an_earlier_cut_off_rerun_on_a_later_database_keeps_items_open_then(
        tmp_path, cli) -> None:
    # each pair's second row is dated after 03-31: matched by the 04-05 run
    bank = write_csv(tmp_path / "bank.csv", BANK_HEADER, [
        "B1,2026-04-01,500.00,EUR,Alpha GmbH,DEP-2026-4072,deposit",
        "B2,2026-03-31,-40.00,EUR,Beta AG,PAY-77,payment",
    ])
    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER, [
        "L1,2026-03-31,500.00,EUR,Alpha GmbH,DEP-2026-4072,deposit",
        "L2,2026-04-02,-40.00,EUR,Beta AG,PAY-77,payment",
    ])
    april = statement(cli, tmp_path, [bank], ledger, "2026-04-05")
    assert april[("", "EUR", "unexplained_difference")] == "0.00"
    march = statement(cli, tmp_path, [bank], ledger, "2026-03-31")
    fresh = statement(cli, tmp_path, [bank], ledger, "2026-03-31", db="fresh.duckdb")
    assert march == fresh
    assert march[("", "EUR", "deposits_in_transit")] == "500.00"
    assert march[("", "EUR", "bank_charges_not_booked")] == "-40.00"
    assert march[("", "EUR", "unexplained_difference")] == "0.00"


def test_amounts_in_the_currency_minor_units_rounded_as_the_other_outputs(
        tmp_path, cli) -> None:
    bank = write_csv(tmp_path / "bank.csv", BANK_HEADER, [
        "B1,2026-03-10,1.005,KWD,Gulf Trading,X1,interest",
        "B2,2026-03-11,1000,JPY,Tokyo KK,X2,misc",
        "B3,2026-03-11,10.125,EUR,Kiel AG,X3,misc",
    ])
    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER, [
        "L1,2026-03-12,-3.125,KWD,Gulf Supplier,P1,payment",
    ])
    got = statement(cli, tmp_path, [bank], ledger, "2026-03-31")
    exc = {r["id"]: r["amount"] for r in read_rows(tmp_path / "out-r.duckdb-2026-03-31"
                                                   / "exceptions.csv")}
    assert exc == {"B1": "1.005", "B2": "1000", "B3": "10.13", "L1": "-3.125"}
    assert got[("", "KWD", "bank_receipts_not_booked")] == exc["B1"]
    assert got[("", "JPY", "bank_receipts_not_booked")] == exc["B2"]
    assert got[("", "EUR", "bank_receipts_not_booked")] == exc["B3"]
    assert got[("", "KWD", "outstanding_payments")] == exc["L1"]
    assert got[("", "KWD", "adjusted_bank_balance")] == "-2.120"
    assert got[("", "KWD", "unexplained_difference")] == "0.000"
    assert got[("", "JPY", "unexplained_difference")] == "0"


def test_the_opening_taken_as_zero_is_written_in_the_currency_minor_units(
        tmp_path, cli) -> None:
    bank = write_csv(tmp_path / "bank.csv", BANK_HEADER, [
        "B1,2026-03-10,1.005,KWD,Gulf Trading,X1,interest",
        "B2,2026-03-11,1000,JPY,Tokyo KK,X2,misc",
        "B3,2026-03-11,10.12,EUR,Kiel AG,X3,misc",
    ])
    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER, [
        "L1,2026-03-12,-3.125,KWD,Gulf Supplier,P1,payment",
    ])
    statement(cli, tmp_path, [bank], ledger, "2026-03-31")
    labels = {r["currency"]: r["label"] for r in read_rows(
        tmp_path / "out-r.duckdb-2026-03-31" / "bank_reconciliation.csv")
        if r["line"] == "bank_balance"}
    zero = {"KWD": "0.000", "JPY": "0", "EUR": "0.00"}
    for currency, label in labels.items():
        assert label.endswith(f"opening taken as {zero[currency]})"), label
    assert sorted(labels) == sorted(zero)


def test_a_difference_below_a_cent_of_a_three_decimal_currency_is_stated(
        tmp_path, cli) -> None:
    # the statement closes at 1.010, its one line is 1.005: 0.005 unexplained
    sta = tmp_path / "bank.sta"
    sta.write_text("\n".join([
        ":20:STMT", ":25:KW81CBKU0000000000001234560101", ":28C:00001/001",
        ":60F:C260301KWD0,000", ":61:2603100310CR1,005NTRFNONREF//BANK-0001", ":86:interest",
        ":62F:C260331KWD1,010", "-",
    ]) + "\n", encoding="utf-8")
    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER, ["L0,2026-03-01,0.000,KWD,x,y,z"])
    got = statement(cli, tmp_path, [sta], ledger, "2026-03-31")
    account = "KW81CBKU0000000000001234560101"
    assert got[(account, "KWD", "bank_balance")] == "1.010"
    assert got[(account, "KWD", "bank_receipts_not_booked")] == "1.005"
    assert got[(account, "KWD", "unexplained_difference")] == "0.005"


def test_amount_text_is_recon_fmt_text() -> None:
    con = connect(":memory:")
    for value in ("1.005", "-0.0050", "-0.0040", "2.5", "-2.5", "10.125", "-1234.4999", "0"):
        for cur in ("EUR", "JPY", "KWD"):
            want = con.execute("select recon_fmt(?::decimal(38,4), ?)", [value, cur]).fetchall()
            assert brs._fmt(Decimal(value), cur) == want[0][0], (value, cur)


def mt940(path: Path, *blocks: list[str]) -> Path:
    """An MT940 file of `blocks` (each a statement's fields, without the closing '-')."""
    path.write_text("\n".join(line for b in blocks for line in [*b, "-"]) + "\n",
                    encoding="utf-8")
    return path


def test_a_statement_ending_before_the_cut_off_adds_the_bank_lines_after_it(
        tmp_path, cli) -> None:
    # S1 ends 03-10 at 1100; S2 (03-11 to 04-05) has a fee on 03-30 and interest on 04-02
    sta = mt940(tmp_path / "bank.sta", [
        ":20:S1", ":25:DE01ACC", ":28C:00001/001", ":60F:C260301EUR1000,00",
        ":61:2603050305CR100,00NTRFNONREF//B-1", ":86:Alpha payment INV-2026-00100",
        ":62F:C260310EUR1100,00",
    ], [
        ":20:S2", ":25:DE01ACC", ":28C:00002/001", ":60F:C260311EUR1100,00",
        ":61:2603300330DR30,00NTRFNONREF//B-2", ":86:bank fee march",
        ":61:2604020402CR5,00NTRFNONREF//B-3", ":86:interest",
        ":62F:C260405EUR1075,00",
    ])
    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER, [
        "L1,2026-03-05,100.00,EUR,Alpha,INV-2026-00100,payment INV-2026-00100",
    ])
    out = tmp_path / "out-r.duckdb-2026-03-31"
    got = statement(cli, tmp_path, [sta], ledger, "2026-03-31")
    assert got[("DE01ACC", "EUR", "bank_balance")] == "1070.00"
    assert got[("DE01ACC", "EUR", "bank_charges_not_booked")] == "-30.00"
    assert got[("DE01ACC", "EUR", "unexplained_difference")] == "0.00"
    label = {r["line"]: r["label"] for r in read_rows(out / "bank_reconciliation.csv")}
    assert label["bank_balance"] == (
        "Balance per bank statement (closing balance at 2026-03-10 + bank lines to 2026-03-31)")
    # at 03-10 the statement's closing is the balance, as it was
    got = statement(cli, tmp_path, [sta], ledger, "2026-03-10", db="s1.duckdb")
    assert got[("DE01ACC", "EUR", "bank_balance")] == "1100.00"
    assert got[("DE01ACC", "EUR", "unexplained_difference")] == "0.00"
    label = {r["line"]: r["label"] for r in read_rows(
        tmp_path / "out-s1.duckdb-2026-03-10" / "bank_reconciliation.csv")}
    assert label["bank_balance"] == "Balance per bank statement"


def test_a_first_statement_without_opening_is_worked_back_from_a_later_opening(
        tmp_path, cli) -> None:
    # January is a CSV without balances, February an MT940 opening at January's 100.00
    jan = write_csv(tmp_path / "jan.csv", BANK_HEADER + ",account", [
        "B1,2026-01-10,100.00,EUR,Alpha,INV-2026-00010,payment INV-2026-00010,DE01ACC",
    ])
    feb = mt940(tmp_path / "feb.sta", [
        ":20:S2", ":25:DE01ACC", ":28C:00002/001", ":60F:C260201EUR100,00",
        ":61:2602100210CR50,00NTRFNONREF//B-2", ":86:Beta payment INV-2026-00020",
        ":62F:C260228EUR150,00",
    ])
    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER, [
        "L1,2026-01-10,100.00,EUR,Alpha,INV-2026-00010,receipt INV-2026-00010",
        "L2,2026-02-10,50.00,EUR,Beta,INV-2026-00020,receipt INV-2026-00020",
    ])
    got = statement(cli, tmp_path, [jan, feb], ledger, "2026-02-28")
    # the books open at 100.00 - 100.00 (January's line), not at 100.00 again
    assert got[("DE01ACC", "EUR", "bank_balance")] == "150.00"
    assert got[("DE01ACC", "EUR", "book_balance")] == "150.00"
    assert got[("DE01ACC", "EUR", "unexplained_difference")] == "0.00"


def test_the_ledger_side_of_an_fx_match_leaves_its_currency_s_statement(
        tmp_path, cli) -> None:
    # one account with USD and EUR lines; the USD receipt is booked in EUR (FX match)
    header = BANK_HEADER + ",account"
    bank = write_csv(tmp_path / "bank.csv", header, [
        "B1,2026-03-10,108.70,USD,Alpha Inc,INV-2026-00001,wire INV-2026-00001,DE01MULTI",
        "B2,2026-03-11,50.00,EUR,Beta GmbH,INV-2026-00002,transfer INV-2026-00002,DE01MULTI",
    ])
    ledger = write_csv(tmp_path / "ledger.csv", header, [
        "L1,2026-03-09,100.00,EUR,Alpha Inc,INV-2026-00001,receipt INV-2026-00001,1200",
        "L2,2026-03-11,50.00,EUR,Beta GmbH,INV-2026-00002,receipt INV-2026-00002,1200",
    ])
    got = statement(cli, tmp_path, [bank], ledger, "2026-03-31")
    rules = {r["left_ids"]: r["rule"] for r in read_rows(
        tmp_path / "out-r.duckdb-2026-03-31" / "matches.csv")}
    assert rules["B1"] == "fx"
    # USD: at the amount the bank booked, as before
    assert got[("DE01MULTI", "USD", "foreign_currency_items")] == "108.70"
    assert got[("DE01MULTI", "USD", "unexplained_difference")] == "0.00"
    # EUR: the books hold L1's 100.00, which the bank booked in USD
    assert got[("DE01MULTI", "EUR", "book_balance")] == "150.00"
    assert got[("DE01MULTI", "EUR", "foreign_currency_items")] == "-100.00"
    assert got[("DE01MULTI", "EUR", "unexplained_difference")] == "0.00"


def test_invoices_and_credit_notes_are_no_cash_book_entries(tmp_path, cli) -> None:
    """A ledger export holding invoices and credit notes beside its receipts (a bank line
    paying an invoice directly): the statement counted the open invoice and credit note
    as deposits in transit and every invoice in the balance per books, 1,570.00 of
    books holding 220.00 of cash."""
    header = f"{LEDGER_HEADER},doc_type,customer_id"
    bank = write_csv(tmp_path / "bank.csv", BANK_HEADER, [
        "B1,2026-03-05,500.00,EUR,Acme GmbH,INV-2026-00001,transfer",
        "B2,2026-03-10,300.00,EUR,Beta AG,DEP-2026-0002,deposit",
        "B3,2026-03-31,-20.00,EUR,Bank,FEE-03,account fee",
    ])
    ledger = write_csv(tmp_path / "ledger.csv", header, [
        "I1,2026-03-01,500.00,EUR,Acme GmbH,INV-2026-00001,invoice,invoice,C1",
        "I2,2026-03-20,800.00,EUR,Acme GmbH,INV-2026-00002,invoice,invoice,C1",
        "CN1,2026-03-21,50.00,EUR,Acme GmbH,CN-2026-00001,credit note,credit_note,C1",
        "R2,2026-03-09,300.00,EUR,Beta AG,DEP-2026-0002,deposit,receipt,C2",
        "R3,2026-03-30,120.00,EUR,Gamma SA,DEP-2026-0003,deposit,receipt,C3",
        "P1,2026-03-29,-200.00,EUR,Delta Ltd,PAY-2026-0001,supplier,payment,",
    ])
    got = statement(cli, tmp_path, [bank], ledger, "2026-03-31")
    lines = {line: amount for (_, _, line), amount in got.items()}
    assert lines["bank_balance"] == "780.00"
    assert lines["deposits_in_transit"] == "120.00"  # R3, not I2 or CN1
    assert lines["outstanding_payments"] == "-200.00"
    assert lines["adjusted_bank_balance"] == "700.00"
    assert lines["book_balance"] == "220.00"  # R2 + R3 + P1: the cash lines
    assert lines["documents_matched"] == "500.00"  # I1, paid by B1
    assert lines["bank_charges_not_booked"] == "-20.00"
    assert lines["matched_differences"] == "0.00"
    assert lines["adjusted_book_balance"] == "700.00"
    assert lines["unexplained_difference"] == "0.00"


def test_a_match_of_bank_lines_in_two_accounts_counts_in_each_what_its_bank_got(
        tmp_path, cli) -> None:
    """A customer paying one invoice in two parts to two of our accounts: the ledger
    books the receipt once, in the first account.  Each account's statement showed an
    unexplained difference (-80.00 and +80.00): the match counted its difference, 0.00,
    on each account rather than what each account's bank got."""
    bank = write_csv(tmp_path / "bank.csv", f"{BANK_HEADER},account", [
        "B1,2026-03-05,120.00,EUR,Acme GmbH,INV-2026-00009 part 1,transfer,DE-A",
        "B2,2026-03-06,80.00,EUR,Acme GmbH,INV-2026-00009 part 2,transfer,DE-B",
        "B3,2026-03-07,45.00,EUR,Beta AG,INV-2026-00010,transfer,DE-B",
    ])
    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER, [
        "L1,2026-03-04,200.00,EUR,Acme GmbH,INV-2026-00009,receipt",
        "L2,2026-03-07,45.00,EUR,Beta AG,INV-2026-00010,receipt",
    ])
    got = statement(cli, tmp_path, [bank], ledger, "2026-03-31")
    matches = read_rows(tmp_path / "out-r.duckdb-2026-03-31" / "matches.csv")
    assert {(m["left_ids"], m["right_ids"]) for m in matches} == {("B1;B2", "L1"), ("B3", "L2")}
    assert got[("DE-A", "EUR", "bank_balance")] == "120.00"
    assert got[("DE-A", "EUR", "book_balance")] == "200.00"
    assert got[("DE-A", "EUR", "matched_differences")] == "-80.00"  # B2 went to DE-B
    assert got[("DE-A", "EUR", "unexplained_difference")] == "0.00"
    assert got[("DE-B", "EUR", "bank_balance")] == "125.00"
    assert got[("DE-B", "EUR", "book_balance")] == "45.00"
    assert got[("DE-B", "EUR", "matched_differences")] == "80.00"
    assert got[("DE-B", "EUR", "unexplained_difference")] == "0.00"


def test_an_invoice_in_a_match_of_two_accounts_is_counted_once(tmp_path, cli) -> None:
    """Two transfers to two of our accounts, matched by hand to an invoice our ledger
    holds and a receipt it booked: the invoice was counted as paid into the books twice
    (the first account showed an unexplained -30.00)."""
    bank = write_csv(tmp_path / "bank.csv", f"{BANK_HEADER},account", [
        "B1,2026-03-05,120.00,EUR,Acme GmbH,,transfer,DE-A",
        "B2,2026-03-06,30.00,EUR,Acme GmbH,,transfer,DE-B",
    ])
    ledger = write_csv(tmp_path / "ledger.csv", f"{LEDGER_HEADER},doc_type", [
        "R1,2026-03-04,100.00,EUR,Acme GmbH,INV-2026-00009,receipt,receipt",
        "I2,2026-03-01,50.00,EUR,Acme GmbH,INV-2026-00010,invoice,invoice",
    ])
    statement(cli, tmp_path, [bank], ledger, "2026-03-31")
    decisions = write_csv(tmp_path / "d.csv", "side,id,reason,decision,match_with,note",
                          ["left,B1,no_candidate,match,B2;R1;I2,two transfers"])
    code, _, err = cli("apply", decisions, "--db", tmp_path / "r.duckdb", "--user", "anna")
    assert code == 0, err
    got = statement(cli, tmp_path, [bank], ledger, "2026-03-31")
    matches = read_rows(tmp_path / "out-r.duckdb-2026-03-31" / "matches.csv")
    assert {(m["left_ids"], m["right_ids"]) for m in matches} == {("B1;B2", "I2;R1")}
    assert got[("DE-A", "EUR", "book_balance")] == "100.00"  # R1, not the invoice
    assert got[("DE-A", "EUR", "unexplained_difference")] == "0.00"
    assert got[("DE-B", "EUR", "unexplained_difference")] == "0.00"
