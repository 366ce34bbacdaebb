"""OFX / QFX statements, v1 (SGML) and v2 (XML): bank, credit-card and investment cash.

Why not ofxparse: it keeps no line numbers, stops on the empty elements and missing
FITIDs real banks send (three files of the shared corpus), reads v2 files as ASCII,
and its BeautifulSoup tree grows super-linearly (80k lines: 14 s; 800k lines: more
than 12 minutes).  This module tokenises the file once with a regex instead and
reads the few elements a bank statement needs; ofxparse stays in the test suite
as a second opinion on every corpus file it can read.

Tolerated malformations (each one noted): blank lines or junk before the header,
SGML elements with or without closing tags, empty elements, a missing
``</STMTTRN>`` before the next ``<STMTTRN>``, a wrong or absent ENCODING header.
A file that ends inside a transaction or statement is refused as truncated.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

from recon.errors import InputFileError
from recon.loaders._bank import (
    Rows,
    decode,
    has_reference,
    iban_or_none,
    join_text,
    make_date,
    money,
    parse_decimal,
    statement,
)
from recon.loaders.base import Loader, LoadResult, StatementInfo

_TOKEN = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9_.]*)\s*(/?)>|<!--.*?-->|<![^>]*>|<\?.*?\?>", re.S)
_CLOSER = re.compile(r"</\s*([A-Za-z][A-Za-z0-9_.]*)\s*>")
_OFX_START = re.compile(rb"<OFX>", re.I)
_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_STATEMENTS = ("STMTRS", "CCSTMTRS", "INVSTMTRS")
#: Aggregates whose end must be in the file, or it was cut short.
_MUST_CLOSE = frozenset({"STMTTRN", "STMTRS", "CCSTMTRS", "INVSTMTRS", "BANKTRANLIST",
                         "INVTRANLIST", "INVBANKTRAN"})
#: Where the aggregates a statement needs may sit: opening one closes deeper ones.
_PARENTS = {
    "STMTTRN": frozenset({"BANKTRANLIST", "INVBANKTRAN"}),
    "BANKTRANLIST": frozenset({"STMTRS", "CCSTMTRS"}),
    "LEDGERBAL": frozenset({"STMTRS", "CCSTMTRS"}),
    "AVAILBAL": frozenset({"STMTRS", "CCSTMTRS"}),
    "INVTRANLIST": frozenset({"INVSTMTRS"}),
    "INVBANKTRAN": frozenset({"INVTRANLIST"}),
    "STMTRS": frozenset({"STMTTRNRS"}),
    "CCSTMTRS": frozenset({"CCSTMTTRNRS"}),
    "INVSTMTRS": frozenset({"INVSTMTTRNRS"}),
}
_AGGREGATES = frozenset(_PARENTS) | {
    "OFX", "STMTTRNRS", "CCSTMTTRNRS", "INVSTMTTRNRS", "BANKACCTFROM", "CCACCTFROM",
    "INVACCTFROM", "BANKACCTTO", "CCACCTTO", "CURRENCY", "ORIGCURRENCY", "PAYEE"}
#: Elements the OFX specification defines as holding a value, never other elements: one
#: closed somewhere (`<NAME>Foo</NAME>`) is still a value where it is left open.
_LEAVES = frozenset({
    "CODE", "SEVERITY", "MESSAGE", "DTSERVER", "LANGUAGE", "DTPROFUP", "DTACCTUP", "ORG",
    "FID", "SESSCOOKIE", "INTU.BID", "INTU.USERID", "TRNUID", "CLTCOOKIE", "CURDEF",
    "DTSTART", "DTEND", "BALAMT", "DTASOF", "MKTGINFO", "BANKID", "BRANCHID", "ACCTID",
    "ACCTTYPE", "ACCTKEY", "TRNTYPE", "DTPOSTED", "DTUSER", "DTAVAIL", "TRNAMT", "FITID",
    "CORRECTFITID", "CORRECTACTION", "SRVRTID", "CHECKNUM", "REFNUM", "SIC", "PAYEEID",
    "NAME", "EXTDNAME", "MEMO", "INV401KSOURCE", "CURRATE", "CURSYM", "SUBACCTFUND",
    "ADDR1", "ADDR2", "ADDR3", "CITY", "STATE", "POSTALCODE", "COUNTRY", "PHONE",
})
_CHARSETS = {"1252": "cp1252", "8859-1": "latin-1", "ISO-8859-1": "latin-1", "NONE": None}


@dataclass(slots=True)
class Node:
    """One OFX element: its name, line, text (leaf elements) and children."""

    name: str
    line: int
    text: str | None = None
    children: list[Node] = field(default_factory=list)

    def find(self, name: str) -> Node | None:
        """First direct child called `name`."""
        for child in self.children:
            if child.name == name:
                return child
        return None

    def value(self, *names: str) -> str | None:
        """Text of the element at the child path `names`, None when absent or empty."""
        node: Node | None = self
        for name in names:
            node = node.find(name) if node else None
        return node.text if node and node.text else None

    def walk(self, names: tuple[str, ...]) -> list[Node]:
        """Every descendant whose name is in `names`, in document order (no nesting)."""
        out: list[Node] = []
        stack = [self]
        while stack:
            node = stack.pop()
            for child in reversed(node.children):
                if child.name in names:
                    out.append(child)
                else:
                    stack.append(child)
        out.sort(key=lambda n: n.line)
        return out


class OfxLoader(Loader):
    """OFX 1.x SGML and 2.x XML (also .qfx/.qbo) bank and credit-card statements."""

    format: ClassVar[str] = "ofx"
    extensions: ClassVar[tuple[str, ...]] = (".ofx", ".qfx", ".qbo")

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        """OFXHEADER or an <OFX> element near the start."""
        top = head[:4096].lstrip().upper()
        if top.startswith(b"OFXHEADER") or b"<?OFX" in top:
            return 95
        if _OFX_START.search(head[:4096]):
            return 85
        return super().sniff(head, path)

    def load(self, path: Path, *, profile: str | None = None) -> LoadResult:
        """Parse every STMTRS / CCSTMTRS / INVSTMTRS block into canonical rows."""
        data = path.read_bytes()
        text, encoding, body_line, notes = _decode(data, path)
        root = parse_tree(text, path, body_line, notes)
        rows = Rows()
        statements = [_statement(node, rows, path, notes)
                      for node in root.walk(_STATEMENTS)]
        if not statements:
            raise InputFileError(
                path, "no statement in the OFX file; expected <STMTRS>, <CCSTMTRS> "
                "or <INVSTMTRS>", hint="was it exported as a statement download?")
        frame, id_note = rows.frame(path)
        if id_note:
            notes.append(id_note)
        return LoadResult(path=path, format=self.format, frame=frame, statements=statements,
                          profile=profile, encoding=encoding, notes=notes)


def _decode(data: bytes, path: Path) -> tuple[str, str, int, list[str]]:
    """Decode with the header's ENCODING/CHARSET; return text, encoding, line of <OFX>."""
    start = _OFX_START.search(data)
    if start is None:
        raise InputFileError(path, "no <OFX> element found; this is not an OFX file")
    header = data[:start.start()].decode("latin-1")
    declared = _declared_encoding(header)
    text, encoding, note = decode(data, path, declared)
    notes = [note] if note else []
    if header.lstrip("\r\n\t ") != header.lstrip("\t "):
        notes.append("blank lines before the OFX header were skipped")
    return text, encoding, data.count(b"\n", 0, start.start()) + 1, notes


def _declared_encoding(header: str) -> str | None:
    xml = re.search(r"encoding\s*=\s*[\"']([\w.:-]+)[\"']", header, re.I)
    if xml:
        name = xml.group(1).upper()
        return "ascii" if name in ("ASCII", "USASCII", "US-ASCII") else name.lower()
    fields = dict(re.findall(r"^\s*([A-Z]+)\s*:\s*(\S*)\s*$", header.upper(), re.M))
    if fields.get("ENCODING") in ("UTF-8", "UNICODE"):
        return "utf-8"
    if fields.get("ENCODING") == "USASCII":
        charset = fields.get("CHARSET", "1252")
        return _CHARSETS.get(charset, f"cp{charset}" if charset.isdigit() else None)
    return None


def parse_tree(text: str, path: Path, body_line: int, notes: list[str]) -> Node:
    """Tokenise OFX text into a tree, closing what SGML leaves open.

    Aggregates are the names that appear as a closing tag somewhere, plus the
    ones a statement needs (an SGML file may omit every ``</STMTTRN>``), but never
    the elements the specification gives a value (_LEAVES).  Other names are SGML
    elements: their value runs to the next tag.  Opening an
    aggregate closes open ones it cannot live in (a ``<LEDGERBAL>`` ends the
    ``<BANKTRANLIST>`` whose end tag is missing), like an HTML parser does.
    """
    start = re.search(r"<OFX>", text, re.I)
    pos = start.start() if start else 0
    aggregates = (_AGGREGATES | {m.upper() for m in _CLOSER.findall(text, pos)}) - _LEAVES
    root = Node("#document", 0)
    stack = [root]
    leaf: Node | None = None
    line, last = body_line, pos
    repaired: list[str] = []
    for m in _TOKEN.finditer(text, pos):
        chunk = text[last:m.start()]
        tag_line = line + chunk.count("\n")
        line, last = tag_line + m.group(0).count("\n"), m.end()
        _add_text(leaf or stack[-1], chunk)
        if m.group(2) is None:
            continue  # comment, DOCTYPE, processing instruction
        name, leaf = m.group(2).upper(), None
        if m.group(1):
            if name not in _LEAVES:  # a value's end tag ends nothing open
                _close(stack, name, tag_line, repaired)
            continue
        _make_room(stack, name, tag_line, repaired)
        node = Node(name, tag_line)
        stack[-1].children.append(node)
        if m.group(3):
            continue  # <ELEMENT/>
        if name in aggregates:
            stack.append(node)
        else:
            leaf = node
    _check_end(stack, path, notes)
    if repaired:
        notes.append(f"{len(repaired)} tag nesting problem(s) repaired, first: {repaired[0]}")
    return root


def _add_text(node: Node, chunk: str) -> None:
    value = chunk.strip()
    if value:
        value = html.unescape(value)
        node.text = value if node.text is None else f"{node.text} {value}"


def _make_room(stack: list[Node], name: str, line: int, repaired: list[str]) -> None:
    """Close what must end before `name` opens."""
    top = stack[-1]
    if len(stack) > 1 and top.text and not top.children:
        stack.pop()  # an element with a value (closing tag optional), ended by this tag
    parents = _PARENTS.get(name)
    if parents is None and any(n.name == name for n in stack):
        parents = frozenset(n.name for n in stack[:_last(stack, name)])
    if parents and any(n.name in parents for n in stack):
        while stack[-1].name not in parents:
            closed = stack.pop()
            repaired.append(f"<{closed.name}> (line {closed.line}) had no end tag "
                            f"before <{name}> at line {line}")


def _last(stack: list[Node], name: str) -> int:
    return max(i for i, n in enumerate(stack) if n.name == name)


def _close(stack: list[Node], name: str, line: int, repaired: list[str]) -> None:
    """Pop up to `name`; closing tags of elements never opened are ignored (noted)."""
    for i in range(len(stack) - 1, 0, -1):
        if stack[i].name == name:
            repaired.extend(
                f"<{n.name}> (line {n.line}) had no end tag before </{name}> at line {line}"
                for n in stack[i + 1:] if n.children)
            del stack[i:]
            return
    repaired.append(f"</{name}> at line {line} closes nothing; ignored")


def _check_end(stack: list[Node], path: Path, notes: list[str]) -> None:
    cut = [n for n in stack[1:] if n.name in _MUST_CLOSE]
    if cut:
        inner = cut[-1]
        raise InputFileError(
            path, f"the file ends inside <{inner.name}> opened at line {inner.line}; "
            f"expected </{inner.name}>", line=inner.line,
            hint="the file looks truncated: download it again")
    if len(stack) > 1:
        notes.append("missing closing tag(s) at the end: "
                     + ", ".join(f"</{n.name}>" for n in reversed(stack[1:])))


def _statement(node: Node, rows: Rows, path: Path, notes: list[str]) -> StatementInfo:
    """Rows and summary of one STMTRS / CCSTMTRS / INVSTMTRS block."""
    account = (node.value("BANKACCTFROM", "ACCTID") or node.value("CCACCTFROM", "ACCTID")
               or node.value("INVACCTFROM", "ACCTID"))
    curdef = node.value("CURDEF")
    first = len(rows)
    for txn in node.walk(("STMTTRN",)):
        _transaction(txn, rows, path, account, curdef)
    lists = node.walk(("BANKTRANLIST", "INVTRANLIST")) or [node]
    _note_skipped(node, lists, notes)
    currencies = set(rows.currency[first:])
    currency = curdef or (currencies.pop() if len(currencies) == 1 else None)
    return statement(
        rows, first, account=account, currency=currency, opening=None,
        closing=_balance(node, path), statement_id=None,
        start=min(_dates(lists, "DTSTART", path), default=None),
        end=max(_dates(lists, "DTEND", path), default=None))


def _note_skipped(node: Node, lists: list[Node], notes: list[str]) -> None:
    if node.name == "INVSTMTRS":
        other = sum(1 for t in lists for c in t.children
                    if c.name not in ("DTSTART", "DTEND", "INVBANKTRAN"))
        if other:
            notes.append(f"statement at line {node.line}: {other} securities "
                         "transaction(s) (buy, sell, income...) are not bank lines; "
                         "only the cash lines (INVBANKTRAN) were loaded")


def _transaction(txn: Node, rows: Rows, path: Path, account: str | None,
                 curdef: str | None) -> None:
    amount_text = txn.value("TRNAMT")
    if amount_text is None:
        raise InputFileError(path, "transaction without <TRNAMT>; every <STMTTRN> needs "
                             "an amount", line=txn.line, field="TRNAMT")
    amount = money(_amount(amount_text, path, _line(txn, "TRNAMT")), path,
                   line=_line(txn, "TRNAMT"), field="TRNAMT")
    posted = txn.value("DTPOSTED")
    if posted is None:
        raise InputFileError(path, "transaction without <DTPOSTED>; every <STMTTRN> "
                             "needs a posting date", line=txn.line, field="DTPOSTED")
    currency = txn.value("CURRENCY", "CURSYM") or curdef
    if currency is None:
        raise InputFileError(path, "no currency: the statement has no <CURDEF> and the "
                             "transaction no <CURRENCY>", line=txn.line, field="CURDEF")
    kind = (txn.value("TRNTYPE") or "").upper()
    name = txn.value("NAME") or txn.value("PAYEE", "NAME")
    memo = txn.value("MEMO")
    check = txn.value("CHECKNUM")
    refnum = txn.value("REFNUM")
    reference = (check if kind == "CHECK" and has_reference(check) else
                 next((r for r in (refnum, check, memo) if has_reference(r)), None))
    rows.add(
        natural_id=txn.value("FITID"), line=txn.line, account=account,
        day=_date(posted, path, _line(txn, "DTPOSTED"), "DTPOSTED"),
        value_date=_optional_date(txn, "DTAVAIL", path), amount=amount,
        currency=currency.upper(), counterparty=name, reference=reference,
        description=join_text([name, txn.value("EXTDNAME"), memo]),
        iban=iban_or_none(txn.value("BANKACCTTO", "ACCTID")))


def _line(node: Node, *names: str) -> int:
    for name in names:
        child = node.find(name)
        if child:
            return child.line
    return node.line


def _amount(text: str, path: Path, line: int) -> Decimal:
    """OFX amounts: `-80`, `+0001500.0000`, `12,50`; `1,234.56` tolerated."""
    raw = text.replace(" ", "")
    if "," in raw and "." in raw:
        thousands = "," if raw.rfind(",") < raw.rfind(".") else "."
        raw = raw.replace(thousands, "")
    return parse_decimal(raw, path, line=line, field="TRNAMT")


def _date(text: str, path: Path, line: int, name: str) -> date:
    """OFX datetime `YYYYMMDD[HHMMSS[.XXX]][[offset:TZ]]`: the bank's local date."""
    m = _DATE.match(text.strip())
    if not m:
        raise InputFileError(path, f"cannot parse date {text!r}; expected YYYYMMDD[HHMMSS]",
                             line=line, field=name)
    return make_date(int(m.group(1)), int(m.group(2)), int(m.group(3)), path, raw=text,
                     line=line, field=name)


def _optional_date(node: Node, name: str, path: Path) -> date | None:
    text = node.value(name)
    return _date(text, path, _line(node, name), name) if text else None


def _dates(lists: list[Node], name: str, path: Path) -> list[date]:
    return [_date(t, path, _line(n, name), name) for n in lists if (t := n.value(name))]


def _balance(node: Node, path: Path) -> Decimal | None:
    """LEDGERBAL/BALAMT: the closing (ledger) balance; None when absent or empty."""
    ledger = node.find("LEDGERBAL")
    text = ledger.value("BALAMT") if ledger else None
    if ledger is None or text is None:
        return None
    line = _line(ledger, "BALAMT")
    return money(_amount(text, path, line), path, line=line, field="BALAMT")
