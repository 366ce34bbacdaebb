"""The bank reconciliation statement: the artefact a month-end close is signed with.

Per bank account and currency, at the cut-off date::

    Balance per bank statement                      (closing balance of the last statement
                                                     ending by the cut-off, + the bank lines
                                                     after its end; or opening + bank lines
                                                     when the file carries no balances)
    Add: deposits in transit                        (open ledger receipts)
    Less: outstanding cheques and payments          (open ledger payments)
    Adjusted bank balance
    Balance per books                               (opening + ledger cash lines)
    Add/less: documents matched                     (ledger invoices and credit notes
                                                     matched to bank lines: their receipt
                                                     is not in the ledger)
    Add/less: bank items not yet booked             (open bank lines: fees, interest, ...)
    Add/less: differences in matched items          (fees netted, FX, short/over payments;
                                                     a match of bank lines in two accounts:
                                                     in each, its bank lines there less its
                                                     ledger lines booked there)
    Adjusted book balance
    Unexplained difference                          (should be 0.00; stated plainly if not)

The books are the ledger's cash lines: its invoices and credit notes (by doc_type, as
the aging reads them) are receivables, never deposits in transit or book balance.  A
ledger export may hold them beside its receipts, and a bank line may be matched to them:
the matches' differences and foreign items take every ledger line off, documents too,
so the documents of matches with bank lines are added back on their own line (a bank
line matched to an invoice alone nets to the bank line, a short payment of it to a
matched difference).

The books are taken to open at the bank's opening balance (the previous period
was reconciled): the earliest statement's, or where it gives none, the first later
statement's opening less the bank lines before that statement.  Every amount is exact.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import duckdb
import polars as pl

from recon import matchinfo
from recon.db import FORMULA_START, decided_sql, round_amount
from recon.openitems import doc_kind_sql

COLUMNS = ("account", "currency", "period_end", "line", "label", "amount")


#: The open rows of both sides (one query: see open_items_sql).
_OPEN = "__recon__brs_open"


def _open_rows(side: str) -> str:
    """The open rows of `side` (a subquery of table _OPEN)."""
    return f"(select * from {_OPEN} where side = '{side}')"


def statement_rows(con: duckdb.DuckDBPyConnection, as_of: date) -> list[dict[str, Any]]:
    """The statement lines for every bank account and currency; every match's
    match_info is there (see :func:`recon.matchinfo.refresh`, which a run calls before
    its outputs)."""
    accounts = con.execute(
        f"""select coalesce(account, ''), currency, count(*) from txns
        where side = 'bank' and date <= date '{as_of.isoformat()}' group by 1, 2 order by 1, 2"""
    ).fetchall()
    con.execute(LEDGER_ACCOUNTS_SQL)
    con.execute(DOCUMENTS_SQL)
    from recon.pipeline import open_items_sql

    # the open items and the matches' sums are found once, not once per account and line
    con.execute(MATCH_SUMMARY_SQL)
    con.execute(
        f"create or replace temp table {_OPEN} as select txn_id, side, account, currency, "
        f"amount from ({open_items_sql(('bank', 'ledger'), as_of, 'bank', at_cutoff=True)})"
    )
    sums = _sums(con, as_of)
    balances = _balances(con, [(a, c) for a, c, _ in accounts], as_of)
    spans = _span_sums(con, as_of, balances)
    out: list[dict[str, Any]] = []
    for account, currency, _ in accounts:
        key = (account, currency)
        out.extend(_one_account(account, currency, as_of, sums, balances[key], spans))
    return out


#: Per line of the statement, its sums by (bank account, currency).
Sums = dict[str, dict[tuple[str | None, str], Decimal]]


def _sums(con: duckdb.DuckDBPyConnection, as_of: date) -> Sums:
    """Every account's sums at once, by (bank account, currency): one grouped query
    per line of the statement, not one filtered scan of every stored row per account
    and line (ten per account)."""
    end = f"date <= date '{as_of.isoformat()}'"
    resolved = f"txn_id in ({decided_sql()})"
    bank = (
        "select coalesce(account, '') as acct, currency as cur, amount from txns "
        f"where side = 'bank' and {end}"
    )
    cash = f"txn_id not in (select txn_id from {_DOCS})"
    ledger = (
        "select la.bank_account as acct, t.currency as cur, t.amount from txns t "
        f"join __recon__ledger_acct la using (txn_id) where t.side = 'ledger' and t.{end} "
        f"and t.{cash}"
    )
    bank_open = (
        f"select coalesce(account, '') as acct, currency as cur, amount from {_open_rows('bank')}"
    )
    ledger_open = (
        "select la.bank_account as acct, o.currency as cur, o.amount "
        f"from {_open_rows('ledger')} o join __recon__ledger_acct la using (txn_id) "
        f"where o.{cash}"
    )
    cut = f"last <= date '{as_of.isoformat()}'"
    queries = {
        "bank_all": bank,
        "ledger_all": ledger,
        "bank_resolved": f"{bank} and {resolved}",
        "ledger_resolved": f"{ledger} and t.{resolved}",
        "dit": f"select * from ({ledger_open}) where amount > 0",
        "outstanding": f"select * from ({ledger_open}) where amount < 0",
        "unbooked_in": f"select * from ({bank_open}) where amount > 0",
        "unbooked_out": f"select * from ({bank_open}) where amount < 0",
        # a match in one bank account: its difference; a match of bank lines in two
        # accounts: in each, what its bank got less what the books have there (its
        # ledger lines are in the first account, __recon__ledger_acct), which sum to the
        # difference
        "matched_diff": f"""select bank_lo as acct, cur, diff as amount from __recon__brs_match
            where cur = cur_hi and {cut} and bank_hi is not distinct from bank_lo
            union all
            select case when t.side = 'bank' then coalesce(t.account, '') else la.bank_account end,
                   t.currency, case when t.side = 'bank' then t.amount else -t.amount end
            from __recon__brs_match b join match_members mm using (match_id)
            join txns t on t.txn_id = mm.txn_id
            left join __recon__ledger_acct la on la.txn_id = t.txn_id
            where b.cur = b.cur_hi and {cut} and b.bank_hi <> b.bank_lo
              and t.side in ('bank', 'ledger')""",
        # the ledger's invoices and credit notes in matches with bank lines: the matches
        # take them off as they take off any ledger line (differences, foreign items),
        # but the books never had them (a match of documents alone nets to its bank lines)
        "documents": f"""select la.bank_account as acct, t.currency as cur, t.amount
            from __recon__brs_match b join match_members mm using (match_id)
            join {_DOCS} d on d.txn_id = mm.txn_id join txns t on t.txn_id = mm.txn_id
            join __recon__ledger_acct la on la.txn_id = t.txn_id
            where b.bank_lo is not null and {cut}""",
        # an FX match's bank lines count in their account and currency, its ledger
        # lines come out of theirs (a multi-currency account has a statement there)
        "foreign": f"""select case when t.side = 'bank' then coalesce(t.account, '')
                                   else la.bank_account end as acct,
                   t.currency as cur,
                   case when t.side = 'bank' then t.amount else -t.amount end as amount
            from match_members mm join txns t on t.txn_id = mm.txn_id
            left join __recon__ledger_acct la on la.txn_id = t.txn_id
            where mm.match_id in (select match_id from __recon__brs_match
                                  where cur <> cur_hi and bank_lo is not null and {cut})
              and t.side in ('bank', 'ledger')""",
    }
    return {
        line: {
            (acct, cur): Decimal(total)
            for acct, cur, total in con.execute(
                f"select acct, cur, sum(amount) from ({sql}) group by all"
            ).fetchall()
        }
        for line, sql in queries.items()
    }


#: The bank account of each ledger line: the one it is matched with; else the one
#: its ledger account code is matched with most often; else the only bank account
#: in its currency; else the only bank account.
LEDGER_ACCOUNTS_SQL = f"""
create or replace temp table __recon__ledger_acct as
with pairs as (
    select lt.txn_id, lt.account as gl, lt.currency, coalesce(bt.account, '') as bacct
    from match_members ml
    join txns lt on lt.txn_id = ml.txn_id and lt.side = 'ledger'
    join match_members mb on mb.match_id = ml.match_id
    join txns bt on bt.txn_id = mb.txn_id and bt.side = 'bank'
    where {matchinfo.active_member_sql("ml")}),
direct as (select txn_id, min(bacct) as bacct from pairs group by txn_id),
by_code as (
    select gl, currency, bacct from (select gl, currency, bacct, count(*) as n from pairs
                                     group by all)
    qualify row_number() over (partition by gl, currency order by n desc, bacct) = 1),
banks as (select distinct coalesce(account, '') as bacct, currency from txns where side = 'bank'),
by_currency as (select currency, min(bacct) as bacct from banks group by currency
                having count(*) = 1),
only_one as (select min(bacct) as bacct from banks having count(distinct bacct) = 1)
select t.txn_id,
       coalesce(d.bacct, g.bacct, c.bacct, (select bacct from only_one)) as bank_account
from txns t
left join direct d using (txn_id)
left join by_code g on g.gl is not distinct from t.account and g.currency = t.currency
left join by_currency c on c.currency = t.currency
where t.side = 'ledger'
"""


def _one_account(
    account: str,
    currency: str,
    as_of: date,
    sums: Sums,
    balances: Balances,
    spans: SpanSums,
) -> list[dict[str, Any]]:
    opening, opened_at, closing, closing_end, note = balances
    if opened_at is not None:
        # a later statement's opening, less the bank lines before that statement
        opening -= spans.get(("before_opening", account, currency), Decimal(0))
    after = spans.get(("after_closing", account, currency))
    if closing is not None and closing_end is not None and after is not None:
        # the bank lines after the statement's end go into the open and matched lines
        closing += after
        note = f" (closing balance at {closing_end.isoformat()} + bank lines to {as_of.isoformat()})"

    def line(name: str) -> Decimal:
        return sums[name].get((account, currency), Decimal(0))

    bank_all, ledger_all = line("bank_all"), line("ledger_all")
    dit, outstanding = line("dit"), line("outstanding")
    unbooked_in, unbooked_out = line("unbooked_in"), line("unbooked_out")
    matched_diff = line("matched_diff")
    bank_resolved, ledger_resolved = line("bank_resolved"), line("ledger_resolved")
    foreign, documents = line("foreign"), line("documents")
    bank_balance = closing if closing is not None else opening + bank_all
    books = opening + ledger_all
    adj_bank = bank_balance + dit + outstanding + ledger_resolved
    adj_books = (books + documents + foreign + unbooked_in + unbooked_out + matched_diff
                 + bank_resolved)
    lines = [
        ("bank_balance", f"Balance per bank statement{note}", bank_balance),
        (
            "deposits_in_transit",
            "Add: deposits in transit (in the books, not yet on the bank)",
            dit,
        ),
        ("outstanding_payments", "Less: outstanding cheques and payments", outstanding),
        (
            "ledger_items_written_off",
            "Add/less: ledger items written off or ignored by a reviewer",
            ledger_resolved,
        ),
        ("adjusted_bank_balance", "Adjusted bank balance", adj_bank),
        ("book_balance", "Balance per books (opening + ledger cash lines)", books),
        (
            "documents_matched",
            "Add/less: invoices and credit notes matched to bank lines (the ledger holds "
            "no receipt or payment for them)",
            documents,
        ),
        (
            "foreign_currency_items",
            "Add/less: items booked in another currency, at the amount the bank booked",
            foreign,
        ),
        (
            "bank_receipts_not_booked",
            "Add: bank receipts not yet booked (interest, unknown receipts)",
            unbooked_in,
        ),
        ("bank_charges_not_booked", "Less: bank charges and payments not yet booked", unbooked_out),
        (
            "matched_differences",
            "Add/less: differences in matched items (fees, FX, short/over payments, "
            "parts paid into another account)",
            matched_diff,
        ),
        (
            "bank_items_written_off",
            "Add/less: bank items written off or ignored by a reviewer",
            bank_resolved,
        ),
        ("adjusted_book_balance", "Adjusted book balance", adj_books),
        (
            "unexplained_difference",
            "Unexplained difference (adjusted bank - adjusted books)",
            adj_bank - adj_books,
        ),
    ]
    return [
        {
            "account": _safe(account),
            "currency": currency,
            "period_end": as_of.isoformat(),
            "line": code,
            "label": label,
            "amount": _fmt(amount, currency),
        }
        for code, label, amount in lines
    ]


class Balances(NamedTuple):
    """An account's balances from its statements."""

    opening: Decimal  #: of the first statement (0 when no statement has one)
    #: where the first statement gives none: the start of the first later one that
    #: does, whose opening `opening` is (the bank lines before it are to be taken off)
    opened_at: date | None
    closing: Decimal | None  #: of the last statement ending on or before the cut-off
    closing_end: date | None  #: that statement's end date
    note: str  #: for the label of the bank balance


def _balances(
    con: duckdb.DuckDBPyConnection, keys: list[tuple[str, str]], as_of: date
) -> dict[tuple[str, str], Balances]:
    """The balances of every bank account and currency of `keys`, from one query of
    table statements (the bank files' own; a ledger file's row there is no statement
    of an account), not one per account: a statement without a currency counts for
    each of its account's currencies.  Statements of the same period are taken in
    the order they were loaded (DuckDB's sort keeps no order among ties)."""
    rows = con.execute(
        """select coalesce(account, ''), currency, opening_balance, closing_balance,
                  start_date, end_date from statements
        where (end_date is null or end_date <= ?)
          and file_id in (select file_id from files where side = 'bank')
        order by start_date nulls first, end_date nulls last, file_id, seq""",
        [as_of],
    ).fetchall()
    by_account: dict[str, list[tuple[Any, ...]]] = {}
    for account, *row in rows:
        by_account.setdefault(account, []).append(tuple(row))
    return {
        (account, currency): _picked(
            [r[1:] for r in by_account.get(account, []) if r[0] is None or r[0] == currency],
            currency,
        )
        for account, currency in keys
    }


def _picked(rows: list[tuple[Any, ...]], currency: str) -> Balances:
    """The balances of an account in `currency` from its statements `rows` (opening,
    closing, start and end date; in the order of their periods): the first opening,
    the last closing."""
    opening, opened_at = next(
        ((Decimal(o), s if n else None) for n, (o, _, s, _) in enumerate(rows) if o is not None),
        (None, None),
    )
    closing, closing_end = next(
        ((Decimal(c), e) for _, c, _, e in reversed(rows) if c is not None), (None, None)
    )
    if closing is None:
        note = " (no statement balance in the files: opening + bank lines"
        note += f", opening taken as {_fmt(Decimal(0), currency)})" if opening is None else ")"
    else:
        note = ""
    return Balances(opening or Decimal(0), opened_at, closing, closing_end, note)


#: Sums of an account's bank lines in a span of dates, by (span, bank account, currency):
#: "after_closing" (after the closing statement's end, to the cut-off) and
#: "before_opening" (before the start of the statement whose opening is taken).
SpanSums = dict[tuple[str, str, str], Decimal]

#: The spans of dates whose bank lines :func:`_span_sums` adds up.
_SPANS = "__recon__brs_spans"


def _span_sums(
    con: duckdb.DuckDBPyConnection, as_of: date, balances: dict[tuple[str, str], Balances]
) -> SpanSums:
    """The sums of the bank lines in every account's spans (no entry where no line falls
    in one): one join of every span with the bank lines, not a scan of them per account."""
    spans = [
        ("after_closing", acct, cur, b.closing_end, as_of)
        for (acct, cur), b in balances.items()
        if b.closing is not None and b.closing_end is not None and b.closing_end < as_of
    ] + [
        ("before_opening", acct, cur, None, b.opened_at - timedelta(days=1))
        for (acct, cur), b in balances.items()
        if b.opened_at is not None
    ]
    if not spans:
        return {}
    con.execute(
        f"create or replace temp table {_SPANS} "
        "(span varchar, acct varchar, cur varchar, after date, upto date)"
    )
    con.executemany(f"insert into {_SPANS} values (?, ?, ?, ?, ?)", spans)
    rows = con.execute(
        f"""select s.span, s.acct, s.cur, sum(t.amount)
        from txns t join {_SPANS} s on coalesce(t.account, '') = s.acct and t.currency = s.cur
        where t.side = 'bank' and t.date <= date '{as_of.isoformat()}'
          and (s.after is null or t.date > s.after) and t.date <= s.upto
        group by all"""
    ).fetchall()
    return {(span, acct, cur): Decimal(total) for span, acct, cur, total in rows}


#: The ledger's documents: invoices and credit notes (recon.openitems.doc_kind_sql), which
#: are receivables, not cash-book entries: a ledger export may hold them beside its
#: receipts, and a bank line may be matched to them directly.
_DOCS = "__recon__brs_docs"
DOCUMENTS_SQL = f"""
create or replace temp table {_DOCS} as
select txn_id from txns
where side = 'ledger' and doc_type is not null
  and {doc_kind_sql('doc_type')} in ('invoice', 'credit_note')
"""

#: Per active match: its currencies, last date, bank accounts and bank-minus-ledger sum
#: (from match_info, derived once per match: see recon.matchinfo).
MATCH_SUMMARY_SQL = """
create or replace temp table __recon__brs_match as
select i.match_id, i.cur_lo as cur, i.cur_hi, i.last_date as last, i.bank_lo, i.bank_hi,
       i.bank_minus_ledger as diff
from matches m join match_info i using (match_id)
where m.active
"""


def _safe(text: str) -> str:
    """Neutralise text a spreadsheet would run as a formula."""
    return "'" + text if text[:1] in FORMULA_START else text


def _fmt(d: Decimal, currency: str) -> str:
    """`d` with the currency's minor units, rounded half away from zero: the text the
    other outputs' recon_fmt gives (a zero is never written '-0.00')."""
    return str(round_amount(d, currency))


def statement_frame(rows: list[dict[str, Any]]) -> pl.DataFrame:
    """The statement as a frame of strings (for the CSV and the report)."""
    return pl.DataFrame(rows, schema=dict.fromkeys(COLUMNS, pl.String))
