"""Open items per customer: which invoices are still owed, and which credits are unapplied.

Receivable lines (table ``__recon__ar_lines``) are ledger lines that concern
a customer, classified by ``doc_type``:

    invoice      invoice, inv, debit_note, debit_memo, sales_invoice     effect +|amount|
    credit_note  credit_note, credit_memo, credit, cn                    effect -|amount|
    receipt      receipt, deposit, payment_received, remittance, refund,
                 reversal, chargeback, direct_debit, collection, cash    effect -amount

``effect`` is what the line does to the customer's balance (positive: they owe
more).  Receipt amounts keep the CONTRACT's sign (money in is positive), so a
receipt lowers the balance and a bounced receipt or refund (negative) raises
it.  A line with an empty ``doc_type`` is a receipt when it names a customer;
a line with another ``doc_type`` (payment, cheque, fee ...) is a receivable
line only when its ``customer_id`` is in the customer master.  A customer's
statement must give ``doc_type`` for invoices and credit notes, as our ledger
does: both are positive like receipts otherwise.

A line belongs to the customer of its ``customer_id`` (the master's, or the
id as given when the master does not know it), else to the one customer
whose name or alias has the line's ``name_key`` (:func:`recon.names.name_key_expr`).
Receivable-type lines that link to nobody are listed in ``__recon__ar_unlinked``
with a reason (``no_customer``, ``ambiguous_name``), never dropped.

A bank line matched directly to ledger invoices or credit notes (no ledger
receipt in the match, e.g. one transfer paying three invoices, or a refund
paying a credit note out) is the receipt of those lines: it joins the
customer's lines with ``source = 'bank'`` (a refund, negative, is a debit the
credit note settles), unless our ledger books the same money as a receipt
(same customer, currency and amount, within ``TWIN_DAYS``, not itself matched
to a bank line; each paired once, nearest first): then that ledger receipt
settles the matched lines and the bank line is not counted twice (table
``__recon__ar_twins``).  A bank line paying the lines of several customers (a
group's payer) is one receipt of each, for its share, and one paying lines in
another currency is booked in theirs, at their amount (see
:func:`bank_receipts_sql`): receivable lines are told apart by ``KEY``, the
stored row and its customer and currency.

Settlement (table ``__recon__ar_alloc``): debits (effect > 0) are settled by
credits (effect < 0) of the same customer and currency in three passes, each
over what earlier passes left open:

1. ``match``: credits and debits in the same active match (a receipt matched
   to the invoices it pays), oldest debit first within the match;
2. ``reference``: a credit whose reference equals a debit's (letters and
   digits only, case ignored), e.g. a receipt quoting the invoice number;
3. ``oldest_first`` (policy, default): whatever credit remains pays the
   debits in due-date order.  Policy ``none`` leaves it unapplied.

In every pass a part's debits written off in recon (``WRITTEN_OFF``) come after its
others: a receipt quoting no invoice pays what the customer is still asked for.

Allocation within a pass is the overlap of running totals (debits ordered by
due date, date, id; credits by date, id), one SQL window query, exact Decimal.
Figures for any past ``as_of`` use the lines dated up to that day and the
matches active now (a receipt dated before ``as_of`` paid what it was matched
to, whenever the match was found).

Due date: the line's ``due_date``, else its date plus the customer's
``payment_terms_days``, else its date.  Credits are aged by their own date.
"""

from __future__ import annotations

import re
from datetime import date

import duckdb
import polars as pl

from recon.customers import ensure_schema
from recon.db import decided_sql

POLICIES = ("oldest_first", "none")

INVOICE_TYPES = ("invoice", "inv", "debit_note", "debit_memo", "sales_invoice")
CREDIT_TYPES = ("credit_note", "credit_memo", "credit", "cn")
RECEIPT_TYPES = (
    "receipt", "deposit", "payment_received", "remittance", "refund", "reversal",
    "chargeback", "direct_debit", "collection", "cash",
)

LINES = "__recon__ar_lines"
UNLINKED = "__recon__ar_unlinked"
ITEMS = "__recon__ar_items"
#: The rows of ITEMS with their customer's columns but not their text: what the
#: aggregates per customer read (see prepare).
CUSTOMER_ITEMS = "__recon__ar_customer_items"
ALLOC = "__recon__ar_alloc"
TWINS = "__recon__ar_twins"

#: A line's text, read from txns through the views LINES, UNLINKED and ITEMS rather
#: than copied into the temp tables under them: at a million ledger lines the four
#: copies held about 1 GB until the run's commit.
TEXT = ("source_id", "counterparty", "reference", "description", "doc_type")
#: A line's customer's columns, read from the master through view ITEMS.
CUSTOMER = {"name": "k.name", "segment": "k.segment", "region": "k.region",
            "credit_limit": "k.credit_limit", "email": "k.email",
            "language": "coalesce(k.language, 'en')"}
#: The join that gives a line (`c`) its customer's columns (CUSTOMER, from `k`).
_MASTER = "left join customers k on k.customer_id = c.customer"
#: The columns of a receivable line, in the order the views give them.
LINE = ("txn_id", "source", "source_id", "date", "due_date", "amount", "currency",
        "counterparty", "reference", "description", "doc_type", "kind", "customer")

#: What tells receivable lines apart: a stored row, split by customer and currency where
#: one bank line pays the lines of several (see bank_receipts_sql).
KEY = "txn_id, customer, currency"

#: The ledger lines an accountant wrote off in recon (`recon apply`, decision write_off)
#: and the ledger has not settled: still open in the books (the aging ties to them, its
#: `written_off` column says how much of a balance they are), but not chased (recon
#: reminders) and settled after the other debits of a settlement's part.
WRITTEN_OFF = decided_sql(("write_off",))

#: How far apart a bank receipt and the ledger receipt booking it may be dated.
TWIN_DAYS = 10

#: The receivable lines of the customers (and currencies) that owe something: a
#: reference or oldest-first part (one customer and currency) without a debit settles
#: nothing (see prepare).
_OWING = """(select * from __recon__ar_base
    where (customer, currency) in (
        select (customer, currency) from __recon__ar_base where effect > 0))"""


def _matches_holding(rows: str, condition: str) -> str:
    """Ids of the matches with a member among `rows` (a table of txn_id) meeting
    `condition`: a filter the aging puts before grouping or joining all members of
    all matches, most of which (a bank line and a ledger receipt) hold no such row."""
    return (f"select x.match_id from match_members x "
            f"join {rows} a on a.txn_id = x.txn_id where {condition}")


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


def doc_type_key_sql(col: str) -> str:
    """A doc_type as the lists here name it: lower case, spaces and dashes as '_'
    ('Credit Note', 'credit-note' -> 'credit_note'); :func:`doc_type_key` in Python."""
    return f"regexp_replace(lower(trim({col})), '[\\s-]+', '_', 'g')"


def doc_type_key(text: str) -> str:
    """:func:`doc_type_key_sql` of one value."""
    return re.sub(r"[\s-]+", "_", text.strip().lower())


def doc_kind_sql(col: str) -> str:
    """Kind of a line by its doc_type: invoice, credit_note, receipt, or null (other/empty)."""
    norm = doc_type_key_sql(col)
    return f"""(case when {norm} in ({_in(INVOICE_TYPES)}) then 'invoice'
        when {norm} in ({_in(CREDIT_TYPES)}) then 'credit_note'
        when {norm} in ({_in(RECEIPT_TYPES)}) then 'receipt' end)"""


def effect_sql(kind: str, amount: str) -> str:
    """The line's effect on the customer's balance (positive: the customer owes more)."""
    return (f"(case {kind} when 'invoice' then abs({amount}) "
            f"when 'credit_note' then -abs({amount}) else -{amount} end)")


def ref_key_sql(col: str) -> str:
    """Reference reduced to upper-case letters and digits; null when nothing is left."""
    return f"nullif(upper(regexp_replace(coalesce({col}, ''), '[^A-Za-z0-9]', '', 'g')), '')"


def name_keys_sql() -> str:
    """(k, cid, n, ids): each name key of the master, its customer if unique, how many share it."""
    return """
        with keys as (
            select customer_id, name_key as k from customers where name_key is not null
            union select customer_id, alias_key from customer_aliases where alias_key is not null)
        select k, min(customer_id) as cid, count(distinct customer_id) as n,
               string_agg(distinct customer_id, ';' order by customer_id) as ids
        from keys group by k"""


def build_lines(con: duckdb.DuckDBPyConnection, as_of: date) -> None:
    """Views `__recon__ar_lines` (linked lines) and `__recon__ar_unlinked` up to `as_of`."""
    ensure_schema(con)
    con.execute(f"""create or replace temp table __recon__ar_ledger as
        with l as (
            select t.*, {doc_kind_sql('t.doc_type')} as kind0,
                   nullif(trim(t.customer_id), '') as cid_raw
            from txns t where t.side = 'ledger' and t.date <= ?),
        j as (
            select l.*, m.customer_id as master_id, u.cid as name_cid, u.n as name_n
            from l left join customers m on m.customer_id = l.cid_raw
            left join ({name_keys_sql()}) u on u.k = l.name_key)
        select txn_id, 'ledger' as source, date, due_date, amount, currency,
               coalesce(kind0, 'receipt') as kind,
               case when master_id is not null then master_id
                    when cid_raw is not null then cid_raw
                    when name_n = 1 then name_cid end as customer,
               case when master_id is not null then 'customer_id'
                    when cid_raw is not null then 'customer_id_not_in_master'
                    when name_n = 1 then 'name' end as linked_by,
               case when name_n > 1 then 'ambiguous_name' else 'no_customer' end as reason,
               {ref_key_sql('reference')} as ref_key
        from j
        where master_id is not null or kind0 is not null
           or (nullif(trim(doc_type), '') is null and (cid_raw is not null or name_n >= 1))""",
        [as_of])
    con.execute(f"create or replace temp table __recon__ar_bank as {bank_receipts_sql()}",
                [as_of])
    # a bank line paying lines linked to no customer is a receipt of no customer
    con.execute(f"""create or replace temp view {UNLINKED}_core as
        select * exclude (linked_by, ref_key) from __recon__ar_ledger where customer is null
        union all by name
        select * exclude (linked_by, ref_key, match_id) replace ('no_customer' as reason)
        from __recon__ar_bank where customer is null""")
    _text_view(con, UNLINKED, f"{UNLINKED}_core", (*LINE, "reason"))
    _pair_twins(con)
    # a view too: read twice (by the allocation's base and, for a statement, its agreement)
    con.execute(f"""create or replace temp view {LINES}_core as
        select * exclude (reason), {effect_sql('kind', 'amount')} as effect
        from __recon__ar_ledger where customer is not null
        union all by name
        select * exclude (reason, match_id), {effect_sql('kind', 'amount')} as effect
        from __recon__ar_bank b where customer is not null and not exists (
            select 1 from {TWINS} w where w.bank_id = b.txn_id and w.customer = b.customer
               and w.currency = b.currency)""")
    _text_view(con, LINES, f"{LINES}_core", (*LINE, "linked_by", "effect"))


def _text_view(
    con: duckdb.DuckDBPyConnection, view: str, core: str, columns: tuple[str, ...], where: str = ""
) -> None:
    """View `view`: the rows of temp table `core` with their TEXT columns from txns
    and their CUSTOMER columns from the master, each join made only when its columns
    are asked for (every line is a stored row, so the join with txns drops none, but
    it probes every stored row: the aggregates per customer, which read no text,
    took 0.31-0.36 s with it at a million ledger lines, 0.13 s without)."""
    cols = ", ".join(
        f"t.{c}" if c in TEXT else f"{CUSTOMER[c]} as {c}" if c in CUSTOMER else f"c.{c}"
        for c in columns
    )
    text = "join txns t on t.txn_id = c.txn_id" if set(TEXT) & set(columns) else ""
    master = _MASTER if CUSTOMER.keys() & set(columns) else ""
    con.execute(
        f"create or replace temp view {view} as select {cols} "
        f"from {core} c {text} {master} {where}"
    )


def twin_candidates_sql() -> str:
    """(bank_id, customer, currency, match_id, receipt_id, days): a bank receipt and a
    ledger receipt that may book the same money.

    Same customer, currency and amount, at most TWIN_DAYS apart, the ledger
    receipt in no match with a bank line.
    """
    near = f"""__recon__ar_bank b join __recon__ar_ledger r
              on r.customer = b.customer and r.currency = b.currency and r.amount = b.amount
             and r.kind = 'receipt' and abs(date_diff('day', r.date, b.date)) <= {TWIN_DAYS}"""
    # only the receipts near a bank receipt are looked up among the matched rows: finding
    # every matched row first took 0.36 s at a million matches, where no receipt was near
    return f"""
        with booked as (
            select mm.txn_id from match_members mm join matches m using (match_id)
            where m.active and mm.txn_id in (select r.txn_id from {near})
              and mm.match_id in ({_matches_holding("txns", "a.side = 'bank'")}))
        select b.txn_id as bank_id, b.customer, b.currency, b.match_id,
               r.txn_id as receipt_id, abs(date_diff('day', r.date, b.date)) as days
        from {near}
        where r.txn_id not in (select txn_id from booked)"""


def _pair_twins(con: duckdb.DuckDBPyConnection) -> None:
    """Table TWINS (bank_id, customer, currency, match_id, receipt_id): the candidates
    paired greedily, nearest first (then bank id, receipt id), each side used once.

    A bank receipt is a (bank_id, customer, currency): a bank line paying several
    customers or currencies is a receipt of each.  The candidates are read once, in
    that order, with each side numbered densely, and a compiled kernel
    (:func:`recon.greedy.greedy_matching`) takes each candidate whose two sides are
    still free.  The SQL form paired in rounds, a statement each: among the candidates
    whose sides were both unpaired, those first of both their sides, a bank receipt's
    candidates ordered by (days, receipt_id) and a ledger receipt's by (days, bank_id).
    A round paired one at least: 2,000 bank and 2,000 ledger receipts of one customer
    and amount over a month (2.3 million candidates) took 116 rounds (statements), 21 s.

    The rounds paired as the greedy does, for each side's order is the greedy's order
    restricted to the side: a bank receipt's candidates are of one bank_id, and a
    ledger receipt meets a bank line once at most (its candidates have its customer and
    currency, and ``__recon__ar_bank`` holds one row per bank line, customer and
    currency: a bank line is in one active match of the bank pass).  Suppose the pairs
    made so far are the greedy's, and call a candidate open while both its sides are
    unpaired.  Take a candidate first on both its sides among the open ones: each
    earlier candidate sharing one of its sides is not open, so its other side is in a
    pair made, and the greedy, a matching holding that pair, does not take it; the
    greedy takes this one.  A round's candidates share no side, and each candidate they
    close shares a side with one, so the greedy does not take it either.  The first
    open candidate is always first on both its sides, so the rounds end with every
    candidate paired or closed: the greedy's pairs.

    One round alone (the mutually nearest pairs) left a bank receipt whose nearest
    ledger receipt went to another without a twin, though a farther one was free.
    """
    cand = con.sql(f"""
        select bank_id, customer, currency, match_id, receipt_id,
               dense_rank() over (order by bank_id, customer, currency) - 1 as bank_key,
               dense_rank() over (order by receipt_id) - 1 as receipt_key
        from ({twin_candidates_sql()}) order by days, bank_id, receipt_id""").pl()
    if cand.height:  # none in most books: `recon aging` need not start numba then
        # imported here: loading the kernel is numba's start-up, begun by recon.warmup
        from recon.greedy import greedy_matching

        taken = greedy_matching(cand["bank_key"].to_numpy(writable=True),
                                cand["receipt_key"].to_numpy(writable=True))
        cand = cand.filter(pl.Series(taken))
    twins = cand.drop("bank_key", "receipt_key")  # noqa: F841
    # `twins` is read by DuckDB from this variable, not registered (see recon.db)
    con.execute(f"create or replace temp table {TWINS} as select * from twins")


def bank_receipts_sql() -> str:
    """Bank lines matched to ledger invoices or credit notes with no ledger receipt in the
    match, as receipts of those lines' customers (one `?`: as_of).

    A match of one customer and currency: each bank line is a receipt of its own amount.
    Any other match (several customers: a group's payer paying its companies' invoices
    at once; or lines in another currency than the bank's, paid at the day's rate): one
    receipt per customer and currency of its lines, for what those lines are, on the
    match's latest bank line.  Where all is in one currency, the customer with the
    largest share (the last id among equals) also takes what the bank paid more or less
    than the lines, so the receipts add up to the bank's money to the cent; across
    currencies the lines are paid in full in their own (the rate's difference is the
    match's `fx` discrepancy, not the customer's debt).
    """
    # only the matches holding a ledger invoice or credit note can qualify
    doc = "a.kind in ('invoice', 'credit_note')"
    return f"""
        with mem as (
            select mm.match_id, mm.txn_id from match_members mm
            join matches m using (match_id)
            where m.active and mm.match_id in ({_matches_holding("__recon__ar_ledger", doc)})),
        ar as (  -- paid: what a receipt settling the line is, in the bank's sign
            select mem.match_id, a.customer, a.currency, a.kind,
                   {effect_sql('a.kind', 'a.amount')} as paid
            from mem join __recon__ar_ledger a on a.txn_id = mem.txn_id),
        ok as (  -- lines linked to no customer (null) are paid as those of one more
            select match_id,
                   count(distinct customer) + (count(customer) < count(*))::int as customers,
                   min(customer) as customer,
                   sum(paid) as paid, min(currency) = max(currency) as one_currency,
                   min(currency) as currency
            from ar group by match_id
            having bool_and(kind <> 'receipt')),
        bank as (
            select mem.match_id, t.txn_id, t.date, t.due_date, t.amount, t.currency,
                   t.reference
            from mem join ok using (match_id) join txns t on t.txn_id = mem.txn_id
            where t.side = 'bank'),
        mixed as (  -- several customers or currencies: booked at the lines' amounts
            select match_id from ok where customers > 1 or not one_currency
            union
            select b.match_id from bank b join ok using (match_id)
            where b.currency <> ok.currency),
        split as (  -- on the match's latest bank line
            select *, row_number() over w = count(*) over w as latest,
                   sum(amount) over w as bank_total,
                   min(currency) over w = max(currency) over w as one_currency
            from bank where match_id in (select match_id from mixed)
            window w as (partition by match_id order by date, txn_id
                         rows between unbounded preceding and unbounded following)),
        share as (
            select match_id, customer, currency, sum(paid) as paid,
                   row_number() over (partition by match_id
                                      order by abs(sum(paid)) desc, customer desc) as nth
            from ar where match_id in (select match_id from mixed)
            group by match_id, customer, currency),
        receipt as (
            select b.txn_id, b.date, b.due_date, b.amount, b.currency, ok.customer,
                   b.reference, b.match_id
            from bank b join ok using (match_id)
            where b.match_id not in (select match_id from mixed)
            union all
            select b.txn_id, b.date, b.due_date,
                   cast(s.paid + case when s.nth = 1 and ok.one_currency and b.one_currency
                                           and b.currency = ok.currency
                                      then b.bank_total - ok.paid else 0 end
                        as decimal(20, 4)),
                   s.currency, s.customer, b.reference, b.match_id
            from share s join ok using (match_id)
            join split b on b.match_id = s.match_id and b.latest)
        select txn_id, 'bank' as source, date, due_date, amount, currency,
               'receipt' as kind, customer, 'match' as linked_by, null as reason,
               {ref_key_sql('reference')} as ref_key, match_id
        from receipt where date <= ?"""


def prepare(con: duckdb.DuckDBPyConnection, as_of: date, policy: str = "oldest_first") -> None:
    """Build lines, allocate credits to debits, and make view `__recon__ar_items` as of `as_of`."""
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")
    build_lines(con, as_of)
    con.execute(f"""create or replace temp table __recon__ar_base as
        select l.*,
               case when l.effect > 0 then coalesce(
                        l.due_date, l.date + cast(c.payment_terms_days as integer), l.date)
                    else l.date end as due,
               l.effect > 0 and l.txn_id in ({WRITTEN_OFF}) as written_off
        from {LINES}_core l left join customers c on c.customer_id = l.customer""")
    con.execute(f"""create or replace temp table {ALLOC} (
        debit_id bigint, credit_id bigint, amount decimal(20,4), method varchar,
        customer varchar, currency varchar)""")
    # a part without a debit settles nothing: the passes read only the lines of the
    # matches holding a debit and of the customers owing something (_OWING)
    _allocate(con, "match", _match_parts_sql())
    _allocate(con, "reference", f"select {KEY}, customer || chr(31) || currency || chr(31) "
                                f"|| ref_key as part from {_OWING} where ref_key is not null")
    if policy == "oldest_first":
        _allocate(con, "oldest_first",
                  f"select {KEY}, customer || chr(31) || currency as part from {_OWING}")
    con.execute(f"""create or replace temp table {ITEMS}_core as
        with a as (
            select {KEY}, sum(amount) as applied, max(other_date) as settled_on from (
                select d.debit_id as txn_id, d.customer, d.currency, d.amount,
                       c.date as other_date
                from {ALLOC} d join __recon__ar_base c on c.txn_id = d.credit_id
                 and c.customer = d.customer and c.currency = d.currency
                union all
                select d.credit_id, d.customer, d.currency, d.amount, b.date
                from {ALLOC} d join __recon__ar_base b on b.txn_id = d.debit_id
                 and b.customer = d.customer and b.currency = d.currency)
            group by {KEY})
        select b.* exclude (ref_key), coalesce(a.applied, 0) as applied,
               b.effect - sign(b.effect) * coalesce(a.applied, 0) as open_amount,
               a.settled_on, date_diff('day', b.due, ?) as days_past_due
        from __recon__ar_base b left join a using ({KEY})""",
        [as_of])
    item = (*LINE, "linked_by", "effect", "name", "segment", "region", "credit_limit",
            "email", "language", "due", "written_off", "applied", "open_amount", "settled_on",
            "days_past_due")
    _text_view(con, ITEMS, f"{ITEMS}_core", item)
    _text_view(con, CUSTOMER_ITEMS, f"{ITEMS}_core", tuple(c for c in item if c not in TEXT))


def _match_parts_sql() -> str:
    """(KEY, part): receivable lines of one active match, customer and currency share a
    part."""
    part = "chr(31) || b.customer || chr(31) || b.currency as part"
    return f"""select b.txn_id, b.customer, b.currency, mm.match_id || {part}
        from __recon__ar_base b join match_members mm on mm.txn_id = b.txn_id
        join matches m on m.match_id = mm.match_id and m.active
        where mm.match_id in ({_matches_holding("__recon__ar_base", "a.effect > 0")})
        union all  -- the ledger receipt that books a bank line pays what the bank line paid
        select b.txn_id, b.customer, b.currency, t.match_id || {part}
        from {TWINS} t join __recon__ar_base b on b.txn_id = t.receipt_id"""


def _allocate(con: duckdb.DuckDBPyConnection, method: str, parts_sql: str) -> None:
    """Apply open credits to open debits within each part (`parts_sql`: KEY and part, a
    part within one customer and currency), by overlapping running totals."""
    con.execute(f"""insert into {ALLOC}
        with done as (
            select {KEY}, sum(amount) as applied from (
                select debit_id as txn_id, customer, currency, amount from {ALLOC}
                union all select credit_id, customer, currency, amount from {ALLOC})
            group by {KEY}),
        rem as (
            select {KEY}, p.part, b.date, b.due, b.written_off,
                   abs(b.effect) - coalesce(done.applied, 0) as left_, b.effect > 0 as is_debit
            from __recon__ar_base b join ({parts_sql}) p using ({KEY})
            left join done using ({KEY})),
        -- only parts with an open debit and an open credit allocate anything: at a
        -- million ledger lines most parts hold credits alone (a receipt and its bank
        -- line), and ordering them for the running totals was most of the work
        live as (
            select * from rem where left_ > 0 and part in (
                select part from rem where left_ > 0 group by part
                having bool_or(is_debit) and bool_or(not is_debit))),
        d as (
            select txn_id, customer, currency, part, left_, sum(left_) over (
                partition by part order by written_off, due, date, txn_id
                rows unbounded preceding) as hi
            from live where is_debit),
        c as (
            select txn_id, part, left_, sum(left_) over (
                partition by part order by date, txn_id rows unbounded preceding) as hi
            from live where not is_debit)
        select d.txn_id, c.txn_id,
               least(d.hi, c.hi) - greatest(d.hi - d.left_, c.hi - c.left_), ?, d.customer,
               d.currency
        from d join c on d.part = c.part and d.hi - d.left_ < c.hi and c.hi - c.left_ < d.hi""",
        [method])
