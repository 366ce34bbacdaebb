"""Compiled kernel of the aging's twin pairing: the greedy one-to-one matching of
candidates given in order.

:func:`recon.openitems._pair_twins` pairs bank receipts with the ledger receipts
that book the same money, nearest first.  Taking each candidate in turn whose two
sides are both still free is one walk over the candidates, which no SQL statement
expresses (each choice depends on all the choices before it): the SQL form paired
in rounds, one statement a round and, in the worst case, a round for each pair.
"""

from __future__ import annotations

import numpy as np
from numba import njit


# one signature: compiled (or read from numba's cache) when the module is imported,
# which recon.warmup does in the background
@njit("boolean[::1](int64[::1], int64[::1])", cache=True, nogil=True)
def greedy_matching(
    left: np.ndarray, right: np.ndarray
) -> np.ndarray:  # pragma: no cover - compiled
    """Which candidates the greedy matching takes, in the order given.

    Candidate i pairs item left[i] of one side with item right[i] of the other (dense
    codes, each below the number of candidates); it is taken when no candidate before
    it took either item.
    """
    n = left.shape[0]
    taken = np.zeros(n, dtype=np.bool_)
    left_used = np.zeros(n, dtype=np.bool_)
    right_used = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        a = left[i]
        b = right[i]
        if not left_used[a] and not right_used[b]:
            left_used[a] = True
            right_used[b] = True
            taken[i] = True
    return taken
