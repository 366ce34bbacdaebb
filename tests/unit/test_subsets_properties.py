"""The compiled group search finds exactly the subsets its rules define.

The reference below enumerates every subset of every block with itertools and
applies the pruning of partial subsets the kernel documents (the SQL form's):
a pair is kept when |sum| <= |target|, a triple is a kept pair and a later row
with |sum| < |target|; a subset of four is two kept pairs, of five a kept
triple and a kept pair, of six two kept triples, in block order.
"""

from __future__ import annotations

from itertools import combinations
from math import comb

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon import subsets
from recon.subsets import exact_subsets


def _kept(values: list[int], limit: int, combo: tuple[int, ...]) -> bool:
    """Whether the kernel's partial subsets of `combo` are all kept."""

    def pair(rows: tuple[int, ...]) -> bool:
        return abs(sum(values[r] for r in rows)) <= limit

    def triple(rows: tuple[int, ...]) -> bool:
        return pair(rows[:2]) and abs(sum(values[r] for r in rows)) < limit

    halves = {
        2: pair(combo),
        3: pair(combo[:2]),
        4: pair(combo[:2]) and pair(combo[2:]),
        5: triple(combo[:3]) and pair(combo[3:]),
        6: triple(combo[:3]) and triple(combo[3:]),
    }
    return halves[len(combo)]


def _reference(blocks: list[tuple[list[int], int]], max_group: int) -> set[tuple[int, tuple]]:
    found: set[tuple[int, tuple]] = set()
    for b, (values, target) in enumerate(blocks):
        for size in range(2, min(max_group, len(values)) + 1):
            for combo in combinations(range(len(values)), size):
                if sum(values[r] for r in combo) == target and _kept(values, abs(target), combo):
                    found.add((b, combo))
        if len(values) > max_group and sum(values) == target:
            found.add((b, tuple(range(len(values)))))
    return found


def _kernel(blocks: list[tuple[list[int], int]], max_group: int) -> list[tuple[int, tuple]]:
    sizes = [len(v) for v, _ in blocks]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    v = np.array([x for values, _ in blocks for x in values], dtype=np.int64)
    t = np.array([target for values, target in blocks for _ in values], dtype=np.int64)
    block, offsets, members = exact_subsets(starts, v, t, max_group)
    out = []
    for i, b in enumerate(block):
        rows = members[offsets[i] : offsets[i + 1]] - starts[b]
        out.append((int(b), tuple(int(r) for r in rows)))
    return out


# amounts of a few values, both signs (credit notes, reversals), so that sums collide
amounts = st.integers(min_value=-6, max_value=12).filter(lambda x: x != 0)
blocks = st.lists(
    st.tuples(st.lists(amounts, min_size=2, max_size=9), st.integers(min_value=-15, max_value=30)),
    max_size=6,
)


@settings(deadline=None, max_examples=300)  # the first call compiles the kernel
@given(blocks, st.integers(min_value=2, max_value=6))
def test_kernel_finds_exactly_the_defined_subsets_once(
    data: list[tuple[list[int], int]], max_group: int
) -> None:
    found = _kernel(data, max_group)
    assert len(found) == len(set(found)), "a subset found twice in one block"
    assert set(found) == _reference(data, max_group)


@settings(deadline=None, max_examples=50)
@given(blocks, st.integers(min_value=2, max_value=6))
def test_two_halves_side_by_side_give_the_same_subsets(
    data: list[tuple[list[int], int]], max_group: int
) -> None:
    serial = _kernel(data, max_group)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(subsets, "PARALLEL_BLOCKS", 2)
        parallel = _kernel(data, max_group)
    assert sorted(parallel) == sorted(serial)


def test_a_batch_larger_than_max_group_is_one_subset() -> None:
    # twelve cheques of one deposit slip: no subset of five sums to the deposit
    cheques = [100, 250, 75, 300, 125, 50, 400, 90, 60, 210, 140, 200]
    found = _kernel([(cheques, sum(cheques))], max_group=5)
    assert (0, tuple(range(12))) in found


def test_a_block_with_more_subsets_than_the_buffers_hold_is_searched_again() -> None:
    # 24 equal rows: comb(24, 5) = 42,504 subsets of five sum to the target, more than the
    # kernel's first buffers hold (1,024 subsets), so it runs out of room inside the block
    # and searches it again into larger buffers; the blocks around it keep theirs, once
    data = [([100, 250, 75, 300, 125], 375), ([1] * 24, 5), ([40, 60, 100, 30, 70], 100)]
    found = _kernel(data, max_group=5)
    assert len(found) == len(set(found))
    assert set(found) == _reference(data, 5)
    assert sum(1 for b, _ in found if b == 1) == comb(24, 5)
    assert {b for b, _ in found} == {0, 1, 2}


def test_no_blocks() -> None:
    assert _kernel([], 5) == []


# deposit_count's blocks: cheques (one sign) smaller than the deposit they may make up
cheques = st.lists(st.integers(min_value=1, max_value=9), min_size=2, max_size=14)


@settings(deadline=None, max_examples=200)
@given(st.lists(st.tuples(cheques, st.integers(min_value=2, max_value=60)), max_size=5),
       st.integers(min_value=2, max_value=6))
def test_large_subsets_are_every_subset_whose_leftover_is_small(
    data: list[tuple[list[int], int]], max_group: int
) -> None:
    """recon.groups._with_large adds to the kernel's subsets every subset of more than
    max_group rows summing to the target that leaves at most max_group rows out (and at
    least one: the whole block is the kernel's own)."""
    from recon.groups import _with_large

    sizes = [len(v) for v, _ in data]
    starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    v = np.array([x for values, _ in data for x in values], dtype=np.int64)
    t = np.array([target for values, target in data for _ in values], dtype=np.int64)
    direct = exact_subsets(starts, v, t, max_group)
    block, offsets, members = _with_large(direct, starts, v, t, max_group)
    found = [(int(b), tuple(int(r) for r in members[offsets[i]:offsets[i + 1]] - starts[b]))
             for i, b in enumerate(block)]
    assert len(found) == len(set(found))
    large = {
        (b, combo)
        for b, (values, target) in enumerate(data)
        for size in range(max(max_group + 1, len(values) - max_group), len(values))
        for combo in combinations(range(len(values)), size)
        if sum(values[r] for r in combo) == target
    }
    assert set(found) == _reference(data, max_group) | large
    assert all(list(rows) == sorted(rows) for _, rows in found)
