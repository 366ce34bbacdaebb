"""Balance lines of a customer statement: they state a balance, they are not transactions.

A customer's statement often opens with the balance brought forward ("Balance b/f",
"期初余额") and ends with its closing balance or a total ("Closing balance",
"期末余额", "合计").  Read as rows, the opening balance was a payment of its amount
that we had never received.  :func:`split_balances` takes such lines out of a
statement file's rows and states them as the file's balances (``StatementInfo``, kept
in table ``statements``); the agreement compares the opening balance with ours
(:mod:`recon.agreement`).

A row is a balance line when all of these hold:

* its description, doc_type or reference is one of :data:`PHRASES`, alone or with a
  date ("Balance b/f 31/12/2025", "Opening balance as at 1 January 2026",
  "期初余额（2026年1月1日）"): "Payment of balance INV-2026-00012" is no balance line;
* it quotes no other reference: a line with an invoice number is a transaction;
* it comes before the first or after the last transaction of its account and
  currency (in file order): a phrase between transactions is left a row.

Its amount is the balance in the statement's signs: positive, the customer owes us.
A statement states at most one opening and one closing balance per account and
currency; totals state no balance and are dropped.

A balance line may have no date ("Balance b/f,,1000.00"): a loader told that its file
is a customer statement (``undated_balances``) dates it by its statement's period
(:func:`period_dates`) and refuses any other row without a date, as ever.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import polars as pl

from recon.errors import InputFileError
from recon.loaders.base import LoadResult, StatementInfo

#: What a balance line says, by kind: the one list of these phrases (compared with
#: case, NFKC width, '_', '-' and runs of spaces ignored).
PHRASES: dict[str, tuple[str, ...]] = {
    "opening": (
        "opening balance", "balance brought forward", "brought forward", "balance forward",
        "balance b/f", "bal b/f", "b/f", "b/fwd", "previous balance",
        "期初余额", "期初结余", "上期结余", "上期余额", "上月结余", "承前页", "承上页",
    ),
    "closing": (
        "closing balance", "balance carried forward", "carried forward", "balance c/f",
        "bal c/f", "c/f", "c/fwd", "ending balance", "balance due", "total due", "amount due",
        "期末余额", "期末结余", "本期结余", "过次页", "转下页",
    ),
    "total": (
        "total", "totals", "grand total", "sub total", "subtotal",
        "合计", "总计", "小计", "本期合计", "本月合计", "本年累计",
    ),
}

_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
#: What may stand around a phrase: a date, in figures or words, and punctuation.
_DATE = rf"(?:[\W\d年月日号]|\b(?:as|at|of|on|per|to|from|(?:{_MONTHS})[a-z]*)\b)*"
_PATTERNS = {
    kind: re.compile(rf"^{_DATE}(?:{'|'.join(map(re.escape, phrases))}){_DATE}$")
    for kind, phrases in PHRASES.items()
}
_TEXT = ("description", "doc_type", "reference")


def balance_kind(text: str | None) -> str | None:
    """'opening', 'closing' or 'total' when `text` is a balance phrase, else None."""
    if not text:
        return None
    norm = " ".join(re.sub(r"[_-]", " ", unicodedata.normalize("NFKC", text)).casefold().split())
    return next((kind for kind, p in _PATTERNS.items() if p.match(norm)), None)


def _kind(row: dict[str, Any]) -> str | None:
    """The row's balance kind; None for a transaction (or a phrase with a reference)."""
    if row["reference"] and balance_kind(row["reference"]) is None:
        return None
    return next((k for k in map(balance_kind, (row[c] for c in _TEXT)) if k), None)


def _edges(rows: list[dict[str, Any]]) -> dict[int, str]:
    """Balance kinds of the rows (by index) before the first transaction and after the last."""
    found: dict[int, str] = {}
    for order in (range(len(rows)), range(len(rows) - 1, -1, -1)):
        for i in order:
            kind = None if i in found else _kind(rows[i])
            if kind is None:
                break
            found[i] = kind
    return found


def _blocks(frame: pl.DataFrame, *columns: str
            ) -> Iterator[tuple[list[dict[str, Any]], dict[int, str]]]:
    """Each account and currency's rows (line, `columns`, account, currency and the text
    columns, null where `frame` has none) in file order, with its balance lines' kinds
    by index."""
    text = [pl.col(c) if c in frame.columns else pl.lit(None, pl.String).alias(c)
            for c in _TEXT]
    for _, group in frame.sort("line").group_by(["account", "currency"],
                                                maintain_order=True):
        rows = group.select("line", *columns, "account", "currency", *text).to_dicts()
        yield rows, _edges(rows)


def balance_kinds(frame: pl.DataFrame) -> pl.Series:
    """Each row's balance kind ('opening', 'closing', 'total'; null for a transaction).

    `frame` holds line, account, currency and any of the text columns (a loader's,
    before its dates are read)."""
    kinds = {rows[i]["line"]: kind for rows, found in _blocks(frame)
             for i, kind in found.items()}
    return frame["line"].replace_strict(kinds, default=None, return_dtype=pl.String)


def period_dates(frame: pl.DataFrame, kinds: pl.Series) -> pl.Series:
    """`frame`'s dates, a balance line without one (`kinds`: balance_kinds) dated by its
    statement's period: an opening line by its first transaction, a closing line or a
    total by its last (per account and currency; null where it has none)."""
    txns = pl.col("date").filter(pl.col("kind").is_null())
    block = ("account", "currency")
    return frame.select("date", "account", "currency", kinds.alias("kind")).select(
        pl.when(pl.col("date").is_not_null()).then(pl.col("date"))
        .when(pl.col("kind") == "opening").then(txns.min().over(block))
        .otherwise(txns.max().over(block)).alias("date")).to_series()


def _statement(result: LoadResult, rows: list[dict[str, Any]], found: dict[int, str]
               ) -> StatementInfo:
    """The statement of one account and currency: its balance lines' amounts, and the
    period from the opening line's date (or the first transaction's, if earlier)."""
    stated: dict[str, dict[str, Any]] = {}
    for i, kind in sorted(found.items()):
        if kind in stated and kind != "total":  # totals state no balance: any number
            raise InputFileError(
                result.path, f"a second {kind} balance line (the first is line "
                f"{stated[kind]['line']}); a statement states one per account and currency",
                line=rows[i]["line"],
                hint="a statement opens and closes once: remove the extra line, or split "
                     "the file into one statement per account and currency")
        stated[kind] = rows[i]
    txns = [r["date"] for i, r in enumerate(rows) if i not in found]
    opening, closing = stated.get("opening"), stated.get("closing")
    starts = txns + ([opening["date"]] if opening else []) or [r["date"] for r in rows]
    ends = txns + ([closing["date"]] if closing else []) or [r["date"] for r in rows]
    return StatementInfo(
        account=rows[0]["account"], currency=rows[0]["currency"],
        opening_balance=opening["amount"] if opening else None,
        closing_balance=closing["amount"] if closing else None,
        start_date=min(starts), end_date=max(ends), transactions=len(txns))


def split_balances(result: LoadResult) -> LoadResult:
    """A customer statement's rows without its balance lines, which become its statements
    (one per account and currency; their balances replace any from a balance column,
    which counts receipts in the statement's signs as money in)."""
    statements, dropped = [], []
    for rows, found in _blocks(result.frame, "date", "amount"):
        statements.append(_statement(result, rows, found))
        dropped += [rows[i]["line"] for i in found]
    if not dropped:
        return replace(result, statements=statements)
    kept = result.frame.filter(~pl.col("line").is_in(dropped))
    return replace(result, frame=kept, statements=statements)
