"""Agreeing a customer's statement with our books (the statement pass of `recon run`).

A customer sends what they think they owe us (their payables ledger, in our
signs: invoices and receipts positive, ``doc_type`` telling them apart); it is
loaded as ``--statement`` and matched against the ledger by the rule
pipeline (left = statement rows, right = ledger rows).  :func:`agreement_frame`
lists, per customer and currency, why their closing balance differs from ours.

Columns of the frame (and of ``statement_agreement.csv``)::

    customer      customer id (see below how statement lines find theirs)
    name          from the customer master, when loaded
    currency
    line          closing_balance | opening_balance | balance_break | amount_differs |
                  only_theirs | only_ours | unexplained
    their_ids     statement row ids (';'-joined)
    our_ids       ledger (or bank, for a receipt only the bank has) row ids
    date          earliest date of the item (opening_balance: the day of both balances;
                  balance_break: the day of their stated closing balance)
    kind          invoice | credit_note | receipt
    reference     the item's reference (theirs, else ours)
    their_amount  the item's effect on the balance they show (+: they owe more)
    our_amount    the item's effect on our balance
    difference    their_amount - our_amount (empty counts as 0)
    match_id      the statement-pass match, for amount_differs from a match
    note          what the line means, in words

``closing_balance`` (first row of each customer and currency) gives both
closing balances and their difference; each following row explains part of
it, and their differences add up exactly to the closing difference.
``unexplained`` (last row) is that check: closing difference minus the sum of
the rows' differences, always 0.00 (it is written so a reader sees the proof).

``opening_balance`` (second row, when their statement opens with a balance
brought forward: :mod:`recon.loaders.balances`) compares that balance with ours
at the end of the day before the statement's period, which is every line of
ours dated up to that day.  Those lines of ours are in the opening balance, not
items; a line of theirs matched to one of them is an item whose difference is
their amount (ours is in the opening balances).  Their closing balance is their
opening balance plus their lines, unless they state one (below).  Of several
statements of a customer and currency with an opening balance, the earliest one's
counts.

``balance_break`` (third row): their statement does not add up.  Where they
state an opening balance, their closing balance is the one their latest
statement states by ``as_of`` (plus their lines after it): the figure they
show, not one we make up for them.  What of it their opening balance and lines
up to its day do not make (a page of lines missing, a figure wrong) is this
row, so the rows still add up to the closing difference; recon.integrity lists
the same as a ``balance`` break of the file.

Items:

* ``amount_differs`` — matched items whose effects differ: a match of the
  statement pass with ``amount_diff != 0`` (or whose kinds disagree), or a
  leftover pair found here: one unmatched line each side with the same kind
  and reference (``paired by reference``) or the same kind and amount within 7
  days (``paired by amount and date``; not two invoices or credit notes whose
  numbers, as the rules' reference patterns read them, differ), each pairing
  unique on both sides.
  The pairing catches a typo too large for the rules and receipts the bank
  pass already matched (a ledger line is matched at most once per run).
* ``only_theirs`` — on their statement only (an invoice we never issued, a
  payment we never received).
* ``only_ours`` — in our books only (an invoice missing from their statement).

Customers: a statement line belongs to the customer of its ``customer_id``,
else of its counterparty name (aliases), else of the ledger lines its file
was matched to (the most frequent); an opening balance to the customer of its
file's lines in its currency (the most frequent), else in any currency.  Our
side is every receivable line of that customer up to ``as_of``
(:mod:`recon.openitems`), so our closing balance is the aging total of ``recon
aging`` on the same day.
"""

from __future__ import annotations

from datetime import date

import duckdb
import polars as pl

from recon import openitems
from recon.openitems import doc_kind_sql, effect_sql, name_keys_sql, ref_key_sql

COLUMNS = (
    "customer", "name", "currency", "line", "their_ids", "our_ids", "date", "kind", "reference",
    "their_amount", "our_amount", "difference", "match_id", "note",
)

#: How far apart two leftover items may be dated to pair by amount.
PAIR_DAYS = 7


#: Our lines of the statements' customers (txn_id, ...), as the agreement reads them: the
#: ledger side of the customer statements' pass (see recon.run).
OUR_LINES = "__recon__ag_ours"


def agreement_frame(con: duckdb.DuckDBPyConnection, as_of: date) -> pl.DataFrame:
    """Differences between each customer's statement and our books as of `as_of`."""
    openitems.build_lines(con, as_of)
    _statement_lines(con, as_of)
    _stated(con, as_of)
    _breaks(con)
    _our_lines(con)
    _matched(con)
    _leftovers(con)
    frame: pl.DataFrame = con.sql(_output_sql()).pl()
    return frame.select(COLUMNS)


def their_kind_sql(kind: str, doc_type: str, matched_kind: str = "null") -> str:
    """A statement line's kind: the invoice or credit note its doc_type says (`kind`,
    :func:`recon.openitems.doc_kind_sql`); with no doc_type, the kind of the ledger
    lines it was matched to (`matched_kind`); else a receipt."""
    return f"""coalesce(case when {kind} in ('invoice', 'credit_note') then {kind} end,
        case when nullif(trim({doc_type}), '') is null then {matched_kind} end, 'receipt')"""


def statement_totals(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame) -> pl.DataFrame:
    """Per account and currency of a customer statement's rows (canonical columns): the
    sum of their effects on the customer's balance (`total`) and who the customer is
    (`customer`: the commonest customer_id, else counterparty).

    The kinds are those of the agreement, but a file is checked before it is matched:
    a line without a doc_type counts as a receipt (recon.integrity checks the file's
    stated closing balance against its opening balance plus this)."""
    rows = frame.select("account", "currency", "amount", "doc_type", "customer_id",  # noqa: F841
                        "counterparty")
    totals: pl.DataFrame = con.sql(f"""
        select account, currency, sum({_checked_effect_sql()}) as total,
               coalesce(mode(nullif(trim(customer_id), '')), mode(counterparty)) as customer
        from rows group by account, currency""").pl()
    return totals


def carried_balances(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame,
                     carried: pl.DataFrame | None) -> pl.DataFrame | None:
    """The balances a customer statement carries from page to page (`carried`: its page
    lines, recon.loaders.balances.split_balances took them out of its rows `frame`).

    Per account and currency, in the statement's order (the file's, or the reverse where
    its lines run newest first), each page line (`line`, `amount`) with the one before
    it (`prev_line`, `prev_amount`; null for the first, which follows the opening
    balance) and `lines`: the effects of the rows between, as statement_totals counts
    them.  None where it carries none."""
    if carried is None or not carried.height:
        return None
    rows = frame.select("line", "date", "account", "currency", "amount", "doc_type")  # noqa: F841
    pages = carried.select("line", "account", "currency", "amount")  # noqa: F841
    found: pl.DataFrame = con.sql(f"""
        with t as (select account, currency, line, {_checked_effect_sql()} as effect,
                          sign(date_diff('day', lag(date) over (
                              partition by account, currency order by line), date)) as step
                   from rows),
        -- newest first: more of its rows dated before the row above them than after
        o as (select account, currency, coalesce(sum(step), 0) < 0 as back
              from t group by account, currency),
        u as (select account, currency, line, effect, null as amount, false as page from t
              union all by name
              select account, currency, line, 0 as effect, amount, true as page from pages),
        r as (select *, sum(effect) over (partition by account, currency order by line) as upto,
                     sum(effect) over (partition by account, currency) as total from u),
        c as (select r.account, r.currency, r.line, r.amount, o.back,
                     case when o.back then r.total - r.upto else r.upto end as before
              from r join o on o.account is not distinct from r.account
                           and o.currency is not distinct from r.currency
              where r.page)
        select account, currency, line, amount, lag(line) over w as prev_line,
               lag(amount) over w as prev_amount,
               before - coalesce(lag(before) over w, 0) as lines
        from c window w as (partition by account, currency
                            order by case when back then -line else line end)
        order by line""").pl()
    return found


def _checked_effect_sql() -> str:
    """A statement line's effect as its file is checked, before it is matched: the
    kinds of the agreement, a line without a doc_type counting as a receipt."""
    return effect_sql(their_kind_sql(doc_kind_sql("doc_type"), "doc_type"), "amount")


def _statement_lines(con: duckdb.DuckDBPyConnection, as_of: date) -> None:
    """`__recon__ag_stmt`: statement lines with kind, customer and effect."""
    con.execute("""create or replace temp table __recon__ag_mem as
        with sm as (select distinct mm.match_id from match_members mm
                    join matches m using (match_id) join txns t on t.txn_id = mm.txn_id
                    where m.active and t.side = 'statement')
        select mm.match_id, mm.txn_id, t.side from match_members mm
        join sm using (match_id) join txns t on t.txn_id = mm.txn_id""")
    con.execute(f"""create or replace temp table __recon__ag_stmt as
        with s as (
            select t.*, {doc_kind_sql('t.doc_type')} as kind0,
                   nullif(trim(t.customer_id), '') as cid_raw
            from txns t where t.side = 'statement' and t.date <= ?),
        other as (  -- what the ledger lines matched to each statement line are
            select a.txn_id as sid, min(l.kind) as kind, mode(l.customer) as customer
            from __recon__ag_mem a join __recon__ag_mem b
              on b.match_id = a.match_id and b.side = 'ledger'
            join {openitems.LINES} l on l.txn_id = b.txn_id
            where a.side = 'statement' group by a.txn_id),
        by_file as (
            select s.file_id, mode(o.customer) as customer
            from s join other o on o.sid = s.txn_id group by s.file_id),
        j as (
            select s.*, o.kind as other_kind, c.customer_id as master_id,
                   case when u.n = 1 then u.cid end as name_cid, f.customer as file_cid
            from s left join other o on o.sid = s.txn_id
            left join customers c on c.customer_id = s.cid_raw
            left join ({name_keys_sql()}) u on u.k = s.name_key
            left join by_file f on f.file_id = s.file_id),
        k as (
            select j.*, {their_kind_sql('kind0', 'doc_type', 'other_kind')} as kind,
                   coalesce(master_id, cid_raw, name_cid, file_cid) as customer
            from j)
        select txn_id, source_id, file_id, account, date, amount, currency, reference, kind,
               customer, {effect_sql('kind', 'amount')} as effect,
               {ref_key_sql('reference')} as ref_key
        from k""", [as_of])


def _stated(con: duckdb.DuckDBPyConnection, as_of: date) -> None:
    """`__recon__ag_open`: per customer and currency, the opening balance of their
    earliest statement that states one, and the first day of its period;
    `__recon__ag_close`: the closing balance of their latest statement that states one
    by `as_of`, and the last day of its period.  A statement's customer is its lines'
    (the most frequent), else its file's: found once for both."""
    con.execute("""create or replace temp table __recon__ag_stated as
        with by_block as (
            select file_id, coalesce(account, '') as account, currency,
                   mode(customer) as customer
            from __recon__ag_stmt group by all),
        by_file as (
            select file_id, mode(customer) as customer from __recon__ag_stmt group by all)
        select s.file_id, s.seq, s.opening_balance, s.start_date, s.closing_balance,
               s.end_date, f.name, upper(s.currency) as currency,
               coalesce(b.customer, c.customer) as customer
        from statements s join files f using (file_id)
        left join by_block b on b.file_id = s.file_id
         and b.account = coalesce(s.account, '') and b.currency = upper(s.currency)
        left join by_file c on c.file_id = s.file_id
        where f.side = 'statement'""")
    for table, balance, day, order in (("open", "opening_balance", "start_date", ""),
                                       ("close", "closing_balance", "end_date", " desc")):
        con.execute(f"""create or replace temp table __recon__ag_{table} as
            select customer, currency, {balance} as amount, {day}, name as file
            from __recon__ag_stated where {balance} is not null and {day} <= ?
            qualify row_number() over (
                partition by customer, currency
                order by {day}{order}, file_id{order}, seq{order}) = 1""", [as_of])


def _breaks(con: duckdb.DuckDBPyConnection) -> None:
    """`__recon__ag_break`: where their stated closing balance is not their opening
    balance plus their lines up to its day (recon.integrity's `balance` break), the
    part their lines do not make: a row of the agreement, so their closing balance is
    the one they state and the rows still add up to the closing difference."""
    con.execute("""create or replace temp table __recon__ag_break as
        with b as (
            select c.customer, c.currency, c.end_date, c.amount as stated, c.file,
                   o.amount + coalesce((select sum(s.effect) from __recon__ag_stmt s
                                        where s.customer is not distinct from c.customer
                                          and s.currency = c.currency
                                          and s.date <= c.end_date), 0) as made
            from __recon__ag_close c join __recon__ag_open o
              on o.currency = c.currency and o.customer is not distinct from c.customer)
        select customer, currency, 'balance_break' as line, null as their_ids,
               null as our_ids, end_date as date, null as kind, null as reference,
               stated - made as their_amount, null as our_amount, null as match_id,
               'their closing balance ' || recon_fmt(stated, currency) || ' (' || file
               || ') is not their opening balance and lines up to ' || end_date || ', '
               || recon_fmt(made, currency) || ': a line missing from their statement, '
               || 'or a figure wrong' as note
        from b where stated <> made""")


def _our_lines(con: duckdb.DuckDBPyConnection) -> None:
    """Table OUR_LINES: our lines of the statements' customers; `opening` marks
    those their opening balance holds (dated before its statement's period)."""
    # `line` tells our lines apart: one bank line paying several customers is one line
    # of each (openitems.bank_receipts_sql), all with its txn_id
    con.execute(f"""create or replace temp table {OUR_LINES} as
        select l.txn_id, l.source_id, l.date, l.amount, l.currency, l.reference, l.kind,
               l.customer, l.effect, {ref_key_sql('l.reference')} as ref_key,
               row_number() over () as line, coalesce(l.date < o.start_date, false) as opening
        from {openitems.LINES} l
        left join __recon__ag_open o on o.customer = l.customer and o.currency = l.currency
        where l.customer in (select customer from __recon__ag_stmt)""")


def _matched(con: duckdb.DuckDBPyConnection) -> None:
    """`__recon__ag_matched`: per statement-pass match and customer, both sides' effects."""
    con.execute(f"""create or replace temp table __recon__ag_matched as
        with t as (
            select a.match_id, s.customer, s.currency, sum(s.effect) as amt,
                   string_agg(s.source_id, ';' order by s.source_id) as ids,
                   min(s.date) as d, min(s.kind) as kind, min(s.reference) as ref
            from __recon__ag_mem a join __recon__ag_stmt s using (txn_id)
            group by 1, 2, 3),
        o as (  -- lines in their opening balance are not in the match's amounts
            select a.match_id, l.customer, l.currency,
                   sum(l.effect) filter (where not l.opening) as amt,
                   string_agg(l.source_id, ';' order by l.source_id)
                       filter (where not l.opening) as ids,
                   string_agg(l.source_id, ';' order by l.source_id)
                       filter (where l.opening) as opening_ids,
                   min(l.date) as d, min(l.kind) as kind, min(l.reference) as ref
            from __recon__ag_mem a join {OUR_LINES} l using (txn_id)
            group by 1, 2, 3)
        select coalesce(t.match_id, o.match_id) as match_id,
               coalesce(t.customer, o.customer) as customer,
               coalesce(t.currency, o.currency) as currency,
               t.amt as their_amount, o.amt as our_amount, t.ids as their_ids,
               o.ids as our_ids, least(t.d, o.d) as date, coalesce(t.kind, o.kind) as kind,
               coalesce(t.ref, o.ref) as reference, t.kind as their_kind, o.kind as our_kind,
               o.opening_ids
        from t full join o on o.match_id = t.match_id and o.currency = t.currency
         and o.customer is not distinct from t.customer""")


def _leftovers(con: duckdb.DuckDBPyConnection) -> None:
    """Unmatched lines each side, and the unique pairs among them (`__recon__ag_pairs`)."""
    # our lines in their opening balance are in the opening_balance row, not items
    for side, table, cond in (("s", "__recon__ag_stmt", "true"),
                              ("o", OUR_LINES, "not opening")):
        con.execute(f"""create or replace temp table __recon__ag_left_{side} as
            select * from {table}
            where txn_id not in (select txn_id from __recon__ag_mem) and {cond}""")
    key = "customer, currency, kind"
    con.execute(f"""create or replace temp table __recon__ag_pairs as
        with s as (select *, count(*) over (partition by {key}, ref_key) as n
                   from __recon__ag_left_s where ref_key is not null),
        o as (select *, count(*) over (partition by {key}, ref_key) as n
              from __recon__ag_left_o where ref_key is not null)
        select s.txn_id as sid, o.line as oid, 'paired by reference' as how
        from s join o using ({key}, ref_key) where s.n = 1 and o.n = 1""")
    # two invoices (or credit notes) whose numbers differ are two documents, however
    # alike their amounts and dates: the rules' reference keys (ref_keys, the patterns'
    # keys, not the whole field's 'ref:') tell INV-2026-00007 from INV-2026-00009 and
    # 2026-00001 from nothing else; payments' references are free text and do not count
    keys = """(select txn_id, list(ref) as keys from ref_keys
               where ref not like 'ref:%' and txn_id in (select txn_id from {t})
               group by txn_id)"""
    con.execute(f"""insert into __recon__ag_pairs
        with c as (
            select s.txn_id as sid, o.line as oid
            from __recon__ag_left_s s join __recon__ag_left_o o using ({key}, effect)
            left join {keys.format(t='__recon__ag_left_s')} ks on ks.txn_id = s.txn_id
            left join {keys.format(t='__recon__ag_left_o')} ko on ko.txn_id = o.txn_id
            where abs(date_diff('day', s.date, o.date)) <= {PAIR_DAYS}
              and s.txn_id not in (select sid from __recon__ag_pairs)
              and o.line not in (select oid from __recon__ag_pairs)
              and (kind = 'receipt' or ks.keys is null or ko.keys is null
                   or len(list_intersect(ks.keys, ko.keys)) > 0))
        select sid, oid, 'paired by amount and date' from c
        where sid in (select sid from c group by sid having count(*) = 1)
          and oid in (select oid from c group by oid having count(*) = 1)""")


_ONLY_THEIRS_NOTE = """case kind when 'invoice' then 'invoice on their statement, not in our books'
    when 'credit_note' then 'credit note on their statement, not in our books'
    else 'payment on their statement that we have not received or booked' end"""
_ONLY_OURS_NOTE = """case kind when 'invoice' then 'our invoice is missing from their statement'
    when 'credit_note' then 'our credit note is missing from their statement'
    else 'our receipt is missing from their statement' end"""


def _across_sql(side: str) -> str:
    """`side` ids (their_ids, our_ids) of the same match and customer in other currencies,
    as `S1 in USD`: an FX match puts each side in its own currency's rows."""
    return f"""(select string_agg(y.{side} || ' in ' || y.currency, '; ' order by y.currency)
                from __recon__ag_matched y
                where y.match_id = m.match_id and y.{side} is not null
                  and y.customer is not distinct from m.customer and y.currency <> m.currency)"""


def _items_sql() -> str:
    return f"""
        select m.customer, m.currency, 'amount_differs' as line, m.their_ids, m.our_ids,
               m.date, m.kind, m.reference, m.their_amount, m.our_amount, m.match_id,
               case when m.opening_ids is not null
                         then 'matched by rule ' || coalesce(x.rule, '?') || ' to our '
                         || m.opening_ids || ', dated before their statement''s period: in '
                         || 'the opening balances, not here'
                    when m.our_ids is null and {_across_sql('our_ids')} is not null
                         then 'matched by rule ' || coalesce(x.rule, '?') || ' to our '
                         || {_across_sql('our_ids')} || ': the same item in another currency'
                    when m.their_ids is null and {_across_sql('their_ids')} is not null
                         then 'matched by rule ' || coalesce(x.rule, '?') || ' to their '
                         || {_across_sql('their_ids')} || ': the same item in another currency'
                    when m.our_ids is null then 'matched to a ledger line that is not a '
                         || 'receivable of this customer'
                    when m.their_ids is null then 'our line is matched to a statement line '
                         || 'of another customer'
                    when m.their_kind <> m.our_kind then 'matched, but theirs is a '
                         || m.their_kind || ' and ours a ' || m.our_kind
                    else 'matched by rule ' || coalesce(x.rule, '?') || '; amounts differ' end
                   as note
        from __recon__ag_matched m left join matches x using (match_id)
        where coalesce(m.their_amount, 0) <> coalesce(m.our_amount, 0)
        union all
        select s.customer, s.currency, 'amount_differs', s.source_id, o.source_id,
               least(s.date, o.date), s.kind, coalesce(s.reference, o.reference), s.effect,
               o.effect, null, p.how || '; amounts differ'
        from __recon__ag_pairs p join __recon__ag_stmt s on s.txn_id = p.sid
        join {OUR_LINES} o on o.line = p.oid where s.effect <> o.effect
        union all
        select customer, currency, 'only_theirs', source_id, null, date, kind, reference,
               effect, null, null, {_ONLY_THEIRS_NOTE}
        from __recon__ag_left_s where txn_id not in (select sid from __recon__ag_pairs)
        union all
        select customer, currency, 'only_ours', null, source_id, date, kind, reference,
               null, effect, null, {_ONLY_OURS_NOTE}
        from __recon__ag_left_o where line not in (select oid from __recon__ag_pairs)"""


def _output_sql() -> str:
    return f"""
        with items as ({_items_sql()}),
        opening as (
            select o.customer, o.currency, 'opening_balance' as line, null as their_ids,
                   null as our_ids, o.start_date - 1 as date, null as kind, null as reference,
                   o.amount as their_amount,
                   (select coalesce(sum(l.effect), 0) from {OUR_LINES} l
                    where l.opening and l.customer = o.customer and l.currency = o.currency)
                       as our_amount,
                   null as match_id,
                   'their balance brought forward (' || o.file || ') and ours at the end '
                   || 'of the day before their statement''s period' as note
            from __recon__ag_open o),
        bal as (
            select customer, currency, sum(t) as their_amount, sum(o) as our_amount from (
                select customer, currency, effect as t, 0 as o from __recon__ag_stmt
                union all select customer, currency, amount, 0 from __recon__ag_open
                union all select customer, currency, their_amount, 0 from __recon__ag_break
                union all select customer, currency, 0, effect from {OUR_LINES})
            group by 1, 2),
        expl as (
            select customer, currency,
                   sum(coalesce(their_amount, 0) - coalesce(our_amount, 0)) as explained
            from (select * from opening union all select * from __recon__ag_break
                  union all select * from items) group by 1, 2),
        rows_ as (
            select 0 as o, customer, currency, 'closing_balance' as line, null as their_ids,
                   null as our_ids, null::date as date, null as kind, null as reference,
                   their_amount, our_amount, null as match_id,
                   'their closing balance and ours as of the cut-off' as note
            from bal
            union all select 1, * from opening
            union all select 2, * from __recon__ag_break
            union all select 3, * from items
            union all
            select 4, b.customer, b.currency, 'unexplained', null, null, null, null, null,
                   null, null, null, 'closing difference minus the items above (should be 0)'
            from bal b)
        select recon_safe(r.customer) as customer, recon_safe(c.name) as name, r.currency,
               r.line, recon_safe(r.their_ids) as their_ids, recon_safe(r.our_ids) as our_ids,
               r.date, r.kind, recon_safe(r.reference) as reference,
               recon_fmt(r.their_amount, r.currency) as their_amount,
               recon_fmt(r.our_amount, r.currency) as our_amount,
               recon_fmt(case when r.line = 'unexplained'
                              then b.their_amount - b.our_amount - coalesce(e.explained, 0)
                              else coalesce(r.their_amount, 0) - coalesce(r.our_amount, 0) end,
                         r.currency) as difference,
               r.match_id, r.note
        from rows_ r
        join bal b on b.currency = r.currency and b.customer is not distinct from r.customer
        left join expl e on e.currency = r.currency and e.customer is not distinct from r.customer
        left join customers c on c.customer_id = r.customer
        order by r.customer nulls last, r.currency, r.o, r.date, r.their_ids, r.our_ids"""
