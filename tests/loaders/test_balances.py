"""Balance lines of a customer statement: told from transactions, and only them."""

from __future__ import annotations

import tempfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from recon.agreement import carried_balances, statement_totals
from recon.errors import InputFileError
from recon.integrity import StatementCheck
from recon.loaders import load_file
from recon.loaders.balances import balance_kind, split_balances
from tests.conftest import RULES
from tests.strategies import amounts, paged_statements

HEADER = "id,date,amount,currency,counterparty,reference,description,doc_type\n"


@pytest.mark.parametrize(("text", "kind"), [
    ("Balance brought forward", "opening"),
    ("BALANCE B/F", "opening"),
    ("Opening balance as at 1 January 2026", "opening"),
    ("Balance b/f 31/12/2025", "opening"),
    ("opening_balance", "opening"),
    ("期初余额", "opening"),
    ("期初余额（2026年1月1日）", "opening"),
    ("上期结余", "opening"),
    ("承前页", "opening"),
    ("承上页", "opening"),
    ("Closing balance", "closing"),
    ("Balance carried forward", "closing"),
    ("期末余额", "closing"),
    ("过次页", "closing"),
    ("转下页", "closing"),
    ("Total:", "total"),
    ("合计", "total"),
    ("本期合计", "total"),
    ("本页小计", "total"),
    ("本页合计", "total"),
    ("Page total", "total"),
    # words of a balance in a transaction's text
    ("Payment of balance INV-2026-00012", None),
    ("Balance", None),
    ("Opening balance adjustment", None),
    ("Total Energies SE", None),
    ("余额调整", None),
    (None, None),
])
def test_balance_phrases(text, kind):
    assert balance_kind(text) == kind


def _split(tmp_path: Path, body: str, *, undated_balances: bool = False):
    path = tmp_path / "their.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    return split_balances(load_file(path, undated_balances=undated_balances))


def test_the_first_and_last_lines_state_balances_and_are_no_rows(tmp_path):
    result = _split(tmp_path, """S0,2026-01-01,1250.00,EUR,Acme,,Balance b/f,
S1,2026-01-05,1000.00,EUR,Acme,INV-2026-00001,Invoice,invoice
S2,2026-02-03,1000.00,EUR,Acme,INV-2026-00001,Payment,payment
S8,2026-02-28,1250.00,EUR,Acme,,Closing balance,
S9,2026-02-28,2000.00,EUR,Acme,,Total,
""")
    assert result.frame["id"].to_list() == ["S1", "S2"]
    (st,) = result.statements
    assert (st.opening_balance, st.closing_balance) == (Decimal("1250"), Decimal("1250"))
    assert (st.start_date, st.end_date, st.transactions) == (
        date(2026, 1, 1), date(2026, 2, 28), 2)


def test_a_phrase_with_an_invoice_number_or_among_other_words_is_a_transaction(tmp_path):
    result = _split(tmp_path, """S1,2026-01-05,90.00,EUR,Acme,INV-2026-00013,Balance b/f,payment
S2,2026-01-09,1000.00,EUR,Acme,INV-2026-00001,Invoice,invoice
S3,2026-01-10,40.00,EUR,Acme,INV-2026-00002,Brought forward,
S4,2026-01-12,250.00,EUR,Acme,,Payment of balance INV-2026-00012,
S5,2026-02-03,1000.00,EUR,Acme,,Payment of balance INV-2026-00001,
""")
    assert result.frame["id"].to_list() == ["S1", "S2", "S3", "S4", "S5"]
    assert result.statements[0].opening_balance is None
    assert result.carried is not None and result.carried.height == 0


# One statement on three pages: each page ends with the balance it carries (and a
# subtotal of its lines), the next begins with it. 1250 + 1000 + 2500 = 4750; - 1000 = 3750
ONE_PAGE = """S0,2026-01-01,1250.00,EUR,Acme,,Balance b/f,
S1,2026-01-05,1000.00,EUR,Acme,INV-2026-00001,Invoice,invoice
S2,2026-01-12,2500.00,EUR,Acme,INV-2026-00002,Invoice,invoice
S3,2026-02-03,1000.00,EUR,Acme,INV-2026-00001,Payment,payment
S9,2026-02-28,3750.00,EUR,Acme,,Closing balance,
"""
PAGED = {
    "English": """S0,2026-01-01,1250.00,EUR,Acme,,Balance b/f,
S1,2026-01-05,1000.00,EUR,Acme,INV-2026-00001,Invoice,invoice
P1,2026-01-05,2250.00,EUR,Acme,,Balance carried forward,
P2,2026-01-06,2250.00,EUR,Acme,,Balance brought forward 6 Jan 2026,
S2,2026-01-12,2500.00,EUR,Acme,INV-2026-00002,Invoice,invoice
P3,2026-01-12,3500.00,EUR,Acme,,Sub total,
P4,2026-01-12,4750.00,EUR,Acme,,c/f,
P5,2026-01-13,4750.00,EUR,Acme,,B/F,
S3,2026-02-03,1000.00,EUR,Acme,INV-2026-00001,Payment,payment
S9,2026-02-28,3750.00,EUR,Acme,,Closing balance,
""",
    "Chinese, undated": """S0,2026-01-01,1250.00,EUR,Acme,,期初余额,
S1,2026-01-05,1000.00,EUR,Acme,INV-2026-00001,Invoice,invoice
P1,,2250.00,EUR,Acme,,过次页,
P2,,2250.00,EUR,Acme,,承前页,
S2,2026-01-12,2500.00,EUR,Acme,INV-2026-00002,Invoice,invoice
P3,,3500.00,EUR,Acme,,本页小计,
P4,,4750.00,EUR,Acme,,转下页,
P5,,4750.00,EUR,Acme,,承上页,
S3,2026-02-03,1000.00,EUR,Acme,INV-2026-00001,Payment,payment
S9,2026-02-28,3750.00,EUR,Acme,,期末余额,
""",
}


@pytest.mark.parametrize("paged", PAGED.values(), ids=PAGED)
def test_page_lines_between_transactions_are_no_rows(tmp_path, paged):
    # the carried and brought-forward balances and the subtotal were rows, payments of
    # 2250.00 and 4750.00 twice over and of 3500.00; undated, they refused the file
    (tmp_path / "paged").mkdir()
    (tmp_path / "one").mkdir()
    one = _split(tmp_path / "one", ONE_PAGE)
    paged = _split(tmp_path / "paged", paged, undated_balances=True)
    assert paged.frame["id"].to_list() == ["S1", "S2", "S3"]
    assert paged.frame.drop("line").equals(one.frame.drop("line"))
    assert paged.statements == one.statements
    assert paged.carried is not None
    assert paged.carried["id"].to_list() == ["P1", "P2", "P4", "P5"]  # no subtotal


def test_newest_first_a_statement_opens_at_its_last_line(tmp_path):
    result = _split(tmp_path, """S9,2026-02-28,-10.00,EUR,Acme,,期末余额,
S2,2026-02-03,1000.00,EUR,Acme,INV-2026-00001,Payment,payment
S1,2026-01-05,1000.00,EUR,Acme,INV-2026-00001,Invoice,invoice
S0,2026-01-01,-10.00,EUR,Acme,,期初余额,
""")
    assert result.frame["id"].to_list() == ["S2", "S1"]
    (st,) = result.statements
    assert (st.opening_balance, st.closing_balance, st.start_date) == (
        Decimal("-10"), Decimal("-10"), date(2026, 1, 1))


def test_balances_per_currency_and_the_period_starts_at_the_first_transaction(tmp_path):
    # the USD balance is dated after its first line: the period starts at that line
    result = _split(tmp_path, """S0,2026-01-01,100.00,EUR,Acme,,Opening balance,
U0,2026-01-31,70.00,USD,Acme,,Opening balance,
S1,2026-01-05,1000.00,EUR,Acme,INV-2026-00001,Invoice,invoice
U1,2026-01-07,50.00,USD,Acme,INV-2026-00002,Invoice,invoice
""")
    assert result.frame["id"].to_list() == ["S1", "U1"]
    by_currency = {s.currency: (s.opening_balance, s.start_date) for s in result.statements}
    assert by_currency == {"EUR": (Decimal("100"), date(2026, 1, 1)),
                           "USD": (Decimal("70"), date(2026, 1, 7))}


def test_two_opening_balances_of_one_currency_are_refused(tmp_path):
    with pytest.raises(InputFileError) as info:
        _split(tmp_path, """S0,2026-01-01,100.00,EUR,Acme,,Opening balance,
S1,2026-01-01,100.00,EUR,Acme,,期初余额,
S2,2026-01-05,1000.00,EUR,Acme,INV-2026-00001,Invoice,invoice
""")
    assert info.value.line == 3
    assert "second opening balance line (the first is line 2)" in str(info.value)


def test_a_balance_line_without_a_date_takes_one_from_its_statements_period(tmp_path):
    # "Balance b/f,,1250.00": a brought-forward line often has no date. The loader
    # refused the file ("cannot parse date None in column 'date'")
    path = tmp_path / "their.csv"
    path.write_text(HEADER + """S0,,1250.00,EUR,Acme,,Balance b/f,
S2,2026-02-03,1000.00,EUR,Acme,INV-2026-00001,Payment,payment
S1,2026-01-05,1000.00,EUR,Acme,INV-2026-00001,Invoice,invoice
U0,,70.00,USD,Acme,,期初余额,
U1,2026-01-07,50.00,USD,Acme,INV-2026-00002,Invoice,invoice
S8,,1250.00,EUR,Acme,,Closing balance,
S9,,2000.00,EUR,Acme,,Total,
""", encoding="utf-8")
    loaded = load_file(path, undated_balances=True)
    dates = dict(zip(loaded.frame["id"], loaded.frame["date"], strict=True))
    assert (dates["S0"], dates["S8"], dates["S9"], dates["U0"]) == (
        date(2026, 1, 5), date(2026, 2, 3), date(2026, 2, 3), date(2026, 1, 7))
    result = split_balances(loaded)
    assert result.frame["id"].to_list() == ["S2", "S1", "U1"]
    by_currency = {s.currency: (s.opening_balance, s.closing_balance, s.start_date,
                                s.end_date) for s in result.statements}
    assert by_currency == {
        "EUR": (Decimal("1250"), Decimal("1250"), date(2026, 1, 5), date(2026, 2, 3)),
        "USD": (Decimal("70"), None, date(2026, 1, 7), date(2026, 1, 7))}


REFUSED = "cannot parse date None in column 'date'; expected YYYY-MM-DD (e.g. '2026-03-31')"
UNDATED = {  # what a --statement file without a date at its line 3 (or 2) is told
    "an invoice": (
        "S0,2026-01-01,1250.00,EUR,Acme,,Balance b/f,\n"
        "S1,,1000.00,EUR,Acme,INV-2026-00001,Invoice,invoice\n", 3, REFUSED),
    "words of a balance among transactions": (
        "S1,2026-01-05,1000.00,EUR,Acme,INV-2026-00001,Invoice,invoice\n"
        "S2,,40.00,EUR,Acme,,Payment of balance INV-2026-00001,\n"
        "S3,2026-01-09,10.00,EUR,Acme,INV-2026-00002,Invoice,invoice\n", 3, REFUSED),
    "a phrase with an invoice number": (
        "S0,,90.00,EUR,Acme,INV-2026-00013,Balance b/f,\n"
        "S1,2026-01-05,1000.00,EUR,Acme,INV-2026-00001,Invoice,invoice\n", 2, REFUSED),
    "a balance line with no transaction to date it by": (
        "S0,,90.00,EUR,Acme,,Balance b/f,\n", 2,
        "a balance line without a date in column 'date', and no transaction of its "
        "account and currency to take one from"),
}


@pytest.mark.parametrize(("body", "line", "message"), UNDATED.values(), ids=UNDATED)
def test_a_transaction_without_a_date_is_still_refused(cli, tmp_path, body, line, message):
    (tmp_path / "their.csv").write_text(HEADER + body, encoding="utf-8")
    (tmp_path / "ours.csv").write_text(HEADER + "L1,2026-01-05,1000.00,EUR,Acme,"
                                       "INV-2026-00001,Invoice,invoice\n", encoding="utf-8")
    code, _, err = cli("run", "--rules", RULES, "--statement", tmp_path / "their.csv",
                       "--ledger", tmp_path / "ours.csv", "--db", tmp_path / "recon.duckdb",
                       "--out", tmp_path / "out")
    assert code == 2 and "Traceback" not in err
    assert f"their.csv line {line} (date): {message}" in err


def test_a_ledgers_balance_line_without_a_date_is_refused(tmp_path):
    # our ledger's opening line is a receivable (28f23ad): it needs its date
    path = tmp_path / "ours.csv"
    path.write_text(HEADER + "L0,,250.00,EUR,Acme,,Balance brought forward,invoice\n"
                    "L1,2026-01-05,1000.00,EUR,Acme,INV-2026-00001,Invoice,invoice\n",
                    encoding="utf-8")
    with pytest.raises(InputFileError, match="cannot parse date None") as info:
        load_file(path)
    assert (info.value.line, info.value.field) == (2, "date")


def test_a_statement_opening_without_a_date_is_agreed_as_of_its_period(cli, tmp_path):
    (tmp_path / "their.csv").write_text(HEADER + """S0,,250.00,EUR,Acme,,Balance b/f,
S1,2026-01-05,1000.00,EUR,Acme,INV-2026-00001,Invoice,invoice
S9,,1250.00,EUR,Acme,,Closing balance,
""", encoding="utf-8")
    (tmp_path / "ours.csv").write_text(
        HEADER.replace("doc_type", "doc_type,customer_id")
        + "L0,2025-12-01,250.00,EUR,Acme,INV-2025-00090,Invoice,invoice,C1\n"
        + "L1,2026-01-05,1000.00,EUR,Acme,INV-2026-00001,Invoice,invoice,C1\n",
        encoding="utf-8")
    code, _, err = cli("run", "--rules", RULES, "--statement", tmp_path / "their.csv",
                       "--ledger", tmp_path / "ours.csv", "--db", tmp_path / "recon.duckdb",
                       "--out", tmp_path / "out", "--as-of", "2026-01-31")
    assert code == 0, err
    frame = pl.read_csv(tmp_path / "out" / "statement_agreement.csv", infer_schema=False)
    rows = frame.select("line", "date", "their_amount", "our_amount", "difference").rows()
    assert rows == [("closing_balance", None, "1250.00", "1250.00", "0.00"),
                    ("opening_balance", "2026-01-04", "250.00", "250.00", "0.00"),
                    ("unexplained", None, None, None, "0.00")]


def _split_rows(path: Path, rows: list[tuple]):
    """split_balances of a customer statement of `rows` (see strategies.paged_statements)
    written to `path`, and the balance breaks recon.run finds in it."""
    path.write_text(HEADER + "".join(
        f"{i},{d or ''},{a},EUR,Acme,{ref},{desc},{doc}\n" for i, d, a, ref, desc, doc in rows),
        encoding="utf-8")
    result = split_balances(load_file(path, undated_balances=True))
    check, con = StatementCheck(), duckdb.connect()
    check.add_customer(result, statement_totals(con, result.frame),
                       carried_balances(con, result.frame, result.carried))
    return result, check.breaks()


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(paged_statements())
def test_a_statement_cut_into_pages_is_the_statement_on_one_page(statement):
    one, paged, _ = statement
    with tempfile.TemporaryDirectory() as tmp:
        (whole, _), (pages, breaks) = (_split_rows(Path(tmp) / name, rows)
                                       for name, rows in (("one.csv", one), ("paged.csv", paged)))
    assert pages.frame.drop("line").equals(whole.frame.drop("line"))
    assert pages.statements == whole.statements
    assert breaks == []


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(paged_statements(), st.data())
def test_a_carried_balance_its_lines_do_not_make_is_a_break(statement, data):
    _, paged, opening = statement
    carried = [i for i, row in enumerate(paged) if row[0][0] == "P" and row[0][-1] != "s"]
    assume(len(carried) > 1 or (carried and opening))
    k = data.draw(st.sampled_from(carried))
    paged[k] = (*paged[k][:2], paged[k][2] + data.draw(amounts), *paged[k][3:])
    with tempfile.TemporaryDirectory() as tmp:
        pages, breaks = _split_rows(Path(tmp) / "paged.csv", paged)
    assert pages.frame["id"].str.starts_with("P").sum() == 0
    assert 1 <= len(breaks) <= 2
    assert all(b.kind == "balance" for b in breaks)
    if opening:  # the line changed is named (with the one after it, if that repeats it)
        assert any(f" line {k + 2} states " in b.message for b in breaks)
