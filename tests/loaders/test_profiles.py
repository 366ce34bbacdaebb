"""Shipped bank profiles against their fixtures; profile validation and detection."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from recon.errors import InputFileError, ReconError
from recon.loaders import load_file
from recon.loaders.base import AMOUNT
from recon.loaders.csv import CsvLoader
from recon.loaders.profiles import (
    ProfileError,
    load_profile,
    parse_profile,
    resolve_profile,
    shipped_profiles,
)
from recon.loaders.xlsx import XlsxLoader

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "profiles"
D = Decimal

# fixture, encoding, rows, (first row: line, date, amount, currency), other checks
CASES: list[tuple[str, str | None, int, tuple[int, date, str, str], dict[str, Any]]] = [
    ("alipay.csv", "gb18030", 2, (6, date(2024, 3, 1), "-35.00", "CNY"),
     {"id": "2024030122001412345678901234", "counterparty": "某某餐厅", "amounts": ["-35", "500"]}),
    ("bank_of_america.csv", "utf-8", 3, (9, date(2024, 3, 1), "2500.00", "USD"),
     {"balances": ("1000.00", "3314.60")}),
    ("barclays.csv", "utf-8", 3, (2, date(2024, 3, 5), "-23.40", "GBP"),
     {"account": "20-32-06 13152170"}),
    ("bbva.xlsx", None, 2, (6, date(2024, 3, 4), "-45.30", "EUR"),
     {"balances": ("250.00", "2304.70"), "value_date": date(2024, 3, 4)}),
    ("boc.csv", "gb18030", 2, (2, date(2024, 3, 1), "8500.00", "CNY"),
     {"counterparty": "北京某某科技有限公司", "amounts": ["8500", "-35.50"]}),
    ("boursorama.csv", "utf-8", 2, (2, date(2024, 3, 4), "-129.99", "EUR"),
     {"account": "00012345678", "amounts": ["-129.99", "2500"]}),
    ("chase_checking.csv", "utf-8", 3, (2, date(2024, 3, 5), "-120.00", "USD"),
     {"balances": ("0", "2374.25"), "reference": "1042"}),
    ("chase_credit.csv", "utf-8", 4, (2, date(2024, 3, 2), "-5.75", "USD"),
     {"value_date": date(2024, 3, 4), "amounts": ["-5.75", "250", "-42.17", "12.99"]}),
    ("cmb.csv", "gb18030", 2, (9, date(2024, 3, 1), "8500.00", "CNY"),
     {"balances": ("1000.00", "9464.50"), "description": "ACME有限公司"}),
    ("commbank.csv", "utf-8", 2, (1, date(2024, 3, 5), "-6.50", "AUD"),
     {"balances": ("0", "2493.50")}),
    ("credit_agricole.csv", "cp1252", 2, (10, date(2024, 3, 5), "-23.45", "EUR"),
     {"lines": [10, 12], "description": "PAIEMENT PAR CARTE CARREFOUR MARKET 04/03",
      "amounts": ["-23.45", "2350"]}),
    ("csb43_csv.csv", "utf-8", 2, (2, date(2024, 3, 1), "2000.00", "EUR"),
     {"account": "1234567890", "reference": "FACT-2024-17"}),
    ("dcu.csv", "utf-8", 2, (2, date(2024, 3, 4), "-82.15", "USD"),
     {"id": "dwA4AEUAZQBKAGcAKwBG", "balances": ("0", "1917.85")}),
    ("deutsche_bank.csv", "cp1252", 3, (5, date(2024, 3, 4), "-85.00", "EUR"),
     {"counterparty": "Stadtwerke Musterstadt GmbH", "amounts": ["-85", "2500", "-18.15"]}),
    ("easybank.csv", "cp1252", 2, (1, date(2024, 3, 1), "1.23", "EUR"),
     {"account": "AT611904300234573201", "amounts": ["1.23", "-1032.00"]}),
    ("generic_fr.csv", "cp1252", 2, (2, date(2024, 3, 1), "2500.00", "EUR"),
     {"amounts": ["2500", "-3.50"]}),
    ("hsbc_uk.csv", "utf-8", 3, (1, date(2024, 3, 5), "-23.40", "GBP"),
     {"amounts": ["-23.40", "-12.99", "2150"]}),
    ("icbc.csv", "gb18030", 2, (6, date(2024, 3, 1), "8500.00", "CNY"),
     {"balances": ("1000.00", "9464.50"), "counterparty": "北京某某科技有限公司"}),
    ("ing_de.csv", "cp1252", 2, (16, date(2024, 3, 8), "-38.95", "EUR"),
     {"balances": ("0", "2311.05"), "counterparty": "REWE Markt GmbH"}),
    ("ing_diba_at.csv", "cp1252", 2, (2, date(2024, 3, 1), "2450.00", "EUR"),
     {"amounts": ["2450", "-850"], "account": "12345678001"}),
    ("ing_es.csv", "utf-8", 2, (2, date(2024, 3, 1), "2100.00", "EUR"),
     {"balances": ("250.00", "2304.70")}),
    ("ing_nl.csv", "utf-8", 2, (2, date(2024, 3, 4), "-23.45", "EUR"),
     {"amounts": ["-23.45", "2500"], "counterparty": "Albert Heijn 1234"}),
    ("livebank.csv", "cp1252", 2, (2, date(2024, 3, 4), "-100.00", "EUR"),
     {"description": "Internetauftrag Max Mustermann Miete März REF: 1234"}),
    ("n26.csv", "utf-8", 2, (2, date(2024, 3, 1), "2500.00", "EUR"),
     {"counterparty": "ACME GmbH", "iban": "DE89370400440532013000"}),
    ("nationwide.csv", "cp1252", 3, (6, date(2024, 3, 1), "2000.00", "GBP"),
     {"balances": ("0", "1874.55"), "amounts": ["2000", "-120", "-5.45"]}),
    ("nubank.csv", "utf-8", 2, (2, date(2024, 3, 1), "3500.00", "BRL"),
     {"id": "65e1a2b3-1c2d-4e5f-8a9b-0c1d2e3f4a5b"}),
    ("oberbank.csv", "cp1252", 2, (2, date(2024, 3, 4), "-49.90", "EUR"),
     {"counterparty": "Stromanbieter AG"}),
    ("paypal.csv", "utf-8-sig", 2, (2, date(2024, 3, 1), "1206.10", "USD"),
     {"id": "7AB12345CD678901E", "balances": ("0", "206.10"), "reference": "INV-1001"}),
    ("paypal_es.csv", "utf-8", 2, (2, date(2024, 3, 1), "1206.59", "EUR"),
     {"id": "TID-ES-1", "balances": ("0", "206.59")}),
    ("rabobank.csv", "cp1252", 2, (2, date(2024, 3, 1), "2500.00", "EUR"),
     {"id": "NL11RABO0104955555 000000000000007213", "balances": ("100.00", "2557.50")}),
    ("raiffeisen_at.csv", "cp1252", 2, (1, date(2024, 3, 4), "-45.10", "EUR"),
     {"amounts": ["-45.10", "2300"]}),
    ("revolut.csv", "utf-8", 3, (2, date(2024, 3, 1), "500.00", "GBP"),
     {"value_date": date(2024, 3, 1), "amounts": ["500", "-6.45", "-50"]}),
    ("schwab.csv", "utf-8", 3, (2, date(2024, 3, 5), "-60.00", "USD"),
     {"balances": ("0", "1440.00"), "amounts": ["-60", "-500", "2000"]}),
    ("sparkasse_camt.csv", "cp1252", 2, (2, date(2024, 3, 4), "-39.99", "EUR"),
     {"account": "DE12500105170648489890", "counterparty": "Telefon AG"}),
    ("wechat_pay.csv", "utf-8-sig", 2, (18, date(2024, 3, 1), "-35.00", "CNY"),
     {"id": "4200001234202403011234567890", "amounts": ["-35", "500"]}),
    ("wells_fargo.csv", "utf-8", 3, (1, date(2024, 3, 5), "-45.67", "USD"),
     {"reference": None, "amounts": ["-45.67", "-120", "2500"]}),
]


def load(path: Path, profile: str | None = None):
    loader = XlsxLoader() if path.suffix == ".xlsx" else CsvLoader()
    return loader.load(path, profile=profile)


@pytest.mark.parametrize(("fixture", "encoding", "count", "first", "checks"), CASES,
                         ids=[c[0] for c in CASES])
def test_fixture_is_detected_and_loaded(fixture, encoding, count, first, checks):
    result = load(FIXTURES / fixture)
    frame, row = result.frame, result.frame.row(0, named=True)
    assert result.profile == Path(fixture).stem, result.notes
    assert result.encoding == encoding
    assert frame.height == count
    assert frame["amount"].dtype == AMOUNT
    line, day, amount, currency = first
    assert (row["line"], row["date"], row["amount"], row["currency"]) == (
        line, day, D(amount), currency)
    assert frame["id"].n_unique() == count
    for key, want in checks.items():
        if key == "amounts":
            assert frame["amount"].to_list() == [D(a) for a in want]
        elif key == "balances":
            (stmt,) = result.statements
            assert (stmt.opening_balance, stmt.closing_balance) == (D(want[0]), D(want[1]))
        elif key == "lines":
            assert frame["line"].to_list() == want
        else:
            assert row[key] == want, key


@pytest.mark.parametrize("fixture", ["ing_nl.csv", "icbc.csv", "wells_fargo.csv", "bbva.xlsx"])
def test_forcing_the_profile_gives_the_same_rows(fixture):
    path = FIXTURES / fixture
    detected = load(path).frame
    assert load(path, profile=path.stem).frame.equals(detected)


def test_load_file_detects_format_and_profile():
    result = load_file(FIXTURES / "deutsche_bank.csv")
    assert (result.format, result.profile, result.encoding) == ("csv", "deutsche_bank", "cp1252")
    assert any("skipped 3 line(s) before the header" in n for n in result.notes)
    assert any("footer" in n for n in result.notes)


@pytest.mark.parametrize(("fixture", "encoding", "footer"), [
    ("deutsche_bank.csv", "cp1252", "Kontostand;"),
    ("alipay.csv", "gb18030", "-----"),
    ("cmb.csv", "gb18030", "# 收入合计"),
    ("icbc.csv", "gb18030", "人民币合计,"),
])
def test_an_export_without_its_footer_loses_no_row(tmp_path, fixture, encoding, footer):
    # footer_lines dropped the last rows of an export that came without its footer
    text = (FIXTURES / fixture).read_bytes().decode(encoding)
    bare = tmp_path / fixture
    bare.write_bytes(text[:text.rindex("\n", 0, text.rindex(footer)) + 1].encode(encoding))
    whole, cut = load(FIXTURES / fixture), load(bare)
    assert cut.profile == whole.profile
    assert cut.frame.equals(whole.frame)
    assert cut.statements == whole.statements
    assert any("no footer" in n for n in cut.notes)


FOOTER_PROFILE = ("name: t\ndelimiter: ';'\ndate_format: DD.MM.YYYY\ndecimal: ','\n"
                  "thousands: '.'\nfooter_lines: 1\ncurrency: EUR\n"
                  "columns: {date: Tag, amount: Betrag, description: Text}\n")


@pytest.mark.parametrize(("last", "rows"), [
    ("Saldo;;1.000,00\n", 2),  # a footer: no date
    ("03.01.2024;Miete;-500,00\n", None),  # a transaction: refused, not dropped
])
def test_footer_lines_without_a_pattern_drop_no_transaction(tmp_path, last, rows):
    profile = tmp_path / "t.yaml"
    profile.write_text(FOOTER_PROFILE)
    path = tmp_path / "bank.csv"
    path.write_text("Tag;Text;Betrag\n01.01.2024;Lohn;2.000,00\n02.01.2024;Kauf;-5,50\n"
                    + last)
    if rows is not None:
        assert CsvLoader().load(path, profile=str(profile)).frame.height == rows
        return
    with pytest.raises(InputFileError) as info:
        CsvLoader().load(path, profile=str(profile))
    assert info.value.line == 4 and "reads as a transaction" in str(info.value)
    assert "footer_line" in str(info.value.hint)


@pytest.mark.parametrize("stamp", ["2024-01-03T11:30", "2024-01-03T11:30:00Z",
                                   "20240103113000", "2024-01-03\t11:30"])
def test_a_last_row_with_a_time_of_day_is_no_footer(tmp_path, stamp):
    """The loader reads '2024-01-03T11:30' as a date and its time; the footer check
    read only what a format matches whole, so such a last row was dropped as the
    footer without a word (rent of 500.00 lost)."""
    profile = tmp_path / "t.yaml"
    profile.write_text(FOOTER_PROFILE.replace("DD.MM.YYYY", "YYYY-MM-DD"
                                              if "-" in stamp else "YYYYMMDD"))
    path = tmp_path / "bank.csv"
    day = stamp[:10] if "-" in stamp else stamp[:8]
    path.write_text(f"Tag;Text;Betrag\n{day};Lohn;2.000,00\n{day};Kauf;-5,50\n"
                    f"{stamp};Miete;-500,00\n")
    with pytest.raises(InputFileError) as info:
        CsvLoader().load(path, profile=str(profile))
    assert info.value.line == 4 and "reads as a transaction" in str(info.value)


CHASE = "Details,Posting Date,Description,Amount,Type,Balance,Check or Slip #,\n"


@pytest.mark.parametrize(("rows", "balances"), [
    # newest first, one day: the first and last dates could not tell the order
    (["03/05/2024,B,10.00,130.00", "03/05/2024,A,20.00,120.00"], ("100.00", "130.00")),
    (["03/05/2024,A,20.00,120.00", "03/05/2024,B,10.00,130.00"], ("100.00", "130.00")),
    (["03/06/2024,B,10.00,130.00", "03/05/2024,A,20.00,120.00"], ("100.00", "130.00")),
    (["03/05/2024,C,-5.00,125.00", "03/05/2024,B,10.00,130.00",
      "03/05/2024,A,20.00,120.00"], ("100.00", "125.00")),
])
def test_row_order_is_told_by_the_running_balance(tmp_path, rows, balances):
    # newest-first rows of one date: opening and closing were swapped, a false break
    path = tmp_path / "chase.csv"
    path.write_text(CHASE + "".join(f"CREDIT,{d},{t},{a},ACH,{b},,\n" for d, t, a, b in
                                    (r.split(",") for r in rows)))
    (stmt,) = CsvLoader().load(path, profile="chase_checking").statements
    assert (stmt.opening_balance, stmt.closing_balance) == (D(balances[0]), D(balances[1]))


def test_every_shipped_profile_has_a_fixture_and_metadata():
    names = {p.name for p in shipped_profiles()}
    assert len(names) >= 10
    assert names == {Path(c[0]).stem for c in CASES}
    for p in shipped_profiles():
        assert Path(p.source).stem == p.name
        assert p.description and p.country, p.name


def test_profiles_cover_several_continents_and_languages():
    countries = {p.country for p in shipped_profiles()}
    assert {"US", "GB", "DE", "FR", "ES", "NL", "CN", "AU", "BR"} <= countries


def test_chosen_date_format_is_noted(tmp_path):
    path = tmp_path / "paypal.csv"
    text = (FIXTURES / "paypal.csv").read_text(encoding="utf-8-sig")
    path.write_text(text.replace("03/04/2024", "13/03/2024"), encoding="utf-8")
    result = CsvLoader().load(path)
    assert result.frame["date"].to_list() == [date(2024, 1, 3), date(2024, 3, 13)]
    assert any("read as DD/MM/YYYY" in n for n in result.notes)


def test_a_negative_credit_is_money_out(tmp_path):
    # Paid in "-£5.45" is the contactless payment reversed; it loaded as +5.45. A debit
    # is money out however the bank signs it.
    path = tmp_path / "nationwide.csv"
    text = (FIXTURES / "nationwide.csv").read_text(encoding="cp1252")
    text = text.replace('"£5.45","","£1,874.55"', '"","-£5.45","£1,874.55"').replace(
        '"£120.00",""', '"-£120.00",""')
    path.write_text(text, encoding="cp1252")
    assert load(path).frame["amount"].to_list()[:3] == [Decimal("2000"), Decimal("-120"),
                                                         Decimal("-5.45")]


def test_rows_without_amount_or_neutral_indicator_are_skipped_with_a_note():
    notes = load(FIXTURES / "bank_of_america.csv").notes
    assert any("skipped 1 row(s) without an amount (line 8)" in n for n in notes)
    notes = load(FIXTURES / "alipay.csv").notes
    assert any("neither credit nor debit (line 8)" in n for n in notes)


# --- errors -------------------------------------------------------------------


def test_unknown_profile_name_suggests_the_closest():
    with pytest.raises(ProfileError) as info:
        resolve_profile("ing_nll")
    assert "did you mean 'ing_nl'?" in str(info.value)
    assert isinstance(info.value, ReconError)


def test_forced_profile_missing_column_names_profile_found_and_hint(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("Datum,Naam / Omschrijving,Rekening,Tegenrekening,Code,AfBij,Bedrag (EUR)\n"
                    "20240301,X,NL1,NL2,GT,Af,\"1,00\"\n")
    with pytest.raises(InputFileError) as info:
        CsvLoader().load(path, profile="ing_nl")
    msg = str(info.value)
    assert "missing columns" in msg and "'Af Bij'" in msg and "profile ing_nl" in msg
    assert "found: 'Datum'" in msg and "did you mean 'AfBij'?" in msg


def test_unknown_indicator_value_is_reported_with_line(tmp_path):
    path = tmp_path / "x.csv"
    text = (FIXTURES / "ing_nl.csv").read_text().replace('"Bij"', '"Credit"')
    path.write_text(text)
    with pytest.raises(InputFileError) as info:
        CsvLoader().load(path)
    assert info.value.line == 3 and "'Credit'" in str(info.value) and "['bij']" in str(
        info.value)


def test_user_profile_by_path_and_by_folder(tmp_path, monkeypatch):
    (tmp_path / "acme_bank.yaml").write_text(
        "name: acme_bank\ncountry: XX\ndescription: test\ndelimiter: '|'\n"
        "columns: {date: Booked, amount: Value, description: Text}\ncurrency: CHF\n"
        "detect: [Booked, Value, Text]\n")
    data = tmp_path / "s.txt"
    data.write_text("Booked|Value|Text\n2024-03-01|-1.50|Tram\n")
    assert CsvLoader().load(data, profile=str(tmp_path / "acme_bank.yaml")).profile == "acme_bank"
    monkeypatch.setenv("RECON_PROFILE_PATH", str(tmp_path))
    result = CsvLoader().load(data)
    assert result.profile == "acme_bank" and result.frame["currency"][0] == "CHF"


def test_no_matching_profile_lists_known_profiles(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("Foo,Bar\n1,2\n")
    with pytest.raises(InputFileError) as info:
        CsvLoader().load(path)
    assert "no profile matches" in str(info.value) and "ing_nl" in str(info.value)


BASE = "name: t\ncolumns: {date: D, amount: A}\ncurrency: EUR\n"


@pytest.mark.parametrize(("yaml_text", "fragments"), [
    (BASE + "delimeter: ';'\n", ["delimeter: unknown key 'delimeter'; did you mean 'delimiter'?"]),
    (BASE + "decimal: ';'\n", ["decimal: expected one of '.', ','; got ';'"]),
    (BASE + "thousands: ','\ndecimal: ','\n", ["thousands: must differ from decimal ','"]),
    ("name: t\ncolumns: {amount: A}\ncurrency: EUR\n", ["columns.date: required"]),
    ("name: t\ncolumns: {date: D, amount: A, debit: B, credit: C}\ncurrency: EUR\n",
     ["give either 'amount' or 'debit' + 'credit'"]),
    ("name: t\ncolumns: {date: D, debit: B}\ncurrency: EUR\n", ["columns.amount: required"]),
    (BASE + "encoding: klingon\n", ["encoding: unknown encoding 'klingon'"]),
    (BASE + "date_format: DD-MON-YYYY\n", ["date_format: unknown date format 'DD-MON-YYYY'",
                                           "DD.MM.YYYY"]),
    ("name: t\ncolumns: {date: D, debit: B, credit: C}\ncurrency: EUR\n"
     "indicator: {column: X, credit: [C], debit: [D]}\n", ["indicator: needs columns.amount"]),
    (BASE + "header: false\n", ["names: required when header is false"]),
    (BASE + "header: false\nnames: [D]\n", ["column 'A' is used in columns but not listed"]),
    ("name: t\ncolumns: {date: D, amount: A}\ncurrency: euro\n",
     ["currency: expected an ISO 4217 code such as 'EUR', got 'euro'"]),
    ("name: t\ncolumns: {date: D, amount: A}\n", ["currency: required"]),
    ("name: t\ncolumns: {date: D, amount: A, payee: P}\ncurrency: EUR\n",
     ["columns.payee: unknown key 'payee'", "counterparty"]),
    ("name: t\ncolumns: {date: [D, E], amount: A}\ncurrency: EUR\n",
     ["columns.date: a list of columns is only allowed for"]),
    (BASE + "skip_rows: -1\n", ["skip_rows: expected a non-negative integer"]),
    (BASE + "invert_sign: maybe\n", ["invert_sign: expected true or false, got 'maybe'"]),
    (BASE + "detect_line: '(['\n", ["detect_line: invalid regular expression"]),
    (BASE + "footer_lines: 1\nfooter_line: '(['\n", ["footer_line: invalid regular expression"]),
    (BASE + "footer_line: '^Total'\n", ["footer_line: needs footer_lines"]),
    ("name: Bad Name\ncolumns: {}\n", ["4 problems", "name: expected lowercase",
                                       "columns.date: required", "columns.amount: required"]),
    ("- just\n- a list\n", ["expected a mapping of profile keys"]),
])
def test_profile_validation_messages(tmp_path, yaml_text, fragments):
    path = tmp_path / "t.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}: ")
    for fragment in fragments:
        assert fragment in msg


def test_invalid_yaml_is_a_profile_error(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("columns: {date: [unclosed\n")
    with pytest.raises(ProfileError, match="not valid UTF-8 YAML"):
        load_profile(path)


def test_parse_profile_accepts_one_of_and_strftime():
    p = parse_profile({"columns": {"date": {"one_of": ["Fecha", "Date"]}, "amount": "Importe"},
                       "date_format": "%d %b %Y", "currency": "EUR"}, "<test>", "t")
    assert p.columns["date"].mode == "one_of" and p.date_format == ("%d %b %Y",)
