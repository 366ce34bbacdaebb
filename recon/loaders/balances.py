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
* it quotes no other reference: a line with an invoice number is a transaction.

Where it stands tells what it is.  Before the first or after the last transaction of
its account and currency (in file order) it states the statement's balance: its
amount is the balance in the statement's signs (positive, the customer owes us), and a
statement states at most one opening and one closing balance per account and
currency; totals state no balance and are dropped.

Between two transactions it is a page line of a statement printed on pages and
exported whole ("Balance carried forward", "过次页" at the foot of a page, "Balance
brought forward", "承前页" at the head of the next, "Sub total", "本页小计" on each),
and is no row either.  A carried or brought-forward line (one of the opening or
closing phrases) states the balance at its place in the statement: it is kept in
``LoadResult.carried``, and recon.integrity checks it against the balance stated
before it (the opening balance, or the page line before it) plus the effects of the
lines between (:func:`recon.agreement.carried_balances`); one that disagrees is a
``balance`` break of the file, as a closing balance that its lines do not make is.
A subtotal states no balance and is dropped.

A balance line may have no date ("Balance b/f,,1000.00", "过次页,,1250.00"): a loader
told that its file is a customer statement (``undated_balances``) dates it by its
statement's period, a page line by the transaction before it (:func:`period_dates`),
and refuses any other row without a date, as ever.
"""

from __future__ import annotations

import re
from dataclasses import replace

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
        "total", "totals", "grand total", "sub total", "subtotal", "page total",
        "合计", "总计", "小计", "本页合计", "本页小计", "本期合计", "本月合计", "本年累计",
    ),
}

_MONTHS = "jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec"
#: What may stand around a phrase: a date, in figures or words, and punctuation.
_DATE = rf"(?:[\W\d年月日号]|\b(?:as|at|of|on|per|to|from|(?:{_MONTHS})[a-z]*)\b)*"
_PATTERNS = {
    kind: rf"^{_DATE}(?:{'|'.join(map(re.escape, phrases))}){_DATE}$"
    for kind, phrases in PHRASES.items()
}
_TEXT = ("description", "doc_type", "reference")
#: A statement per account and currency.
_BLOCK = ("account", "currency")


def _kind_expr(text: pl.Expr) -> pl.Expr:
    """'opening', 'closing' or 'total' where `text` is a balance phrase, else null."""
    norm = (text.str.normalize("NFKC").str.replace_all(r"[_-]", " ").str.to_lowercase()
            .str.replace_all(r"\s+", " ").str.strip_chars())
    return pl.coalesce(pl.when(norm.str.contains(pattern)).then(pl.lit(kind))
                       for kind, pattern in _PATTERNS.items())


def balance_kind(text: str | None) -> str | None:
    """'opening', 'closing' or 'total' when `text` is a balance phrase, else None."""
    kind: str | None = pl.select(_kind_expr(pl.lit(text, pl.String))).item()
    return kind


def _roles(frame: pl.DataFrame) -> pl.Expr:
    """Each row's balance kind (see balance_kinds); null for a transaction: a row that
    states no balance phrase, or quotes another reference."""
    text = {c: pl.col(c) if c in frame.columns else pl.lit(None, pl.String) for c in _TEXT}
    quotes = (text["reference"].fill_null("") != "") & _kind_expr(text["reference"]).is_null()
    kind = pl.when(~quotes).then(pl.coalesce(_kind_expr(text[c]) for c in _TEXT))
    txn = kind.is_null()
    seen = txn.cum_sum().over(_BLOCK, order_by="line")  # transactions up to the row
    between = (seen > 0) & (seen < txn.sum().over(_BLOCK))
    return (pl.when(~between).then(kind)
            .when(kind == "total").then(pl.lit("subtotal"))
            .when(kind.is_not_null()).then(pl.lit("carried")))


def balance_kinds(frame: pl.DataFrame) -> pl.Series:
    """Each row's balance kind: 'opening', 'closing' or 'total' before the first or
    after the last transaction of its account and currency; between two, 'carried' (an
    opening or closing phrase) or 'subtotal' (a total); null for a transaction.

    `frame` holds line, account, currency and any of the text columns (a loader's,
    before its dates are read)."""
    return frame.select(_roles(frame).alias("kind")).to_series()


def period_dates(frame: pl.DataFrame, kinds: pl.Series) -> pl.Series:
    """`frame`'s dates, a balance line without one (`kinds`: balance_kinds) dated by its
    statement's period: an opening line by its first transaction, a closing line or a
    total by its last, a page line by the line before it (per account and currency; null
    where it has none)."""
    date, kind = pl.col("date"), pl.col("kind")
    txns = date.filter(kind.is_null())
    return frame.select("line", "date", *_BLOCK, kinds.alias("kind")).select(
        pl.when(date.is_not_null()).then(date)
        .when(kind.is_in(["carried", "subtotal"]))
        .then(date.forward_fill().over(_BLOCK, order_by="line"))
        .when(kind == "opening").then(txns.min().over(_BLOCK))
        .otherwise(txns.max().over(_BLOCK)).alias("date")).to_series()


def _refuse_a_second(result: LoadResult, frame: pl.DataFrame) -> None:
    """Raise on an opening or closing line after the first of its account and currency
    (`frame`: the rows with their `kind`); of several, the first of the statement that
    starts first."""
    each = (*_BLOCK, "kind")
    stated = frame.with_columns(block=pl.col("line").min().over(_BLOCK)).filter(
        pl.col("kind").is_in(["opening", "closing"])).with_columns(
        first=pl.col("line").min().over(each))
    second = stated.filter(pl.col("line") > pl.col("first")).sort("block", "line")
    if second.height:
        row = second.row(0, named=True)
        raise InputFileError(
            result.path, f"a second {row['kind']} balance line (the first is line "
            f"{row['first']}); a statement states one per account and currency",
            line=row["line"],
            hint="a statement opens and closes once: remove the extra line, or split "
                 "the file into one statement per account and currency")


def _statements(frame: pl.DataFrame) -> list[StatementInfo]:
    """One statement per account and currency of `frame` (the rows with their `kind`):
    its balance lines' amounts, and its period from the opening line's date (or the
    first transaction's, if earlier) to the closing line's (or the last transaction's,
    if later); where there are neither, from every line's dates."""
    kind, date = pl.col("kind"), pl.col("date")
    txn = kind.is_null()
    per = frame.sort("line").group_by(_BLOCK, maintain_order=True).agg(
        opening_balance=pl.col("amount").filter(kind == "opening").first(),
        closing_balance=pl.col("amount").filter(kind == "closing").first(),
        start_date=pl.coalesce(date.filter(txn | (kind == "opening")).min(), date.min()),
        end_date=pl.coalesce(date.filter(txn | (kind == "closing")).max(), date.max()),
        transactions=txn.sum())
    return [StatementInfo(**row) for row in per.iter_rows(named=True)]


def split_balances(result: LoadResult) -> LoadResult:
    """A customer statement's rows without its balance lines, which become its statements
    (one per account and currency; their balances replace any from a balance column,
    which counts receipts in the statement's signs as money in), and its page lines,
    the carried ones kept as its `carried` rows."""
    frame = result.frame.with_columns(_roles(result.frame).alias("kind"))
    _refuse_a_second(result, frame)
    statements = _statements(frame)
    kind = frame["kind"]
    kept = result.frame if kind.is_null().all() else result.frame.filter(kind.is_null())
    return replace(result, frame=kept, statements=statements,
                   carried=result.frame.filter(kind == "carried"))
