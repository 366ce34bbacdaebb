"""SWIFT MT940 statements (and MT942 interim reports) through the ``mt-940`` library.

The file is cut into ``:20:`` blocks here, so every block keeps its line numbers,
and each block is parsed by ``mt940.models.Transactions``.  Around the library:

* SWIFT envelopes (``{1:...}{2:...}{4:`` ... ``-}``) are blanked before parsing;
* a balance written without its currency (``:62M:C020315105000,00``) or with a
  ``.`` decimal mark gets the block's currency / a ``,`` (noted), because the
  library would otherwise read the wrong number without a word;
* a ``:61:`` line whose customer reference is longer than SWIFT's 16 characters
  (SNS, ASN, GLS/Atruvia put an IBAN there) is parsed again with the library's
  relaxed ``StatementGLS`` pattern;
* ``:86:`` details are interpreted here for the common dialects: German ``?20``
  sub-fields with SEPA keywords (EREF+, SVWZ+, ...), Triodos ``>20`` sub-fields,
  and Dutch/SWIFT ``/EREF/ /REMI/ /NAME/`` codes; anything else is description.

A block that has transactions but lacks its opening (``:60F:``/``:60M:``) or
closing (``:62F:``/``:62M:``) balance is refused as truncated; MT942 blocks carry
no balances and are accepted.  The library turns a 30 February into the last day
of February (German banks date interest that way); other impossible dates fail.
"""

from __future__ import annotations

import decimal
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

import mt940

from recon.errors import InputFileError
from recon.loaders._bank import (
    Rows,
    best_reference,
    clean,
    decode,
    has_reference,
    iban_or_none,
    join_text,
    money,
    statement,
)
from recon.loaders.base import Loader, LoadResult, StatementInfo

_ENVELOPE = re.compile(r"^\{1:[^}]*\}(?:\{[23]:(?:[^{}]|\{[^}]*\})*\})*(?:\{4:)?")
_TRAILER = re.compile(r"^-?\}(?:\{5:.*)?$|^\{5:.*$")
_TAG = re.compile(r"^:(\d\d[A-Z]?|NS):")
_BALANCE = re.compile(r"^(:6[02345][FM]?:[CD]\d{6})([A-Z]{3})?([\d.,]*)(.*)$")
_CURRENCY = re.compile(r"^:6[02345][FM]?:[CD]\d{6}([A-Z]{3})", re.M)
_SUBFIELD = re.compile(r"[?>](\d{2})")
_PURPOSE = tuple(str(n) for n in (*range(20, 30), *range(60, 64)))  # ?20-?29, ?60-?63
_SEPA = re.compile(r"(EREF|KREF|MREF|CRED|DEBT|SVWZ|ABWA|ABWE|IBAN|BIC|COAM|OAMT)\+")
_SLASH_CODES = ("TRTP|EREF|REMI|NAME|IBAN|BIC|CNTP|ORDP|BENM|MARF|CSID|PURP|ULTC|ULTD|"
                "ADDR|ISDT|RTRN|OCMT|CHGS|EXCH|PREF|KREF")
_SLASH = re.compile(rf"/({_SLASH_CODES})/")
_LIBRARY_ERRORS = (RuntimeError, ValueError, KeyError, IndexError, TypeError,
                   AttributeError, decimal.InvalidOperation)
_KNOWN_TAGS = frozenset(str(t) for t in mt940.tags.TAG_BY_ID)
_OPENING = ("final_opening_balance", "intermediate_opening_balance", "opening_balance")
_CLOSING = ("final_closing_balance", "intermediate_closing_balance", "closing_balance")
_INTERIM = ("d_floor_limit", "c_floor_limit", "date", "sum_debit_entries",
            "sum_credit_entries")


@dataclass(slots=True)
class _Block:
    """One ``:20:`` block: its lines and the file line of its first line."""

    first_line: int
    lines: list[str]
    terminated: bool = False  # an end-of-message '-' or '-}' follows the block

    def text(self, upto: int | None = None) -> str:
        return "\n".join(self.lines[:upto])

    def tag_lines(self, tag: str) -> list[int]:
        return [self.first_line + i for i, ln in enumerate(self.lines)
                if ln.startswith(f":{tag}:")]


class Mt940Loader(Loader):
    """MT940 / MT942 (.sta, .940, .swi, .mt940, .txt) through the mt-940 library."""

    format: ClassVar[str] = "mt940"
    extensions: ClassVar[tuple[str, ...]] = (".sta", ".940", ".942", ".swi", ".mt940", ".stm")

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        """:20: and :25: tags and a :60x:/:61:/:62x: or :34F: line."""
        text = head.decode("latin-1")
        has = [bool(re.search(p, text, re.M)) for p in
               (r"^:20:", r"^:25:", r"^:(60[FM]|61|62[FM]|34F|28C?):")]
        if all(has):
            return 95
        if has[0] and has[2]:
            return 70
        return 10 if has[0] and path.suffix.lower() in cls.extensions else 0

    def load(self, path: Path, *, profile: str | None = None) -> LoadResult:
        """Parse each :20: block with mt940 and collect canonical rows."""
        text, encoding, note = decode(path.read_bytes(), path)
        notes = [note] if note else []
        rows = Rows()
        statements: list[StatementInfo] = []
        for block in _blocks(text, notes):
            info = _read_block(block, path, rows, notes)
            if info is not None:
                statements.append(info)
        if not statements:
            raise InputFileError(path, "no MT940 statement found; expected a :20: tag "
                                 "followed by :25:, :60F:, :61: and :62F:")
        frame, id_note = rows.frame(path)
        if id_note:
            notes.append(id_note)
        return LoadResult(path=path, format=self.format, frame=frame, statements=statements,
                          profile=profile, encoding=encoding, notes=notes,
                          weak_rows=rows.weak_rows(frame))


def _blocks(text: str, notes: list[str]) -> list[_Block]:
    """Cut the text into :20: blocks, blanking SWIFT envelope lines (lines keep numbers)."""
    blocks: list[_Block] = []
    envelopes = 0
    for number, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"),
                                 1):
        line = raw.rstrip()
        stripped = _ENVELOPE.sub("", line)
        if stripped != line or _TRAILER.match(line):
            envelopes += 1
            line = "" if _TRAILER.match(line) else stripped
        if blocks and (line == "-" or _TRAILER.match(raw.strip())):
            blocks[-1].terminated = True
        if line.startswith(":20:"):
            blocks.append(_Block(number, []))
        if blocks:
            blocks[-1].lines.append(line)
    if envelopes:
        notes.append(f"{envelopes} SWIFT envelope line(s) ({{1:...}}{{4: / -}}) skipped")
    return blocks


def _read_block(block: _Block, path: Path, rows: Rows, notes: list[str]
                ) -> StatementInfo | None:
    _check_tags(block, path)
    _repair_balances(block, path, notes)
    parsed = _parse(block, path, notes)
    data = parsed.data
    opening, closing = _balance(data, _OPENING), _balance(data, _CLOSING)
    interim = any(k in data for k in _INTERIM)
    if not parsed.transactions and opening is None and closing is None and not interim:
        notes.append(f"line {block.first_line}: block {data.get('transaction_reference')!r} "
                     "has no balance and no transaction; skipped")
        return None
    if not interim and (opening is None or closing is None):
        missing = ":60F:/:60M: opening" if opening is None else ":62F:/:62M: closing"
        what = f"statement {data.get('transaction_reference')!r} has no {missing} balance"
        if not block.terminated:
            raise InputFileError(
                path, what, line=block.first_line, field=missing.split()[0],
                hint="the file looks truncated or two statements were run together")
        notes.append(f"line {block.first_line}: {what} (the message ends properly, "
                     "so it is read without it)")
    currency = _currency(data, parsed)
    account = _account(data.get("account_identification"), currency)
    first = len(rows)
    lines = block.tag_lines("61")
    for i, txn in enumerate(parsed.transactions):
        line = lines[i] if len(lines) == len(parsed.transactions) else block.first_line
        _add(txn.data, rows, path, line, account, currency)
    stamp = data.get("date")
    return statement(
        rows, first, account=account, currency=currency,
        opening=_money(opening, path, block), closing=_money(closing, path, block),
        start=_plain(opening.date) if opening is not None else None,
        end=_plain(closing.date) if closing is not None else (
            _plain(stamp) if stamp is not None else None),
        statement_id=join_text([data.get("transaction_reference"),
                                data.get("statement_number")], sep=" "))


def _check_tags(block: _Block, path: Path) -> None:
    """A tag the library does not know would be glued to the text of the one before."""
    for i, line in enumerate(block.lines):
        m = _TAG.match(line)
        if m and m.group(1) not in _KNOWN_TAGS and m.group(1)[:2] not in _KNOWN_TAGS:
            raise InputFileError(
                path, f"unknown tag :{m.group(1)}:; expected one of "
                f"{', '.join(':' + t + ':' for t in sorted(_KNOWN_TAGS))}",
                line=block.first_line + i, field=f":{m.group(1)}:")


def _repair_balances(block: _Block, path: Path, notes: list[str]) -> None:
    """Give balance lines a currency and a ',' decimal mark, or refuse them."""
    found = _CURRENCY.search(block.text())
    currency = found.group(1) if found else None
    for i, line in enumerate(block.lines):
        m = _BALANCE.match(line)
        if not m:
            continue
        head, ccy, amount, rest = m.groups()
        where = block.first_line + i
        if rest.strip() or not re.fullmatch(r"\d[\d]*([.,]\d*)?", amount):
            tag, value = line[:line.index(":", 1) + 1], line[line.index(":", 1) + 1:]
            raise InputFileError(
                path, f"cannot parse balance {value!r}; expected C/D, YYMMDD, currency "
                "and an amount like 'C240131EUR1234,56'", line=where, field=tag)
        if ccy is None:
            if currency is None:
                raise InputFileError(path, f"balance {line!r} has no currency",
                                     line=where)
            notes.append(f"line {where}: balance without currency; read as {currency}")
            ccy = currency
        if "." in amount:
            notes.append(f"line {where}: balance uses '.' as decimal mark")
        block.lines[i] = f"{head}{ccy}{amount.replace('.', ',')}"


def _parse(block: _Block, path: Path, notes: list[str]) -> mt940.models.Transactions:
    """Run the library; on a :61: it cannot read, retry with the relaxed pattern."""
    try:
        return _run(block.text())
    except _LIBRARY_ERRORS as exc:
        if not (len(exc.args) > 1 and isinstance(exc.args[1], mt940.tags.Statement)):
            raise _located(block, path, exc, _run) from exc
    relaxed = mt940.tags.StatementGLS()
    try:
        parsed = _run(block.text(), {relaxed.id: relaxed})
    except _LIBRARY_ERRORS as exc:
        raise _located(block, path, exc, lambda t: _run(t, {relaxed.id: relaxed})) from exc
    note = (":61: customer references longer than SWIFT's 16 characters were read with "
            "the library's relaxed pattern (StatementGLS)")
    if note not in notes:
        notes.append(note)
    return parsed


def _run(text: str, tags: dict[int | str, mt940.tags.Tag] | None = None
         ) -> mt940.models.Transactions:
    # The raw :86: text is interpreted below; the library's own parser drops it.
    parsed = mt940.models.Transactions(
        processors={"post_transaction_details": []}, tags=tags,
        options=mt940.Options.all())
    with _quiet():
        parsed.parse(text)
    return parsed


@contextmanager
def _quiet() -> Iterator[None]:
    """mt940 logs every failed match at ERROR; those failures become InputFileError."""
    logger = logging.getLogger("mt940")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


def _located(block: _Block, path: Path, exc: Exception,
             run: Callable[[str], object]) -> InputFileError:
    """Find the first tag the library cannot parse (binary search over tag starts)."""
    starts = [i for i, ln in enumerate(block.lines) if _TAG.match(ln)] + [len(block.lines)]
    lo, hi = 0, len(starts) - 2  # answer: smallest k whose prefix up to tag k fails
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            run(block.text(starts[mid + 1]))
            lo = mid + 1
        except _LIBRARY_ERRORS:
            hi = mid
    index = starts[lo] if starts[:-1] else 0
    text = block.lines[index] if block.lines else ""
    tag = _TAG.match(text)
    cause = str(exc.args[0]) if exc.args else type(exc).__name__
    if "Unable to parse" in cause:
        cause = "the value does not match the tag's SWIFT layout"
    elif isinstance(exc, decimal.InvalidOperation):
        cause = "the amount is not a number (expected digits and one ',' decimal mark)"
    return InputFileError(path, f"cannot parse {text!r}: {cause}",
                          line=block.first_line + index, field=tag.group(0) if tag else None,
                          hint="see the MT940 layout of your bank (SWIFT MT940 field spec)")


def _balance(data: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((data[k] for k in keys if data.get(k) is not None), None)


def _money(balance: Any, path: Path, block: _Block) -> Decimal | None:
    if balance is None:
        return None
    return money(balance.amount.amount, path, line=block.first_line)


def _currency(data: dict[str, Any], parsed: mt940.models.Transactions) -> str | None:
    for key in (*_OPENING, *_CLOSING, "d_floor_limit", "c_floor_limit"):
        value = data.get(key)
        amount = getattr(value, "amount", value)
        ccy = getattr(amount, "currency", None)
        if isinstance(ccy, str) and re.fullmatch(r"[A-Z]{3}", ccy):
            return ccy
    return next((t.data.get("currency") for t in parsed.transactions
                 if t.data.get("currency")), None)


def _account(ident: str | None, currency: str | None) -> str | None:
    """`NL34RABO0142623393 EUR` -> `NL34RABO0142623393`; keeps `BLZ/account` forms."""
    if not ident:
        return None
    ident = ident.strip()
    if currency and ident.endswith(currency) and len(ident) > 3:
        ident = ident[:-3].rstrip(" /")
    return ident or None


def _add(data: dict[str, Any], rows: Rows, path: Path, line: int, account: str | None,
         currency: str | None) -> None:
    amount = money(data["amount"].amount, path, line=line, field=":61:")
    kind = data.get("id")
    if kind and kind[0] not in "NFS":
        raise InputFileError(
            path, f"cannot read :61: transaction type {kind!r} after amount "
            f"{data['amount'].amount}; expected N, F or S and three characters "
            "(is there a letter in the amount?)", line=line, field=":61:")
    details = _details(data.get("transaction_details"), incoming=amount > 0)
    customer = data.get("customer_reference")
    if (data.get("id") or "") + (customer or "") in ("NONREF", "NONREF "):
        customer = None  # 'NONREF' without a type code: the library splits it 'NONR'+'EF'
    counter_iban = iban_or_none(customer)
    if counter_iban:
        customer = None  # SNS/ASN put the counterparty's IBAN there: neither id nor reference
    bank = data.get("bank_reference")
    extra = clean(data.get("extra_details"))
    entry = data.get("entry_date")
    value = data.get("date")
    # the customer reference is the account holder's, and repeats ('Rente' every month)
    weak = not has_reference(bank) and has_reference(customer)
    rows.add(
        natural_id=bank if has_reference(bank) else customer if weak else None, weak_id=weak,
        line=line, account=account, day=_plain(entry or value), value_date=_plain(value),
        amount=amount, currency=data.get("currency") or currency,
        counterparty=details.counterparty,
        reference=details.reference or (clean(customer) if has_reference(customer) else None),
        description=join_text([details.description, extra]),
        iban=details.iban or counter_iban or iban_or_none(extra))


def _plain(d: Any) -> date:
    return date(d.year, d.month, d.day)


@dataclass(slots=True)
class _Details:
    counterparty: str | None = None
    iban: str | None = None
    reference: str | None = None
    description: str | None = None


def join_lines(text: str) -> str:
    """Undo SWIFT's 65-character wrapping: full lines continue without a space."""
    out = ""
    previous = 65
    for line in text.split("\n"):
        out += line if previous >= 65 or line.startswith(("?", ">")) else " " + line
        previous = len(line)
    return out.strip()


def _details(raw: str | None, *, incoming: bool) -> _Details:
    """Interpret a :86: field (German ?xx, Triodos >xx, Dutch /CODE/, free text)."""
    if not raw:
        return _Details()
    text = join_lines(raw)
    if re.match(r"^\d{3}[?>]\d{2}|^[?>]\d{2}", text):
        return _subfields(text, incoming)
    if _SLASH.search(text):
        return _slash_codes(text, incoming)
    return _Details(description=clean(text))


def _subfields(text: str, incoming: bool) -> _Details:
    parts = _SUBFIELD.split(text)
    fields: dict[str, str] = {}
    for code, value in zip(parts[1::2], parts[2::2], strict=False):
        fields[code] = fields.get(code, "") + value
    purpose = "".join(fields.get(n, "") for n in _PURPOSE)
    keys = _sepa(purpose)
    remittance = keys.get("SVWZ") or (clean(purpose) if not keys else None)
    name = clean(fields.get("32", "") + fields.get("33", ""))
    return _Details(
        counterparty=name, iban=iban_or_none(fields.get("31")) or iban_or_none(keys.get("IBAN")),
        reference=best_reference(incoming, end_to_end=keys.get("EREF"), remittance=remittance),
        description=join_text([fields.get("00"), remittance or clean(purpose), name]))


def _sepa(purpose: str) -> dict[str, str]:
    """Split `EREF+abc SVWZ+Invoice 12` into {'EREF': 'abc', 'SVWZ': 'Invoice 12'}."""
    parts = _SEPA.split(purpose)
    return {k: v.strip() for k, v in zip(parts[1::2], parts[2::2], strict=False) if v.strip()}


def _slash_codes(text: str, incoming: bool) -> _Details:
    parts = _SLASH.split(text)
    codes: dict[str, str] = {}
    for code, value in zip(parts[1::2], parts[2::2], strict=False):
        codes.setdefault(code, value.strip().strip("/").strip())
    cntp = codes.get("CNTP", "").split("/")
    remi = codes.get("REMI", "")
    structured = None
    if remi.startswith("STRD"):
        structured = remi.split("/")[-1] or None
    remi = re.sub(r"^(USTD|STRD)/+", "", remi)
    name = codes.get("NAME") or (cntp[2] if len(cntp) > 2 else None)
    return _Details(
        counterparty=clean(name),
        iban=iban_or_none(codes.get("IBAN")) or iban_or_none(cntp[0] if cntp else None),
        reference=best_reference(incoming, end_to_end=codes.get("EREF"), remittance=remi,
                                 structured=structured),
        description=join_text([codes.get("TRTP"), clean(remi) or clean(text), name]))
