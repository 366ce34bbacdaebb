"""Exact bounded group search for the `group` matcher.

Inside each block (an anchor row and the rows that could belong to its
group) the search finds every subset of 2..``max_group`` rows whose amounts,
in integer minor units, sum exactly to the anchor's.  The blocks are built by
joins in SQL; a compiled kernel (:mod:`recon.subsets`) then searches them all
in one call, meeting in the middle (pairs, then pairs of pairs), with no
Python loop over blocks.  Blocks larger than ``max_block`` are skipped, which
bounds the work.

Every solution is scored like a pair (date, reference and name agreement of
its members with the anchor; the amount agrees exactly).  An anchor whose two
best solutions score within the margin is *ambiguous*; so are solutions of
different anchors that claim the same row.  Peers that add candidates
greedily until the amount is covered pick wrong groups; this does not guess.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa

from recon.config import Rule
from recon.db import written_join_order
from recon.matchers.base import Tables, closed_seq, gain_table, ref_pairs_sql, still_open
from recon.matchers.group import Group
from recon.periods import drop_frozen
from recon.scoring import score_pairs

MAX_SOLUTIONS = 64  # more exact solutions than this for one anchor: ambiguous anyway


#: A block a later pass may still read: rows only leave during a run, so a block's
#: size and its sum's distance from zero only fall (its rows have the anchor's sign).
_REACHABLE = "n >= 2 and abs(total) >= abs(t)"


def eligible_sql(m: Group) -> str:
    """The blocks the search reads: 2..max_block rows whose amounts can reach the anchor's."""
    return f"n <= {m.max_block} and {_REACHABLE}"


def build_blocks(
    con: duckdb.DuckDBPyConnection,
    m: Group,
    t: Tables,
    rejected_sql: str,
    carry: GroupCarry | None = None,
) -> pl.DataFrame:
    """The blocks (a, blk, x, v, t, first, n, total) the search reads (:func:`eligible_sql`):
    `first` marks each block's row of the smallest x.

    The others (a single row, too small a sum) are left in DuckDB: at 1M lines they
    were 40% of the first pass's block rows.  A frame, not a temp table: every version
    of a temp table made inside the run's transaction is kept until the commit, and
    the blocks are made per rule and pass.  The functions below read it by the name of
    their argument `blocks` (see recon.db).

    With `carry` (the passes of one run), the block rows a later pass may read are
    kept there (:attr:`GroupCarry.held`), and a later pass takes its blocks from them
    (:func:`_held_blocks`).
    """
    blocks = None
    seen = 0
    if carry is not None:
        carry.unchanged = False
        # taken before the open tables are read: the rows that leave from now on
        seen = closed_seq(con)
        if carry.held is not None:
            blocks = _held_blocks(con, m, t, rejected_sql, carry)
    if blocks is None:
        for statement in m.prepare_sql(t):
            con.execute(statement)
        blocks = _fetch_blocks(con, m, t, m.candidates_sql(t), rejected_sql)
        if carry is not None:
            carry.crowded = _crowded(con, m, t)
            carry.members = _members(con, t, carry.crowded)
    if carry is not None:
        carry.held, carry.seen = blocks, seen
    return blocks.filter(pl.col("n") <= m.max_block)


def _fetch_blocks(
    con: duckdb.DuckDBPyConnection, m: Group, t: Tables, candidates: str, rejected_sql: str
) -> pl.DataFrame:
    """The blocks of `candidates` (l, r, blk) with at least two rows whose sum reaches
    the anchor's amount, of any size: those the search reads now, and those over
    max_block, which rows leaving can bring under it."""
    a_col, x_col = ("l", "r") if m.direction == "one_to_many" else ("r", "l")
    a_tab, x_tab = _anchor_tables(m, t)
    # each block's size and sum by a grouping joined back, not by windows over the
    # block rows (which sorted them: 0.9 -> 0.65 s for the first pass's at 1M lines)
    with written_join_order(con):
        blocks: pl.DataFrame = con.sql(
            f"""with b as materialized (
                select c.{a_col} as a, c.blk, c.{x_col} as x,
                       {units_sql("xt.amount")} as v, {units_sql("an.amount")} as t
                from (select distinct l, r, blk from ({candidates})
                      where (l, r) not in (select (l, r) from ({rejected_sql}))) c
                join {a_tab} an on an.id = c.{a_col} join {x_tab} xt on xt.id = c.{x_col}
                where xt.amount <> 0),
            s as (select a, blk, count(*) as n, sum(v) as total, min(x) as x0
                  from b group by a, blk)
            select * from (select b.a, b.blk, b.x, b.v, b.t, b.x = s.x0 as first, s.n, s.total
                           from b join s on s.a = b.a and s.blk = b.blk)
            where {_REACHABLE}"""
        ).pl()
    return blocks


def _held_blocks(
    con: duckdb.DuckDBPyConnection, m: Group, t: Tables, rejected_sql: str, carry: GroupCarry
) -> pl.DataFrame | None:
    """The blocks as :func:`_fetch_blocks` would give them now, from those it gave
    the pass before (`carry.held`); None when that cannot be told (no record of the
    reference keys gained).

    A pair of rows is a candidate by its two rows (currency, sign, amounts, dates, a
    shared key) and by two counts: a reference key of more than MAX_REF_ROWS rows
    pairs nothing, nor does a name with more than Group.name_cap open rows on a side.
    Rows only leave during a run, so the counts only fall: the candidates now are
    those of the pass before whose rows are still open, and the pairs of the keys
    and names that came under their caps.  Each block keeps its rows still open;
    the reference blocks of the anchors with a pair of a key now under its cap
    (:func:`_gained_anchors`) are fetched whole, and so are the counterparty blocks
    of the names now under theirs (:func:`_crowded`'s, counted again), which had
    none before.  Then every block's size, sum and first row are taken again."""
    held = carry.held
    assert held is not None
    anchor = "l" if m.direction == "one_to_many" else "r"
    a_tab, x_tab = _anchor_tables(m, t)
    a_open, x_open = still_open(con, a_tab, carry.seen), still_open(con, x_tab, carry.seen)
    rows = held.select("a", "blk", "x", "v", "t").filter(a_open.expr("a") & x_open.expr("x"))
    fetched = False
    if "reference" in m.block:
        anchors = _gained_anchors(con, t, anchor)
        if anchors is None:
            return None
        if anchors.height:
            fetched = True
            # their reference blocks are fetched whole, in place of what is left of them
            whole = anchors.select(
                pl.col("id").cast(pl.Int64).alias("a"), pl.lit("reference").alias("blk")
            )
            rows = rows.join(whole, on=["a", "blk"], how="anti")
            con.execute(
                "create or replace temp table __recon__ref_anchors as select id from anchors"
            )
            pairs = (
                f"(select * from {t.ref_pairs or f'({ref_pairs_sql(t)})'} "
                f"where {anchor} in (select id from __recon__ref_anchors))"
            )
            rows = _with_fetched(con, m, t, rows, m.ref_pairs_sql(t, pairs), rejected_sql)
    crowded, members = carry.crowded, carry.members
    if crowded is not None and crowded.height and members is not None:
        # the crowded names' rows still open, counted: not the open tables' rows of
        # every crowded name joined and counted again (0.05-0.27 s a rule and pass at 1M)
        left, right = (a_open, x_open) if anchor == "l" else (x_open, a_open)
        members = members.filter(
            pl.when(pl.col("l")).then(left.expr("id")).otherwise(right.expr("id"))
        )
        counts = members.group_by("k").len()
        came = counts.filter(pl.col("len") <= m.name_cap)["k"].implode()
        under = crowded.filter(pl.col("k").is_in(came))
        carry.members = members
        if under.height:
            fetched = True
            carry.crowded = crowded.filter(~pl.col("k").is_in(came))
            carry.members = members.filter(~pl.col("k").is_in(came))
            con.execute(
                "create or replace temp table __recon__name_under as "
                "select distinct nb, currency from under"
            )
            only = "(gnb, currency) in (select (nb, currency) from __recon__name_under)"
            name_pairs = m.name_pairs_sql(
                f"({m.name_rows_sql(t.left, only)})", f"({m.name_rows_sql(t.right, only)})"
            )
            rows = _with_fetched(con, m, t, rows, name_pairs, rejected_sql)
    # no block row left, none fetched and no key gained (keys change the scores):
    # the search reads what it read the pass before
    carry.unchanged = (
        not fetched
        and rows.height == held.height
        and (gained := _gained(con, t)) is not None
        and not any(ids.len() for ids in gained.values())
    )
    if carry.unchanged:
        return held
    sizes = rows.group_by("a", "blk").agg(
        pl.len().alias("n"), pl.col("v").sum().alias("total"), pl.col("x").min().alias("x0")
    )
    blocks = (
        rows.join(sizes, on=["a", "blk"])
        .with_columns((pl.col("x") == pl.col("x0")).alias("first"))
        .filter(pl.sql_expr(_REACHABLE))
        .select(held.columns)
        .cast(held.schema)
    )
    return blocks


def _anchor_tables(m: Group, t: Tables) -> tuple[str, str]:
    """The open tables of `m`'s anchors and of its group members."""
    return (t.left, t.right) if m.direction == "one_to_many" else (t.right, t.left)


def _with_fetched(
    con: duckdb.DuckDBPyConnection,
    m: Group,
    t: Tables,
    rows: pl.DataFrame,
    candidates: str,
    rejected_sql: str,
) -> pl.DataFrame:
    """Block rows `rows` (a, blk, x, v, t) and those of the blocks of `candidates`, which
    `rows` holds none of."""
    fresh = _fetch_blocks(con, m, t, candidates, rejected_sql)
    return pl.concat([rows, fresh.select(rows.columns).cast(rows.schema)])


def _gained_anchors(con: duckdb.DuckDBPyConnection, t: Tables, anchor: str) -> pl.DataFrame | None:
    """(id): the anchors (column `anchor` of the reference pairs) of the pairs of a row
    whose reference key came under its cap in this pass's open tables (the rows of
    recon.matchers.base.gain_table); None when there are no such tables."""
    shared = t.ref_pairs or f"({ref_pairs_sql(t)})"
    try:
        anchors: pl.DataFrame = con.sql(
            f"""select distinct {anchor} as id from {shared}
            where l in (select id from {gain_table(t.left_refs)})
               or r in (select id from {gain_table(t.right_refs)})"""
        ).pl()
    except duckdb.CatalogException:
        return None
    return anchors


def _crowded(con: duckdb.DuckDBPyConnection, m: Group, t: Tables) -> pl.DataFrame | None:
    """(side, nb, currency, k): the names with more open rows on a side than a name block
    holds (see Group.name_rows_sql), numbered by `k`."""
    if "counterparty" not in m.block:
        return None
    names = " union all ".join(
        f"""select '{side}' as side, gnb as nb, currency from {tab} where gnb is not null
        group by all having count(*) > {m.name_cap}"""
        for side, tab in (("l", t.left), ("r", t.right))
    )
    crowded: pl.DataFrame = con.sql(
        f"select *, (row_number() over () - 1)::uinteger as k from ({names})"
    ).pl()
    return crowded


def _members(
    con: duckdb.DuckDBPyConnection, t: Tables, crowded: pl.DataFrame | None
) -> pl.DataFrame | None:
    """(l, id, k): the open rows of the names of `crowded` (:func:`_crowded`), by side
    (`l`: of t.left) and name number, which a later pass counts again as they leave.

    Only their ids and numbers: carrying the rows themselves (a quarter of the open rows
    at 1M) raised the 5M run's second-pass peak from 6.26 to 6.99 GiB; with the ids the
    5M run peaked at 6.56 GiB, against 6.62 without them (one run each)."""
    if crowded is None:
        return None
    # read by DuckDB from this variable, not registered (see recon.db)
    names = crowded  # noqa: F841
    members: pl.DataFrame = con.sql(
        f"""select o.side = 'l' as l, o.id, c.k from names c
        join (select 'l' as side, id, gnb, currency from {t.left}
              union all select 'r', id, gnb, currency from {t.right}) o
          on o.side = c.side and o.gnb = c.nb and o.currency = c.currency"""
    ).pl()
    return members.cast({"id": pl.Int64})


def _gained(con: duckdb.DuckDBPyConnection, t: Tables) -> dict[str, pl.Series] | None:
    """The ids of the rows of this pass's gain tables (reference keys that came under
    their cap), by side ("l": of t.left_refs); None when there are no such tables."""
    try:
        gained = con.sql(
            f"select 'l' as side, id from {gain_table(t.left_refs)} "
            f"union all select 'r', id from {gain_table(t.right_refs)}"
        ).pl()
    except duckdb.CatalogException:
        return None
    return {
        side: gained.filter(pl.col("side") == side)["id"].cast(pl.Int64) for side in ("l", "r")
    }


def units_sql(amount: str) -> str:
    """`amount` (a decimal(20,4)) in ten-thousandths, as a bigint.

    Below 10^9 it goes through a decimal(18,4), which DuckDB multiplies in 64 bits:
    the product of the decimal(20,4) itself is a 128-bit decimal(30,4), and its cast
    took 0.5 s per 5M rows against 0.03 s.  The same integer either way (recon_fmt in
    recon.db rounds amounts for the outputs by the same detour)."""
    return (
        f"(case when abs({amount}) < 1000000000 then ({amount}::decimal(18,4) * 10000)::bigint "
        f"else ({amount} * 10000)::bigint end)"
    )


@dataclass(slots=True)
class GroupCarry:
    """What a group rule leaves for its next pass in the same run.

    `blocks`: per anchor, a fingerprint of its block rows (the xor of the hashes
    of its distinct (block kind, member) rows, and their count), of the blocks
    :func:`build_blocks` gives (those the search reads).  `sols`: the exact subsets
    found for each anchor (a, xs, n).  An anchor's solutions depend on the rows of
    its blocks the search reads alone (their amounts never change), so an anchor
    whose fingerprint is unchanged keeps its solutions and is not searched again.
    """

    blocks: pl.DataFrame | None = None  # a, fp, cnt
    sols: pl.DataFrame | None = None  # a, xs, n
    #: The block rows (a, blk, x) the fingerprints were taken of, within one run only
    #: (not kept between runs): a later pass's changed blocks that only lost rows take
    #: their solutions from `sols` (see :func:`carried_solutions`).
    rows: pl.DataFrame | None = None
    #: Within one run: every block row a later pass may read (see :func:`build_blocks`),
    #: the names too crowded for a name block when they were fetched (:func:`_crowded`),
    #: and their rows still open (:func:`_members`).
    held: pl.DataFrame | None = None
    crowded: pl.DataFrame | None = None
    members: pl.DataFrame | None = None
    #: the last closing (see recon.matchers.base.closed_seq) when `held` was read
    seen: int = 0
    #: Within one run: whether this pass's blocks are the pass before's (nothing left
    #: them, nothing joined them, no key was gained), and what the search of the pass
    #: before chose and found ambiguous, which such a pass takes over.
    unchanged: bool = False
    last: tuple[pl.DataFrame, pl.DataFrame] | None = None
    #: Within one run: the features of the pairs of the last pass's solutions (see
    #: :func:`_pair_features`).
    feats: pl.DataFrame | None = None


#: Bumped when the search or the fingerprint changes what a kept carry means.
CARRY_VERSION = 2  # 2: one hash per block row (ef5636a)


def carry_key(rule: Rule, left_side: str) -> str:
    """The key a group rule's carry is kept under between runs: the rule's name and
    matcher (its search bounds and blocking), the pass's left side, the version of the
    fingerprint (DuckDB's hash) and of the search.  A rules file that changes the rule
    gives another key, and its next run searches every anchor."""
    text = f"{CARRY_VERSION}|{duckdb.__version__}|{left_side}|{rule.name}|{rule.matcher!r}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def load_carry(con: duckdb.DuckDBPyConnection, key: str) -> GroupCarry:
    """The carry the last run of the rule with `key` left (tables group_blocks and
    group_solutions), or an empty one.

    An anchor's solutions depend on its block rows alone, and a row's amount never
    changes, so solutions found in an earlier run hold for every anchor whose block
    rows are the same now: the next night searches only the anchors whose blocks
    gained a new row or lost one (at 1M lines with 1% new, the first pass searches
    2,094 of the one-to-many rule's 8,142 anchors and 8,441 of the many-to-one's
    13,870)."""
    blocks: pl.DataFrame = con.sql(
        "select a, fp, cnt from group_blocks where rule_key = ?", params=[key]
    ).pl()
    if blocks.height == 0:
        return GroupCarry()
    sols: pl.DataFrame = con.sql(
        "select a, xs, n from group_solutions where rule_key = ?", params=[key]
    ).pl()
    return GroupCarry(blocks, sols)


def save_carries(
    con: duckdb.DuckDBPyConnection, carries: dict[str, GroupCarry], keep: set[str]
) -> None:
    """Keep `carries` (by key) for the next run, in the run's transaction, in place of
    what the last run kept under their keys; drop what is kept under keys not in `keep`
    (rules since removed or changed)."""
    replaced, kept = list(carries), list(keep)
    for table in ("group_blocks", "group_solutions"):
        con.execute(
            f"delete from {table} where list_contains(?, rule_key) "
            "or not list_contains(?, rule_key)",
            [replaced, kept],
        )
    for key, carry in carries.items():
        if carry.blocks is None or carry.sols is None:
            continue
        # read by DuckDB from these variables, not registered (see recon.db)
        blocks, sols = carry.blocks, carry.sols  # noqa: F841
        con.execute("insert into group_blocks select ?, a, fp, cnt from blocks", [key])
        con.execute("insert into group_solutions select ?, a, xs, n from sols", [key])


def _fingerprints(con: duckdb.DuckDBPyConnection, blocks: pl.DataFrame) -> pl.DataFrame:
    # the (blk, x) rows of an anchor are distinct: xor of their hashes, and their count.
    # One hash of each row, not DuckDB's hash(blk, x), which xors the hashes of its
    # arguments: rows 1 and 2 moving from one block kind to another xored away
    fps: pl.DataFrame = con.sql(
        "select a, bit_xor(hash(hash(blk) + x)) as fp, count(*) as cnt from blocks group by a"
    ).pl()
    return fps


def carried_solutions(
    con: duckdb.DuckDBPyConnection, m: Group, carry: GroupCarry, blocks: pl.DataFrame
) -> pl.DataFrame:
    """(sol, a, xs, n): the solutions of every block, searching only the anchors whose
    block rows changed since the pass before (all of them on the first pass), and of
    those, when the pass before's rows are known (`carry.rows`), only the blocks that
    gained a row (see :func:`_shrunk_solutions`).

    The result equals :func:`find_solutions` over all blocks: the same subsets,
    numbered in the same (a, xs) order.
    """
    assert not m.large, "a large search is not carried (see Group.large)"
    now = _fingerprints(con, blocks)
    if carry.blocks is None or carry.sols is None:
        sols = find_solutions(con, m, blocks)
    else:
        same = now.join(carry.blocks, on=["a", "fp", "cnt"], how="semi").select("a")
        changed = now.join(same, on="a", how="anti").select("a")
        kept = carry.sols.join(same, on="a", how="semi").select("a", "xs")
        if carry.rows is None:
            fresh = find_solutions(con, m, blocks, anchors=changed).select("a", "xs")
        else:
            fresh = _shrunk_solutions(con, m, carry.rows, carry.sols, blocks, changed)
        # read by DuckDB from this variable, not registered (see recon.db)
        kept_and_fresh = pl.concat([kept, fresh])  # noqa: F841
        sols = con.sql(
            """select row_number() over (order by a, xs) as sol, a, xs,
                      count(*) over (partition by a) as n
            from kept_and_fresh"""
        ).pl()
    carry.blocks = now
    carry.sols = sols.select("a", "xs", "n")
    carry.rows = blocks.select("a", "blk", "x")
    return sols


def _shrunk_solutions(
    con: duckdb.DuckDBPyConnection,
    m: Group,
    rows: pl.DataFrame,
    sols: pl.DataFrame,
    blocks: pl.DataFrame,
    changed: pl.DataFrame,
) -> pl.DataFrame:
    """(a, xs), each once: the solutions of the blocks of the anchors in `changed`,
    given the pass before's block rows `rows` (a, blk, x) and solutions `sols`.

    A block now read whose rows were all in that block before (it only lost rows;
    searched before, since `rows` holds only what the search read) has for
    solutions those of the anchor before that lie inside it: whether the kernel finds
    a subset depends on its members' amounts and order alone (see recon.subsets), and
    rows leaving keep the others' order.  The one exception is the whole block of
    more than max_group rows that sums to the anchor's amount, found only as a
    whole block.  The other blocks (new, or grown: a reference key regained, a block
    now small enough to be read) are searched.  In the 1M full run's second pass of
    the one-to-many rule, 4,692 of the 10,042 changed anchors had only lost rows, and
    searching them took 0.46 s of the search's 1.04 s; taking their solutions, 0.09 s.
    """
    now = blocks.join(changed, on="a", how="semi")
    grown = now.join(rows, on=["a", "blk", "x"], how="anti").select("a", "blk").unique()
    searched = find_solutions(con, m, now.join(grown, on=["a", "blk"], how="semi"))
    shrunk = now.join(grown, on=["a", "blk"], how="anti")
    before = (
        sols.join(changed, on="a", how="semi")
        .select("a", "xs", pl.col("xs").list.len().alias("k"))
        .filter(pl.col("k") <= m.max_group)
        .with_row_index("s")
    )
    inside = (
        before.explode("xs")
        .join(shrunk.select("a", "blk", pl.col("x").alias("xs")), on=["a", "xs"])
        .group_by("s", "blk")
        .agg(pl.len().alias("in"), pl.first("k"))
        .filter(pl.col("in") == pl.col("k"))
        .select("s")
    )
    whole = (
        shrunk.filter((pl.col("n") > m.max_group) & (pl.col("total") == pl.col("t")))
        .sort("a", "blk", "x")
        .group_by("a", "blk", maintain_order=True)
        .agg(pl.col("x").alias("xs"))
    )
    return pl.concat(
        [
            before.join(inside, on="s", how="semi").select("a", "xs"),
            whole.select("a", "xs"),
            searched.select("a", "xs"),
        ]
    ).unique()


def find_solutions(
    con: duckdb.DuckDBPyConnection,
    m: Group,
    blocks: pl.DataFrame,
    anchors: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """(sol, a, xs, n) rows: every exact-sum subset of every block of `blocks` (of the
    anchors in column `a` of `anchors` only, when given), numbered in (a, xs) order;
    n counts the subsets of the anchor.

    The compiled kernel (:mod:`recon.subsets`) searches the blocks; a subset found
    in blocks of two kinds (reference and counterparty) is one solution.
    """
    only = " and a in (select a from anchors)" if anchors is not None else ""
    eligible = eligible_sql(m) + only
    rows = con.sql(
        f"select a, x, v, t, first from blocks where {eligible} order by a, blk, x"
    ).fetchnumpy()
    a, x = (np.asarray(rows[c], dtype=np.int64) for c in ("a", "x"))
    starts = np.append(np.flatnonzero(np.asarray(rows["first"], dtype=bool)), len(a))
    # imported here: loading the kernel is numba's start-up, begun by recon.warmup
    from recon.subsets import exact_subsets

    block, offsets, members = exact_subsets(starts, rows["v"], rows["t"], m.max_group)
    if m.large:
        block, offsets, members = _with_large(
            (block, offsets, members), starts, np.asarray(rows["v"], dtype=np.int64),
            np.asarray(rows["t"], dtype=np.int64), m.max_group,
        )
    found = pa.table(  # noqa: F841
        {
            "a": _int64s(a[starts[block]]),
            "xs": pa.LargeListArray.from_arrays(_int64s(offsets), _int64s(x[members])),
        }
    )
    # `found` is read by DuckDB from this variable, not registered (see recon.db)
    sols: pl.DataFrame = con.sql(
        """with s as (select distinct a, xs from found),
        counted as (select a, xs, count(*) over (partition by a) as n from s)
        select row_number() over (order by a, xs) as sol, a, xs, n
        from counted order by sol"""
    ).pl()
    return sols


Subsets = tuple[np.ndarray, np.ndarray, np.ndarray]


def _with_large(
    found: Subsets, starts: np.ndarray, v: np.ndarray, t: np.ndarray, max_group: int
) -> Subsets:
    """`found` (block of each subset, offsets, member rows: recon.subsets.exact_subsets)
    and the subsets of more than `max_group` rows of the blocks starting at `starts`,
    each found by what it leaves of its block: one to `max_group` rows summing to the
    block's total less its target (12 of 14 cheques are the 2 others).  Members in block
    order, as the kernel gives them."""
    from recon.subsets import exact_subsets

    sizes = np.diff(starts)
    big = np.flatnonzero(sizes > max_group)
    if big.size == 0:
        return found
    lens = sizes[big]
    ends = np.cumsum(lens)
    begins = ends - lens
    # the rows of the big blocks, one after the other, and what their leftovers sum to
    rows = np.arange(ends[-1]) - np.repeat(begins, lens) + np.repeat(starts[big], lens)
    totals = np.add.reduceat(v, starts[:-1])[big]  # every block holds rows
    rest = np.repeat(totals - t[starts[big]], lens)
    sub = np.append(begins, ends[-1])
    c_block, c_offsets, c_members = exact_subsets(sub, v[rows], rest, max_group)
    single = np.flatnonzero(v[rows] == rest)
    c_block = np.concatenate([c_block, np.repeat(np.arange(big.size), lens)[single]])
    c_sizes = np.concatenate([np.diff(c_offsets), np.ones(single.size, dtype=np.int64)])
    c_members = np.concatenate([c_members, single])
    # a leftover of the whole block (its sum is the target's 0) or of all but one row
    # leaves no group of more than max_group
    keep = lens[c_block] - c_sizes > max_group
    owner = np.repeat(np.arange(c_block.size), c_sizes)
    c_members, owner = c_members[keep[owner]], owner[keep[owner]]
    renumber = np.cumsum(keep) - 1
    c_block, owner = c_block[keep], renumber[owner]
    width = int(lens.max())
    left_out = np.zeros((c_block.size, width), dtype=bool)
    left_out[owner, c_members - sub[c_block][owner]] = True
    inside = np.arange(width)[None, :] < lens[c_block][:, None]
    taken = inside & ~left_out
    members = rows[(sub[c_block][:, None] + np.arange(width)[None, :])[taken]]
    block, offsets, old_members = found
    counts = np.concatenate([np.diff(offsets), taken.sum(axis=1)])
    return (
        np.concatenate([block, big[c_block]]),
        np.append(0, np.cumsum(counts)),
        np.concatenate([old_members, members]),
    )


def _int64s(values: np.ndarray) -> pa.Array:
    """`values` as an Arrow int64 array over their own buffer: pa.array() asks whether
    they are a pandas object, and importing pandas to ask took 0.24 s of the first
    group rule of every run."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def run_group_rule(
    con: duckdb.DuckDBPyConnection,
    rule: Rule,
    t: Tables,
    rejected_sql: str,
    carry: GroupCarry | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Chosen groups (sol, a, xs, score, explanation) and ambiguous anchors.

    Returns (chosen, ambiguous); the caller records matches.
    With `carry` (the passes of one run) only the anchors whose blocks changed
    since the pass before are searched again (see :func:`carried_solutions`).
    """
    m = rule.matcher
    assert isinstance(m, Group)
    blocks = build_blocks(con, m, t, rejected_sql, carry)
    if carry is not None and carry.unchanged and carry.last is not None:
        # the same blocks, rows and keys: the search and its scores as the pass before
        return carry.last
    found = _search(con, rule, t, blocks, carry)
    if carry is not None:
        carry.last = found
    return found


def _search(
    con: duckdb.DuckDBPyConnection,
    rule: Rule,
    t: Tables,
    blocks: pl.DataFrame,
    carry: GroupCarry | None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """run_group_rule's (chosen, ambiguous) from the blocks it built."""
    m = rule.matcher
    assert isinstance(m, Group)
    sols = (
        find_solutions(con, m, blocks)
        if carry is None
        else carried_solutions(con, m, carry, blocks)
    )
    del blocks
    # a group dated in a closed month is no solution (the carry keeps every subset found)
    fewer = drop_frozen(con, sols, ("a", "xs"))
    sizes = m.sizes_sql(_anchor_tables(m, t)[0])
    if sizes is not None and fewer.height:
        # a group of as many rows as its anchor states
        stated = con.sql(sizes).pl().cast({"a": pl.Int64, "k": pl.Int64})
        fewer = fewer.join(stated, on="a").filter(pl.col("xs").list.len() == pl.col("k"))
        fewer = fewer.drop("k")
    if fewer.height < sols.height:
        sols = fewer.with_columns(pl.len().over("a").cast(sols.schema["n"]).alias("n"))
    empty = pl.DataFrame(
        schema={"a": pl.Int64, "alternatives": pl.List(pl.Int64), "best": pl.Float64}
    )
    if sols.height == 0:
        if carry is not None:
            # features kept from before this pass would miss the keys it gained
            carry.feats = None
        return sols.with_columns(pl.lit(0.0).alias("score")), empty
    too_many = sols.filter(pl.col("n") > MAX_SOLUTIONS)
    sols = sols.filter(pl.col("n") <= MAX_SOLUTIONS)
    scored = _score_solutions(con, sols, rule, t, carry)
    chosen, ambiguous = _choose(scored, rule.margin)
    if too_many.height:
        extra = too_many.group_by("a").agg(
            pl.col("xs")
            .list.explode(keep_nulls=False, empty_as_null=False)
            .unique()
            .sort()
            .alias("alternatives"),
            pl.lit(0.0).alias("best"),
        )
        ambiguous = pl.concat([ambiguous, extra.select(ambiguous.columns)])
    return chosen, ambiguous


def _score_solutions(
    con: duckdb.DuckDBPyConnection,
    sols: pl.DataFrame,
    rule: Rule,
    t: Tables,
    carry: GroupCarry | None = None,
) -> pl.DataFrame:
    """Each solution's score and explanation, from the features of its (anchor, member)
    pairs; with `carry` (the passes of one run), a pair scored by the pass before is
    not scored again (:func:`_pair_features`)."""
    m = rule.matcher
    assert isinstance(m, Group)
    one_left = m.direction == "one_to_many"
    members = sols.explode("xs").rename({"xs": "x"})
    pairs = members.select(
        pl.col("a" if one_left else "x").alias("l"), pl.col("x" if one_left else "a").alias("r")
    ).unique()
    feats = _pair_features(con, rule, t, pairs, carry)
    feats = feats.select(
        pl.col("l" if one_left else "r").alias("a"),
        pl.col("r" if one_left else "l").alias("x"),
        "s_date",
        "s_ref",
        "s_name",
        "date_diff",
        "shares_ref",
        "name_sim",
    )
    w = rule.weights
    per_sol = (
        members.join(feats, on=["a", "x"])
        .group_by("sol")
        .agg(
            pl.col("a").first(),
            pl.col("x").sort().alias("xs"),
            pl.col("s_date").mean(),
            pl.col("s_ref").mean(),
            pl.col("s_name").mean(),
            pl.col("date_diff").abs().max().alias("max_days"),
            pl.col("shares_ref").sum().alias("with_ref"),
            pl.col("name_sim").min().alias("min_name"),
        )
    )
    total = sum(w.values())
    score = (
        w["amount"]
        + w["date"] * pl.col("s_date")
        + w["reference"] * pl.col("s_ref")
        + w["name"] * pl.col("s_name")
    ) / total
    return per_sol.with_columns(
        score.round(4).alias("score"),
        pl.format(
            "amounts sum exactly ({} rows); dates within {}d; {} rows share a reference; "
            "names at least {}%",
            pl.col("xs").list.len(),
            pl.col("max_days"),
            pl.col("with_ref"),
            pl.col("min_name").round(0).cast(pl.Int64),
        ).alias("explanation"),
    )


#: What a solution's score reads of the features of its pairs (see recon.scoring.score_pairs).
_FEATURES = ("l", "r", "s_date", "s_ref", "s_name", "date_diff", "shares_ref", "name_sim")


def _pair_features(
    con: duckdb.DuckDBPyConnection,
    rule: Rule,
    t: Tables,
    pairs: pl.DataFrame,
    carry: GroupCarry | None,
) -> pl.DataFrame:
    """The features (_FEATURES) of `pairs` (l, r).  With `carry`, those of the pairs the
    pass before scored are taken from it (`carry.feats`), but for the pairs of a row that
    gained a reference key since (this pass's gain tables): a pair's features read its
    two rows, which do not change, and their keys, which only gain (a key coming under
    its cap, see recon.pipeline.prepare_open_tables).  A pass that scores nothing keeps
    no features (see _search), nor does one whose blocks did not change need any: it
    gained no key.  Scoring the solutions took the group rules' passes seven to thirteen
    of the 5M run 0.13 s a rule and pass (a profile of one run)."""
    m = rule.matcher
    assert isinstance(m, Group)
    kept = None
    if carry is not None and carry.feats is not None:
        gained = _gained(con, t)
        if gained is not None:
            kept = carry.feats.filter(
                ~pl.col("l").is_in(gained["l"].implode())
                & ~pl.col("r").is_in(gained["r"].implode())
            ).join(pairs, on=["l", "r"], how="semi")
            pairs = pairs.join(kept, on=["l", "r"], how="anti")
    feats = score_pairs(
        con,
        t,
        pairs,
        tolerance=m.amount_tolerance(),
        window=m.date,
        text=(),
        weights=rule.weights,
        explain=False,
    ).select(_FEATURES)
    if kept is not None:
        feats = pl.concat([kept, feats.cast(kept.schema)])
    if carry is not None:
        carry.feats = feats
    return feats


def _choose(scored: pl.DataFrame, margin: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Best solution per anchor unless a rival is within `margin` or claims the same rows."""
    ranked = scored.sort(["a", "score", "sol"], descending=[False, True, False]).with_columns(
        pl.col("score").first().over("a").alias("best"),
        pl.col("score").slice(1, 1).first().over("a").alias("second"),
        pl.int_range(pl.len()).over("a").alias("rank"),
    )
    near = ranked.filter(pl.col("score") >= pl.col("best") - margin)
    tied = ranked.filter(
        pl.col("second").is_not_null() & (pl.col("best") - pl.col("second") < margin)
    )
    amb = tied.filter(pl.col("score") >= pl.col("best") - margin)
    top = ranked.filter((pl.col("rank") == 0) & ~pl.col("a").is_in(tied["a"].unique().implode()))
    # a row claimed by the chosen groups of two anchors: neither group is safe
    claimed = top.explode("xs").group_by("xs").agg(pl.col("a").n_unique().alias("k"))
    contested = claimed.filter(pl.col("k") > 1)["xs"]
    clash = top.filter(pl.col("xs").list.eval(pl.element().is_in(contested.implode())).list.any())
    chosen = top.filter(~pl.col("sol").is_in(clash["sol"].implode()))
    amb_all = pl.concat([amb, near.filter(pl.col("a").is_in(clash["a"].implode()))])
    ambiguous = amb_all.group_by("a").agg(
        pl.col("xs")
        .list.explode(keep_nulls=False, empty_as_null=False)
        .unique()
        .sort()
        .alias("alternatives"),
        pl.col("score").max().alias("best"),
    )
    return chosen, ambiguous
