"""CSV statements and ledger exports: canonical CSV or any bank layout via a profile.

The file is decoded in Python (BOM, UTF-8, UTF-16, GB18030, CP1252 are told
apart from the bytes) and handed to polars as UTF-8; polars splits it into
string columns and every value is parsed with vectorised expressions.  Each
row keeps the physical line it starts on, so errors can say "line 57".
"""

from __future__ import annotations

import codecs
import csv as stdcsv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import polars as pl
import pyarrow as pa

from recon.errors import InputFileError
from recon.loaders.balances import balance_kinds, period_dates
from recon.loaders.base import AMOUNT, Loader, LoadResult, StatementInfo, canonical
from recon.loaders.profiles import (
    CANONICAL,
    Layout,
    Profile,
    find_layout,
    resolve_profile,
    widen,
)
from recon.normalise import (
    CONTROL_CHARS,
    DATE_FORMATS,
    amount_text_expr,
    date_text_expr,
    parse_amount_column,
    parse_date_column,
    stable_ids,
    strptime_date,
)

HEAD_BYTES = 64 * 1024
HEADER_LINES = 100  # lines searched for a header (preambles are shorter)
SAMPLE_ROWS = 200  # data rows sampled to see whether rows are wider than the header
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "utf-32"), (codecs.BOM_UTF32_BE, "utf-32-be", "utf-32"),
    (codecs.BOM_UTF8, "utf-8", "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16-be"),
)
_NOT_CSV = re.compile(r"^\s*(<|OFXHEADER|:20:|\{1:|01,[^\n]*/\s*$)", re.IGNORECASE)


# --- decoding ---------------------------------------------------------------


def _isolated_high_bytes(sample: bytes) -> float:
    """Share of non-ASCII bytes with ASCII on both sides (Latin-1 text: ~1, GBK: ~0)."""
    arr = np.frombuffer(sample, dtype=np.uint8)
    hi = arr >= 0x80
    total = int(hi.sum())
    if not total:
        return 1.0
    prev = np.concatenate(([False], hi[:-1]))
    nxt = np.concatenate((hi[1:], [False]))
    return float((hi & ~prev & ~nxt).sum()) / total


def _reads_as_chinese(sample: bytes) -> bool:
    """Whether bytes that decode as GB18030 read better so than as Windows-1252.

    Western words pair accented bytes too ('Operação', 'Transações'), and GB18030
    decodes the pairs into Chinese characters amid Latin letters.  charset-normalizer
    weighs the two readings; the sample is cut at a line end (a head may end inside a
    character)."""
    from charset_normalizer import from_bytes  # lazy: only non-UTF-8 files need it

    cut = sample.rfind(b"\n") + 1
    best = from_bytes(sample[:cut] or sample, cp_isolation=["gb18030", "cp1252"]).best()
    return best is None or best.encoding == "gb18030"


def _strict(raw: bytes, codec: str, partial: bool = False) -> bool:
    """Whether `raw` decodes; with `partial`, a character cut off at the end is fine."""
    if codec == "utf-8" and valid_utf8(raw):
        return True
    try:
        raw.decode(codec)
    except UnicodeDecodeError as exc:
        return partial and exc.start >= len(raw) - 3 and exc.reason == "unexpected end of data"
    return True


def valid_utf8(raw: bytes) -> bool:
    """Whether `raw` is UTF-8 (the strict form Python decodes), checked by Arrow in place.

    Decoding a file to a Python str only to learn that it decodes took 0.24 s per
    180 MB export (1.2 s per 900 MB), and the str held two bytes per character, or
    four, once the text has one character beyond Latin-1 (a Chinese name).
    """
    offsets = pa.py_buffer(np.array([0, len(raw)], dtype=np.int64))
    text = pa.LargeStringArray.from_buffers(1, offsets, pa.py_buffer(raw))
    try:
        text.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _utf16_without_bom(sample: bytes) -> str | None:
    even, odd = sample[0::2], sample[1::2]
    if len(sample) >= 8 and odd.count(0) > 0.4 * len(odd) and even.count(0) < 0.05 * len(even):
        return "utf-16-le"
    if len(sample) >= 8 and even.count(0) > 0.4 * len(even) and odd.count(0) < 0.05 * len(odd):
        return "utf-16-be"
    return None


def detect_encoding(raw: bytes, preferred: str = "auto", *, partial: bool = False
                    ) -> tuple[str, int, str]:
    """Return (codec, BOM length, why) for `raw`; `preferred` is the profile's encoding.

    `partial`: `raw` is the head of a longer file (it may end inside a character).
    """
    for bom, codec, label in _BOMS:
        if raw.startswith(bom):
            return codec, len(bom), f"encoding {label}: the file starts with its byte-order mark"
    sample = raw[:HEAD_BYTES]
    utf16 = _utf16_without_bom(sample)
    if utf16:
        return utf16, 0, f"encoding {utf16}: every other byte is zero (UTF-16 without BOM)"
    if raw.isascii():
        return "utf-8", 0, "encoding utf-8: the file is plain ASCII"
    if _strict(raw, "utf-8", partial):
        return "utf-8", 0, "encoding utf-8: the bytes are valid UTF-8"
    if preferred != "auto" and codecs.lookup(preferred).name != "utf-8" and _strict(
            raw, preferred):
        return preferred, 0, f"encoding {preferred}: not UTF-8; the profile's encoding"
    if (_isolated_high_bytes(sample) < 0.25 and _strict(raw, "gb18030", partial)
            and _reads_as_chinese(sample)):
        return "gb18030", 0, ("encoding gb18030: not UTF-8; non-ASCII bytes come in pairs "
                              "(Chinese GBK/GB18030)")
    if _strict(raw, "cp1252"):
        return "cp1252", 0, "encoding cp1252: not UTF-8; accented Western European letters"
    return "latin-1", 0, "encoding latin-1: not UTF-8 nor CP1252"


def to_utf8(raw: bytes, preferred: str = "auto", *, path: Path | None = None
            ) -> tuple[bytes, str, str]:
    """Decode `raw` and return (UTF-8 bytes without BOM, encoding, why).

    With `path` None (sniffing a truncated head) undecodable bytes are replaced;
    otherwise they raise InputFileError.
    """
    codec, bom, why = detect_encoding(raw, preferred, partial=path is None)
    try:
        data = raw[bom:] if codec == "utf-8" else raw[bom:].decode(
            codec, errors="strict" if path else "replace").encode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputFileError(
            path or "<bytes>", f"not valid {codec} at byte {exc.start}: {why}",
            hint="save the file again as UTF-8, or give the profile's encoding") from exc
    if path is not None:
        _refuse_garbage(raw, data, codec, path)
    if b"\r" in data and b"\n" not in data:
        data = data.replace(b"\r", b"\n")  # classic Mac line ends: one CR per line
        why += "; CR-only line ends"
    label = "utf-8-sig" if codec == "utf-8" and bom else codec
    return data, label, why


_CONTROL = re.compile(CONTROL_CHARS.encode())
#: Every byte but those _CONTROL finds: deleting them leaves only control bytes, a scan
#: ten times faster than the regex (which then only says where the first one is).
_NOT_CONTROL = bytes(b for b in range(256) if not _CONTROL.match(bytes([b])))
_UTF8_PAIR = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}")


def _refuse_garbage(raw: bytes, data: bytes, codec: str, path: Path) -> None:
    """No bank export holds NUL or other control bytes, or UTF-8 mixed with a
    single-byte encoding: loading them would store garbled text."""
    bad = _CONTROL.search(data) if data.translate(None, _NOT_CONTROL) else None
    if bad:
        line = data.count(b"\n", 0, bad.start()) + 1
        raise InputFileError(
            path, f"control byte {bad.group()!r} in the text; this is not a text export",
            line=line, hint="export the statement again, as CSV in UTF-8")
    if codec in ("cp1252", "latin-1"):
        mixed = _UTF8_PAIR.search(raw)
        if mixed:
            line = raw.count(b"\n", 0, mixed.start()) + 1
            raise InputFileError(
                path, f"mixes UTF-8 (line {line}) with a single-byte encoding ({codec}); "
                "its text would be garbled", line=line,
                hint="save the whole file again in one encoding (UTF-8)")


# --- splitting --------------------------------------------------------------


class _Head:
    """The first lines of a decoded file, split per (delimiter, quote) on demand."""

    def __init__(self, data: bytes) -> None:
        head = data[:HEAD_BYTES]
        if len(data) > HEAD_BYTES and b"\n" in head:
            head = head[: head.rindex(b"\n") + 1]
        text = head.decode("utf-8", errors="replace")
        self.lines = [line.rstrip("\r") for line in text.split("\n")]
        if self.lines and self.lines[-1] == "":
            self.lines.pop()
        self._rows: dict[tuple[str, str | None], list[list[str]]] = {}

    def rows(self, profile: Profile) -> list[list[str]]:
        key = (profile.delimiter, profile.quotechar)
        if key not in self._rows:  # the header is searched in the first HEADER_LINES only
            self._rows[key] = [_split(line, *key) for line in self.lines[:HEADER_LINES]]
        return self._rows[key]

    def width(self, layout: Layout) -> int:
        """Widest row among the first data rows (quoted newlines respected)."""
        p = layout.profile
        sample = [ln + "\n" for ln in self.lines[layout.data_row:layout.data_row + SAMPLE_ROWS]]
        reader = _reader(sample, p.delimiter, p.quotechar)
        try:
            return max((len(r) for r in reader), default=0)
        except stdcsv.Error:
            return 0


def _reader(source: Iterable[str], delimiter: str, quote: str | None, *,
            strict: bool = False) -> Any:  # typeshed's _csv.Reader is private
    if quote is None:
        return stdcsv.reader(source, delimiter=delimiter, quoting=stdcsv.QUOTE_NONE,
                             strict=strict)
    return stdcsv.reader(source, delimiter=delimiter, quotechar=quote, strict=strict)


def _split(line: str, delimiter: str, quote: str | None) -> list[str]:
    try:
        row: list[str] = next(_reader([line], delimiter, quote), [])
    except stdcsv.Error:
        return line.split(delimiter)
    return row


def _line_offset(data: bytes, lines: int) -> int:
    """Byte offset where physical line `lines` (0-based) starts."""
    pos = 0
    for _ in range(lines):
        nl = data.find(b"\n", pos)
        if nl < 0:
            return len(data)
        pos = nl + 1
    return pos


def _stripped_end(body: bytes, end: int) -> int:
    """len(body[:end].rstrip()), without copying the body."""
    while end and body[end - 1:end].isspace():
        end -= 1
    return end


def _last_lines(body: bytes, count: int) -> list[tuple[int, int]]:
    """(start, end) of the last `count` lines of `body` that are not blank, in order."""
    found: list[tuple[int, int]] = []
    end = _stripped_end(body, len(body))
    while end and len(found) < count:
        nl = body.rfind(b"\n", 0, end)
        found.append((nl + 1, end))
        end = _stripped_end(body, max(nl, 0))
    return found[::-1]


def _cut_footer(body: bytes, layout: Layout, first_line: int, path: Path,
                notes: list[str]) -> bytes:
    """`body` without its footer (see `footer_start`)."""
    p = layout.profile
    lines = _last_lines(body, p.footer_lines)
    texts = [body[a:b].decode("utf-8", errors="replace") for a, b in lines]
    at = footer_start(texts, [_split(t, p.delimiter, p.quotechar) for t in texts], layout,
                      path, lambda i: first_line + body.count(b"\n", 0, lines[i][0]), notes)
    if at is None:
        return body
    end = _stripped_end(body, lines[at][0] if lines else 0)
    return body[:end] + (b"\n" if end else b"")


def footer_start(texts: Sequence[str], cells: Sequence[Sequence[str | None]],
                 layout: Layout, path: Path, line_of: Callable[[int], int],
                 notes: list[str]) -> int | None:
    """Where the footer starts among the last footer_lines non-blank lines (`texts`,
    split in `cells`; `line_of` gives a line's number): at the first of them that
    matches footer_line when the profile has one (none matches: no footer, None), else
    at the first of them, which may not read as a transaction."""
    p = layout.profile
    at = 0
    if p.footer_line is not None:
        found = next((i for i, t in enumerate(texts) if p.footer_line.search(t)), None)
        if found is None:
            notes.append(f"no footer: none of the last {p.footer_lines} line(s) matches "
                         f"footer_line {p.footer_line.pattern!r}")
            return None
        at = found
    elif (row := _transaction(cells, layout) if cells else None) is not None:
        raise InputFileError(
            path, f"dropped as the footer (footer_lines: {p.footer_lines}) but reads as a "
            f"transaction: {texts[row][:120]!r}", line=line_of(row),
            hint="an export without its footer would lose its last rows: give the profile "
                 "a footer_line pattern that the footer's first line matches (such as "
                 "'^Total'), or remove footer_lines")
    notes.append(f"dropped the last {len(texts) - at} line(s) (footer)")
    return at


def _transaction(cells: Sequence[Sequence[str | None]], layout: Layout) -> int | None:
    """The first of `cells` with a date and an amount where a row has them: a row, which
    an export without its footer would lose (footer_line says which lines are footer)."""
    p = layout.profile
    rows = rows_from_cells(cells, layout)
    date = rows[layout.columns["date"][0]].str.strip_chars()
    dated = pl.repeat(False, rows.height, eager=True)
    for fmt in p.date_format:
        strf = DATE_FORMATS.get(fmt, fmt)
        # as the loader reads a date (a time of day may follow it: "2024-03-03T11:30"),
        # or the date before any white space ("03.01.2024\t11:30")
        cut = date if " " in strf else date.str.replace(r"\s.*$", "")
        parsed = pl.DataFrame({"t": date, "c": cut}).select(
            date_text_expr(pl.col("t"), strf).is_not_null()
            | date_text_expr(pl.col("c"), strf).is_not_null())
        dated = dated | parsed.to_series().fill_null(False)
    sources = [layout.columns[f][0] for f in ("amount", "debit", "credit") if f in layout.columns]
    priced = pl.repeat(False, rows.height, eager=True)
    for name in sources:
        text = _amount_text(rows[name], p.decimal, p.thousands)
        priced = priced | text.str.contains(_PLAIN_AMOUNT).fill_null(False)
    found = (dated & priced).arg_true()
    return int(found[0]) if found.len() else None


def read_rows(data: bytes, layout: Layout, path: Path, *,
              header_width: int | None = None, notes: list[str] | None = None
              ) -> pl.DataFrame:
    """Split the data part of a decoded file into string columns plus `line`.

    `layout` may name more fields than the header has (`header_width`, default all
    of them): rows as wide as the first ones, or the profile's column_N.  A row
    with a cell past the header that the profile does not name is refused: it is
    a field holding the delimiter unquoted, which shifts every field after it.
    What is dropped as footer is said in `notes`.
    """
    p = layout.profile
    names = list(layout.names)
    start = _line_offset(data, layout.data_row)
    if p.footer_lines:
        body = _cut_footer(data[start:], layout, layout.data_row + 1, path,
                           [] if notes is None else notes)
        skip, start = 0, 0
    else:
        # polars skips the lines before the data: a copy of the body would hold a
        # second file's worth of bytes while the columns are split
        body, skip = data, layout.data_row
    header = len(names) if header_width is None else header_width
    try:
        try:
            frame = _split_columns(body, names, p, skip, truncate=False)
        except pl.exceptions.ComputeError as exc:
            if _MORE_FIELDS not in str(exc):
                raise
            # a row past the sampled ones is wider still: cut only if what goes is empty
            _refuse_wider(body, start, layout, header, path)
            frame = _split_columns(body, names, p, skip, truncate=True)
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, ValueError) as exc:
        raise _split_error(body[start:], p, layout.data_row + 1, exc, path) from exc
    lines = _physical_lines(body, start)
    frame = frame.with_columns(_line_numbers(frame, lines, layout.data_row + 1))
    _refuse_unnamed_cells(frame, layout, header, data, path)
    return frame


_MORE_FIELDS = "found more fields than defined"  # polars, truncate_ragged_lines=False


def _split_columns(body: bytes, names: Sequence[str], p: Profile, skip: int, *,
                   truncate: bool) -> pl.DataFrame:
    return pl.read_csv(
        body, has_header=False, separator=p.delimiter, quote_char=p.quotechar,
        schema=dict.fromkeys(names, pl.String()), truncate_ragged_lines=truncate,
        missing_columns="insert", raise_if_empty=False, skip_lines=skip,
    )


def _named_width(layout: Layout) -> int:
    """How many fields the profile names: its column_N past the header count too
    (Livebank's text runs on into unnamed fields the profile joins)."""
    numbers = [int(m.group(1)) for col in layout.profile.references().values()
               for name in col.names if (m := _COLUMN_N.fullmatch(name))]
    return max([len(layout.names), *numbers])


_COLUMN_N = re.compile(r"column_([0-9]+)")


def _refuse_unnamed_cells(frame: pl.DataFrame, layout: Layout, header: int, data: bytes,
                          path: Path) -> None:
    """Cells past the header must be empty unless the profile names their column."""
    used = {name for cols in layout.columns.values() for name in cols}
    extra = [n for n in layout.names[header:] if n not in used]
    if not extra or not frame.height:
        return
    filled = frame.select(pl.any_horizontal(~_empty(n) for n in extra)).to_series()
    if filled.any():
        line = _first_line(frame, filled)
        raise _too_wide(path, layout, line, _record_at(data, line, layout.profile), header)


def _refuse_wider(body: bytes, start: int, layout: Layout, header: int, path: Path) -> None:
    """Find a row wider than `layout` with a cell in what would be cut, and refuse it.

    Runs only when polars met such a row past the sampled ones (it does not say
    where): the csv module then reads the rows once more, to name the line.
    """
    p, width = layout.profile, len(layout.names)
    text = io.StringIO(body[start:].decode("utf-8", errors="replace"), newline="")
    reader = _reader(text, p.delimiter, p.quotechar)
    first = 1
    try:
        for cells in reader:
            if len(cells) > width and any(c.strip() for c in cells[width:]):
                raise _too_wide(path, layout, layout.data_row + first, cells, header)
            first = reader.line_num + 1
    except stdcsv.Error as exc:
        raise InputFileError(
            path, f"a row after line {layout.data_row + first} has more fields than the "
            f"{header} of the header, and it cannot be told which ({exc})",
            hint=_quote_hint(p)) from exc


def _record_at(data: bytes, line: int, p: Profile) -> list[str]:
    """The fields of the row that starts on physical line `line` (1-based)."""
    start = _line_offset(data, line - 1)
    text = data[start:start + HEAD_BYTES].decode("utf-8", errors="replace")
    try:
        return list(next(_reader(io.StringIO(text, newline=""), p.delimiter, p.quotechar), []))
    except stdcsv.Error:
        return text.split("\n", 1)[0].split(p.delimiter)


def _quote_hint(p: Profile) -> str:
    if p.quotechar is None:
        return (f"this profile reads no quotes (quotechar: null): remove the delimiter "
                f"{p.delimiter!r} from the field, or set the profile's quotechar")
    return (f"a field that holds the delimiter {p.delimiter!r} must be quoted "
            f"({p.quotechar}...{p.delimiter}...{p.quotechar}); quote it, or export the file "
            "again with quoted text fields")


def _too_wide(path: Path, layout: Layout, line: int, cells: Sequence[str],
              header: int) -> InputFileError:
    p = layout.profile
    shown = ", ".join(repr(c[:40]) for c in cells[:12]) + (", ..." if len(cells) > 12 else "")
    names = "the header has" if layout.header_row is not None else "the profile names"
    used = {name for cols in layout.columns.values() for name in cols}
    named = max((i + 1 for i, n in enumerate(layout.names) if n in used), default=0)
    also = f" (and the profile names up to {named})" if named > header else ""
    return InputFileError(
        path, f"{len(cells)} fields where {names} {header}{also}: {shown}; a field holding "
        f"the delimiter {p.delimiter!r} unquoted shifts the fields after it, and only empty "
        "cells may follow the named columns", line=line, hint=_quote_hint(p))


def _physical_lines(data: bytes, start: int) -> int:
    """Lines of `data` from byte `start` on, a last line without a newline included."""
    if start >= len(data):
        return 0
    return data.count(b"\n", start) + (0 if data.endswith(b"\n") else 1)


def _split_error(body: bytes, p: Profile, first_line: int, exc: BaseException,
                 path: Path) -> InputFileError:
    """Say where the quoting breaks (polars' own message is about schema inference)."""
    field = re.search(r"Field `(.*?)` is not properly escaped", str(exc), re.DOTALL)
    found = f" {field.group(1)[:60]!r}" if field else ""
    reader = _reader(io.StringIO(body.decode("utf-8", errors="replace"), newline=""),
                     p.delimiter, p.quotechar, strict=True)
    start = 1
    try:
        for _ in reader:
            start = reader.line_num + 1
    except stdcsv.Error:
        return InputFileError(
            path, f"badly quoted field{found}", line=first_line + start - 1,
            hint=f"a field that starts with {p.quotechar} must end with one, and quotes "
                 f"inside it are doubled; check the delimiter {p.delimiter!r}")
    return InputFileError(path, f"cannot split the file into columns{found}",
                          hint=f"check the delimiter {p.delimiter!r} and the quoting")


def _line_numbers(frame: pl.DataFrame, physical: int, first: int) -> pl.Series:
    index = pl.int_range(first, first + frame.height, dtype=pl.Int64, eager=True)
    if frame.height == physical or not frame.width:
        return index.alias("line")
    # Quoted fields span lines: each row starts after the newlines inside earlier rows.
    inside = frame.select(pl.sum_horizontal(
        pl.col(c).str.count_matches("\n").fill_null(0) for c in frame.columns))
    shift = inside.to_series().cast(pl.Int64).cum_sum().shift(1, fill_value=0)
    return (index + shift).alias("line")


# --- the loader -------------------------------------------------------------


def layout_for(data: bytes, path: Path, profile: Profile | None) -> tuple[Layout, _Head]:
    """Find the profile and header row for a decoded file."""
    head = _Head(data)
    if profile is None:
        return find_layout(head.rows, path, lines=head.lines), head
    layout = find_layout(head.rows, path, candidates=[profile], lines=head.lines, forced=True)
    return layout, head


def _describe(layout: Layout) -> list[str]:
    notes = [layout.reason]
    if layout.header_row:
        notes.append(f"skipped {layout.header_row} line(s) before the header")
    return notes


class CsvLoader(Loader):
    """Canonical CSV, or a bank's CSV export described by a profile."""

    format: ClassVar[str] = "csv"
    extensions: ClassVar[tuple[str, ...]] = (".csv", ".tsv", ".txt")

    @classmethod
    def sniff(cls, head: bytes, path: Path) -> int:
        """90+ for a header a profile knows, 40-50 for other delimited text, else 0."""
        if head.startswith((b"PK\x03\x04", b"PAR1")):
            return 0
        try:
            data, _, _ = to_utf8(head)
        except (UnicodeDecodeError, LookupError):
            return 0
        text = data[:4096].decode("utf-8", errors="replace")
        if _NOT_CSV.match(text):
            return 0
        try:
            layout, _ = layout_for(data, path, None)
        except InputFileError:
            return _delimited_score(text, path)
        return 95 if layout.profile is CANONICAL else 90

    def load(self, path: Path, *, profile: str | None = None) -> LoadResult:
        """Decode, detect the layout, split with polars and map to canonical rows."""
        forced = resolve_profile(profile) if profile else None
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise InputFileError(path, f"cannot read file: {exc.strerror or exc}") from exc
        data, encoding, why = to_utf8(raw, forced.encoding if forced else "auto", path=path)
        del raw  # a file decoded from another encoding is held once, not twice
        layout, head = layout_for(data, path, forced)
        header = len(layout.names)
        layout = widen(layout, max(head.width(layout), _named_width(layout)))
        footer: list[str] = []
        rows = read_rows(data, layout, path, header_width=header, notes=footer)
        del data  # the columns hold the text now
        mapped = to_canonical(rows, layout, path, undated_balances=self.undated_balances)
        notes = [why, *_describe(layout), *footer, *mapped.notes]
        return LoadResult(
            path=path, format=self.format, frame=mapped.frame, statements=mapped.statements,
            profile=layout.profile.name, encoding=encoding, notes=notes,
        )


def _delimited_score(text: str, path: Path) -> int:
    lines = [ln for ln in text.splitlines()[:20] if ln.strip()]
    ext = 10 if path.suffix.lower() in CsvLoader.extensions else 0
    for delim in (",", ";", "\t", "|"):
        counts = [ln.count(delim) for ln in lines]
        if len(lines) >= 2 and counts[0] and counts.count(counts[0]) >= 0.8 * len(counts):
            return 40 + ext
    return ext * 2


def rows_from_cells(cells: Sequence[Sequence[str | None]], layout: Layout,
                    first_line: int = 1) -> pl.DataFrame:
    """A frame of string columns (plus `line`) from already split rows (XLSX, tests)."""
    width = max([len(layout.names), *(len(r) for r in cells)])
    names = list(layout.names) + [f"column_{i + 1}" for i in range(len(layout.names), width)]
    columns = {n: [r[i] if i < len(r) else None for r in cells] for i, n in enumerate(names)}
    frame = pl.DataFrame(columns, schema=dict.fromkeys(names, pl.String()))
    return frame.with_columns(
        pl.int_range(first_line, first_line + frame.height, dtype=pl.Int64).alias("line"))


# --- mapping rows onto the canonical schema (shared with XLSX and Parquet) ----

_CURRENCY_WORDS = {"€": "EUR", "£": "GBP", "RMB": "CNY", "人民币": "CNY", "￥": "CNY", "元": "CNY"}
_ID_PARTS = ("account", "date", "amount", "counterparty", "reference", "description")
_TEXT_FIELDS = ("id", "account", "currency", "counterparty", "reference", "description",
                "iban", "doc_type", "customer_id")
_PLAIN_AMOUNT = r"^-?[0-9]{1,16}(\.[0-9]{1,4})?$"  # fits Decimal(20, 4)
_ISO_CODE = r"^[A-Z]{3}$"


@dataclass(slots=True)
class Mapped:
    """Canonical rows of one file plus what the mapping noticed."""

    frame: pl.DataFrame
    notes: list[str] = field(default_factory=list)
    statements: list[StatementInfo] = field(default_factory=list)


def _empty(name: str) -> pl.Expr:
    return pl.col(name).is_null() | (pl.col(name).str.strip_chars() == "")


def _first_line(rows: pl.DataFrame, mask: pl.Series) -> int:
    return int(rows.filter(mask)["line"][0])


def _drop(rows: pl.DataFrame, mask: pl.Expr, what: str, notes: list[str]) -> pl.DataFrame:
    kept = rows.filter(~mask)
    if kept.height != rows.height:
        lines = rows.filter(mask)["line"].head(5).to_list()
        more = ", ..." if rows.height - kept.height > 5 else ""
        notes.append(f"skipped {rows.height - kept.height} {what} (line "
                     f"{', '.join(map(str, lines))}{more})")
    return kept


def _skip_rows(rows: pl.DataFrame, layout: Layout, notes: list[str]) -> pl.DataFrame:
    data = [c for c in rows.columns if c != "line"]
    if data and (rows[data[0]].is_null() | (rows[data[0]] == "")).any():
        blank = pl.all_horizontal(pl.col(c).is_null() | (pl.col(c) == "") for c in data)
        rows = rows.filter(~blank)  # blank lines, or lines of only delimiters
    p, cols = layout.profile, layout.columns
    if p.indicator is not None and p.indicator.ignore:
        key = _indicator_key(cols["indicator"][0]).is_in(list(p.indicator.ignore))
        rows = _drop(rows, key, "row(s) the indicator marks as neither credit nor debit", notes)
    if p.skip_empty_amount:
        sources = [cols[f][0] for f in ("amount", "debit", "credit") if f in cols]
        rows = _drop(rows, pl.all_horizontal(_empty(c) for c in sources),
                     "row(s) without an amount", notes)
    return rows


def _indicator_key(name: str) -> pl.Expr:
    return pl.col(name).fill_null("").str.replace_all(r"\s+", " ").str.strip_chars(
    ).str.to_lowercase()


def _signed_by_indicator(rows: pl.DataFrame, amount: pl.Series, layout: Layout,
                         path: Path) -> pl.Series:
    ind = layout.profile.indicator
    assert ind is not None
    name = layout.columns["indicator"][0]
    key = rows.select(_indicator_key(name)).to_series()
    credit, debit = key.is_in(list(ind.credit)), key.is_in(list(ind.debit))
    bad = ~credit & ~debit
    if bad.any():
        found = rows.filter(bad)[name][0]
        raise InputFileError(
            path, f"unknown value {found!r} in indicator column {name!r}; expected one of "
            f"{sorted(ind.credit)} (credit) or {sorted(ind.debit)} (debit)",
            line=_first_line(rows, bad), field=name,
            hint="add the value to the profile's indicator credit/debit/ignore lists")
    frame = pl.DataFrame({"a": amount, "credit": credit})
    return frame.select(pl.when(pl.col("credit")).then(pl.col("a").abs())
                        .otherwise(-pl.col("a").abs()).cast(AMOUNT)).to_series()


def _amount_text(raw: pl.Series, decimal: str, thousands: str | None) -> pl.Series:
    """normalise.amount_text_expr of `raw`."""
    return pl.DataFrame({"t": raw}).select(
        amount_text_expr(pl.col("t"), decimal=decimal, thousands=thousands))["t"]


def _all_plain(text: pl.Series, allow_empty: bool) -> bool:
    frame = pl.DataFrame({"t": text}).select(
        ok=pl.col("t").str.contains(_PLAIN_AMOUNT).fill_null(False),
        empty=pl.col("t").is_null() | (pl.col("t") == ""))
    bad = ~frame["ok"] & ~(frame["empty"] & allow_empty)
    return not bad.any()


def _too_large(rows: pl.DataFrame, text: pl.Series, name: str, path: Path) -> None:
    big = text.str.contains(r"^-?[0-9]{17,}(\.[0-9]*)?$").fill_null(False)
    if big.any():
        raise InputFileError(
            path, f"amount {rows.filter(big)[name][0]!r} in column {name!r} is too large; "
            "expected at most 16 digits before the decimal point",
            line=_first_line(rows, big), field=name)


def parse_amounts(rows: pl.DataFrame, name: str, path: Path, *, decimal: str = ".",
                  thousands: str | None = None, allow_empty: bool = False) -> pl.Series:
    """Same result as normalise.parse_amount_column, with fast paths for clean columns."""
    raw = rows[name]
    if decimal == "." and _all_plain(raw, allow_empty):
        return raw.replace("", None).cast(AMOUNT).alias(name)
    text = _amount_text(raw, decimal, thousands)
    if _all_plain(text, allow_empty):
        return text.replace("", None).cast(AMOUNT).alias(name)
    _too_large(rows, text, name, path)
    try:  # raises naming the first bad line
        return parse_amount_column(rows, name, path, decimal=decimal, thousands=thousands,
                                   allow_empty=allow_empty)
    except pl.exceptions.PolarsError as exc:
        raise InputFileError(path, f"cannot parse the amounts in column {name!r}: {exc}",
                             field=name) from exc


def _amount(rows: pl.DataFrame, layout: Layout, path: Path) -> pl.Series:
    p, cols = layout.profile, layout.columns
    dec, tho = p.decimal, p.thousands
    if "amount" in cols:
        amount = parse_amounts(rows, cols["amount"][0], path, decimal=dec, thousands=tho)
        if p.indicator is not None:
            amount = _signed_by_indicator(rows, amount, layout, path)
    else:
        d, c = cols["debit"][0], cols["credit"][0]
        parts = pl.DataFrame({
            "d": parse_amounts(rows, d, path, decimal=dec, thousands=tho, allow_empty=True),
            "c": parse_amounts(rows, c, path, decimal=dec, thousands=tho, allow_empty=True),
        })
        none = parts["d"].is_null() & parts["c"].is_null()
        if none.any():
            raise InputFileError(
                path, f"no amount: both {d!r} and {c!r} are empty", line=_first_line(rows, none),
                field=d, hint="if such rows are not transactions, set skip_empty_amount: true")
        # debits may be shown negative (as debits) or positive; a credit is shown
        # positive, so a negative one is a credit reversed: money out
        amount = parts.select((pl.col("c").fill_null(0) - pl.col("d").fill_null(0).abs())
                              .cast(AMOUNT)).to_series()
    return (-amount if p.invert_sign else amount).cast(AMOUNT).alias("amount")


def _dates(rows: pl.DataFrame, name: str, formats: Sequence[str], path: Path, *,
           allow_empty: bool, notes: list[str]) -> pl.Series:
    """Parse with the first format that fits every row; the first error otherwise."""
    frame = rows.select("line", pl.col(name).str.strip_chars().alias("__raw"))
    empty = frame["__raw"].is_null() | (frame["__raw"] == "")
    failures: list[InputFileError] = []
    for fmt in formats:
        strf = DATE_FORMATS.get(fmt, fmt)
        fast = frame.select(strptime_date(pl.col("__raw"), strf)).to_series()
        if fast.null_count() == (int(empty.sum()) if allow_empty else 0):
            if len(formats) > 1:
                notes.append(f"dates in {name!r} read as {fmt} (of {', '.join(formats)})")
            return fast.alias(name)
        probe = frame
        if " " not in strf and frame["__raw"].str.contains(" ", literal=True).any():
            # "2/1/2020 11:05:56": drop the time of day after the date
            probe = frame.with_columns(pl.col("__raw").str.replace(r"\s.*$", ""))
        try:
            parsed = parse_date_column(probe, "__raw", path, fmt=fmt, source_name=name,
                                       allow_empty=allow_empty)
        except InputFileError as exc:
            failures.append(exc)
            continue
        if len(formats) > 1:
            notes.append(f"dates in {name!r} read as {fmt} (of {', '.join(formats)})")
        return parsed
    if len(formats) > 1:
        first = failures[0]
        first.hint = f"tried date formats {', '.join(formats)}; none fits every row"
        raise InputFileError(path, first.message, line=first.line, field=first.field,
                             hint=first.hint)
    raise failures[0]


def _raw_text(names: Sequence[str], verbatim: bool) -> pl.Expr:
    if verbatim:  # canonical input: keep values as given, only trimmed
        return pl.col(names[0]).str.strip_chars()
    joined = pl.col(names[0]) if len(names) == 1 else pl.concat_str(
        [pl.col(n) for n in names], separator=" ", ignore_nulls=True)
    return joined.str.replace_all(r"\s+", " ").str.strip_chars()  # as clean_text_expr


def _text_columns(rows: pl.DataFrame, layout: Layout) -> pl.DataFrame:
    """Text fields plus `line`; two passes, as one nested when() is ~3x slower on 1M rows."""
    p, cols = layout.profile, layout.columns
    present = [f for f in _TEXT_FIELDS if f in cols]
    out = rows.select("line", *(_raw_text(cols[f], p is CANONICAL).alias(f) for f in present))
    out = out.with_columns(
        pl.when(pl.col(f) == "").then(None).otherwise(pl.col(f)).alias(f) for f in present)
    for fld, value in (("account", p.account), ("currency", p.currency)):
        if fld not in present:
            out = out.with_columns(pl.lit(value, dtype=pl.String).alias(fld))
        elif value is not None:
            out = out.with_columns(pl.col(fld).fill_null(value))
    codes = out["currency"].unique()  # a handful of values: check those, not every row
    if codes.drop_nulls().str.contains(_ISO_CODE).all():
        return out
    return out.with_columns(pl.col("currency").str.to_uppercase().replace(_CURRENCY_WORDS))


def _check_currency(frame: pl.DataFrame, source: str, path: Path) -> None:
    if frame["currency"].unique().drop_nulls().str.contains(_ISO_CODE).all():
        return
    bad = frame.filter(pl.col("currency").is_not_null()
                       & ~pl.col("currency").str.contains(_ISO_CODE))
    if bad.height:
        row = bad.row(0, named=True)
        raise InputFileError(
            path, f"currency {row['currency']!r} is not a 3-letter ISO 4217 code like 'EUR'",
            line=row["line"], field=source)


def _row_dates(rows: pl.DataFrame, out: pl.DataFrame, layout: Layout, path: Path,
               notes: list[str], undated_balances: bool) -> pl.Series:
    """The rows' dates.  With `undated_balances` (a customer statement) a balance line
    of `out` (its text columns) may have none: it is dated by its statement's period.
    Any other row without a date is refused by _dates, as in any other file."""
    name, formats = layout.columns["date"][0], layout.profile.date_format
    if not undated_balances or not rows.select(_empty(name).any()).item():
        return _dates(rows, name, formats, path, allow_empty=False, notes=notes)
    kinds = balance_kinds(out)
    undated = rows.select(_empty(name)).to_series() & kinds.is_not_null()
    parsed = _dates(rows.filter(~undated), name, formats, path, allow_empty=False,
                    notes=notes)
    dates = pl.repeat(None, rows.height, dtype=pl.Date, eager=True).scatter(
        np.flatnonzero(~undated.to_numpy()), parsed)
    dated = period_dates(out.with_columns(dates.alias("date")), kinds)
    if dated.null_count():
        raise InputFileError(
            path, f"a balance line without a date in column {name!r}, and no transaction "
            "of its account and currency to take one from", line=_first_line(
                rows, dated.is_null()), field=name, hint="give the line its date")
    return dated


def _base_columns(rows: pl.DataFrame, layout: Layout, path: Path,
                  notes: list[str], undated_balances: bool) -> pl.DataFrame:
    p, cols = layout.profile, layout.columns
    out = _text_columns(rows, layout)
    _check_currency(out, cols.get("currency", ("currency",))[0], path)
    value_formats = p.value_date_format or p.date_format
    out = out.with_columns(
        _row_dates(rows, out, layout, path, notes, undated_balances).alias("date"),
        _amount(rows, layout, path))
    for fld in ("value_date", "due_date"):
        if fld in cols:
            out = out.with_columns(_dates(rows, cols[fld][0], value_formats, path,
                                          allow_empty=True, notes=notes).alias(fld))
    return out


def _with_ids(out: pl.DataFrame, notes: list[str], *, synthesize: bool) -> pl.DataFrame:
    """Fill ids a bank export lacks; canonical input must carry its own (CONTRACT)."""
    given = out["id"] if "id" in out.columns else None
    if not synthesize or (given is not None and given.null_count() == 0):
        return out
    parts = [pl.col(c).cast(pl.String).fill_null("") if c in out.columns else pl.lit("")
             for c in _ID_PARTS]
    keys = out.select(pl.concat_str(parts, separator="\x1f").alias("id")).to_series()
    made = stable_ids(keys)
    missing = out.height if given is None else given.null_count()
    notes.append(f"made ids for {missing} row(s) without one: a hash of "
                 f"{', '.join(_ID_PARTS)} plus the occurrence among identical rows")
    ids = made if given is None else pl.DataFrame({"g": given, "m": made}).select(
        pl.coalesce("g", "m")).to_series()
    return out.with_columns(ids.alias("id"))


def _newest_first(group: pl.DataFrame) -> bool:
    """Whether rows run newest first, told by the running balance: oldest first, a row's
    balance is the one above plus its amount; newest first, the one above is this one
    plus the amount above.  Where the balances do not tell, the first and last dates."""
    bal, amt = pl.col("balance"), pl.col("amount")
    up, down = group.select(
        up=(bal == bal.shift(1) + amt).sum(), down=(bal.shift(1) == bal + amt.shift(1)).sum()
    ).row(0)
    if up != down:
        return bool(down > up)
    return bool(group["date"][0] > group["date"][-1])


def _statements(out: pl.DataFrame, balance: pl.Series | None) -> list[StatementInfo]:
    """One statement per (account, currency); balances from a running-balance column."""
    frame = out.select("account", "currency", "date", "amount")
    if balance is not None:
        frame = frame.with_columns(balance.alias("balance"))
    result = []
    for (account, currency), group in frame.group_by(["account", "currency"],
                                                     maintain_order=True):
        first, last = group.row(0, named=True), group.row(-1, named=True)
        opening = closing = None
        if balance is not None:
            oldest, newest = (last, first) if _newest_first(group) else (first, last)
            if oldest["balance"] is not None:
                opening = oldest["balance"] - oldest["amount"]
            closing = newest["balance"]
        result.append(StatementInfo(
            account=account, currency=currency, opening_balance=opening,
            closing_balance=closing, start_date=group["date"].min(),  # type: ignore[arg-type]
            end_date=group["date"].max(), transactions=group.height))  # type: ignore[arg-type]
    return result


def to_canonical(rows: pl.DataFrame, layout: Layout, path: Path, *,
                 undated_balances: bool = False) -> Mapped:
    """Map string columns (named as in the file, plus `line`) onto canonical rows;
    `undated_balances`: the file is a customer statement (see _row_dates)."""
    notes: list[str] = []
    rows = _skip_rows(rows, layout, notes)
    out = _with_ids(_base_columns(rows, layout, path, notes, undated_balances), notes,
                    synthesize=layout.profile is not CANONICAL)
    balance = None
    if "balance" in layout.columns:
        p = layout.profile
        balance = parse_amounts(rows, layout.columns["balance"][0], path,
                                decimal=p.decimal, thousands=p.thousands, allow_empty=True)
    frame = canonical(out, path)
    return Mapped(frame, notes, _statements(frame, balance) if frame.height else [])
