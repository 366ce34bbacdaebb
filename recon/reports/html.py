"""report.html: one self-contained page an accountant reads.

Everything the page shows is computed here, server-side: money is summed with
:class:`decimal.Decimal` from the CSV text (floats only size chart bars), and
the charts are plain SVG drawn by the template. The page loads nothing from the
network; a Content-Security-Policy pins its one inline stylesheet and script by
hash, so even a value that slipped past autoescaping could not run or fetch.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation, getcontext
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import jinja2
import polars as pl
from markupsafe import Markup

from recon.db import amount_text
from recon.reports import brs, csvout

#: The interactive tables show at most this many rows; the CSV files have all.
ROW_CAP = 5_000

#: The contract's columns, less the reviewer's decision columns the page does not show.
EXCEPTION_COLUMNS = csvout.EXCEPTION_COLUMNS[: csvout.EXCEPTION_COLUMNS.index("decision")]
#: discrepancies.csv's columns and the currency of its left_amount and difference
DISCREPANCY_COLUMNS = (*csvout.DISCREPANCY_COLUMNS, "currency")
MATCH_COLUMNS = ("rule", "left_ids", "right_ids", "status")
STATEMENT_COLUMNS = brs.COLUMNS

#: (label, lowest age, highest age or None for open-ended), by days since the item's date.
AGE_BUCKETS: tuple[tuple[str, int, int | None], ...] = (
    ("0–7 days", 0, 7),
    ("8–30 days", 8, 30),
    ("31–60 days", 31, 60),
    ("61–90 days", 61, 90),
    (">90 days", 91, None),
)
#: What left and right are called; left is a customer statement when an input says so.
SIDES = {"left": "Bank", "right": "Ledger"}
STATEMENT_SIDES = {"left": "Statement", "right": "Ledger"}

#: What str.strip() strips (str.isspace): Unicode White_Space, as polars has it, and U+001C..1F.
_SPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
#: One id of a `;`-separated list: a piece with something besides space in it.
_ID = "[^;" + "".join(f"\\x{{{ord(c):x}}}" for c in _SPACE) + "][^;]*"
#: Amount text read column-wise; any other cell is read by to_decimal, once per distinct text.
_PLAIN = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)$"
#: Digits of the widest decimal column polars sums exactly (in 128-bit integers).
_MAX_DIGITS = 38


# ---------------------------------------------------------------- numbers


def to_decimal(text: object) -> Decimal | None:
    """Exact value of an amount cell, or None when empty or not a number."""
    if text is None or not str(text).strip():
        return None
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def fmt_amount(value: Decimal | int | None, currency: str | None = None) -> str:
    """`-1,234.50`: the currency's minor units (JPY `7,500`, KWD `7.250`; two when it is
    not known), more only when the amount has them."""
    return "" if value is None else amount_text(Decimal(value), currency, ",")


def _pct(part: float, whole: float) -> str:
    """Percentage with one decimal that never rounds an incomplete share up to 100."""
    if not whole:
        return "–"
    share = 100.0 * part / whole
    if part < whole and share >= 99.95:
        return "99.9%"
    return f"{share:.1f}%"


def _lines(n: int) -> str:
    return f"{n:,} line" if n == 1 else f"{n:,} lines"


@dataclass
class Money:
    """Exact sums per currency: net, money in (> 0), money out (< 0), gross."""

    net: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    gross: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    inflow: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))
    outflow: dict[str, Decimal] = field(default_factory=lambda: defaultdict(Decimal))

    def add(self, currency: str, amount: Decimal | None) -> None:
        if amount is None:
            return
        self.net[currency] += amount
        self.gross[currency] += abs(amount)
        (self.inflow if amount > 0 else self.outflow)[currency] += amount

    def lines(self, which: str = "gross") -> list[str]:
        """`EUR 1,234.50` per currency, largest first."""
        sums: dict[str, Decimal] = getattr(self, which)
        order = sorted(sums, key=lambda c: (-abs(sums[c]), c))
        return [f"{c} {fmt_amount(sums[c], c)}".strip() for c in order]


@dataclass
class Bar:
    """One bar of a chart: `fraction` (0..1) of the longest bar sets its length."""

    label: str
    value: float
    text: str
    tone: str = "primary"
    fraction: float = 0.0


def scale(bars: list[Bar], maximum: float | None = None) -> list[Bar]:
    """Set each bar's fraction of `maximum` (default: the largest value)."""
    top = maximum if maximum is not None else max((b.value for b in bars), default=0.0)
    for bar in bars:
        bar.fraction = min(bar.value / top, 1.0) if top > 0 else 0.0
    return bars


# ---------------------------------------------------------------- frames


def _text(frame: pl.DataFrame | None, columns: Sequence[str]) -> pl.DataFrame:
    """The columns as text, null as ""; a missing column reads as empty (defensive)."""
    if frame is None or frame.height == 0:
        return pl.DataFrame(schema=dict.fromkeys(columns, pl.String))
    return frame.select(
        pl.col(c).cast(pl.String).fill_null("") if c in frame.columns else pl.lit("").alias(c)
        for c in columns
    )


def _rows(frame: pl.DataFrame | None, columns: Sequence[str]) -> Iterable[dict[str, Any]]:
    """Rows as dicts of text, null as ""; a missing column reads as empty (defensive)."""
    return _text(frame, columns).iter_rows(named=True)


def _plain(text: pl.Series) -> pl.Series:
    """The cells as plain decimals (`-1234.50`) with the values to_decimal reads; null for None.

    Plain cells stay as they are; any other text (`1e3`, ` 5`, `n/a`, ``) is read by
    to_decimal once per distinct value.
    """
    odd = text.filter(~text.str.contains(_PLAIN)).unique()
    if not odd.len():
        return text
    readings = [to_decimal(cell) for cell in odd]
    plain = [None if value is None else format(value, "f") for value in readings]
    return text.replace(odd, pl.Series(plain, dtype=pl.String))


def _exact(text: pl.Series) -> pl.Series | None:
    """The cells as exact decimals (null where to_decimal gives None), for sums and sorting.

    None when a sum of the column might need more digits than decimal's context keeps
    (28): beyond that Decimal rounds, and only the same Decimal arithmetic row by row
    gives the same figures. Amounts have a few more than a dozen digits in practice.
    """
    plain = _plain(text)
    digits = plain.str.strip_chars_start("+-0")  # `-001.50` -> `1.50`
    point = digits.str.find(".", literal=True)
    length = digits.str.len_bytes()
    whole = int(point.fill_null(length).max() or 0)  # type: ignore[arg-type]
    scale = int((length - point - 1).max() or 0)  # type: ignore[arg-type]
    if whole + scale + len(str(len(text))) > min(getcontext().prec, _MAX_DIGITS):
        return None
    return plain.cast(pl.Decimal(_MAX_DIGITS, scale))


def _age_index(text: pl.Series) -> pl.Series:
    """age_bucket(int(to_decimal(cell))) per cell; len(AGE_BUCKETS) for an unknown age."""
    ages = text.unique()  # whole days: a few hundred distinct values
    index = []
    for cell in ages:
        value = to_decimal(cell)
        bucket = age_bucket(int(value)) if value is not None else None
        index.append(len(AGE_BUCKETS) if bucket is None else bucket)
    return text.replace_strict(ages, pl.Series(index, dtype=pl.Int32))


def _or_none(column: str) -> pl.Expr:
    """The column's text, `(none)` where it is empty."""
    return pl.when(pl.col(column) == "").then(pl.lit("(none)")).otherwise(column).alias(column)


def _n_ids(column: str) -> pl.Expr:
    """How many ids a `;`-separated list holds, blanks not counted."""
    return pl.col(column).str.count_matches(_ID).fill_null(0)


def age_bucket(age: int | None) -> int | None:
    """Index into AGE_BUCKETS; future-dated items count as 0–7 days."""
    if age is None:
        return None
    for i, (_, _low, high) in enumerate(AGE_BUCKETS):
        if high is None or age <= high:
            return i
    return None  # pragma: no cover - the last bucket is open-ended


@dataclass
class Group:
    """Count and money of the rows sharing a reason, an age, a side or a type."""

    key: str
    count: int = 0
    money: Money = field(default_factory=Money)


def _tally(frame: pl.DataFrame, by: Sequence[str], amounts: pl.Series | None) -> dict[Any, Group]:
    """Rows and money per value of the `by` columns, as Money.add row by row would sum it.

    `frame` has the `by` columns, `currency` and the `amount` text; `amounts` is
    _exact(amount), or None to add the rows one by one with Decimal arithmetic.
    """
    keys = list(dict.fromkeys([*by, "currency"]))
    groups: dict[Any, Group] = {}

    def group(key: tuple[Any, ...]) -> Group:
        return groups.setdefault(key, Group(str(key[0]) if key else ""))

    if amounts is None:
        for row in frame.select(*keys, "amount").iter_rows(named=True):
            g = group(tuple(row[k] for k in by))
            g.count += 1
            g.money.add(row["currency"], to_decimal(row["amount"]))
        return groups
    amount = pl.col("_amount")
    inflow, outflow = amount > 0, amount <= 0
    sums = (
        frame.select(*keys, _amount=amounts)
        .group_by(keys, maintain_order=True)
        .agg(
            pl.len().alias("_rows"),
            amount.count().alias("_n"),
            amount.sum().alias("_net"),
            amount.abs().sum().alias("_gross"),
            inflow.sum().alias("_n_in"),
            amount.filter(inflow).sum().alias("_in"),
            outflow.sum().alias("_n_out"),
            amount.filter(outflow).sum().alias("_out"),
        )
    )
    for row in sums.iter_rows(named=True):
        g, currency = group(tuple(row[k] for k in by)), row["currency"]
        g.count += row["_rows"]
        if row["_n"]:
            g.money.net[currency] = row["_net"]
            g.money.gross[currency] = row["_gross"]
        if row["_n_in"]:
            g.money.inflow[currency] = row["_in"]
        if row["_n_out"]:
            g.money.outflow[currency] = row["_out"]
    return groups


def _largest(frame: pl.DataFrame, amounts: pl.Series | None, column: str, n: int) -> pl.DataFrame:
    """The n rows of largest absolute amount (None as 0), in order, as heapq.nlargest picks them.

    Ties keep frame order. `amounts` is _exact(frame[column]), or None to compare Decimals.
    """
    if amounts is None:
        sizes = [abs(to_decimal(cell) or Decimal(0)) for cell in frame[column]]
        return frame[heapq.nlargest(n, range(len(sizes)), key=lambda i: sizes[i])]
    order = (
        pl.DataFrame({"size": amounts.abs().fill_null(0)})
        .with_row_index()
        .sort("size", descending=True, maintain_order=True)
        .head(n)
    )
    return frame[order["index"]]


def side_names(summary: Mapping[str, Any]) -> dict[str, str]:
    """Bank/Ledger, or Statement/Ledger when an input file is a customer statement."""
    inputs = [i for i in summary.get("inputs") or [] if isinstance(i, Mapping)]
    statement = any(str(i.get("side") or "").lower() == "statement" for i in inputs)
    return STATEMENT_SIDES if statement else SIDES


def _exception_view(frame: pl.DataFrame | None, names: Mapping[str, str]) -> dict[str, Any]:
    """Open items by reason, age and side, and the most material of them for the table."""
    rows = _text(frame, EXCEPTION_COLUMNS)
    amounts = _exact(rows["amount"])
    keyed = rows.select(
        _or_none("reason"),
        _age_index(rows["age_days"]).alias("age"),
        "side",
        "currency",
        "amount",
    )
    reasons = {k[0]: g for k, g in _tally(keyed, ["reason"], amounts).items()}
    by_age = _tally(keyed, ["age"], amounts)
    labels = [*(label for label, _, _ in AGE_BUCKETS), "age unknown"]
    ages = [by_age.get((i,)) or Group(label) for i, label in enumerate(labels)]
    for group, label in zip(ages, labels, strict=True):
        group.key = label
    sides = _tally(keyed, ["side", "currency"], amounts)
    for (side, _), group in sides.items():
        group.key = names.get(side, side)
    total = _tally(keyed, [], amounts).get(()) or Group("total")
    shown = rows
    if rows.height > ROW_CAP:  # keep the most material items
        shown = _largest(rows, amounts, "amount", ROW_CAP)
    by_reason = sorted(reasons.values(), key=lambda g: (-g.count, g.key))
    if not ages[-1].count:
        ages.pop()
    return {
        "count": rows.height,
        "money": total.money,
        "rows": [_exception_row(r, names) for r in _unguarded(shown).iter_rows(named=True)],
        "capped": rows.height > ROW_CAP,
        "by_reason": by_reason,
        "by_age": ages,
        "by_side": [{"side": k[0], "currency": k[1], "group": g} for k, g in sorted(sides.items())],
        "reason_chart": scale([Bar(humanise(g.key), g.count, f"{g.count:,}") for g in by_reason]),
        "age_chart": scale(
            [
                Bar(g.key, g.count, f"{g.count:,}", "bad" if i >= 3 else "warn" if i >= 1 else "ok")
                for i, g in enumerate(ages)
            ]
        ),
        "reasons": sorted(reasons),
        "sides": sorted({side for side, _ in sides}),
    }


def _exception_row(row: dict[str, Any], names: Mapping[str, str]) -> SimpleNamespace:
    """One row of the open-items table; attributes, which Jinja reads faster than keys."""
    amount = to_decimal(row["amount"])
    return SimpleNamespace(
        **row,
        _amount=amount,
        reason_key=row["reason"] or "(none)",  # the reason filter's value
        side_label=names.get(row["side"], row["side"]),
        amount_text=fmt_amount(amount, row["currency"]) or (row["amount"] or ""),
        reason_label=humanise(row["reason"] or ""),
    )


def humanise(code: str) -> str:
    """`no_candidate` -> `No candidate`."""
    text = code.replace("_", " ").strip()
    return text[:1].upper() + text[1:]


@dataclass
class RuleStats:
    """What one rule matched: matches, bank and ledger lines, matches per status."""

    name: str
    matcher: str = ""
    matches: int = 0
    left: int = 0
    right: int = 0
    status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    share: str = "–"

    @property
    def auto(self) -> int:
        return self.status.get("auto", 0)

    @property
    def suggested(self) -> int:
        return self.status.get("suggested", 0)


def _tally_matches(matches: pl.DataFrame | None) -> dict[str, RuleStats]:
    counts = (
        _text(matches, MATCH_COLUMNS)
        .select("rule", "status", left=_n_ids("left_ids"), right=_n_ids("right_ids"))
        .group_by("rule", "status", maintain_order=True)  # rules in order of first match
        .agg(pl.len().alias("matches"), pl.col("left", "right").cast(pl.Int64).sum())
    )
    stats: dict[str, RuleStats] = {}
    for rule, status, n, left, right in counts.iter_rows():
        s = stats.setdefault(rule or "(none)", RuleStats(rule or "(none)"))
        s.matches += n
        s.left += left
        s.right += right
        s.status[status or "(none)"] += n
    return stats


def _declared(summary: Mapping[str, Any], name: str, rule: Mapping[str, Any]) -> RuleStats:
    """Counts from summary.json for a rule that has no row in matches.csv."""
    matches = (summary.get("by_rule") or {}).get(name) or rule.get("matches") or 0
    stats = RuleStats(name, matches=int(matches))
    for key in ("auto", "suggested"):
        stats.status[key] = int(rule.get(key) or 0)
    return stats


def _rule_view(summary: Mapping[str, Any], matches: pl.DataFrame | None) -> dict[str, Any]:
    declared = {r.get("name"): r for r in summary.get("rules") or [] if isinstance(r, Mapping)}
    stats = _tally_matches(matches)
    names = dict.fromkeys([*declared, *(summary.get("by_rule") or {}), *stats])
    counts = summary.get("counts") or {}
    left_total = int(counts.get("left_total") or 0)
    table = []
    for name in names:
        rule = declared.get(name) or {}
        s = stats.get(name) or _declared(summary, name, rule)
        s.matcher, s.share = str(rule.get("matcher") or ""), _pct(s.left, left_total)
        table.append(s)
    status: dict[str, int] = defaultdict(int)
    for s in table:
        for key, n in s.status.items():
            status[key] += n
    bars = [Bar(s.name, s.left, f"{s.share} · {_lines(s.left)}") for s in table]
    unmatched = int(counts.get("left_exceptions") or 0)
    share = _pct(unmatched, left_total)
    bars.append(Bar("Unmatched", unmatched, f"{share} · {_lines(unmatched)}", "muted"))
    return {
        "rules": table,
        "status": dict(status),
        "chart": scale(bars, left_total or None),
        "matches": sum(s.matches for s in table),
    }


def _discrepancy_view(frame: pl.DataFrame | None) -> dict[str, Any]:
    """Amount differences by type, and the largest of them for the table."""
    rows = _text(frame, DISCREPANCY_COLUMNS)
    diffs = _exact(rows["difference"])
    keyed = rows.select(_or_none("type"), "currency", pl.col("difference").alias("amount"))
    types = {k[0]: g for k, g in _tally(keyed, ["type"], diffs).items()}
    total = _tally(keyed, [], diffs).get(()) or Group("total")
    total.key = "total"
    shown = rows
    if rows.height > ROW_CAP:
        shown = _largest(rows, diffs, "difference", ROW_CAP)
    # the chart draws one currency's differences: the largest, named when there are more
    gross = total.money.gross
    main = min(gross, key=lambda c: (-gross[c], c), default="")
    by_type = sorted(types.values(), key=lambda g: (-g.money.gross.get(main, 0), g.key))
    return {
        "count": rows.height,
        "total": total,
        "rows": [_discrepancy_row(r) for r in _unguarded(shown).iter_rows(named=True)],
        "capped": rows.height > ROW_CAP,
        "by_type": by_type,
        "main": main if len(gross) > 1 else "",
        "chart": scale([
            Bar(humanise(g.key), float(g.money.gross[main]), fmt_amount(g.money.gross[main], main))
            for g in by_type if main in g.money.gross
        ]),
    }


def _discrepancy_row(row: dict[str, Any]) -> SimpleNamespace:
    """One row of the discrepancy table, as attributes (see _exception_row)."""
    row["_diff"] = to_decimal(row["difference"])
    for key in ("left_amount", "right_amount", "difference"):
        # with the decimals of the CSV text, its currency's minor units (an FX match's
        # right_amount is in the ledger's currency, which the row does not name)
        amount = to_decimal(row[key])
        row[key + "_text"] = row[key] if amount is None else format(amount, ",f")
    return SimpleNamespace(**row)


def _statement_view(frame: pl.DataFrame | None) -> list[dict[str, Any]]:
    """Bank reconciliation statements, one per account/currency/period, lines in order."""
    statements: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in _rows(frame, STATEMENT_COLUMNS):
        key = (row["account"] or "", row["currency"] or "", row["period_end"] or "")
        st = statements.setdefault(
            key, {"account": key[0], "currency": key[1], "period_end": key[2], "lines": []}
        )
        amount = to_decimal(row["amount"])
        code = (row["line"] or "").lower()
        tone = ""
        if "unexplained" in code:
            tone = "bad" if amount else "ok"
        elif "adjusted" in code:
            tone = "total"
        elif code.startswith("balance"):
            tone = "head"
        st["lines"].append(
            {
                "label": row["label"] or humanise(code),
                "tone": tone,
                "amount": fmt_amount(amount, row["currency"]) or (row["amount"] or ""),
            }
        )
    return list(statements.values())


# ---------------------------------------------------------------- page


def _aging_view(frame: pl.DataFrame | None, top: int = 25) -> dict[str, Any] | None:
    """Receivables aging: bucket totals per currency, a chart, the largest balances."""
    if frame is None or frame.height == 0 or "customer" not in frame.columns:
        return None
    cols = frame.columns
    buckets = cols[cols.index("customer") + 1 : cols.index("total")]
    has_cur = "currency" in cols
    totals = _aging_totals(frame, [*buckets, "total"], has_cur)
    main = max(totals, key=lambda c: abs(totals[c]["total"]))
    bars = scale([
        Bar(humanise(b), float(abs(totals[main][b])), fmt_amount(totals[main][b], main),
            "warn" if i else "primary")
        for i, b in enumerate(buckets)
    ])
    total = _text(frame, ["total"])
    largest = _largest(frame, _exact(total["total"]), "total", top)
    return {
        "buckets": list(buckets), "totals": totals, "main": main, "chart": bars,
        "rows": list(largest.iter_rows(named=True)), "count": frame.height,
        "has_currency": has_cur,
    }


def _aging_totals(
    frame: pl.DataFrame, columns: Sequence[str], has_cur: bool
) -> dict[str, dict[str, Decimal]]:
    """Per currency (in order of appearance), the exact sum of each column; None counts 0."""
    text = _text(frame, list(dict.fromkeys([*columns, "currency"] if has_cur else columns)))
    currency = text["currency"] if has_cur else pl.repeat("", frame.height, eager=True)
    exact = [a for a in (_exact(text[c]) for c in columns) if a is not None]
    totals: dict[str, dict[str, Decimal]] = {}
    if len(exact) < len(columns):  # too wide for exact columns: Decimal, row by row
        for cur, *cells in zip(currency, *(text[c] for c in columns), strict=True):
            per = totals.setdefault(cur, dict.fromkeys(columns, Decimal(0)))
            for c, cell in zip(columns, cells, strict=True):
                per[c] += to_decimal(cell) or Decimal(0)
        return totals
    sums = (  # columns by position: a bucket could be called "currency"
        pl.DataFrame([currency.alias("currency"), *(a.alias(str(i)) for i, a in enumerate(exact))])
        .group_by("currency", maintain_order=True)
        .agg(pl.exclude("currency").sum())
    )
    for cur, *values in sums.iter_rows():
        totals[cur] = dict(zip(columns, values, strict=True))
    return totals


def _headline(
    summary: Mapping[str, Any], rules: dict[str, Any], exc: dict[str, Any], disc: dict[str, Any]
) -> dict[str, Any]:
    counts = {k: int(v or 0) for k, v in (summary.get("counts") or {}).items()}
    rate = float(summary.get("match_rate") or 0.0)
    left_total, right_total = counts.get("left_total", 0), counts.get("right_total", 0)
    exc_count = exc["count"]
    if "left_exceptions" in counts or "right_exceptions" in counts:
        exc_count = counts.get("left_exceptions", 0) + counts.get("right_exceptions", 0)
    return {
        "counts": counts,
        "match_rate": _pct(rate, 1.0) if left_total or right_total or rate else "–",
        "match_fraction": max(0.0, min(rate, 1.0)),
        "left_share": _pct(counts.get("left_matched", 0), left_total),
        "right_share": _pct(counts.get("right_matched", 0), right_total),
        "exceptions": exc_count,
        "exception_money": exc["money"].lines("gross"),
        "status": rules["status"],
        "matches": rules["matches"],
        "discrepancies": disc["count"],
        "discrepancy_net": disc["total"].money.lines("net"),
    }


def _integrity(summary: Mapping[str, Any]) -> list[dict[str, str]]:
    out = []
    for item in summary.get("integrity") or []:
        if isinstance(item, Mapping):
            diff = to_decimal(item.get("difference"))
            # a customer's statement has their account, if any: the customer says more
            customer = item.get("customer")
            out.append(
                {k: str(item.get(k) or "") for k in ("kind", "account", "message")}
                | ({"account": f"customer {customer}"} if customer else {})
                | {"difference": fmt_amount(diff, item.get("currency"))
                   or str(item.get("difference") or "")}
            )
    return out


def _stages(summary: Mapping[str, Any]) -> list[tuple[str, str]]:
    seconds = {
        str(k): float(v)
        for k, v in (summary.get("stages") or {}).items()
        if isinstance(v, int | float)
    }
    out = [(k, f"{v:.2f} s") for k, v in seconds.items()]
    if out:
        out.append(("total", f"{sum(seconds.values()):.2f} s"))
    return out


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("recon", "templates"),
        autoescape=True,  # every template here is HTML; CSS/JS are included verbatim
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["amount"] = fmt_amount
    env.filters["humanise"] = humanise
    return env


def warm_template() -> None:
    """Compile the report's template and read its assets now (see recon.warmup)."""
    _environment().get_template("report.html.j2")
    _assets()


@lru_cache(maxsize=1)
def _assets() -> tuple[Markup, Markup, str]:
    """Inline stylesheet and script, and a CSP that allows exactly those two."""
    env = _environment()
    loader = env.loader
    assert loader is not None
    css = loader.get_source(env, "report.css")[0]
    js = loader.get_source(env, "report.js")[0]

    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"

    csp = (
        f"default-src 'none'; style-src {digest(css)}; script-src {digest(js)}; "
        "base-uri 'none'; form-action 'none'"
    )
    return Markup(css), Markup(js), csp


def _unguarded(frame: pl.DataFrame) -> pl.DataFrame:
    """The frame's text as the data has it: a page runs no formula, so the CSV's guard
    (an apostrophe before `=`, `@` …) would only show.  For the rows a table shows: over
    a whole 1M run's exceptions and discrepancies it took 0.21 s."""
    return frame.with_columns(csvout.unguard(pl.col(pl.String)))


def render_report(
    summary: dict[str, Any],
    matches: pl.DataFrame,
    exceptions: pl.DataFrame,
    discrepancies: pl.DataFrame,
    bank_reconciliation: pl.DataFrame | None = None,
    aging: pl.DataFrame | None = None,
) -> str:
    """Render report.html from summary.json and the output frames (all-String columns)."""
    names = side_names(summary)
    if bank_reconciliation is not None:
        bank_reconciliation = _unguarded(bank_reconciliation)
    if aging is not None:
        aging = _unguarded(aging)
    exc = _exception_view(exceptions, names)
    disc = _discrepancy_view(discrepancies)
    rules = _rule_view(summary, matches)
    css, js, csp = _assets()
    return (
        _environment()
        .get_template("report.html.j2")
        .render(
            summary=summary,
            headline=_headline(summary, rules, exc, disc),
            rules=rules,
            exc=exc,
            disc=disc,
            statements=_statement_view(bank_reconciliation),
            aging=_aging_view(aging),
            inputs=[i for i in summary.get("inputs") or [] if isinstance(i, Mapping)],
            integrity=_integrity(summary),
            stages=_stages(summary),
            sides=names,
            side_label=lambda side: names.get(side) or humanise(str(side or "")),
            row_cap=ROW_CAP,
            css=css,
            js=js,
            csp=csp,
        )
    )
