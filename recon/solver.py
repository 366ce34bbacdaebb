"""Compiled kernel of the one-to-one assignment: every component in one call.

:func:`recon.assign.assign` cuts the candidate graph into connected
components.  Most are stars, solved in bulk with polars; the rest (a few
rows each side, up to a few hundred) each need the optimum *and*, for every
pair of the optimum, the best assignment that does without that pair (the
ambiguity test).  Solving them one by one with a Python loop around
``scipy.optimize.linear_sum_assignment`` cost about 80 s at 5M lines (100k
components, 545k solver calls), most of it call overhead.

Here numba compiles that loop.  Each component is a square cost matrix
(rows: the smaller side, padded with zero-cost dummy rows) solved by the
Hungarian algorithm with potentials (the shortest-augmenting-path form).  Only
the real rows are augmented: a dummy row's every edge has reduced cost
``-v[j] >= 0``, zero at the free columns, so augmenting it would give it the
first free column and leave the potentials as they are; the dummies take the
free columns in order instead.  That was most of the solve for a component
with far more rows on one side (14 x 299: 299 augmentations, each walking the
columns, for 14 real ones).  In floating point, a dummy's augmentation could
also have moved real rows between exactly tied columns, to another optimum of
the same total: the pairs that differ are ambiguous in either optimum, but
which of them is reported can differ from the full square solve's.  An
alternative without the pair (a, b) is not solved from scratch: raising the
cost of (a, b) and its copies keeps the potentials feasible, so freeing row a
and re-augmenting it alone gives the new optimum (one O(n^2) phase instead of
an O(n^3) solve).

Semantics are those of the dense solver it replaces: a missing pair costs
``BIG``, so the optimum first has as many real pairs as possible, then the
highest total score; totals count real pairs only.
"""

from __future__ import annotations

import numpy as np
from numba import njit

#: Cost of a pair that is not a candidate (or is forbidden).  It must exceed any
#: total score a component can have (at most `max_side` pairs scoring at most 1),
#: so that a solution with one real pair more always wins; it is kept small so
#: that sums of costs stay exact to far below the scores' own precision.
BIG = 4096.0


@njit(cache=True, nogil=True)
def _augment(
    cost: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    p: np.ndarray,
    way: np.ndarray,
    minv: np.ndarray,
    used: np.ndarray,
    row: int,
    m: int,
) -> None:  # pragma: no cover - compiled
    """Assign `row` (1-based) along a shortest augmenting path (potentials u, v;
    p[j]: the row of column j, 0 when free)."""
    p[0] = row
    j0 = 0
    for j in range(m + 1):
        minv[j] = np.inf
        used[j] = False
    while True:
        used[j0] = True
        i0 = p[j0]
        delta = np.inf
        j1 = 0
        for j in range(1, m + 1):
            if not used[j]:
                cur = cost[i0 - 1, j - 1] - u[i0] - v[j]
                if cur < minv[j]:
                    minv[j] = cur
                    way[j] = j0
                if minv[j] < delta:
                    delta = minv[j]
                    j1 = j
        for j in range(m + 1):
            if used[j]:
                u[p[j]] += delta
                v[j] -= delta
            else:
                minv[j] -= delta
        j0 = j1
        if p[j0] == 0:
            break
    while True:
        j1 = way[j0]
        p[j0] = p[j1]
        j0 = j1
        if j0 == 0:
            break


@njit(cache=True, nogil=True)
def component_labels(
    l: np.ndarray, r: np.ndarray, nl: int, nr: int
) -> np.ndarray:  # pragma: no cover
    """The connected component of each pair (l[i], r[i]) of the bipartite graph of left
    rows numbered 0..nl-1 and right rows numbered 0..nr-1, numbered from 0 in the order
    of their first pair.

    A union-find over the pairs, roots halving their paths: one pass, where scipy's
    connected_components first built a sparse matrix of the graph (0.17 s against
    0.58 s for the 8.4M pairs of the 5M benchmark's amount_date rule).
    """
    parent = np.arange(nl + nr)
    for i in range(len(l)):
        a = l[i]
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        b = nl + r[i]
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        if a < b:
            parent[b] = a
        elif b < a:
            parent[a] = b
    label = np.full(nl + nr, -1, np.int64)
    out = np.empty(len(l), np.int64)
    count = 0
    for i in range(len(l)):
        a = l[i]
        while parent[a] != a:
            a = parent[a]
        if label[a] < 0:
            label[a] = count
            count += 1
        out[i] = label[a]
    return out


@njit(cache=True, nogil=True)
def _real_total(cost: np.ndarray, p: np.ndarray, n: int, m: int) -> float:  # pragma: no cover
    """Total score of the real pairs of assignment p (rows above n are dummies)."""
    s = 0.0
    for j in range(1, m + 1):
        i = p[j]
        if 0 < i <= n and cost[i - 1, j - 1] < BIG / 2:
            s -= cost[i - 1, j - 1]
    return s


@njit(cache=True, nogil=True)
def solve_components(
    starts: np.ndarray,
    lpos: np.ndarray,
    rpos: np.ndarray,
    score: np.ndarray,
    rkey: np.ndarray,
    margin: float,
    keep: np.ndarray,
    amb: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Mark the pairs of each component's optimum as kept or ambiguous.

    Pairs are sorted by component; component c holds pairs starts[c] to
    starts[c + 1].  lpos and rpos number its left and right rows from 0; pairs
    whose right rows share an rkey are copies (choosing one over another is not
    an alternative).  A pair of the optimum is ambiguous when the best
    assignment without it (and without its right row's copies for its left row)
    is within `margin` of the optimum.
    """
    for c in range(len(starts) - 1):
        lo, hi = starts[c], starts[c + 1]
        nl = 0
        nr = 0
        for e in range(lo, hi):
            nl = max(nl, lpos[e] + 1)
            nr = max(nr, rpos[e] + 1)
        flip = nl > nr  # rows are the smaller side
        n = min(nl, nr)
        m = max(nl, nr)
        cost = np.zeros((m, m))
        cost[:n, :] = BIG
        colkey = np.empty(nr, np.int64)
        for e in range(lo, hi):
            colkey[rpos[e]] = rkey[e]
            if flip:
                cost[rpos[e], lpos[e]] = -score[e]
            else:
                cost[lpos[e], rpos[e]] = -score[e]
        u = np.zeros(m + 1)
        v = np.zeros(m + 1)
        p = np.zeros(m + 1, np.int64)
        way = np.zeros(m + 1, np.int64)
        minv = np.empty(m + 1)
        used = np.empty(m + 1, np.bool_)
        for i in range(1, n + 1):
            _augment(cost, u, v, p, way, minv, used, i, m)
        # the dummy rows n + 1 .. m take the free columns in order (see above): the
        # alternatives below need every column held, as in a square solve
        i = n
        for j in range(1, m + 1):
            if p[j] == 0:
                i += 1
                p[j] = i
        total = _real_total(cost, p, n, m)
        col_of = np.zeros(m + 1, np.int64)
        for j in range(1, m + 1):
            col_of[p[j]] = j
        saved = np.empty(nr)
        for e in range(lo, hi):
            a = lpos[e]
            b = rpos[e]
            i, j = (b, a) if flip else (a, b)
            if col_of[i + 1] != j + 1:
                continue  # not in the optimum
            # forbid (a, b) and (a, every copy of b): costs only rise, so the
            # potentials stay feasible and one augmentation of row i re-solves
            k = 0
            for r in range(nr):
                if colkey[r] == colkey[b]:
                    if flip:
                        saved[k] = cost[r, a]
                        cost[r, a] = BIG
                    else:
                        saved[k] = cost[a, r]
                        cost[a, r] = BIG
                    k += 1
            u2 = u.copy()
            v2 = v.copy()
            p2 = p.copy()
            p2[j + 1] = 0
            _augment(cost, u2, v2, p2, way, minv, used, i + 1, m)
            alt = _real_total(cost, p2, n, m)
            k = 0
            for r in range(nr):
                if colkey[r] == colkey[b]:
                    if flip:
                        cost[r, a] = saved[k]
                    else:
                        cost[a, r] = saved[k]
                    k += 1
            # an alternative that gives up (a, b) but is about as good: don't guess
            if total - alt < margin - 1e-12:
                amb[e] = True
            else:
                keep[e] = True
