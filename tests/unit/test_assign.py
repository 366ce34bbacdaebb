"""Optimal assignment with an ambiguity margin."""

from __future__ import annotations

from unittest.mock import patch

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from recon import assign as assign_module
from recon.assign import assign


def pairs(rows: list[tuple[int, int, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        rows, schema={"l": pl.Int64, "r": pl.Int64, "score": pl.Float64}, orient="row"
    )


def as_set(df: pl.DataFrame) -> set[tuple[int, int]]:
    return set(zip(df["l"].to_list(), df["r"].to_list(), strict=True))


def test_single_pairs_are_taken() -> None:
    a = assign(pairs([(1, 10, 0.9), (2, 20, 0.6)]), margin=0.05)
    assert as_set(a.accepted) == {(1, 10), (2, 20)}
    assert a.ambiguous.height == 0


def test_identical_twins_are_ambiguous_not_guessed() -> None:
    a = assign(pairs([(1, 10, 0.85), (1, 11, 0.85), (2, 10, 0.85), (2, 11, 0.85)]), margin=0.05)
    assert a.accepted.height == 0
    assert set(a.ambiguous["l"].to_list()) == {1, 2}


def test_close_second_candidate_is_ambiguous() -> None:
    a = assign(pairs([(1, 10, 0.90), (1, 11, 0.88)]), margin=0.05)
    assert a.accepted.height == 0
    assert as_set(a.ambiguous) == {(1, 10)}


def test_optimal_not_greedy() -> None:
    # greedy would take (1,10) at 0.9 and leave 2 unmatched; the optimum pairs both
    a = assign(pairs([(1, 10, 0.9), (1, 11, 0.8), (2, 10, 0.85)]), margin=0.05)
    assert as_set(a.accepted) == {(1, 11), (2, 10)}


def test_clear_winner_survives_a_weak_rival() -> None:
    a = assign(pairs([(1, 10, 0.95), (1, 11, 0.6), (2, 11, 0.9)]), margin=0.05)
    assert as_set(a.accepted) == {(1, 10), (2, 11)}


edges = st.lists(
    st.tuples(
        st.integers(0, 8), st.integers(100, 108), st.sampled_from([0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(edges)
def test_no_row_assigned_twice_and_only_real_pairs(rows: list[tuple[int, int, float]]) -> None:
    df = pairs(rows).unique(subset=["l", "r"], keep="first")
    a = assign(df, margin=0.05)
    acc = a.accepted
    assert acc["l"].is_unique().all() and acc["r"].is_unique().all()
    assert as_set(acc) <= as_set(df)
    assert not (as_set(acc) & as_set(a.ambiguous))


@settings(max_examples=100, deadline=None)
@given(edges, st.randoms(use_true_random=False))
def test_input_order_does_not_change_the_result(rows: list[tuple[int, int, float]], rnd) -> None:  # type: ignore[no-untyped-def]
    df = pairs(rows).unique(subset=["l", "r"], keep="first")
    shuffled = df.sample(fraction=1.0, shuffle=True, seed=rnd.randint(0, 10**6))
    a, b = assign(df, margin=0.05), assign(shuffled, margin=0.05)
    assert as_set(a.accepted) == as_set(b.accepted)
    assert as_set(a.ambiguous) == as_set(b.ambiguous)


def test_identical_twins_are_interchangeable_not_ambiguous() -> None:
    df = pairs([(1, 10, 0.9), (1, 11, 0.9)]).with_columns(
        pl.Series("r_key", ["k", "k"]), pl.Series("l_key", ["a", "a"])
    )
    a = assign(df, margin=0.05)
    assert as_set(a.accepted) == {(1, 10)}  # the first posting; 11 is its copy
    assert a.ambiguous.height == 0


@st.composite
def _small_graphs(draw: st.DrawFn) -> pl.DataFrame:
    """Up to 12 pairs over 4 left and 5 right rows; tied scores and copies are common."""
    pairs = draw(
        st.lists(st.tuples(st.integers(1, 4), st.integers(10, 14)), min_size=1, max_size=12,
                 unique=True)
    )
    keys = {r: draw(st.sampled_from(["copy-a", "copy-b", f"own-{r}"])) for _, r in pairs}
    return pl.DataFrame(
        {
            "l": [a for a, _ in pairs],
            "r": [b for _, b in pairs],
            "score": [draw(st.sampled_from([0.7, 0.88, 0.9, 0.92, 0.95])) for _ in pairs],
            "r_key": [keys[b] for _, b in pairs],
        }
    )


@settings(max_examples=300, deadline=None)
@given(_small_graphs())
def test_stars_solved_in_bulk_agree_with_the_exact_solver(pairs: pl.DataFrame) -> None:
    """One row with every candidate (a star) is solved without the per-component loop;
    the result must be what the loop's exact solver gives, ties and copies included."""
    fast = assign(pairs, margin=0.05)
    original = assign_module._solve_stars

    def by_loop(stars: pl.DataFrame, margin: float) -> tuple[pl.DataFrame, pl.DataFrame]:
        keep, amb = assign_module._solve_components(stars, margin, 300)
        return stars.filter(keep), stars.filter(amb)

    assign_module._solve_stars = by_loop
    try:
        slow = assign(pairs, margin=0.05)
    finally:
        assign_module._solve_stars = original
    assert fast.accepted.select("l", "r").rows() == slow.accepted.select("l", "r").rows()
    assert fast.ambiguous.select("l", "r").rows() == slow.ambiguous.select("l", "r").rows()


def _dense(pairs: pl.DataFrame) -> tuple[list[int], list[int], np.ndarray]:
    ls, rs = sorted(set(pairs["l"])), sorted(set(pairs["r"]))
    w = np.full((len(ls), len(rs)), _MISSING)
    for a, b, s in pairs.select("l", "r", "score").iter_rows():
        w[ls.index(a), rs.index(b)] = s
    return ls, rs, w


_MISSING = -1e6


def _best(w: np.ndarray) -> tuple[float, int]:
    """The definition's optimum, solved the slow way (scipy's dense solver): as many
    real pairs as possible, then the highest total: its total and number of pairs."""
    ri, ci = linear_sum_assignment(w, maximize=True)
    real = w[ri, ci] > _MISSING / 2
    return float(w[ri, ci][real].sum()), int(real.sum())


@settings(max_examples=300, deadline=None)
@given(_small_graphs())
def test_compiled_solver_agrees_with_the_definition(pairs: pl.DataFrame) -> None:
    """The compiled solver (one Hungarian solve per component, one augmentation per
    alternative) picks an optimum, and of its pairs accepts exactly those whose best
    alternative (the optimum without the pair, and without the pair's right row's
    copies for its left row) is at least the margin worse; the others it withholds
    as ambiguous.  Where optima tie, it may pick another than scipy would."""
    _check_against_definition(pairs)


@settings(max_examples=150, deadline=None)
@given(edges)
def test_compiled_solver_agrees_with_the_definition_on_larger_graphs(
    rows: list[tuple[int, int, float]],
) -> None:
    """Up to 9 rows a side and 40 pairs: longer augmenting paths, both orientations."""
    df = pairs(rows).unique(subset=["l", "r"], keep="first")
    if df.height:
        _check_against_definition(df.with_columns(pl.col("r").cast(pl.String).alias("r_key")))


#: Components with a few rows on one side and many on the other (a receipt and every
#: open invoice of its amount band), where most rows of the square solve are dummies.
lopsided = st.lists(
    st.tuples(
        st.integers(0, 3), st.integers(100, 120), st.sampled_from([0.6, 0.7, 0.75, 0.8, 0.9, 0.95])
    ),
    min_size=1,
    max_size=50,
)


@settings(max_examples=150, deadline=None)
@given(lopsided, st.booleans())
def test_compiled_solver_agrees_with_the_definition_on_lopsided_components(
    rows: list[tuple[int, int, float]], flip: bool
) -> None:
    """Up to 4 rows against 21: the dummy rows take the free columns without being
    augmented, and the alternatives are still those of the definition; `flip` puts
    the many rows on the left."""
    if flip:
        rows = [(b, a, s) for a, b, s in rows]
    df = pairs(rows).unique(subset=["l", "r"], keep="first")
    _check_against_definition(df.with_columns(pl.col("r").cast(pl.String).alias("r_key")))


def _check_against_definition(pairs: pl.DataFrame) -> None:
    fast = assign(pairs, margin=0.05)
    # copies of one item score alike for a row; the first posting wins (as in assign)
    pairs = pairs.sort("l", "r").with_columns(
        pl.col("score").max().over("l", "r_key")
        - 1e-6 * (pl.col("r").rank("ordinal").over("l", "r_key") - 1)
    )
    ls, rs, w = _dense(pairs)
    key = dict(zip(pairs["r"], pairs["r_key"], strict=True))
    chosen = as_set(fast.accepted) | as_set(fast.ambiguous)
    assert len({a for a, _ in chosen}) == len({b for _, b in chosen}) == len(chosen)
    total = sum(w[ls.index(a), rs.index(b)] for a, b in chosen)
    # an optimum (the generated graphs are small: solved whole, not per component)
    best, size = _best(w)
    assert abs(total - best) < 1e-9 and len(chosen) == size
    for a, b in chosen:
        twins = [j for j, r in enumerate(rs) if key[r] == key[b]]
        saved = w[ls.index(a), twins].copy()
        w[ls.index(a), twins] = _MISSING
        alt, _ = _best(w)
        w[ls.index(a), twins] = saved
        ambiguous = total - alt < 0.05 - 1e-12
        assert ((a, b) in as_set(fast.ambiguous)) == ambiguous, (a, b, total, alt)


@given(
    st.lists(
        st.tuples(
            st.integers(0, 6),
            st.integers(0, 12),
            st.sampled_from(["a", "b", "c"]),
            st.floats(0, 1, allow_nan=False),
        ),
        max_size=60,
        unique_by=lambda t: (t[0], t[1]),
    ),
    st.booleans(),
)
def test_twin_scores_are_the_windows_they_replace(
    rows: list[tuple[int, int, str, float]], hashed: bool
) -> None:
    """The numpy twin scores equal the polars windows over (l, r_key): the best score of
    a row's copies, less 1e-6 per copy of lower id; keys as text or as hashes."""
    df = pl.DataFrame(
        rows,
        schema={"l": pl.Int64, "r": pl.Int64, "r_key": pl.String, "score": pl.Float64},
        orient="row",
    )
    if hashed:
        df = df.with_columns(pl.col("r_key").hash())
    want = df.select(
        pl.col("score").max().over("l", "r_key")
        - 1e-6 * (pl.col("r").rank("ordinal").over("l", "r_key") - 1)
    ).to_series()
    got = assign_module._twin_scores(
        df["l"].to_numpy(),
        df["r"].to_numpy(),
        assign_module._codes(df["r_key"]),
        df["score"].to_numpy(),
    )
    assert got.tolist() == want.to_list()


@settings(max_examples=200, deadline=None)
@given(_small_graphs(), st.integers(1, 6), st.integers(2, 4))
def test_components_solved_in_slices_give_the_same_result(
    pairs: pl.DataFrame, part_pairs: int, threads: int
) -> None:
    """Large inputs are solved a slice of components at a time (PART_PAIRS), and the
    solver's components in slices on several threads; the pairs chosen and withheld,
    their columns and order are those of one solve of all on one thread."""
    pairs = pairs.with_columns(pl.int_range(pl.len()).alias("extra"))
    with patch.object(assign_module, "_SOLVER_THREADS", 1):
        whole = assign(pairs, margin=0.05)
    with (
        patch.object(assign_module, "PART_PAIRS", part_pairs),
        patch.object(assign_module, "_SOLVER_THREADS", threads),
    ):
        sliced = assign(pairs, margin=0.05)
    assert sliced.accepted.equals(whole.accepted)
    assert sliced.ambiguous.equals(whole.ambiguous)


def test_components_above_max_side_take_only_mutual_best_pairs_clear_of_rivals() -> None:
    """A component with more rows a side than max_side gets the mutual-best rule: a
    pair is taken when it is the best of both its rows by the margin, withheld when it
    is the best of both but a rival is within the margin."""
    clear = pairs([(1, 10, 0.9), (1, 11, 0.5), (2, 10, 0.6), (2, 11, 0.8)])
    a = assign(clear, margin=0.05, max_side=1)
    assert as_set(a.accepted) == {(1, 10), (2, 11)}
    close = pairs([(1, 10, 0.9), (1, 11, 0.88), (2, 11, 0.9), (2, 10, 0.5)])
    a = assign(close, margin=0.05, max_side=1)
    assert as_set(a.accepted) == set()
    assert as_set(a.ambiguous) == {(1, 10), (2, 11)}


def _mutual_best_one_component(
    lpos: np.ndarray, rpos: np.ndarray, score: np.ndarray, margin: float
) -> tuple[set[int], set[int]]:
    """The rule as it was first written, one component at a time with polars windows:
    the indexes of the accepted and of the ambiguous pairs."""
    df = pl.DataFrame({"l": lpos, "r": rpos, "s": score}).with_row_index("i")
    df = df.with_columns(
        pl.col("s").max().over("l").alias("lmax"),
        pl.col("s").max().over("r").alias("rmax"),
        pl.col("s").sort(descending=True).slice(1, 1).first().over("l").alias("l2"),
        pl.col("s").sort(descending=True).slice(1, 1).first().over("r").alias("r2"),
    )
    best = (pl.col("s") == pl.col("lmax")) & (pl.col("s") == pl.col("rmax"))
    clear = ((pl.col("s") - pl.col("l2").fill_null(-1.0)) >= margin) & (
        (pl.col("s") - pl.col("r2").fill_null(-1.0)) >= margin
    )
    return set(df.filter(best & clear)["i"]), set(df.filter(best & ~clear)["i"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            st.integers(0, 5),
            st.integers(0, 5),
            st.sampled_from([0.5, 0.7, 0.72, 0.75, 0.8, 0.9, 1.0]),
        ),
        max_size=60,
        unique_by=lambda t: t[:3],
    )
)
def test_mutual_best_of_all_big_components_at_once_is_the_rule_per_component(
    rows: list[tuple[int, int, int, float]],
) -> None:
    """The big components are decided together, sorted once; each pair's decision is
    the one the per-component rule gives (ties, single pairs and margins included)."""
    cols = list(zip(*rows, strict=True)) or [(), (), (), ()]
    comp, lpos, rpos = (np.array(c, dtype=np.int64) for c in cols[:3])
    score = np.array(cols[3], dtype=np.float64)
    keep, amb = assign_module._mutual_best(comp, lpos, rpos, score, 0.05)
    for c in set(comp.tolist()):
        idx = np.flatnonzero(comp == c)
        want_keep, want_amb = _mutual_best_one_component(lpos[idx], rpos[idx], score[idx], 0.05)
        assert {i for i, j in enumerate(idx) if keep[j]} == want_keep
        assert {i for i, j in enumerate(idx) if amb[j]} == want_amb


def test_an_unsure_pair_does_not_push_a_confident_row_onto_its_look_alike() -> None:
    # row 1 ties between 10 and 11 (0.85, 0.82); row 2 reaches 10 only, unsure (0.71):
    # two pairs outnumber one, and 1 went to 11, confident, where alone it was a tie
    df = pairs([(1, 10, 0.85), (1, 11, 0.82), (2, 10, 0.71)])
    assert as_set(assign(df, margin=0.05).accepted) == {(1, 11), (2, 10)}
    a = assign(df, margin=0.05, auto_above=0.8)
    assert as_set(a.accepted) == set()
    assert as_set(a.ambiguous) == {(1, 10)}


def test_an_unsure_pair_does_not_move_a_clear_winner() -> None:
    # 1 is clearly 10's (0.95 against 0.83); 2's unsure pair to 10 must not move it
    df = pairs([(1, 10, 0.95), (1, 11, 0.83), (2, 10, 0.78)])
    assert as_set(assign(df, margin=0.05).accepted) == {(1, 11), (2, 10)}
    a = assign(df, margin=0.05, auto_above=0.8)
    assert as_set(a.accepted) == {(1, 10)}
    assert a.ambiguous.height == 0


def test_confident_pairs_still_make_way_for_each_other() -> None:
    # all confident: the optimum pairs both rows, as before (see test_optimal_not_greedy)
    df = pairs([(1, 10, 0.9), (1, 11, 0.8), (2, 10, 0.85)])
    assert as_set(assign(df, margin=0.05, auto_above=0.8).accepted) == {(1, 11), (2, 10)}


def test_unsure_pairs_are_assigned_among_the_rows_left() -> None:
    # 1-10 is confident and clear; 2 and 3 compete for 11 and 12 below the bar
    df = pairs([(1, 10, 0.9), (2, 10, 0.6), (2, 11, 0.7), (3, 11, 0.75), (3, 12, 0.65)])
    a = assign(df, margin=0.05, auto_above=0.8)
    assert as_set(a.accepted) == {(1, 10), (2, 11), (3, 12)}


@settings(max_examples=300, deadline=None)
@given(_small_graphs(), st.sampled_from([0.8, 0.89, 0.9, 0.93]))
def test_unsure_pairs_never_add_a_confident_match(pairs: pl.DataFrame, auto: float) -> None:
    """The confident pairs accepted with the unsure ones among the candidates are some of
    those accepted without them: an unsure pair can make a confident one ambiguous, never
    choose one; and no row is taken twice.  Pairs are compared by item (a row's copies
    are one item, the first posting taken, scored as the best of them)."""
    a = assign(pairs, margin=0.05, auto_above=auto)
    acc = a.accepted
    assert acc["l"].is_unique().all() and acc["r"].is_unique().all()
    assert not (as_set(acc) & as_set(a.ambiguous))
    # a row's copies of one item score as the best of them (see _check_against_definition)
    twins = pairs.sort("l", "r").with_columns(
        pl.col("score").max().over("l", "r_key")
        - 1e-6 * (pl.col("r").rank("ordinal").over("l", "r_key") - 1)
    )
    alone = assign(twins.filter(pl.col("score") >= auto), margin=0.05, auto_above=auto)

    def items(df: pl.DataFrame) -> set[tuple[int, str]]:
        return set(df.select("l", "r_key").iter_rows())

    assert items(acc.filter(pl.col("score") >= auto)) <= items(alone.accepted)


def test_copies_of_a_left_row_are_interchangeable_not_ambiguous() -> None:
    # the same bank line loaded twice (two ids): the first takes the receipt, the copy
    # waits (and is reported as a duplicate), where both were a tie and neither matched
    df = pairs([(1, 10, 0.9), (2, 10, 0.9)]).with_columns(
        pl.Series("l_key", ["k", "k"]), pl.Series("r_key", ["a", "b"])
    )
    a = assign(df, margin=0.05)
    assert as_set(a.accepted) == {(1, 10)}
    assert a.ambiguous.height == 0
    # a copy pairing better with the receipt (a closer date) is the one taken
    better = df.with_columns(pl.Series("score", [0.85, 0.9]))
    assert as_set(assign(better, margin=0.05).accepted) == {(2, 10)}


def test_the_waiting_copy_pairs_with_what_is_left_in_a_later_pass() -> None:
    # two copies, two receipts of one item: the first copy now, the second next pass
    df = pairs([(1, 10, 0.9), (1, 11, 0.9), (2, 10, 0.9), (2, 11, 0.9)]).with_columns(
        pl.Series("l_key", ["k"] * 4), pl.Series("r_key", ["a", "a", "a", "a"])
    )
    first = assign(df, margin=0.05)
    assert as_set(first.accepted) == {(1, 10)}
    rest = df.filter((pl.col("l") != 1) & (pl.col("r") != 10))
    assert as_set(assign(rest, margin=0.05).accepted) == {(2, 11)}


def test_copies_in_a_component_decided_by_mutual_best_keep_their_pairs() -> None:
    # the mutual-best rule reads every pair (a later pass decides it from some of them)
    df = pairs([(1, 10, 0.9), (2, 10, 0.9), (2, 11, 0.6), (3, 11, 0.7)]).with_columns(
        pl.Series("l_key", ["k", "k", "k", "z"])
    )
    a = assign(df, margin=0.05, max_side=1)
    assert (1, 10) not in as_set(a.accepted)
