"""OFX loader: SGML and XML statements, real-bank malformations, exact amounts."""

from __future__ import annotations

import io
import warnings
from decimal import Decimal
from pathlib import Path

import pytest

from recon.errors import InputFileError
from recon.loaders.ofx import OfxLoader

BANKS = Path(__file__).resolve().parents[1] / "fixtures" / "banks" / "ofx"
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "ofx"

HEAD = ("OFXHEADER:100\nDATA:OFXSGML\nVERSION:102\nSECURITY:NONE\nENCODING:USASCII\n"
        "CHARSET:1252\nCOMPRESSION:NONE\nOLDFILEUID:NONE\nNEWFILEUID:NONE\n\n")


def sgml(transactions: str, *, closing: str = "<LEDGERBAL>\n<BALAMT>10.00\n"
         "<DTASOF>20260331\n</LEDGERBAL>\n", tail: str = "</STMTRS>\n</STMTTRNRS>\n"
         "</BANKMSGSRSV1>\n</OFX>\n") -> str:
    return (HEAD + "<OFX>\n<BANKMSGSRSV1>\n<STMTTRNRS>\n<TRNUID>1\n<STMTRS>\n<CURDEF>EUR\n"
            "<BANKACCTFROM>\n<BANKID>1\n<ACCTID>ACC-1\n<ACCTTYPE>CHECKING\n"
            "</BANKACCTFROM>\n<BANKTRANLIST>\n<DTSTART>20260301\n<DTEND>20260331\n"
            + transactions + "</BANKTRANLIST>\n" + closing + tail)


def txn(fitid: str = "T1", amount: str = "-5.00", posted: str = "20260302",
        extra: str = "") -> str:
    return (f"<STMTTRN>\n<TRNTYPE>DEBIT\n<DTPOSTED>{posted}\n<TRNAMT>{amount}\n"
            f"<FITID>{fitid}\n<NAME>Shop\n{extra}</STMTTRN>\n")


def load(tmp_path: Path, text: str, name: str = "s.ofx"):
    path = tmp_path / name
    path.write_text(text, encoding="cp1252")
    return OfxLoader().load(path)


def test_sgml_bank_and_credit_card_statements() -> None:
    result = OfxLoader().load(BANKS / "bank_and_card_v1.ofx")
    rows = result.frame.to_dicts()
    assert [r["id"] for r in rows] == ["F-1001", "F-1002", "F-1003", "C-77"]
    assert [r["amount"] for r in rows] == [Decimal("1000"), Decimal("-250.50"),
                                           Decimal("-12.50"), Decimal("-45.99")]
    assert [r["line"] for r in rows] == [39, 47, 55, 86]
    assert rows[0]["counterparty"] == "Müller GmbH"  # CHARSET:1252 honoured
    assert rows[0]["reference"] == "INV-2026-00123"  # MEMO when no REFNUM
    assert rows[1]["reference"] == "1042"  # CHECKNUM of a CHECK
    assert rows[2]["reference"] == "FEE-03"  # REFNUM
    assert rows[3]["account"] == "5500111122223333"
    bank, card = result.statements
    assert (bank.account, bank.currency, bank.opening_balance, bank.closing_balance,
            bank.transactions) == ("4455667788", "USD", None, Decimal("5737.00"), 3)
    assert str(bank.start_date) == "2026-03-01" and str(bank.end_date) == "2026-03-31"
    assert card.closing_balance == Decimal("-45.99") and card.transactions == 1
    assert result.encoding == "cp1252"


def test_xml_v2_entities_iban_and_available_date() -> None:
    result = OfxLoader().load(BANKS / "fr_v2.qfx")
    first = result.frame.row(0, named=True)
    assert first["counterparty"] == "Société Générale & Cie"
    assert first["iban"] == "FR1420041010050500013M02606"
    assert str(first["value_date"]) == "2026-04-03"
    assert result.statements[0].closing_balance == Decimal("2200.00")


def test_sniff_reads_content_not_extension() -> None:
    sgml_head = (BANKS / "bank_and_card_v1.ofx").read_bytes()
    assert OfxLoader.sniff(sgml_head, Path("download.txt")) >= 90
    assert OfxLoader.sniff(b"<?xml version='1.0'?>\n<?OFX OFXHEADER=\"200\"?><OFX>",
                           Path("x")) >= 90
    assert OfxLoader.sniff(b"id,date,amount\n1,2026-01-01,5\n", Path("a.csv")) == 0


def test_missing_end_tags_are_repaired_and_noted(tmp_path: Path) -> None:
    body = txn("A").replace("</STMTTRN>\n", "") + txn("B").replace("</STMTTRN>\n", "")
    text = sgml(body).replace("</BANKTRANLIST>\n", "")
    result = load(tmp_path, text)
    assert result.frame["id"].to_list() == ["A", "B"]
    assert result.statements[0].closing_balance == Decimal("10.00")
    assert any("no end tag" in n for n in result.notes)


def test_empty_elements_and_missing_fitid(tmp_path: Path) -> None:
    text = sgml(txn("", extra="<MEMO></MEMO>\n<CHECKNUM/>\n"),
                closing="<LEDGERBAL>\n<BALAMT></BALAMT>\n<DTASOF>\n</LEDGERBAL>\n")
    result = load(tmp_path, text)
    assert result.frame["id"][0].startswith("syn-")
    assert result.statements[0].closing_balance is None


def test_a_value_closed_once_is_still_a_value_where_left_open(tmp_path: Path) -> None:
    # <NAME>Foo</NAME> made NAME an aggregate: an empty open <NAME> took TRNAMT, FITID...
    first = ("<STMTTRN>\n<TRNTYPE>DEBIT\n<DTPOSTED>20260302\n<TRNAMT>-10.00\n<FITID>A\n"
             "<NAME>Foo</NAME>\n<MEMO>first</MEMO>\n</STMTTRN>\n")
    second = ("<STMTTRN>\n<TRNTYPE>DEBIT\n<DTPOSTED>20260303\n<NAME>\n<TRNAMT>-20.00\n"
              "<FITID>B\n<MEMO>\n<CHECKNUM>17\n</STMTTRN>\n")
    result = load(tmp_path, sgml(first + second))
    rows = result.frame.to_dicts()
    assert [(r["id"], r["amount"], r["counterparty"]) for r in rows] == [
        ("A", Decimal("-10.00"), "Foo"), ("B", Decimal("-20.00"), None)]
    assert rows[1]["reference"] == "17" and rows[0]["description"] == "Foo | first"
    assert not any("nesting" in n for n in result.notes)


def test_duplicated_fitids_get_stable_made_up_ids(tmp_path: Path) -> None:
    text = sgml(txn("SAME", "-1.00") + txn("SAME", "-2.00") + txn("OK", "-3.00"))
    first = load(tmp_path, text).frame["id"].to_list()
    again = load(tmp_path, text, "again.ofx").frame["id"].to_list()
    assert first == again and first[2] == "OK"
    assert first[0] != first[1] and all(i.startswith("syn-") for i in first[:2])


@pytest.mark.parametrize(("change", "line", "field", "words"), [
    ({"amount": "12.5O"}, 28, "TRNAMT", "cannot parse amount '12.5O'"),
    ({"posted": "20260231"}, 27, "DTPOSTED", "impossible date '20260231'"),
    ({"posted": "31/03/2026"}, 27, "DTPOSTED", "expected YYYYMMDD"),
])
def test_bad_values_name_line_and_expectation(tmp_path: Path, change: dict[str, str],
                                              line: int, field: str, words: str) -> None:
    with pytest.raises(InputFileError) as err:
        load(tmp_path, sgml(txn(**change)))
    assert (err.value.line, err.value.field) == (line, field)
    assert words in err.value.message and "s.ofx" in str(err.value)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    text = sgml(txn("A") + txn("B"))
    cut = text[:text.rindex("<TRNAMT>")]
    with pytest.raises(InputFileError) as err:
        load(tmp_path, cut)
    assert "ends inside <STMTTRN>" in err.value.message and err.value.line == 32


def test_transaction_without_amount_or_currency(tmp_path: Path) -> None:
    no_amount = txn().replace("<TRNAMT>-5.00\n", "")
    with pytest.raises(InputFileError, match="without <TRNAMT>"):
        load(tmp_path, sgml(no_amount))
    with pytest.raises(InputFileError, match="no currency"):
        load(tmp_path, sgml(txn()).replace("<CURDEF>EUR\n", ""))


def test_not_ofx_at_all(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no <OFX> element"):
        load(tmp_path, "hello\n")
    with pytest.raises(InputFileError, match="no statement"):
        load(tmp_path, HEAD + "<OFX>\n<SIGNONMSGSRSV1>\n</SIGNONMSGSRSV1>\n</OFX>\n")


def test_header_declares_utf8_but_bytes_are_latin1(tmp_path: Path) -> None:
    path = tmp_path / "wrong.ofx"
    text = sgml(txn(extra="<MEMO>Caf\xe9\n")).replace("CHARSET:1252", "CHARSET:NONE")
    path.write_bytes(text.replace("ENCODING:USASCII", "ENCODING:UTF-8").encode("latin-1"))
    result = OfxLoader().load(path)
    assert result.frame["description"][0] == "Shop | Café"
    assert any("declares encoding" in n for n in result.notes)


def test_utf8_bytes_under_charset_1252_are_read_as_utf8(tmp_path: Path) -> None:
    # The OFX 1 header's usual CHARSET:1252 over a UTF-8 body: 'CafÃ© MÃ¼ller' before
    path = tmp_path / "utf8.ofx"
    path.write_bytes(sgml(txn(extra="<MEMO>Café Müller\n")).encode("utf-8"))
    result = OfxLoader().load(path)
    assert result.frame["description"][0] == "Shop | Café Müller"
    assert result.encoding == "utf-8"
    assert any("declares encoding 'cp1252' but its accented letters are UTF-8" in n
               for n in result.notes)
    assert load(tmp_path, sgml(txn(extra="<MEMO>Café\n"))).encoding == "cp1252"


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*")) if CORPUS.is_dir() else [],
                         ids=lambda p: p.name)
def test_same_transactions_as_ofxparse(path: Path) -> None:
    """Second opinion: where ofxparse reads a corpus file, it finds the same lines."""
    ofxparse = pytest.importorskip("ofxparse")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            theirs = ofxparse.OfxParser.parse(io.BytesIO(path.read_bytes()))
        except Exception as exc:
            pytest.skip(f"ofxparse cannot read it: {exc!r}")
    lines = [t for a in theirs.accounts for t in getattr(a.statement, "transactions", [])]
    ours = OfxLoader().load(path).frame
    assert sorted(ours["amount"].to_list()) == sorted(Decimal(t.amount) for t in lines)
    kept = {i for i in ours["id"].to_list() if not i.startswith("syn-")}
    assert kept <= {t.id for t in lines}  # FITIDs kept as given (duplicates made up)
