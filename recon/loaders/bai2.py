"""BAI2 (Cash Management Balance Reporting, version 2) files.

The record grammar is small, so records are read here: the ``bai2`` library needs
~80 microseconds a record (80 s for a million lines), keeps no line numbers,
merges ``03`` continuations wrongly (moov sample2) and fails on accounts without
summaries.  The library's type-code table still decides what a code means
(credit, debit, its description); codes it does not know fall back to the BAI
ranges 100-399 credit, 400-699 debit.

Framing that real files need (each counted in the notes): several records on one
physical line (``.../   02,...``), a ``/`` inside a text field, a line without a
record code (folded into the text of the record before it), ``88:`` written for
``88,``.  Control totals and record counts of the ``49``, ``98`` and ``99`` trailers
are checked; a file that does not add up is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import ClassVar

from bai2.constants import TypeCodes, TypeCodeTransaction

from recon.currencies import CURRENCY_EXPONENTS
from recon.errors import InputFileError
from recon.loaders._bank import (
    Rows,
    ascii_digits,
    best_reference,
    clean,
    decode,
    has_reference,
    join_text,
    money,
    statement,
    yymmdd,
)
from recon.loaders.base import Loader, LoadResult, StatementInfo

_CODES = ("01", "02", "03", "16", "49", "88", "98", "99")
_START = re.compile(r"^\s*(\d\d)[,:]")
_SPLIT = re.compile(r"(?<=/)\s+(?=(?:01|02|03|16|49|88|98|99),)")
_PADDING = re.compile(r"^[9\s]*$")
_KEYED = re.compile(r"^\s*([A-Z][A-Z .]{1,20}?)\s*:=?\s*(.*)$")
_INCOMING_NAME = ("DBNM", "ORG", "ORIG", "ORIGINATOR", "SENDER NAME")
_OUTGOING_NAME = ("CRNM", "BNF NAME", "BNF", "BENEFICIARY")
_REMITTANCE = ("REMI", "OBI", "RMT", "REMITTANCE")


@dataclass(slots=True)
class _Record:
    """One logical record: code, first line, and its pieces (record + continuations)."""

    code: str
    line: int
    pieces: list[str]

    def fields(self) -> list[str]:
        """Fields across continuations: a '/'-ended piece continues with a new field."""
        text = ""
        for i, piece in enumerate(self.pieces):
            p = piece.rstrip()
            ended = p.endswith("/")
            text += p[:-1] if ended else p
            if i + 1 < len(self.pieces):
                text += "," if ended else " "
        return [f.strip() for f in text.split(",")]


@dataclass(slots=True)
class _Account:
    number: str
    currency: str
    line: int
    opening: Decimal | None = None
    closing: Decimal | None = None
    total: int = 0  # algebraic sum of the amounts in its 03 and 16 records
    records: int = 0
    first_row: int = 0


@dataclass(slots=True)
class _State:
    """Where the reader is: the open group and account, running totals."""

    as_of: date | None = None
    currency: str = "USD"
    group_line: int = 0
    account: _Account | None = None
    group_total: int = 0
    group_accounts: int = 0
    group_records: int = 0
    file_total: int = 0
    file_groups: int = 0
    file_records: int = 0
    statements: list[StatementInfo] = field(default_factory=list)


class Bai2Loader(Loader):
    """BAI2 balance and transaction reports (groups, accounts, 16 detail records)."""

    format: ClassVar[str] = "bai2"
    extensions: ClassVar[tuple[str, ...]] = (".bai", ".bai2")

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        """A '01,' file header followed by a '02,' group header."""
        text = head.decode("latin-1").lstrip()
        if re.match(r"01,[^\n]*\n?\s*02,", text) or re.match(r"01,.*/\s*02,", text):
            return 95
        if text.startswith("01,"):
            return 80
        lines = [ln for ln in text.splitlines()[:20] if ln.strip()]
        if lines and all(re.match(r"\d\d[,:]", ln) for ln in lines) and "/" in text:
            return 25  # records, but no file header: the loader says what is wrong
        return super().sniff(head, path)

    def load(self, path: Path, *, profile: str | None = None) -> LoadResult:
        """Read the records, check every trailer total, build one row per 16 record."""
        text, encoding, note = decode(path.read_bytes(), path)
        notes = [note] if note else []
        records = _frame(text, path, notes)
        rows = Rows()
        state = _State()
        for rec in records:
            _HANDLERS[rec.code](rec, state, rows, path, notes)
        if records[-1].code != "99":
            raise InputFileError(path, "the file ends without its trailer record (99)",
                                 line=records[-1].line, hint="the file looks truncated")
        frame, id_note = rows.frame(path)
        if id_note:
            notes.append(id_note)
        return LoadResult(path=path, format=self.format, frame=frame,
                          statements=state.statements, profile=profile,
                          encoding=encoding, notes=notes)


def _frame(text: str, path: Path, notes: list[str]) -> list[_Record]:
    """Physical lines -> logical records with their first line numbers."""
    records: list[_Record] = []
    split = folded = padding = 0
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        pieces = _SPLIT.split(line)
        split += len(pieces) - 1
        for piece in pieces:
            m = _START.match(piece)
            code = m.group(1) if m else None
            if code == "88" and records:
                records[-1].pieces.append(piece[m.end():])  # type: ignore[union-attr]
            elif code in _CODES:
                records.append(_Record(code, number, [piece[m.end():]]))  # type: ignore[union-attr]
            elif records and _PADDING.match(piece):
                padding += 1
            elif records and code is None and records[-1].code == "16":
                records[-1].pieces[-1] += " " + piece.strip()
                folded += 1
            else:
                raise InputFileError(
                    path, f"unknown record {piece[:20]!r}; expected a BAI2 record code "
                    f"({', '.join(_CODES)}) followed by ','", line=number)
    if not records:
        raise InputFileError(path, "no BAI2 records in the file")
    if records[0].code != "01":
        raise InputFileError(path, f"the file starts with record {records[0].code}; "
                             "expected the file header record 01", line=records[0].line)
    for count, what in ((split, "physical lines carried several records"),
                        (folded, "lines without a record code were read as text of the "
                         "16 record before them"),
                        (padding, "padding lines skipped")):
        if count:
            notes.append(f"{count} {what}")
    return records


def _file_header(rec: _Record, state: _State, rows: Rows, path: Path,
                 notes: list[str]) -> None:
    f = rec.fields()
    if len(f) > 7 and f[7] not in ("2", ""):
        raise InputFileError(path, f"BAI version {f[7]!r}; only version 2 is supported",
                             line=rec.line, field="version")
    state.file_records = 1


def _group_header(rec: _Record, state: _State, rows: Rows, path: Path,
                  notes: list[str]) -> None:
    f = rec.fields() + [""] * 7
    if not f[3]:
        raise InputFileError(path, "group header (02) without an as-of date; expected "
                             "YYMMDD", line=rec.line, field="as-of date")
    state.as_of = yymmdd(f[3], path, line=rec.line, field="as-of date")
    state.currency = f[5] or "USD"
    note = "group(s) without currency: read as USD, the BAI2 default"
    if not f[5] and note not in notes:
        notes.append(note)
    state.group_line, state.group_total, state.group_accounts = rec.line, 0, 0
    state.group_records = len(rec.pieces)


def _account_header(rec: _Record, state: _State, rows: Rows, path: Path,
                    notes: list[str]) -> None:
    if state.as_of is None:
        raise InputFileError(path, "account record (03) outside a group; expected a "
                             "group header (02) first", line=rec.line)
    tokens = _tokens(rec)
    number, currency = (tokens[0][0], tokens[1][0]) if len(tokens) > 1 else (tokens[0][0], "")
    account = _Account(number, currency or state.currency, rec.line, first_row=len(rows),
                       records=len(rec.pieces))
    for code, amount in _summaries(tokens[2:], rec, path):
        account.total += amount
        if code in ("010", "015"):
            value = _amount(amount, account.currency)
            if code == "010":
                account.opening = value
            else:
                account.closing = value
    state.account = account


def _tokens(rec: _Record) -> list[tuple[str, bool]]:
    """Fields of all pieces, each flagged when it is the last field of its piece."""
    out: list[tuple[str, bool]] = []
    for piece in rec.pieces:
        p = piece.strip()
        fields = (p[:-1] if p.endswith("/") else p).split(",")
        out.extend((f.strip(), i == len(fields) - 1) for i, f in enumerate(fields))
    return out


def _summaries(tokens: list[tuple[str, bool]], rec: _Record, path: Path
               ) -> list[tuple[str, int]]:
    """(type code, amount in minor units) of an 03 record's summary groups.

    A group may run over into the next continuation; an empty field that ends a
    piece where a group would start is the extra comma some banks write before '/'.
    """
    f = [t for t, _ in tokens]
    out: list[tuple[str, int]] = []
    i = 0
    while i < len(f):
        if not f[i] and (tokens[i][1] or not any(f[i:])):
            i += 1
            continue
        code, amount = f[i], f[i + 1] if i + 1 < len(f) else ""
        funds = f[i + 3] if i + 3 < len(f) else ""
        out.append((code, _integer(amount, rec, path, f"summary {code or '?'} amount")))
        i += 4 + _availability_width(funds, f[i + 4:], rec, path)
    return out


def _availability_width(funds: str, rest: list[str], rec: _Record, path: Path) -> int:
    """How many fields the funds type's availability data takes."""
    if funds == "S":
        return 3
    if funds == "V":
        return 2
    if funds == "D":
        count = _integer(rest[0] if rest else "", rec, path, "availability count")
        return 1 + 2 * count
    if funds not in ("", "Z", "0", "1", "2"):
        raise InputFileError(path, f"funds type {funds!r}; expected Z, 0, 1, 2, S, V or D",
                             line=rec.line, field="funds type")
    return 0


def _detail(rec: _Record, state: _State, rows: Rows, path: Path, notes: list[str]) -> None:
    account = state.account
    if account is None or state.as_of is None:
        raise InputFileError(path, "transaction record (16) outside an account; expected "
                             "an account record (03) first", line=rec.line)
    head, used = _fixed_fields(rec, path)
    first = [*head.split(",", 3), "", "", ""]
    code, funds = first[0].strip(), first[2].strip()
    amount = _integer(first[1], rec, path, "amount")
    account.total += amount
    account.records += len(rec.pieces)
    incoming = _direction(code, rec, path)
    if incoming is None:
        notes.append(f"line {rec.line}: type {code} carries no money movement; skipped")
        return
    rest = first[3]
    width = _availability_width(funds, rest.split(","), rec, path)
    parts = rest.split(",", width + 2)
    value_date = None
    if funds == "V" and parts and parts[0].strip():
        value_date = yymmdd(parts[0].strip(), path, line=rec.line, field="value date")
    parts = [*parts[width:], "", "", ""]
    bank, customer = parts[0].strip().rstrip("/"), parts[1].strip().rstrip("/")
    raw_text = parts[2].rstrip()
    text = clean(raw_text[:-1] if raw_text.endswith("/") else raw_text)
    extra = _keyed(rec.pieces[used:])
    signed = _amount(amount, account.currency)
    party_keys = _INCOMING_NAME if incoming else _OUTGOING_NAME
    rows.add(
        natural_id=bank if has_reference(bank) else None, line=rec.line,
        account=account.number, day=state.as_of, value_date=value_date,
        amount=money(signed if incoming else -signed, path, line=rec.line, field="amount"),
        currency=account.currency,
        counterparty=next((extra[k] for k in party_keys if extra.get(k)), None),
        reference=best_reference(incoming, end_to_end=extra.get("EREF") or customer,
                                 remittance=next((extra[k] for k in _REMITTANCE
                                                  if extra.get(k)), None)),
        description=join_text([_describe(code), text, *(p.rstrip().rstrip("/").rstrip(",")
                                                        for p in rec.pieces[used:])]))


def _fixed_fields(rec: _Record, path: Path) -> tuple[str, int]:
    """The text of the pieces that hold a 16 record's fields up to the customer
    reference (the 88 records that continue it may start inside them), and how many
    pieces that is; what follows in the last of them is the text field."""
    head = ""
    for used, piece in enumerate(rec.pieces, 1):
        raw = piece.rstrip()
        fields = (head + raw).rstrip("/").split(",")
        if used == len(rec.pieces) or _fixed_done([f.strip() for f in fields], rec, path):
            return head + raw, used
        # a continuation starts the next field: only the text field runs on across 88s
        head += (raw[:-1] if raw.endswith("/") else raw) + ","
    return head, len(rec.pieces)


def _fixed_done(fields: list[str], rec: _Record, path: Path) -> bool:
    """Whether `fields` reach the customer reference: type code, amount, funds type,
    its availability data, bank reference, customer reference."""
    if len(fields) < 3 or (fields[2] == "D" and len(fields) < 4):
        return False
    return len(fields) >= 5 + _availability_width(fields[2], fields[3:], rec, path)


def _keyed(pieces: list[str]) -> dict[str, str]:
    """`EREF: 1111`, `BNF NAME:=ACME` continuation lines -> {'EREF': '1111', ...}."""
    out: dict[str, str] = {}
    for piece in pieces:
        m = _KEYED.match(piece.rstrip("/"))
        if m and m.group(2).strip():
            out.setdefault(m.group(1).strip(), m.group(2).strip())
    return out


def _direction(code: str, rec: _Record, path: Path) -> bool | None:
    """True for a credit, False for a debit, None for non-monetary information."""
    known = TypeCodes.get(code)
    if known is not None and known.transaction is not None:
        if known.transaction == TypeCodeTransaction.misc:
            return None
        return bool(known.transaction == TypeCodeTransaction.credit)
    if ascii_digits(code) and 100 <= int(code) <= 399:
        return True
    if ascii_digits(code) and 400 <= int(code) <= 699:
        return False
    raise InputFileError(path, f"type code {code!r} is not a known detail code; cannot "
                         "tell a credit from a debit (expected 100-399 credit, 400-699 "
                         "debit)", line=rec.line, field="type code")


@cache
def _describe(code: str) -> str | None:
    known = TypeCodes.get(code)
    return f"{code} {known.description}" if known else code


def _account_trailer(rec: _Record, state: _State, rows: Rows, path: Path,
                     notes: list[str]) -> None:
    account = state.account
    if account is None:
        raise InputFileError(path, "account trailer (49) without an account record (03)",
                             line=rec.line)
    f = [*rec.fields(), "", ""]
    account.records += len(rec.pieces)
    _check(path, rec, "account", account.number, "control total",
           _integer(f[0], rec, path, "control total") if f[0] else account.total,
           account.total)
    _check_count(path, rec, f[1], account.records, f"account {account.number}")
    state.group_total += _integer(f[0], rec, path, "control total") if f[0] else 0
    state.group_accounts += 1
    state.group_records += account.records
    state.statements.append(statement(
        rows, account.first_row, account=account.number, currency=account.currency,
        opening=account.opening, closing=account.closing, start=state.as_of,
        end=state.as_of, statement_id=f"group line {state.group_line}"))
    state.account = None


def _group_trailer(rec: _Record, state: _State, rows: Rows, path: Path,
                   notes: list[str]) -> None:
    if state.account is not None:
        raise InputFileError(path, f"group trailer (98) while account "
                             f"{state.account.number} (line {state.account.line}) has no "
                             "trailer (49)", line=rec.line, hint="the file looks truncated")
    f = [*rec.fields(), "", "", ""]
    state.group_records += len(rec.pieces)
    _check(path, rec, "group", f"at line {state.group_line}", "control total",
           _integer(f[0], rec, path, "control total"), state.group_total)
    _check(path, rec, "group", f"at line {state.group_line}", "number of accounts",
           _integer(f[1], rec, path, "number of accounts"), state.group_accounts)
    _check_count(path, rec, f[2], state.group_records, f"group at line {state.group_line}")
    state.file_total += _integer(f[0], rec, path, "control total")
    state.file_groups += 1
    state.file_records += state.group_records
    state.as_of = None


def _file_trailer(rec: _Record, state: _State, rows: Rows, path: Path,
                  notes: list[str]) -> None:
    if state.as_of is not None:
        raise InputFileError(path, "file trailer (99) while a group has no trailer (98)",
                             line=rec.line, hint="the file looks truncated")
    f = [*rec.fields(), "", "", ""]
    state.file_records += len(rec.pieces)
    _check(path, rec, "file", "", "control total",
           _integer(f[0], rec, path, "control total"), state.file_total)
    _check(path, rec, "file", "", "number of groups",
           _integer(f[1], rec, path, "number of groups"), state.file_groups)
    _check_count(path, rec, f[2], state.file_records, "file")


def _check(path: Path, rec: _Record, level: str, name: str, what: str, stated: int,
           found: int) -> None:
    if stated != found:
        raise InputFileError(
            path, f"{f'{level} {name}'.strip()}: the trailer states {what} {stated}, the "
            f"records add up to {found}", line=rec.line, field=what,
            hint="the file is damaged or incomplete; ask the bank for it again")


def _check_count(path: Path, rec: _Record, stated: str, found: int, name: str) -> None:
    if stated:
        _check(path, rec, "", name, "number of records",
               _integer(stated, rec, path, "number of records"), found)


def _integer(text: str, rec: _Record, path: Path, what: str) -> int:
    raw = text.strip().rstrip("/")
    if not raw:
        return 0
    if not re.fullmatch(r"[+-]?\d+", raw):
        raise InputFileError(path, f"cannot parse {what} {raw!r}; expected whole "
                             "minor units (cents) without a decimal point",
                             line=rec.line, field=what)
    return int(raw)


def _amount(minor: int, currency: str) -> Decimal:
    """BAI2 amounts carry no decimal point: minor units of the currency."""
    return Decimal(minor).scaleb(-CURRENCY_EXPONENTS.get(currency, 2))


_HANDLERS = {"01": _file_header, "02": _group_header, "03": _account_header,
             "16": _detail, "49": _account_trailer, "98": _group_trailer,
             "99": _file_trailer}
