"""Norma 43 (AEB/CSB 43): the fixed-width account statements of Spanish banks.

Written here: the maintained PyPI package ``csb43`` (LGPL, pins pycountry) rejects
four of the six corpus files, whose account trailer writes the final balance sign
as ``0``.  Records (80 characters; shorter lines are padded, trailing spaces are
often stripped by mail and FTP clients):

=====  ===========================================================================
``11`` account header: bank, branch, account, period, opening balance, currency
``22`` movement: dates, concepts, debit/credit, amount, document, two references
``23`` complementary concepts (up to five per movement)
``24`` equivalence: the amount in another currency
``33`` account trailer: debit/credit counts and totals, closing balance
``88`` end of file: record count
=====  ===========================================================================

Trailer totals that disagree with the movements, a missing trailer or end record
are noted (the statement balance check reports the money side); malformed records,
impossible dates and signs are refused with their line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import ClassVar

from recon.errors import InputFileError
from recon.loaders._bank import (
    Rows,
    ascii_digits,
    cents,
    decode,
    join_text,
    money,
    statement,
    yymmdd,
)
from recon.loaders.base import Loader, LoadResult, StatementInfo

_HEADER = re.compile(r"11\d{18}\d{12}[12]\d{14}\d{3}")
_CURRENCIES = {
    "978": "EUR", "840": "USD", "826": "GBP", "756": "CHF", "392": "JPY", "124": "CAD",
    "036": "AUD", "752": "SEK", "578": "NOK", "208": "DKK", "985": "PLN", "203": "CZK",
    "348": "HUF", "946": "RON", "975": "BGN", "484": "MXN", "986": "BRL", "156": "CNY",
    "344": "HKD", "702": "SGD", "554": "NZD", "949": "TRY", "710": "ZAR", "032": "ARS",
    "152": "CLP", "170": "COP", "604": "PEN", "858": "UYU", "504": "MAD", "356": "INR",
    "410": "KRW", "682": "SAR", "784": "AED", "376": "ILS", "643": "RUB",
}
#: Common concepts (concepto común), shortened.
_CONCEPTS = {
    "01": "talones/reintegros", "02": "abonarés/entregas/ingresos",
    "03": "domiciliados/recibos", "04": "giros/transferencias/traspasos/cheques",
    "05": "amortizaciones préstamos", "06": "remesas efectos", "07": "suscripciones",
    "08": "dividendos/cupones", "09": "bolsa/valores", "10": "cheques gasolina",
    "11": "cajero automático", "12": "tarjetas", "13": "operaciones extranjero",
    "14": "devoluciones/impagados", "15": "nóminas/seguros sociales",
    "16": "timbres/corretaje", "17": "intereses/comisiones/gastos",
    "98": "anulaciones/correcciones", "99": "varios",
}


@dataclass(slots=True)
class _Account:
    name: str
    currency: str
    opening: Decimal
    start: date
    end: date
    line: int
    first_row: int
    debits: list[Decimal] = field(default_factory=list)
    credits: list[Decimal] = field(default_factory=list)


@dataclass(slots=True)
class _Movement:
    """A 22 record waiting for its 23/24 records."""

    line: int
    day: date
    value_date: date
    amount: Decimal
    concept: str
    references: list[str]
    texts: list[str] = field(default_factory=list)


class Csb43Loader(Loader):
    """Spanish Norma 43 / AEB 43 / CSB 43 account statements (.n43, .csb, .aeb)."""

    format: ClassVar[str] = "csb43"
    extensions: ClassVar[tuple[str, ...]] = (".n43", ".csb", ".csb43", ".aeb", ".aeb43")

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        """An 11 account header record of the Norma 43 layout on the first line."""
        lines = [ln for ln in head.decode("latin-1").splitlines() if ln.strip()]
        if lines and _HEADER.match(lines[0]):
            return 95
        return super().sniff(head, path)

    def load(self, path: Path, *, profile: str | None = None) -> LoadResult:
        """Read 11/22/23/24/33/88 records into rows; one statement per account."""
        text, encoding, note = decode(path.read_bytes(), path)
        reader = _Reader(path, [note] if note else [])
        for number, raw in enumerate(text.splitlines(), 1):
            if raw.strip():
                reader.record(number, raw.rstrip("\r\n").ljust(80))
        reader.finish()
        frame, id_note = reader.rows.frame(path)
        notes = reader.notes + ([id_note] if id_note else [])
        return LoadResult(path=path, format=self.format, frame=frame,
                          statements=reader.statements, profile=profile, encoding=encoding,
                          notes=notes)


class _Reader:
    def __init__(self, path: Path, notes: list[str]) -> None:
        self.path = path
        self.notes = notes
        self.rows = Rows()
        self.statements: list[StatementInfo] = []
        self.account: _Account | None = None
        self.pending: _Movement | None = None
        self.records = 0
        self.ended = False

    def record(self, line: int, rec: str) -> None:
        code = rec[:2]
        handler = {"11": self._header, "22": self._movement, "23": self._concepts,
                   "24": self._equivalence, "33": self._trailer, "88": self._end}.get(code)
        if handler is None:
            raise InputFileError(self.path, f"unknown record type {code!r}; expected 11, 22, "
                                 "23, 24, 33 or 88", line=line, field="record type")
        if self.ended:
            raise InputFileError(self.path, f"record {code} after the end-of-file record 88",
                                 line=line)
        if code != "88":
            self.records += 1
        handler(line, rec)

    def _header(self, line: int, rec: str) -> None:
        if self.account is not None:
            self._close(None, line)
        digits = self._digits(rec, 2, 20, line, "account")
        start = yymmdd(rec[20:26], self.path, line=line, field="start date")
        end = yymmdd(rec[26:32], self.path, line=line, field="end date")
        opening = self._signed(rec[32], rec[33:47], line, "opening balance")
        self.account = _Account(
            name=f"{digits[:4]}-{digits[4:8]}-{digits[8:]}",
            currency=self._currency(rec[47:50], line), opening=opening, start=start,
            end=end, line=line, first_row=len(self.rows))

    def _movement(self, line: int, rec: str) -> None:
        if self.account is None:
            raise InputFileError(self.path, "movement (22) before any account header (11)",
                                 line=line)
        self._flush()
        amount = self._signed(rec[27], rec[28:42], line, "amount")
        (self.account.credits if amount > 0 else self.account.debits).append(amount)
        concept = rec[22:24]
        refs = [r.strip() for r in (rec[64:80], rec[52:64], rec[42:52])]
        self.pending = _Movement(
            line=line, day=yymmdd(rec[10:16], self.path, line=line, field="date"),
            value_date=yymmdd(rec[16:22], self.path, line=line, field="value date"),
            amount=amount, concept=f"{concept} {_CONCEPTS.get(concept, '')}".strip(),
            references=[r for r in refs if r.strip("0")])

    def _concepts(self, line: int, rec: str) -> None:
        if self.pending is None:
            raise InputFileError(self.path, "concept record (23) without a movement (22) "
                                 "before it", line=line)
        self.pending.texts.extend([rec[4:42], rec[42:80]])

    def _equivalence(self, line: int, rec: str) -> None:
        if self.pending is None:
            raise InputFileError(self.path, "equivalence record (24) without a movement "
                                 "(22) before it", line=line)
        amount = cents(rec[7:21], self.path, line=line, field="equivalent amount")
        currency = _CURRENCIES.get(rec[4:7], rec[4:7])
        self.pending.texts.append(f"equivalent {amount} {currency}")

    def _trailer(self, line: int, rec: str) -> None:
        if self.account is None:
            raise InputFileError(self.path, "account trailer (33) without an account "
                                 "header (11)", line=line)
        self._flush()
        account = self.account
        if rec[2:20] != account.name.replace("-", ""):
            self.notes.append(f"line {line}: trailer account {rec[2:20]} differs from the "
                              f"header's {account.name}")
        stated = (int(self._digits(rec, 20, 25, line, "debit count")),
                  cents(rec[25:39], self.path, line=line, field="debit total"),
                  int(self._digits(rec, 39, 44, line, "credit count")),
                  cents(rec[44:58], self.path, line=line, field="credit total"))
        found = (len(account.debits), -sum(account.debits, Decimal(0)),
                 len(account.credits), sum(account.credits, Decimal(0)))
        if stated != found:
            self.notes.append(
                f"line {line}: account {account.name} trailer states {stated[0]} debits "
                f"{stated[1]} / {stated[2]} credits {stated[3]}; the movements are "
                f"{found[0]} debits {found[1]} / {found[2]} credits {found[3]}")
        if rec[58] not in "12":
            self.notes.append(f"line {line}: closing balance sign {rec[58]!r} (expected 1 "
                              "debit or 2 credit); read as credit")
        closing = self._signed(rec[58] if rec[58] in "12" else "2", rec[59:73], line,
                               "closing balance")
        if rec[73:76].strip() and _CURRENCIES.get(rec[73:76]) != account.currency:
            self.notes.append(f"line {line}: trailer currency {rec[73:76]!r} differs from "
                              f"the header's {account.currency}")
        self._close(closing, line)

    def _end(self, line: int, rec: str) -> None:
        self._flush()
        if self.account is not None:
            self._close(None, line)
        stated = rec[20:26].strip()
        if ascii_digits(stated) and int(stated) != self.records:
            self.notes.append(f"line {line}: end record counts {int(stated)} records, the "
                              f"file has {self.records}")
        self.ended = True

    def finish(self) -> None:
        """Close what the file left open (no 33 / 88): noted, not refused."""
        self._flush()
        if self.account is not None:
            self._close(None, None)
        if not self.ended:
            self.notes.append("no end-of-file record (88); the file may be incomplete")
        if not self.statements:
            raise InputFileError(self.path, "no account header record (11) in the file")

    def _flush(self) -> None:
        m, account = self.pending, self.account
        if m is None or account is None:
            return
        texts = [t for t in (s.strip() for s in m.texts) if t]
        self.rows.add(
            natural_id=None, line=m.line, account=account.name, day=m.day,
            value_date=m.value_date, amount=money(m.amount, self.path, line=m.line),
            currency=account.currency, reference=m.references[0] if m.references else None,
            description=join_text([m.concept, *texts, *m.references[1:]]))
        self.pending = None

    def _close(self, closing: Decimal | None, line: int | None) -> None:
        account = self.account
        assert account is not None
        if closing is None:
            where = f"line {line}" if line else "end of file"
            self.notes.append(f"{where}: account {account.name} (line {account.line}) has "
                              "no trailer record (33); closing balance unknown")
        self.statements.append(statement(
            self.rows, account.first_row, account=account.name, currency=account.currency,
            opening=account.opening, closing=closing, start=account.start, end=account.end))
        self.account = None

    def _signed(self, sign: str, digits: str, line: int, what: str) -> Decimal:
        if sign not in ("1", "2"):
            raise InputFileError(self.path, f"{what}: debit/credit code {sign!r}; expected "
                                 "1 (debit) or 2 (credit)", line=line, field=what)
        if not ascii_digits(digits):  # fixed width: a cut or shifted field is not a number
            raise InputFileError(self.path, f"{what} {digits!r}: expected {len(digits)} "
                                 "digits (amount in cents)", line=line, field=what)
        value = cents(digits, self.path, line=line, field=what)
        return -value if sign == "1" else value

    def _digits(self, rec: str, start: int, end: int, line: int, what: str) -> str:
        value = rec[start:end]
        if not ascii_digits(value):
            raise InputFileError(self.path, f"{what} {value!r}: expected {end - start} digits "
                                 f"at columns {start + 1}-{end}", line=line, field=what)
        return value

    def _currency(self, code: str, line: int) -> str:
        if code not in _CURRENCIES:
            raise InputFileError(self.path, f"currency code {code!r}: expected an ISO 4217 "
                                 "numeric code such as 978 (EUR)", line=line, field="currency")
        return _CURRENCIES[code]
