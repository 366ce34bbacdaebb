"""Balance lines of a customer statement: told from transactions, and only them."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from recon.errors import InputFileError
from recon.loaders import load_file
from recon.loaders.balances import balance_kind, split_balances

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
    ("Closing balance", "closing"),
    ("Balance carried forward", "closing"),
    ("期末余额", "closing"),
    ("Total:", "total"),
    ("合计", "total"),
    ("本期合计", "total"),
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


def _split(tmp_path: Path, body: str):
    path = tmp_path / "their.csv"
    path.write_text(HEADER + body, encoding="utf-8")
    return split_balances(load_file(path))


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


def test_a_phrase_among_transactions_or_with_an_invoice_number_is_a_transaction(tmp_path):
    result = _split(tmp_path, """S1,2026-01-05,90.00,EUR,Acme,INV-2026-00013,Balance b/f,payment
S2,2026-01-09,1000.00,EUR,Acme,INV-2026-00001,Invoice,invoice
S3,2026-01-10,40.00,EUR,Acme,,Brought forward,
S4,2026-02-03,1000.00,EUR,Acme,,Payment of balance INV-2026-00001,
""")
    assert result.frame["id"].to_list() == ["S1", "S2", "S3", "S4"]
    assert result.statements[0].opening_balance is None


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
