"""The same month delivered as OFX, MT940, CAMT.053 and CSV loads to the same canonical rows."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from recon.loaders import load_file

MONTH = [  # (date, amount, counterparty, reference)
    ("2026-03-02", "1250.00", "Mueller GmbH", "INV202600123"),
    ("2026-03-05", "-89.90", "Stadtwerke", "SW778812"),
    ("2026-03-09", "420.50", "Acme Ltd", "INV202600124"),
    ("2026-03-16", "-1500.00", "Vermieter AG", "MIETE0326"),
    ("2026-03-30", "77.10", "Kim Ltd", "INV202600125"),
]
ACCOUNT = "DE89370400440532013000"
OPENING, CLOSING = Decimal("1000.00"), Decimal("1000.00") + sum(Decimal(a) for _, a, _, _ in MONTH)


def csv_file(tmp: Path) -> Path:
    lines = ["id,date,amount,currency,counterparty,reference,description,account"]
    lines += [f"T{i},{d},{a},EUR,{c},{r},,{ACCOUNT}" for i, (d, a, c, r) in enumerate(MONTH)]
    p = tmp / "month.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def ofx_file(tmp: Path) -> Path:
    txns = "".join(
        f"<STMTTRN><TRNTYPE>{'CREDIT' if a[0] != '-' else 'DEBIT'}</TRNTYPE>"
        f"<DTPOSTED>{d.replace('-', '')}</DTPOSTED><TRNAMT>{a}</TRNAMT><FITID>T{i}</FITID>"
        f"<NAME>{c}</NAME><MEMO>{r}</MEMO></STMTTRN>\n"
        for i, (d, a, c, r) in enumerate(MONTH)
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<?OFX OFXHEADER="200" VERSION="220" '
        'SECURITY="NONE" OLDFILEUID="NONE" NEWFILEUID="NONE"?>\n<OFX><BANKMSGSRSV1><STMTTRNRS>'
        "<TRNUID>1</TRNUID><STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS><STMTRS>"
        f"<CURDEF>EUR</CURDEF><BANKACCTFROM><BANKID>37040044</BANKID><ACCTID>{ACCOUNT}</ACCTID>"
        "<ACCTTYPE>CHECKING</ACCTTYPE></BANKACCTFROM><BANKTRANLIST><DTSTART>20260301</DTSTART>"
        f"<DTEND>20260331</DTEND>\n{txns}</BANKTRANLIST><LEDGERBAL><BALAMT>{CLOSING}</BALAMT>"
        "<DTASOF>20260331</DTASOF></LEDGERBAL></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>\n"
    )
    p = tmp / "month.ofx"
    p.write_text(body)
    return p


def mt940_file(tmp: Path) -> Path:
    def amt(x: Decimal) -> str:
        return f"{abs(x):.2f}".replace(".", ",")

    lines = [":20:STMT0326", f":25:{ACCOUNT}", ":28C:3/1", f":60F:C260301EUR{amt(OPENING)}"]
    for i, (d, a, c, r) in enumerate(MONTH):
        x = Decimal(a)
        ymd = d[2:].replace("-", "")
        lines.append(f":61:{ymd}{ymd[2:]}{'C' if x > 0 else 'D'}{amt(x)}NTRFT{i}//T{i}")
        lines.append(f":86:/NAME/{c}/REMI/{r}")
    lines.append(f":62F:C260331EUR{amt(CLOSING)}")
    p = tmp / "month.sta"
    p.write_text("\n".join(lines) + "\n-\n")
    return p


def camt_file(tmp: Path) -> Path:
    entries = []
    for i, (d, a, c, r) in enumerate(MONTH):
        x = Decimal(a)
        party = "Dbtr" if x > 0 else "Cdtr"
        entries.append(
            f"<Ntry><NtryRef>T{i}</NtryRef><Amt Ccy=\"EUR\">{abs(x):.2f}</Amt>"
            f"<CdtDbtInd>{'CRDT' if x > 0 else 'DBIT'}</CdtDbtInd><Sts>BOOK</Sts>"
            f"<BookgDt><Dt>{d}</Dt></BookgDt><ValDt><Dt>{d}</Dt></ValDt>"
            f"<AcctSvcrRef>T{i}</AcctSvcrRef><NtryDtls><TxDtls><Refs><EndToEndId>{r}</EndToEndId>"
            f"</Refs><RltdPties><{party}><Nm>{c}</Nm></{party}></RltdPties>"
            f"<RmtInf><Ustrd>{r}</Ustrd></RmtInf></TxDtls></NtryDtls></Ntry>"
        )
    bal = "".join(
        f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp><Amt Ccy=\"EUR\">{v:.2f}</Amt>"
        f"<CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>{day}</Dt></Dt></Bal>"
        for code, v, day in (("OPBD", OPENING, "2026-03-01"), ("CLBD", CLOSING, "2026-03-31"))
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="urn:iso:std:iso:20022:tech:'
        'xsd:camt.053.001.02"><BkToCstmrStmt><GrpHdr><MsgId>M1</MsgId><CreDtTm>2026-04-01T06:00:00'
        f"</CreDtTm></GrpHdr><Stmt><Id>S0326</Id><CreDtTm>2026-04-01T06:00:00</CreDtTm><Acct><Id>"
        f"<IBAN>{ACCOUNT}</IBAN></Id><Ccy>EUR</Ccy></Acct>{bal}{''.join(entries)}</Stmt>"
        "</BkToCstmrStmt></Document>\n"
    )
    p = tmp / "month.xml"
    p.write_text(body)
    return p


def core(path: Path) -> pl.DataFrame:
    frame = load_file(path).frame
    return frame.select(
        "date", pl.col("amount").cast(pl.String), "currency",
        pl.col("counterparty").str.to_lowercase().str.strip_chars(),
    ).sort("date", "amount")


@pytest.mark.parametrize("make", [ofx_file, mt940_file, camt_file], ids=["ofx", "mt940", "camt053"])
def test_same_month_same_rows(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    expected = core(csv_file(tmp_path))
    got = core(make(tmp_path))
    assert got.to_dicts() == expected.to_dicts()
    refs = " ".join(str(v) for v in load_file(make(tmp_path)).frame["reference"].to_list())
    for _, _, _, r in MONTH:
        assert r in refs
