"""The array kernels of recon.assign against the plain forms they replace."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from recon import assign as assign_module
from recon.assign import assign

small = st.integers(0, 6)
rows = st.lists(st.tuples(small, small, st.integers(0, 4)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(rows)
def test_argsort_is_lexsort(data: list[tuple[int, int, int]]) -> None:
    """Sorted by the first key, then the next; ties (repeated rows) in index order."""
    a, b, c = (np.array([row[i] for row in data], dtype=np.int64) for i in range(3))
    got = assign_module._argsort(a, b, -c.astype(np.float64))
    assert got.tolist() == np.lexsort((-c.astype(np.float64), b, a)).tolist()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(-5, 5), max_size=40), st.booleans())
def test_codes_are_dense_ranks(values: list[int], ascending: bool) -> None:
    """Counted when the keys are in ascending order, ranked otherwise: the same codes."""
    key = pl.Series(sorted(values) if ascending else values, dtype=pl.Int64)
    want = key.rank("dense").cast(pl.Int64).to_numpy() - 1
    assert assign_module._codes(key).tolist() == want.tolist()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30)), max_size=60))
def test_positions_rank_ids_within_their_component(data: list[tuple[int, int]]) -> None:
    """As the window rank("dense").over(component) they replace, from 0."""
    frame = pl.DataFrame(data, schema={"c": pl.Int64, "i": pl.Int64}, orient="row").sort(
        "c", maintain_order=True
    )
    want = frame.select((pl.col("i").rank("dense").over("c") - 1).cast(pl.Int64)).to_series()
    got = assign_module._positions(frame["c"].to_numpy(), frame["i"].to_numpy())
    assert got.tolist() == want.to_list()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 9), min_size=1, max_size=30), st.integers(1, 5))
def test_slices_cover_every_component_once(sizes: list[int], n: int) -> None:
    """The slices the solver threads get hold every component, in order, once."""
    starts = np.r_[0, np.cumsum(sizes)].astype(np.int64)
    parts = assign_module._slices(starts, n)
    assert 1 <= len(parts) <= n
    spans = [(int(p[i]), int(p[i + 1])) for p in parts for i in range(len(p) - 1)]
    assert spans == list(zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True))


def test_a_repeated_pair_keeps_its_first_row() -> None:
    """The same (l, r) twice: the first row given is the one scored and reported."""
    pairs = pl.DataFrame(
        {"l": [1, 1, 2], "r": [10, 10, 20], "score": [0.9, 0.3, 0.8], "tag": ["a", "b", "c"]}
    )
    got = assign(pairs, margin=0.05).accepted
    assert got.select("l", "r", "score", "tag").rows() == [(1, 10, 0.9, "a"), (2, 20, 0.8, "c")]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.sampled_from([-(2**62), -7, -1, 0, 1, 2, 3, 9, 2**40, 2**62]), max_size=40),
    st.lists(st.integers(0, 2**63 + 50), max_size=40),
)
def test_codes_of_spread_and_unsigned_keys_are_dense_ranks(
    values: list[int], unsigned: list[int]
) -> None:
    """Keys far apart (ranked) and unsigned keys near 2**63 (counted over their span,
    as content hashes could be): the same codes as a dense rank."""
    for key in (
        pl.Series(values, dtype=pl.Int64),
        pl.Series([2**63 + v % 50 for v in unsigned], dtype=pl.UInt64),
        pl.Series(unsigned, dtype=pl.UInt64),
    ):
        want = key.rank("dense").cast(pl.Int64).to_numpy() - 1
        assert assign_module._codes(key).tolist() == want.tolist()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), min_size=1, max_size=40))
def test_component_labels_are_the_connected_components(edges: list[tuple[int, int]]) -> None:
    """The union-find's components are scipy's, numbered from 0 in order of first pair."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from recon.solver import component_labels

    l, r = (np.array([e[i] for e in edges], dtype=np.int64) for i in range(2))
    nl, nr = int(l.max()) + 1, int(r.max()) + 1
    graph = coo_matrix((np.ones(len(l)), (l, r + nl)), shape=(nl + nr, nl + nr))
    want = connected_components(graph, directed=False)[1][l]
    got = component_labels(l, r, nl, nr)
    # the same partition of the pairs, numbered in order of each component's first pair
    assert len(set(zip(want.tolist(), got.tolist(), strict=True))) == len(set(want.tolist()))
    firsts = [int(got[i]) for i in range(len(got)) if got[i] not in got[:i]]
    assert firsts == list(range(len(set(got.tolist()))))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 30), st.integers(0, 30)), min_size=1, max_size=40),
    st.sampled_from([0, 5, 2**40]),
    st.sampled_from([1, 3, 1000]),
)
def test_components_by_offset_are_those_by_code(
    edges: list[tuple[int, int]], shift: int, stretch: int
) -> None:
    """components() numbers ids close together by their offset from the least, others
    by their dense codes: the same labels either way (numbered by first pair)."""
    l = pl.Series([shift + stretch * e[0] for e in edges], dtype=pl.Int64)
    r = pl.Series([7 + stretch * e[1] for e in edges], dtype=pl.Int64)
    got = assign_module.components(l, r)
    want = assign_module._components(l, r)[0]
    assert got.tolist() == want.tolist()


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 6), st.integers(1, 20)), min_size=1, max_size=40
    ),
    st.sampled_from([0, 2**31 - 8, 2**40]),
)
def test_assignment_does_not_depend_on_the_size_of_the_ids(
    data: list[tuple[int, int, int]], shift: int
) -> None:
    """Ids packed in one sort key (below 2**31) or sorted as two columns (above): the
    same pairs chosen and withheld, the first of repeated pairs kept."""
    frame = pl.DataFrame(data, schema={"l": pl.Int64, "r": pl.Int64, "s": pl.Int64}, orient="row")
    score = (pl.col("s") / 20).alias("score")
    pairs = frame.select("l", "r", score, pl.int_range(pl.len()).alias("i"))
    moved = pairs.with_columns(pl.col("l") + shift, pl.col("r") + shift)
    base, other = assign(pairs, margin=0.05), assign(moved, margin=0.05)
    for a, b in ((base.accepted, other.accepted), (base.ambiguous, other.ambiguous)):
        back = b.with_columns(pl.col("l") - shift, pl.col("r") - shift)
        assert back.rows() == a.rows()
