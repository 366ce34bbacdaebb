"""`recon statements`: statements of account tie to the ledger; HTML and PDF, English and 中文."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pypdf
import pytest

from recon.db import connect
from recon.soa import money, statement_contexts
from tests.conftest import run_books
from tests.fixtures.customers.books import CUSTOMERS

D_FROM, D_TO = date(2026, 2, 1), date(2026, 3, 31)


@pytest.fixture(scope="module")
def books_db(tmp_path_factory):
    return run_books(tmp_path_factory.mktemp("soa"), 11, D_TO)


@pytest.fixture(scope="module")
def written(books_db, tmp_path_factory):
    from recon.cli import run_cli

    _, db = books_db
    out = tmp_path_factory.mktemp("statements")
    code = run_cli(["-q", "statements", "--from", D_FROM.isoformat(), "--to", D_TO.isoformat(),
                    "--db", str(db), "--out", str(out)])
    assert code == 0
    return out


def _num(text: str) -> Decimal:
    return Decimal(text.replace(",", "")) if text else Decimal(0)


def test_statements_tie_to_the_ledger_to_the_cent(books_db):
    books, db = books_db
    con = connect(db)
    contexts = {c["customer"]: c for c in statement_contexts(con, D_FROM, D_TO)}
    assert set(contexts) == {cid for cid, _, _ in CUSTOMERS}
    for cid, ctx in contexts.items():
        (s,) = ctx["sections"]
        opening = books.balance(cid, D_FROM - timedelta(days=1))
        closing = books.balance(cid, D_TO)
        assert _num(s["opening"]) == opening
        assert _num(s["closing"]) == closing == s["closing_value"]
        # every line of the period is there, and debits - credits moves opening to closing
        assert _num(s["debits"]) - _num(s["credits"]) == closing - opening
        lines = [x for x in books.ledger + books.bank
                 if x.customer == cid and D_FROM <= x.date <= D_TO]
        assert len(s["lines"]) == len(lines)
        assert sum((_num(r["debit"]) - _num(r["credit"]) for r in s["lines"]), Decimal(0)) == (
            closing - opening)
        assert _num(s["lines"][-1]["balance"] if s["lines"] else s["opening"]) == closing
        # the aging of what is open adds up to the closing balance
        assert sum((_num(v) for _, v in s["aging"]), Decimal(0)) == closing
        assert _num(s["open_total"]) == closing


def test_language_follows_the_customer(books_db):
    _, db = books_db
    contexts = {c["customer"]: c for c in statement_contexts(connect(db), D_FROM, D_TO)}
    assert contexts["C01"]["L"]["title"] == "Statement of account"
    assert contexts["C02"]["L"]["title"] == "对账单"
    assert contexts["C05"]["language"] == "zh"
    assert contexts["C02"]["sections"][0]["aging"][0][0] == "未到期"


def _pdf_text(path) -> str:
    return "\n".join(p.extract_text() for p in pypdf.PdfReader(path).pages)


@pytest.mark.parametrize(("cid", "name", "title"), [
    ("C01", "Acme Trading GmbH", "Statement of account"),
    ("C02", "上海华盛贸易有限公司", "对账单"),
])
def test_pdf_and_html_show_name_and_closing_balance(books_db, written, cid, name, title):
    books, _ = books_db
    closing = money(books.balance(cid, D_TO), "EUR")
    text = _pdf_text(written / f"{cid}.pdf")
    assert name in text and title in text
    assert closing in text
    html = (written / f"{cid}.html").read_text(encoding="utf-8")
    assert name in html and title in html and closing in html
    assert html.count("<tr>") >= 1 and "<script" not in html


def test_index_lists_every_statement(written):
    index = (written / "index.html").read_text(encoding="utf-8")
    for cid, _, _ in CUSTOMERS:
        assert f'href="{cid}.html"' in index and f'href="{cid}.pdf"' in index
        assert (written / f"{cid}.pdf").read_bytes().startswith(b"%PDF")


def test_one_customer_and_user_errors(books_db, tmp_path, cli):
    _, db = books_db
    code, _, err = cli("statements", "--from", "2026-02-01", "--to", "2026-03-31", "--db", db,
                       "--out", tmp_path, "--customer", "C03")
    assert code == 0, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["C03.html", "C03.pdf", "index.html"]
    code, _, err = cli("statements", "--from", "2026-02-01", "--to", "2026-03-31", "--db", db,
                       "--out", tmp_path / "x", "--customer", "NOPE")
    assert code == 2 and "'NOPE'" in err
    code, _, err = cli("statements", "--from", "2026-04-01", "--to", "2026-03-31", "--db", db,
                       "--out", tmp_path / "y")
    assert code == 2 and "after" in err


def test_html_escapes_what_the_books_say():
    from recon.soa import environment, labels

    html = environment().get_template("soa_statement.html.j2").render(
        language="en", L=labels("en"), name="<script>alert(1)</script> & Co", customer="C9",
        date_from="2026-01-01", date_to="2026-01-31", sections=[], aging_title="t")
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in html


@pytest.mark.parametrize(("value", "currency"), [
    ("0.125", "EUR"), ("-0.125", "EUR"), ("250.125", "EUR"), ("2.5", "JPY"),
    ("1.0005", "KWD"), ("-0.004", "EUR"), ("1234567.895", "EUR"),
])
def test_money_rounds_as_the_csv_outputs(value, currency):
    # a statement of account must show the balance aging.csv shows: recon_fmt rounds
    # half away from zero (250.125 -> 250.13) and never writes -0.00
    con = connect(":memory:")
    (csv_text,) = con.execute("select recon_fmt(?::decimal(20,4), ?)",
                              [value, currency]).fetchone()
    assert money(Decimal(value), currency).replace(",", "") == csv_text


def test_customers_whose_ids_are_not_file_safe_get_a_statement_each(tmp_path):
    # 华东001 and 华南001 were both `___001.html`: one customer's statement overwrote the
    # other's, and the index sent both customers to the same file
    from recon.customers import load_customers
    from recon.soa import write_statements

    con = connect(tmp_path / "recon.duckdb")
    ids = ("华东001", "华南001", "A/1", "A_1")
    for i, cid in enumerate(ids, start=1):
        con.execute("""insert into txns (txn_id, side, source_id, date, amount, currency,
                                         counterparty, doc_type, customer_id)
                       values (?, 'ledger', ?, '2026-02-10', ?, 'CNY', ?, 'invoice', ?)""",
                    [i, f"L{i}", 100 * i, f"Name {i}", cid])
    master = tmp_path / "customers.csv"
    master.write_text("id,name\n" + "".join(f"{c},Name {c}\n" for c in ids), encoding="utf-8")
    load_customers(con, master)
    written = write_statements(con, D_FROM, D_TO, tmp_path / "out")
    assert len({w.html for w in written}) == len({w.pdf for w in written}) == len(ids)
    for w in written:
        assert f"<dd>{w.customer}</dd>" in w.html.read_text(encoding="utf-8")
    assert (tmp_path / "out" / "A_1.html").is_file()  # a file-safe id keeps its name


def test_a_line_taller_than_a_page_is_split_across_pages(tmp_path):
    # a ledger memo of some 2,000 characters made a table row taller than the page:
    # reportlab's LayoutError ended `recon statements` with a traceback
    from recon.soa import write_statements

    con = connect(tmp_path / "recon.duckdb")
    memo = "Lieferung gemäß Rahmenvertrag 2026/17, Position " * 60
    con.execute("""insert into txns (txn_id, side, source_id, date, amount, currency,
                                     counterparty, description, doc_type, customer_id)
                   values (1, 'ledger', 'L1', '2026-02-10', 100, 'EUR', 'Acme', ?,
                           'invoice', 'C1')""", [memo])
    (w,) = write_statements(con, D_FROM, D_TO, tmp_path / "out")
    pdf = pypdf.PdfReader(w.pdf)
    assert len(pdf.pages) > 1
    text = "".join(p.extract_text() for p in pdf.pages).replace("\n", " ")
    assert text.count("Rahmenvertrag") == 60 and "Closing balance" in text
