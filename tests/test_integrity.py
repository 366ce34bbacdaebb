"""Statement integrity checks, and `inspect_file` (which reports them)."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from recon.errors import InputFileError
from recon.inspect import decimal_text, inspect_file
from recon.integrity import IntegrityBreak, StatementCheck, check_statements
from recon.loaders import load_file
from recon.loaders.base import LoadResult, StatementInfo, canonical
from tests.conftest import RULES

BANKS = Path(__file__).resolve().parent / "fixtures" / "banks"


def result(name: str, statements: list[tuple[str, str, str | None, str | None, str, str,
                                              list[str]]]) -> LoadResult:
    """A LoadResult from (account, ccy, open, close, start, end, [amounts]) tuples."""
    rows, infos = [], []
    for account, ccy, opening, closing, start, end, amounts in statements:
        for amount in amounts:
            rows.append({"id": f"{name}-{len(rows)}", "date": date.fromisoformat(start),
                         "amount": amount, "currency": ccy, "account": account})
        infos.append(StatementInfo(
            account, ccy, Decimal(opening) if opening else None,
            Decimal(closing) if closing else None, date.fromisoformat(start),
            date.fromisoformat(end), len(amounts)))
    frame = pl.DataFrame(rows, schema={"id": pl.String, "date": pl.Date, "amount": pl.String,
                                       "currency": pl.String, "account": pl.String})
    return LoadResult(Path(name), "test", canonical(frame, Path(name)), infos)


def kinds(breaks: list[IntegrityBreak]) -> list[str]:
    return [b.kind for b in breaks]


@pytest.mark.parametrize("fixture", sorted(p.relative_to(BANKS) for p in BANKS.glob("*/*")),
                         ids=str)
def test_clean_fixtures_have_no_breaks(fixture: Path) -> None:
    assert check_statements([load_file(BANKS / fixture)]) == []


def test_balance_break_names_expected_found_and_difference() -> None:
    breaks = check_statements([result("a.sta", [
        ("ACC", "EUR", "100.00", "150.00", "2026-03-02", "2026-03-02", ["60.00", "-5.00"])])])
    (only,) = breaks
    assert (only.kind, only.account) == ("balance", "ACC")
    assert (only.expected, only.found, only.difference) == (
        Decimal("155.00"), Decimal("150.00"), Decimal("-5.00"))
    assert "a.sta #1" in only.statements[0] and "difference -5.00" in only.message


def test_consecutive_statements_across_files_in_date_order() -> None:
    march3 = result("b.sta", [("ACC", "EUR", "110", "120", "2026-03-03", "2026-03-03", ["10"])])
    march2 = result("a.sta", [("ACC", "EUR", "100", "110", "2026-03-02", "2026-03-02", ["10"])])
    assert check_statements([march3, march2]) == []
    wrong = result("c.sta", [("ACC", "EUR", "125", "130", "2026-03-04", "2026-03-04", ["5"])])
    (only,) = check_statements([march2, march3, wrong])
    assert only.kind == "continuity" and only.difference == Decimal("5")
    assert only.statements == ("b.sta #1 2026-03-03..2026-03-03",
                               "c.sta #1 2026-03-04..2026-03-04")


def test_files_checked_one_at_a_time_need_not_keep_their_lines() -> None:
    # `recon run` adds each file as it is parsed and lets its rows go once stored
    files = [
        result("a.sta", [("ACC", "EUR", "100", "110", "2026-03-02", "2026-03-02", ["10"])]),
        result("b.sta", [("ACC", "EUR", "125", "130", "2026-03-04", "2026-03-04", ["5"]),
                         ("ACC", "USD", "0", "1", "2026-03-04", "2026-03-04", ["2"])]),
        result("c.sta", [("ACC", "EUR", "110", "120", "2026-03-03", "2026-03-03", ["10"])]),
    ]
    expected = check_statements(files)
    assert kinds(expected) == ["balance", "currency", "continuity"]
    check = StatementCheck()
    for loaded in files:
        check.add(loaded)
        loaded.frame = loaded.frame.clear()
    assert check.breaks() == expected


def test_date_gaps_skip_weekends_and_overlaps_are_flagged() -> None:
    friday = ("ACC", "EUR", "1", "1", "2026-03-06", "2026-03-06", [])
    monday = ("ACC", "EUR", "1", "1", "2026-03-09", "2026-03-09", [])
    wednesday = ("ACC", "EUR", "1", "1", "2026-03-11", "2026-03-11", [])
    assert check_statements([result("f", [friday, monday])]) == []
    gap = check_statements([result("f", [monday, wednesday])])
    assert kinds(gap) == ["date_gap"] and "2026-03-10..2026-03-10" in gap[0].message
    month = ("ACC", "EUR", "1", "1", "2026-03-01", "2026-03-31", [])
    overlap = ("ACC", "EUR", "1", "1", "2026-03-15", "2026-04-15", [])
    assert kinds(check_statements([result("f", [month, overlap])])) == ["date_overlap"]


def test_same_statement_twice_is_a_duplicate() -> None:
    day = ("ACC", "EUR", "1", "2", "2026-03-02", "2026-03-02", ["1"])
    assert kinds(check_statements([result("a", [day]), result("b", [day])])) == [
        "duplicate_statement"]


def test_one_currency_per_account() -> None:
    breaks = check_statements([
        result("a", [("ACC", "EUR", None, None, "2026-03-02", "2026-03-02", ["1"])]),
        result("b", [("ACC", "USD", None, None, "2026-03-03", "2026-03-03", ["1"])])])
    assert kinds(breaks) == ["currency"] and "EUR, USD" in breaks[0].message


def test_lines_in_another_currency_than_their_statement() -> None:
    loaded = result("a", [("ACC", "EUR", None, None, "2026-03-02", "2026-03-02", ["1"])])
    loaded.frame = loaded.frame.with_columns(pl.lit("CHF").alias("currency"))
    assert kinds(check_statements([loaded])) == ["currency"]


def test_statements_whose_lines_cannot_be_told_apart_are_reported() -> None:
    loaded = result("a", [("ACC", "EUR", "0", "1", "2026-03-02", "2026-03-02", ["1"]),
                          ("ACC", "EUR", "1", "2", "2026-03-03", "2026-03-03", ["1"])])
    loaded.statements = [StatementInfo("ACC", "EUR", Decimal(0), Decimal(1), None, None, 5),
                         StatementInfo("ACC", "EUR", Decimal(1), Decimal(2), None, None, 5)]
    assert kinds(check_statements([loaded])) == ["unverified", "unverified"]


def test_inspect_json_follows_the_contract() -> None:
    report = inspect_file(BANKS / "mt940" / "de_sparkasse.sta")
    assert list(report) == ["file", "format", "transactions", "statements", "profile",
                            "encoding", "detected_because", "integrity"]
    assert (report["format"], report["transactions"]) == ("mt940", 3)
    assert report["statements"][0] == {
        "account": "10020030/1234567890", "currency": "EUR", "opening_balance": "1000.00",
        "closing_balance": "1200.10", "start_date": "2026-03-02", "end_date": "2026-03-03",
        "transactions": 2}
    assert "content looks like mt940" in report["detected_because"][0]
    assert json.loads(json.dumps(report)) == report


def test_inspect_reports_breaks_and_forced_format(tmp_path: Path) -> None:
    text = (BANKS / "mt940" / "de_sparkasse.sta").read_text(encoding="latin-1")
    path = tmp_path / "statement.txt"
    path.write_text(text.replace(":62F:C260304EUR1000,00", ":62F:C260304EUR1000,01"),
                    encoding="latin-1")
    report = inspect_file(path, format="mt940")
    assert report["detected_because"][0] == "format mt940 given with --format"
    (only,) = report["integrity"]
    assert (only["kind"], only["difference"]) == ("balance", "0.01")
    path.write_text(text.replace("EUR1000,00", "EUR10O0,00"), encoding="latin-1")
    with pytest.raises(InputFileError, match="cannot parse balance"):
        inspect_file(path, format="mt940")


def test_breaks_state_amounts_in_the_currency_minor_units(tmp_path: Path) -> None:
    text = (BANKS / "mt940" / "de_sparkasse.sta").read_text(encoding="latin-1")
    path = tmp_path / "jpy.sta"
    path.write_text(text.replace("EUR", "JPY").replace(":62F:C260304JPY1000,00",
                                                       ":62F:C260304JPY1005,00"),
                    encoding="latin-1")
    (only,) = inspect_file(path)["integrity"]
    assert (only["currency"], only["expected"], only["found"], only["difference"]) == (
        "JPY", "1000", "1005", "5")
    assert only["message"].endswith(
        "opening 1200.1 + lines -200.1 = 1000, but the statement closes at 1005 "
        "(difference 5)")


@pytest.mark.parametrize(("value", "text"), [
    (None, None), (Decimal("2156.5600"), "2156.56"), (Decimal("0"), "0.00"),
    (Decimal("-1.2345"), "-1.2345"), (Decimal("1E+3"), "1000.00"),
])
def test_decimal_text(value: Decimal | None, text: str | None) -> None:
    assert decimal_text(value) == text


@pytest.mark.parametrize(("value", "currency", "text"), [
    (Decimal("200.2500"), "KWD", "200.250"), (Decimal("0"), "KWD", "0.000"),
    (Decimal("-1.2345"), "KWD", "-1.2345"), (Decimal("20029.0000"), "JPY", "20029"),
    (Decimal("1E+3"), "JPY", "1000"), (Decimal("-0.00"), "JPY", "0"),
    (Decimal("12.5"), "EUR", "12.50"), (Decimal("12.5"), None, "12.50"),
])
def test_decimal_text_has_the_currency_minor_units(
        value: Decimal, currency: str | None, text: str) -> None:
    assert decimal_text(value, currency) == text


def test_inspect_balances_have_the_currency_minor_units(tmp_path: Path) -> None:
    text = (BANKS / "mt940" / "de_sparkasse.sta").read_text(encoding="latin-1")
    path = tmp_path / "kwd.sta"
    path.write_text(text.replace("EUR", "KWD"), encoding="latin-1")
    first = inspect_file(path)["statements"][0]
    assert (first["opening_balance"], first["closing_balance"]) == ("1000.000", "1200.100")


# A customer's statement in its own signs: invoices and receipts are both positive and
# doc_type tells them apart (1000.00 + 500.00 - 200.00 - 50.00 = 1250.00)
THEIRS = """id,date,amount,currency,counterparty,reference,description,doc_type,customer_id
S0,2026-01-01,1000.00,EUR,Acme GmbH,,Balance brought forward,,C1
S1,2026-01-05,500.00,EUR,Acme GmbH,INV-2026-00001,Invoice,invoice,C1
S2,2026-01-20,200.00,EUR,Acme GmbH,INV-2025-00090,Payment,payment,C1
S3,2026-01-25,50.00,EUR,Acme GmbH,CN-2026-00001,Credit note,credit_note,C1
S9,2026-01-31,{closing},EUR,Acme GmbH,,Closing balance,,C1
"""
OURS = """id,date,amount,currency,counterparty,reference,description,doc_type,customer_id
L1,2026-01-05,500.00,EUR,Acme GmbH,INV-2026-00001,Invoice,invoice,C1
L2,2026-01-20,200.00,EUR,Acme GmbH,INV-2025-00090,Receipt,receipt,C1
"""
# a bank statement of no account beside it, in February: no chain with theirs (no gap)
BANK = """id,date,amount,currency,counterparty,reference,description
B1,2026-02-10,200.00,EUR,Acme GmbH,INV-2025-00090,Transfer
"""


def _run_with_statement(cli, tmp_path: Path, closing: str, theirs: str = THEIRS
                        ) -> tuple[dict, str]:
    """summary.json and report.html of `recon run` with `theirs` closing at `closing`."""
    (tmp_path / "their.csv").write_text(theirs.format(closing=closing), encoding="utf-8")
    (tmp_path / "ours.csv").write_text(OURS, encoding="utf-8")
    (tmp_path / "bank.csv").write_text(BANK, encoding="utf-8")
    code, _, err = cli("run", "--rules", RULES, "--bank", tmp_path / "bank.csv",
                       "--statement", tmp_path / "their.csv", "--ledger", tmp_path / "ours.csv",
                       "--db", tmp_path / "recon.duckdb", "--out", tmp_path / "out",
                       "--as-of", "2026-02-28")
    assert code == 0, err
    out = tmp_path / "out"
    return (json.loads((out / "summary.json").read_text(encoding="utf-8")),
            (out / "report.html").read_text(encoding="utf-8"))


def test_a_customer_statement_whose_lines_do_not_make_its_closing_balance_breaks(
        cli, tmp_path: Path) -> None:
    # a page of their lines is missing (or the figure is wrong): it closes at 1350.00
    summary, report = _run_with_statement(cli, tmp_path, "1350.00")
    (only,) = summary["integrity"]
    assert (only["kind"], only["currency"], only["expected"], only["found"],
            only["difference"]) == ("balance", "EUR", "1250.00", "1350.00", "100.00")
    assert only["statements"] == ["their.csv #1 2026-01-01..2026-01-31"]
    assert only["customer"] == "C1"
    assert only["message"] == (
        "their.csv #1 2026-01-01..2026-01-31, customer C1: opening 1000.00 + lines 250.00 "
        "(invoices less credit notes and receipts) = 1250.00, but the statement closes at "
        "1350.00 (difference 100.00)")
    assert 'id="integrity"' in report and "but the statement closes at 1350.00" in report
    assert "<td>customer C1</td>" in report


def test_a_customer_statement_adds_up_by_its_lines_effects(cli, tmp_path: Path) -> None:
    # by the bank's sign its lines make 1000.00 + 750.00; receipts and credit notes
    # lower what the customer owes
    summary, report = _run_with_statement(cli, tmp_path, "1250.00")
    assert summary["integrity"] == []
    assert 'id="integrity"' not in report


# THEIRS on two pages: page 1 ends after its invoice, at 1000.00 + 500.00 = 1500.00
PAGED_THEIRS = THEIRS.replace("S2,", """P1,2026-01-05,{carried},EUR,Acme GmbH,,Balance c/f,,C1
P2,2026-01-06,{brought},EUR,Acme GmbH,,Balance b/f,,C1
S2,""")
WRONG_CARRIED = {  # carried, brought forward, and what is said of them
    "carried": ("1450.00", "1450.00", "line 4 states a balance of 1450.00 carried over a "
                "page, but opening 1000.00 + lines before it 500.00"),
    "brought forward": ("1500.00", "1450.00", "line 5 states a balance of 1450.00 carried "
                        "over a page, but line 4's 1500.00 + lines between 0.00"),
}


@pytest.mark.parametrize(("carried", "brought", "said"), WRONG_CARRIED.values(),
                         ids=WRONG_CARRIED)
def test_a_carried_balance_that_its_lines_do_not_make_breaks(
        cli, tmp_path: Path, carried: str, brought: str, said: str) -> None:
    # their page lines are no transactions; one that states a balance the lines before it
    # do not make is not dropped without a word (its closing balance agrees)
    theirs = PAGED_THEIRS.replace("{carried}", carried).replace("{brought}", brought)
    summary, report = _run_with_statement(cli, tmp_path, "1250.00", theirs)
    (only,) = summary["integrity"]
    assert (only["kind"], only["currency"], only["expected"], only["found"],
            only["difference"], only["customer"]) == (
        "balance", "EUR", "1500.00", "1450.00", "-50.00", "C1")
    assert only["statements"] == ["their.csv #1 2026-01-01..2026-01-31"]
    assert only["message"] == (
        f"their.csv #1 2026-01-01..2026-01-31, customer C1: {said} (invoices less credit "
        "notes and receipts) = 1500.00 (difference -50.00)")
    assert "carried over a page" in report
    agreement = pl.read_csv(tmp_path / "out" / "statement_agreement.csv", infer_schema=False)
    assert not {"P1", "P2"} & set(agreement["their_ids"].drop_nulls())


def test_carried_balances_that_their_lines_make_are_no_break(cli, tmp_path: Path) -> None:
    theirs = PAGED_THEIRS.replace("{carried}", "1500.00").replace("{brought}", "1500.00")
    summary, _ = _run_with_statement(cli, tmp_path, "1250.00", theirs)
    assert summary["integrity"] == []
