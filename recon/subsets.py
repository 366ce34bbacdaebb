"""Compiled kernel of the group search: every exact-sum subset of every block in one call.

:mod:`recon.groups` blocks the candidates of each anchor (rows that could
belong to its group).  Inside a block, the subsets of 2..``max_group`` rows
whose amounts (integer minor units) sum exactly to the anchor's are found the
way the SQL form found them, meeting in the middle: the pairs of a block, then
a pair or a row completing a pair, a pair completing a pair or a triple, a
triple completing a triple.  The SQL form built those partial subsets by hash
joins and held them all at once (5.6 s for the first pass of a million-line
run's one-to-many rule); here each block's partial subsets live only while the
block is searched, and a sorted search replaces the hash join.

The partial subsets are pruned exactly as the SQL form pruned them, so mixed
signs (credit notes, reversals) give the same subsets:

- a pair is kept when ``|sum| <= |target|``;
- a triple is a kept pair and a later row with ``|sum| < |target|``.

A subset of four rows is the kept pair of its first two rows and the kept pair
of its last two (by position in the block); of five, the kept triple of its
first three and the kept pair of its last two; of six, two kept triples.  A
subset of three is a kept pair and one later row.  Each subset is found once
per block.  A block larger than ``max_group`` whose rows all sum to the target
is a subset too (a batch deposit of twelve cheques).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _grow(buf: np.ndarray, need: int) -> np.ndarray:  # pragma: no cover - compiled
    """`buf`, or a copy at least twice as long when `need` items will not fit."""
    if need <= buf.shape[0]:
        return buf
    out = np.empty(max(need, 2 * buf.shape[0]), dtype=np.int64)
    for i in range(buf.shape[0]):  # a loop: slice assignment took 4 s to compile
        out[i] = buf[i]
    return out


# one signature: the sizes at the call sites are literals, each compiled on its own otherwise
@njit(
    "UniTuple(int64[::1], 3)(int64[::1], int64[::1], int64[::1], int64, int64, int64[::1], int64)",
    cache=True,
    nogil=True,
)
def _add(
    blocks: np.ndarray,
    offsets: np.ndarray,
    members: np.ndarray,
    nsol: int,
    block: int,
    rows: np.ndarray,
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Record subset number `nsol` of `block`: rows[:k]; return the (grown) buffers."""
    nmem = offsets[nsol]
    blocks = _grow(blocks, nsol + 1)
    offsets = _grow(offsets, nsol + 2)
    members = _grow(members, nmem + k)
    for i in range(k):
        members[nmem + i] = rows[i]
    blocks[nsol] = block
    offsets[nsol + 1] = nmem + k
    return blocks, offsets, members


@njit(cache=True, nogil=True)
def _by_sum_latest_first(sums: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    """Order of partial subsets (listed by first position) by sum, and within one sum
    latest first: those of a sum starting after a position are then a prefix of that
    sum's run.  A bottom-up merge sort, stable, of the list reversed (numba's own
    stable argsort took three seconds to compile)."""
    n = sums.shape[0]
    order = np.empty(n, dtype=np.int64)
    spare = np.empty(n, dtype=np.int64)
    for i in range(n):
        order[i] = n - 1 - i
    width = 1
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j, k = lo, mid, lo
            while i < mid and j < hi:
                if sums[order[j]] < sums[order[i]]:
                    spare[k] = order[j]
                    j += 1
                else:
                    spare[k] = order[i]
                    i += 1
                k += 1
            while i < mid:
                spare[k] = order[i]
                i += 1
                k += 1
            while j < hi:
                spare[k] = order[j]
                j += 1
                k += 1
        order, spare = spare, order
        width *= 2
    return order


@njit(cache=True, nogil=True)
def _gather(values: np.ndarray, order: np.ndarray) -> np.ndarray:  # pragma: no cover
    """values[order], by a loop (fancy indexing is slow to compile)."""
    out = np.empty(order.shape[0], dtype=np.int64)
    for i in range(order.shape[0]):
        out[i] = values[order[i]]
    return out


@njit(cache=True, nogil=True)
def _first_at_least(sorted_sums: np.ndarray, n: int, value: int) -> int:  # pragma: no cover
    """The first index of sorted_sums[:n] holding `value` or more (n when none does)."""
    lo, hi = 0, n
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_sums[mid] < value:
            lo = mid + 1
        else:
            hi = mid
    return lo


# one signature for the three call sites, as for _add
@njit(
    "Tuple((int64[::1], int64[::1], int64[::1], int64))(int64[::1], int64[::1], int64[::1], "
    "int64, int64, int64[::1], int64, int64, int64, int64[::1], int64[::1], int64, "
    "int64[::1], int64[::1], int64[::1], int64)",
    cache=True,
    nogil=True,
)
def _completions(
    blocks: np.ndarray,
    offsets: np.ndarray,
    members: np.ndarray,
    nsol: int,
    block: int,
    rows: np.ndarray,
    k: int,
    need: int,
    after: int,
    order: np.ndarray,
    sums: np.ndarray,
    n: int,
    first: np.ndarray,
    second: np.ndarray,
    third: np.ndarray,
    width: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:  # pragma: no cover - compiled
    """Record rows[:k] completed by each kept pair (`width` 2) or triple (3) summing to
    `need` and starting after row `after`: those are a prefix of the run of `need` in
    `sums` (see :func:`_by_sum_latest_first`).  Returns the buffers and the count."""
    z = _first_at_least(sums, n, need)
    while z < n and sums[z] == need and first[order[z]] > after:
        y = order[z]
        rows[k] = first[y]
        rows[k + 1] = second[y]
        if width == 3:
            rows[k + 2] = third[y]
        blocks, offsets, members = _add(blocks, offsets, members, nsol, block, rows, k + width)
        nsol += 1
        z += 1
    return blocks, offsets, members, nsol


@njit(cache=True, nogil=True)
def _search(
    starts: np.ndarray, v: np.ndarray, t: np.ndarray, max_group: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Subsets of every block: (block of each subset, offsets, member rows).

    Block b holds rows starts[b]..starts[b + 1] - 1 in block order; t[row] is the
    block's target.  Members are rows of `v`, in block order.
    """
    blocks = np.empty(1024, dtype=np.int64)
    offsets = np.zeros(1025, dtype=np.int64)
    members = np.empty(4096, dtype=np.int64)
    nsol = 0
    widest = 0
    for b in range(starts.shape[0] - 1):
        widest = max(widest, starts[b + 1] - starts[b])
    npairs = widest * (widest - 1) // 2
    # the kept pairs (first, second, sum) and triples of a block, in block order
    p1 = np.empty(npairs, dtype=np.int64)
    p2 = np.empty(npairs, dtype=np.int64)
    ps = np.empty(npairs, dtype=np.int64)
    ntriples = npairs * widest if max_group >= 5 else 0
    t1 = np.empty(ntriples, dtype=np.int64)
    t2 = np.empty(ntriples, dtype=np.int64)
    t3 = np.empty(ntriples, dtype=np.int64)
    ts = np.empty(ntriples, dtype=np.int64)
    rows = np.empty(max(widest, 6), dtype=np.int64)
    for b in range(starts.shape[0] - 1):
        s = starts[b]
        m = starts[b + 1] - s
        target = t[s]
        limit = abs(target)
        npair = 0
        for i in range(m):
            for j in range(i + 1, m):
                total = v[s + i] + v[s + j]
                if abs(total) <= limit:
                    p1[npair] = s + i
                    p2[npair] = s + j
                    ps[npair] = total
                    npair += 1
        ntri = 0
        if max_group >= 5:
            for q in range(npair):
                for c in range(p2[q] + 1, s + m):
                    total = ps[q] + v[c]
                    if abs(total) < limit:
                        t1[ntri] = p1[q]
                        t2[ntri] = p2[q]
                        t3[ntri] = c
                        ts[ntri] = total
                        ntri += 1
        pord = p1[:0]
        psorted = ps[:0]
        if max_group >= 4:
            pord = _by_sum_latest_first(ps[:npair])
            psorted = _gather(ps, pord)
        for q in range(npair):
            rows[0] = p1[q]
            rows[1] = p2[q]
            if ps[q] == target:
                blocks, offsets, members = _add(blocks, offsets, members, nsol, b, rows, 2)
                nsol += 1
            if max_group >= 3:
                for c in range(p2[q] + 1, s + m):
                    if ps[q] + v[c] == target:
                        rows[2] = c
                        blocks, offsets, members = _add(blocks, offsets, members, nsol, b, rows, 3)
                        nsol += 1
            if max_group >= 4:  # a later pair completing this one
                blocks, offsets, members, nsol = _completions(
                    blocks,
                    offsets,
                    members,
                    nsol,
                    b,
                    rows,
                    2,
                    target - ps[q],
                    p2[q],
                    pord,
                    psorted,
                    npair,
                    p1,
                    p2,
                    p2,
                    2,
                )
        if max_group >= 5:
            tord = pord[:0]
            tsorted = psorted[:0]
            if max_group >= 6:
                tord = _by_sum_latest_first(ts[:ntri])
                tsorted = _gather(ts, tord)
            for q in range(ntri):
                rows[0] = t1[q]
                rows[1] = t2[q]
                rows[2] = t3[q]
                need = target - ts[q]
                # a later pair, or a later triple, completing this triple
                blocks, offsets, members, nsol = _completions(
                    blocks,
                    offsets,
                    members,
                    nsol,
                    b,
                    rows,
                    3,
                    need,
                    t3[q],
                    pord,
                    psorted,
                    npair,
                    p1,
                    p2,
                    p2,
                    2,
                )
                if max_group >= 6:
                    blocks, offsets, members, nsol = _completions(
                        blocks,
                        offsets,
                        members,
                        nsol,
                        b,
                        rows,
                        3,
                        need,
                        t3[q],
                        tord,
                        tsorted,
                        ntri,
                        t1,
                        t2,
                        t3,
                        3,
                    )
        if m > max_group:
            whole = 0
            for i in range(m):
                whole += v[s + i]
                rows[i] = s + i
            if whole == target:
                blocks, offsets, members = _add(blocks, offsets, members, nsol, b, rows, m)
                nsol += 1
    return blocks[:nsol], offsets[: nsol + 1], members[: offsets[nsol]]


#: Fewer blocks than this are searched in one thread: a second one costs more than it saves.
PARALLEL_BLOCKS = 20_000


def exact_subsets(
    starts: np.ndarray, v: np.ndarray, t: np.ndarray, max_group: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every exact-sum subset of every block (see the module's docstring).

    `starts`: the first row of each block, then the number of rows; `v`: the rows'
    amounts; `t`: each row's block target.  Returns (block of each subset, offsets
    into the members, member rows), members in block order.  Many blocks are
    searched in two halves side by side (the kernel holds no lock).
    """
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    v = np.ascontiguousarray(v, dtype=np.int64)
    t = np.ascontiguousarray(t, dtype=np.int64)
    nblocks = len(starts) - 1
    if nblocks < PARALLEL_BLOCKS:
        return _search(starts, v, t, int(max_group))
    # halves of about as many rows each
    mid = int(np.searchsorted(starts, starts[-1] // 2))
    mid = min(max(mid, 1), nblocks - 1)
    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(
            lambda part: _search(part, v, t, int(max_group)), (starts[: mid + 1], starts[mid:])
        )
    return (
        np.concatenate([first[0], second[0] + mid]),
        np.concatenate([first[1], second[1][1:] + first[1][-1]]),
        np.concatenate([first[2], second[2]]),
    )
