"""Optimal one-to-one assignment of scored candidate pairs, with an ambiguity margin.

Pairs form a sparse bipartite graph.  Its connected components are solved
independently: a component with one pair is taken as it is; larger ones get a
maximum-weight assignment (``scipy.optimize.linear_sum_assignment``).  A pair
of the optimum is *ambiguous* when forbidding it leaves another assignment of
the component within ``margin`` of the optimum: two candidates are about as
good, so recon does not guess.

Rows with identical content (same amount, date, names, references: the
``l_key``/``r_key`` columns, when given) are interchangeable: choosing one
twin over the other is not a guess, so swapping twins does not count as an
alternative, and the lowest id is taken first (the original posting before
its copy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from scipy.optimize import linear_sum_assignment
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

_MISSING = -1e6  # weight of a non-edge: never chosen while a real edge is possible


@dataclass(frozen=True, slots=True)
class Assignment:
    """Accepted pairs and pairs withheld as ambiguous."""

    accepted: pl.DataFrame  # l, r, score (+ any other columns of the input)
    ambiguous: pl.DataFrame  # l, r, score: optimum pairs with a near-equal rival


def assign(pairs: pl.DataFrame, *, margin: float, max_side: int = 300) -> Assignment:
    """Choose at most one partner per row maximising the total score.

    Args:
        pairs: columns l, r (ids) and score; one row per candidate pair.
        margin: a pair whose best alternative assignment is within this is ambiguous.
        max_side: components with more rows than this on a side use the
            conservative mutual-best rule instead of the exact solver.
    """
    if pairs.height == 0:
        return Assignment(pairs, pairs)
    pairs = pairs.unique(subset=["l", "r"], keep="first")
    # the solver copies and sorts only what it reads; the other columns (features,
    # explanations) join the chosen pairs at the end
    core = ["l", "r", "score", *(["r_key"] if "r_key" in pairs.columns else [])]
    extra = pairs.select("l", "r", pl.exclude(core)) if pairs.width > len(core) else None
    pairs = pairs.select(core).sort(["l", "r"])
    l_codes = pairs["l"].rank("dense").cast(pl.Int64).to_numpy() - 1
    r_codes = pairs["r"].rank("dense").cast(pl.Int64).to_numpy() - 1
    nl, nr = int(l_codes.max()) + 1, int(r_codes.max()) + 1
    graph = coo_matrix((np.ones(len(l_codes)), (l_codes, r_codes + nl)), shape=(nl + nr, nl + nr))
    _, labels = connected_components(graph, directed=False)
    pairs = pairs.with_columns(
        pl.Series("comp", labels[l_codes]),
        pl.Series("li", l_codes),
        pl.Series("ri", r_codes),
    )
    sizes = pairs.group_by("comp").agg(pl.len().alias("n"))
    pairs = pairs.join(sizes, on="comp")
    single = pairs.filter(pl.col("n") == 1)
    multi = pairs.filter(pl.col("n") > 1)
    if "r_key" not in multi.columns:
        multi = multi.with_columns(pl.col("r").cast(pl.String).alias("r_key"))
    else:
        # copies of one item score alike for a row; the first posting (lowest id) wins
        multi = multi.with_columns(
            (
                pl.col("score").max().over("l", "r_key")
                - 1e-6 * (pl.col("r").rank("ordinal").over("l", "r_key") - 1)
            ).alias("score")
        )
    shape = multi.group_by("comp").agg(
        pl.col("l").n_unique().alias("nl"), pl.col("r").n_unique().alias("nr")
    )
    multi = multi.join(shape, on="comp")
    is_star = (pl.col("nl") == 1) | (pl.col("nr") == 1)
    stars, rest = multi.filter(is_star), multi.filter(~is_star)
    star_keep, star_amb = _solve_stars(stars, margin)
    keep, ambiguous = _solve_components(rest, margin, max_side)
    cols = [c for c in pairs.columns if c not in ("comp", "li", "ri", "n")]
    accepted = pl.concat(
        [single.select(cols), star_keep.select(cols), rest.filter(keep).select(cols)]
    )
    withheld = pl.concat([star_amb.select(cols), rest.filter(ambiguous).select(cols)])
    if extra is not None:
        accepted = accepted.join(extra, on=["l", "r"], how="left")
        withheld = withheld.join(extra, on=["l", "r"], how="left")
    return Assignment(accepted.sort(["l", "r"]), withheld.sort(["l", "r"]))


def _solve_stars(stars: pl.DataFrame, margin: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Components where one row has all the candidates (most of them), without a loop.

    The optimum is the centre's best pair (ties: the lowest id, as the solver
    takes them); forbidding it (and the twins of its right row) leaves the best
    pair of another item, so the pair is ambiguous when that one is within
    `margin`.  This is what :func:`_exact` finds, per component, in one pass.
    """
    if stars.height == 0:
        return stars, stars
    other = pl.when(pl.col("nl") == 1).then(pl.col("ri")).otherwise(pl.col("li"))
    # a left centre's alternatives are its candidates other than the chosen item's copies
    item = (
        pl.when(pl.col("nl") == 1)
        .then(pl.col("r_key").cast(pl.String))
        .otherwise(pl.col("li").cast(pl.String))
    )
    ranked = stars.with_columns(other.alias("__other"), item.alias("__item")).sort(
        ["comp", "score", "__other"], descending=[False, True, False]
    )
    first = pl.int_range(pl.len()).over("comp") == 0
    ranked = ranked.with_columns(
        pl.col("__item").filter(first).first().over("comp").alias("__best_item"),
        first.alias("__best"),
    )
    alt = (
        pl.when(pl.col("__item") != pl.col("__best_item"))
        .then(pl.col("score"))
        .max()
        .over("comp")
        .fill_null(0.0)
    )
    best = ranked.with_columns(alt.alias("__alt")).filter("__best")
    clear = pl.col("score") - pl.col("__alt") >= margin - 1e-12
    return best.filter(clear), best.filter(~clear)


def _solve_components(
    multi: pl.DataFrame, margin: float, max_side: int
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks over `multi` rows: accepted, ambiguous."""
    keep = np.zeros(multi.height, dtype=bool)
    amb = np.zeros(multi.height, dtype=bool)
    if multi.height == 0:
        return keep, amb
    # only the columns the solver reads, sorted by component and cut into slices:
    # a frame per component (partition_by) costs more than solving it
    cols = multi.select(
        pl.int_range(pl.len()).alias("row"),
        "comp",
        "li",
        "ri",
        pl.col("score").cast(pl.Float64),
        pl.col("r_key").cast(pl.String),
    ).sort("comp")
    all_rows, comp = cols["row"].to_numpy(), cols["comp"].to_numpy()
    all_li, all_ri, all_score = (
        cols["li"].to_numpy(),
        cols["ri"].to_numpy(),
        cols["score"].to_numpy(),
    )
    all_rkey = cols["r_key"].to_numpy()
    cuts = np.flatnonzero(np.diff(comp)) + 1
    for lo, hi in zip(np.r_[0, cuts], np.r_[cuts, len(comp)], strict=True):
        rows, score = all_rows[lo:hi], all_score[lo:hi]
        lu, lpos = np.unique(all_li[lo:hi], return_inverse=True)
        ru, rpos = np.unique(all_ri[lo:hi], return_inverse=True)
        if len(lu) > max_side or len(ru) > max_side:
            k, a = _mutual_best(lpos, rpos, score, margin)
        else:
            rkey = np.empty(len(ru), dtype=object)
            rkey[rpos] = all_rkey[lo:hi]
            k, a = _exact(lpos, rpos, score, len(lu), len(ru), margin, rkey)
        keep[rows[k]] = True
        amb[rows[a]] = True
    return keep, amb


def _best(w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    ri, ci = linear_sum_assignment(w, maximize=True)
    real = w[ri, ci] > _MISSING / 2
    return float(w[ri, ci][real].sum()), ri[real], ci[real]


def _exact(
    lpos: np.ndarray,
    rpos: np.ndarray,
    score: np.ndarray,
    nl: int,
    nr: int,
    margin: float,
    rkey: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    w = np.full((nl, nr), _MISSING)
    w[lpos, rpos] = score
    edge = {(int(a), int(b)): i for i, (a, b) in enumerate(zip(lpos, rpos, strict=True))}
    total, ri, ci = _best(w)
    keep: list[int] = []
    amb: list[int] = []
    for a, b in zip(ri, ci, strict=True):
        twins = np.flatnonzero(rkey == rkey[b])  # b and the rows identical to it
        saved = w[a, twins].copy()
        w[a, twins] = _MISSING
        alt, _, _ = _best(w)
        w[a, twins] = saved
        # an alternative that gives up (a, b) but is about as good: don't guess
        (amb if total - alt < margin - 1e-12 else keep).append(edge[(int(a), int(b))])
    return np.array(keep, dtype=np.int64), np.array(amb, dtype=np.int64)


def _mutual_best(
    lpos: np.ndarray, rpos: np.ndarray, score: np.ndarray, margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """Accept a pair only if it beats every rival of both its rows by `margin`."""
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
    keep = df.filter(best & clear)["i"].to_numpy()
    amb = df.filter(best & ~clear)["i"].to_numpy()
    return keep, amb
