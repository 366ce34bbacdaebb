"""Building blocks shared by the bank statement loaders (OFX, MT940, CAMT, BAI2, Norma 43).

Each loader parses its format into :class:`Rows` (plain Python lists, one append
per transaction) and builds the polars frame once at the end.  Amounts travel as
validated decimal text and are cast to ``Decimal(20,4)`` by polars, which is exact
and twenty times faster than building the column from ``Decimal`` objects.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import polars as pl

from recon.errors import InputFileError
from recon.loaders.base import AMOUNT, StatementInfo, canonical
from recon.normalise import stable_ids

_Q4 = Decimal("0.0001")
_MAX_AMOUNT = Decimal(10) ** 16  # Decimal(20,4) holds 16 integer digits
_NUMBER = re.compile(r"[+-]?(\d+([.,]\d*)?|[.,]\d+)")
_IBAN = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")
_HIGH_BYTE = re.compile(rb"[\x80-\xff]")
_INTEGER = re.compile(r"[+-]?\d+")
_SIX_DIGITS = re.compile(r"\d{6}")
#: References that mean "there is none" (SEPA, SWIFT, several banks).
NO_REFERENCE = frozenset({"", "NOTPROVIDED", "NONREF", "NONE", "NOREF", "N/A"})
#: Fallback code pages for text that is not UTF-8, in order of preference on a tie.
_FALLBACKS = ("cp1252", "cp852", "iso8859_2", "latin-1")


def parse_decimal(text: str | None, path: Path | str, *, line: int | None = None,
                  field: str | None = None, what: str = "amount") -> Decimal:
    """Parse a plain bank number (`-12.50`, `12,50`, `+0001500.00`) exactly."""
    raw = (text or "").strip()
    if not _NUMBER.fullmatch(raw):
        raise InputFileError(
            path, f"cannot parse {what} {raw!r}; expected a number like '-1234.56'",
            line=line, field=field)
    return Decimal(raw.replace(",", "."))


def money(value: Decimal, path: Path | str, *, line: int | None = None,
          field: str | None = None) -> Decimal:
    """Check `value` fits the canonical amount exactly (<= 4 decimals, 16 digits)."""
    try:
        exact = value.quantize(_Q4)
    except InvalidOperation:
        exact = None
    if exact is None or exact != value or abs(value) >= _MAX_AMOUNT:
        raise InputFileError(
            path, f"amount {value} does not fit: at most 16 digits and 4 decimals",
            line=line, field=field)
    return exact


def cents(digits: str, path: Path | str, *, line: int | None = None,
          field: str | None = None, scale: int = 2) -> Decimal:
    """Turn an implied-decimal integer (`"000000012345"` = 123.45) into a Decimal."""
    raw = digits.strip()
    if not _INTEGER.fullmatch(raw):
        raise InputFileError(
            path, f"cannot parse amount {raw!r}; expected digits only (implied "
            f"{scale} decimals)", line=line, field=field)
    return Decimal(int(raw)).scaleb(-scale)


def ascii_digits(text: str) -> bool:
    """'0123' yes; '', '1.5', '²' or other Unicode digits no (int() would choke)."""
    return text.isascii() and text.isdigit()


def make_date(year: int, month: int, day: int, path: Path | str, *, raw: str,
              line: int | None = None, field: str | None = None) -> date:
    """Build a date or raise naming the impossible value."""
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise InputFileError(
            path, f"impossible date {raw!r} ({exc})", line=line, field=field) from exc


def yymmdd(raw: str, path: Path | str, *, line: int | None = None,
           field: str | None = None) -> date:
    """Parse a six-digit `YYMMDD` date (years 00-79 are 20xx, 80-99 are 19xx)."""
    if not _SIX_DIGITS.fullmatch(raw):
        raise InputFileError(
            path, f"cannot parse date {raw!r}; expected YYMMDD", line=line, field=field)
    yy = int(raw[:2])
    return make_date(2000 + yy if yy < 80 else 1900 + yy, int(raw[2:4]), int(raw[4:6]),
                     path, raw=raw, line=line, field=field)


def decode(data: bytes, path: Path | str, declared: str | None = None
           ) -> tuple[str, str, str | None]:
    """Decode file bytes; return (text, encoding, note or None).

    Tries a byte-order mark, the encoding the file declares, then UTF-8.  Other
    bytes are decoded with the code page that reads the most accented letters
    (cp1252 for Western Europe, cp852 for Central European DOS exports).
    """
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8", errors="replace"), "utf-8-sig", None
    for bom, codec in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if data.startswith(bom):
            return data[2:].decode(codec, errors="replace"), codec, None
    if b"\x00" in data:
        head = data[:4096]
        for codec, zeros in (("utf-16-le", head[1::2]), ("utf-16-be", head[0::2])):
            if zeros.count(0) > 0.9 * len(zeros):
                return data.decode(codec, errors="replace"), codec, f"{codec} without BOM"
        raise InputFileError(path, f"the file holds NUL bytes (first at byte "
                             f"{data.index(0)}); expected a text statement",
                             hint="is it a PDF, spreadsheet or archive?")
    note = None
    if declared and _single_byte(declared) and not data.isascii():
        # exporters write UTF-8 under the OFX 1 header's default CHARSET:1252; text in a
        # code page is almost never valid UTF-8 by chance ('Ã©' where 'é' was meant)
        try:
            return data.decode("utf-8"), "utf-8", (
                f"the file declares encoding {declared!r} but its accented letters are "
                "UTF-8; read as UTF-8")
        except UnicodeDecodeError:
            pass
    if declared:
        try:
            return data.decode(declared), declared, None
        except (UnicodeDecodeError, LookupError):
            note = f"the file declares encoding {declared!r} but is not valid {declared}"
    try:
        return data.decode("utf-8"), "utf-8", note
    except UnicodeDecodeError:
        pass
    codec = _best_code_page(data)
    why = f"not valid UTF-8; decoded as {codec} (the code page that reads most letters)"
    return data.decode(codec, errors="replace"), codec, f"{note}; {why}" if note else why


def _single_byte(codec: str) -> bool:
    """Whether `codec` is a code page (one byte per character: cp1252, latin-1, ...)."""
    try:
        return len(bytes(range(128, 256)).decode(codec, errors="replace")) == 128
    except LookupError:
        return False


def _best_code_page(data: bytes) -> str:
    """Judge the code pages on 256 KiB from the first non-ASCII byte (big files)."""
    high = _HIGH_BYTE.search(data)
    start = max(0, high.start() - 1024) if high else 0
    sample = data[start:start + 262144]

    def score(codec: str) -> int:
        text = sample.decode(codec, errors="replace")
        letters = sum(1 for ch in text if ord(ch) > 127 and ch.isalpha())
        return letters - 10 * text.count("\ufffd")

    return max(_FALLBACKS, key=score)


def clean(text: str | None) -> str | None:
    """Collapse whitespace; empty becomes None."""
    if text is None:
        return None
    return " ".join(text.split()) or None


def join_text(parts: Iterable[str | None], sep: str = " | ") -> str | None:
    """Join the distinct non-empty parts of a description."""
    seen: list[str] = []
    for part in parts:
        c = clean(part)
        if c and c not in seen:
            seen.append(c)
    return sep.join(seen) or None


def iban_or_none(text: str | None) -> str | None:
    """Return `text` without spaces if it looks like an IBAN."""
    if not text:
        return None
    compact = text.replace(" ", "").upper()
    return compact if _IBAN.fullmatch(compact) else None


def best_reference(incoming: bool, *, end_to_end: str | None = None,
                   structured: str | None = None, remittance: str | None = None
                   ) -> str | None:
    """Pick the payment reference a ledger most likely shares.

    Money in: what the payer wrote for us (structured creditor reference, then
    remittance text), then their end-to-end id.  Money out: the end-to-end id our
    own payment run set (it usually carries our payment or invoice number) first.
    """
    order = ((structured, remittance, end_to_end) if incoming
             else (end_to_end, structured, remittance))
    for candidate in order:
        c = clean(candidate)
        if c and c.upper() not in NO_REFERENCE:
            return c
    return None


def has_reference(text: str | None) -> bool:
    """True when `text` is a usable reference (not empty, not NONREF/NOTPROVIDED)."""
    c = clean(text)
    return c is not None and c.upper() not in NO_REFERENCE


@dataclass(slots=True)
class Rows:
    """Canonical rows collected column by column while a file is parsed."""

    natural_id: list[str | None] = field(default_factory=list)
    line: list[int] = field(default_factory=list)
    account: list[str | None] = field(default_factory=list)
    day: list[date] = field(default_factory=list)
    value_date: list[date | None] = field(default_factory=list)
    amount: list[str] = field(default_factory=list)
    currency: list[str | None] = field(default_factory=list)
    counterparty: list[str | None] = field(default_factory=list)
    reference: list[str | None] = field(default_factory=list)
    description: list[str | None] = field(default_factory=list)
    iban: list[str | None] = field(default_factory=list)
    #: per row: its natural id is one the source does not keep unique from file to file
    weak: list[bool] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.line)

    def add(self, *, natural_id: str | None, line: int, account: str | None, day: date,
            amount: Decimal, currency: str | None, value_date: date | None = None,
            counterparty: str | None = None, reference: str | None = None,
            description: str | None = None, iban: str | None = None,
            weak_id: bool = False) -> None:
        """Append one transaction (amount already signed and checked with `money`);
        `weak_id`: its natural id is one the source repeats from file to file."""
        self.natural_id.append(clean(natural_id))
        self.weak.append(weak_id and self.natural_id[-1] is not None)
        self.line.append(line)
        self.account.append(account)
        self.day.append(day)
        self.value_date.append(value_date)
        self.amount.append(format(amount, "f"))
        self.currency.append(currency)
        self.counterparty.append(clean(counterparty))
        self.reference.append(clean(reference))
        self.description.append(clean(description))
        self.iban.append(iban)

    def weak_rows(self, frame: pl.DataFrame) -> pl.DataFrame | None:
        """The rows of `frame` (from :meth:`frame`) whose natural id is weak, with the
        ids a file may have stored each under: ``LoadResult.weak_rows``."""
        if not any(self.weak):
            return None
        named = frame.with_columns(
            pl.Series("given", self.natural_id, dtype=pl.String),
            pl.Series("weak", self.weak, dtype=pl.Boolean))
        # over every row of the file, as recon did: the same occurrence numbers
        legacy = "syn-" + stable_ids(_hash_keys(named))
        return named.with_columns(legacy.alias("legacy")).filter("weak").select(
            "line", pl.col("given").alias("plain"), _qualified().alias("qualified"),
            "legacy")

    def frame(self, path: Path) -> tuple[pl.DataFrame, str | None]:
        """Build the canonical frame; return it and a note about made-up ids."""
        data = {
            "line": pl.Series(self.line, dtype=pl.Int64),
            "account": pl.Series(self.account, dtype=pl.String),
            "date": pl.Series(self.day, dtype=pl.Date),
            "value_date": pl.Series(self.value_date, dtype=pl.Date),
            "amount": pl.Series(self.amount, dtype=pl.String).cast(AMOUNT),
            "currency": pl.Series(self.currency, dtype=pl.String),
            "counterparty": pl.Series(self.counterparty, dtype=pl.String),
            "reference": pl.Series(self.reference, dtype=pl.String),
            "description": pl.Series(self.description, dtype=pl.String),
            "iban": pl.Series(self.iban, dtype=pl.String),
        }
        ids, note = self._ids(data)
        frame = pl.DataFrame({"id": ids, **data})
        return canonical(frame, path), note

    def _ids(self, data: dict[str, pl.Series]) -> tuple[pl.Series, str | None]:
        """The source's ids where present and unique, else a stable hash id.

        A weak id repeated in the file ('Rente' in an export of two months) is
        qualified by the row's date and amount ('Rente~2026-01-31~1.23'), as one
        repeated across files is; recon.db.store_file knows a stored transaction under
        either id.  Any other duplicated source id (NONREF, a bank reusing FITIDs
        across accounts), or a weak one still repeated once qualified (two equal
        interest lines of a day), gets a hash id on every occurrence, so no row
        silently wins the name.
        """
        given = pl.Series("id", self.natural_id, dtype=pl.String)
        frame = pl.DataFrame({"given": given, **data})
        named, told = given, None
        repeated = pl.Series(self.weak, dtype=pl.Boolean) & given.is_duplicated()
        if repeated.any():
            named = frame.select(
                pl.when(repeated).then(_qualified()).otherwise("given").alias("id"))["id"]
            told = (f"ids of {repeated.sum()} row(s) told apart by date and amount "
                    "('id~date~amount'): the source repeats them (a customer reference)")
        usable = named.is_not_null() & ~named.is_duplicated()
        if usable.all():
            return named, told
        made = "syn-" + stable_ids(_hash_keys(frame))
        missing = int((~usable).sum())
        dup = int((named.is_not_null() & ~usable).sum())
        note = (f"made ids for {missing} row(s) ({dup} with a duplicated source id): "
                "'syn-' + a hash of account, date, amount and text + occurrence")
        ids = pl.select(pl.when(usable).then(named).otherwise(made).alias("id"))["id"]
        return ids, "; ".join(n for n in (told, note) if n)


def _qualified() -> pl.Expr:
    """A weak id told apart by the row's date and amount: 'Rente~2026-02-28~0.98'
    (column ``given``).  recon.db.store_file stored such ids before: the text must
    not change."""
    amount = pl.col("amount").cast(pl.String).str.strip_chars_end("0").str.strip_chars_end(".")
    return pl.concat_str([pl.col("given"), pl.col("date").cast(pl.String), amount],
                         separator="~")


def _hash_keys(frame: pl.DataFrame) -> pl.Series:
    """What a made id hashes (the natural id in column ``given``): stored ids were made
    of it, the text must not change."""
    return frame.select(pl.concat_str(
        [pl.col(c).cast(pl.String).fill_null("") for c in
         ("account", "date", "amount", "given", "reference", "counterparty",
          "description")], separator="\x1f").alias("id")).to_series()


def statement(rows: Rows, first: int, *, account: str | None, currency: str | None,
              opening: Decimal | None, closing: Decimal | None,
              start: date | None = None, end: date | None = None,
              statement_id: str | None = None) -> StatementInfo:
    """Describe the statement whose rows start at index `first` and run to the end.

    Without stated period dates, the first and last transaction dates stand in.
    """
    dates = rows.day[first:]
    return StatementInfo(
        account=account, currency=currency, opening_balance=opening,
        closing_balance=closing,
        start_date=start or (min(dates) if dates else None),
        end_date=end or (max(dates) if dates else None),
        transactions=len(rows) - first, statement_id=statement_id)
