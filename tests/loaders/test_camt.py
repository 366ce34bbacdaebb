"""camt.053/052/054 loader: versions, batch bookings, balances, safe XML, zips."""

from __future__ import annotations

import zipfile
from decimal import Decimal
from pathlib import Path

import pytest

from recon.errors import InputFileError
from recon.loaders.camt import CamtLoader

BANKS = Path(__file__).resolve().parents[1] / "fixtures" / "banks" / "camt"
FIXTURE = BANKS / "ch_v08_two_days.xml"

MINIMAL = """<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:{ns}">
  <{root}>
    <GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-03-02T10:00:00</CreDtTm></GrpHdr>
    <{block}>
      <Id>S1</Id>
      <Acct><Id><IBAN>DE89370400440532013000</IBAN></Id><Ccy>EUR</Ccy></Acct>
      <Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">10.00</Amt>
        <CdtDbtInd>DBIT</CdtDbtInd><Dt><Dt>2026-03-01</Dt></Dt></Bal>
      <Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="EUR">{close}</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2026-03-02</Dt></Dt></Bal>
      <Ntry>
        <NtryRef>N1</NtryRef>
        <Amt Ccy="EUR">{amount}</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><Dt>{booked}</Dt></BookgDt>
        <NtryDtls><TxDtls>
          <Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
          <RltdPties><Dbtr><Nm>Payer Ltd</Nm></Dbtr></RltdPties>
          <RmtInf><Ustrd>Invoice 17</Ustrd><Ustrd>and 18</Ustrd></RmtInf>
        </TxDtls></NtryDtls>
      </Ntry>
    </{block}>
  </{root}>
</Document>
"""


def document(ns: str = "camt.053.001.02", root: str = "BkToCstmrStmt", block: str = "Stmt",
             amount: str = "25.50", booked: str = "2026-03-02", close: str = "15.50") -> str:
    return MINIMAL.format(ns=ns, root=root, block=block, amount=amount, booked=booked,
                          close=close)


def load(tmp_path: Path, text: str, name: str = "s.xml"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return CamtLoader().load(path)


def test_two_statements_batch_charges_and_pending() -> None:
    result = CamtLoader().load(FIXTURE)
    rows = result.frame.to_dicts()
    assert [r["id"] for r in rows] == ["AS-001", "AS-002", "NR-3"]  # AcctSvcrRef, NtryRef
    assert [r["amount"] for r in rows] == [Decimal("1000"), Decimal("-150"), Decimal("-20")]
    credit, batch, fee = rows
    assert (credit["counterparty"], credit["iban"], credit["reference"]) == (
        "Kunde AG", "CH5604835012345678009", "RF18539007547034")  # v08 Dbtr/Pty/Nm
    assert str(credit["value_date"]) == "2026-03-03" and credit["line"] == 37
    assert batch["reference"] == "PAYRUN-12" and "batch of 2 payments" in batch["description"]
    assert "charges 20.00 CHF" in fee["description"]
    details = result.details.to_dicts()  # type: ignore[union-attr]
    assert [(d["parent_id"], d["seq"], d["amount"], d["counterparty"], d["end_to_end_id"])
            for d in details] == [("AS-002", 1, Decimal("-100"), "Lieferant A", "P-1"),
                                  ("AS-002", 2, Decimal("-50"), "Lieferant B", "P-2")]
    first, second = result.statements
    assert (first.opening_balance, first.closing_balance, first.transactions) == (
        Decimal("1000"), Decimal("1830"), 3)  # CLAV 9999.99 ignored
    assert second.opening_balance == Decimal("1830")  # PRCD stands in for OPBD
    assert (first.statement_id, str(second.start_date)) == ("STMT-0302", "2026-03-03")
    assert any("not booked" in n for n in result.notes)


@pytest.mark.parametrize("version", [f"{v:02d}" for v in range(2, 14)])
def test_every_camt053_version(tmp_path: Path, version: str) -> None:
    result = load(tmp_path, document(ns=f"camt.053.001.{version}"))
    row = result.frame.row(0, named=True)
    assert (row["amount"], row["counterparty"]) == (Decimal("25.50"), "Payer Ltd")
    assert row["reference"] == "Invoice 17 and 18"  # NOTPROVIDED is no reference
    assert result.statements[0].opening_balance == Decimal("-10.00")


@pytest.mark.parametrize(("ns", "root", "block"), [
    ("camt.052.001.08", "BkToCstmrAcctRpt", "Rpt"),
    ("camt.054.001.08", "BkToCstmrDbtCdtNtfctn", "Ntfctn"),
    ("camt.053.001.01", "BkToCstmrStmtV01", "Stmt"),
])
def test_reports_and_notifications(tmp_path: Path, ns: str, root: str, block: str) -> None:
    result = load(tmp_path, document(ns=ns, root=root, block=block))
    assert result.frame.height == 1 and result.format == "camt053"
    assert any(ns in n for n in result.notes)


def test_sniff() -> None:
    assert CamtLoader.sniff(FIXTURE.read_bytes(), Path("x.bin")) == 95
    assert CamtLoader.sniff(b"<?xml version='1.0'?><Document xmlns='urn:other'/>",
                            Path("x.xml")) == 0


def test_doctype_with_entities_is_refused(tmp_path: Path) -> None:
    bomb = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
            '<!ENTITY lol2 "&lol;&lol;&lol;">]>\n' + document().split("?>", 1)[1])
    with pytest.raises(InputFileError) as err:
        load(tmp_path, bomb)
    assert "DOCTYPE" in err.value.message and err.value.line == 2


def test_external_entity_is_not_resolved(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP SECRET")
    text = document().replace("Payer Ltd", "&xxe;").replace(
        "<Document", f'<!DOCTYPE d [<!ENTITY xxe SYSTEM "file://{secret}">]>\n<Document', 1)
    with pytest.raises(InputFileError, match="DOCTYPE"):
        load(tmp_path, text)


def test_bad_amount_names_the_xml_path(tmp_path: Path) -> None:
    with pytest.raises(InputFileError) as err:
        load(tmp_path, document(amount="25,5O"))
    assert err.value.field == "/Document/BkToCstmrStmt/Stmt/Ntry/Amt"
    assert err.value.line == 14 and "expected digits" in err.value.message


def test_signed_amount_is_refused(tmp_path: Path) -> None:
    # The sign is <CdtDbtInd>'s: '-25.00' with DBIT loaded as +25.00 (minus twice).
    for text in ("-25.00", "+25.00"):
        with pytest.raises(InputFileError) as err:
            load(tmp_path, document(amount=text))
        assert err.value.field == "/Document/BkToCstmrStmt/Stmt/Ntry/Amt"
        assert "without a sign" in err.value.message and "<CdtDbtInd>" in err.value.message


def test_impossible_date_and_broken_xml(tmp_path: Path) -> None:
    with pytest.raises(InputFileError) as err:
        load(tmp_path, document(booked="2026-02-30"))
    assert "impossible date" in err.value.message
    assert err.value.field == "/Document/BkToCstmrStmt/Stmt/Ntry/BookgDt/Dt"
    text = document()
    with pytest.raises(InputFileError) as err:
        load(tmp_path, text[:text.index("</Ntry>")])
    assert "not well-formed XML" in err.value.message and err.value.line


def test_too_many_decimals_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="4 decimals"):
        load(tmp_path, document(amount="1.23456"))


def test_statement_without_entries_and_document_without_statement(tmp_path: Path) -> None:
    text = document()
    empty = text[:text.index("<Ntry>")] + text[text.index("</Ntry>") + 7:]
    result = load(tmp_path, empty)
    assert result.frame.height == 0 and result.statements[0].transactions == 0
    start, end = text.index("<Stmt>"), text.index("</Stmt>") + 7
    with pytest.raises(InputFileError, match="holds no <Stmt>"):
        load(tmp_path, text[:start] + text[end:])


def test_zip_of_statements(tmp_path: Path) -> None:
    archive = tmp_path / "camt.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("day1.xml", document())
        zf.writestr("day2.xml", document(booked="2026-03-03"))
    assert CamtLoader.sniff(archive.read_bytes(), archive) == 95
    result = CamtLoader().load(archive)
    assert result.frame.height == 2 and len(result.statements) == 2
    # the same NtryRef in both members: made-up ids keep rows apart
    assert result.frame["id"].n_unique() == 2
    broken = tmp_path / "broken.zip"
    broken.write_bytes(archive.read_bytes()[:200])
    with pytest.raises(InputFileError, match="zip"):
        CamtLoader().load(broken)


def test_zip_made_on_macos_skips_its_metadata(tmp_path: Path) -> None:
    # Archive Utility adds __MACOSX/._name (AppleDouble, no XML): refused as not XML
    archive = tmp_path / "mac.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("__MACOSX/._stmt.xml", b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X")
        zf.writestr("stmt.xml", document())
        zf.writestr("._stmt.xml", b"\x00\x05\x16\x07")
        zf.writestr("statements/.DS_Store", b"\x00\x00\x00\x01Bud1")  # zip -r of a folder
        zf.writestr("Thumbs.db", b"\xd0\xcf\x11\xe0")
    assert CamtLoader.sniff(archive.read_bytes(), archive) == 95
    result = CamtLoader().load(archive)
    assert result.frame.height == 1 and len(result.statements) == 1
    assert any("skipped system metadata" in n and "__MACOSX/._stmt.xml" in n
               and ", ._stmt.xml" in n and "statements/.DS_Store" in n and "Thumbs.db" in n
               for n in result.notes)
