"""What the outputs read of each match's members, kept once per match (table match_info).

matches.csv, discrepancies.csv, changes.csv and the reconciliation statement all
need, per active match, facts of its member rows: the sorted source ids of each
side, the currencies, the dates, the bank accounts and the bank-minus-ledger sum.
Grouping two million members by match at every run cost more than writing the
files; a match's members never change (its id is a hash of them), so the facts
are derived once, when a one-to-one match is recorded (:func:`one_to_one_columns`,
in the recorder's own join) or, for the others, by :func:`refresh` before the
outputs are written.  The table is derived
data: deleting its rows loses nothing, :func:`refresh` rebuilds them.
"""

from __future__ import annotations

import hashlib

import duckdb

#: Hex digits of md5 a match id keeps ('M' and these): 80 bits.  Ids are hashes of
#: the members, the same at every rerun, and unique in table matches; with 48 bits (12
#: digits, before) a database that had recorded tens of millions of matches held two
#: with one id (60 million distinct members' texts gave 7 shared ids), and the run that
#: made the second stopped at the key, every night again (a run still stops at such an
#: id: recon.run._check_match_ids).  With 80 bits a billion matches share one with a
#: chance under one in a million.
MATCH_ID_HEX = 20


def match_id_sql(text: str) -> str:
    """A match id from SQL text expression `text` (what identifies its members)."""
    return f"'M' || substr(md5({text}), 1, {MATCH_ID_HEX})"


def match_id(text: str) -> str:
    """A match id from `text`, as :func:`match_id_sql` makes it in SQL."""
    return "M" + hashlib.md5(text.encode()).hexdigest()[:MATCH_ID_HEX]

#: The table (part of recon.db's schema): one row per match, derived from its members.
TABLE_SQL = """
create table if not exists match_info (
    match_id varchar,
    left_ids varchar,           -- sorted source ids of the left members, joined by ';'
    right_ids varchar,
    cur varchar,                -- currency of a left member (the match's currency)
    rcur varchar,               -- currency of a right member
    cur_lo varchar,             -- smallest and largest currency of all members:
    cur_hi varchar,             --   equal unless FX
    first_date date,            -- earliest date of a left member (matches.csv order)
    last_date date,             -- latest date of any member
    bank_left boolean,          -- a bank line is a left member
    statement_left boolean,     -- a customer-statement line is a left member
    ledger_only boolean,        -- every member is a ledger line (a ledger reversal)
    bank_lo varchar,            -- smallest and largest bank account (coalesced to '')
    bank_hi varchar,            --   of the bank members
    bank_minus_ledger decimal(20,4));  -- bank amounts minus ledger amounts
"""


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


def _one_to_one_values(l: str, r: str) -> dict[str, str]:
    """match_info's columns (after match_id) of a one-to-one match of row `l` of an open
    left table and ledger row `r`: what :func:`from_members_sql` gives for such a
    match, without grouping (a test holds the two to it)."""
    bank_account = f"case when {l}.side = 'bank' then coalesce({l}.account, '') end"
    return {
        "left_ids": f"{l}.source_id",
        "right_ids": f"{r}.source_id",
        "cur": f"{l}.currency",
        "rcur": f"{r}.currency",
        "cur_lo": f"least({l}.currency, {r}.currency)",
        "cur_hi": f"greatest({l}.currency, {r}.currency)",
        "first_date": f"{l}.date",
        "last_date": f"greatest({l}.date, {r}.date)",
        "bank_left": f"{l}.side = 'bank'",
        "statement_left": f"{l}.side = 'statement'",
        "ledger_only": "false",
        "bank_lo": bank_account,
        "bank_hi": bank_account,
        "bank_minus_ledger": f"case when {l}.side = 'bank' then {l}.amount else 0 end - {r}.amount",
    }


def one_to_one_columns(left: str = "l", right: str = "r", prefix: str = "i_") -> str:
    """match_info's values of one-to-one matches as select items named `prefix` +
    column: the recorder computes them in the join with the open rows it makes anyway."""
    values = _one_to_one_values(left, right)
    return ", ".join(f"{v} as {prefix}{c}" for c, v in values.items())


def one_to_one_insert_sql(new: str, prefix: str = "i_") -> str:
    """Insert into match_info the rows of table `new` (with match_id and the columns of
    :func:`one_to_one_columns`)."""
    cols = ", ".join(prefix + c for c in _one_to_one_values("l", "r"))
    return f"insert into match_info select match_id, {cols} from {new}"


def active_member_sql(member: str = "mm") -> str:
    """Row `member` of match_members belongs to an active match.  A match and its
    members are recorded and deleted together, so this is "of no inactive match": the
    few inactive ids are hashed, not every member joined with its match (the stored
    rows' open/matched test at a million matches: 0.20 -> 0.09 s).  Where a selective
    condition leaves a few members first (the aging's, the statement agreement's),
    joining those few with their matches is cheaper: DuckDB tests this one on every
    member (aging 1.16 -> 1.38 s)."""
    return f"{member}.match_id not in (select match_id from matches where not active)"


#: The txn ids of the members of every active match (for `txn_id in (...)`): which
#: stored rows are matched now, whatever the pass.
ACTIVE_MEMBERS_SQL = f"select mm.txn_id from match_members mm where {active_member_sql()}"


MEMBERS_SQL = """
    select mm.match_id, mm.role, t.source_id, t.currency, t.date, t.side, t.account, t.amount
    from match_members mm join txns t on t.txn_id = mm.txn_id
    where mm.match_id in (select match_id from matches
                          where match_id not in (select match_id from match_info))"""


def refresh(con: duckdb.DuckDBPyConnection) -> int:
    """Derive match_info for the matches that have none; return how many."""
    # the insert answers with the number of rows it wrote
    return int(
        con.execute(f"insert into match_info {from_members_sql(MEMBERS_SQL)}").fetchall()[0][0]
    )
