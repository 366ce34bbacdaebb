"""A later pass builds pairs only for the rows whose bounds relaxed, and the run is the
same as one that builds every pass's pairs from scratch.

At a few hundred lines no crowding bound bites, so the bounds are made tiny here:
most amount buckets are then crowded, name blocks hot and reference keys capped, and
matches made in one pass relax them for the next.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from recon import assign as assigning
from recon import pipeline
from recon.matchers import MATCHERS, base
from recon.matchers.fuzzy import Fuzzy
from recon.matchers.reversal import Reversal

from ..test_generator import gen
from .test_score_chunks import OUTPUTS, _run


def _tight(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "FAN", 1)
    monkeypatch.setattr(base, "BLOCK_FAN", 1)
    monkeypatch.setattr(pipeline, "MAX_REF_ROWS", 1)


@pytest.mark.parametrize("seed", [3, 8])
def test_later_passes_build_only_what_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    data = gen.generate(tmp_path / "data", seed=seed, rows=600, mode="hard")
    _tight(monkeypatch)
    relaxed: list[int] = []
    regrown: list[int] = []
    real = pipeline._regrow

    def spy(con, m, carried, left):  # type: ignore[no-untyped-def]
        levels, ids, counts, bounded = real(con, m, carried, left)
        relaxed.append(carried.levels.height - levels.height)
        regrown.append(con.execute(f"select count(*) from {pipeline.REGROW}").fetchall()[0][0])
        assert ids.len() == regrown[-1]
        return levels, ids, counts, bounded

    monkeypatch.setattr(pipeline, "_regrow", spy)
    incremental = _run(data, tmp_path / "incremental")
    # later passes ran from carried pairs, and bounds relaxed and keys were regained
    assert len(regrown) >= 5
    assert sum(relaxed) > 0 and sum(regrown) > 0
    same_from_scratch(data, tmp_path / "scratch", monkeypatch, incremental, relaxed)


def same_from_scratch(
    data: dict[str, Path],
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    outputs: dict[str, bytes],
    spied: list[int],
) -> None:
    """Run `data` again in `folder` with every matcher's later passes built from scratch
    (no carry): the spy's record `spied`, cleared first, stays empty, and the outputs
    equal `outputs` (a run's with the carries, of some 300 matches at least)."""
    for cls in MATCHERS.values():
        monkeypatch.setattr(cls, "incremental", False)
    spied.clear()
    scratch = _run(data, folder)
    assert spied == []
    for name in OUTPUTS:
        assert outputs[name] == scratch[name], name
    assert outputs["matches.csv"].count(b"\n") > 300


def test_levels_only_fall_as_rows_leave(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the carried pairs rest on: removing right rows never raises a row's level."""
    import duckdb

    from recon.matchers import Fuzzy, Tolerance
    from recon.matchers.base import AmountTolerance, Tables, TextField

    _tight(monkeypatch)
    con = duckdb.connect()
    rows = pl.DataFrame(
        {
            "id": list(range(1, 41)),
            "amount": [500 + (i % 3) for i in range(40)],
            "currency": ["EUR"] * 40,
            "date": pl.date_range(pl.date(2026, 1, 1), pl.date(2026, 1, 20), eager=True)
            .append(pl.date_range(pl.date(2026, 1, 1), pl.date(2026, 1, 20), eager=True)),
            "nb": ["ac", "bo", "ac", "ci"] * 10,
            "toks": [["acme", "gmbh"], ["bolt"], ["acme"], ["city", "gmbh"]] * 10,
            "name_key": ["acme gmbh", "bolt", "acme", "city gmbh"] * 10,
        }
    )
    con.register("src", rows)
    con.execute("create table l as select * from src where id <= 20")
    con.execute("create table r as select * from src where id > 20")
    t = Tables("l", "r")
    matchers = [
        Tolerance(),
        Tolerance(amount=AmountTolerance(abs=Decimal(2))),
        Fuzzy(amount=AmountTolerance(abs=Decimal(1)), text=(TextField(threshold=50),)),
    ]

    def levels(m: base.Matcher) -> dict[int, int]:
        sql = m.bounds_sql(t)
        assert sql is not None
        return dict(con.execute(sql).fetchall())

    before = [levels(m) for m in matchers]
    assert all(before)
    for gone in range(21, 41, 3):
        con.execute(f"delete from r where id = {gone}")
        after = [levels(m) for m in matchers]
        for old, new in zip(before, after, strict=True):
            assert all(new.get(i, 0) <= level for i, level in old.items())
            assert set(new) <= set(old)
        before = after


def _pairs(con, sql: str) -> set[tuple[int, int]]:  # type: ignore[no-untyped-def]
    return set(con.execute(f"select distinct l, r from ({sql})").fetchall())


@pytest.mark.parametrize("seed", [5, 12])
def test_carried_pairs_and_regrown_rows_give_every_candidate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """Rows leave the open tables between two passes: the pairs a later pass carries
    (those of rows outside REGROW, still open) and the pairs it builds for the rows
    in REGROW are exactly the candidates built from scratch, and every carried pair
    scores as it would from scratch."""
    import numpy as np

    from recon.config import load_rules
    from recon.db import connect

    from ..conftest import RULES

    data = gen.generate(tmp_path / "data", seed=seed, rows=500, mode="hard")
    _tight(monkeypatch)
    _run(data, tmp_path / "run")  # loads the rows
    ruleset = load_rules(RULES)
    con = connect(tmp_path / "run" / "r.duckdb")
    con.execute("begin")
    con.execute("delete from match_members")
    con.execute("delete from matches")
    pipeline.prepare_open_tables(con, ruleset, left_side="bank", as_of=None)
    rng = np.random.default_rng(seed)
    t = pipeline.T
    # not the reversal: its later pass filters the pairs of the pass before (see
    # test_reversal_carry), it neither bounds nor scores them
    rules = [
        r for r in ruleset.rules
        if r.matcher.incremental and not isinstance(r.matcher, Reversal)
    ]
    assert len(rules) >= 5
    regrown = 0
    carried_ok = 0
    cuts = 0
    counted = 0
    word_levels = 0
    with_bounded = 0
    for round_no in range(3):
        before = {}
        for rule in rules:
            m = rule.matcher
            for statement in m.prepare_sql(t):
                con.execute(statement)
            pairs = _pairs(con, m.candidates_sql(t))
            levels = pipeline._levels(con, m, t)
            # the first pass's one query gives the same pairs and levels
            paired = m.paired_sql(t)
            if paired is not None:
                both = con.execute(f"select l, r, level from ({paired})").fetchall()
                assert {(x, y) for x, y, _ in both if y is not None} == pairs, rule.name
                assert {(x, lv) for x, y, lv in both if y is None} == set(levels.iter_rows())
            # the joins reading their bounds from the levels build the same pairs
            con.register("__recon__test_levels", levels)
            with_levels = base.Tables(t.left, t.right, t.left_refs, t.right_refs,
                                      "__recon__test_levels")
            assert _pairs(con, m.candidates_sql(with_levels)) == pairs, rule.name
            # every row a bound cut is named, and no other
            with monkeypatch.context() as unbounded:
                unbounded.setattr(base, "FAN", 10**9)
                unbounded.setattr(base, "BLOCK_FAN", 10**9)
                every = _pairs(con, m.candidates_sql(t))
            cut = {left for left, _ in every - pairs}
            assert cut <= set(levels["id"].to_list()), rule.name
            cuts += len(cut)
            con.execute(
                "create or replace temp table __recon__c0 as "
                f"select distinct l, r from ({m.candidates_sql(t)})"
            )
            scored = _score(con, m, rule, "__recon__c0")
            # the right rows counted per slot now, where the bounds read such counts: the
            # later count takes them less those of the rows that leave
            counts = pipeline._counted(con, m, pipeline.Carried(scored, levels), "")
            counted += counts is not None
            # what a bound reads of the rows it cut, kept for the later count (in the
            # second round; the others read them from the open table)
            bounded = con.sql(
                f"select {', '.join(pipeline.BOUND_COLUMNS)} from {t.left} "
                "where id in (select id from levels)"
            ).pl()
            before[rule.name] = (
                pairs, levels, scored, base.closed_seq(con), counts,
                bounded if round_no == 1 and counts is not None else None,
            )
        # a third of the open rows of each side leave (matched by some rule), a few at
        # a time, as matches are recorded
        for table in (t.left, t.right):
            ids = [i for (i,) in con.execute(f"select id from {table}").fetchall()]
            gone = rng.choice(ids, size=len(ids) // 3, replace=False).tolist()
            for part in np.array_split(np.array(gone, dtype=np.int64), 4):
                pipeline._close(con, table, pl.Series(part, dtype=pl.Int64))
        pipeline.prepare_open_tables(con, ruleset, left_side="bank", as_of=None, fresh=False)
        # the reference pairs kept up to date are those of the keys now, each once
        kept_pairs = con.execute(f"select l, r from {t.ref_pairs}").fetchall()
        assert len(kept_pairs) == len(set(kept_pairs))
        assert set(kept_pairs) == set(con.execute(base.ref_pairs_sql(t)).fetchall())
        for rule in rules:
            m = rule.matcher
            old_pairs, old_levels, old_scored, seen, old_counts, old_bounded = before[rule.name]
            carried = pipeline.Carried(
                old_scored.select("l", "r"), old_levels, seen, counts=old_counts,
                bounded=old_bounded,
            )
            left = base.still_open(con, t.left, seen)
            levels_now, regrow_ids, _, bounded_now = pipeline._regrow(con, m, carried, left)
            if bounded_now is not None:
                # what the next count reads: the rows still bounded, as the table has them
                assert sorted(bounded_now["id"]) == sorted(levels_now["id"]), rule.name
                with_bounded += old_bounded is not None
            # the levels counted again where right rows left equal those counted afresh
            afresh = pipeline._levels(
                con, m, base.Tables("__recon__bounded", t.right, t.left_refs, t.right_refs)
            )
            assert set(levels_now.iter_rows()) == set(afresh.iter_rows()), rule.name
            if isinstance(m, Fuzzy):
                word_levels += levels_now.height
            regrow = {i for (i,) in con.execute(f"select id from {pipeline.REGROW}").fetchall()}
            assert set(regrow_ids.to_list()) == regrow, rule.name
            regrown += len(regrow)
            left = {i for (i,) in con.execute(f"select id from {t.left}").fetchall()}
            right = {i for (i,) in con.execute(f"select id from {t.right}").fetchall()}
            grown_t = base.Tables(pipeline.REGROW, t.right, t.left_refs, t.right_refs)
            for statement in m.prepare_sql(grown_t):
                con.execute(statement)
            grown = _pairs(con, m.candidates_sql(grown_t))
            assert all(l in regrow for l, _ in grown)
            kept = {(l, r) for l, r in old_pairs if l in left and l not in regrow and r in right}
            for statement in m.prepare_sql(t):
                con.execute(statement)
            assert kept | grown == _pairs(con, m.candidates_sql(t)), rule.name
            # and a carried pair scores as it would now
            con.execute(
                "create or replace temp table __recon__c0 as "
                f"select distinct l, r from ({m.candidates_sql(t)})"
            )
            now = _score(con, m, rule, "__recon__c0")
            same = old_scored.join(now, on=["l", "r"], how="inner", suffix="_now")
            same = same.filter(~pl.col("l").is_in(list(regrow)))
            assert same.filter(pl.col("score") != pl.col("score_now")).height == 0, rule.name
            carried_ok += same.height
    assert regrown > 0 and carried_ok > 0 and cuts > 0
    # the fee and FX rules (one bucket key each) and the fuzzy rule (a word join per
    # key) read their levels from counts, in each round brought up to date by the rows
    # that left since; the word joins' levels there were not all zero
    assert counted == 3 * 3
    assert word_levels > 0
    assert with_bounded == 3  # the second round's three rules read the rows kept


def _score(con, m, rule, cand: str) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    from recon.scoring import score_pairs, with_shared_refs

    frame = score_pairs(
        con,
        pipeline.T,
        cand,
        tolerance=m.amount_tolerance(),
        window=m.date,
        text=m.text_fields(),
        weights=rule.weights,
        right_amount=m.right_amount_sql(),
        explain=False,
    )
    frame = with_shared_refs(con, pipeline.T, frame)
    return frame.select("l", "r", "score", "shared_refs")


@pytest.mark.parametrize("seed", [5, 9])
def test_group_later_passes_search_only_changed_anchors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """A group rule's later pass searches only the blocks that changed (and of those,
    only the blocks that gained a row), keeps the others' solutions, and the run
    equals one that searches every block again."""
    from recon import groups
    from recon.matchers.group import Group

    data = gen.generate(tmp_path / "data", seed=seed, rows=600, mode="hard")
    _tight(monkeypatch)
    # per search of a rule's blocks: (block rows searched, block rows read)
    searched: list[list[int]] = []
    real_find, real_carried = groups.find_solutions, groups.carried_solutions

    def find(con, m, blocks, anchors=None):  # type: ignore[no-untyped-def]
        some = blocks if anchors is None else blocks.join(anchors, on="a", how="semi")
        searched[-1][0] += some.height
        return real_find(con, m, blocks, anchors)

    def carried(con, m, carry, blocks):  # type: ignore[no-untyped-def]
        searched.append([0, blocks.height])
        return real_carried(con, m, carry, blocks)

    monkeypatch.setattr(groups, "find_solutions", find)
    monkeypatch.setattr(groups, "carried_solutions", carried)
    incremental = _run(data, tmp_path / "incremental")
    later = [s for s in searched if s[0] < s[1]]
    # later passes ran, and each searched only part of the blocks
    assert len(searched) >= 4 and later
    monkeypatch.setattr(Group, "incremental", False)
    monkeypatch.setattr(groups, "find_solutions", real_find)
    searched.clear()
    scratch = _run(data, tmp_path / "scratch")
    assert not searched  # every pass searched every block, carrying nothing
    for name in OUTPUTS:
        assert incremental[name] == scratch[name], name
    assert b"group_" in scratch["matches.csv"]


def _blocks(con, rows: list[tuple[int, str, int, int, int]]) -> pl.DataFrame:  # type: ignore[no-untyped-def]
    """The blocks (as a frame, and as temp table __recon__gb for the SQL search) from
    (anchor, block kind, member, member value, anchor value) rows."""
    con.execute(
        "create or replace temp table raw (a bigint, blk varchar, x bigint, v bigint, t bigint)"
    )
    if rows:
        con.executemany("insert into raw values (?, ?, ?, ?, ?)", rows)
    con.execute(
        """create or replace temp table __recon__gb as
        select a, blk, x, v, t,
               row_number() over (partition by a, blk order by x) as k,
               row_number() over (partition by a, blk order by x) = 1 as first,
               count(*) over (partition by a, blk) as n,
               sum(v) over (partition by a, blk) as total
        from (select distinct * from raw)"""
    )
    return con.sql("select * from __recon__gb").pl()


_MEMBER = st.tuples(
    st.integers(1, 6),  # anchor
    st.sampled_from(["counterparty", "reference"]),
    st.integers(1, 14),  # member
)


#: Two passes of a group rule's blocks (see _passes).
_PASSES = given(
    before=st.lists(_MEMBER, max_size=60),
    after=st.lists(_MEMBER, max_size=60),
    keep=st.lists(st.booleans(), max_size=60),
)


#: A case found before: rows 1 and 2 of an anchor's counterparty block moved to its
#: reference block (DuckDB's hash(blk, x) xors its arguments' hashes, so the block
#: fingerprints, an xor of those, did not change and the carry kept a stale subset).
_MOVED = example(
    before=[(3, "counterparty", 1), (3, "counterparty", 2), (3, "counterparty", 3)],
    after=[(3, "reference", 1), (3, "reference", 2)],
    keep=[False, False],
)


def _passes(
    before: list[tuple[int, str, int]], after: list[tuple[int, str, int]], keep: list[bool]
) -> tuple[list[tuple[int, str, int, int, int]], list[tuple[int, str, int, int, int]]]:
    """The block rows of two passes: `before`'s, then those `keep` keeps (the others
    were matched elsewhere) and `after`'s (a key regained).  Amounts are fixed per row
    id, so a subset sum can hit its anchor's often."""

    def row(a: int, blk: str, x: int) -> tuple[int, str, int, int, int]:
        return (a, blk, x, 100 * (x % 5 + 1), 100 * (a % 4 + 3))

    first = [row(*m) for m in before]
    kept = [r for r, k in zip(first, keep + [True] * len(first), strict=False) if k]
    return first, kept + [row(*m) for m in after]


@settings(max_examples=60, deadline=None)
@_PASSES
@_MOVED
def test_carried_solutions_equal_a_full_search(
    before: list[tuple[int, str, int]], after: list[tuple[int, str, int]], keep: list[bool]
) -> None:
    """Whatever rows leave or join the blocks between two passes, the carried search
    finds exactly the subsets (and numbering) a full search finds."""
    import duckdb

    from recon import groups
    from recon.matchers.group import Group

    first, second = _passes(before, after, keep)
    con = duckdb.connect()
    m = Group(max_group=4, max_block=12)
    carry = groups.GroupCarry()
    blocks = _blocks(con, first)
    assert groups.carried_solutions(con, m, carry, blocks).equals(
        groups.find_solutions(con, m, blocks)
    )
    blocks = _blocks(con, second)
    carried = groups.carried_solutions(con, m, carry, blocks)
    full = groups.find_solutions(con, m, blocks)
    assert carried.sort("sol").equals(full.sort("sol"))


@settings(max_examples=60, deadline=None)
@_PASSES
@_MOVED
def test_carried_over_the_blocks_the_search_reads_equal_a_full_search(
    before: list[tuple[int, str, int]], after: list[tuple[int, str, int]], keep: list[bool]
) -> None:
    """build_blocks fetches only the blocks the search reads (groups.eligible_sql), so
    the fingerprints cover only those: an anchor whose other blocks changed keeps its
    solutions.  Over two passes that finds what a full search of every block finds."""
    import duckdb

    from recon import groups
    from recon.matchers.group import Group

    con = duckdb.connect()
    # a small max_block, so that blocks fall in and out of what the search reads
    m = Group(max_group=3, max_block=4)

    def read(rows: list[tuple[int, str, int, int, int]]) -> pl.DataFrame:
        every = _blocks(con, rows)  # noqa: F841 (read by DuckDB below)
        return con.sql(f"select * from every where {groups.eligible_sql(m)}").pl()

    first, second = _passes(before, after, keep)
    carry = groups.GroupCarry()
    groups.carried_solutions(con, m, carry, read(first))
    carried = groups.carried_solutions(con, m, carry, read(second))
    full = groups.find_solutions(con, m, _blocks(con, second))
    assert carried.sort("sol").equals(full.sort("sol"))


@settings(max_examples=80, deadline=None)
@given(
    before=st.lists(_MEMBER, max_size=60),
    keep=st.lists(st.booleans(), max_size=60),
    after=st.lists(_MEMBER, max_size=8),
    signs=st.lists(st.booleans(), min_size=14, max_size=14),
)
def test_shrunk_blocks_keep_their_subsets_with_mixed_signs(
    before: list[tuple[int, str, int]],
    keep: list[bool],
    after: list[tuple[int, str, int]],
    signs: list[bool],
) -> None:
    """Blocks that only lost rows take their solutions from the pass before
    (groups._shrunk_solutions); with credit notes among the rows (the kernel's pruning
    depends on signs and order) and whole blocks over max_group rows, that is what a
    full search of the same blocks finds, over three passes."""
    import duckdb

    from recon import groups
    from recon.matchers.group import Group

    def row(a: int, blk: str, x: int) -> tuple[int, str, int, int, int]:
        return (a, blk, x, (1 if signs[x - 1] else -1) * 100 * (x % 4 + 1), 100 * (a % 3 + 2))

    first = [row(*m) for m in before]
    second = [r for r, k in zip(first, keep + [True] * len(first), strict=False) if k]
    third = second[1::2] + [row(*m) for m in after]
    con = duckdb.connect()
    m = Group(max_group=3, max_block=8)

    def read(rows: list[tuple[int, str, int, int, int]]) -> pl.DataFrame:
        every = _blocks(con, rows)  # noqa: F841 (read by DuckDB below)
        return con.sql(f"select * from every where {groups.eligible_sql(m)}").pl()

    carry = groups.GroupCarry()
    for rows in (first, second, third):
        carried = groups.carried_solutions(con, m, carry, read(rows))
        full = groups.find_solutions(con, m, _blocks(con, rows))
        assert carried.sort("sol").equals(full.sort("sol"))


def _sql_search(con, max_group: int, max_block: int):  # type: ignore[no-untyped-def]
    """The group search as SQL did it before the compiled kernel: partial subsets
    built by hash joins on the remaining amount, met in the middle."""
    eligible = f"n <= {max_block} and n >= 2 and abs(total) >= abs(t)"
    parts = [
        "select a, xs from gp2 where s = t",
        f"""select a, list(x order by k) from gb group by a, blk
            having sum(v) = any_value(t) and count(*) > {max_group}""",
    ]
    if max_group >= 3:
        parts.append(
            """select p.a, list_append(p.xs, c.x) from gp2 p join gb c
            on c.a = p.a and c.blk = p.blk and c.v = p.t - p.s and c.k > p.k2"""
        )
    if max_group >= 4:
        parts.append(
            """select x.a, list_concat(x.xs, y.xs) from gp2 x join gp2 y
            on y.a = x.a and y.blk = x.blk and y.s = x.t - x.s and y.k1 > x.k2"""
        )
    if max_group >= 5:
        parts.append(
            """select x.a, list_concat(x.xs, y.xs) from gp3 x join gp2 y
            on y.a = x.a and y.blk = x.blk and y.s = x.t - x.s and y.k1 > x.k3"""
        )
    if max_group >= 6:
        parts.append(
            """select x.a, list_concat(x.xs, y.xs) from gp3 x join gp3 y
            on y.a = x.a and y.blk = x.blk and y.s = x.t - x.s and y.k1 > x.k3"""
        )
    found = "select distinct a, list_sort(xs) as xs from (" + " union all ".join(parts) + ")"
    return con.sql(
        f"""with gb as materialized (select * from __recon__gb where {eligible}),
        gp2 as materialized (
            select x1.a, x1.blk, x1.k as k1, x2.k as k2, [x1.x, x2.x] as xs,
                   x1.v + x2.v as s, x1.t
            from gb x1 join gb x2 on x1.a = x2.a and x1.blk = x2.blk and x1.k < x2.k
            where abs(x1.v + x2.v) <= abs(x1.t)),
        gp3 as materialized (
            select p.a, p.blk, p.k1, p.k2, c.k as k3, list_append(p.xs, c.x) as xs,
                   p.s + c.v as s, p.t
            from gp2 p join gb c on c.a = p.a and c.blk = p.blk and c.k > p.k2
            where abs(p.s + c.v) < abs(p.t)),
        s as ({found}),
        counted as (select a, xs, count(*) over (partition by a) as n from s)
        select row_number() over (order by a, xs) as sol, a, xs, n from counted"""
    ).pl()


@settings(max_examples=80, deadline=None)
@given(rows=st.lists(_MEMBER, max_size=80), max_group=st.integers(2, 6))
def test_group_search_equals_the_sql_search(
    rows: list[tuple[int, str, int]], max_group: int
) -> None:
    """The compiled search finds the subsets the SQL search found, numbered alike,
    with amounts of both signs (credit notes) and subsets found in two block kinds."""
    import duckdb

    from recon import groups
    from recon.matchers.group import Group

    con = duckdb.connect()
    blocks = _blocks(
        con,
        [
            (a, blk, x, 100 * (x % 5 + 1) * (-1 if x % 7 == 0 else 1), 100 * (a % 4 + 3))
            for a, blk, x in rows
        ],
    )
    m = Group(max_group=max_group, max_block=12)
    found = groups.find_solutions(con, m, blocks)
    assert found.sort("sol").equals(_sql_search(con, max_group, 12).sort("sol"))
    assert found["sol"].to_list() == list(range(1, found.height + 1))


@pytest.mark.parametrize(("seed", "rows", "max_side"), [(8, 3000, 300), (12, 3000, 1)])
def test_what_a_later_pass_takes_over_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, rows: int, max_side: int
) -> None:
    """A later pass decides again only the components of the last assignment that rows
    left or joined, and of those decided by the mutual-best rule (every component of
    more than `max_side` rows a side) only the pairs near a change; taking over the
    others' suggestions and ambiguous rows gives what deciding every pair again gives."""
    data = gen.generate(tmp_path / "data", seed=seed, rows=rows, mode="hard")
    monkeypatch.setattr(assigning, "MAX_SIDE", max_side)
    taken: list[int] = []  # pairs not decided again
    redone: list[int] = []  # pairs of big components decided again
    context: list[int] = []  # pairs of changed big components read, not decided again
    real = pipeline._with_carried

    def spy(pairs, carried, regrow, left, right):  # type: ignore[no-untyped-def]
        kept, plan = real(pairs, carried, regrow, left, right)
        redo = int(plan.near["redo"].sum())
        taken.append(kept.height - plan.exact.height - redo)
        redone.append(redo)
        context.append(plan.near.height - redo)
        return kept, plan

    monkeypatch.setattr(pipeline, "_with_carried", spy)
    fast = _run(data, tmp_path / "settled")

    def everything(pairs, carried, regrow, left, right):  # type: ignore[no-untyped-def]
        kept, plan = real(pairs, carried, regrow, left, right)
        old = [carried.pairs, kept] + ([carried.dropped] if carried.dropped is not None else [])
        rows = pl.concat([f.select(pl.col("l", "r").cast(pl.Int64)) for f in old])
        every = pipeline.Plan(
            kept, kept.clear().with_columns(redo=pl.lit(True)),
            rows["l"].unique(), rows["r"].unique(), plan.big,
        )
        return kept, every

    monkeypatch.setattr(pipeline, "_with_carried", everything)
    slow = _run(data, tmp_path / "again")
    assert sum(taken) > 0, "nothing was taken over"
    if max_side < 300:
        assert sum(redone) > 0 and sum(context) > 0, "no big component near a change"
    for name in OUTPUTS:
        assert fast[name] == slow[name], name

    def rules(folder: str) -> list[dict[str, object]]:
        summary = json.loads((tmp_path / folder / "out" / "summary.json").read_text())
        return [{k: v for k, v in r.items() if k != "seconds"} for r in summary["rules"]]

    assert rules("settled") == rules("again")
