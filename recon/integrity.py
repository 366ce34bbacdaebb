"""Statement integrity: do the balances a bank states agree with its lines?

Three checks over every statement of the loaded files (see :func:`check_statements`):

* balance      opening + sum(lines) == closing, for each statement with both balances
               (a customer's statement: its lines' effects on the customer's balance);
* continuity   consecutive statements of one account chain: closing == next opening,
               and their periods neither overlap nor leave working days out;
* currency     one currency per account, and every line in its statement's currency.

Each problem is an :class:`IntegrityBreak`; a statement whose lines cannot be told
apart from its neighbours' is reported as ``unverified`` rather than skipped.

A customer's statement (``--statement``) gets the balance check alone
(:meth:`StatementCheck.add_customer`): its amounts are in the customer's signs, not
the bank's, its period is only the span of its lines' dates (a gap between two is
no missing statement), and its account is not a bank account to chain with.  Its
balance is checked at each page line that carries it over a page, too: the balance
stated before (the page line before it, else the opening) plus its lines' effects.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import polars as pl

from recon.db import amount_text
from recon.loaders.base import AMOUNT, LoadResult, StatementInfo

KINDS = ("balance", "continuity", "date_gap", "date_overlap", "duplicate_statement",
         "currency", "unverified")

#: How a customer statement's lines are summed (recon.agreement.statement_totals).
_EFFECTS = " (invoices less credit notes and receipts)"


@dataclass(frozen=True, slots=True)
class IntegrityBreak:
    """One disagreement between stated balances, lines and periods."""

    kind: str  # one of KINDS
    account: str | None
    statements: tuple[str, ...]  # 'file #n id start..end' of each statement concerned
    expected: Decimal | None
    found: Decimal | None
    difference: Decimal | None  # found - expected
    message: str
    currency: str | None = None  # of the amounts
    customer: str | None = None  # whose statement, for a customer's statement

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form: decimals as strings, in the currency's minor units."""
        def text(d: Decimal | None) -> str | None:
            return None if d is None else amount_text(d, self.currency)

        return {"kind": self.kind, "account": self.account, "currency": self.currency,
                "statements": list(self.statements), "expected": text(self.expected),
                "found": text(self.found), "difference": text(self.difference),
                "message": self.message, "customer": self.customer}


@dataclass(frozen=True, slots=True)
class _Stmt:
    """A statement with where it came from and the sum of its lines (None: unknown)."""

    info: StatementInfo
    label: str
    order: int
    total: Decimal | None
    currencies: frozenset[str]
    customer: str | None = None


def check_statements(results: list[LoadResult]) -> list[IntegrityBreak]:
    """Check the statements of `results` (one or many files, any order)."""
    check = StatementCheck()
    for result in results:
        check.add(result)
    return check.breaks()


class StatementCheck:
    """The checks of :func:`check_statements` over files added one at a time.

    Each file's lines are summed when it is added, so a run need not keep every
    file's rows in memory until the last one is read.
    """

    def __init__(self) -> None:
        self._stmts: list[_Stmt] = []
        self._customers: list[_Stmt] = []
        self._unverified: list[IntegrityBreak] = []
        self._carried: list[IntegrityBreak] = []

    def add(self, result: LoadResult) -> None:
        """Take the statements of one more file, in input order."""
        self._stmts.extend(_statements(result, len(self._stmts), self._unverified))

    def add_customer(self, result: LoadResult, totals: pl.DataFrame,
                     carried: pl.DataFrame | None = None) -> None:
        """Take a customer statement's statements (one per account and currency, as
        :func:`recon.loaders.balances.split_balances` states them), each with the total
        of its lines' effects on the customer's balance and the customer, from `totals`
        (:func:`recon.agreement.statement_totals`: the agreement's one definition), and
        the balances it carries over its pages (`carried`:
        :func:`recon.agreement.carried_balances`)."""
        by_key = {(t["account"], t["currency"]): t for t in totals.iter_rows(named=True)}
        stmts = {}
        for i, info in enumerate(result.statements):
            t = by_key.get((info.account, info.currency), {})
            stmts[info.account, info.currency] = _Stmt(
                info, _label(result.path, i, info), len(self._customers) + i,
                Decimal(t.get("total") or 0), frozenset(), t.get("customer"))
        self._customers.extend(stmts.values())
        if carried is not None:
            self._carried.extend(_carried(stmts, carried))

    def breaks(self) -> list[IntegrityBreak]:
        """Every break among the statements added so far."""
        stmts = self._stmts
        breaks = list(self._unverified)
        for s in stmts:
            breaks.extend(_balance(s))
        for s in self._customers:
            breaks.extend(_balance(s, _EFFECTS))
        breaks.extend(self._carried)
        by_account: dict[str | None, list[_Stmt]] = defaultdict(list)
        for s in stmts:
            by_account[s.info.account].append(s)
        for account, group in by_account.items():
            breaks.extend(_currency(account, group))
            for currency in sorted({s.info.currency or "" for s in group}):
                chain = sorted((s for s in group if (s.info.currency or "") == currency),
                               key=_chronological)
                breaks.extend(b for prev, nxt in pairwise(chain)
                              for b in _continuity(prev, nxt))
        return breaks


def _chronological(s: _Stmt) -> tuple[date, date, int]:
    """By closing date (the balance's as-of day), then opening date, then file order.

    Statement pages of one day keep their file order; a start date that a bank
    backdates does not move a statement before its predecessor.
    """
    end = s.info.end_date or s.info.start_date or date.min
    return end, s.info.start_date or end, s.order


def _statements(result: LoadResult, order: int, breaks: list[IntegrityBreak]
                ) -> list[_Stmt]:
    """Attach to each statement the sum and currencies of its own lines."""
    frames = _rows_per_statement(result)
    out = []
    for i, info in enumerate(result.statements):
        label = _label(result.path, i, info)
        rows = frames[i] if frames is not None else None
        if rows is None:
            breaks.append(IntegrityBreak(
                "unverified", info.account, (label,), None, None, None,
                f"{label}: cannot tell which lines belong to this statement; "
                "its balances were not checked against its lines"))
        total = _sum(rows) if rows is not None else None
        currencies = frozenset(rows["currency"].drop_nulls().unique().to_list()
                               if rows is not None else [])
        out.append(_Stmt(info, label, order + i, total, currencies))
    return out


def _rows_per_statement(result: LoadResult) -> list[pl.DataFrame] | None:
    """The lines of each statement, in the loaders' order or by account and currency.

    Bank-format loaders emit each statement's lines together and in statement
    order; that is verified (count and account) before it is relied on.
    """
    frame, stmts = result.frame, result.statements
    if sum(s.transactions for s in stmts) == frame.height:
        slices, offset = [], 0
        for s in stmts:
            part = frame.slice(offset, s.transactions)
            offset += s.transactions
            if s.account is not None and part.filter(
                    pl.col("account").ne_missing(s.account)).height:
                break
            slices.append(part)
        else:
            return slices
    keys = [(s.account, s.currency) for s in stmts]
    if len(set(keys)) != len(keys):
        return None
    return [frame.filter(pl.col("account").eq_missing(a) & pl.col("currency").eq_missing(c))
            for a, c in keys]


def _sum(rows: pl.DataFrame) -> Decimal:
    value = rows["amount"].sum() if rows.height else Decimal(0)
    return Decimal(value) if value is not None else Decimal(0)


def _label(path: Path, index: int, info: StatementInfo) -> str:
    period = f"{info.start_date or '?'}..{info.end_date or '?'}"
    ident = f" {info.statement_id}" if info.statement_id else ""
    return f"{Path(path).name} #{index + 1}{ident} {period}"


def _balance(s: _Stmt, summed: str = "") -> list[IntegrityBreak]:
    """opening + total == closing; `summed` says how the lines were summed, if not as is."""
    info = s.info
    if info.opening_balance is None or info.closing_balance is None or s.total is None:
        return []
    expected = info.opening_balance + s.total
    if expected == info.closing_balance:
        return []
    diff = info.closing_balance - expected
    money = partial(amount_text, currency=info.currency)
    return [IntegrityBreak(
        "balance", info.account, (s.label,), expected, info.closing_balance, diff,
        f"{_who(s)}: opening {money(info.opening_balance)} + lines {money(s.total)}{summed} "
        f"= {money(expected)}, but the statement closes at {money(info.closing_balance)} "
        f"(difference {money(diff)})", info.currency, s.customer)]


def _who(s: _Stmt) -> str:
    return f"{s.label}, customer {s.customer}" if s.customer else s.label


def _carried(stmts: dict[tuple[str | None, str | None], _Stmt], carried: pl.DataFrame
             ) -> list[IntegrityBreak]:
    """Each balance a customer statement carries over a page (`carried`, see
    StatementCheck.add_customer) that is not the balance stated before it (the page
    line before it, else the opening balance; none: not checked) plus the lines between."""
    openings = pl.DataFrame(
        [(*key, s.info.opening_balance) for key, s in stmts.items()],
        schema={"account": pl.String, "currency": pl.String, "opening": AMOUNT},
        orient="row")
    wrong = (carried.join(openings, on=["account", "currency"], how="left", nulls_equal=True)
             .with_columns(stated=pl.coalesce("prev_amount", "opening"))
             .with_columns(expected=pl.col("stated") + pl.col("lines"))
             .filter(pl.col("amount") != pl.col("expected")))
    return [_carried_break(stmts[row["account"], row["currency"]], row)
            for row in wrong.iter_rows(named=True)]


def _carried_break(s: _Stmt, row: dict[str, Any]) -> IntegrityBreak:
    """The break of one carried balance (a row of _carried's) of statement `s`."""
    money = partial(amount_text, currency=s.info.currency)
    found, expected = Decimal(row["amount"]), Decimal(row["expected"])
    stated = (f"opening {money(row['stated'])} + lines before it" if row["prev_line"] is None
              else f"line {row['prev_line']}'s {money(row['stated'])} + lines between")
    return IntegrityBreak(
        "balance", s.info.account, (s.label,), expected, found, found - expected,
        f"{_who(s)}: line {row['line']} states a balance of {money(found)} carried over a "
        f"page, but {stated} {money(row['lines'])}{_EFFECTS} = {money(expected)} "
        f"(difference {money(found - expected)})", s.info.currency, s.customer)


def _currency(account: str | None, group: list[_Stmt]) -> list[IntegrityBreak]:
    out = []
    stated = sorted({s.info.currency for s in group if s.info.currency})
    if len(stated) > 1:
        out.append(IntegrityBreak(
            "currency", account, tuple(s.label for s in group), None, None, None,
            f"account {account}: statements in {len(stated)} currencies "
            f"({', '.join(stated)}); expected one currency per account"))
    for s in group:
        other = sorted(s.currencies - {s.info.currency}) if s.info.currency else []
        if other:
            out.append(IntegrityBreak(
                "currency", account, (s.label,), None, None, None,
                f"{s.label}: lines in {', '.join(other)} in a {s.info.currency} statement"))
    return out


def _continuity(prev: _Stmt, nxt: _Stmt) -> list[IntegrityBreak]:
    a, b = prev.info, nxt.info
    labels = (prev.label, nxt.label)
    out = []
    if (a.start_date, a.end_date, a.closing_balance, a.opening_balance) == (
            b.start_date, b.end_date, b.closing_balance, b.opening_balance) and a.end_date:
        return [IntegrityBreak("duplicate_statement", a.account, labels, None, None, None,
                               f"{nxt.label} repeats {prev.label} (same period and "
                               "balances): loaded twice?")]
    if a.closing_balance is not None and b.opening_balance is not None and (
            a.closing_balance != b.opening_balance):
        diff = b.opening_balance - a.closing_balance
        money = partial(amount_text, currency=a.currency)
        out.append(IntegrityBreak(
            "continuity", a.account, labels, a.closing_balance, b.opening_balance, diff,
            f"{nxt.label} opens at {money(b.opening_balance)}, but {prev.label} closed at "
            f"{money(a.closing_balance)} (difference {money(diff)}): a statement is "
            "missing or changed", a.currency))
    if a.end_date and b.start_date:
        if b.start_date < a.end_date:
            out.append(IntegrityBreak(
                "date_overlap", a.account, labels, None, None, None,
                f"{nxt.label} starts {b.start_date}, before {prev.label} ends "
                f"{a.end_date}: lines may be counted twice"))
        elif _working_days_between(a.end_date, b.start_date):
            out.append(IntegrityBreak(
                "date_gap", a.account, labels, None, None, None,
                f"no statement covers {a.end_date + timedelta(days=1)}.."
                f"{b.start_date - timedelta(days=1)} between {prev.label} and {nxt.label}"))
    return out


def _working_days_between(end: date, start: date) -> int:
    """Monday-to-Friday days strictly between two dates."""
    days = (start - end).days - 1
    if days <= 0:
        return 0
    weeks, rest = divmod(days, 7)
    first = end + timedelta(days=1)
    return weeks * 5 + sum(1 for i in range(rest)
                           if (first + timedelta(days=i)).weekday() < 5)
