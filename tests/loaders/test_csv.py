"""CsvLoader on canonical CSV: columns, types, line numbers, errors, encodings, ids."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from recon.errors import InputFileError
from recon.loaders import CANONICAL_SCHEMA, detect_format, load_file
from recon.loaders.base import AMOUNT
from recon.loaders.csv import CsvLoader, detect_encoding, parse_amounts

HEADER = "id,date,amount,currency,counterparty,reference,description\n"


def write(tmp_path: Path, text: str | bytes, name: str = "bank.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return path


def rows(n: int, start: int = 1) -> str:
    return "".join(f"b{i},2026-03-{i % 28 + 1:02d},{i}.50,EUR,ACME,INV-{i},pay {i}\n"
                   for i in range(start, start + n))


def load_error(path: Path) -> InputFileError:
    """The InputFileError that loading `path` raises (the test fails if it loads)."""
    with pytest.raises(InputFileError) as info:
        CsvLoader().load(path)
    return info.value


# --- the canonical layout ---------------------------------------------------


def test_canonical_loads_with_exact_schema(tmp_path):
    result = CsvLoader().load(write(tmp_path, HEADER + "b1,2026-03-01,-1234.56,EUR,ACME,INV-1,"
                                    "paid\nb2,2026-03-02,100,USD,Foo Ltd,,\n"))
    frame = result.frame
    assert frame.schema == pl.Schema(CANONICAL_SCHEMA)
    assert frame["amount"].dtype == AMOUNT
    assert frame["amount"].to_list() == [Decimal("-1234.56"), Decimal("100")]
    assert frame["date"].to_list() == [date(2026, 3, 1), date(2026, 3, 2)]
    assert frame["line"].to_list() == [2, 3]
    assert frame["reference"].to_list() == ["INV-1", None]
    assert (result.format, result.profile, result.encoding) == ("csv", "canonical", "utf-8")
    assert any("canonical" in n for n in result.notes)


def test_columns_in_any_order_and_extra_columns_ignored(tmp_path):
    text = ("note,description,reference,counterparty,currency,amount,date,id,iban,account\n"
            "x,Rent,R-1,Landlord,EUR,-800.00,2026-03-01,b1,DE02100100100006820101,ACC-1\n")
    frame = CsvLoader().load(write(tmp_path, text)).frame
    row = frame.row(0, named=True)
    assert row["id"] == "b1" and row["amount"] == Decimal("-800.00")
    assert row["iban"] == "DE02100100100006820101" and row["account"] == "ACC-1"
    assert "note" not in frame.columns


def test_ledger_optional_columns(tmp_path):
    text = (HEADER.strip() + ",due_date,doc_type,customer_id,account\n"
            "L1,2026-03-01,250.00,EUR,Globex,INV-9,Invoice 9,2026-03-31,invoice,C-17,1200\n")
    row = CsvLoader().load(write(tmp_path, text)).frame.row(0, named=True)
    assert row["due_date"] == date(2026, 3, 31)
    assert (row["doc_type"], row["customer_id"], row["account"]) == ("invoice", "C-17", "1200")


def test_missing_required_column_names_file_column_and_found(tmp_path):
    path = write(tmp_path, "id,date,amount,counterparty,reference,description\n"
                           "b1,2026-03-01,1.00,A,B,C\n")
    msg = str(load_error(path))
    assert str(path) in msg and "'currency'" in msg
    assert "found: 'id', 'date', 'amount', 'counterparty', 'reference', 'description'" in msg


def test_bad_amount_on_line_57_names_file_and_line(tmp_path):
    path = write(tmp_path, HEADER + rows(55) + "b99,2026-03-01,12,5O,EUR,A,B,C\n")
    err = load_error(path)
    assert err.line == 57 and f"{path} line 57" in str(err)
    assert "'12'" in str(err) or "amount" in str(err)


def test_bad_amount_value_is_quoted_with_expected_form(tmp_path):
    path = write(tmp_path, HEADER + rows(3) + "b9,2026-03-01,1.2.3,EUR,A,B,C\n")
    msg = str(load_error(path))
    assert "line 5" in msg and "'1.2.3'" in msg and "'-1234.56'" in msg


def test_bad_date_names_line_value_and_format(tmp_path):
    path = write(tmp_path, HEADER + rows(2) + "b9,01.03.2026,1.00,EUR,A,B,C\n")
    msg = str(load_error(path))
    assert "line 4" in msg and "'01.03.2026'" in msg and "YYYY-MM-DD" in msg


@pytest.mark.parametrize(("line", "problem", "where"), [
    ("b9,2026-03-01,1.00,,A,B,C", "empty 'currency'", 5),
    ("b1,2026-03-01,1.00,EUR,A,B,C", "appears more than once", 2),  # first occurrence
    (",2026-03-01,1.00,EUR,A,B,C", "empty 'id'", 5),
    ("b9,2026-03-01,1.00,EURO,A,B,C", "not a 3-letter ISO 4217 code", 5),
    ("b9,2026-03-01,123456789012345678.00,EUR,A,B,C", "too large", 5),
])
def test_one_bad_row_fails_the_whole_file(tmp_path, line, problem, where):
    with pytest.raises(InputFileError) as info:
        CsvLoader().load(write(tmp_path, HEADER + rows(3) + line + "\n"))
    assert problem in str(info.value)
    assert info.value.line == where


@pytest.mark.parametrize(("before", "wide", "line", "fields"), [
    (1, "B9,2024-02-01,100.00,EUR,ACME, Inc,INV-1,payment", 3, 8),
    (1, "B9,2024-02-01,1.00,EUR,a,b,c,,e", 3, 9),  # an empty cell before the lost one
    (300, "B9,2024-02-01,100.00,EUR,ACME, Inc,INV-1,payment", 302, 8),  # past the sample
    (300, "B9,2024-02-01,1.00,EUR,a,b,c,,e", 302, 9),
])
def test_a_row_wider_than_the_header_is_refused_not_shifted(tmp_path, before, wide, line,
                                                            fields):
    # an unquoted comma shifted the fields after it (reference 'Inc') and lost the last
    err = load_error(write(tmp_path, HEADER + rows(before) + wide + "\n" + rows(2, 500)))
    assert err.line == line
    assert f"{fields} fields where the header has 7" in str(err)
    assert "must be quoted" in str(err.hint)


def test_a_profile_row_wider_than_the_header_is_refused(tmp_path):
    # generic_fr read '00 EUR' as the amount of 'Retrait DAB 20,00 EUR,-20.00': 0.00
    path = write(tmp_path, "Date,Remarque,Montant\n2024/01/05,Achat Carrefour,-45.10\n"
                 "2024/01/06,Retrait DAB 20,00 EUR,-20.00\n2024/01/07,Salaire,2500.00\n")
    with pytest.raises(InputFileError) as info:
        CsvLoader().load(path, profile="generic_fr")
    assert info.value.line == 3
    assert "4 fields where the header has 3" in str(info.value)
    assert "'Retrait DAB 20', '00 EUR', '-20.00'" in str(info.value)


@pytest.mark.parametrize(("last", "error"), [("LAST", None), ("LAST;LOST", 15)])
def test_columns_a_profile_names_past_the_header_are_read_past_the_sample(tmp_path, last,
                                                                         error):
    # Livebank's text runs on into column_11..column_14, which the profile joins
    head = ("Kontonummer;Auszugsnummer;Buchungsdatum;Valutadatum;Umsatzzeit;"
            "Zahlungsreferenz;Waehrung;Betrag;Buchungstext;Umsatztext\n")
    row = '1234;1;2013-07-03;2013-07-03;x;"";EUR;150,00;"Text";A name;"A text"\n'
    wide = f"1234;1;2013-07-04;2013-07-04;x;;EUR;1,00;Text;a;b;c;d;{last}\n"
    path = write(tmp_path, head + row * 250 + wide + row)
    if error:
        with pytest.raises(InputFileError) as info:
            CsvLoader().load(path, profile="livebank")
        assert info.value.line == 252 and f"{error} fields where" in str(info.value)
        return
    frame = CsvLoader().load(path, profile="livebank").frame
    assert frame.filter(pl.col("line") == 252)["description"][0] == "Text a b c d LAST"


@pytest.mark.parametrize("before", [1, 300])
def test_empty_cells_past_the_header_load(tmp_path, before):
    # trailing delimiters (Chase ends every row with one) lose nothing
    text = HEADER + rows(before) + "B9,2024-02-01,7.25,EUR,A,B,C,,\n" + rows(2, 500)
    frame = CsvLoader().load(write(tmp_path, text)).frame
    assert frame.height == before + 3
    row = frame.filter(pl.col("id") == "B9").row(0, named=True)
    assert (row["amount"], row["description"]) == (Decimal("7.25"), "C")


def test_line_numbers_count_quoted_newlines_and_blank_lines(tmp_path):
    text = (HEADER + 'b1,2026-03-01,1,EUR,A,B,"two\nlines"\n\n'
            'b2,2026-03-02,2,EUR,A,B,"three\nphysical\nlines"\nb3,2026-03-03,3,EUR,A,B,C\n')
    frame = CsvLoader().load(write(tmp_path, text)).frame
    assert frame["line"].to_list() == [2, 5, 8]
    assert frame["description"][0] == "two\nlines"


def test_lines_before_the_header_are_skipped_and_counted(tmp_path):
    # polars skips the lines before the data (no copy of the body is made): the
    # line numbers of rows and of errors still count them
    preamble = 'Account statement,"ACME, Inc."\nExported 2026-03-31\n\n'
    body = 'b1,2026-03-01,1,EUR,A,B,"two\nlines"\nb2,2026-03-02,2,EUR,A,B,C\n'
    frame = CsvLoader().load(write(tmp_path, preamble + HEADER + body)).frame
    assert frame["line"].to_list() == [5, 7]
    assert frame["description"].to_list() == ["two\nlines", "C"]
    bad = write(tmp_path, preamble + HEADER + body + "b3,2026-03-03,x,EUR,A,B,C\n", "bad.csv")
    assert load_error(bad).line == 8


def test_crlf_and_no_trailing_newline(tmp_path):
    text = (HEADER + rows(2)).replace("\n", "\r\n").rstrip()
    frame = CsvLoader().load(write(tmp_path, text)).frame
    assert frame.height == 2 and frame["description"].to_list() == ["pay 1", "pay 2"]


def test_header_only_gives_no_rows(tmp_path):
    result = CsvLoader().load(write(tmp_path, HEADER))
    assert result.frame.height == 0 and result.statements == []


def test_empty_file_is_an_input_error(tmp_path):
    with pytest.raises(InputFileError, match="empty"):
        load_file(write(tmp_path, ""))


def test_statements_group_by_account_and_currency(tmp_path):
    text = (HEADER + "b1,2026-03-01,1,EUR,A,B,C\nb2,2026-03-05,2,USD,A,B,C\n"
            "b3,2026-03-03,3,EUR,A,B,C\n")
    stmts = CsvLoader().load(write(tmp_path, text)).statements
    assert [(s.currency, s.transactions, s.start_date, s.end_date) for s in stmts] == [
        ("EUR", 2, date(2026, 3, 1), date(2026, 3, 3)),
        ("USD", 1, date(2026, 3, 5), date(2026, 3, 5))]
    assert stmts[0].opening_balance is None


# --- encodings ----------------------------------------------------------------

TEXT = HEADER + "b1,2026-03-01,-5.00,EUR,Café Müller,R1,Überweisung für März\n"


@pytest.mark.parametrize(("encoding", "data", "label"), [
    ("utf-8", TEXT.encode("utf-8"), "utf-8"),
    ("utf-8-sig", TEXT.encode("utf-8-sig"), "utf-8-sig"),
    ("utf-16", b"\xff\xfe" + TEXT.encode("utf-16-le"), "utf-16-le"),
    ("utf-16-be", b"\xfe\xff" + TEXT.encode("utf-16-be"), "utf-16-be"),
    ("cp1252", TEXT.encode("cp1252"), "cp1252"),
    ("latin-1", TEXT.replace("€", "").encode("latin-1"), "cp1252"),
])
def test_encodings_decode_to_the_same_text(tmp_path, encoding, data, label):
    result = CsvLoader().load(write(tmp_path, data))
    assert result.encoding == label
    row = result.frame.row(0, named=True)
    assert row["counterparty"] == "Café Müller"
    assert row["description"] == "Überweisung für März"
    assert any(label.split("-")[0] in note for note in result.notes)


def test_gb18030_detected_from_paired_bytes(tmp_path):
    text = HEADER + "b1,2026-03-01,-35.50,CNY,财付通支付科技有限公司,R1,美团外卖\n"
    result = CsvLoader().load(write(tmp_path, text.encode("gbk")))
    assert result.encoding == "gb18030"
    assert result.frame["counterparty"][0] == "财付通支付科技有限公司"


def test_latin1_with_adjacent_accents_is_not_taken_for_gbk():
    codec, _, why = detect_encoding("Straße;Größe;Ärger;ÄÖÜ;naïve\n".encode("cp1252"))
    assert codec == "cp1252", why


def test_portuguese_accent_pairs_are_not_taken_for_gbk(tmp_path):
    # 'ção' is two high bytes in CP1252: a file of them read as GB18030, 'Opera玢o'
    words = ["Operação cartão", "Aplicação automática", "Liquidação", "Devolução",
             "Prestação habitação", "Transações"]
    text = HEADER + "".join(f"b{i},2026-03-0{i},-1{i}.00,EUR,Banco,R{i},{w}\n"
                            for i, w in enumerate(words, 1))
    result = CsvLoader().load(write(tmp_path, text.encode("cp1252")))
    assert result.encoding == "cp1252"
    assert result.frame["description"].to_list() == words


def test_utf16_without_bom(tmp_path):
    result = CsvLoader().load(write(tmp_path, TEXT.encode("utf-16-le")))
    assert result.encoding == "utf-16-le" and result.frame.height == 1


def test_cr_only_line_ends(tmp_path):
    frame = CsvLoader().load(write(tmp_path, (HEADER + rows(3)).replace("\n", "\r"))).frame
    assert frame["line"].to_list() == [2, 3, 4]


def test_truncated_utf16_is_an_input_error(tmp_path):
    with pytest.raises(InputFileError, match="not valid utf-16"):
        CsvLoader().load(write(tmp_path, b"\xff\xfe" + TEXT.encode("utf-16-le")[:-1]))


# --- ids ----------------------------------------------------------------------

PROFILE = """\
name: noid
date_format: YYYY-MM-DD
columns: {date: Date, amount: Amount, counterparty: Payee, description: Memo}
currency: EUR
"""


def test_synthesized_ids_are_stable_across_overlapping_exports(tmp_path):
    profile = tmp_path / "noid.yaml"
    profile.write_text(PROFILE)
    coffee = "2026-03-02,-3.20,Cafe,Coffee\n"
    first = write(tmp_path, "Date,Amount,Payee,Memo\n2026-03-01,-9.99,Shop,Book\n"
                  + coffee + coffee, "march_a.csv")
    second = write(tmp_path, "Date,Amount,Payee,Memo\n" + coffee + coffee
                   + "2026-03-03,50.00,Bob,Refund\n", "march_b.csv")
    a = CsvLoader().load(first, profile=str(profile)).frame
    b = CsvLoader().load(second, profile=str(profile)).frame
    assert a["id"].n_unique() == 3  # two identical coffees stay two rows
    assert a["id"].to_list()[1:] == b["id"].to_list()[:2]
    assert a["id"][1].endswith("-1") and a["id"][2].endswith("-2")
    assert any("made ids" in n for n in CsvLoader().load(first, profile=str(profile)).notes)


# --- amounts, sniffing, detection -----------------------------------------------


@pytest.mark.parametrize(("text", "decimal", "thousands", "expected"), [
    ("1.234,56", ",", ".", "1234.56"),
    ("-1.234,56", ",", ".", "-1234.56"),
    ("12,50-", ",", ".", "-12.50"),
    ("(1,234.56)", ".", ",", "-1234.56"),
    ("$1,234.56", ".", ",", "1234.56"),
    ("-$7,971.39", ".", ",", "-7971.39"),
    ("+1,23", ",", None, "1.23"),
    ("1 234,56 €", ",", " ", "1234.56"),
    ("EUR 5", ".", None, "5"),
    ("¥35.00", ".", ",", "35.00"),
])
def test_parse_amounts_formats(text, decimal, thousands, expected):
    frame = pl.DataFrame({"a": [text], "line": [2]})
    got = parse_amounts(frame, "a", Path("x.csv"), decimal=decimal, thousands=thousands)
    assert got.to_list() == [Decimal(expected)]


@pytest.mark.parametrize(("text", "decimal", "thousands"), [
    ("-12.50", ",", "."),   # a dot-decimal amount in a decimal-comma file
    ("1.5", ",", "."),
    ("1.23,5", ",", "."),
    ("-4,5", ".", ","),
    ("1,2345.00", ".", ","),
    ("1.234,5.6", ",", "."),
])
def test_a_misplaced_thousands_separator_is_refused_not_dropped(text, decimal, thousands):
    """A thousands separator that does not stand before groups of three digits of the
    whole part is not one: the amount is refused naming its line, where dropping the
    separator read -12.50 as -1250 and 1.5 as 15."""
    frame = pl.DataFrame({"a": ["1" + decimal + "00", text], "line": [2, 3]})
    with pytest.raises(InputFileError) as err:
        parse_amounts(frame, "a", Path("x.csv"), decimal=decimal, thousands=thousands)
    assert err.value.line == 3 and repr(text) in str(err.value)


@pytest.mark.parametrize("text", ["((5.00))", "5.00--", "(5.00", "5.00)", "-5.00-", "(5.00)-",
                                  "-(5.00)", "--5.00", "++5.00"])
def test_a_sign_written_twice_is_refused_not_read(text):
    """One pair of parentheses or one trailing minus makes an amount negative; a cell
    with two ("((5.00))", "5.00--") is no amount a bank writes: it was read as -5.00."""
    frame = pl.DataFrame({"a": ["1.00", text], "line": [2, 3]})
    with pytest.raises(InputFileError) as err:
        parse_amounts(frame, "a", Path("x.csv"), decimal=".", thousands=",")
    assert err.value.line == 3 and repr(text) in str(err.value)


@pytest.mark.parametrize(("cell", "fmt"), [
    ("24-03-05", "YYYY-MM-DD"),      # a two-digit year: was the year 24
    ("05/03/24", "DD/MM/YYYY"),
    ("30.12.2019", "DD.MM.YY"),      # a four-digit year: cut to 30.12.20, 2020-12-30
    ("2024-03-05x", "YYYY-MM-DD"),   # text after the date
    ("2024-03-05 junk", "YYYY-MM-DD"),
])
def test_a_date_in_another_form_is_refused_not_misread(cell, fmt):
    """A date the format does not describe whole is refused naming its line, where a
    two-digit year in a YYYY column was read as the year 24 (731,490 days old in the
    exceptions) and a four-digit one in a YY column was cut to the wrong year."""
    from recon.normalise import parse_date_column

    frame = pl.DataFrame({"d": [cell], "line": [7]})
    with pytest.raises(InputFileError) as err:
        parse_date_column(frame, "d", Path("x.csv"), fmt=fmt)
    assert err.value.line == 7 and repr(cell) in str(err.value)


@pytest.mark.parametrize(("cell", "fmt", "day"), [
    ("2026-03-01 12:30:00", "YYYY-MM-DD", "2026-03-01"),
    ("2026-03-01T12:30", "YYYY-MM-DD", "2026-03-01"),
    ("2026-03-01T08:15:00.250+01:00", "YYYY-MM-DD", "2026-03-01"),
    ("20260301120000", "YYYYMMDD", "2026-03-01"),
    ("31.12.99", "DD.MM.YY", "1999-12-31"),
])
def test_a_date_with_its_time_of_day_keeps_its_date(cell, fmt, day):
    from recon.normalise import parse_date_column

    frame = pl.DataFrame({"d": [cell], "line": [2]})
    got = parse_date_column(frame, "d", Path("x.csv"), fmt=fmt)
    assert str(got[0]) == day


def test_sniff_scores(tmp_path):
    canonical = (HEADER + rows(2)).encode()
    assert CsvLoader.sniff(canonical, Path("x.bin")) >= 90
    assert CsvLoader.sniff(b"a;b;c\n1;2;3\n4;5;6\n", Path("x.csv")) in range(40, 90)
    assert CsvLoader.sniff(b"PK\x03\x04rest", Path("x.csv")) == 0
    assert CsvLoader.sniff(b"PAR1....", Path("x.csv")) == 0
    assert CsvLoader.sniff(b"OFXHEADER:100\nDATA:OFXSGML\n", Path("x.ofx")) == 0
    assert CsvLoader.sniff(b'<?xml version="1.0"?><Document/>', Path("x.xml")) == 0
    assert CsvLoader.sniff(b":20:STARTUMS\n:25:123\n", Path("x.sta")) == 0


def test_detect_format_and_load_file(tmp_path):
    path = write(tmp_path, HEADER + rows(2), "statement.txt")
    fmt, reason = detect_format(path)
    assert fmt == "csv" and "csv" in reason
    result = load_file(path)
    assert result.notes[0] == reason and result.frame.height == 2
