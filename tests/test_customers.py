"""Customer master: loading, validation, idempotence, linking ledger lines to customers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest

from recon.customers import ensure_schema, load_customers, read_customers
from recon.db import connect
from recon.errors import InputFileError
from recon.openitems import build_lines

FIX = Path(__file__).parent / "fixtures" / "customers"


@pytest.fixture
def con():
    c = connect(":memory:")
    yield c
    c.close()


def _txn(con, txn_id, source_id, amount, counterparty, doc_type=None, customer_id=None,
         when="2026-03-01", side="ledger"):
    from recon.names import name_keys

    con.execute(
        """insert into txns (txn_id, side, source_id, date, amount, currency, counterparty,
                             doc_type, customer_id, name_key)
        values (?, ?, ?, ?, ?, 'EUR', ?, ?, ?, ?)""",
        [txn_id, side, source_id, when, amount, counterparty, doc_type, customer_id,
         name_keys([counterparty])[0]],
    )


def test_load_csv_stores_customers_and_aliases(con):
    stats = load_customers(con, FIX / "customers.csv")
    assert (stats.rows, stats.new, stats.updated, stats.unchanged) == (6, 6, 0, 0)
    row = con.execute(
        "select name, segment, region, credit_limit, payment_terms_days, email, language "
        "from customers where customer_id = 'C02'").fetchone()
    assert row == ("上海华盛贸易有限公司", "Retail", "CN", Decimal("15000.0000"), 45,
                   "cw@huasheng.example", "zh")
    langs = dict(con.execute("select customer_id, language from customers").fetchall())
    assert langs["C04"] == "en" and langs["C05"] == "zh" and langs["C06"] == "en"
    limits = dict(con.execute("select customer_id, credit_limit from customers").fetchall())
    assert limits["C04"] is None  # empty: no limit
    aliases = con.execute(
        "select alias, alias_key from customer_aliases where customer_id = 'C01' order by alias"
    ).fetchall()
    assert aliases == [("ACME", "acme"), ("Acme Handel", "acme handel")]


def test_reloading_is_idempotent_and_updates_only_changed_rows(con, tmp_path):
    load_customers(con, FIX / "customers.csv")
    audits = con.execute("select count(*) from audit_log").fetchone()[0]
    again = load_customers(con, FIX / "customers.csv")
    assert (again.new, again.updated, again.unchanged) == (0, 0, 6)
    assert con.execute("select count(*) from audit_log").fetchone()[0] == audits
    assert con.execute("select count(*) from customer_aliases").fetchone()[0] == 8
    changed = tmp_path / "changed.csv"
    changed.write_text(
        "id,name,aliases,credit_limit\nC01,Acme Trading GmbH,ACME,25000\nC99,New Co,,\n",
        encoding="utf-8")
    s = load_customers(con, changed)
    assert (s.new, s.updated, s.unchanged) == (1, 1, 0)
    assert con.execute("select count(*) from customers").fetchone()[0] == 7  # others kept
    assert con.execute(
        "select credit_limit from customers where customer_id = 'C01'").fetchone()[0] == 25000
    assert con.execute(
        "select count(*) from customer_aliases where customer_id = 'C01'").fetchone()[0] == 1
    assert con.execute(
        "select action, object from audit_log order by seq desc limit 1"
    ).fetchone() == ("load_customers", str(changed))


def test_load_xlsx(con, tmp_path):
    path = tmp_path / "customers.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["ID", "Name", "Aliases", "Credit Limit", "Payment Terms Days", "Language"])
    ws.append(["K1", "Müller GmbH", "Mueller;Müller", 1500.5, 30, "en"])
    ws.append(["K2", "华盛贸易", None, None, 45.0, "中文"])
    wb.save(path)
    stats = load_customers(con, path)
    assert stats.new == 2
    rows = con.execute(
        "select customer_id, credit_limit, payment_terms_days, language from customers "
        "order by 1").fetchall()
    assert rows == [("K1", Decimal("1500.5000"), 30, "en"), ("K2", None, 45, "zh")]


def test_blank_rows_are_skipped_and_lines_keep_their_numbers(con, tmp_path):
    # a spreadsheet's emptied or merely formatted rows, a CSV line of commas: no customer
    path = tmp_path / "customers.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["ID", "Name", "Credit Limit"])
    ws.append([1001, "Müller GmbH", 1500.5])
    ws.append([None, None, None])
    ws.append([1002, "Huasheng", None])
    ws["A8"].font = openpyxl.styles.Font(bold=True)
    ws["C9"] = ""
    wb.save(path)
    assert load_customers(con, path).new == 2
    csv_path = tmp_path / "customers.csv"
    csv_path.write_text("id,name,email\nC1,A,\n,,\n , ,\nC2,B,not-an-address\n",
                        encoding="utf-8")
    with pytest.raises(InputFileError) as exc:
        load_customers(con, csv_path)
    assert (exc.value.line, exc.value.field) == (5, "email")
    assert "more problems" not in str(exc.value)


@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_column_named_twice_is_refused_with_exit_2(cli, tmp_path, suffix):
    # `Name` and `name ` are the same column once normalised: which one is the name?
    path = tmp_path / f"customers{suffix}"
    header, row = ["ID", "Name", "Segment", "name "], ["C1", "Acme", "Retail", "Acme Ltd"]
    if suffix == ".csv":
        path.write_text(",".join(header) + "\n" + ",".join(row) + "\n", encoding="utf-8")
    else:
        wb = openpyxl.Workbook()
        wb.active.append(header)
        wb.active.append(row)
        wb.save(path)
    code, _, err = cli("customers", path, "--db", tmp_path / "r.duckdb")
    assert code == 2, err
    assert f"{path} line 1: column 'name' is in the header twice: 'Name' (column 2) and " \
           "'name" in err and "(column 4)" in err and "Traceback" not in err


def test_a_line_with_more_fields_than_the_header_is_named(con, tmp_path):
    # an unquoted comma in a name shifts the line: say which line, not polars' advice
    path = tmp_path / "customers.csv"
    path.write_text("id,name,segment\nC1,Beta,Retail\nC2,Acme, Inc.,Retail\n"
                    "C3,Gamma,Retail,,\n", encoding="utf-8")
    with pytest.raises(InputFileError) as exc:
        load_customers(con, path)
    assert exc.value.line == 3
    assert str(exc.value).startswith(f"{path} line 3: 4 fields where the header has 3")
    path.write_text('id,name,segment\nC2,"Acme, Inc.",Retail\nC3,Gamma\n', encoding="utf-8")
    assert load_customers(con, path).new == 2  # a short line is padded, as before


def test_xlsx_formula_results_lose_their_binary_noise(con, tmp_path):
    # Excel stores =1500*1.1 as 1650.0000000000002, and shows 1,650.00
    import zipfile

    plain, path = tmp_path / "plain.xlsx", tmp_path / "customers.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(["ID", "Name", "Credit Limit"])
    wb.active.append(["K1", "Müller GmbH", 1650])
    wb.save(plain)
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(path, "w") as out:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                data = data.replace(b"<v>1650</v>", b"<v>1650.0000000000002</v>")
            out.writestr(item, data)
    assert load_customers(con, path).new == 1
    assert con.execute("select credit_limit from customers").fetchone()[0] == Decimal("1650")


@pytest.mark.parametrize(("name", "line", "field", "text"), [
    ("bad_credit_limit.csv", 3, "credit_limit", "'5,000.00' (1 more problems"),
    ("duplicate_id.csv", 2, "id", "repeated"),
    ("bad_language.csv", 3, "language", "'klingon'"),
])
def test_bad_values_name_file_line_and_field(con, name, line, field, text):
    with pytest.raises(InputFileError) as exc:
        load_customers(con, FIX / name)
    err = exc.value
    assert (err.line, err.field) == (line, field)
    assert str(err).startswith(f"{FIX / name} line {line} ({field}): expected")
    assert text in str(err)
    ensure_schema(con)
    assert con.execute("select count(*) from customers").fetchone()[0] == 0


def test_missing_column_lists_what_was_found():
    with pytest.raises(InputFileError, match=r"missing column 'name'; found: 'id', "
                                             r"'customer name', 'segment'"):
        read_customers(FIX / "missing_name.csv")


def test_cli_loads_and_reports_bad_file_with_exit_2(cli, tmp_path):
    db = tmp_path / "r.duckdb"
    code, out, _ = cli("customers", FIX / "customers.csv", "--db", db)
    assert code == 0 and "6 new" in out
    code, out, _ = cli("customers", FIX / "customers.csv", "--db", db)
    assert code == 0 and "6 unchanged" in out
    code, _, err = cli("customers", FIX / "bad_language.csv", "--db", db)
    assert code == 2 and "line 3 (language)" in err
    code, _, err = cli("customers", tmp_path / "nope.csv", "--db", db)
    assert code == 2 and "no such file" in err


def test_lines_link_by_id_then_name_and_unlinked_are_listed(con, tmp_path):
    load_customers(con, FIX / "customers.csv")
    ambiguous = tmp_path / "amb.csv"
    ambiguous.write_text("id,name,aliases\nX1,Alpha Ltd,Shared Name\nX2,Beta Ltd,Shared Name\n",
                         encoding="utf-8")
    load_customers(con, ambiguous)
    _txn(con, 1, "L1", "100.00", "whoever", "invoice", "C01")  # by id
    _txn(con, 2, "L2", "50.00", "ACME LTD", "receipt")  # by alias, legal form dropped
    _txn(con, 3, "L3", "70.00", "Huasheng Trading Co., Ltd.", None)  # no doc_type, by alias
    _txn(con, 4, "L4", "20.00", "Somebody Else", "receipt")  # unknown name
    _txn(con, 5, "L5", "30.00", "Shared Name", "invoice")  # two customers share it
    _txn(con, 6, "L6", "-80.00", "Office Supplies", "payment", "V1")  # a supplier: not AR
    _txn(con, 7, "L7", "90.00", "Zed", "invoice", "Z9")  # id unknown to the master: kept
    build_lines(con, date(2026, 3, 31))
    linked = con.execute(
        "select source_id, customer, linked_by, effect from __recon__ar_lines order by 1"
    ).fetchall()
    assert linked == [
        ("L1", "C01", "customer_id", Decimal("100.0000")),
        ("L2", "C01", "name", Decimal("-50.0000")),
        ("L3", "C02", "name", Decimal("-70.0000")),
        ("L7", "Z9", "customer_id_not_in_master", Decimal("90.0000")),
    ]
    unlinked = con.execute(
        "select source_id, reason from __recon__ar_unlinked order by 1").fetchall()
    assert unlinked == [("L4", "no_customer"), ("L5", "ambiguous_name")]
