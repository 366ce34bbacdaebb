"""MT940 / MT942 loader: bank dialects of :86:, envelopes, balances, errors."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from recon.errors import InputFileError
from recon.loaders.mt940 import Mt940Loader, join_lines

BANKS = Path(__file__).resolve().parents[1] / "fixtures" / "banks" / "mt940"

BLOCK = """:20:REF1
:25:DE89370400440532013000
:28C:1/1
:60F:C260302EUR100,00
:61:2603020302D10,00NTRFNONREF//B-1
:86:/EREF/E-1//NAME/Shop//REMI/USTD//Order 5/
:62F:C260302EUR90,00
-
"""


def load(tmp_path: Path, text: str | bytes):
    path = tmp_path / "s.sta"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return Mt940Loader().load(path)


def test_german_subfields_sepa_keywords_and_continuity() -> None:
    result = Mt940Loader().load(BANKS / "de_sparkasse.sta")
    rows = result.frame.to_dicts()
    assert [r["amount"] for r in rows] == [Decimal("250"), Decimal("-49.90"),
                                           Decimal("-200.10")]
    assert [r["line"] for r in rows] == [5, 10, 19]
    assert [r["id"] for r in rows][:2] == ["BANK-0001", "BANK-0002"]
    assert rows[2]["id"].startswith("syn-")  # NONREF and no bank reference
    first, second = rows[0], rows[1]
    assert first["counterparty"] == "Mueller Maschinenbau GmbH"  # ?32 + ?33
    assert first["iban"] == "DE44500105175407324931"  # ?31
    assert first["reference"] == "Rechnung RE-2026-0042 vom 01.03.2026"  # SVWZ, money in
    assert second["reference"] == "DD-99"  # EREF first for money out
    assert first["description"].startswith("GUTSCHRIFT")  # ?00 posting text
    one, two = result.statements
    assert (one.opening_balance, one.closing_balance, one.transactions) == (
        Decimal("1000.00"), Decimal("1200.10"), 2)
    assert two.opening_balance == one.closing_balance
    assert str(one.start_date) == "2026-03-02" and str(two.end_date) == "2026-03-04"


def test_ing_envelope_counterparty_block_and_wrapped_lines() -> None:
    result = Mt940Loader().load(BANKS / "nl_ing.sta")
    credit, debit = result.frame.to_dicts()
    assert credit["account"] == "NL20INGB0001234567"  # trailing currency dropped
    assert (credit["counterparty"], credit["iban"], credit["reference"]) == (
        "J. de Vries", "NL91ABNA0417164300", "Factuur 2026-0007")
    # /CNTP/ wraps after 65 characters: the IBAN is joined without a space
    assert (debit["counterparty"], debit["iban"], debit["reference"]) == (
        "Energie BV", "NL39RABO0300065264", "DD-INCASSO-1")
    assert credit["id"] == "00010101010101"
    assert any("envelope" in n for n in result.notes)


def test_mt942_interim_report_has_no_balances() -> None:
    result = Mt940Loader().load(BANKS / "intraday.942")
    info = result.statements[0]
    assert (info.opening_balance, info.closing_balance, info.currency) == (None, None, "EUR")
    assert str(info.end_date) == "2026-03-02"
    assert result.frame["reference"].to_list() == ["Order 881"]


def test_sniff() -> None:
    head = (BANKS / "de_sparkasse.sta").read_bytes()
    assert Mt940Loader.sniff(head, Path("export.txt")) >= 90
    assert Mt940Loader.sniff(b"id,date\n", Path("x.sta")) == 0


def test_balance_without_currency_or_with_dot_is_repaired(tmp_path: Path) -> None:
    text = BLOCK.replace(":62F:C260302EUR90,00", ":62F:C26030290,00").replace(
        "C260302EUR100,00", "C260302EUR100.00")
    result = load(tmp_path, text)
    assert result.statements[0].opening_balance == Decimal("100.00")
    assert result.statements[0].closing_balance == Decimal("90.00")
    assert any("without currency" in n for n in result.notes)
    assert any("'.' as decimal mark" in n for n in result.notes)


def test_long_customer_reference_uses_relaxed_pattern(tmp_path: Path) -> None:
    text = BLOCK.replace(":61:2603020302D10,00NTRFNONREF//B-1",
                         ":61:2603020302D10,00NOVBNL49RABO0166416932\njan jansen")
    row = load(tmp_path, text).frame.row(0, named=True)
    assert row["amount"] == Decimal("-10") and row["iban"] == "NL49RABO0166416932"
    assert "jan jansen" in row["description"]


def test_non_utf8_bytes_are_decoded_and_noted(tmp_path: Path) -> None:
    text = BLOCK.replace("NAME/Shop", "NAME/Bäckerei Müller")
    result = load(tmp_path, text.encode("cp1252"))
    assert result.frame["counterparty"][0] == "Bäckerei Müller"
    assert result.encoding == "cp1252" and "not valid UTF-8" in result.notes[0]


@pytest.mark.parametrize(("old", "new", "line", "words"), [
    (":61:2603020302D10,00", ":61:2613020302D10,00", 5, "month must be in 1..12"),
    (":61:2603020302D10,00NTRF", ":61:2603020302D10,0ONTRF", 5, "letter in the amount"),
    (":61:2603020302D10,00", ":61:2603020302D1,0,0", 5, "cannot parse"),
    (":86:", ":99:", 6, "unknown tag :99:"),
    (":62F:C260302EUR90,00", ":62F:C260302EUR9O,00", 7, "cannot parse balance"),
])
def test_bad_values_name_their_line(tmp_path: Path, old: str, new: str, line: int,
                                    words: str) -> None:
    with pytest.raises(InputFileError) as err:
        load(tmp_path, BLOCK.replace(old, new))
    assert err.value.line == line and words in err.value.message


def test_statement_cut_short_is_refused_unless_the_message_ended(tmp_path: Path) -> None:
    cut = BLOCK[:BLOCK.index(":62F:")]
    with pytest.raises(InputFileError) as err:
        load(tmp_path, cut + BLOCK)  # two statements run together
    assert err.value.line == 1 and "no :62F:/:62M: closing" in err.value.message
    result = load(tmp_path, cut + "-\n")  # properly ended message: read, noted
    assert result.statements[0].closing_balance is None
    assert any("message ends properly" in n for n in result.notes)


def test_nonref_ids_are_made_up_and_stable(tmp_path: Path) -> None:
    twice = BLOCK.replace("NONREF//B-1", "NONREF").replace(
        ":61:2603020302D10,00NTRFNONREF\n:86:/EREF/E-1//NAME/Shop//REMI/USTD//Order 5/\n",
        ":61:2603020302D5,00NTRFNONREF\n:86:fee\n:61:2603020302D5,00NTRFNONREF\n:86:fee\n")
    ids = load(tmp_path, twice).frame["id"].to_list()
    assert ids == load(tmp_path, twice).frame["id"].to_list()
    assert ids[0].endswith("-1") and ids[1].endswith("-2") and ids[0][:-2] == ids[1][:-2]


def test_customer_reference_repeated_in_the_file_is_told_apart_by_date_and_amount(
    tmp_path: Path,
) -> None:
    """A customer reference taken as id ('Rente') that the export repeats (January's and
    February's interest) is named by date and amount, as when two files hold it; two
    equal lines of a day still get hash ids.  weak_rows names each such row's ids, the
    hash id an earlier recon gave it among them."""
    text = (":20:STMT\n:25:DE89370400440532013000\n:28C:1/1\n:60F:C260131EUR1000,00\n"
            ":61:2601310131C1,23NMSCRente\n:86:Zinsen/Rente\n"
            ":61:2602280228C0,98NMSCRente\n:86:Zinsen/Rente\n"
            ":61:2602280228C0,98NMSCRente\n:86:Zinsen/Rente\n"
            ":61:2602280228D5,00NMSCKARTE//B-77\n:86:Karte\n"
            ":62F:C260228EUR998,19\n-\n")
    result = load(tmp_path, text)
    ids = result.frame["id"].to_list()
    assert ids[0] == "Rente~2026-01-31~1.23" and ids[3] == "B-77"
    assert ids[1].startswith("syn-") and ids[1][:-2] == ids[2][:-2] and ids[2].endswith("-2")
    weak = result.weak_rows
    assert weak is not None
    assert weak["line"].to_list() == [5, 7, 9] and weak["plain"].to_list() == ["Rente"] * 3
    assert weak["qualified"].to_list() == [ids[0], "Rente~2026-02-28~0.98",
                                           "Rente~2026-02-28~0.98"]
    # the ids the loader gave them before (written down from its output)
    assert weak["legacy"].to_list() == ["syn-70a9a68b87968df7-1", *ids[1:3]]


def test_empty_file_and_no_statement(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no MT940 statement"):
        load(tmp_path, "hello\n")
    with pytest.raises(InputFileError, match="NUL bytes"):
        load(tmp_path, b"PK\x03\x04\x00\x00:20:")


def test_join_lines_undoes_65_character_wrapping() -> None:
    assert join_lines("a" * 65 + "\nbc") == "a" * 65 + "bc"
    assert join_lines("short\nline") == "short line"
    assert join_lines("?20abc\n?21def") == "?20abc?21def"
