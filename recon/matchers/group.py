"""Group matcher: one row on one side equals the exact sum of several on the other.

``one_to_many``: one bank line pays several ledger items (a batch deposit, a
customer paying three invoices at once).  ``many_to_one``: several bank lines
pay one ledger item (instalments, split payments).

The SQL here only builds *blocks*: for each anchor row, the rows of the
other side that could belong to its group (same currency and sign, smaller
amount, date window, and the same counterparty, a shared reference or the
same customer).  :mod:`recon.groups` then runs an exact subset-sum search
over integer minor units inside each block, in SQL, bounded by
``max_group`` and ``max_block``, and reports ties as ``ambiguous``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import ClassVar

import duckdb

from recon.db import sql_literal
from recon.matchers.base import REF_PAIRS, RUN_CACHE, Matcher, Tables
from recon.openitems import doc_type_key, doc_type_key_sql

BLOCK_FIELDS = ("counterparty", "reference", "customer_id", "iban")
NAME_BLOCKS = "__recon__name_blocks"
DIRECTIONS = ("one_to_many", "many_to_one")


@dataclass(frozen=True, slots=True)
class Group(Matcher):
    """Exact-sum groups of up to `max_group` rows inside blocks of up to `max_block` rows."""

    name: ClassVar[str] = "group"
    kinds: ClassVar[tuple[str, ...]] = DIRECTIONS
    #: a later pass searches again only the anchors whose blocks changed
    #: (recon.groups.carried_solutions)
    incremental: ClassVar[bool] = True

    direction: str = "one_to_many"
    block: tuple[str, ...] = ("counterparty", "reference")
    max_group: int = 5
    max_block: int = 24

    #: whether the search also finds the subsets of more than max_group rows, by their
    #: complements in the block (see recon.groups.find_solutions); such a matcher is
    #: not incremental: a later pass's carried search keeps subsets of max_group rows
    #: at most (recon.groups._shrunk_solutions)
    large: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
        self._check_block()
        if not 2 <= self.max_group <= 6:
            raise ValueError("max_group must be between 2 and 6")
        if not 2 <= self.max_block <= 60:
            raise ValueError("max_block must be between 2 and 60")

    def _check_block(self) -> None:
        bad = [b for b in self.block if b not in BLOCK_FIELDS]
        if bad or not self.block:
            raise ValueError(f"block fields must be among {', '.join(BLOCK_FIELDS)}")

    def sizes_sql(self, table: str) -> str | None:
        """SQL yielding `(a, k)`: the number of rows `k` the group of anchor `a` (a row of
        `table`) must have; None where any size from 2 to max_group goes."""
        return None

    def prepare_sql(self, t: Tables) -> list[str]:
        """Name-block tables, built before the join.

        Names with more open rows than a few blocks' worth (a payment processor,
        a top customer) give no usable block and are left out, so the join stays
        small.  Temp tables, not a CTE: inside the run's transaction DuckDB
        planned the CTE form into a near cross product.
        """
        out = Matcher.prepare_sql(self, t)
        for suffix, tab in (("l", t.left), ("r", t.right)):
            table = f"{NAME_BLOCKS}_{suffix}"
            out.append(f"create or replace temp table {table} as {self.name_rows_sql(tab)}")
        return out

    @property
    def name_cap(self) -> int:
        """The most open rows of a side a name (and currency) may have to give a block."""
        return 4 * self.max_block

    def name_rows_sql(self, table: str, where: str = "true") -> str:
        """(id, currency, amount, date, nb): the rows of `table` (those `where` keeps) whose
        name and currency have at most name_cap rows there."""
        return f"""select x.id, x.currency, x.amount, x.date, x.nb
            from (select id, currency, amount, date, gnb as nb from {table} where {where}) x
            where x.nb is not null
            qualify count(*) over (partition by x.nb, x.currency) <= {self.name_cap}"""

    def name_pairs_sql(self, left: str, right: str) -> str:
        """(l, r, blk) of the counterparty blocks: rows of `left` and `right` (as
        name_rows_sql gives them) of the same name."""
        return f"""select l.id as l, r.id as r, 'counterparty' as blk
            from {left} l join {right} r on l.nb = r.nb and {self._pair_sql()}"""

    def ref_pairs_sql(self, t: Tables, pairs: str) -> str:
        """(l, r, blk) of the reference blocks: the pairs (l, r) of `pairs` (rows sharing a
        reference key) of open rows."""
        return f"""select p.l, p.r, 'reference' as blk from {pairs} p
            join {t.left} l on l.id = p.l join {t.right} r on r.id = p.r
            where {self._pair_sql()}"""

    def _pair_sql(self) -> str:
        """What a member row `r`/`l` must have to join the anchor's block besides a key."""
        anchor, member = ("l", "r") if self.direction == "one_to_many" else ("r", "l")
        return (
            f"l.currency = r.currency and sign(l.amount) = sign(r.amount) "
            f"and abs({member}.amount) < abs({anchor}.amount) "
            f"and date_diff('day', r.date, l.date) between {-self.date.before} and {self.date.after}"
        )

    @property
    def reads_ref_pairs(self) -> bool:
        return "reference" in self.block

    def candidates_sql(self, t: Tables) -> str:
        """(l, r, blk): pairs where the anchor's row could contain the other's, by block kind.

        Each block kind is searched on its own, so a customer with many open
        items (a large name block) still has its few shared-reference rows.
        """
        base = self._pair_sql()
        parts = []
        for b in self.block:
            if b == "reference":
                parts.append(self.ref_pairs_sql(t, REF_PAIRS))
            elif b == "counterparty":
                # names with more open rows than a few blocks' worth (a payment
                # processor, a top customer) give no usable block: leave them out
                # before joining, so the join stays small
                parts.append(self.name_pairs_sql(f"{NAME_BLOCKS}_l", f"{NAME_BLOCKS}_r"))
            else:
                parts.append(
                    f"""select l.id as l, r.id as r, '{b}' as blk from {t.left} l join {t.right} r
                    on l.{b} = r.{b} and {base}"""
                )
        # the parts differ in blk; the reader keeps the distinct rows (candidates_sql)
        return "\nunion all\n".join(parts)


def name_block_sql(a: str) -> str:
    """Block key of a name: its first word and the start of the second.

    Banks cut names short (`WAGNER & SOEHNE BAUUN`) and drop umlauts
    (`HARTMANN SUD`), so `ue`/`oe`/`ae` fold to one letter here.
    """
    k = f"regexp_replace({a}.name_key, '([aou])e', '\\1', 'g')"
    return f"(split_part({k}, ' ', 1) || '|' || substr(split_part({k}, ' ', 2), 1, 4))"


#: How a bank line states the number of cheques it deposits: "12 CHQ", "5 STK", "3 ITEMS",
#: "7 cheques", "4 Schecks", "9 checks".
ITEMS_PATTERN = r"(?i)\b(\d{1,2})\s*(?:chq|cheques?|checks?|schecks?|stk|st[uü]ck|items?)\b"


@dataclass(frozen=True, slots=True)
class DepositCount(Group):
    """A bank line (money in) depositing several cheques that states how many ("REMISE DE CHEQUES N
    4873 12 CHQ") and quotes no slip number our ledger has: the group is exactly that many
    of our ledger's deposit lines (doc_type among `doc_types`) in the date window whose
    amounts sum exactly to the bank line's.  Without a shared reference or name the
    block is the window itself, so an anchor whose window holds more than max_block such
    lines (counted before the join) gets none.  A group of more than max_group lines is
    found by the lines of the block it leaves out (as many as max_group at most): 12 of
    14 cheques are the 2 others.  The stated count is what makes a group of lines with
    nothing else in common safe to take; two groups of it summing alike are ambiguous.

    Not carried from pass to pass (every pass builds its blocks again): its blocks are
    bounded by a count of the window's open lines, which falls as lines leave.
    """

    name: ClassVar[str] = "deposit_count"
    kinds: ClassVar[tuple[str, ...]] = ("one_to_many",)
    incremental: ClassVar[bool] = False
    large: ClassVar[bool] = True

    block: tuple[str, ...] = ("count",)
    items: str = ITEMS_PATTERN
    doc_types: tuple[str, ...] = ("deposit", "cheque", "check")

    def _check_block(self) -> None:
        if self.direction != "one_to_many":
            raise ValueError("direction must be one_to_many (the bank line states the count)")
        if self.block != ("count",):
            raise ValueError("block is always the date window (count); it cannot be set")
        try:  # DuckDB's expressions (RE2) run it: a Python-only construct is refused here
            groups = re.compile(self.items).groups
            duckdb.execute(f"select regexp_extract('', {sql_literal(self.items)}, 1)").fetchall()
        except (re.error, duckdb.Error) as exc:
            raise ValueError(f"items: not a regular expression: {exc}") from exc
        if groups != 1:
            raise ValueError("items must have one group: the number of items")
        if not self.doc_types or any(not re.fullmatch(r"[\w -]+", d) for d in self.doc_types):
            raise ValueError("doc_types must be doc_type values (letters, digits, '_', '-')")

    def prepare_sql(self, t: Tables) -> list[str]:
        """The open bank lines (money in) that state a count, with the count `k`, and our
        open deposit lines (money in, doc_type among doc_types): read from txns once a
        run (the open tables leave the description and doc_type out, recon.scoring.
        RAW_TEXT and recon.pipeline.LEFT_OUT; at 5M lines the joins took 0.55 s a pass),
        and each pass those still open, read by the candidates and by the size of a
        group (:meth:`sizes_sql`)."""
        text = "coalesce(x.description, '') || ' ' || coalesce(x.reference, '')"
        kinds = ", ".join(sql_literal(doc_type_key(d)) for d in self.doc_types)
        stated, deposits = self._cached("stated"), self._cached("deposits")
        return [
            f"""create temp table if not exists {stated} as
            select * from (
                select o.id, o.currency, o.amount, o.date,
                       try_cast(regexp_extract({text}, {sql_literal(self.items)}, 1) as integer)
                           as k
                from {t.left} o join txns x on x.txn_id = o.id
                where o.amount > 0 and x.side = 'bank')
            where k between 2 and {self.max_block}""",
            f"""create temp table if not exists {deposits} as
            select o.id, o.currency, o.amount, o.date
            from {t.right} o join txns x on x.txn_id = o.id
            where o.amount > 0 and {doc_type_key_sql('x.doc_type')} in ({kinds})""",
            f"""create or replace temp table {STATED} as
            select * from {stated} where id in (select id from {t.left})""",
            f"""create or replace temp table {DEPOSITS} as
            select * from {deposits} where id in (select id from {t.right})""",
        ]

    def _cached(self, what: str) -> str:
        """The name of this rule's run cache `what` (RUN_CACHE; rules that differ in
        what they read keep their own)."""
        key = repr((self.items, self.doc_types, self.max_block)).encode()
        return f"{RUN_CACHE}{what}_{hashlib.sha256(key).hexdigest()[:12]}"

    def sizes_sql(self, table: str) -> str:
        return f"select id as a, k from {STATED}"

    def candidates_sql(self, t: Tables) -> str:
        return f"""with m as (select * from {DEPOSITS}),
            days as (select currency, date, count(*) as n from m group by all),
            few as (
                select a.id from {STATED} a join days d on d.currency = a.currency
                 and date_diff('day', d.date, a.date)
                     between {-self.date.before} and {self.date.after}
                group by a.id having sum(d.n) <= {self.max_block})
            select l.id as l, r.id as r, 'count' as blk
            from (select * from {STATED} where id in (select id from few)) l
            join m r on {self._pair_sql()}"""


#: The open bank lines that state a count and our open deposit lines
#: (DepositCount.prepare_sql), made once a pass.
STATED = "__recon__stated_counts"
DEPOSITS = "__recon__deposit_lines"
