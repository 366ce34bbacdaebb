"""ISO 20022 cash-management XML: camt.053 statements (also camt.052 reports and
camt.054 notifications), every version from 001.02 on, plain or zipped.

One canonical row per booked entry (``Ntry``).  A batch booking (one entry, several
``TxDtls``) stays one row with the entry amount - that is what the bank account
moved - and its single payments go to :attr:`LoadResult.details`.  Entries that
are not booked (``PDNG``, ``INFO``) are left out and counted in the notes: their
amounts are not in the booked balances and may still change.

XML is parsed without entity expansion, DTDs or network access; a DOCTYPE is
refused outright (camt never needs one, entity tricks always do).
"""

from __future__ import annotations

import re
import zipfile
import zlib
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import ClassVar

import polars as pl
from lxml import etree

from recon.errors import InputFileError
from recon.loaders._bank import (
    Rows,
    ascii_digits,
    best_reference,
    clean,
    iban_or_none,
    join_text,
    make_date,
    money,
    parse_decimal,
    statement,
)
from recon.loaders.base import DETAIL_SCHEMA, Loader, LoadResult, StatementInfo

_NS = re.compile(rb"urn:iso:std:iso:20022:tech:xsd:(camt\.05[234])\.001\.\d\d")
_CONTAINERS = {"BkToCstmrStmt": "Stmt", "BkToCstmrAcctRpt": "Rpt",
               "BkToCstmrDbtCdtNtfctn": "Ntfctn"}
_OPENING = ("OPBD", "PRCD")  # opening booked; else previous closing booked
_CLOSING = ("CLBD",)
_MAX_MEMBER = 512 * 1024 * 1024  # refuse zip members that inflate beyond this
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, NotImplementedError, ValueError, RuntimeError,
               OSError, EOFError)
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_AMOUNT = re.compile(r"\d+(\.\d+)?")  # unsigned: <CdtDbtInd> gives the sign


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False,
                           load_dtd=False, remove_comments=True, remove_pis=True)


@cache
def _path(steps: str, ns: str) -> str:
    """'Acct/Id/IBAN' -> '{ns}Acct/{ns}Id/{ns}IBAN' in the document's namespace."""
    return "/".join(f"{{{ns}}}{s}" if ns else s for s in steps.split("/"))


def _ns(el: etree._Element) -> str:
    tag = el.tag
    return str(tag[1:tag.index("}")]) if tag[0] == "{" else ""


def _find(el: etree._Element | None, steps: str) -> etree._Element | None:
    # An explicit namespace is several times faster in lxml than '{*}'; every
    # element of a camt document shares its root's namespace.
    return None if el is None else el.find(_path(steps, _ns(el)))


def _findall(el: etree._Element, steps: str) -> list[etree._Element]:
    return list(el.findall(_path(steps, _ns(el))))


def _first(el: etree._Element | None, *paths: str) -> etree._Element | None:
    """First of `paths` present under `el` (lxml elements are falsy when childless)."""
    for steps in paths:
        found = _find(el, steps)
        if found is not None:
            return found
    return None


def _text(el: etree._Element | None, *paths: str) -> str | None:
    """Stripped text of the first of `paths` that is present and not empty."""
    for steps in paths:
        found = _find(el, steps)
        if found is not None and found.text and found.text.strip():
            return str(found.text).strip()
    return None


def _local(el: etree._Element) -> str:
    return str(etree.QName(el).localname)


def xml_path(el: etree._Element) -> str:
    """`/Document/BkToCstmrStmt/Stmt[2]/Ntry[5]/Amt` for messages."""
    parts = []
    node: etree._Element | None = el
    while node is not None:
        parent = node.getparent()
        name = _local(node)
        if parent is not None:
            same = [c for c in parent if isinstance(c.tag, str) and _local(c) == name]
            if len(same) > 1:
                name += f"[{same.index(node) + 1}]"
        parts.append(name)
        node = parent
    return "/" + "/".join(reversed(parts))


@dataclass(slots=True)
class _Source:
    """One XML document: the file itself or a member of a zip archive."""

    path: Path
    name: str  # for messages: the file, or 'archive.zip!member.xml'
    data: bytes

    def error(self, message: str, el: etree._Element | None = None, *,
              line: int | None = None) -> InputFileError:
        return InputFileError(
            self.name, message, line=el.sourceline if el is not None else line,
            field=xml_path(el) if el is not None else None)


class CamtLoader(Loader):
    """camt.053 / camt.052 / camt.054 (any 001.xx version), also inside a .zip."""

    format: ClassVar[str] = "camt053"
    extensions: ClassVar[tuple[str, ...]] = (".xml", ".camt", ".053", ".zip")

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        """The camt namespace in the first bytes; for a zip, in its first member."""
        if head.startswith(b"PK\x03\x04"):
            head = _zip_head(path)
        found = _NS.search(head[:8192])
        if found:
            return 95 if found.group(1) == b"camt.053" else 90
        return 0

    def load(self, path: Path, *, profile: str | None = None) -> LoadResult:
        """Parse every Stmt / Rpt / Ntfctn into rows; batch payments into details."""
        reader = _Reader()
        sources, skipped = _sources(path)
        for source in sources:
            reader.read(source)
        if not reader.statements:
            raise InputFileError(path, "no camt document found in the archive")
        frame, id_note = reader.rows.frame(path)
        notes = ([f"skipped system metadata in the archive: {', '.join(skipped)}"]
                 if skipped else []) + reader.notes + ([id_note] if id_note else [])
        return LoadResult(path=path, format=self.format, frame=frame,
                          statements=reader.statements, details=reader.details(frame),
                          profile=profile, encoding=reader.encoding, notes=notes)


def _zip_head(path: Path) -> bytes:
    try:
        with zipfile.ZipFile(path) as zf:
            names = [i for i in zf.infolist() if not i.is_dir() and not _os_metadata(i)]
            if names:
                with zf.open(names[0]) as fh:
                    return fh.read(8192)
    except _ZIP_ERRORS:
        return b""
    return b""


_FOLDER_FILES = (".DS_Store", "Thumbs.db", "desktop.ini")  # Finder's and Explorer's


def _os_metadata(info: zipfile.ZipInfo) -> bool:
    """What an operating system adds beside the files, no XML: macOS's Archive Utility
    __MACOSX/ and ._name, and the folder files zipped with a folder (.DS_Store, ...)."""
    parts = info.filename.split("/")
    return (parts[0] == "__MACOSX" or parts[-1].startswith("._")
            or parts[-1] in _FOLDER_FILES)


def _sources(path: Path) -> tuple[list[_Source], list[str]]:
    """The documents of a file or zip archive, and the system members skipped."""
    data = path.read_bytes()
    if not data.startswith(b"PK\x03\x04"):
        return [_Source(path, str(path), data)], []
    try:
        with zipfile.ZipFile(path) as zf:
            files = [i for i in zf.infolist() if not i.is_dir()]
            members = [i for i in files if not _os_metadata(i)]
            for info in members:
                if info.file_size > _MAX_MEMBER:
                    raise InputFileError(path, f"zip member {info.filename!r} inflates to "
                                         f"{info.file_size} bytes; refused (limit "
                                         f"{_MAX_MEMBER})")
            skipped = [i.filename for i in files if _os_metadata(i)]
            return [_Source(path, f"{path}!{i.filename}", zf.read(i)) for i in members], skipped
    except _ZIP_ERRORS as exc:
        raise InputFileError(path, f"cannot read the zip archive: {exc}") from exc


class _Reader:
    """Accumulates rows, statements and batch details over one or more documents."""

    def __init__(self) -> None:
        self.rows = Rows()
        self.statements: list[StatementInfo] = []
        self.notes: list[str] = []
        self.encoding: str | None = None
        self._details: list[tuple[int, int, str | None, str | None,
                                  dict[str, str | None]]] = []

    def read(self, src: _Source) -> None:
        root = _parse(src)
        message = root[0] if len(root) else None
        # camt.05x.001.01 names the message BkToCstmrStmtV01: drop the suffix.
        kind = re.sub(r"V\d\d$", "", _local(message)) if message is not None else None
        if message is None or kind not in _CONTAINERS:
            raise src.error(f"expected <BkToCstmrStmt>, <BkToCstmrAcctRpt> or "
                            f"<BkToCstmrDbtCdtNtfctn> under <Document>, found "
                            f"{'<' + kind + '>' if kind else 'nothing'}", root)
        blocks = _findall(message, _CONTAINERS[kind])
        if not blocks:
            raise src.error(f"<{kind}> holds no <{_CONTAINERS[kind]}>; expected at "
                            "least one statement", message)
        version = etree.QName(root).namespace or "no namespace"
        self.notes.append(f"{src.name}: {version.rsplit(':', 1)[-1]}, "
                          f"{len(blocks)} <{_CONTAINERS[kind]}>")
        self.encoding = root.getroottree().docinfo.encoding or "UTF-8"
        for block in blocks:
            self.statements.append(self._statement(src, block))

    def _statement(self, src: _Source, stmt: etree._Element) -> StatementInfo:
        account = _text(stmt, "Acct/Id/IBAN", "Acct/Id/Othr/Id", "Acct/Id/PrtryAcct/Id",
                        "Acct/Id/BBAN")
        balances = _balances(src, stmt)
        currency = _text(stmt, "Acct/Ccy") or next(
            (ccy for _, ccy, _ in balances.values() if ccy), None)
        for code, (_, ccy, el) in balances.items():
            if currency and ccy and ccy != currency and code in _OPENING + _CLOSING:
                self.notes.append(f"{src.name} line {el.sourceline}: balance {code} is "
                                  f"in {ccy}, the account in {currency}")
        first, skipped = len(self.rows), 0
        for ntry in _findall(stmt, "Ntry"):
            status = _text(ntry, "Sts/Cd", "Sts")
            if status not in (None, "BOOK"):
                skipped += 1
                continue
            self._entry(src, ntry, account, currency)
        if skipped:
            self.notes.append(f"{src.name}: statement {_text(stmt, 'Id')!r}: {skipped} "
                              "entr(y/ies) not booked (pending or information only) left out")
        opening = next((balances[c][0] for c in _OPENING if c in balances), None)
        closing = next((balances[c][0] for c in _CLOSING if c in balances), None)
        return statement(
            self.rows, first, account=account, currency=currency or next(
                iter(set(self.rows.currency[first:])), None),
            opening=opening, closing=closing, statement_id=_text(stmt, "Id"),
            start=_date(src, _first(stmt, "FrToDt/FrDtTm", "FrToDt/FrDt"))
            or _balance_date(src, stmt, _OPENING[:1]),
            end=_date(src, _first(stmt, "FrToDt/ToDtTm", "FrToDt/ToDt"))
            or _balance_date(src, stmt, _CLOSING))

    def _entry(self, src: _Source, ntry: etree._Element, account: str | None,
               currency: str | None) -> None:
        amt_el = _find(ntry, "Amt")
        amount = _signed(src, amt_el, _find(ntry, "CdtDbtInd"), ntry)
        ccy = amt_el.get("Ccy") if amt_el is not None else None
        valued = _date(src, _first(ntry, "ValDt/Dt", "ValDt/DtTm"))
        booked = _date(src, _first(ntry, "BookgDt/Dt", "BookgDt/DtTm")) or valued
        if booked is None:
            raise src.error("entry without <BookgDt> or <ValDt>; expected a date", ntry)
        txs = _findall(ntry, "NtryDtls/TxDtls")
        batch = _find(ntry, "NtryDtls/Btch")
        stated = _text(batch, "NbOfTxs") or ""
        count = max(len(txs), int(stated) if ascii_digits(stated) else 0)
        head = [("reversal" if _text(ntry, "RvslInd") in ("true", "1") else None),
                _charges(ntry)]
        if count > 1:
            row = len(self.rows)
            for seq, tx in enumerate(txs, 1):
                self._detail(src, row, seq, tx, amount, ccy or currency)
            ref = _text(batch, "PmtInfId", "MsgId")
            party = iban = None
            text = join_text([*head, f"batch of {count} payments", ref,
                              _text(ntry, "AddtlNtryInf")])
        else:
            tx = txs[0] if txs else None
            party, iban, ref, extra = _tx_fields(tx, incoming=amount > 0)
            text = join_text([*head, extra, _text(ntry, "AddtlNtryInf")])
        self.rows.add(
            natural_id=_text(ntry, "AcctSvcrRef", "NtryRef")
            or (_text(txs[0], "Refs/AcctSvcrRef") if len(txs) == 1 else None),
            line=ntry.sourceline or 0, account=account,
            day=booked,
            value_date=valued, amount=amount, currency=ccy or currency,
            counterparty=party, reference=ref, description=text, iban=iban)

    def _detail(self, src: _Source, row: int, seq: int, tx: etree._Element,
                entry_amount: Decimal, currency: str | None) -> None:
        amt_el = _first(tx, "AmtDtls/TxAmt/Amt", "Amt", "AmtDtls/InstdAmt/Amt")
        sign_el = _find(tx, "CdtDbtInd")
        incoming = entry_amount > 0 if sign_el is None else sign_el.text == "CRDT"
        amount = None
        if amt_el is not None:
            amount = _unsigned(src, amt_el)
            amount = amount if incoming else -amount
        party, _, ref, extra = _tx_fields(tx, incoming=incoming)
        self._details.append((row, seq, format(amount, "f") if amount is not None else None,
                              (amt_el.get("Ccy") if amt_el is not None else None) or currency,
                              {"counterparty": party, "reference": ref,
                               "end_to_end_id": _text(tx, "Refs/EndToEndId"),
                               "description": join_text([extra, _charges(tx)])}))

    def details(self, frame: pl.DataFrame) -> pl.DataFrame | None:
        """Batch payments keyed by the final id of their bank row."""
        if not self._details:
            return None
        ids = frame["id"]
        data: dict[str, list[object]] = {name: [] for name in DETAIL_SCHEMA}
        for row, seq, amount, ccy, extra in self._details:
            data["parent_id"].append(ids[row])
            data["seq"].append(seq)
            data["amount"].append(amount)
            data["currency"].append(ccy)
            for key, value in extra.items():
                data[key].append(value)
        out = pl.DataFrame({k: pl.Series(k, v, dtype=pl.String if k == "amount" else dtype)
                            for (k, dtype), v in zip(DETAIL_SCHEMA.items(), data.values(),
                                                     strict=True)})
        return out.with_columns(pl.col("amount").cast(DETAIL_SCHEMA["amount"]))


def _parse(src: _Source) -> etree._Element:
    prolog_end = re.search(rb"<[A-Za-z_]", src.data)
    prolog = src.data[:prolog_end.start() if prolog_end else len(src.data)]
    doctype = re.search(rb"<!DOCTYPE|<!ENTITY", prolog, re.I)
    if doctype:
        raise src.error("the XML has a DOCTYPE (entity declarations); refused: camt "
                        "files never need one and entities can hide an attack",
                        line=src.data.count(b"\n", 0, doctype.start()) + 1)
    try:
        root = etree.fromstring(src.data, _parser())
    except etree.XMLSyntaxError as exc:
        raise src.error(f"not well-formed XML: {exc.msg}", line=exc.lineno) from exc
    if root.getroottree().docinfo.doctype:  # e.g. a UTF-16 prolog the byte scan missed
        raise src.error("the XML has a DOCTYPE; refused: camt files never need one", line=1)
    if _local(root) != "Document" or not _NS.search(
            (etree.QName(root).namespace or "").encode()):
        raise src.error("expected <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:"
                        f"camt.053.001.xx\">, found <{_local(root)}> in namespace "
                        f"{etree.QName(root).namespace!r}", root)
    return root


def _balances(src: _Source, stmt: etree._Element
              ) -> dict[str, tuple[Decimal, str | None, etree._Element]]:
    """Balance type code -> (signed amount, currency, element); first of each code."""
    out: dict[str, tuple[Decimal, str | None, etree._Element]] = {}
    for bal in _findall(stmt, "Bal"):
        code = _text(bal, "Tp/CdOrPrtry/Cd", "Tp/CdOrPrtry/Prtry")
        amt = _find(bal, "Amt")
        if code and code not in out:
            out[code] = (_signed(src, amt, _find(bal, "CdtDbtInd"), bal),
                         amt.get("Ccy") if amt is not None else None, bal)
    return out


def _balance_date(src: _Source, stmt: etree._Element, codes: tuple[str, ...]) -> date | None:
    for bal in _findall(stmt, "Bal"):
        if _text(bal, "Tp/CdOrPrtry/Cd") in codes:
            return _date(src, _first(bal, "Dt/Dt", "Dt/DtTm"))
    return None


def _unsigned(src: _Source, amt: etree._Element) -> Decimal:
    text = (amt.text or "").strip()
    if not _AMOUNT.fullmatch(text):
        sign = (" without a sign (camt gives the sign in <CdtDbtInd>; ask the bank for "
                "a file that follows the standard)" if text.startswith(("-", "+")) else "")
        raise src.error(f"cannot parse amount {text!r}; expected digits with a '.' "
                        f"decimal point, like '1234.56'{sign}", amt)
    try:
        return money(parse_decimal(text, src.name), src.name)
    except InputFileError as exc:  # the XML path is built only for the message
        raise src.error(exc.message, amt) from None


def _signed(src: _Source, amt: etree._Element | None, ind: etree._Element | None,
            parent: etree._Element) -> Decimal:
    """Amount signed by CdtDbtInd (CRDT +, DBIT -)."""
    if amt is None:
        raise src.error("missing <Amt>; expected an amount", parent)
    value = _unsigned(src, amt)
    flag = (ind.text or "").strip() if ind is not None else None
    if flag not in ("CRDT", "DBIT"):
        if flag is None and value == 0:
            return value
        raise src.error(f"credit/debit indicator {flag!r}; expected CRDT or DBIT",
                        ind if ind is not None else parent)
    return value if flag == "CRDT" else -value


def _date(src: _Source, el: etree._Element | None) -> date | None:
    """ISODate or ISODateTime (`2014-01-05`, `2025-07-24T06:10:29.000`) -> date."""
    if el is None or not (el.text or "").strip():
        return None
    text = str(el.text).strip()
    m = _DATE.match(text)
    if not m:
        raise src.error(f"cannot parse date {text!r}; expected YYYY-MM-DD", el)
    try:
        return make_date(int(m.group(1)), int(m.group(2)), int(m.group(3)), src.name,
                         raw=text)
    except InputFileError as exc:
        raise src.error(exc.message, el) from None


def _party(tx: etree._Element | None, role: str) -> str | None:
    """Name of Dbtr/Cdtr (v02-v07) or Dbtr/Pty (v08+), ultimate party as fallback."""
    return _text(tx, f"RltdPties/{role}/Nm", f"RltdPties/{role}/Pty/Nm",
                 f"RltdPties/Ultmt{role}/Nm", f"RltdPties/Ultmt{role}/Pty/Nm")


def _tx_fields(tx: etree._Element | None, *, incoming: bool
               ) -> tuple[str | None, str | None, str | None, str | None]:
    """(counterparty, counterparty IBAN, reference, description) of one TxDtls."""
    if tx is None:
        return None, None, None, None
    role = "Dbtr" if incoming else "Cdtr"
    party = _party(tx, role)
    iban = iban_or_none(_text(tx, f"RltdPties/{role}Acct/Id/IBAN"))
    ustrd = join_text((u.text for u in _findall(tx, "RmtInf/Ustrd")), sep=" ")
    e2e = _text(tx, "Refs/EndToEndId")
    ref = best_reference(incoming, end_to_end=e2e, remittance=ustrd,
                         structured=_text(tx, "RmtInf/Strd/CdtrRefInf/Ref"))
    return party, iban, ref, join_text([ustrd, _text(tx, "AddtlTxInf")])


def _charges(el: etree._Element) -> str | None:
    """'charges 1.50 EUR' from Chrgs (v02: Chrgs/Amt; v04+: Chrgs/Rcrd/Amt)."""
    amounts = [a for a in _findall(el, "Chrgs/Amt") + _findall(el, "Chrgs/Rcrd/Amt")
               if a.text]
    if not amounts:
        return None
    return "charges " + ", ".join(f"{clean(a.text)} {a.get('Ccy') or ''}".strip()
                                  for a in amounts)
