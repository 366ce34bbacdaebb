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

# No array variable is rebound inside a loop of the kernel below: numba counts the
# references of an array rebound in a loop at every use (an atomic increment and
# decrement), and perf put 62% of a search of blocks of 20-24 rows there.  The buffers
# the subsets go to are filled in place; when they are full the block is searched again
# into larger ones (see _search).


@njit(cache=True, nogil=True)
def _grow(buf: np.ndarray, size: int) -> np.ndarray:  # pragma: no cover - compiled
    """A copy of `buf` `size` long (at least as long as `buf`)."""
    out = np.empty(size, dtype=np.int64)
    for i in range(buf.shape[0]):  # a loop: slice assignment took 4 s to compile
        out[i] = buf[i]
    return out


# one signature: the sizes at the call sites are literals, each compiled on its own otherwise
@njit(
    "boolean(int64[::1], int64[::1], int64[::1], int64, int64, int64[::1], int64)",
    cache=True,
    nogil=True,
)
def _put(
    blocks: np.ndarray,
    offsets: np.ndarray,
    members: np.ndarray,
    nsol: int,
    block: int,
    rows: np.ndarray,
    k: int,
) -> bool:  # pragma: no cover - compiled
    """Record subset number `nsol` of `block`: rows[:k]; False when the buffers are full."""
    nmem = offsets[nsol]
    if nsol >= blocks.shape[0] or nmem + k > members.shape[0]:
        return False
    for i in range(k):
        members[nmem + i] = rows[i]
    blocks[nsol] = block
    offsets[nsol + 1] = nmem + k
    return True


@njit(cache=True, nogil=True)
def _by_sum_latest_first(
    sums: np.ndarray, n: int, order: np.ndarray, spare: np.ndarray, sorted_sums: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Order of the partial subsets sums[:n] (listed by first position) by sum, and within
    one sum latest first, into order[:n], their sums so into sorted_sums[:n]: those of a
    sum starting after a position are then a prefix of that sum's run.  A bottom-up
    merge sort, stable, of the list reversed, through `spare` (numba's own stable
    argsort took three seconds to compile)."""
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
        for i in range(n):
            order[i] = spare[i]
        width *= 2
    for i in range(n):
        sorted_sums[i] = sums[order[i]]


# one signature for the three call sites, as for _put
@njit(
    "int64(int64[::1], int64[::1], int64[::1], int64, int64, int64[::1], int64, int64, int64, "
    "int64[::1], int64[::1], int64, int64[::1], int64[::1], int64[::1], int64)",
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
    sorted_sums: np.ndarray,
    n: int,
    first: np.ndarray,
    second: np.ndarray,
    third: np.ndarray,
    width: int,
) -> int:  # pragma: no cover - compiled
    """Record rows[:k] completed by each kept pair (`width` 2) or triple (3) summing to
    `need` and starting after row `after`: those are a prefix of the run of `need` in
    `sorted_sums` (see :func:`_by_sum_latest_first`).  Returns the count of subsets, or
    -1 when the buffers are full."""
    lo, hi = 0, n  # the first sum of `need` or more
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_sums[mid] < need:
            lo = mid + 1
        else:
            hi = mid
    z = lo
    while z < n and sorted_sums[z] == need and first[order[z]] > after:
        y = order[z]
        rows[k] = first[y]
        rows[k + 1] = second[y]
        if width == 3:
            rows[k + 2] = third[y]
        if not _put(blocks, offsets, members, nsol, block, rows, k + width):
            return -1
        nsol += 1
        z += 1
    return nsol


#: Slots of the tables of a block's pair (and triple) sums, by sum modulo this prime.
SEEN_SLOTS = 4093


@njit(cache=True, nogil=True)
def _search_from(
    starts: np.ndarray,
    v: np.ndarray,
    t: np.ndarray,
    max_group: int,
    first_block: int,
    nsol: int,
    blocks: np.ndarray,
    offsets: np.ndarray,
    members: np.ndarray,
) -> tuple[int, int]:  # pragma: no cover - compiled
    """Record the subsets of blocks `first_block`.. after the `nsol` recorded, in the
    buffers (see :func:`_search`).  Returns (subsets recorded, the block the buffers had
    no room for, or the number of blocks when all were searched); the subsets of the
    block with no room are not counted."""
    nblocks = starts.shape[0] - 1
    widest = 0
    for b in range(first_block, nblocks):
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
    # the pairs (triples) by sum, latest first within a sum
    pord = np.empty(npairs, dtype=np.int64)
    psorted = np.empty(npairs, dtype=np.int64)
    ntsort = ntriples if max_group >= 6 else 0
    tord = np.empty(ntsort, dtype=np.int64)
    tsorted = np.empty(ntsort, dtype=np.int64)
    spare = np.empty(max(npairs, ntsort), dtype=np.int64)
    rows = np.empty(max(widest, 6), dtype=np.int64)
    # which sums a block's kept pairs (triples) have, by slot (sum modulo SEEN_SLOTS),
    # marked with the block's number + 1: a completion is looked for only where one
    # may be (most are not), and no table is cleared between blocks
    pair_seen = np.zeros(SEEN_SLOTS, dtype=np.int64)
    triple_seen = np.zeros(SEEN_SLOTS if max_group >= 6 else 1, dtype=np.int64)
    for b in range(first_block, nblocks):
        done = nsol  # the subsets of the blocks before this one
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
                    pair_seen[total % SEEN_SLOTS] = b + 1
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
                        if max_group >= 6:
                            triple_seen[total % SEEN_SLOTS] = b + 1
                        ntri += 1
        if max_group >= 4:
            _by_sum_latest_first(ps, npair, pord, spare, psorted)
        for q in range(npair):
            rows[0] = p1[q]
            rows[1] = p2[q]
            if ps[q] == target:
                if not _put(blocks, offsets, members, nsol, b, rows, 2):
                    return done, b
                nsol += 1
            if max_group >= 3:
                for c in range(p2[q] + 1, s + m):
                    if ps[q] + v[c] == target:
                        rows[2] = c
                        if not _put(blocks, offsets, members, nsol, b, rows, 3):
                            return done, b
                        nsol += 1
            need = target - ps[q]
            if max_group >= 4 and pair_seen[need % SEEN_SLOTS] == b + 1:
                # a later pair completing this one
                nsol = _completions(
                    blocks, offsets, members, nsol, b, rows, 2, need, p2[q],
                    pord, psorted, npair, p1, p2, p2, 2,
                )  # fmt: skip
                if nsol < 0:
                    return done, b
        if max_group >= 6:
            _by_sum_latest_first(ts, ntri, tord, spare, tsorted)
        for q in range(ntri):
            rows[0] = t1[q]
            rows[1] = t2[q]
            rows[2] = t3[q]
            need = target - ts[q]
            # a later pair, or a later triple, completing this triple
            if pair_seen[need % SEEN_SLOTS] == b + 1:
                nsol = _completions(
                    blocks, offsets, members, nsol, b, rows, 3, need, t3[q],
                    pord, psorted, npair, p1, p2, p2, 2,
                )  # fmt: skip
                if nsol < 0:
                    return done, b
            if max_group >= 6 and triple_seen[need % SEEN_SLOTS] == b + 1:
                nsol = _completions(
                    blocks, offsets, members, nsol, b, rows, 3, need, t3[q],
                    tord, tsorted, ntri, t1, t2, t3, 3,
                )  # fmt: skip
                if nsol < 0:
                    return done, b
        if m > max_group:
            whole = 0
            for i in range(m):
                whole += v[s + i]
                rows[i] = s + i
            if whole == target:
                if not _put(blocks, offsets, members, nsol, b, rows, m):
                    return done, b
                nsol += 1
    return nsol, nblocks


@njit(cache=True, nogil=True)
def _search(
    starts: np.ndarray, v: np.ndarray, t: np.ndarray, max_group: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """Subsets of every block: (block of each subset, offsets, member rows).

    Block b holds rows starts[b]..starts[b + 1] - 1 in block order; t[row] is the
    block's target.  Members are rows of `v`, in block order.  A block the buffers
    have no room for is searched again into buffers twice as large.
    """
    blocks = np.empty(1024, dtype=np.int64)
    offsets = np.zeros(1025, dtype=np.int64)
    members = np.empty(4096, dtype=np.int64)
    nblocks = starts.shape[0] - 1
    nsol, b = _search_from(starts, v, t, max_group, 0, 0, blocks, offsets, members)
    while b < nblocks:
        blocks = _grow(blocks, 2 * blocks.shape[0])
        offsets = _grow(offsets, blocks.shape[0] + 1)
        members = _grow(members, 2 * members.shape[0])
        nsol, b = _search_from(starts, v, t, max_group, b, nsol, blocks, offsets, members)
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
