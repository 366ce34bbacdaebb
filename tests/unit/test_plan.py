"""A rule's later pass decides again only what a change could alter (pipeline.Plan), and
what it gives is what assigning the whole graph again gives.

Components above MAX_SIDE rows a side are decided by the mutual-best rule, pair by pair
from their rows' own pairs (scored among the copies of an item their left row pairs
with); the pass decides again only the pairs of rows whose pairs changed, of right rows
pairing with a changed left row, and of components the last assignment did not decide
by that rule, and takes over the others' decisions.  MAX_SIDE is made tiny here so that
a graph of a dozen rows a side has such components, and rows leave and rows gain pairs
between passes as in a run.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon import assign as assigning
from recon import pipeline
from recon.assign import assign
from recon.matchers.base import IdSet

RULE = SimpleNamespace(name="fuzzy_name", margin=0.05, auto_above=0.9)

#: scores close enough for ties and near ties, within the margin and past it
SCORES = np.array([0.6, 0.7, 0.72, 0.8, 0.85, 0.88, 0.9, 0.95, 0.97])


def _pairs(
    rng: np.random.Generator, left: list[int], right: list[int], n: int, twins: bool
) -> pl.DataFrame:
    """Up to `n` distinct scored pairs of `left` and `right` rows; with `twins`, a right
    row's item (`r_key`) is shared by its twin (ids 2k and 2k + 1)."""
    if not left or not right or n <= 0:
        return pl.DataFrame(
            schema={"l": pl.Int64, "r": pl.Int64, "score": pl.Float64, "r_key": pl.Int64}
        )
    frame = pl.DataFrame({
        "l": rng.choice(left, n).astype(np.int64),
        "r": rng.choice(right, n).astype(np.int64),
    }).unique(subset=["l", "r"], maintain_order=True)
    return frame.with_columns(
        pl.Series("score", rng.choice(SCORES, frame.height)),
        (pl.col("r") // 2 if twins else pl.col("r")).alias("r_key"),
    )


def _whole(pairs: pl.DataFrame) -> tuple[list, list, list]:  # type: ignore[type-arg]
    """Accepted pairs, withheld pairs and ambiguous-row records of assigning `pairs`
    whole: what every later pass must give."""
    result = assign(pairs, margin=RULE.margin, auto_above=RULE.auto_above)
    records = pipeline._near_rivals(pairs, result.ambiguous, RULE)  # type: ignore[arg-type]
    return _sets(result.accepted, result.ambiguous, records)


def _sets(accepted, withheld, records) -> tuple[list, list, list]:  # type: ignore[no-untyped-def,type-arg]
    """The three as sorted lists: a pair or a row twice would show."""
    rows = []
    if records is not None:
        rows = sorted(
            (r["id"], r["side"], tuple(r["alternatives"]), round(r["best"], 9))
            for r in records.iter_rows(named=True)
        )
    return (
        sorted((a["l"], a["r"], round(a["score"], 9)) for a in accepted.iter_rows(named=True)),
        sorted((w["l"], w["r"]) for w in withheld.iter_rows(named=True)),
        rows,
    )


@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), side=st.integers(1, 3))
def test_later_passes_decide_what_assigning_the_whole_graph_decides(
    seed: int, side: int
) -> None:
    rng = np.random.default_rng(seed)
    old_max, assigning.MAX_SIDE = assigning.MAX_SIDE, side
    try:
        _passes(rng)
    finally:
        assigning.MAX_SIDE = old_max


def _passes(rng: np.random.Generator) -> None:
    n_left, n_right = int(rng.integers(4, 16)), int(rng.integers(4, 16))
    left = list(range(1, n_left + 1))
    right = list(range(1001, 1001 + n_right))
    twins = bool(rng.random() < 0.5)
    pairs = _pairs(rng, left, right, int(rng.integers(4, 3 * (n_left + n_right))), twins)
    # the first pass: every pair assigned
    result = assign(pairs, margin=RULE.margin, auto_above=RULE.auto_above)
    records = pipeline._near_rivals(pairs, result.ambiguous, RULE)  # type: ignore[arg-type]
    carried = pipeline.Carried(pairs, pl.DataFrame())
    _carry(carried, result, records)
    open_l, open_r = set(left), set(right)
    for _ in range(3):
        # the rows the first pass matched leave, and some others (other rules' matches)
        auto = result.accepted.filter(pl.col("score") >= RULE.auto_above)
        gone_l = set(auto["l"]) | {x for x in open_l if rng.random() < 0.12}
        gone_r = set(auto["r"]) | {x for x in open_r if rng.random() < 0.12}
        seen_l, seen_r = open_l, open_r
        open_l, open_r = open_l - gone_l, open_r - gone_r
        # some open left rows have their pairs built again (a bound relaxed), with new
        # partners or without their old ones
        regrow = sorted(x for x in open_l if rng.random() < 0.2)
        new = _pairs(
            rng, regrow, sorted(open_r), int(rng.integers(0, 3 * len(regrow) + 1)), twins
        )
        # the rows still open, of those open when the last pass ran
        still_l = IdSet(pl.Series(sorted(seen_l - open_l), dtype=pl.Int64), out=True)
        still_r = IdSet(pl.Series(sorted(seen_r - open_r), dtype=pl.Int64), out=True)
        regrown = pl.Series("id", regrow, dtype=pl.Int64)
        graph, plan = pipeline._with_carried(new, carried, regrown, still_l, still_r)
        old_suggested, old_ambiguous, old_withheld = plan.replay(carried, still_l, still_r)
        result, records = plan.decide(RULE, old_withheld)  # type: ignore[arg-type]
        # every pair of two open rows, and no other
        assert all(l in open_l and r in open_r for l, r in graph.select("l", "r").iter_rows())
        # what the near pairs are read for: every pair of a right row of a pair decided
        # again is decided again, and the near pairs hold every pair of their left rows
        redo = plan.near.filter("redo")
        assert plan.near.filter(pl.col("r").is_in(redo["r"].implode()))["redo"].all()
        rows = plan.near["l"].unique().implode()
        assert graph.filter(pl.col("l").is_in(rows)).height == plan.near.height
        # the pairs taken over were not matched automatically (their rows would have
        # left): the whole graph's accepted pairs are those decided again and the
        # suggestions taken over
        accepted = result.accepted.select("l", "r", "score")
        if old_suggested is not None:
            accepted = pl.concat([accepted, old_suggested.select("l", "r", "score")])
        withheld = result.ambiguous.select("l", "r")
        if old_withheld is not None:
            withheld = pl.concat([withheld, old_withheld.select("l", "r")])
        if old_ambiguous is not None and old_ambiguous.height:
            records = old_ambiguous if records is None else pl.concat([records, old_ambiguous])
        assert _sets(accepted, withheld, records) == _whole(graph)
        # the left rows of the big components, for the next pass, are assign's
        assert sorted(plan.big) == sorted(assign(graph, margin=RULE.margin, auto_above=RULE.auto_above).big)
        carried = pipeline.Carried(graph, pl.DataFrame())
        suggested = pl.concat([
            result.accepted.filter(pl.col("score") < RULE.auto_above).select("l", "r", "score"),
            *([old_suggested.select("l", "r", "score")] if old_suggested is not None else []),
        ])
        _carry(carried, result, records, suggested, withheld)


def _carry(  # type: ignore[no-untyped-def]
    carried: pipeline.Carried, result, records, suggested=None, withheld=None
) -> None:
    """What run_rule leaves for the next pass: the pairs of rows not matched
    automatically, those dropped, the suggestions, records, withheld pairs, big rows."""
    auto = result.accepted.filter(pl.col("score") >= RULE.auto_above)
    touch = pl.col("l").is_in(auto["l"].implode()) | pl.col("r").is_in(auto["r"].implode())
    carried.dropped = carried.pairs.filter(touch).select("l", "r")
    carried.pairs = carried.pairs.filter(~touch)
    if suggested is None:
        suggested = result.accepted.filter(pl.col("score") < RULE.auto_above)
    carried.suggested = suggested.select("l", "r", "score")
    carried.ambiguous = records
    carried.withheld = (withheld if withheld is not None else result.ambiguous).select("l", "r")
    carried.big = result.big


def test_big_components_are_those_assign_decides_by_the_mutual_best_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # a 3 x 3 component (big with MAX_SIDE 2), a star of one left row and four right
    # rows, and a 2 x 2 component
    pairs = pl.DataFrame({
        "l": [1, 1, 2, 2, 3, 4, 4, 4, 4, 5, 5, 6],
        "r": [11, 12, 12, 13, 13, 21, 22, 23, 24, 31, 32, 32],
    })
    monkeypatch.setattr(assigning, "MAX_SIDE", 2)
    comp = assigning.components(pairs["l"], pairs["r"])
    every = np.ones(pairs.height, dtype=bool)
    flagged = assigning.big_components(comp, pairs["l"], pairs["r"], every)
    assert flagged[comp].tolist() == [True] * 5 + [False] * 7
    # only the components asked about are looked at
    assert not assigning.big_components(comp, pairs["l"], pairs["r"], ~every).any()
    scored = pairs.with_columns(score=pl.lit(0.9))
    assert assign(scored, margin=0.05).big.sort().to_list() == [1, 2, 3]
