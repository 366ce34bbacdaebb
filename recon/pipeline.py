"""Runs the rules of a RuleSet in order over the still-open rows.

For each rule: the matcher's SQL gives candidate pairs; they are scored in
bulk (:mod:`recon.scoring`), filtered by the rule's text thresholds and
``suggest_above``, assigned one-to-one optimally (:mod:`recon.assign`), and
recorded.  Rows matched by a rule leave the open tables, so later rules
never see them (Splink's waterfall).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import TypeVar

import duckdb
import numpy as np
import polars as pl

from recon import matchinfo
from recon.assign import Assignment, assign, assign_near, big_components, components
from recon.config import Rule, RuleSet
from recon.db import (
    LEFT_SIDES,
    _now,
    decided_sql,
    scalar,
    set_meta,
    sql_literal,
    written_join_order,
)
from recon.groups import GroupCarry, carry_key, load_carry, run_group_rule, save_carries
from recon.matchers.base import (
    RUN_CACHE,
    IdSet,
    Matcher,
    Tables,
    closed_seq,
    gain_table,
    gone_sql,
    log_closing,
    new_closings,
    ref_pairs_sql,
    still_open,
)
from recon.matchers.group import Group
from recon.matchers.reversal import Reversal
from recon.periods import drop_frozen, mark_frozen
from recon.progress import start
from recon.refs import reference_keys
from recon.scoring import (
    HAS_NAME_SQL,
    NAME_SIMS_SQL,
    NAMES,
    RAW_TEXT,
    content_key_sql,
    drop_unlike_names,
    explained,
    name_key_sql,
    names_sql,
    score_in_chunks,
    with_shared_refs,
)

T = Tables(ref_pairs="__recon__ref_pairs_all")

#: A reference key on more rows than this (on one side) is not used to pair rows.
MAX_REF_ROWS = 50

#: Left rows whose reference features changed since the pass before (see
#: prepare_open_tables).
REGAINED = "__recon__regained"

#: The open left rows a later pass builds candidates for (see run_rule).
REGROW = "__recon__regrow"


#: Right rows counted per slot (kind, cur, k, wk, nb, tok, n), as a frame (see
#: Tables.counts).
Counts = pl.DataFrame


@dataclass(slots=True)
class Carried:
    """What a rule of an incremental matcher leaves for its next pass: the pairs it
    kept (scored, above its thresholds) and the left rows a crowding bound cut,
    with their level (see Matcher.bounds_sql)."""

    pairs: pl.DataFrame
    levels: pl.DataFrame  # id, level
    #: the last closing (see recon.matchers.base.closed_seq) when the pairs were built
    #: and the levels counted
    seen: int = 0
    #: the pairs given to the last assignment that touch a row it matched (dropped
    #: from `pairs`), and what it left undecided: the suggestions it deferred, the
    #: ambiguous rows it recorded (id, side, alternatives, best, rule) and the pairs
    #: it withheld.  A later pass takes these over for the pairs it does not decide
    #: again (see :class:`Plan`).
    dropped: pl.DataFrame | None = None
    suggested: pl.DataFrame | None = None
    ambiguous: pl.DataFrame | None = None
    withheld: pl.DataFrame | None = None
    #: the left rows of the last assignment's components decided by the mutual-best
    #: rule (see recon.assign.big)
    big: pl.Series | None = None
    #: the right rows counted per slot when the levels were counted, for a matcher whose
    #: bounds read such counts (see Tables.counts): the next count takes these less the
    #: rows that left since (see _counted)
    counts: Counts | None = None
    #: the columns the bounds read (BOUND_COLUMNS) of the rows of `levels`, where the
    #: levels are read from `counts`: the next count reads them from here, not from
    #: the open table (see _recount)
    bounded: pl.DataFrame | None = None


@dataclass(slots=True)
class ReversalCarry:
    """A reversal rule's pairs of each role (left, right: l, r, days), for its next pass.

    A reversal pair depends on its two rows alone, and rows only leave during a run:
    a later pass's pairs are those of the pass before whose rows are both still open,
    not a self-join of the open table again (the 1M benchmark's later passes spent
    0.72 s on it, for a handful of matches: 0.09 s since, A/B medians)."""

    pairs: dict[str, pl.DataFrame] = field(default_factory=dict)
    #: per role, the last closing (see recon.matchers.base.closed_seq) when they were found
    seen: dict[str, int] = field(default_factory=dict)


#: What a rule leaves for its next pass in the same run (see run_rule).
Carry = Carried | GroupCarry | ReversalCarry


@dataclass(slots=True)
class RuleStats:
    """What one rule did in this run."""

    name: str
    matcher: str
    candidates: int = 0
    matches: int = 0
    auto: int = 0
    suggested: int = 0
    ambiguous: int = 0
    seconds: float = 0.0


@dataclass(slots=True)
class PipelineResult:
    """Per-rule statistics of one pipeline run."""

    rules: list[RuleStats] = field(default_factory=list)
    left_open: int = 0
    right_open: int = 0
    passes: int = 0
    #: the matches of the last pass when the passes stopped at MAX_PASSES still finding
    #: some (0: the last pass found nothing, a rerun matches nothing more)
    unsettled: int = 0


def open_items_sql(
    sides: str | tuple[str, ...],
    as_of: date | None,
    left_side: str = "bank",
    *,
    at_cutoff: bool = False,
) -> str:
    """Rows of `sides` (one side or several) not in an active match of this pass, not
    written off or ignored.

    A ledger receipt matched to the bank is still open for agreeing a customer's
    statement: each pass (bank, statement) has its own matches, and all of them share
    the ledger-only ones.  Both sides of a pass are read by one query where they can
    be: each query joins every match member with its match.

    With `at_cutoff` (the reconciliation statement's view of as_of) a match closes its
    rows only when its last member is dated on or before as_of: a database matched
    since holds matches whose other side came after the cut-off, and at the cut-off
    their rows were open (as a run at that date finds them).  Needs match_info of
    every match (:func:`recon.matchinfo.refresh`).
    """
    names = (sides,) if isinstance(sides, str) else sides
    cutoff = f"and t.date <= date '{as_of.isoformat()}'" if as_of else ""
    members = "select y.match_id from match_members y join txns x on x.txn_id = y.txn_id"
    if left_side == "bank":
        # the bank pass owns every match except those with a statement line and no
        # bank line (ledger-only reversals included); with no statement lines at all
        # this is decided without grouping two million members
        stmt = f"{members} where x.side = 'statement'"
        own = (
            f"mm.match_id not in (({stmt}) except "
            f"({members} where x.side = 'bank' and y.match_id in ({stmt})))"
        )
    else:
        # and the ledger-only matches (reversals of ledger rows no pass matched, see
        # reversal_pairs), which every pass's outputs show
        own = (f"(mm.match_id in ({members} where x.side = '{left_side}') "
               f"or mm.match_id not in ({members} where x.side <> 'ledger'))")
    if at_cutoff and as_of:
        # few matches end after the cut-off: a small set, tested on the same scan
        own += (
            " and mm.match_id not in (select match_id from match_info "
            f"where last_date > date '{as_of.isoformat()}')"
        )
    return f"""
        select t.* from txns t
        where t.side in ({", ".join(f"'{s}'" for s in names)}) {cutoff}
          and t.txn_id not in (
              select mm.txn_id from match_members mm
              where {matchinfo.active_member_sql()} and mm.txn_id is not null and {own})
          and t.txn_id not in ({decided_sql()})"""


#: The columns of txns the open tables leave out: the free text (read from txns where a
#: rule or the diagnosis wants it) and what no rule reads (the name's alternative form is
#: in the names table; the dates other than `date`, the document type, the source line).
LEFT_OUT = (*RAW_TEXT, "name_alt", "value_date", "due_date", "doc_type", "file_id", "line")

#: The open rows' ids and sides, of both sides at once (see open_items_sql).
OPEN_IDS = "__recon__open_ids"


def prepare_open_tables(
    con: duckdb.DuckDBPyConnection,
    ruleset: RuleSet,
    *,
    left_side: str,
    as_of: date | None,
    fresh: bool = True,
) -> None:
    """Materialise the open left/right rows, their names, reference keys and the FX rates.

    With `fresh` false (a later pass of the same run) the open tables are kept: every
    match recorded since deleted its rows from them; only the reference caps, which
    depend on which rows are still open, are brought up to date (:func:`_recap`).  Caps
    only relax as rows leave, so a later pass also records which open rows may score
    differently now: table REGAINED holds the left rows that gained a reference key or
    hold a key some row gained (see :func:`run_rule`).
    """
    con.execute(
        "create or replace temp table __recon__fx "
        "(from_cur varchar, to_cur varchar, rate decimal(20,10))"
    )
    if ruleset.fx_rates:
        con.executemany("insert into __recon__fx values (?, ?, ?)", list(ruleset.fx_rates))
    sides = ((T.left, T.left_refs, left_side), (T.right, T.right_refs, "ledger"))
    if fresh:
        for (cached,) in con.execute(
            "select table_name from duckdb_tables() where temporary "
            "and starts_with(table_name, ?)", [RUN_CACHE]
        ).fetchall():
            con.execute(f"drop table {cached}")
        # the open ids of both sides first, then each open table once with its names:
        # every version of a temp table made inside the run's transaction is kept until
        # the commit
        con.execute(
            f"create or replace temp table {OPEN_IDS} as select txn_id, side "
            f"from ({open_items_sql((left_side, 'ledger'), as_of, left_side)})"
        )
        con.execute(NAME_SIMS_SQL)
        con.execute(f"create or replace temp table {REJECTED} as {_rejected_sql()}")
        con.execute(f"drop table if exists {GONE}")
        con.execute(
            f"create or replace temp table {NAMES} as "
            + names_sql(f"(select * from txns where txn_id in (select txn_id from {OPEN_IDS}))")
        )
        _scan_references(con, ruleset)
        for table, refs, side in sides:
            # the keys of the open rows, once per run, those over the cap moved aside
            # (later passes take the keys of the rows still open from these tables)
            con.execute(
                f"create or replace temp table {refs} as select txn_id as id, ref "
                f"from ref_keys where txn_id in "
                f"(select txn_id from {OPEN_IDS} where side = '{side}')"
            )
            _cap(con, refs)
            con.execute(f"create or replace temp table {gain_table(refs)} as select * from {refs} limit 0")
            # the open rows first, then their names: joined in one step, DuckDB paired
            # every stored row with its name before dropping the matched ones (3x slower);
            # has_ref made with the table, not set by an update of most of its rows
            con.execute(
                f"""create or replace temp table {table} as
                with o as materialized (
                    select * from txns where txn_id in (
                        select txn_id from {OPEN_IDS} where side = '{side}'))
                select o.txn_id as id, o.* exclude (txn_id, {', '.join(LEFT_OUT)}),
                       o.txn_id in (select id from {refs}) as has_ref,
                       {HAS_NAME_SQL.format(a="o")} as has_name,
                       n.nid, n.nb, n.gnb, n.toks, {content_key_sql("o")} as ckey
                from o join {NAMES} n on {name_key_sql("o")}"""
            )
    if fresh:
        # rows only leave: those of a later pass are among the first's
        mark_frozen(con, (T.left, T.right))
        con.execute(
            f"create temp table {GONE} as select {', '.join(BOUND_COLUMNS)}, "
            f"0::bigint as seq from {T.right} limit 0"
        )
        new_closings(con, (T.left, T.right))
        # the keys are fixed until the next pass: the rules keep the open pairs of this join
        con.execute(f"create or replace temp table {T.ref_pairs} as {ref_pairs_sql(T)}")
    else:
        # what the rows that left since the pass before changed (see RECAPPED)
        since = int(scalar(con, f"select seq from {RECAPPED}"))
        for table, refs, _ in sides:
            _recap(con, table, refs, since)
        _update_ref_pairs(con, since)
    con.execute(f"create or replace temp table {RECAPPED} as select {closed_seq(con)} as seq")
    con.execute(
        f"""create or replace temp table {REGAINED} as
        select id from {gain_table(T.left_refs)}
        union select id from {T.left_refs}
              where ref in (select ref from {gain_table(T.left_refs)} union select ref from {gain_table(T.right_refs)})"""
    )


#: (seq): the last closing (see recon.matchers.base.closed_seq) when the reference keys
#: and their pairs were last brought up to date; the next pass's :func:`_recap` and
#: :func:`_update_ref_pairs` take the rows that left since.
RECAPPED = "__recon__recapped"


def _cap(con: duckdb.DuckDBPyConnection, refs: str) -> None:
    """Make `refs`_over, the keys of `refs` that more than MAX_REF_ROWS rows carry, and
    move their rows from `refs` to `refs`_capped.  A key shared by many rows (a bank
    code, a customer number on every line) identifies nothing, and joining on it
    would pair everything with everything.

    The keys over the cap are few: found by a grouping, their rows moved by a join
    with them.  The rows under the cap are not copied from a table of all the keys:
    the run's transaction keeps every table it makes until the commit, and a copy of
    the open rows' keys held 0.55 GiB of the 5M benchmark's memory limit to its end."""
    con.execute(
        f"""create or replace temp table {refs}_over as
        select ref from {refs} group by ref having count(*) > {MAX_REF_ROWS}"""
    )
    con.execute(
        f"""create or replace temp table {refs}_capped as
        select a.id, a.ref from {refs} a
        semi join {refs}_over o on o.ref is not distinct from a.ref"""
    )
    con.execute(f"delete from {refs} a using {refs}_over o where o.ref is not distinct from a.ref")


def _recap(con: duckdb.DuckDBPyConnection, table: str, refs: str, since: int) -> None:
    """A later pass's caps: `refs` as :func:`_cap` would leave them over the keys
    of the rows still in open table `table`, and gain_table(`refs`), the rows of the keys
    that came under the cap since the pass before; `since`: the last closing when
    they were brought up to date before.

    Rows only leave, so a key's count only falls: a key under the cap stays under it
    (its rows that left leave `refs`), and only the keys over it, whose open rows
    `refs`_capped holds, are counted again; their rows move to `refs` when they come
    under.  Both tables lose the rows that left since `since`, named by the rows that
    left (a few in a late pass) or by those still open (fewer in the second pass):
    comparing them with the open table each pass, and filtering the over-cap rows by
    it into a table, took 0.39-0.43 s of each of the 5M run's last passes."""
    gone = gone_sql(con, table, since)
    con.execute(f"delete from {refs} where {gone}")
    con.execute(f"delete from {refs}_capped where {gone}")
    con.execute(
        f"""create or replace temp table {gain_table(refs)} as
        select a.id, a.ref from {refs}_capped a
        semi join (select ref from {refs}_capped group by ref
                   having count(*) <= {MAX_REF_ROWS}) k on k.ref is not distinct from a.ref"""
    )
    con.execute(
        f"""delete from {refs}_capped a using (select distinct ref from {gain_table(refs)}) g
        where g.ref is not distinct from a.ref"""
    )
    con.execute(f"insert into {refs} select id, ref from {gain_table(refs)}")
    # has_ref only turns true in a later pass: the caps only relax
    con.execute(f"update {table} set has_ref = true where id in (select id from {gain_table(refs)})")


def _update_ref_pairs(con: duckdb.DuckDBPyConnection, since: int) -> None:
    """Table T.ref_pairs as ref_pairs_sql(T) makes it after this pass's :func:`_recap`,
    from what it held: the pairs of the rows that left since closing `since` go, and
    the pairs of the keys that came under their caps come (each pair once).  Rows only
    leave and keys only come under: every other pair stands.  Made again from the keys
    each pass, the table took 0.23-0.29 s of each of the 5M run's last passes."""
    con.execute(
        f"""delete from {T.ref_pairs}
        where {gone_sql(con, T.left, since, "l")} or {gone_sql(con, T.right, since, "r")}"""
    )
    con.execute(
        f"""insert into {T.ref_pairs}
        with n as materialized (
            select distinct lr.id as l, rr.id as r
            from {T.left_refs} lr join {T.right_refs} rr on lr.ref = rr.ref
            where lr.ref in (select ref from {gain_table(T.left_refs)}
                             union all select ref from {gain_table(T.right_refs)}))
        select l, r from n
        where (l, r) not in (select (l, r) from {T.ref_pairs} where l in (select l from n))"""
    )


def _scan_references(con: duckdb.DuckDBPyConnection, ruleset: RuleSet) -> None:
    """Bring table ref_keys up to date: the keys of rows stored since the last scan.

    Regexes are the costly part of a run's set-up; stored rows never change, so
    each row is scanned once (a night scans its new lines), and all again only
    when the rules' reference patterns change.
    """
    sha = hashlib.sha256(
        repr(
            (REF_KEYS_VERSION, [(p.name, p.regex, p.normalise) for p in ruleset.references])
        ).encode()
    ).hexdigest()
    if scalar(con, "select value from meta where key = 'ref_keys_sha'") != sha:
        con.execute("delete from ref_keys")
        set_meta(con, "ref_keys_sha", sha)
        set_meta(con, "ref_keys_upto", "0")
    upto = int(scalar(con, "select value from meta where key = 'ref_keys_upto'") or 0)
    last = scalar(con, "select max(txn_id) from txns")
    if last is None or last <= upto:
        return
    # a million rows at a time: the text of a 5M-line load is not held in memory at once
    for lo in range(upto, last, SCAN_ROWS):
        frame = con.sql(
            f"select txn_id as id, reference, description from txns "
            f"where txn_id > {lo} and txn_id <= {lo + SCAN_ROWS}"
        ).pl()
        _insert_keys(con, frame, ruleset)
        del frame
    set_meta(con, "ref_keys_upto", str(last))


def _insert_keys(con: duckdb.DuckDBPyConnection, frame: pl.DataFrame, ruleset: RuleSet) -> None:
    """Store the reference keys of `frame`'s rows in ref_keys.  A function of its own:
    its frames are freed when it returns (see recon.db), before the next chunk is read."""
    # read by DuckDB from this variable, not registered (see recon.db)
    keys = reference_keys(frame, ruleset.references)  # noqa: F841
    con.execute("insert into ref_keys select id, ref from keys")


SCAN_ROWS = 1_000_000


#: Bump when reference_keys() changes what it extracts: stored keys are then rebuilt.
REF_KEYS_VERSION = 3


#: The (l, r) pairs a reviewer rejected, made once per run (see prepare_open_tables).
REJECTED = "__recon__rejected"


def rejected_pairs_sql() -> str:
    """(l, r) pairs a reviewer rejected: never proposed again."""
    return f"select l, r from {REJECTED}"


def _rejected_sql() -> str:
    """The query of table REJECTED.  Made once per run, not per rule: the rules join in
    the order written (see db.written_join_order), and written so this query builds a
    hash table of every match member, 0.09 s at a million matches, for each rule and pass."""
    return """select a.txn_id as l, b.txn_id as r
        from decisions d join match_members a on a.match_id = d.match_id and a.role = 'left'
        join match_members b on b.match_id = d.match_id and b.role = 'right'
        where d.active and d.decision = 'reject'"""


def run_rule(
    con: duckdb.DuckDBPyConnection,
    rule: Rule,
    index: int,
    run_id: str,
    memo: dict[int, Carry] | None = None,
) -> RuleStats:
    """Run one rule over the open tables and record its matches.

    With `memo` (the passes of one run), an incremental matcher's rule leaves its
    kept pairs there, and its next pass builds and scores pairs only for the left
    rows whose candidates or scores may have changed (see :func:`_regrow`): a pair's
    score depends on its two rows alone, and the pass before kept every pair of
    every other row that can still be kept.
    """
    started = time.perf_counter()
    stats = RuleStats(rule.name, rule.matcher.name)
    m = rule.matcher
    if isinstance(m, Group):
        gcarry = _held(memo, index, m, GroupCarry)
        return _run_group(con, rule, index, run_id, stats, started, gcarry)
    if isinstance(m, Reversal):
        rcarry = _held(memo, index, m, ReversalCarry)
        return _run_reversal(con, rule, index, run_id, stats, started, rcarry)
    carried = memo.get(index) if memo is not None and m.incremental else None
    assert carried is None or isinstance(carried, Carried)
    # taken before the open tables are read: the rows that leave from now on (right rows
    # leaving lower the levels counted now)
    seen = closed_seq(con) if memo is not None and m.incremental else 0
    tables, levels, paired = T, None, None
    regrow: pl.Series | None = None
    counts: Counts | None = None
    bounded: pl.DataFrame | None = None
    if carried is not None:
        # which rows of the rule's pass before are open, read once: nothing leaves
        # before the rule records
        left = still_open(con, T.left, carried.seen)
        right = still_open(con, T.right, carried.seen)
        levels, regrow, counts, bounded = _regrow(con, m, carried, left)
        # the bounds were just counted for these rows: the candidates read them, by the
        # name of _build_pairs's argument `levels` (see recon.db)
        tables = Tables(REGROW, T.right, T.left_refs, T.right_refs, "levels", T.ref_pairs)
    elif memo is not None and m.incremental:
        # the first pass: the candidates and the bounds from one query
        paired = m.paired_sql(T)
        levels = None if paired else _NO_LEVELS
    if carried is not None and regrow is not None and regrow.is_empty():
        # no open row's candidates changed: nothing to build or score
        pairs, candidates = carried.pairs.clear(), 0
    else:
        pairs, candidates, levels = _build_pairs(con, m, rule, tables, paired, levels)
    stats.candidates = candidates
    plan: Plan | None = None
    if carried is not None:
        assert regrow is not None
        pairs, plan = _with_carried(pairs, carried, regrow, left, right)
    carry: Carried | None = None
    if memo is not None and levels is not None:
        carry = memo[index] = Carried(pairs, levels, seen, counts=counts, bounded=bounded)
    if carried is not None:
        # `pairs` holds what is still open of the pass before's pairs: only what that
        # assignment left undecided is read from here on (plan.replay).  Held through the
        # assignment, the old pairs took the 5M run's amount_date 0.3 GiB higher
        carried = replace(carried, pairs=carried.pairs.clear(), levels=carried.levels.clear(),
                          dropped=None, big=None, counts=None, bounded=None)
    old_suggested = old_ambiguous = old_withheld = None
    if plan is not None:
        # what the last assignment left undecided of the pairs not decided again
        assert carried is not None
        old_suggested, old_ambiguous, old_withheld = plan.replay(carried, left, right)
        result, ambiguous = plan.decide(rule, old_withheld)
    else:
        result = assign(pairs, margin=rule.margin, auto_above=rule.auto_above)
        ambiguous = _near_rivals(pairs, result.ambiguous, rule)
    accepted = explained(with_shared_refs(con, T, result.accepted)).with_columns(
        pl.when(pl.col("score") >= rule.auto_above)
        .then(pl.lit("auto"))
        .otherwise(pl.lit("suggested"))
        .alias("status")
    )
    accepted = accepted.with_columns(
        pl.lit(rule.name).alias("rule"),
        pl.lit(index).alias("rule_index"),
        pl.lit(m.difference, dtype=pl.String).alias("diff_type"),
    )
    auto = accepted.filter(pl.col("status") == "auto")
    _record_matches(con, auto, run_id, m.right_amount_sql())
    suggested = accepted.filter(pl.col("status") == "suggested").select(_PROPOSAL_COLS)
    withheld = result.ambiguous.select("l", "r")
    if old_suggested is not None:
        suggested = pl.concat([suggested, old_suggested], how="vertical_relaxed")
    if old_withheld is not None:
        withheld = pl.concat([withheld, old_withheld], how="vertical_relaxed")
    if old_ambiguous is not None and old_ambiguous.height:
        ambiguous = (
            old_ambiguous
            if ambiguous is None
            else pl.concat([ambiguous, old_ambiguous], how="vertical_relaxed")
        )
    if ambiguous is not None:
        _insert_ambiguous(con, ambiguous)
    if carry is not None:
        if auto.height:
            # the rows matched now never pair again: carry only the others' pairs
            touch = pl.col("l").is_in(auto["l"].implode()) | pl.col("r").is_in(auto["r"].implode())
            carry.dropped = carry.pairs.filter(touch).select("l", "r")
            carry.pairs = carry.pairs.filter(~touch)
        carry.suggested, carry.ambiguous, carry.withheld = suggested, ambiguous, withheld
        carry.big = result.big
    # suggestions wait until every rule has run: a later rule may match
    # these rows with confidence, and an unsure pair must not take them first
    _defer(con, suggested)
    stats.matches = stats.auto = auto.height
    stats.ambiguous = withheld.height
    stats.seconds = time.perf_counter() - started
    return stats


_C = TypeVar("_C", GroupCarry, ReversalCarry)


def _held(memo: dict[int, Carry] | None, index: int, m: Matcher, kind: type[_C]) -> _C | None:
    """What rule `index` (of matcher `m`) keeps for its next pass, made empty on its first
    pass; None when the passes keep nothing (no `memo`, or `m` not incremental)."""
    if memo is None or not m.incremental:
        return None
    held = memo.setdefault(index, kind())
    assert isinstance(held, kind)
    return held


def _build_pairs(
    con: duckdb.DuckDBPyConnection,
    m: Matcher,
    rule: Rule,
    tables: Tables,
    paired: str | None,
    levels: pl.DataFrame | None,
) -> tuple[pl.DataFrame, int, pl.DataFrame | None]:
    """The candidate pairs of `tables.left`, scored and kept; their number before
    scoring; the levels (read from the first pass's one query when `paired`)."""
    for statement in m.prepare_sql(tables):
        con.execute(statement)
    # a frame, not a temp table: the run's transaction keeps every version of a temp
    # table until the commit, and the candidates of every rule and pass (63 million
    # pairs at 5M lines) pushed the rest of the run's tables out to disk under a memory
    # limit; a frame is freed when the rule is done
    texts = m.text_fields()
    pairs_sql = (
        f"select distinct l, r{', level' if paired else ''} "
        f"from ({paired or m.candidates_sql(tables)}) "
        f"where {'r is null or ' if paired else ''}"
        f"(l, r) not in (select (l, r) from ({rejected_pairs_sql()}))"
    )
    with written_join_order(con):
        cand: pl.DataFrame = con.sql(pairs_sql).pl()
    if paired:
        unpaired = cand["r"].is_null()
        levels = _typed_levels(cand.filter(unpaired).select(pl.col("l").alias("id"), "level"))
        cand = cand.filter(~unpaired).drop("level")
    cand = drop_frozen(con, cand, ("l", "r"))
    candidates = cand.height
    alike = drop_unlike_names(con, tables, cand, texts)
    if alike is not None:
        cand = alike

    def keep(pairs: pl.DataFrame) -> pl.DataFrame:
        for i, f in enumerate(texts):
            pairs = pairs.filter(pl.col(f"text_sim{i}") >= f.threshold)
        return pairs.filter(pl.col("score") >= rule.suggest_above).select(_KEPT)

    pairs, _ = score_in_chunks(
        con,
        T,
        cand,
        keep,
        tolerance=m.amount_tolerance(),
        window=m.date,
        text=texts,
        weights=rule.weights,
        right_amount=m.right_amount_sql(),
        explain=False,
    )
    return pairs, candidates, levels


_NO_LEVELS = pl.DataFrame(schema={"id": pl.Int64, "level": pl.Int64})


def _regrow(
    con: duckdb.DuckDBPyConnection, m: Matcher, carried: Carried, left: IdSet
) -> tuple[pl.DataFrame, pl.Series, Counts | None, pl.DataFrame | None]:
    """Point view REGROW at the open left rows whose pairs a later pass builds again;
    return the levels of the rows a bound still cuts, the ids REGROW holds, and the
    right rows' counts the levels were read from with the columns the bounds read of
    those rows (see _recount).

    Those rows are: the rows whose bound relaxed (their level fell, see
    Matcher.bounds_sql), those whose reference features changed (REGAINED), and
    those the pass before paired with a right row that gained a reference key.
    Every other open row keeps its carried pairs: its candidates can only have
    lost the rows that left, and their scores are unchanged.
    """
    levels, counts, bounded = _recount(con, m, carried, left)
    relaxed = carried.levels.join(levels, on=["id", "level"], how="anti").select("id")
    gained_right = con.sql(f"select id as r from {gain_table(T.right_refs)}").pl()
    rescored = carried.pairs.join(gained_right, on="r", how="semi").select(pl.col("l").alias("id"))
    regained = con.sql(f"select id from {REGAINED}").pl()
    regrow = pl.concat([relaxed, rescored, regained]).unique()
    _view(con, REGROW, regrow)
    # the ids REGROW holds: those of open rows (all were open when the rule took
    # carried.seen, or when this pass's caps were counted since)
    return levels, regrow.filter(left.expr("id"))["id"].cast(pl.Int64), counts, bounded


#: The columns of an open row a bound reads (see Matcher.bounds_sql): what GONE keeps of
#: the right rows that left, and a later pass of the left rows the bounds cut (see
#: _recount).
BOUND_COLUMNS = ("id", "currency", "amount", "date", "nb", "toks")

#: Right rows that left the open table during the run (BOUND_COLUMNS), numbered by `seq`
#: as they left (their closing, see recon.matchers.base.CLOSING): what a later pass's
#: bounds are counted again for (see _recount).
GONE = "__recon__gone"

#: More right rows than this left since a rule counted its bounds: count them all again.
#: A bounded row is crowded, and so is its slot: a few hundred rows leaving touch
#: most of them (the 1M full run's fourth pass: 726 gone touched 19,204 of the fee
#: rule's 35,679 bounded rows), and finding which cost more than counting them all
#: (both ways timed at every later pass of the 1M full run and night: all again was
#: faster from 726 rows gone, by 0.02-0.37 s a rule, equal at about a hundred, and
#: slower by 0.02-0.04 s at 6).
RECOUNT_ALL = 250


def _close(con: duckdb.DuckDBPyConnection, table: str, ids: pl.Series) -> None:
    """Delete the rows whose id is in `ids` (open, distinct) from open table `table`,
    logged first (see recon.matchers.base.log_closing; right rows in GONE too)."""
    seq = log_closing(con, table, ids)
    # read by DuckDB from this variable (see recon.db)
    closing = ids.to_frame("id")  # noqa: F841
    if table == T.right:
        con.execute(
            f"""insert into {GONE}
            select {', '.join(BOUND_COLUMNS)}, {seq}
            from {T.right} where id in (select id from closing)"""
        )
    con.execute(f"delete from {table} where id in (select id from closing)")


def _recount(
    con: duckdb.DuckDBPyConnection, m: Matcher, carried: Carried, left: IdSet
) -> tuple[pl.DataFrame, Counts | None, pl.DataFrame | None]:
    """(id, level) now of the carried bounded rows still open, the right rows' counts
    they were read from, and the columns the bounds read of the rows still bounded
    (both None where the matcher's bounds read no counts).

    A level counts right rows in the row's slots, and right rows only leave.  Where
    the bounds read counts per slot (a bucket join's, see Tables.counts), every bounded
    row's level is read from the counts of the pass before less those of the rows that
    left since (:func:`_counted`), not from every right row counted again: at 5M lines
    the fee and FX rules' third to sixth passes took 0.59-1.06 s a rule, 0.28-0.44 s
    since, of which bringing the counts up to date 0.01-0.04 s (the second pass counts
    every right row once, 0.34-1.13 s).  A word join's levels (the fuzzy rule's) read
    counts per (word, bucket, week) the same way.  The bounded rows are read from the
    frame the count before kept of them (BOUND_COLUMNS), not from the open table.
    Elsewhere only the rows sharing a slot with a right row that left since the count
    (Matcher.touched_sql) are counted again; the others keep their level.  In the
    benchmark's night, the fourth pass counts 428 of the fx rule's 25,983 bounded rows
    and 1,336 of the fee rule's 35,274 again."""

    def tables(left: str, right: str = T.right) -> Tables:
        return Tables(left, right, T.left_refs, T.right_refs, None, T.ref_pairs)

    _view(con, "__recon__bounded", carried.levels.select("id"))
    gone = f"(select * from {GONE} where seq > {carried.seen})"
    counts = _counted(con, m, carried, gone)
    if counts is not None:
        # read by DuckDB from these variables, not registered (see recon.db)
        counted = counts  # noqa: F841
        bounded_rows = (
            carried.bounded.filter(left.expr("id"))
            if carried.bounded is not None
            else con.sql(f"select {', '.join(BOUND_COLUMNS)} from __recon__bounded").pl()
        )
        at = replace(tables("bounded_rows"), counts="counted")
        sql = m.bounds_sql(at)
        assert sql is not None
        levels = _typed_levels(con.sql(sql).pl())
        return levels, counts, bounded_rows.join(levels.select("id"), on="id", how="semi")
    touched_sql = None
    if int(scalar(con, f"select count(*) from {gone}") or 0) <= RECOUNT_ALL:
        touched_sql = m.touched_sql(tables("__recon__bounded", gone))
    if touched_sql is None:
        return _levels(con, m, tables("__recon__bounded")), None, None
    touched = con.sql(touched_sql).pl().select(pl.col("id").cast(pl.Int64))
    kept = carried.levels.filter(left.expr("id")).join(touched, on="id", how="anti")
    if touched.height == 0:
        return kept, None, None
    _view(con, "__recon__touched", touched)
    return pl.concat([kept, _levels(con, m, tables("__recon__touched"))]), None, None


def _counted(
    con: duckdb.DuckDBPyConnection, m: Matcher, carried: Carried, gone: str
) -> Counts | None:
    """The open right rows counted per slot as `m`'s bounds count them (see
    Tables.counts): the counts `carried` holds less those of the rows `gone` (those
    that left since), or all the open right rows counted now when it holds none;
    None where `m`'s bounds read no such counts."""
    if carried.counts is None:
        sql = m.counts_sql(Tables(T.left, T.right))
        return None if sql is None else _typed_counts(con.sql(sql).pl())
    sql = m.counts_sql(Tables(T.left, gone), prune=False)
    assert sql is not None
    return _less(carried.counts, _typed_counts(con.sql(sql).pl()))


def _typed_counts(rows: pl.DataFrame) -> Counts:
    """The (kind, cur, k, wk, nb, tok, n) rows of Matcher.counts_sql, typed alike
    whichever join counted them."""
    return rows.select("kind", "cur", "k", "wk", "nb", "tok", "n").cast(
        {"kind": pl.String, "cur": pl.String, "k": pl.Int64, "wk": pl.Int64,
         "nb": pl.String, "tok": pl.Int64, "n": pl.Int64}
    )


def _less(counts: pl.DataFrame, gone: pl.DataFrame) -> pl.DataFrame:
    """`counts` (slot columns, n) less `gone`'s n in the same slots (a slot column null
    where its kind has none); empty slots dropped."""
    if gone.height == 0:
        return counts
    slot = [c for c in counts.columns if c != "n"]
    return (
        counts.join(gone.rename({"n": "gone"}), on=slot, how="left", nulls_equal=True)
        .with_columns(pl.col("n") - pl.col("gone").fill_null(0))
        .drop("gone")
        .filter(pl.col("n") > 0)
    )


def _levels(con: duckdb.DuckDBPyConnection, m: Matcher, t: Tables) -> pl.DataFrame:
    """(id, level) of the rows of `t.left` a bound of `m` cuts."""
    sql = m.bounds_sql(t)
    return _NO_LEVELS if sql is None else _fetch_levels(con, sql)


def _fetch_levels(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    """The (id, level) rows of `sql`, typed as the carried levels they are compared with."""
    return _typed_levels(con.sql(sql).pl())


def _typed_levels(levels: pl.DataFrame) -> pl.DataFrame:
    """(id, level) typed as the carried levels they are compared with."""
    return levels.cast({"id": pl.Int64, "level": pl.Int64})


def _view(con: duckdb.DuckDBPyConnection, name: str, ids: pl.DataFrame) -> None:
    """View `name`: the open left rows whose id is in `ids`.  A view, not a temp table:
    every version of a temp table made inside the run's transaction is kept until
    the commit, and these are made per rule and pass."""
    con.register(f"{name}_ids", ids)
    con.execute(
        f"create or replace temp view {name} as select * from {T.left} "
        f"where id in (select id from {name}_ids)"
    )


@dataclass(slots=True)
class Plan:
    """Which pairs a rule's later pass decides again, and from what.

    The assignment decides each connected component of the pairs alone.  A component
    none of whose rows lost, gained or rebuilt a pair since the last assignment is
    decided as it was: nothing matched (a matched row would have left), the same
    suggestions and the same ambiguous rows, which are taken over (:meth:`replay`).
    Another changed component is assigned again whole (`exact`), unless the
    mutual-best rule decides it (see recon.assign.big): that rule reads a pair's two
    rows' own pairs, each scored among the copies of its item its left row pairs with,
    so only these pairs are decided again (`near`, marked `redo`, beside every other
    pair of their left rows): those of a changed row, those of a right row that pairs
    with a changed left row (its pairs' scores among copies may have moved), and those
    of a component the last assignment did not decide by that rule.  Its other pairs
    keep their decisions too.  At 5M lines the fuzzy and FX rules' graphs hold
    components of hundreds of thousands of pairs, and a pass where a few dozen rows
    leave decided them all again (bench/passes.py)."""

    exact: pl.DataFrame  # every pair of the changed components the exact solver decides
    near: pl.DataFrame  # the `redo` pairs and the other pairs of their rows
    #: the open rows whose pairs changed: lost one (its other row left, or its left row's
    #: pairs were built again without it), or built again, or gained one
    changed_l: pl.Series
    changed_r: pl.Series
    #: the left rows of the components the mutual-best rule decides now, for the next pass
    big: pl.Series

    def redone(self) -> pl.DataFrame:
        """(l, r) of the pairs decided again."""
        ids = [pl.col("l").cast(pl.Int64), pl.col("r").cast(pl.Int64)]
        return pl.concat([self.exact.select(ids), self.near.filter("redo").select(ids)])

    def replay(
        self, carried: Carried, left: IdSet, right: IdSet
    ) -> tuple[pl.DataFrame | None, pl.DataFrame | None, pl.DataFrame | None]:
        """What the last assignment left undecided of the pairs not decided again:
        suggestions, ambiguous rows (those with none of their pairs decided again),
        withheld pairs.  A pair of two open rows whose pairs did not change is a pair of
        this pass's graph."""
        redone = self.redone()
        unchanged = (
            left.expr("l")
            & right.expr("r")
            & ~pl.col("l").is_in(self.changed_l.implode())
            & ~pl.col("r").is_in(self.changed_r.implode())
        )

        def kept(frame: pl.DataFrame | None) -> pl.DataFrame | None:
            if frame is None:
                return None
            again = redone.cast({"l": frame.schema["l"], "r": frame.schema["r"]})
            return frame.filter(unchanged).join(again, on=["l", "r"], how="anti")

        amb = carried.ambiguous
        if amb is not None:
            # a row keeps its record when its pairs and their decisions are as they were
            same = {
                side: open_.expr("id")
                & ~pl.col("id").is_in(changed.implode())
                & ~pl.col("id").is_in(redone[col].implode())
                for side, open_, changed, col in (
                    ("left", left, self.changed_l, "l"),
                    ("right", right, self.changed_r, "r"),
                )
            }
            amb = amb.filter(
                pl.when(pl.col("side") == "left").then(same["left"]).otherwise(same["right"])
            )
        return kept(carried.suggested), amb, kept(carried.withheld)

    def decide(
        self, rule: Rule, withheld: pl.DataFrame | None
    ) -> tuple[Assignment, pl.DataFrame | None]:
        """The pairs decided again, and the ambiguous-row records of their rows (see
        _near_rivals); `withheld` the pairs the last assignment withheld that are not
        decided again (:meth:`replay`), which a redone row's record counts too."""
        exact = assign(self.exact, margin=rule.margin, auto_above=rule.auto_above)
        records = [_near_rivals(self.exact, exact.ambiguous, rule)]
        near = assign_near(self.near.drop("redo"), self.near["redo"], margin=rule.margin)
        if self.near.height:
            redo = self.near.filter("redo")
            rows_l, rows_r = redo["l"].unique().implode(), redo["r"].unique().implode()
            held = [near.ambiguous.select("l", "r")]
            if withheld is not None:
                held.append(
                    withheld.filter(pl.col("l").is_in(rows_l) | pl.col("r").is_in(rows_r))
                    .select("l", "r")
                    .cast(near.ambiguous.select("l", "r").schema)
                )
            found = _near_rivals(self.near, pl.concat(held), rule)
            if found is not None:
                mine = pl.when(pl.col("side") == "left").then(pl.col("id").is_in(rows_l))
                records.append(found.filter(mine.otherwise(pl.col("id").is_in(rows_r))))
        kept = [r for r in records if r is not None and r.height]
        return Assignment(
            pl.concat([exact.accepted, near.accepted], how="vertical_relaxed"),
            pl.concat([exact.ambiguous, near.ambiguous], how="vertical_relaxed"),
            self.big,
        ), (pl.concat(kept) if kept else None)


def _with_carried(
    pairs: pl.DataFrame,
    carried: Carried,
    regrow_ids: pl.Series,
    left: IdSet,
    right: IdSet,
) -> tuple[pl.DataFrame, Plan]:
    """`pairs` (of the rows in REGROW) and the carried pairs of the other open rows;
    and which of them this pass decides again (:class:`Plan`).

    A row's pairs changed when one of them lost its other row (rows only leave), or
    the row is in REGROW (its pairs were built again), or it is the right row of a pair
    of a row in REGROW, old or new.  Every row of the last assignment's graph was
    open when the rule took `carried.seen`: `left` and `right` tell which are open now."""
    regrow = regrow_ids.implode()
    kept = carried.pairs.filter(left.expr("l") & ~pl.col("l").is_in(regrow) & right.expr("r"))
    if pairs.height:
        kept = pl.concat([kept, pairs.select(kept.columns)], how="vertical_relaxed")
    ids = [pl.col("l").cast(pl.Int64), pl.col("r").cast(pl.Int64)]
    # the pairs of the last assignment's graph not in this one's
    old = [carried.pairs] + ([carried.dropped] if carried.dropped is not None else [])
    lost = pl.concat([f.select(ids) for f in old]).filter(
        ~left.expr("l") | ~right.expr("r") | pl.col("l").is_in(regrow)
    )
    was_big = carried.big if carried.big is not None else pl.Series("l", [], dtype=pl.Int64)
    if lost.height == 0 and pairs.height == 0:
        # no pair lost, none new (its right row would be open, its left row in REGROW):
        # every component is as it was
        none = pl.Series("id", [], dtype=pl.Int64)
        return kept, Plan(
            kept.clear(), kept.clear().with_columns(redo=pl.lit(True)), none, none, was_big
        )
    changed_l = pl.concat([lost.filter(left.expr("l"))["l"], regrow_ids.cast(pl.Int64)]).unique()
    changed_r = pl.concat([lost.filter(right.expr("r"))["r"], pairs["r"].cast(pl.Int64)]).unique()
    graph = kept.select(ids)
    comp = components(graph["l"], graph["r"])
    by_l = _mask(graph, pl.col("l").is_in(changed_l.implode()))
    touch = by_l | _mask(graph, pl.col("r").is_in(changed_r.implode()))
    # the components are numbered from 0: flag those with a changed row by number
    stirred = np.zeros(int(comp.max()) + 1 if len(comp) else 0, dtype=bool)
    stirred[comp[touch]] = True
    moved = stirred[comp]
    bigs = big_components(comp, graph["l"], graph["r"], moved)[comp]
    before = np.zeros(len(comp), dtype=bool)
    if was_big.len():
        before = _mask(graph, pl.col("l").is_in(was_big.implode()))
    near = np.zeros(len(comp), dtype=bool)  # none without a pair decided again
    redo = bigs & (touch | ~before)
    if redo.any():
        # a pair's score among its copies (see recon.assign._twin_scores) reads its left
        # row's pairs: a changed left row's partners rank their pairs anew
        ranked = graph["r"].filter(pl.Series(bigs & by_l)).implode()
        redo |= bigs & _mask(graph, pl.col("r").is_in(ranked))
        # every pair of a right row of a pair decided again is decided again (the right
        # row changed, or a left row of its changed; or both are unchanged, the pair
        # is old and its component was not decided by the mutual-best rule, nor then
        # were the right row's other pairs): the pairs of the left rows of the pairs
        # decided again hold every pair of their rows and of their right rows' left rows
        rows_l = graph["l"].filter(pl.Series(redo)).unique().implode()
        near = bigs & _mask(graph, pl.col("l").is_in(rows_l))
    return kept, Plan(
        exact=kept.filter(pl.Series(moved & ~bigs)),
        near=kept.filter(pl.Series(near)).with_columns(pl.Series("redo", redo[near])),
        changed_l=changed_l,
        changed_r=changed_r,
        big=graph["l"].filter(pl.Series(bigs | (~moved & before))).unique(),
    )


def _mask(frame: pl.DataFrame, expr: pl.Expr) -> np.ndarray:
    """`expr` over the rows of `frame`, as a boolean array."""
    mask: np.ndarray = frame.select(expr).to_series().to_numpy()
    return mask


#: What a rule keeps of its scored pairs: what assignment, the explanation and the
#: record of a match read (not the text columns and per-feature scores).
_KEPT = (
    "l",
    "r",
    "score",
    "r_key",
    "l_key",
    "amount_diff",
    "date_diff",
    "shares_ref",
    "l_has_ref",
    "r_has_ref",
    "name_sim",
)

_PROPOSALS = "__recon__proposals"


def _defer(con: duckdb.DuckDBPyConnection, suggested: pl.DataFrame) -> None:
    if suggested.height == 0:
        return
    # read by DuckDB from this variable, not registered (see recon.db)
    sug = suggested.select(_PROPOSAL_COLS)  # noqa: F841
    con.execute(f"insert into {_PROPOSALS} select * from sug")


_PROPOSAL_COLS = (
    "l",
    "r",
    "score",
    "status",
    "explanation",
    "date_diff",
    "rule",
    "rule_index",
    "diff_type",
)


def resolve_proposals(
    con: duckdb.DuckDBPyConnection, ruleset: RuleSet, run_id: str, margin: float
) -> dict[str, int]:
    """Record the deferred suggestions whose rows are still open and in no tie among
    confident candidates (see :func:`_tied_sql`); return counts per rule."""
    props = con.sql(
        f"""with tied as ({_tied_sql(ruleset)})
        select * from {_PROPOSALS}
        where l in (select id from {T.left}) and r in (select id from {T.right})
          and l not in (select id from tied where side = 'left')
          and r not in (select id from tied where side = 'right')"""
    ).pl()
    if props.height == 0:
        return {}
    # the same pair may be proposed by several rules: keep its best score
    props = props.sort(["score", "rule_index"], descending=[True, False]).unique(
        subset=["l", "r"], keep="first"
    )
    # the suggestions that score as a confident match would (settings.auto_above; their
    # rule holds them for review) are decided first: two weaker suggestions must not
    # displace one such (a payment and its referenced invoice) by outnumbering it
    chosen = assign(
        props, margin=margin, auto_above=float(ruleset.settings["auto_above"])
    ).accepted
    _record_matches(con, chosen, run_id, _right_amount_by_rule(ruleset))
    counts = chosen.group_by("rule").len()
    return dict(zip(counts["rule"].to_list(), counts["len"].to_list(), strict=True))


def _tied_sql(ruleset: RuleSet) -> str:
    """(side, id): the open rows of a tie among confident candidates: the rows a rule
    found ambiguous with a best score it would accept (AMBIGUOUS), and their open
    alternatives.  A suggestion must not take one: the next pass would see the tie
    broken and accept the look-alike left over, on the word of an unsure pair."""
    auto = ", ".join(f"({sql_literal(r.name)}, {float(r.auto_above)})" for r in ruleset.rules)
    return f"""with ties as (
        select a.side, a.id, unnest(a.alternatives) as alt from {AMBIGUOUS} a
        join (values {auto}) t(rule, auto_above) on t.rule = a.rule
        where a.best >= t.auto_above),
    open_rows as (select 'left' as side, id from {T.left}
                  union all select 'right', id from {T.right}),
    live as (select x.* from ties x
             semi join open_rows o on o.side = x.side and o.id = x.id
             semi join open_rows p on p.side <> x.side and p.id = x.alt)
    select side, id from live
    union select case when side = 'left' then 'right' else 'left' end, alt from live"""


def _right_amount_by_rule(ruleset: RuleSet) -> str:
    """SQL of the ledger amount in the bank's terms for a pair `a` of the rule with
    index `a.rule_index` (FX converts it), for the suggestions of several rules."""
    exprs = {i: r.matcher.right_amount_sql() for i, r in enumerate(ruleset.rules)}
    plain = "r.amount"
    other = {i: e for i, e in exprs.items() if e != plain}
    if not other:
        return plain
    whens = " ".join(f"when {i} then {e}" for i, e in other.items())
    return f"(case a.rule_index {whens} else {plain} end)"


#: The one-to-one matches being recorded: their pairs' ids, match ids, amounts and
#: match_info values (see :func:`_record_matches`).
RECORDING = "__recon__recording"
#: A recorded match's explanation with its exact difference, `figure` (SQL text: a
#: match's in its currency's minor units, an exception's with the digits beyond them it
#: has, see recon.diagnose): the scores have it as a float only (recon.scoring._explanation).
EXACT_DIFFERENCE_SQL = (
    "case when starts_with({explanation}, 'amount differs;') then 'amount differs by ' "
    "|| {figure} || substr({explanation}, 15) else {explanation} end"
)


def _record_matches(
    con: duckdb.DuckDBPyConnection,
    accepted: pl.DataFrame,
    run_id: str,
    right_amount: str,
) -> None:
    """Record one-to-one matches: rows of matches, match_members and match_info.

    One join of the accepted pairs with the open rows gives their match ids, amounts
    and exact difference (`right_amount` is the ledger amount in the bank's terms, as
    the pair's rule states it), kept in a temp table.  Each table is then filled by one
    statement.  Fetching 27 columns and reading them back in slices of 100k, each
    slice scanning both open tables again, cost the 5M benchmark's first rule 21 s of
    its 38.7 s (28.2 s with one statement per table).

    The temp table is within DuckDB's memory limit, where a polars frame of the same
    rows was beside it: in the 1M full run the first rule's 556k matches took the
    process 0.29 GiB above where it began recording, and now 0.05 GiB, in the same
    time.  Dropped, its rows stay with the run's transaction until the commit, as every
    temp table's do (0.06-0.08 GiB of DuckDB's memory in that run), spilled to disk
    when the limit needs the room."""
    if accepted.height == 0:
        return
    # read by DuckDB from these variables, not registered (see recon.db)
    acc = accepted.select(_PROPOSAL_COLS)  # noqa: F841
    # match ids hash the rule and both sides' source ids: reruns give the same ids.
    # Hashed once with the amounts, not in each insert's join: recording the 1M first
    # rule's 556k matches took 3.9-4.1 s, now 2.4-2.8 s (bench harness, same hour)
    con.execute(
        f"""create or replace temp table {RECORDING} as
        select a.l, a.r, {matchinfo.match_id_sql(
                   "a.rule || '|' || coalesce(l.account, '') || '|' || l.source_id || '|' "
                   "|| coalesce(r.account, '') || '|' || r.source_id")} as match_id,
               l.amount as l_amount, r.amount as r_amount,
               (l.amount - {right_amount})::decimal(20,4) as amount_diff_exact,
               {matchinfo.one_to_one_columns()}
        from acc a join {T.left} l on l.id = a.l join {T.right} r on r.id = a.r"""
    )
    con.execute(
        f"""insert into matches
        select i.match_id, ?, a.rule, a.rule_index, 'one_to_one', a.status, a.score,
               i.l_amount, i.r_amount, i.amount_diff_exact, a.date_diff,
               {EXACT_DIFFERENCE_SQL.format(explanation="a.explanation",
                                            figure="recon_fmt(i.amount_diff_exact, i.i_cur)")},
               ?, true,
               null, null, a.diff_type, null
        from acc a join {RECORDING} i on i.l = a.l and i.r = a.r""",
        [run_id, _now()],
    )
    con.execute(
        "insert into match_members "
        f"select match_id, unnest([l, r]), unnest(['left', 'right']) from {RECORDING}"
    )
    # match_info's columns come with the ids, not from a second join of the open
    # tables (the 5M benchmark's first pass: 2.8M matches; a wider frame, see CHANGELOG)
    con.execute(matchinfo.one_to_one_insert_sql(RECORDING))
    con.execute(f"drop table {RECORDING}")
    # every accepted row is open in both tables: the pairs were built from them
    _close(con, T.left, accepted["l"])
    _close(con, T.right, accepted["r"])


def _run_group(
    con: duckdb.DuckDBPyConnection,
    rule: Rule,
    index: int,
    run_id: str,
    stats: RuleStats,
    started: float,
    carry: GroupCarry | None = None,
) -> RuleStats:
    m = rule.matcher
    assert isinstance(m, Group)
    one_left = m.direction == "one_to_many"
    chosen, ambiguous = run_group_rule(con, rule, T, rejected_pairs_sql(), carry)
    chosen = chosen.filter(pl.col("score") >= rule.suggest_above).with_columns(
        pl.when(pl.col("score") >= rule.auto_above)
        .then(pl.lit("auto"))
        .otherwise(pl.lit("suggested"))
        .alias("status")
    )
    _insert_ambiguous(
        con,
        ambiguous.select(
            pl.col("a").alias("id"),
            pl.lit("left" if one_left else "right").alias("side"),
            "alternatives",
            "best",
            pl.lit(rule.name).alias("rule"),
        ),
    )
    if chosen.height:
        members = chosen.select("sol", "a", "xs").explode("xs")
        frame = pl.concat(
            [
                chosen.select(
                    "sol",
                    pl.col("a").alias("txn"),
                    pl.lit("left" if one_left else "right").alias("role"),
                ),
                members.select(
                    "sol",
                    pl.col("xs").alias("txn"),
                    pl.lit("right" if one_left else "left").alias("role"),
                ),
            ]
        )
        # frames read by DuckDB from these variables (see recon.db and _record_matches)
        gm = frame
        gs = chosen.select("sol", "score", "status", "explanation")  # noqa: F841
        kind = m.direction
        new: pl.DataFrame = con.sql(  # noqa: F841
            f"""with mem as (
                select g.sol, g.txn, g.role, t.amount, t.date, t.account, t.source_id
                from gm g join txns t on t.txn_id = g.txn),
            agg as (
                select sol,
                       {matchinfo.match_id_sql(
                           "? || '|' || string_agg(role || ':' || coalesce(account, '') "
                           "|| ':' || source_id, '|' order by role, source_id)")} as match_id,
                       sum(amount) filter (where role = 'left') as la,
                       sum(amount) filter (where role = 'right') as ra,
                       date_diff('day', max(date) filter (where role = 'right'),
                                 max(date) filter (where role = 'left')) as dd
                from mem group by sol)
            select a.*, s.score, s.status, s.explanation from agg a join gs s using (sol)""",
            params=[rule.name],
        ).pl()
        con.execute(
            f"""insert into matches
            select match_id, ?, ?, ?, '{kind}', status, score, la, ra, la - ra, dd,
                   explanation, ?, true, null, null, null, null
            from new""",
            [run_id, rule.name, index, _now()],
        )
        con.execute(
            """insert into match_members select n.match_id, g.txn, g.role
            from new n join gm g using (sol)"""
        )
        _close(con, T.left, gm.filter(pl.col("role") == "left")["txn"])
        _close(con, T.right, gm.filter(pl.col("role") == "right")["txn"])
    stats.matches = chosen.height
    stats.auto = chosen.filter(pl.col("status") == "auto").height
    stats.suggested = stats.matches - stats.auto
    stats.ambiguous = ambiguous.height
    stats.seconds = time.perf_counter() - started
    return stats


def _run_reversal(
    con: duckdb.DuckDBPyConnection,
    rule: Rule,
    index: int,
    run_id: str,
    stats: RuleStats,
    started: float,
    carry: ReversalCarry | None = None,
) -> RuleStats:
    """Pair rows with their exact opposite on the same side; kind `reversal`.  With
    `carry`, a later pass takes the pairs of the pass before (see ReversalCarry)."""
    m = rule.matcher
    assert isinstance(m, Reversal)
    for role in m.sides():
        table = T.left if role == "left" else T.right
        pairs = reversal_pairs(con, m, table, role, carry)
        if pairs.height == 0:
            continue
        width = max(m.date.before, m.date.after, 1)
        pairs = pairs.with_columns((1.0 - 0.2 * pl.col("days") / width).round(4).alias("score"))
        chosen = assign(pairs, margin=rule.margin).accepted
        if chosen.height == 0:
            continue
        # frames read by DuckDB from these variables (see recon.db and _record_matches)
        rev = chosen  # noqa: F841
        new: pl.DataFrame = con.sql(
            f"""select {matchinfo.match_id_sql(
                       "? || '|' || coalesce(p.account, '') || '|' || p.source_id "
                       "|| '|' || n.source_id")} as match_id,
                   c.l, c.r, c.score, c.days, recon_fmt(p.amount, p.currency) as pa,
                   recon_fmt(n.amount, n.currency) as na, p.amount + n.amount as total
            from rev c join {table} p on p.id = c.l join {table} n on n.id = c.r""",
            params=[rule.name],
        ).pl()
        side_amount = "total"
        con.execute(
            f"""insert into matches
            select match_id, ?, ?, ?, 'reversal',
                   case when score >= ? then 'auto' else 'suggested' end, score,
                   {side_amount if role == "left" else "0"}, {"0" if role == "left" else side_amount},
                   {side_amount}, days,
                   'reversal: ' || pa || ' and ' || na || ' cancel out, ' || days || 'd apart',
                   ?, true, null, null, 'reversal', null
            from new""",
            [run_id, rule.name, index, rule.auto_above, _now()],
        )
        con.execute(
            f"""insert into match_members
            select match_id, l, '{role}' from new
            union all select match_id, r, '{role}' from new"""
        )
        _close(con, table, pl.concat([new["l"], new["r"]]))
        stats.matches += chosen.height
        stats.auto += chosen.filter(pl.col("score") >= rule.auto_above).height
    stats.suggested = stats.matches - stats.auto
    stats.seconds = time.perf_counter() - started
    return stats


def _passes_stored(con: duckdb.DuckDBPyConnection) -> int:
    """How many passes (LEFT_SIDES: bank lines, customer statement lines) have rows
    stored: with one, no ledger row open to it is matched in another."""
    sides = ", ".join(sql_literal(s) for s in LEFT_SIDES)
    return int(scalar(con, f"select count(distinct side) from txns where side in ({sides})"))


def _in_a_match(con: duckdb.DuckDBPyConnection, pairs: pl.DataFrame) -> pl.Series:
    """The rows of `pairs` (l, r) in an active match."""
    ids = pl.concat([pairs["l"], pairs["r"]]).unique().to_frame("id")  # noqa: F841
    taken: pl.Series = con.sql(
        f"""select mm.txn_id from match_members mm
        where mm.txn_id in (select id from ids) and {matchinfo.active_member_sql()}"""
    ).pl()["txn_id"]
    return taken


def reversal_pairs(
    con: duckdb.DuckDBPyConnection,
    m: Reversal,
    table: str,
    role: str,
    carry: ReversalCarry | None = None,
) -> pl.DataFrame:
    """(l, r, days): the reversal pairs of open table `table` (of role `role`); with
    `carry`, those of the pass before still open, if it found them, and kept there."""
    # taken before the open table is read: the rows that leave from now on
    seen = closed_seq(con) if carry is not None else 0
    if carry is not None and role in carry.pairs:
        # those of rows that left since the pairs were found go
        still = still_open(con, table, carry.seen[role])
        pairs = carry.pairs[role].filter(still.expr("l") & still.expr("r"))
    else:
        pairs = con.sql(
            f"""select c.l, c.r, abs(date_diff('day', p.date, n.date)) as days
            from ({m.pairs_sql(table)}) c
            join {table} p on p.id = c.l join {table} n on n.id = c.r"""
        ).pl()
        if role == "right" and _passes_stored(con) > 1:
            # ledger rows cancel each other only where no pass matched either: a
            # ledger-only match is every pass's (open_items_sql), and a row open to this
            # pass may be matched in the other (a receipt matched to a customer's
            # statement line).  The pairs' rows are looked up, not every member hashed
            taken = _in_a_match(con, pairs).implode()
            pairs = pairs.filter(~pl.col("l").is_in(taken) & ~pl.col("r").is_in(taken))
        pairs = drop_frozen(con, pairs, ("l", "r"))
    if carry is not None:
        carry.pairs[role], carry.seen[role] = pairs, seen
    return pairs


def _near_rivals(pairs: pl.DataFrame, ambiguous: pl.DataFrame, rule: Rule) -> pl.DataFrame | None:
    """Per row of an ambiguous pair, its rival candidates within the margin: the rows
    (id, side, alternatives, best, rule) that :func:`_insert_ambiguous` records."""
    if ambiguous.height == 0:
        return None
    rows = []
    for side, own, other in (("left", "l", "r"), ("right", "r", "l")):
        ids = ambiguous[own].unique()
        near = (
            pairs.filter(pl.col(own).is_in(ids.implode()))
            .filter(pl.col("score") >= pl.col("score").max().over(own) - rule.margin)
            .group_by(own)
            .agg(pl.col(other).sort().alias("alternatives"), pl.col("score").max().alias("best"))
            .select(
                pl.col(own).alias("id"),
                pl.lit(side).alias("side"),
                "alternatives",
                "best",
                pl.lit(rule.name).alias("rule"),
            )
        )
        rows.append(near)
    return pl.concat(rows)


#: The rows the rules of the last pass found ambiguous (id, side, alternatives, best,
#: rule), for the exception diagnosis; made by each pass (see _one_pass).
AMBIGUOUS = "__recon__ambiguous"


def _insert_ambiguous(con: duckdb.DuckDBPyConnection, rows: pl.DataFrame) -> None:
    """Remember ambiguous rows (see :func:`_near_rivals`) for the exception diagnosis."""
    if rows.height == 0:
        return
    # read by DuckDB from this variable (see recon.db)
    ambiguous_rows = rows  # noqa: F841
    con.execute(f"insert into {AMBIGUOUS} select * from ambiguous_rows")


def run_pipeline(
    con: duckdb.DuckDBPyConnection,
    ruleset: RuleSet,
    run_id: str,
    *,
    left_side: str = "bank",
    as_of: date | None = None,
    progress: Callable[[str, float], None] | None = None,
) -> PipelineResult:
    """Run every rule in order over the open rows until nothing more matches.

    A match made late in a pass can remove the rival that made an earlier
    row ambiguous; a further pass then settles that row.  Running to this
    fixpoint (at most MAX_PASSES) is what makes a rerun with the same inputs
    change nothing.  The group rules start from what their last pass in the previous
    run kept, and keep what their last pass here leaves (see recon.groups.load_carry).
    """
    out = PipelineResult(rules=[RuleStats(r.name, r.matcher.name) for r in ruleset.rules])
    memo: dict[int, Carry] = {}
    kept = _group_keys(ruleset, left_side)
    for index, key in kept.items():
        memo[index] = load_carry(con, key)
    for pass_no in range(1, MAX_PASSES + 1):
        found = _one_pass(con, ruleset, run_id, left_side, as_of, progress, out, pass_no, memo)
        if found == 0:
            break
    out.passes, out.unsettled = pass_no, found
    carries = {k: c for i, k in kept.items() if isinstance(c := memo[i], GroupCarry)}
    save_carries(
        con, carries, {k for side in LEFT_SIDES for k in _group_keys(ruleset, side).values()}
    )
    out.left_open = con.execute(f"select count(*) from {T.left}").fetchall()[0][0]
    out.right_open = con.execute(f"select count(*) from {T.right}").fetchall()[0][0]
    return out


#: Rows only leave and every pass that matches records something, so the passes end by
#: themselves; this caps the time a long cascade of matches making way for matches can
#: take (the 1M benchmark's full run settles in its ninth pass, its night in its fifth).
MAX_PASSES = 20


def _group_keys(ruleset: RuleSet, left_side: str) -> dict[int, str]:
    """The carry key of each incremental group rule (by index) for `left_side`."""
    return {
        i: carry_key(r, left_side)
        for i, r in enumerate(ruleset.rules)
        if isinstance(r.matcher, Group) and r.matcher.incremental
    }


def _one_pass(
    con: duckdb.DuckDBPyConnection,
    ruleset: RuleSet,
    run_id: str,
    left_side: str,
    as_of: date | None,
    progress: Callable[[str, float], None] | None,
    out: PipelineResult,
    pass_no: int = 1,
    memo: dict[int, Carry] | None = None,
) -> int:
    """One pass of every rule; returns the number of matches it made."""
    con.execute(
        f"create or replace temp table {AMBIGUOUS} "
        "(id bigint, side varchar, alternatives bigint[], best double, rule varchar)"
    )
    con.execute(
        f"create or replace temp table {_PROPOSALS} (l bigint, r bigint, score double, "
        "status varchar, explanation varchar, date_diff bigint, rule varchar, rule_index integer, "
        "diff_type varchar)"
    )
    suffix = f" (pass {pass_no})" if pass_no > 1 else ""
    t0 = time.perf_counter()
    start(progress, "open items" + suffix)
    prepare_open_tables(con, ruleset, left_side=left_side, as_of=as_of, fresh=pass_no == 1)
    if progress:
        progress("open items" + suffix, time.perf_counter() - t0)
    found = 0
    for index, rule in enumerate(ruleset.rules):
        label = f"rule {rule.name}{suffix}"
        start(progress, label)
        stats = run_rule(con, rule, index, run_id, memo)
        total = out.rules[index]
        for attr in ("candidates", "matches", "auto", "suggested", "ambiguous"):
            setattr(total, attr, getattr(total, attr) + getattr(stats, attr))
        total.ambiguous = stats.ambiguous  # what is still ambiguous, not a running sum
        total.seconds += stats.seconds
        found += stats.matches
        if progress:
            progress(f"{label}: {stats.matches} matches", stats.seconds)
    margin = float(ruleset.settings["margin"])
    t0 = time.perf_counter()
    start(progress, "suggestions" + suffix)
    settled = resolve_proposals(con, ruleset, run_id, margin)
    if progress:
        progress(f"suggestions{suffix}: {sum(settled.values())} matches", time.perf_counter() - t0)
    for name, n in settled.items():
        found += n
        for stats in out.rules:
            if stats.name == name:
                stats.suggested += n
                stats.matches += n
    return found
