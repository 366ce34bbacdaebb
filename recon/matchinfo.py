"""What the outputs read of each match's members, kept once per match (table match_info).

matches.csv, discrepancies.csv, changes.csv and the reconciliation statement all
need, per active match, facts of its member rows: the sorted source ids of each
side, the currencies, the dates, the bank accounts and the bank-minus-ledger sum.
Grouping two million members by match at every run cost more than writing the
files; a match's members never change (its id is a hash of them), so the facts
are derived once, when the match is recorded (:func:`one_to_one_sql`) or, for the
others, by :func:`refresh` before the outputs are written.  The table is derived
data: deleting its rows loses nothing, :func:`refresh` rebuilds them.
"""

from __future__ import annotations

import duckdb

#: Columns of match_info, in order (see SCHEMA_SQL in recon.db).
COLUMNS = (
    "match_id",
    "left_ids",  # sorted source ids of the left members, joined by ';'
    "right_ids",
    "cur",  # currency of a left member (the match's currency)
    "rcur",  # currency of a right member
    "cur_lo",  # smallest and largest currency of all members: equal unless FX
    "cur_hi",
    "first_date",  # earliest date of a left member (matches.csv is in this order)
    "last_date",  # latest date of any member
    "bank_left",  # a bank line is a left member
    "statement_left",  # a customer-statement line is a left member
    "ledger_only",  # every member is a ledger line (a ledger reversal)
    "bank_lo",  # smallest and largest bank account (coalesced to '') of bank members
    "bank_hi",
    "bank_minus_ledger",  # sum of bank amounts minus sum of ledger amounts
)


def ids_sql(role: str) -> str:
    """The `source_id`s of one role of a group, sorted, joined by ';' (an aggregate)."""
    return f"array_to_string(list_sort(list(source_id) filter (where role = '{role}')), ';')"


def from_members_sql(members: str) -> str:
    """match_info rows from `members`: rows (match_id, role, source_id, currency, date,
    side, account, amount), one per member."""
    return f"""
        select match_id, {ids_sql("left")}, {ids_sql("right")},
               any_value(currency) filter (where role = 'left'),
               any_value(currency) filter (where role = 'right'),
               min(currency), max(currency),
               min(date) filter (where role = 'left'), max(date),
               bool_or(role = 'left' and side = 'bank'),
               bool_or(role = 'left' and side = 'statement'),
               bool_and(side = 'ledger'),
               min(coalesce(account, '')) filter (where side = 'bank'),
               max(coalesce(account, '')) filter (where side = 'bank'),
               coalesce(sum(case when side = 'bank' then amount
                                 when side = 'ledger' then -amount end), 0)
        from ({members}) group by match_id"""


def one_to_one_sql(new: str, left: str, right: str) -> str:
    """match_info rows of one-to-one matches, without grouping: `new` has match_id, l and
    r, the ids of a row of table `left` and of a ledger row of table `right`.

    The same values :func:`from_members_sql` gives for such a match (a test holds
    the two to it).
    """
    return f"""
        select n.match_id, l.source_id, r.source_id, l.currency, r.currency,
               least(l.currency, r.currency), greatest(l.currency, r.currency),
               l.date, greatest(l.date, r.date), l.side = 'bank', l.side = 'statement',
               false,
               case when l.side = 'bank' then coalesce(l.account, '') end,
               case when l.side = 'bank' then coalesce(l.account, '') end,
               case when l.side = 'bank' then l.amount else 0 end - r.amount
        from {new} n join {left} l on l.id = n.l join {right} r on r.id = n.r"""


MEMBERS_SQL = """
    select mm.match_id, mm.role, t.source_id, t.currency, t.date, t.side, t.account, t.amount
    from match_members mm join txns t on t.txn_id = mm.txn_id
    where mm.match_id in (select match_id from __recon__info_todo)"""


def refresh(con: duckdb.DuckDBPyConnection) -> int:
    """Derive match_info for the matches that have none; return how many."""
    con.execute(
        "create or replace temp table __recon__info_todo as select match_id from matches "
        "where match_id not in (select match_id from match_info)"
    )
    todo = con.execute("select count(*) from __recon__info_todo").fetchall()[0][0]
    if todo:
        con.execute(f"insert into match_info {from_members_sql(MEMBERS_SQL)}")
    con.execute("drop table __recon__info_todo")
    return int(todo)
