"""Bank profiles: how one bank's CSV/XLSX export maps onto canonical rows.

A profile is data (``recon/profiles/<name>.yaml``, or any YAML file given as
``--profile PATH``, or a folder listed in ``$RECON_PROFILE_PATH``), validated
here with errors that name the file, the key path, what was found and what is
allowed.  Detection compares a file's header names with every profile's
columns and keeps the most specific complete match; the canonical CSV header
is the built-in profile ``canonical``.

Keys (all optional except ``columns`` and a currency)::

    name, bank, country, description      identity; name defaults to the file stem
    encoding: auto | cp1252 | gb18030 ...  a hint; BOMs and valid UTF-8 win
    delimiter: ","   quotechar: '"'        quotechar null: no quoting
    header: true     names: [...]          headerless files name their columns
    skip_rows: auto | N                    lines before the header (auto: search)
    footer_lines: N                        lines to drop at the end (a line there that
                                           reads as a transaction is refused)
    footer_line: regex                     the footer starts at the first of those
                                           N lines that matches; none matches: no footer
    decimal: "." | ","   thousands: null | "," | "." | " " | "'"
    date_format: YYYY-MM-DD | [MM/DD/YYYY, DD/MM/YYYY] | "%d %b %Y"
    value_date_format: ...                 defaults to date_format
    sheet: name | index                    XLSX only
    columns:                               canonical field -> source column
      date: Buchungstag                    required
      amount: Betrag                       signed; or debit: + credit: (unsigned ok)
      description: [Buchungstext, Verwendungszweck]     text fields may join columns
      value_date: {one_of: [Valuta, Wertstellungsdatum]}  alternative names
      id, account, currency, counterparty, reference, iban, doc_type,
      customer_id, due_date, balance (running balance: statement balances)
    indicator: {column: Af Bij, credit: [Bij], debit: [Af], ignore: []}
    invert_sign: false                     credit-card exports
    currency: EUR    account: "..."        fixed values (fill empty cells too)
    optional_columns: [balance]            mapped columns that may be absent
    skip_empty_amount: false               drop rows with no amount at all
    detect: [header names]                 all must be present (default: the columns)
    detect_line: regex                     headerless files: first data line matches
"""

from __future__ import annotations

import codecs
import difflib
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml

from recon.errors import InputFileError, ReconError
from recon.normalise import DATE_FORMATS

#: Canonical fields a profile may map a source column to.
FIELDS = (
    "id", "date", "value_date", "due_date", "amount", "debit", "credit", "currency",
    "account", "counterparty", "reference", "description", "iban", "doc_type",
    "customer_id", "balance",
)
TEXT_FIELDS = ("id", "counterparty", "reference", "description")  # may join columns
KEYS = (
    "name", "bank", "country", "description", "encoding", "delimiter", "quotechar",
    "header", "names", "skip_rows", "footer_lines", "footer_line", "decimal", "thousands",
    "date_format", "value_date_format", "sheet", "columns", "indicator", "invert_sign",
    "currency", "account", "optional_columns", "skip_empty_amount", "detect", "detect_line",
)
INDICATOR_KEYS = ("column", "credit", "debit", "ignore")
PROFILE_PATH_ENV = "RECON_PROFILE_PATH"  # extra folders of user profiles (os.pathsep)


class ProfileError(ReconError):
    """Every problem found in one profile (or profile name), reported together."""

    def __init__(self, source: str | Path, problems: Iterable[str]) -> None:
        self.source = str(source)
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{self.source}: {n} problem{'s' if n != 1 else ''} in profile"
        super().__init__("\n  ".join([head, *self.problems]))


@cache  # a few hundred distinct names; detection asks for them thousands of times
def header_key(name: str) -> str:
    """Compare header names ignoring case, BOM, padding and repeated spaces."""
    return " ".join(name.replace("\ufeff", "").strip().strip('"').split()).casefold()


@dataclass(frozen=True, slots=True)
class Column:
    """A reference to source column(s): one name, alternatives, or parts to join."""

    names: tuple[str, ...]
    mode: Literal["one", "one_of", "join"] = "one"

    def resolve(self, lookup: Mapping[str, str]) -> tuple[str, ...]:
        """Return the file's column names this reference uses (empty if absent)."""
        found = [lookup[header_key(n)] for n in self.names if header_key(n) in lookup]
        if self.mode == "join":
            return tuple(found)
        return tuple(found[:1]) if self.mode == "one_of" else tuple(found)

    @property
    def label(self) -> str:
        """How error messages name this reference."""
        return " or ".join(repr(n) for n in self.names) if self.mode == "one_of" else (
            ", ".join(repr(n) for n in self.names))


@dataclass(frozen=True, slots=True)
class Indicator:
    """A column that tells credits from debits (C/D, S/H, Af/Bij, 收入/支出)."""

    column: Column
    credit: frozenset[str]
    debit: frozenset[str]
    ignore: frozenset[str] = frozenset()  # rows with these values are not transactions


@dataclass(frozen=True, slots=True)
class Profile:
    """One bank export layout."""

    name: str
    columns: Mapping[str, Column]
    bank: str = ""
    country: str = ""
    description: str = ""
    encoding: str = "auto"
    delimiter: str = ","
    quotechar: str | None = '"'
    header: bool = True
    names: tuple[str, ...] = ()
    skip_rows: int | None = None  # None: find the header line by its names
    footer_lines: int = 0
    footer_line: re.Pattern[str] | None = None  # the footer starts at a line matching it
    decimal: str = "."
    thousands: str | None = None
    date_format: tuple[str, ...] = ("YYYY-MM-DD",)
    value_date_format: tuple[str, ...] | None = None
    sheet: str | int | None = None
    indicator: Indicator | None = None
    invert_sign: bool = False
    currency: str | None = None
    account: str | None = None
    optional_columns: frozenset[str] = frozenset()
    skip_empty_amount: bool = False
    detect: tuple[str, ...] = ()
    detect_line: re.Pattern[str] | None = None
    source: str = "<built-in>"

    def references(self) -> dict[str, Column]:
        """Every column reference, the indicator's included."""
        refs = dict(self.columns)
        if self.indicator is not None:
            refs["indicator"] = self.indicator.column
        return refs


def _canonical() -> Profile:
    cols = ("id", "date", "amount", "currency", "counterparty", "reference", "description")
    optional = ("account", "value_date", "iban", "due_date", "doc_type", "customer_id")
    return Profile(
        name="canonical", bank="", country="",
        description="recon's canonical CSV (CONTRACT.md): id,date,amount,currency,...",
        columns={c: Column((c,)) for c in cols + optional},
        optional_columns=frozenset(optional), detect=cols,
    )


CANONICAL = _canonical()


# --- loading and validation -------------------------------------------------


class _Checker:
    """Walks one YAML mapping, collecting problems with their key paths."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.problems.append(f"{where}: {message}")

    def keys(self, data: Mapping[str, Any], allowed: Sequence[str], prefix: str) -> None:
        for key in data:
            if key not in allowed:
                close = difflib.get_close_matches(str(key), allowed, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                self.add(f"{prefix}{key}", f"unknown key {key!r}{hint} (known: "
                         f"{', '.join(sorted(allowed))})")

    def text(self, data: Mapping[str, Any], key: str, default: str | None,
             prefix: str = "") -> str | None:
        value = data.get(key, default)
        if value is None or isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)  # `Number: 12` in YAML is still a column name
        self.add(prefix + key, f"expected text, got {value!r}")
        return default

    def choice(self, data: Mapping[str, Any], key: str, default: Any,
               allowed: Sequence[Any]) -> Any:
        value = data.get(key, default)
        if value not in allowed:
            shown = ", ".join("null" if a is None else repr(a) for a in allowed)
            self.add(key, f"expected one of {shown}; got {value!r}")
            return default
        return value

    def flag(self, data: Mapping[str, Any], key: str) -> bool:
        value = data.get(key, False)
        if not isinstance(value, bool):
            self.add(key, f"expected true or false, got {value!r}")
            return False
        return value

    def count(self, data: Mapping[str, Any], key: str, default: int | None) -> int | None:
        value = data.get(key, default)
        if value is None or value == "auto":
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            self.add(key, f"expected a non-negative integer (or 'auto'), got {value!r}")
            return default
        return value

    def strings(self, value: Any, where: str) -> tuple[str, ...]:
        if isinstance(value, str | int) and not isinstance(value, bool):
            return (str(value),)
        if isinstance(value, list) and value and all(
                isinstance(v, str | int) and not isinstance(v, bool) for v in value):
            return tuple(str(v) for v in value)
        self.add(where, f"expected a name or a list of names, got {value!r}")
        return ()


def _column(ck: _Checker, field_name: str, value: Any, where: str) -> Column | None:
    if isinstance(value, dict):
        if set(value) != {"one_of"}:
            ck.add(where, f"expected a column name, a list, or {{one_of: [...]}}; got {value!r}")
            return None
        names = ck.strings(value["one_of"], where + ".one_of")
        return Column(names, "one_of") if names else None
    if isinstance(value, list) and field_name not in TEXT_FIELDS:
        ck.add(where, f"a list of columns is only allowed for {', '.join(TEXT_FIELDS)}; "
               f"use {{one_of: [...]}} for alternative names")
        return None
    names = ck.strings(value, where)
    if not names:
        return None
    return Column(names, "join" if isinstance(value, list) else "one")


def _columns(ck: _Checker, data: Mapping[str, Any]) -> dict[str, Column]:
    raw = data.get("columns")
    if not isinstance(raw, dict):
        ck.add("columns", f"expected a mapping of canonical field -> source column, got {raw!r}")
        return {}
    ck.keys(raw, FIELDS, "columns.")
    out = {}
    for key, value in raw.items():
        if key in FIELDS:
            col = _column(ck, key, value, f"columns.{key}")
            if col is not None:
                out[key] = col
    if "date" not in out:
        ck.add("columns.date", "required: the column holding the booking date")
    has_amount, has_dc = "amount" in out, ("debit" in out, "credit" in out)
    if has_amount and any(has_dc):
        ck.add("columns", "give either 'amount' or 'debit' + 'credit', not both")
    elif not has_amount and not all(has_dc):
        ck.add("columns.amount", "required: 'amount' (signed), or both 'debit' (money out) "
               "and 'credit' (money in)")
    return out


def _indicator(ck: _Checker, data: Mapping[str, Any]) -> Indicator | None:
    raw = data.get("indicator")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        ck.add("indicator", f"expected a mapping with column, credit, debit; got {raw!r}")
        return None
    ck.keys(raw, INDICATOR_KEYS, "indicator.")
    col = _column(ck, "indicator", raw.get("column"), "indicator.column")
    values = {}
    for key in ("credit", "debit", "ignore"):
        items = raw.get(key, [] if key == "ignore" else None)
        if items == [] and key == "ignore":
            values[key] = frozenset[str]()
            continue
        if isinstance(items, str):
            items = [items]
        if not isinstance(items, list) or not all(isinstance(v, str) for v in items):
            ck.add(f"indicator.{key}", f"expected a list of values, got {items!r}")
            items = []
        values[key] = frozenset(" ".join(v.split()).lower() for v in items)  # as the loader
    if col is None:
        return None
    return Indicator(col, values["credit"], values["debit"], values["ignore"])


def _date_formats(ck: _Checker, data: Mapping[str, Any], key: str,
                  default: tuple[str, ...] | None) -> tuple[str, ...] | None:
    raw = data.get(key)
    if raw is None:
        return default
    formats = ck.strings(raw, key)
    for fmt in formats:
        if fmt not in DATE_FORMATS and "%" not in fmt:
            ck.add(key, f"unknown date format {fmt!r}; expected one of "
                   f"{', '.join(DATE_FORMATS)} or a strftime pattern like '%d %b %Y'")
    return formats or default


def _layout(ck: _Checker, data: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    enc = ck.text(data, "encoding", "auto") or "auto"
    if enc != "auto":
        try:
            codecs.lookup(enc)
        except LookupError:
            ck.add("encoding", f"unknown encoding {enc!r}; use 'auto' or a Python codec "
                   "name such as utf-8, cp1252, gb18030, utf-16")
    out["encoding"] = enc
    delim = ck.text(data, "delimiter", ",") or ","
    if len(delim) != 1:
        ck.add("delimiter", f"expected one character such as ',', ';', '|' or a tab, "
               f"got {delim!r}")
    out["delimiter"] = delim[:1] or ","
    quote = data.get("quotechar", '"')
    if quote is not None and (not isinstance(quote, str) or len(quote) != 1):
        ck.add("quotechar", f"expected one character or null, got {quote!r}")
        quote = '"'
    out["quotechar"] = quote
    out["decimal"] = ck.choice(data, "decimal", ".", (".", ","))
    out["thousands"] = ck.choice(data, "thousands", None, (None, ",", ".", " ", "'"))
    if out["thousands"] is not None and out["thousands"] == out["decimal"]:
        ck.add("thousands", f"must differ from decimal {out['decimal']!r}")
    out["skip_rows"] = ck.count(data, "skip_rows", None)
    out["footer_lines"] = ck.count(data, "footer_lines", 0) or 0
    out["footer_line"] = _pattern(ck, data, "footer_line")
    if out["footer_line"] is not None and not out["footer_lines"]:
        ck.add("footer_line", "needs footer_lines: the most lines the footer has")
    sheet = data.get("sheet")
    if sheet is not None and (isinstance(sheet, bool) or not isinstance(sheet, str | int)):
        ck.add("sheet", f"expected a sheet name or a 0-based index, got {sheet!r}")
        sheet = None
    out["sheet"] = sheet
    return out


def _headerless(ck: _Checker, data: Mapping[str, Any]) -> dict[str, Any]:
    header = data.get("header", True)
    if not isinstance(header, bool):
        ck.add("header", f"expected true or false, got {header!r}")
        header = True
    names = ck.strings(data["names"], "names") if "names" in data else ()
    if not header and not names:
        ck.add("names", "required when header is false: the names of the file's columns")
    return {"header": header, "names": names, "detect_line": _pattern(ck, data, "detect_line")}


def _pattern(ck: _Checker, data: Mapping[str, Any], key: str) -> re.Pattern[str] | None:
    if data.get(key) is None:
        return None
    try:
        return re.compile(str(data[key]))
    except re.error as exc:
        ck.add(key, f"invalid regular expression: {exc}")
        return None


def _fixed(ck: _Checker, data: Mapping[str, Any]) -> dict[str, Any]:
    currency = ck.text(data, "currency", None)
    if currency is not None and not re.fullmatch(r"[A-Z]{3}", currency):
        ck.add("currency", f"expected an ISO 4217 code such as 'EUR', got {currency!r}")
    optional = ck.strings(data["optional_columns"], "optional_columns") if (
        "optional_columns" in data) else ()
    for name in optional:
        if name not in FIELDS:
            ck.add("optional_columns", f"unknown field {name!r} (known: {', '.join(FIELDS)})")
    detect = ck.strings(data["detect"], "detect") if "detect" in data else ()
    return {
        "currency": currency, "account": ck.text(data, "account", None),
        "optional_columns": frozenset(optional), "detect": detect,
        "invert_sign": ck.flag(data, "invert_sign"),
        "skip_empty_amount": ck.flag(data, "skip_empty_amount"),
    }


def _cross_checks(ck: _Checker, p: dict[str, Any]) -> None:
    cols: dict[str, Column] = p["columns"]
    if p["indicator"] is not None and "amount" not in cols:
        ck.add("indicator", "needs columns.amount: the indicator gives the sign of that column")
    if "currency" not in cols and p["currency"] is None:
        ck.add("currency", "required: a fixed ISO code (currency: EUR) or columns.currency")
    if not p["header"] and p["names"]:
        known = {header_key(n) for n in p["names"]}
        refs = list(cols.values()) + ([p["indicator"].column] if p["indicator"] else [])
        for col in refs:
            for name in col.names:
                if header_key(name) not in known:
                    ck.add("names", f"column {name!r} is used in columns but not listed in names")


def parse_profile(data: Any, source: str | Path, default_name: str) -> Profile:
    """Validate one profile mapping (already read from YAML); raise ProfileError."""
    ck = _Checker()
    if not isinstance(data, dict):
        raise ProfileError(source, [f"expected a mapping of profile keys, got {data!r}"])
    ck.keys(data, KEYS, "")
    name = ck.text(data, "name", default_name) or default_name
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]*", name):
        ck.add("name", f"expected lowercase letters, digits, '_', '-' or '.', got {name!r}")
    p: dict[str, Any] = {"name": name, "columns": _columns(ck, data),
                         "indicator": _indicator(ck, data)}
    for key in ("bank", "country", "description"):
        p[key] = ck.text(data, key, "") or ""
    p.update(_layout(ck, data))
    p.update(_headerless(ck, data))
    p.update(_fixed(ck, data))
    p["date_format"] = _date_formats(ck, data, "date_format", ("YYYY-MM-DD",))
    p["value_date_format"] = _date_formats(ck, data, "value_date_format", None)
    _cross_checks(ck, p)
    if ck.problems:
        raise ProfileError(source, ck.problems)
    return Profile(source=str(source), **p)


def load_profile(path: str | Path) -> Profile:
    """Read and validate one profile YAML file."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(p, [f"cannot read profile: {exc.strerror or exc}"]) from exc
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ProfileError(p, [f"not valid UTF-8 YAML: {exc}"]) from exc
    return parse_profile(data, p, p.stem)


@cache
def _profiles_in(folder: str) -> tuple[Profile, ...]:
    return tuple(load_profile(f) for f in sorted(Path(folder).glob("*.y*ml")))


def shipped_profiles() -> tuple[Profile, ...]:
    """The profiles bundled in recon/profiles, plus folders in $RECON_PROFILE_PATH."""
    folder = resources.files("recon") / "profiles"
    found = list(_profiles_in(str(folder)))
    for extra in filter(None, os.environ.get(PROFILE_PATH_ENV, "").split(os.pathsep)):
        found.extend(_profiles_in(extra))
    return tuple(found)


def resolve_profile(name: str) -> Profile:
    """Turn a --profile argument (a profile name or a YAML path) into a Profile."""
    if name == CANONICAL.name:
        return CANONICAL
    known = {p.name: p for p in shipped_profiles()}
    if name in known:
        return known[name]
    if Path(name).is_file():
        return load_profile(name)
    close = difflib.get_close_matches(name, [*known, CANONICAL.name], n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise ProfileError(f"--profile {name!r}", [
        f"no such profile or file; {hint}known: {', '.join(sorted(known))}, canonical"])


# --- detection --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Layout:
    """Where the data of a file starts and which of its columns feed which field."""

    profile: Profile
    header_row: int | None  # 0-based row index of the header; None when headerless
    data_row: int  # 0-based row index of the first data row
    names: tuple[str, ...]  # the file's column names (deduplicated)
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)
    reason: str = ""


def column_names(cells: Sequence[str]) -> tuple[str, ...]:
    """Header cells -> unique names: blanks become column_N, repeats get .1, .2 ..."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for i, cell in enumerate(cells):
        name = " ".join(cell.replace("\ufeff", "").split()) or f"column_{i + 1}"
        if name in ("*", "line") or (name.startswith("^") and name.endswith("$")):
            name += "_"  # polars reads '*' and '^...$' as selectors; 'line' is recon's own
        key = header_key(name)
        if key in seen:
            seen[key] += 1
            name = f"{name}.{seen[key]}"
        else:
            seen[key] = 0
        out.append(name)
    return tuple(out)


def widen(layout: Layout, width: int) -> Layout:
    """Name the unnamed fields of rows wider than the header column_N and re-resolve."""
    if width <= len(layout.names):
        return layout
    names = layout.names + tuple(f"column_{i + 1}" for i in range(len(layout.names), width))
    found, _ = _resolve(layout.profile, _lookup(names))
    return replace(layout, names=names, columns=found)


def _lookup(names: Sequence[str]) -> dict[str, str]:
    lookup: dict[str, str] = {}
    for name in names:
        lookup.setdefault(header_key(name), name)
    return lookup


def _resolve(profile: Profile, lookup: Mapping[str, str]
             ) -> tuple[dict[str, tuple[str, ...]], list[Column | str]]:
    """Columns found per field, and what is missing (labels are built only for messages)."""
    found: dict[str, tuple[str, ...]] = {}
    missing: list[Column | str] = []
    for fld, col in profile.references().items():
        cols = col.resolve(lookup)
        if cols:
            found[fld] = cols
        elif fld not in profile.optional_columns:
            missing.append(col)
    refs = {n for m in missing if isinstance(m, Column) for n in m.names}
    missing += [d for d in profile.detect if header_key(d) not in lookup and d not in refs]
    return found, missing


def _labels(missing: Sequence[Column | str]) -> list[str]:
    return [m.label if isinstance(m, Column) else repr(m) for m in missing]


def _score(profile: Profile, found: Mapping[str, tuple[str, ...]]) -> int:
    return len(profile.detect) + sum(len(v) for v in found.values())


@dataclass(slots=True)
class _Best:
    score: tuple[int, int] = (-1, 0)
    layout: Layout | None = None
    near: tuple[float, Profile, int, list[Column | str], tuple[str, ...]] | None = None

    def offer(self, score: tuple[int, int], layout: Layout) -> None:
        if score > self.score:
            self.score, self.layout = score, layout

    def near_miss(self, profile: Profile, row: int, missing: list[Column | str],
                  names: tuple[str, ...]) -> None:
        total = len(profile.references()) + len(profile.detect)
        ratio = 1 - len(missing) / max(total, 1)
        if self.near is None or ratio > self.near[0]:
            self.near = (ratio, profile, row, missing, names)


_Header = tuple[tuple[str, ...], dict[str, str]]  # (column names, header_key -> name)


def _headers(rows: Sequence[Sequence[str]], memo: dict[int, list[_Header | None]],
             limit: int) -> list[_Header | None]:
    """Names and lookup of each candidate header row, computed once per way of splitting."""
    if id(rows) not in memo:
        memo[id(rows)] = [
            (names, _lookup(names)) if any(c.strip() for c in cells) else None
            for names, cells in ((column_names(c), c) for c in rows[:limit])]
    return memo[id(rows)]


def _try_header(profile: Profile, rows: Sequence[Sequence[str]], best: _Best,
                limit: int, memo: dict[int, list[_Header | None]]) -> None:
    start = profile.skip_rows or 0
    stop = start + 1 if profile.skip_rows is not None else min(len(rows), limit)
    headers = _headers(rows, memo, max(limit, stop))
    for i in range(start, min(stop, len(headers))):
        header = headers[i]
        if header is None:
            continue
        names, lookup = header
        found, missing = _resolve(profile, lookup)
        if missing:
            best.near_miss(profile, i, missing, names)
            continue
        bonus = 1000 if profile is CANONICAL else 0
        explained = sum(len(v) for v in found.values()) * 100 // max(len(names), 1)
        cols = ", ".join(repr(c) for v in found.values() for c in v)
        reason = (f"profile {profile.name}: header on line {i + 1} has its columns {cols}")
        best.offer((_score(profile, found) + bonus, explained),
                   Layout(profile, i, i + 1, names, found, reason))
        return


def _try_headerless(profile: Profile, rows: Sequence[Sequence[str]],
                    lines: Sequence[str] | None, best: _Best, forced: bool) -> None:
    start = profile.skip_rows or 0
    first = next((i for i in range(start, len(rows)) if any(c.strip() for c in rows[i])),
                 start)
    ok = forced
    if lines is not None and profile.detect_line is not None and first < len(lines):
        ok = ok or bool(profile.detect_line.search(lines[first]))
    if not ok:
        return
    found, _ = _resolve(profile, _lookup(profile.names))
    why = "forced with --profile" if forced else f"line {first + 1} matches its pattern"
    best.offer((len(profile.names), 0), Layout(
        profile, None, start, profile.names, found,
        f"profile {profile.name} (file without header): {why}"))


def find_layout(
    rows_for: Callable[[Profile], Sequence[Sequence[str]]],
    path: Path,
    *,
    candidates: Sequence[Profile] | None = None,
    lines: Sequence[str] | None = None,
    forced: bool = False,
    limit: int = 100,
) -> Layout:
    """Pick the best-matching profile and its header row; raise a clear error if none.

    `rows_for(profile)` gives the file's first rows split the way that profile
    splits them; `lines` (CSV only) are the raw lines headerless profiles test.
    """
    pool = candidates if candidates is not None else (CANONICAL, *shipped_profiles())
    best = _Best()
    memo: dict[int, list[_Header | None]] = {}
    for profile in pool:
        rows = rows_for(profile)
        if profile.header:
            _try_header(profile, rows, best, limit, memo)
        else:
            _try_headerless(profile, rows, lines, best, forced)
    if best.layout is not None:
        return best.layout
    raise _no_match(path, rows_for, best, forced)


def _no_match(path: Path, rows_for: Callable[[Profile], Sequence[Sequence[str]]],
              best: _Best, forced: bool) -> InputFileError:
    rows = rows_for(CANONICAL)
    first = next((i for i, r in enumerate(rows) if any(c.strip() for c in r)), 0)
    names = column_names(rows[first]) if rows else ()
    canon_found, canon_lack = _resolve(CANONICAL, _lookup(names))
    canon_missing = _labels(canon_lack)
    found = ", ".join(repr(n) for n in names) or "nothing"
    if not forced and len(canon_found) >= 3:
        return InputFileError(
            path, f"missing column{'s' if len(canon_missing) > 1 else ''} "
            f"{', '.join(canon_missing)}; found: {found}", line=first + 1,
            hint="a canonical CSV needs id,date,amount,currency,counterparty,reference,"
                 "description (see CONTRACT.md); other layouts need --profile")
    near = best.near
    if forced and near is not None:
        _, profile, row, lack, row_names = near
        missing = _labels(lack)
        return InputFileError(
            path, f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"of profile {profile.name}; found: {', '.join(repr(n) for n in row_names)}",
            line=row + 1, hint=_close_hint(missing, row_names) or (
                "check the profile's column names and skip_rows"))
    known = ", ".join(sorted(p.name for p in shipped_profiles()))
    closest = ""
    if near is not None and near[0] >= 0.5 and near[1] is not CANONICAL:
        closest = (f"; closest is profile {near[1].name}, which also needs "
                   f"{', '.join(_labels(near[3]))}")
    return InputFileError(
        path, f"no profile matches this file's header; found: {found}{closest}",
        line=first + 1,
        hint=f"pass --profile NAME or the path of your own profile YAML (known: {known})")


def _close_hint(missing: Sequence[str], names: Sequence[str]) -> str:
    hints = []
    for m in missing:
        close = difflib.get_close_matches(m.strip("'"), names, n=1, cutoff=0.6)
        if close:
            hints.append(f"{m} -> did you mean {close[0]!r}?")
    return "; ".join(hints)
