"""A group rule's later pass takes its blocks from those of the pass before (the rows
still open, and the names that came under the name-block cap), not from the open tables
again: at every later pass they equal the blocks fetched afresh, and the run equals one
that fetches every pass's blocks.

At 600 lines no name has more open rows than a name block holds (4 x max_block), and
the keys coming under their cap pair few rows: the run test caps names at 4 rows and
keys at one; the hypothesis test makes open tables of a few names and keys, a name cap
of 3 and waves of rows leaving and of a key coming under its cap.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from recon import groups, pipeline
from recon.config import Rule
from recon.matchers.base import DateWindow, Tables
from recon.matchers.group import Group

from ..test_generator import gen
from .test_incremental import same_from_scratch
from .test_score_chunks import _run


def _sorted(blocks: pl.DataFrame) -> pl.DataFrame:
    return blocks.sort("a", "blk", "x")


@pytest.mark.parametrize("seed", [3, 5])
def test_held_blocks_equal_fetched_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    data = gen.generate(tmp_path / "data", seed=seed, rows=600, mode="hard")
    # reference keys of more than one row and names of more than 4 capped
    monkeypatch.setattr(pipeline, "MAX_REF_ROWS", 1)
    monkeypatch.setattr(Group, "name_cap", property(lambda self: 4))
    held_passes: list[int] = []
    came_under: list[int] = []
    gained: list[int] = []
    real_held, real_fetch, real_gained = (
        groups._held_blocks, groups._fetch_blocks, groups._gained_anchors
    )

    def spy_gained(con, t, anchor):  # type: ignore[no-untyped-def]
        anchors = real_gained(con, t, anchor)
        gained.append(anchors.height)
        return anchors

    def spy(con, m, t, rejected_sql, carry):  # type: ignore[no-untyped-def]
        crowded = carry.crowded.height
        blocks = real_held(con, m, t, rejected_sql, carry)
        came_under.append(crowded - carry.crowded.height)
        held_passes.append(blocks.height)
        for statement in m.prepare_sql(t):
            con.execute(statement)
        fetched = real_fetch(con, m, t, m.candidates_sql(t), rejected_sql)
        assert _sorted(blocks).equals(_sorted(fetched))
        return blocks

    monkeypatch.setattr(groups, "_held_blocks", spy)
    monkeypatch.setattr(groups, "_gained_anchors", spy_gained)
    held = _run(data, tmp_path / "held")
    # later passes took their blocks from the pass before, names came under their cap,
    # and keys under theirs, with pairs
    assert len(held_passes) >= 2 and sum(held_passes) > 0
    assert sum(came_under) > 0 and sum(gained) > 0
    same_from_scratch(data, tmp_path / "fetched", monkeypatch, held, held_passes)


_ROW = st.tuples(
    st.sampled_from(["ab", "cd", None]),  # name block
    st.sampled_from([100, 200, 300, 500, 700, -200]),  # amount
    st.integers(0, 9),  # day
    st.sampled_from(["R1", "R2", None]),  # reference key
    st.sampled_from(["R1", "R3", None]),  # a key over its cap until a wave gains it
)


def _open_tables(con, left: list, right: list) -> None:  # type: ignore[no-untyped-def,type-arg]
    """Open tables as the pipeline makes them (the columns a group rule reads), their
    reference keys, every pair sharing one, and no key gained or pair rejected."""
    for name, rows, first in (("l", left, 1), ("r", right, 1000)):
        frame = pl.DataFrame(  # noqa: F841 (read by DuckDB below)
            {
                "id": [first + i for i in range(len(rows))],
                "gnb": [r[0] for r in rows],
                "amount": [r[1] for r in rows],
                "day": [r[2] for r in rows],
                "ref": [r[3] for r in rows],
                "late": [r[4] for r in rows],
            },
            schema={"id": pl.Int64, "gnb": pl.String, "amount": pl.Int64, "day": pl.Int64,
                    "ref": pl.String, "late": pl.String},
        )
        con.execute(
            f"""create table {name} as select id, gnb, 'EUR' as currency,
            amount::decimal(20,4) as amount, date '2026-01-01' + day::integer as date
            from frame"""
        )
        con.execute(f"create table {name}_refs as select id, ref from frame where ref is not null")
        con.execute(f"create table {name}_refs_gain as select * from {name}_refs limit 0")
        con.execute(f"create table {name}_late as select id, late as ref from frame where late is not null")
    _pair(con)
    con.execute("create table rejected (l bigint, r bigint)")


def _pair(con) -> None:  # type: ignore[no-untyped-def]
    """The pairs of rows sharing a key, as the pipeline makes them each pass."""
    con.execute(
        "create or replace table pairs as select distinct a.id as l, b.id as r "
        "from l_refs a join r_refs b on a.ref = b.ref"
    )


def _gain(con, gain: bool) -> None:  # type: ignore[no-untyped-def]
    """A pass's open tables: with `gain`, the keys over their cap come under it (the
    rows still open with such a key get it, and are the pass's gain)."""
    for side in ("l", "r"):
        con.execute(f"delete from {side}_refs_gain")
        if gain:
            con.execute(
                f"insert into {side}_refs_gain select * from {side}_late "
                f"where id in (select id from {side})"
            )
            con.execute(f"insert into {side}_refs select * from {side}_refs_gain")
            con.execute(f"delete from {side}_late")
    _pair(con)


@settings(max_examples=150, deadline=None)
# a key gained that pairs nothing, no row leaving: has_ref changes, the blocks do not
@example(
    left=[("ab", 100, 0, "R1", None)] * 2 + [("cd", 200, 0, None, "R3")] * 2,
    right=[("ab", 100, 0, "R1", None), ("ab", 100, 1, "R1", None), ("cd", 100, 0, None, None),
           ("cd", 100, 1, None, None)],
    waves=[([], True)],
    direction="one_to_many",
)
@given(
    left=st.lists(_ROW, min_size=4, max_size=12),
    right=st.lists(_ROW, min_size=4, max_size=12),
    waves=st.lists(
        st.tuples(
            st.lists(st.one_of(st.integers(1, 12), st.integers(1000, 1011)), max_size=6),
            st.booleans(),
        ),
        min_size=1,
        max_size=3,
    ),
    direction=st.sampled_from(["one_to_many", "many_to_one"]),
)
def test_held_blocks_follow_rows_leaving(
    left: list,  # type: ignore[type-arg]
    right: list,  # type: ignore[type-arg]
    waves: list[tuple[list[int], bool]],
    direction: str,
) -> None:
    """Over waves of rows leaving (names coming under a tiny name-block cap among them,
    and a reference key coming under its cap in some), the blocks a carry gives equal
    those fetched from the open tables: what the search reads, and every block a later
    pass may read."""
    import duckdb

    from recon.matchers.base import new_closings
    from recon.pipeline import _close

    con = duckdb.connect()
    _open_tables(con, left, right)
    new_closings(con, ("l", "r"))
    t = Tables("l", "r", "l_refs", "r_refs", None, "pairs")
    m = Group(direction=direction, max_group=3, max_block=4, date=DateWindow(6, 6))
    rejected = "select l, r from rejected"
    original = Group.name_cap
    Group.name_cap = property(lambda self: 3)  # type: ignore[method-assign,assignment]
    try:
        carry = groups.GroupCarry()
        groups.build_blocks(con, m, t, rejected, carry)
        for wave, gain in waves:
            for table in ("l", "r"):
                # the wave's rows still open leave, as a match records them
                still = con.execute(f"select id from {table} where list_contains(?, id)", [wave])
                _close(con, table, pl.Series([i for (i,) in still.fetchall()], dtype=pl.Int64))
            _gain(con, gain)
            assert carry.held is not None
            before = carry.held
            held = groups.build_blocks(con, m, t, rejected, carry)
            # no row left and no key gained: the blocks are those of the pass before
            # (they are also when the rows that left were in no block: compared below)
            if not wave and not gain:
                assert carry.unchanged
            if carry.unchanged:
                assert carry.held is before
                # a key gained changes scores (has_ref) even where it pairs nothing
                assert con.execute(
                    "select (select count(*) from l_refs_gain) + (select count(*) from r_refs_gain)"
                ).fetchall() == [(0,)]
            for statement in m.prepare_sql(t):
                con.execute(statement)
            fetched = groups._fetch_blocks(con, m, t, m.candidates_sql(t), rejected)
            assert _sorted(carry.held).equals(_sorted(fetched))
            assert _sorted(held).equals(_sorted(fetched.filter(pl.col("n") <= m.max_block)))
            # the names still over the cap are those the carry holds, less those whose
            # rows have all left
            crowded = groups._crowded(con, m, t)
            assert crowded is not None and carry.crowded is not None
            gone = carry.crowded.join(crowded, on=["side", "nb", "currency"], how="anti")
            assert crowded.join(carry.crowded, on=["side", "nb", "currency"], how="anti").is_empty()
            for side, nb in gone.select("side", "nb").iter_rows():
                assert con.execute(f"select count(*) from {side} where gnb = ?", [nb]).fetchall() == [(0,)]
    finally:
        Group.name_cap = original  # type: ignore[method-assign]


def test_unchanged_blocks_take_the_search_of_the_pass_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A later pass whose blocks nothing changed (no block row left, none joined, no key
    gained) takes the chosen groups and ambiguous anchors of the pass before instead
    of searching and scoring again: the run equals one that searches every pass.
    (Names capped at 4 rows and keys at one make the passes many.)"""
    data = gen.generate(tmp_path / "data", seed=5, rows=1500, mode="hard")
    monkeypatch.setattr(pipeline, "MAX_REF_ROWS", 1)
    monkeypatch.setattr(Group, "name_cap", property(lambda self: 4))
    real, real_search = groups.build_blocks, groups._search
    unchanged: list[bool] = []
    searched_after: list[bool] = []

    def spy(con, m, t, rejected_sql, carry=None):  # type: ignore[no-untyped-def]
        blocks = real(con, m, t, rejected_sql, carry)
        unchanged.append(carry is not None and carry.unchanged)
        searched_after.append(False)
        return blocks

    def spy_search(*args, **kw):  # type: ignore[no-untyped-def]
        searched_after[-1] = True
        return real_search(*args, **kw)

    monkeypatch.setattr(groups, "build_blocks", spy)
    monkeypatch.setattr(groups, "_search", spy_search)
    taken = _run(data, tmp_path / "taken")
    assert any(unchanged), "no later pass found its blocks unchanged"
    assert not all(unchanged), "every pass found its blocks unchanged"
    # a pass searched exactly when its blocks changed
    assert searched_after == [not u for u in unchanged]

    def never(con, m, t, rejected_sql, carry=None):  # type: ignore[no-untyped-def]
        blocks = real(con, m, t, rejected_sql, carry)
        if carry is not None:
            carry.unchanged = False
        return blocks

    monkeypatch.setattr(groups, "build_blocks", never)
    searched = _run(data, tmp_path / "searched")
    assert taken == searched


def _scoring_setup() -> tuple[Any, Tables, Rule]:
    """An empty database, the open tables' names and a one-to-many group rule, for the
    scoring of a group rule's solutions alone."""
    import duckdb

    t = Tables("l", "r", "l_refs", "r_refs", None, "pairs")
    m = Group(direction="one_to_many", max_group=3, max_block=4, date=DateWindow(6, 6))
    rule = Rule("g", m, 0.9, 0.5, 0.05, {"amount": 1.0, "date": 1.0, "reference": 1.0, "name": 1.0})
    return duckdb.connect(), t, rule


@settings(max_examples=100, deadline=None)
@given(
    passes=st.lists(
        st.tuples(
            st.lists(st.tuples(st.integers(1, 5), st.integers(1000, 1004)), max_size=8),
            st.lists(st.integers(1, 5), max_size=2),
            st.lists(st.integers(1000, 1004), max_size=2),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_pair_features_are_scored_again_only_for_rows_that_gained_a_key(
    passes: list[tuple[list[tuple[int, int]], list[int], list[int]]],
) -> None:
    """Over passes of pairs asked for and rows gaining a reference key, the features a
    carry gives are those of every pair scored now, and the scorer is asked only for
    the pairs the pass before did not score, or whose row gained a key since.  (The
    scorer is a stand-in whose feature counts the keys each row of a pair gained.)"""
    con, t, rule = _scoring_setup()
    for side in ("l", "r"):
        con.execute(f"create table {side}_refs_gain (id bigint, ref varchar)")
    keys: dict[int, int] = {}  # row -> keys gained so far
    asked: list[set[tuple[int, int]]] = []

    def features(pairs: pl.DataFrame) -> pl.DataFrame:
        got = [keys.get(a, 0) * 10 + keys.get(b, 0) for a, b in pairs.select("l", "r").rows()]
        return pairs.select("l", "r").with_columns(
            pl.Series("s_ref", got, dtype=pl.Float64),
            *(pl.lit(0.5).alias(c) for c in ("s_date", "s_name", "name_sim")),
            pl.lit(0, dtype=pl.Int64).alias("date_diff"),
            pl.lit(False).alias("shares_ref"),
        )

    def scorer(con, t, pairs, **kw):  # type: ignore[no-untyped-def]
        asked.append(set(pairs.select("l", "r").rows()))
        return features(pairs)

    carry = groups.GroupCarry()
    before: set[tuple[int, int]] = set()
    original = groups.score_pairs
    groups.score_pairs = scorer  # type: ignore[assignment]
    try:
        for wanted, gain_l, gain_r in passes:
            for side, gain in (("l", gain_l), ("r", gain_r)):
                con.execute(f"delete from {side}_refs_gain")
                for row in gain:
                    keys[row] = keys.get(row, 0) + 1
                    con.execute(f"insert into {side}_refs_gain values (?, 'K')", [row])
            now = set(wanted)
            pairs = pl.DataFrame(sorted(now), schema={"l": pl.Int64, "r": pl.Int64}, orient="row")
            got = groups._pair_features(con, rule, t, pairs, carry)
            want = features(pairs).select(groups._FEATURES)
            assert got.sort("l", "r").equals(want.sort("l", "r"))
            fresh = {(a, b) for a, b in now if (a, b) not in before or a in gain_l or b in gain_r}
            assert asked.pop() == fresh
            before = now
    finally:
        groups.score_pairs = original  # type: ignore[assignment]


def test_a_pass_that_scores_nothing_keeps_no_features() -> None:
    """A pass whose blocks hold no solution scores no pair: the features kept from an
    earlier pass are dropped, since the keys this pass gained would not be read by a
    later pass taking them (it reads only its own pass's gains)."""
    con, t, rule = _scoring_setup()
    blocks = pl.DataFrame(
        schema={"a": pl.Int64, "blk": pl.String, "x": pl.Int64, "v": pl.Int64, "t": pl.Int64,
                "first": pl.Boolean, "n": pl.Int64, "total": pl.Int64}
    )
    carry = groups.GroupCarry(feats=pl.DataFrame({"l": [1], "r": [1000]}))
    chosen, ambiguous = groups._search(con, rule, t, blocks, carry)
    assert chosen.height == 0 and ambiguous.height == 0
    assert carry.feats is None
