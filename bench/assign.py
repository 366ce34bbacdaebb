"""Time the one-to-one assignment alone: recon.assign.assign on generated or saved pairs.

The assignment is where a rule's candidate pairs become matches; at 5M lines it is
given up to 8 million pairs at once.  This times it without a recon run around it,
so a change to it can be measured in a minute, and says whether the result changed:

    python bench/assign.py --pairs 2000000 --repeat 3
    python bench/assign.py --input amount_date.parquet --margin 0.05
    python bench/assign.py --pairs 2000000 --auto-above 0.8   # as the rules assign
    python /tmp/old/bench/assign.py --pairs 2000000   # a worktree of the old commit

Generated pairs look like a window rule's (seeded, so the same arguments give the same
pairs): left rows in blocks with the right rows of their customer, each left row with
one to five candidates of its block, one of them its true partner scoring highest,
one in twenty with a second candidate scoring within the margin of it (ambiguous unless
that row is taken anyway) and one right row in thirty a twin of its neighbour (same
`r_key`: identical content).  A saved input (Parquet with
l, r, score and optionally r_key, e.g. a rule's pairs written from a debugger) is
timed as it is.

Prints each run's seconds, the median (lowest-highest), pairs per second, the
accepted and withheld counts, the peak RSS of this process, and a digest of the
result: the same digest before and after a change means the same assignment.
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

# this checkout's recon, not the installed one: a worktree of an older commit times its own
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from recon.assign import Assignment, assign


def generated(pairs: int, seed: int = 7) -> pl.DataFrame:
    """About `pairs` scored candidate pairs (l, r, score, r_key), as described above."""
    rng = np.random.default_rng(seed)
    # three candidates per left row on average, 15 left rows per block on average
    n_left = max(1, pairs // 3)
    n_blocks = max(1, n_left // 15)
    per_block = rng.multinomial(n_left - n_blocks, np.full(n_blocks, 1 / n_blocks)) + 1
    right_per_block = per_block + rng.integers(0, 5, n_blocks)
    right_start = np.concatenate([[0], np.cumsum(right_per_block)[:-1]])
    block = np.repeat(np.arange(n_blocks), per_block)
    # the row's place in its block: its true partner is the right row at that place
    place = np.arange(n_left) - np.repeat(np.cumsum(per_block) - per_block, per_block)
    width = right_per_block[block]
    fan = np.minimum(rng.integers(1, 6, n_left), width)
    l = np.repeat(np.arange(n_left), fan)
    first = np.concatenate([[0], np.cumsum(fan)[:-1]])
    true = np.zeros(len(l), dtype=bool)
    true[first] = True
    offset = np.where(true, np.repeat(place, fan), rng.integers(0, np.repeat(width, fan)))
    r = np.repeat(right_start[block], fan) + offset
    score = np.where(true, rng.uniform(0.85, 1.0, len(l)), rng.uniform(0.6, 0.84, len(l)))
    # a rival within the margin: the second candidate of one row in twenty
    rival = np.zeros(len(l), dtype=bool)
    rival[first[(fan > 1) & (rng.random(n_left) < 0.05)] + 1] = True
    score = np.where(rival, np.roll(score, 1) - rng.uniform(0, 0.03, len(l)), score)
    # twins: one right row in thirty has its left neighbour's content
    n_right = int(right_per_block.sum())
    key = np.arange(n_right)
    twin = (rng.random(n_right) < 1 / 30) & (key > 0)
    key[twin] = key[np.flatnonzero(twin) - 1]
    return pl.DataFrame(
        {
            "l": l.astype(np.int64),
            "r": r.astype(np.int64) + 10_000_000,
            "score": np.round(score, 4),
            "r_key": key[r].astype(np.int64),
        }
    )


def digest(result: Assignment) -> str:
    """Short sha256 of the accepted and the withheld pairs (l, r, score), in their order."""
    h = hashlib.sha256()
    for frame in (result.accepted, result.ambiguous):
        h.update(frame.select("l", "r", "score").write_csv().encode())
    return h.hexdigest()[:12]


def timed(
    pairs: pl.DataFrame, margin: float, repeat: int, auto_above: float | None = None
) -> tuple[list[float], Assignment]:
    """Seconds of each of `repeat` assignments of `pairs`, and the last one's result.

    The first call of a process loads the compiled kernels (half a second): a call on
    the first thousand pairs does that before the timed ones."""
    assign(pairs.head(1000), margin=margin, auto_above=auto_above)
    seconds = []
    result = None
    for _ in range(repeat):
        started = time.perf_counter()
        result = assign(pairs, margin=margin, auto_above=auto_above)
        seconds.append(time.perf_counter() - started)
    assert result is not None
    return seconds, result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1_000_000, help="generated pairs (about)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--input", type=Path, nargs="*", default=[], help="saved pairs (Parquet)")
    ap.add_argument("--margin", type=float, default=0.05, help="the rules' margin")
    ap.add_argument("--repeat", type=int, default=3, metavar="K")
    ap.add_argument(
        "--auto-above", type=float, default=None, metavar="SCORE",
        help="decide the pairs scoring at least SCORE first, as a rule does (its auto_above)",
    )
    args = ap.parse_args(argv)
    inputs = [(str(p), pl.read_parquet(p)) for p in args.input] or [
        (f"generated, seed {args.seed}", generated(args.pairs, args.seed))
    ]
    for name, pairs in inputs:
        seconds, result = timed(pairs, args.margin, max(1, args.repeat), args.auto_above)
        mid = statistics.median(seconds)
        auto = f", auto_above {args.auto_above}" if args.auto_above is not None else ""
        print(f"assign: {pairs.height:,} pairs ({name}), margin {args.margin}{auto}")
        print("runs: " + ", ".join(f"{s:.2f} s" for s in seconds))
        print(
            f"median {mid:.2f} s ({min(seconds):.2f}-{max(seconds):.2f}), "
            f"{pairs.height / mid:,.0f} pairs/s; accepted {result.accepted.height:,}, "
            f"withheld {result.ambiguous.height:,}; result {digest(result)}"
        )
    # ru_maxrss is in KiB on Linux
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"peak RSS of this process (inputs included): {peak:.2f} GiB")


if __name__ == "__main__":
    main()
