"""The matcher interface and the SQL pieces every matcher shares.

A matcher is a frozen dataclass whose fields are its YAML ``params``.  It
implements one method, :meth:`Matcher.candidates_sql`, returning SQL that
yields candidate pairs ``(l, r)`` (internal txn ids) over the *open* left and
right tables.  The pipeline does the rest: features (amount and date
difference, shared reference, name similarity), the weighted score, optimal
one-to-one assignment with an ambiguity margin, and recording the match.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar

import duckdb
import polars as pl

#: Fields a rule may require to be equal on both sides.
EQUAL_FIELDS = (
    "amount",
    "currency",
    "reference",
    "counterparty",
    "account",
    "date",
    "iban",
    "customer_id",
)

#: Pairs sharing a reference key, built by `Matcher.prepare_sql` before each rule.
REF_PAIRS = "__recon__ref_pairs"

#: rapidfuzz scorers a rule may name.
SCORERS = ("ratio", "partial_ratio", "token_sort_ratio", "token_set_ratio", "WRatio", "QRatio")


@dataclass(frozen=True, slots=True)
class Tables:
    """Names of the tables a matcher reads (open rows only)."""

    left: str = "__recon__left"
    right: str = "__recon__right"
    left_refs: str = "__recon__left_refs"  # (id, ref): normalised reference keys
    right_refs: str = "__recon__right_refs"
    #: (id, level) of the left rows a crowding bound cuts, from Matcher.bounds_sql over
    #: these tables: a join reads its bounds from here instead of counting them again
    levels: str | None = None
    #: (l, r) of every pair of rows sharing a key of `left_refs` and `right_refs`, open
    #: or not, made once with those tables (see pipeline.prepare_open_tables): each
    #: rule then keeps the open pairs instead of joining the keys again
    ref_pairs: str | None = None
    #: The right rows counted per slot (rows (kind, cur, k, wk, nb, tok, n), see
    #: :meth:`Matcher.counts_sql`), kept from an earlier count and brought up to date by
    #: the rows that left since (see pipeline._recount): a bucket or word join's levels
    #: read them instead of counting every right row again
    counts: str | None = None


#: The numbering of a run's closings: each match recorded deletes its rows from the open
#: tables under the next number, and logs their ids in closed_table(open table) with it
#: (see recon.pipeline._close).
CLOSING = "__recon__closing"

#: (tab, seq, n): the rows each closing took from open table `tab` (a row a closing), and
#: (seq 1) the rows the table held when the log began: what :func:`still_open` counts.
CLOSINGS = "__recon__closings"


def closed_table(table: str) -> str:
    """The (id, seq) log of the rows that left open table `table` during the run."""
    return f"{table}_closed"


def new_closings(con: duckdb.DuckDBPyConnection, tables: tuple[str, ...]) -> None:
    """Make the logs of open tables `tables` (as they are now) empty and the numbering
    CLOSING anew (from 2: closed_seq reads 1 before anything closed)."""
    con.execute(f"create or replace temp table {CLOSINGS} (tab varchar, seq integer, n bigint)")
    for table in tables:
        con.execute(f"create or replace temp table {closed_table(table)} (id bigint, seq integer)")
        con.execute(f"insert into {CLOSINGS} select '{table}', 1, count(*) from {table}")
    con.execute(f"create or replace temp sequence {CLOSING}")
    con.execute(f"select nextval('{CLOSING}')")


def log_closing(con: duckdb.DuckDBPyConnection, table: str, ids: pl.Series) -> int:
    """Log that the rows whose id is in `ids` (open, distinct) leave open table `table`,
    under the next closing number, which it returns."""
    seq = int(con.execute(f"select nextval('{CLOSING}')").fetchall()[0][0])
    # read by DuckDB from this variable (see recon.db)
    closing = ids.cast(pl.Int64).to_frame("id")  # noqa: F841
    con.execute(f"insert into {closed_table(table)} select id, {seq} from closing")
    con.execute(f"insert into {CLOSINGS} values ('{table}', {seq}, {len(ids)})")
    return seq


def closed_seq(con: duckdb.DuckDBPyConnection) -> int:
    """The number of the last closing so far: what a rule takes before it reads the open
    tables, and later gives :func:`still_open` for what left since."""
    n: int = con.execute(f"select currval('{CLOSING}')").fetchall()[0][0]
    return n


@dataclass(frozen=True, slots=True)
class IdSet:
    """Some of the ids of a known set of rows, held as themselves or, when they are the
    more, as the others (`out`: `ids` are the rows not in it)."""

    ids: pl.Series
    out: bool

    def expr(self, column: str) -> pl.Expr:
        """Whether the id in `column` (one of the known rows) is in the set."""
        hit = pl.col(column).is_in(self.ids.implode())
        return ~hit if self.out else hit


def still_open(con: duckdb.DuckDBPyConnection, table: str, seen: int) -> IdSet:
    """Which rows of open table `table` that were open at closing number `seen` are open
    now: what a rule's carried pairs, levels and block rows, read when it took `seen`,
    are filtered by.  Rows only leave during a run: in a late pass the rows that left
    since are a few (reading every open id and comparing the carried pairs with them,
    the components numbered, took 1.34-1.79 s of each of the 5M run's passes nine to
    thirteen; 0.53-1.00 s since, of which the numbering 0.44-0.80 s), while in the
    second pass the rows still open are the fewer."""
    sql, gone = _fewer_ids(con, table, seen)
    ids: pl.Series = con.sql(sql).pl()["id"].cast(pl.Int64)
    return IdSet(ids, out=gone)


def gone_sql(con: duckdb.DuckDBPyConnection, table: str, seen: int, column: str = "id") -> str:
    """SQL condition: the row whose id is in `column`, of the rows of open table `table`
    that were open at closing number `seen`, has left since; it names the rows that left
    or the rows still open, whichever are fewer (see :func:`still_open`)."""
    sql, gone = _fewer_ids(con, table, seen)
    return f"{column} {'in' if gone else 'not in'} ({sql})"


def _fewer_ids(con: duckdb.DuckDBPyConnection, table: str, seen: int) -> tuple[str, bool]:
    """SQL of (id) naming, of the rows of open table `table` open at closing number
    `seen`, those that left since (and True) or those still open (and False), whichever
    are fewer: counted from CLOSINGS, a row per closing, not from the log or the table."""
    gone, still = con.execute(
        f"""select coalesce(sum(n) filter (where seq > {seen}), 0),
                   sum(case when seq = 1 then n else -n end)
        from {CLOSINGS} where tab = '{table}'"""
    ).fetchall()[0]
    if gone <= still:
        return f"select id from {closed_table(table)} where seq > {seen}", True
    return f"select id from {table}", False


def gain_table(refs: str) -> str:
    """The (id, ref) rows of reference table `refs` whose key came under its cap in this
    pass (recon.pipeline fills it each pass; empty in the first)."""
    return f"{refs}_gain"


def ref_pairs_sql(t: Tables) -> str:
    """(l, r): each pair of rows of `t.left_refs` and `t.right_refs` sharing a key, once."""
    return f"""select distinct lr.id as l, rr.id as r
        from {t.left_refs} lr join {t.right_refs} rr on lr.ref = rr.ref"""


@dataclass(frozen=True, slots=True)
class AmountTolerance:
    """Allowed |left - right|: the larger of `abs` and `pct` percent of the ledger amount."""

    abs: Decimal = Decimal(0)
    pct: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        if self.abs < 0 or self.pct < 0:
            raise ValueError("tolerances must be non-negative")
        if self.pct >= 100:
            raise ValueError("pct must be below 100")

    @property
    def exact(self) -> bool:
        """True when only identical amounts may pair."""
        return self.abs == 0 and self.pct == 0


@dataclass(frozen=True, slots=True)
class DateWindow:
    """The bank date may be up to `before` days before and `after` days after the ledger date."""

    before: int = 0
    after: int = 0

    def __post_init__(self) -> None:
        if self.before < 0 or self.after < 0:
            raise ValueError("days must be non-negative")
        if self.before > 366 or self.after > 366:
            raise ValueError("a window longer than a year is not a window")

    @property
    def width(self) -> int:
        """Largest distance in days either way."""
        return max(self.before, self.after)


@dataclass(frozen=True, slots=True)
class TextField:
    """Compare a text field of each side with a rapidfuzz scorer."""

    left: str = "counterparty"
    right: str = "counterparty"
    scorer: str = "token_set_ratio"
    threshold: float = 0.0

    def __post_init__(self) -> None:
        if self.scorer not in SCORERS:
            raise ValueError(f"unknown scorer {self.scorer!r}; known: {', '.join(SCORERS)}")
        if not 0 <= self.threshold <= 100:
            raise ValueError("threshold must be between 0 and 100")
        for side in (self.left, self.right):
            if side not in TEXT_FIELDS:
                raise ValueError(f"unknown text field {side!r}; known: {', '.join(TEXT_FIELDS)}")


TEXT_FIELDS = ("counterparty", "reference", "description", "text")


#: The prefix of the temp tables a matcher keeps for the passes of one pipeline run (one
#: left side: rows only leave between its passes): recon.pipeline drops every temp table
#: so named when a run's first pass makes its open tables.
RUN_CACHE = "__recon__run_cache_"


@dataclass(frozen=True, slots=True)
class Matcher(ABC):
    """Base of all matchers: the YAML `params` are the dataclass fields."""

    name: ClassVar[str]
    #: match kinds this matcher produces
    kinds: ClassVar[tuple[str, ...]] = ("one_to_one",)
    #: discrepancy type of its matches when amounts differ (None: short/over payment)
    difference: ClassVar[str | None] = None

    date: DateWindow = field(default_factory=DateWindow)

    @abstractmethod
    def candidates_sql(self, t: Tables) -> str:
        """SQL yielding the candidate pairs `(l, r)` of open txn ids, a pair maybe more
        than once (two shared name words, two amount keys): its readers keep the distinct
        pairs, one deduplication over all the joins' rows instead of one per join."""

    #: True when :meth:`bounds_sql` names every left row whose candidates a bound cut:
    #: a later pass of the run then builds only the pairs of rows whose bounds
    #: relaxed, and takes the others from the pass before (see recon.pipeline).
    incremental: ClassVar[bool] = False

    def bounds_sql(self, t: Tables) -> str | None:
        """SQL yielding `(id, level)` for each left row of `t` whose candidates a
        crowding bound cut (None: no bound cuts them).

        A bound counts right rows, so as matched rows leave the open tables a row's
        level can only fall, and its candidates only grow when it does; a row absent
        here has every pair that `candidates_sql` can give it.
        """
        return None

    def touched_sql(self, t: Tables) -> str | None:
        """SQL yielding `id`: the left rows of `t` (rows a bound cut) whose level may
        have changed when the rows `t.right` left the right table, a superset of them
        (None: any may have).  A level counts the right rows of some slots (currency,
        amount bucket, week, name); the rows sharing no slot with a row that left
        keep theirs, and a later pass counts the others' again (see recon.pipeline)."""
        return None

    def counts_sql(self, t: Tables, *, prune: bool = True) -> str | None:
        """SQL yielding `(kind, cur, k, wk, nb, tok, n)`: the rows of `t.right` counted
        per slot as :meth:`bounds_sql` counts them: a bucket join's kind ``fan`` (nb and
        tok null) and ``nbfan`` (tok null, see :func:`bucket_counts_sql`), a word join's
        kind ``w0``, ``w1`` ... for each amount key (nb null, see
        :func:`token_counts_sql`); with `prune`, only the slots of the crowded windows.
        None where the bounds are not counted this way."""
        return None

    def paired_sql(self, t: Tables) -> str | None:
        """:meth:`candidates_sql` and :meth:`bounds_sql` in one query, which counts
        what both count once: rows (l, r, level), a pair with no level or a cut left
        row (its id as l) with no r.  None where bounds_sql is None."""
        bounds = self.bounds_sql(t)
        if bounds is None:
            return None
        return both_sql(self.candidates_sql(t), bounds)

    def prepare_sql(self, t: Tables) -> list[str]:
        """Statements to run before `candidates_sql`: the shared-reference pairs.

        A temp table, not a CTE: inside the run's transaction DuckDB planned the
        inline form as a join of the left and right tables on the amount and date
        conditions first, a near cross product, before the selective key join.
        """
        if not self.reads_ref_pairs:
            return []
        shared = f"select * from {t.ref_pairs}" if t.ref_pairs else ref_pairs_sql(t)
        return [
            f"""create or replace temp table {REF_PAIRS} as
            select l, r from ({shared})
            where l in (select id from {t.left}) and r in (select id from {t.right})"""
        ]

    @property
    def reads_ref_pairs(self) -> bool:
        """Whether the candidates come from table REF_PAIRS, which :meth:`prepare_sql`
        then builds (each rule and pass: 0.5 s of a 1M run for the rules that never
        read it)."""
        return True

    # Text comparisons the pipeline runs with rapidfuzz over the candidates.
    def text_fields(self) -> tuple[TextField, ...]:
        """Text comparisons that filter candidates (none by default)."""
        return ()

    def amount_tolerance(self) -> AmountTolerance:
        """The amount difference this matcher allows (used for scoring)."""
        return AmountTolerance()

    def right_amount_sql(self, r: str = "r", l: str = "l") -> str:
        """The ledger amount in the bank's terms (FX converts it)."""
        return f"{r}.amount"

    def fits_sql(self) -> tuple[str, str] | None:
        """(amount, dates): the conditions on a pair's amounts and its dates this
        matcher's candidates are joined with, over rows `l` and `r` of
        :func:`keyed_sql` (the right rows' allowed difference inlined): the diagnosis
        reads exception reasons rule by rule with them (and, where the rule's `equal`
        names the reference, with the pair's shared reference key).  None for the
        matchers that pair otherwise (sums, opposite rows of one side, two currencies)."""
        return None


class JoinedMatcher(Matcher):
    """A matcher whose candidates, bounds and both come from one builder, `_join`, so
    the three always describe the same join; its later passes are incremental."""

    __slots__ = ()
    incremental: ClassVar[bool] = True

    @abstractmethod
    def _join(self, t: Tables, out: str = "pairs") -> str | None:
        """The join's SQL giving `out` (see :func:`emit`); None for levels it has not."""

    @property
    def reads_ref_pairs(self) -> bool:
        # a join pairs by reference keys exactly when `equal` names the reference; the
        # joins ask this property, so the table is built exactly for them
        return "reference" in getattr(self, "equal", ())

    def candidates_sql(self, t: Tables) -> str:
        sql = self._join(t)
        assert sql is not None
        return sql

    def bounds_sql(self, t: Tables) -> str | None:
        return self._join(t, "levels")

    def paired_sql(self, t: Tables) -> str | None:
        return self._join(t, "both")

    def touched_sql(self, t: Tables) -> str | None:
        return self._join(t, "touched")

    def counts_sql(self, t: Tables, *, prune: bool = True) -> str | None:
        return self._join(t, "counts" if prune else "tally")


def check_equal_fields(equal: tuple[str, ...]) -> None:
    """Raise ValueError naming the first field of `equal` a band matcher cannot compare."""
    bad = [f for f in equal if f not in EQUAL_FIELDS or f == "amount"]
    if bad:
        choices = ", ".join(f for f in EQUAL_FIELDS if f != "amount")
        raise ValueError(f"unknown field {bad[0]!r} in equal; known: {choices}")


#: A row's date as a day number: the numbers of two dates d days apart differ by d.
DAY_SQL = "date_diff('day', date '1970-01-01', date)"


def keyed_sql(table: str, tol: AmountTolerance | None = None) -> str:
    """`table` with what the join conditions compare of each row, computed once per row
    instead of once per pair a join tries (at 5M lines the fuzzy rule's two word joins
    find 343 million pairs by their keys before the crowded slots are left out, and
    evaluated the conditions' expressions for each): the day number `dn` (see
    :func:`date_condition_sql`), the amount's sign `sg` and, with `tol`, the amount
    difference the row allows as a right row, `tol` (see :func:`amount_condition_sql`)."""
    cols = f"sign(amount) as sg, {DAY_SQL} as dn"
    if tol is not None and not tol.exact:
        cols += f", {tolerance_sql(tol, 'amount')} as tol"
    return f"(select *, {cols} from {table})"


#: The outputs of a join (see :func:`emit`) that pair rows: the others count them.
PAIRING = ("pairs", "both")


def keyed_tables(t: Tables, out: str, tol: AmountTolerance | None = None) -> tuple[str, str]:
    """The left and right tables a join giving `out` reads: keyed (see keyed_sql, the
    right rows with `tol`) where it pairs rows, as they are where it only counts them
    (the levels and the touched rows compare no pair, and a later pass counts them
    over most right rows)."""
    if out in PAIRING:
        return keyed_sql(t.left), keyed_sql(t.right, tol)
    return t.left, t.right


def tolerance_sql(tol: AmountTolerance, amount: str) -> str:
    """The largest difference `tol` allows from the ledger amount `amount`."""
    return f"greatest({tol.abs}, abs({amount}) * {tol.pct} / 100)"


def date_condition_sql(w: DateWindow, l: str = "l", r: str = "r") -> str:
    """`l.date - r.date` within [-before, +after] days (bank vs ledger), over rows of
    :func:`keyed_sql`."""
    return f"{l}.dn - {r}.dn between {-w.before} and {w.after}"


def amount_condition_sql(tol: AmountTolerance, l: str = "l", r: str = "r", *,
                         keyed: bool = True) -> str:
    """Exact or toleranced amount agreement, same sign, over rows of :func:`keyed_sql`
    (the right rows keyed with `tol`, unless not `keyed`: then the allowed difference
    is computed here)."""
    if tol.exact:
        return f"{l}.amount = {r}.amount"
    allowed = f"{r}.tol" if keyed else tolerance_sql(tol, f"{r}.amount")
    return f"{l}.sg = {r}.sg and abs({l}.amount - {r}.amount) <= {allowed}"


def equal_condition_sql(fields: tuple[str, ...], l: str = "l", r: str = "r") -> list[str]:
    """Equality conditions; `reference` is handled by a join on reference keys.

    The currency is compared whether `fields` names it or not: amounts of two
    currencies are not comparable (the fx matcher converts them), and a rule that left
    it out of `equal` matched 100.00 EUR with 100.00 USD, an "fx" difference at rate 1."""
    out = []
    for f in dict.fromkeys([*fields, "currency"]):
        if f == "reference":
            continue
        col = "name_key" if f == "counterparty" else f
        out.append(f"{l}.{col} = {r}.{col}")
    return out


#: A left row with more right rows than this in its amount buckets (same currency,
#: its week and the weeks either side) is crowded (round sums: 500.00 paid by hundreds
#: of customers a week): its pairs must also share a name block, or candidates would
#: grow with the square of the volume.  Amount and date alone cannot tell such rows
#: apart anyway.
FAN = 48

#: First word (at most 4 characters) of the normalised name, pinyin for Chinese names;
#: the open tables carry it as column `nb` (computed once per name, see scoring.NAMES).
NAME_BLOCK = "left(split_part(coalesce(name_alt, name_key, ''), ' ', 1), 4)"


#: The week of a row's date (weeks start on Monday), as a number.
WEEK_SQL = "date_diff('day', date '1970-01-05', date) // 7"


def bucketed_sql(table: str, key: str, *, neighbours: bool) -> str:
    """`table` (open rows, with their name block `nb`) with its amount bucket `k`, the
    buckets it may pair with `kk` (k and, with `neighbours`, k - 1 and k + 1) and its
    week `wk`."""
    inner = f"select *, {key} as k, {WEEK_SQL} as wk from {table}"
    return _spread(inner, neighbours)


def _spread(sql: str, neighbours: bool) -> str:
    """Rows of `sql` (with a bucket `k`) with `kk`: k, or k - 1, k and k + 1 (a row each)."""
    spread = "unnest([k - 1, k, k + 1])" if neighbours else "k"
    return f"(select *, {spread} as kk from ({sql}))"


#: The words of the normalised name and of its pinyin form, without one-letter words;
#: the open tables carry them, numbered (see scoring.words_sql), as column `toks`.
NAME_TOKENS = (
    "list_filter(list_distinct(string_split(concat_ws(' ', name_key, name_alt), ' ')), "
    "lambda w: length(w) >= 2)"
)


def tokened_sql(table: str, key: str, *, neighbours: bool) -> str:
    """`table` with one row per name word `tok`, its amount bucket `k`, `kk` and its
    week `wk` as in :func:`bucketed_sql`.  Rows without a name have no words."""
    words = f"(select *, unnest(toks) as tok from {table})"
    return _spread(f"select *, {key} as k, {WEEK_SQL} as wk from {words}", neighbours)


def token_join_sql(
    left: str, right: str, where: str, *, out: str = "pairs", counts: str | None = None
) -> str:
    """Pairs of `left` and `right` (from :func:`tokened_sql`) in neighbouring buckets
    whose names share a word, meeting `where`.

    A word carried by more than FAN right rows of one bucket and three weeks
    (`partner`, `global`, `nord` on a round sum at millions of lines) tells nothing
    about who paid: the left rows there pair through their other words only, so
    common words do not make the candidates grow with the square of the volume.

    `out` is what the query gives (see :func:`emit`): the pairs, the levels (id,
    level) of the left rows that bound cuts, a level being how many of the row's
    (word, bucket, week) slots are crowded (see :meth:`Matcher.bounds_sql`), or both.
    For the levels alone `left` has each row's own bucket only (`neighbours=False`),
    and the crowded slots are spread to the buckets either side instead: a third of
    the rows to join; with `counts` (rows (cur, tok, k, wk, n), see
    :func:`token_counts_sql`) they read those counts instead of counting `right`.
    """
    alone = out == "levels"
    tally = f"select cur, tok, k, wk, n from {counts}" if alone and counts else _word_tally_sql("rt")
    # right rows only in the buckets the left rows reach: the counts of those buckets
    # are whole, and a later pass building pairs for a few rows counts no others (the
    # touched rows read a few right rows, all of them: see _touched_sql)
    reach = "(select distinct tok, unnest([kk - 1, kk, kk + 1]) as kk from lt)" if alone else "lt"
    reached = f"(select r.* from {right} r semi join {reach} x on r.tok = x.tok and r.k = x.kk)"
    ctes = f"""with lt as (select * from {left}),
    rt as (select * from {right if out == "touched" else reached}),
    tf as ({tally}),
    crowded as ({_crowded_slots_sql("tf")})"""
    pairs = f"""select l.id as l, r.id as r
    from (select * from lt where (currency, tok, kk, wk) not in
            (select (cur, tok, k, w) from crowded)) l
    join rt r on l.kk = r.k and l.tok = r.tok and {where}"""
    # a crowded slot's right rows are within a bucket and a week of the left row's
    touched = _touched_sql("lt", "rt", "currency", "l.tok = r.tok")
    return emit(ctes, pairs, _token_levels_sql(spread=alone), out, touched)


def _token_levels_sql(*, spread: bool) -> str:
    """(id, level) of the rows `lt` of a word join (see :func:`token_join_sql`): how many
    of their (word, bucket, week) slots are among the crowded slots `crowded` (cur, tok,
    k, w), those spread to the buckets either side (`spread`: `lt` has each row's own
    bucket only) or not (`lt` has the buckets either side)."""
    slots = "(select cur, tok, unnest([k - 1, k, k + 1]) as k, w from crowded)" if spread else "crowded"
    return f"""select l.id, count(*) as level from lt l join {slots} c
        on c.cur = l.currency and c.tok = l.tok and c.k = l.kk and c.w = l.wk
    group by l.id"""


def _word_tally_sql(rows: str) -> str:
    """`rows` (from :func:`tokened_sql`) counted per (cur, tok, k, wk): what a word join's
    crowding reads."""
    return f"select currency as cur, tok, k, wk, count(*) as n from {rows} group by all"


def token_counts_sql(right: str, kind: str, *, prune: bool) -> str:
    """(kind, cur, k, wk, nb, tok, n): the rows of `right` (from :func:`tokened_sql`, their
    own bucket only) counted per (cur, tok, k, wk) as :func:`token_join_sql` counts them
    for its levels, nb null.

    With `prune`, only the slots of a crowded slot's window (its week and the weeks
    either side): right rows only leave, so a slot not crowded now never is, and a
    crowded slot's window keeps all its counts (see :func:`bucket_counts_sql`)."""
    kept = "tf"
    if prune:
        kept = f"""(select f.* from tf f semi join ({_crowded_slots_sql("tf")}) c
            on c.cur = f.cur and c.tok = f.tok and c.k = f.k and f.wk between c.w - 1 and c.w + 1)"""
    return f"""select * from (with tf as materialized ({_word_tally_sql(right)})
    select '{kind}' as kind, cur, k, wk, null::varchar as nb, tok, n from {kept})"""


def _crowded_slots_sql(counts: str) -> str:
    """The crowded slots (cur, tok, k, w) of `counts` (right rows counted per cur, tok, k,
    wk): more than FAN right rows in week w and the weeks either side.

    Three counts sum past FAN only if one of them is past a third of it: only the
    slots near such a count are summed, not every count three times (1.1M rows
    grouped for the fuzzy rule's first pass at 1M lines, most of them counts of 1).
    """
    return f"""select c.cur, c.tok, c.k, c.w
    from (select distinct cur, tok, k, unnest([wk - 1, wk, wk + 1]) as w
          from {counts} where n > {FAN // 3}) c
    join {counts} f on f.cur = c.cur and f.tok = c.tok and f.k = c.k
        and f.wk between c.w - 1 and c.w + 1
    group by all having sum(f.n) > {FAN}"""


def emit(ctes: str, pairs: str, levels: str, out: str, touched: str = "") -> str:
    """The query over `ctes` giving `pairs` (l, r), `levels` (id, level), `touched`
    (id, see Matcher.touched_sql) or, with `out="both"`, (l, r, level) rows of both:
    a pair with no level, a level with no r."""
    bodies = {"pairs": pairs, "levels": levels, "touched": touched}
    body = both_sql(pairs, levels) if out == "both" else bodies[out]
    return f"select * from ({ctes}\n    {body})"


def _touched_sql(left: str, right: str, right_cur: str, also: str = "true") -> str:
    """Ids of `left` rows sharing a slot with a row of `right` (the few right rows that
    left): its bucket or one either side, currency, and its week or one either side
    (meeting `also`).  The right rows are spread to the buckets either side, not the
    left rows (`left` has each row's own bucket, see Matcher.touched_sql): a third of
    the rows to join, and where the pairs do not spread the buckets (exact amounts),
    a superset."""
    return f"""select distinct l.id from {left} l
        join (select *, unnest([k - 1, k, k + 1]) as near from {right}) r
        on r.near = l.k and r.{right_cur} = l.currency
        and r.wk between l.wk - 1 and l.wk + 1 and {also}"""


def both_sql(pairs: str, levels: str) -> str:
    """(l, r, level) rows of `pairs` (l, r) with no level and `levels` (id, level) with no r."""
    return f"""select l, r, null::bigint as level from ({pairs})
    union all select id, null::bigint, level::bigint from ({levels})"""


#: A crowded left row (bucket_join_sql) or any left row (block_join_sql) whose name
#: block more right rows than this share in its buckets and weeks is not paired by
#: name block: over a common name start it would pair with thousands at millions of
#: lines (the exception diagnosis's wide band, round sums).  Measured at 1M lines, a
#: bound of FAN cost the decoy case 4 points of recall; this one keeps it.
BLOCK_FAN = 4 * FAN


def _crowded_ids_sql(rows: str, counts: str, most: int, *, by_name: bool = False) -> str:
    """Ids of `rows` (from :func:`bucketed_sql`) meeting more than `most` right rows in
    their buckets, in their week and the weeks either side; `counts` holds the right
    rows counted per (cur, k, wk[, nb]), and with `by_name` only rows of the same
    name block count."""
    name = " and g.nb = l.nb" if by_name else ""
    return f"""select l.id from {rows} l join {counts} g
        on g.cur = l.currency and g.k = l.kk and g.wk between l.wk - 1 and l.wk + 1{name}
        group by l.id having sum(g.n) > {most}"""


def block_join_sql(left: str, right: str, where: str, *, out: str = "pairs") -> str:
    """Pairs of `left` and `right` (from :func:`bucketed_sql`) in neighbouring buckets
    whose name blocks agree, meeting `where` (see BLOCK_FAN); `out` as in
    :func:`token_join_sql`, level 1 for each row the bound cuts."""
    # right rows of the buckets the left rows reach only (see token_join_sql)
    reached = right if out == "touched" else f"(select * from {right} where k in (select kk from lb))"
    ctes = f"""with lb as (select * from {left}),
    rb as (select * from {reached}),
    nbfan as ({_slot_counts_sql("currency", ", nb")}),
    hot as ({_crowded_ids_sql("lb", "nbfan", BLOCK_FAN, by_name=True)})"""
    pairs = f"""select l.id as l, r.id as r
    from (select * from lb where id not in (select id from hot)) l join rb r
        on l.kk = r.k and l.nb = r.nb and {where}"""
    touched = _touched_sql("lb", "rb", "currency")
    return emit(ctes, pairs, "select id, 1 as level from hot", out, touched)


def bucket_join_sql(
    left: str,
    right: str,
    where: str,
    right_cur: str = "currency",
    *,
    out: str = "pairs",
    levels: str | None = None,
    late: str = "",
    same_cur: bool = False,
    counts: str | None = None,
) -> str:
    """Pairs of `left` and `right` (from :func:`bucketed_sql`) in neighbouring buckets that
    meet `where`; a crowded left row (see FAN) only with rows whose name block agrees,
    and not at all when more than BLOCK_FAN of those share its name block too (`NORD` on a
    round sum at millions of lines: nothing there tells the payers apart, and pairing
    them all would grow with the square of the volume).
    `right_cur` is the right rows' currency in the left's terms.  `out` as in
    :func:`token_join_sql`: a crowded row's level is 1, 2 where its name block is
    crowded too.  With `levels` (those of the left rows, see Tables.levels), the
    crowded rows are read from it.  `late`: columns of the right rows (", expr as
    name ...") computed for the rows of the buckets the left rows reach only, not for
    every right row (a later pass pairs a few left rows).  `same_cur`: `where` pairs
    rows of the same currency only (`right_cur` the left's); the right rows are then
    read in the buckets the left rows of their currency reach, not in those any left
    row reaches (the FX rule converts each ledger row into every currency with a rate,
    and a bucket's number means a different amount in each).

    `out` "counts" and "tally" count the right rows per slot instead (see
    :func:`bucket_counts_sql`); with `counts` (see Tables.counts) the levels read
    those counts instead of counting the right rows."""
    if out in COUNTING:
        return bucket_counts_sql(right, right_cur, prune=out == "counts")
    crowd = _crowded_ids_sql("lb", "fan", FAN)
    hot = _crowded_ids_sql("(select * from lf where crowded)", "nbfan", BLOCK_FAN, by_name=True)
    if levels and out == "pairs":
        crowd = f"select id from {levels} where level >= 1"
        hot = f"select id from {levels} where level = 2"
    # right rows of the buckets the left rows reach only (see token_join_sql); with
    # `same_cur`, of those the left rows of their currency reach: the counts (fan,
    # nbfan) are per currency, and no left row's count changes
    reached = f"(select * from {right} where k in (select kk from lb))"
    if same_cur:
        reached = f"""(select r.* from {right} r semi join lb x
            on r.{right_cur} = x.currency and r.k = x.kk)"""
    if out == "touched":
        reached = right  # a few rows (see _touched_sql)
    fan, nbfan = _slot_counts_sql(right_cur), _slot_counts_sql(right_cur, ", nb")
    if counts and out == "levels":
        fan = f"select cur, k, wk, n from {counts} where kind = 'fan'"
        nbfan = f"select cur, k, wk, nb, n from {counts} where kind = 'nbfan'"
    ctes = f"""with lb as (select * from {left}),
    rb as (select *{late if out in PAIRING else ""} from {reached}),
    fan as ({fan}),
    crowd as ({crowd}),
    lf as (select *, id in (select id from crowd) as crowded from lb),
    nbfan as ({nbfan}),
    hot as ({hot})"""
    pairs = f"""select l.id as l, r.id as r from lf l join rb r
        on l.kk = r.k and not l.crowded and {where}
    union all
    select l.id as l, r.id as r
    from (select * from lf where crowded and id not in (select id from hot)) l join rb r
        on l.kk = r.k and l.nb = r.nb and {where}"""
    levels = "select id, 1 + (id in (select id from hot))::int as level from crowd"
    return emit(ctes, pairs, levels, out, _touched_sql("lb", "rb", right_cur))


def _slot_counts_sql(right_cur: str, by: str = "") -> str:
    """The right rows (`rb`) counted per (cur, k, wk) and `by` (", nb" for the name
    block): what a bucket join's crowding (and its name-block bound) reads."""
    return f"select {right_cur} as cur, k, wk{by}, count(*) as n from rb group by all"


#: The outputs of a join that count its right rows (see :func:`bucket_counts_sql`).
COUNTING = ("counts", "tally")


def _crowded_slots(counts: str, by: tuple[str, ...], most: int) -> str:
    """The rows of `counts` (cur, `by`..., k, wk, n) in a crowded window: the nine slots
    of three buckets and three weeks around one (a left row's own bucket and week, as
    :func:`_crowded_ids_sql` reads them) summing to more than `most`.  Nine counts sum
    past `most` only if one of them is past a ninth of it: only the windows around such
    a count are summed, each from its nine slots, not every count spread over the nine
    windows it is in first (the FX rule's second-pass count at 1M lines: 4.2M rows
    spread, 0.28 s; 0.14 s since)."""
    def cols(alias: str = "") -> str:  # the `by` columns, each followed by ", "
        return "".join(f"{alias}{c}, " for c in by)

    known = "".join(f" and f.{c} is not null" for c in by)
    same = "".join(f" and x.{c} = f.{c}" for c in by)
    at = "".join(f" and f.{c} = s.{c}" for c in by)
    return f"""(select f.* from {counts} f semi join (
        with near as (select unnest([-1, 0, 1]) as d),
        seeds as (select distinct f.cur, {cols("f.")}f.k + a.d as ck, f.wk + b.d as cw
                  from {counts} f, near a, near b where f.n > {most // 9}{known}),
        windows as (select s.cur, {cols("s.")}s.ck, s.cw
                    from seeds s, near a, near b
                    join {counts} f on f.cur = s.cur{at} and f.k = s.ck + a.d and f.wk = s.cw + b.d
                    group by all having sum(f.n) > {most})
        select distinct w.cur, {cols("w.")}w.ck + a.d as k, w.cw + b.d as wk
        from windows w, near a, near b) x
      on x.cur = f.cur and x.k = f.k and x.wk = f.wk{same})"""


def bucket_counts_sql(right: str, right_cur: str, *, prune: bool) -> str:
    """(kind, cur, k, wk, nb, tok, n): the rows of `right` (from :func:`bucketed_sql`) counted
    as :func:`bucket_join_sql` counts them for its levels: kind ``fan`` per (cur, k, wk),
    nb null, and ``nbfan`` per (cur, k, wk, nb); tok null.

    With `prune`, only the slots of a crowded window (see :func:`_crowded_slots`: more
    than FAN rows, more than BLOCK_FAN of one name block for ``nbfan``): right rows
    only leave, so a window not crowded now never is, and its sum read from fewer
    slots is no more than its own; a crowded window's slots are all kept.  A later pass
    takes these counts less those of the rows that left since (`prune` false: every
    slot) instead of counting every right row again (see pipeline._recount)."""
    fan, nbfan = "fan", "(select * from nbfan where nb is not null)"
    if prune:
        fan, nbfan = _crowded_slots("fan", (), FAN), _crowded_slots("nbfan", ("nb",), BLOCK_FAN)
    return f"""select * from (with rb as materialized (select * from {right}),
    fan as ({_slot_counts_sql(right_cur)}),
    nbfan as ({_slot_counts_sql(right_cur, ", nb")})
    select 'fan' as kind, cur, k, wk, null::varchar as nb, null::integer as tok, n from {fan}
    union all select 'nbfan', cur, k, wk, nb, null, n from {nbfan})"""


def band_join_sql(
    t: Tables,
    tol: AmountTolerance,
    extra: list[str],
    *,
    by_reference: bool = False,
    names: str = "",
    out: str = "pairs",
) -> str | None:
    """Pairs whose amounts agree within `tol`, found by equi-joins on amount buckets.

    A hash join on a bucket key (and its neighbours) keeps this linear: a
    plain inequality join with an equality on currency would compare every
    pair of a currency.  Crowded rows also join on the name block (see
    FAN).  With `by_reference`, pairs must share a reference key; that
    join is selective enough on its own.  With `names="word"`, pairs must
    share a word of their names (a rule that compares names needs no others:
    re-ordered, truncated and romanised names still share one); with
    `names="block"`, their name blocks must agree.

    `out` as in :func:`token_join_sql` (None for the levels when no bound cuts
    these pairs).
    """
    where = " and ".join([amount_condition_sql(tol), *extra]) or "true"
    left, right = keyed_tables(t, out, tol)
    if by_reference:
        if out != "pairs":
            return None  # no bound cuts these pairs
        return f"""select p.l, p.r from {REF_PAIRS} p
            join {left} l on l.id = p.l join {right} r on r.id = p.r where {where}"""
    if tol.exact:
        if out in COUNTING:
            return None  # counted in the join, as the rows are (see Tables.counts)
        return bucket_join_sql(
            bucketed_sql(left, "amount", neighbours=False),
            bucketed_sql(right, "amount", neighbours=False),
            where,
            out=out,
            levels=t.levels,
        )
    keys = []
    if tol.abs > 0:
        keys.append(f"floor(amount / {tol.abs})::bigint")
    if tol.pct > 0:
        keys.append(log_bucket_sql("amount", tol.pct))
    if out in COUNTING and names == "word":
        return "\nunion all\n".join(
            token_counts_sql(tokened_sql(right, key, neighbours=False), f"w{i}", prune=out == "counts")
            for i, key in enumerate(keys)
        )
    if out in COUNTING and (names or len(keys) != 1):
        return None  # counted in the joins, as the rows are (see Tables.counts)
    if not names and len(keys) == 1:
        # one bucket join: its levels are those of bounds_sql (several are summed)
        return bucket_join_sql(
            bucketed_sql(left, keys[0], neighbours=out != "touched"),
            bucketed_sql(right, keys[0], neighbours=False),
            where,
            out=out,
            levels=t.levels,
            counts=t.counts,
        )
    side, join = {
        "word": (tokened_sql, token_join_sql),
        "block": (bucketed_sql, block_join_sql),
        "": (bucketed_sql, bucket_join_sql),
    }[names]
    def counted(i: int) -> dict[str, str]:
        # a word join's levels read the counts of its key, where they are kept
        if names != "word" or out != "levels" or not t.counts:
            return {}
        return {"counts": f"(select * from {t.counts} where kind = 'w{i}')"}

    parts = [
        join(
            # the levels of a word join spread the crowded slots instead (see there), and
            # the touched rows the right rows (see _touched_sql)
            side(left, key, neighbours=out != "touched" and not (out == "levels" and names == "word")),
            side(right, key, neighbours=False),
            where,
            out=out,
            **counted(i),
        )
        for i, key in enumerate(keys)
    ]
    if out == "pairs":
        return "\nunion all\n".join(parts)  # the readers deduplicate (candidates_sql)
    if out == "touched":
        return "\nunion\n".join(parts)
    # each key's levels only fall as rows leave, so their sum changes when any does
    if out == "levels":
        union = "\nunion all\n".join(f"select id, level from ({p})" for p in parts)
        return f"select id, sum(level)::bigint as level from ({union}) group by id"
    union = "\nunion all\n".join(f"select l, r, level from ({p})" for p in parts)
    return f"""select * from (with parts as ({union})
    select l, r, null::bigint as level from parts where r is not null
    union all select l, null::bigint, sum(level)::bigint from parts where r is null group by l)"""


def log_bucket_sql(expr: str, pct: Decimal) -> str:
    """Log-scale bucket of `expr`: |a| within pct% of |b|, either way, puts their
    buckets side by side.

    On the log scale b(1 - pct/100) is further below b than b(1 + pct/100) is above
    it, so a bucket spans the larger distance, ln(1 / (1 - pct/100)), and a billionth
    more, which the doubles' rounding of the logarithms cannot eat.  Spanning
    ln(1 + pct/100), buckets put a bank line 2.99% below the converted invoice two
    apart in about one bucket in thirty, and the FX rule's 3% never paired them."""
    step = f"(-ln(1 - {pct} / 100) * (1 + 1e-9))"
    return f"(sign({expr}) * floor(ln(greatest(abs({expr}), 0.0001)::double) / {step}))::bigint"
