"""Optimal one-to-one assignment of scored candidate pairs, with an ambiguity margin.

Pairs form a sparse bipartite graph.  Its connected components are solved
independently: a component with one pair is taken as it is, stars (one row
with every candidate) are solved in bulk, and the rest get a maximum-weight
assignment from the compiled Hungarian solver of :mod:`recon.solver`.  A pair
of the optimum is *ambiguous* when forbidding it leaves another assignment of
the component within ``margin`` of the optimum: two candidates are about as
good, so recon does not guess.

Right rows with identical content (same amount, date, names, references: the
``r_key`` column, when given) are interchangeable: choosing one
twin over the other is not a guess, so swapping twins does not count as an
alternative, and the lowest id is taken first (the original posting before
its copy).

Left rows with identical content (the ``l_key`` column, when given: the same bank
line loaded from two exports under two ids, or paid twice) are copies too: of the
pairs of one right row with copies of one left row only the best is assigned (ties:
the lowest id), and the other copies wait for a later pass, where they pair with what
is left.  Both copies paired with one receipt were a tie, and the receipt was left
open, the copy not reported as a duplicate.  Components decided by the mutual-best rule
keep all their pairs (a later pass decides them from part of their pairs, see
:func:`assign_near`).

Given ``auto_above``, an unsure pair (scoring below it) never decides a confident
one: the confident pairs are assigned first, among themselves; an unsure rival
within the margin of a confident choice makes it ambiguous unless a confident
pair holds the rival's other row; and the unsure pairs are assigned after, over
the rows the confident ones left and no ambiguous row claims.  Assigned all at
once, an unsure pair could take a row from a confident one and so push it onto
a look-alike (two pairs of any score outnumber one).
"""

from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import polars as pl


@dataclass(frozen=True, slots=True)
class Assignment:
    """Accepted pairs and pairs withheld as ambiguous."""

    accepted: pl.DataFrame  # l, r, score (+ any other columns of the input)
    ambiguous: pl.DataFrame  # l, r, score: optimum pairs with a near-equal rival
    #: the left rows (l) of the components decided by the mutual-best rule (see big)
    big: pl.Series = field(default_factory=lambda: pl.Series("l", [], dtype=pl.Int64))


#: Components with more rows than this on a side (and more than one on each: a one-row
#: side is a star) are decided by the mutual-best rule, not the exact solver.
MAX_SIDE = 300


def big(nl: pl.Expr, nr: pl.Expr, max_side: int | None = None) -> pl.Expr:
    """Whether a component of `nl` left and `nr` right rows is decided by the mutual-best
    rule (more than `max_side`, by default MAX_SIDE, rows on a side, and not a star)."""
    most = MAX_SIDE if max_side is None else max_side
    return (nl > 1) & (nr > 1) & ((nl > most) | (nr > most))


def assign(
    pairs: pl.DataFrame,
    *,
    margin: float,
    max_side: int | None = None,
    auto_above: float | None = None,
) -> Assignment:
    """Choose at most one partner per row maximising the total score.

    Args:
        pairs: columns l, r (ids) and score; one row per candidate pair.
        margin: a pair whose best alternative assignment is within this is ambiguous.
        max_side: components with more rows than this on a side use the
            conservative mutual-best rule instead of the exact solver (MAX_SIDE when
            not given: a rule's later passes, which decide again only the pairs near a
            change of such components, read MAX_SIDE; see pipeline.Plan).
        auto_above: the score of a confident pair; when given, the confident pairs
            are decided first and the unsure ones cannot move them (see above).
    """
    max_side = MAX_SIDE if max_side is None else max_side
    if pairs.height == 0:
        return Assignment(pairs, pairs)
    # the solver copies and sorts only what it reads; the other columns (features,
    # explanations) are gathered for the chosen pairs at the end, by row number: a
    # copy of every column for unique() and a join on (l, r) held 1.2 GiB more than
    # this at 6M pairs
    core = ["l", "r", "score", *(k for k in ("r_key", "l_key") if k in pairs.columns)]
    extra = pairs.select(pl.exclude(core)) if pairs.width > len(core) else None
    # one sort makes the copies of a pair neighbours, its first row in the input first
    # (`_row` breaks the tie): a hashed unique() and then a sort took 2.5 times as long
    pairs = pairs.select(*core, pl.int_range(pl.len(), dtype=pl.Int64).alias("_row"))
    pairs = pairs.sort([*_pair_key(pairs), "_row"])
    repeat = (pl.col("l") == pl.col("l").shift()) & (pl.col("r") == pl.col("r").shift())
    pairs = pairs.filter(~repeat.fill_null(False))
    comp, l_codes, r_codes = _components(pairs["l"], pairs["r"])
    pairs = pairs.with_columns(
        pl.Series("comp", comp),
        pl.Series("li", l_codes),
        pl.Series("ri", r_codes),
    )
    del comp, l_codes, r_codes
    # components are independent: solved a slice of them at a time, the windows, twin
    # scores and stars hold a slice's rows, not all of them (8.4M pairs of the 5M
    # benchmark: their working frames took RSS 1.8 GiB above the input)
    parts = max(1, -(-pairs.height // PART_PAIRS))
    if parts == 1:
        accepted, withheld, bigs = _assign_part(pairs, margin, max_side, auto_above)
    else:
        found = [
            _assign_part(pairs.filter(pl.col("comp") % parts == i), margin, max_side, auto_above)
            for i in range(parts)
        ]
        accepted = pl.concat([a for a, _, _ in found])
        withheld = pl.concat([w for _, w, _ in found])
        bigs = pl.concat([b for _, _, b in found])
    return Assignment(_with_extra(accepted, extra), _with_extra(withheld, extra), bigs)


def big_components(comp: np.ndarray, l: pl.Series, r: pl.Series, among: np.ndarray) -> np.ndarray:
    """Per component (numbered from 0: `comp` of each pair of ids `l`, `r`), whether
    :func:`assign` decides it by the mutual-best rule (see :func:`big`); only the
    components of the pairs `among` (a mask of whole components) are looked at, the
    others are False.  A side has no more rows than the component has pairs: only the
    components of more than MAX_SIDE pairs have their rows counted."""
    n = int(comp.max()) + 1 if len(comp) else 0
    out = np.zeros(n, dtype=bool)
    wide = among & (np.bincount(comp, minlength=n)[comp] > MAX_SIDE)
    if wide.any():
        mask = pl.Series(wide)
        sides = (
            pl.DataFrame({"c": comp[wide], "l": l.filter(mask), "r": r.filter(mask)})
            .group_by("c")
            .agg(pl.col("l").n_unique().alias("nl"), pl.col("r").n_unique().alias("nr"))
        )
        out[sides.filter(big(pl.col("nl"), pl.col("nr")))["c"].to_numpy()] = True
    return out


def assign_near(pairs: pl.DataFrame, redo: pl.Series, *, margin: float) -> Assignment:
    """The pairs marked `redo`, of components :func:`assign` decides by the mutual-best
    rule, decided as it decides them (the same scores of copies of one item, the same
    accepted and ambiguous pairs), from `pairs` alone, distinct pairs as `assign` keeps
    them.  That rule compares a pair with the other pairs of its two rows, each scored
    among the copies of its item that its own left row pairs with (see _twin_scores):
    `pairs` must hold every pair of a marked pair's left row, and every pair of each
    left row of a pair of its right row.  A later pass decides again only the pairs
    near a change of such a component, not the whole of it (see pipeline.Plan)."""
    if pairs.height == 0:
        return Assignment(pairs, pairs)
    score = pairs["score"].cast(pl.Float64).to_numpy()
    if "r_key" in pairs.columns:
        score = _twin_scores(
            pairs["l"].to_numpy(), pairs["r"].to_numpy(), _codes(pairs["r_key"]), score
        )
    one = np.zeros(pairs.height, dtype=np.int64)  # one "component": positions are ids
    keep, amb = _mutual_best(one, _codes(pairs["l"]), _codes(pairs["r"]), score, margin)
    mine = redo.to_numpy()
    scored = pairs.with_columns(pl.Series("score", score))
    return Assignment(
        scored.filter(keep & mine).sort(["l", "r"]), scored.filter(amb & mine).sort(["l", "r"])
    )


#: Pairs per slice of components solved together (see :func:`assign`).
PART_PAIRS = 1_000_000


def _assign_part(
    pairs: pl.DataFrame, margin: float, max_side: int, auto_above: float | None = None
) -> tuple[pl.DataFrame, pl.DataFrame, pl.Series]:
    """Accepted and withheld pairs of whole components (columns of `pairs` but comp,
    li, ri): every component is decided alone; and the left rows of the components
    decided by the mutual-best rule."""
    pairs = pairs.with_columns(pl.len().over("comp").alias("n"))
    single = pairs.filter(pl.col("n") == 1)
    multi = pairs.filter(pl.col("n") > 1)
    if "r_key" not in multi.columns:
        multi = multi.with_columns(pl.col("r").alias("r_key"))
    # the items as numbers, once: the twin scores, the stars and the solver compare them
    multi = multi.with_columns(pl.Series("rk", _codes(multi["r_key"])))
    if "r_key" in pairs.columns:
        # copies of one item score alike for a row; the first posting (lowest id) wins
        multi = multi.with_columns(
            pl.Series(
                "score",
                _twin_scores(
                    multi["l"].to_numpy(),
                    multi["r"].to_numpy(),
                    multi["rk"].to_numpy(),
                    multi["score"].to_numpy(),
                ),
            )
        )
    multi = multi.with_columns(
        pl.col("l").n_unique().over("comp").alias("nl"),
        pl.col("r").n_unique().over("comp").alias("nr"),
    )
    if "l_key" in multi.columns:
        multi = _left_copies_wait(multi, max_side)
    is_star = (pl.col("nl") == 1) | (pl.col("nr") == 1)
    stars, rest = multi.filter(is_star), multi.filter(~is_star)
    # a star's unsure pairs decide nothing the star rule does not: its centre takes its
    # best item unless another is within the margin, whatever the scores
    star_keep, star_amb = _solve_stars(stars, margin)
    if auto_above is None:
        keep, ambiguous = _solve_components(rest, margin, max_side)
    else:
        keep, ambiguous = _confident_first(rest, margin, max_side, auto_above)
    cols = [c for c in pairs.columns if c not in ("comp", "li", "ri", "n")]
    accepted = pl.concat(
        [single.select(cols), star_keep.select(cols), rest.filter(keep).select(cols)]
    )
    withheld = pl.concat([star_amb.select(cols), rest.filter(ambiguous).select(cols)])
    bigs = rest.filter(big(pl.col("nl"), pl.col("nr"), max_side))["l"].unique()
    return accepted, withheld, bigs


def _left_copies_wait(multi: pl.DataFrame, max_side: int) -> pl.DataFrame:
    """`multi` without the pairs of a left row whose copy (same `l_key`) pairs with the
    same right row at least as well (ties: the copy of lower id), but in the components
    the mutual-best rule decides (see the module)."""
    rows = multi.select("l", "l_key").unique()
    twins = rows.filter(pl.col("l_key").is_duplicated())["l"]
    if twins.is_empty():
        return multi
    exact = ~big(pl.col("nl"), pl.col("nr"), max_side)
    multi = multi.with_row_index("_copy")
    copies = multi.filter(pl.col("l").is_in(twins.implode()) & exact)
    later = (
        copies.sort(["score", "l"], descending=[True, False])
        .filter(pl.int_range(pl.len()).over(["r", "l_key"]) > 0)["_copy"]
    )
    return multi.filter(~pl.col("_copy").is_in(later.implode())).drop("_copy")


def _pair_key(pairs: pl.DataFrame) -> list[pl.Expr]:
    """The sort key ordering `pairs` by (l, r): both ids packed in one integer when
    they fit in 31 bits (transaction ids do), which sorts in half the time of two
    columns (0.52 s against 1.02 s for the 8.4M pairs of the 5M benchmark's
    amount_date rule); the two columns otherwise."""
    if all(
        s.dtype.is_integer() and not s.null_count() and s.is_between(0, 2**31 - 1).all()
        for s in (pairs["l"], pairs["r"])
    ):
        return [pl.col("l").cast(pl.Int64) * 2**31 + pl.col("r").cast(pl.Int64)]
    return [pl.col("l"), pl.col("r")]


def _with_extra(chosen: pl.DataFrame, extra: pl.DataFrame | None) -> pl.DataFrame:
    """`chosen` sorted by (l, r), with the columns of `extra` of its rows (`_row`)."""
    chosen = chosen.sort(["l", "r"])
    if extra is None:
        return chosen.drop("_row")
    return pl.concat([chosen.drop("_row"), extra[chosen["_row"]]], how="horizontal")


def components(l: pl.Series, r: pl.Series) -> np.ndarray:
    """The connected component of each pair (l[i], r[i]) of the bipartite graph of
    left ids `l` and right ids `r`, numbered from 0 in the order of their first pair.

    Ids of one table close together (what the rules pair) are numbered by their
    offset from the least: the union-find runs over the span of the ids, and the
    codes' scatter, running count and gather are saved (0.69 -> 0.31 s for 8M pairs
    shaped like a rule's; the same labels, which depend on the pairs' order alone)."""
    if not len(l):
        return np.zeros(0, dtype=np.int64)
    l_span, r_span = _close_span(l), _close_span(r)
    if l_span is not None and r_span is not None:
        from recon.solver import component_labels  # compiled on first use, then cached

        (l_lo, l_hi), (r_lo, r_hi) = l_span, r_span
        offsets = [(ids - lo).cast(pl.Int64).to_numpy() for ids, lo in ((l, l_lo), (r, r_lo))]
        labels: np.ndarray = component_labels(
            offsets[0], offsets[1], l_hi - l_lo + 1, r_hi - r_lo + 1
        )
        return labels
    return _components(l, r)[0]


def _close_span(ids: pl.Series) -> tuple[int, int] | None:
    """(least, greatest) of `ids` when they are integers of one table close together
    (no nulls, a span of at most four times their number): arrays as long as the span
    then cost about what the ids do.  None otherwise."""
    if not len(ids) or ids.null_count() or not ids.dtype.is_integer():
        return None
    lo, hi = int(ids.min()), int(ids.max())  # type: ignore[arg-type]
    return (lo, hi) if hi - lo <= 4 * len(ids) else None


def _components(l: pl.Series, r: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(component of each pair, dense code of its left row, of its right row)."""
    from recon.solver import component_labels  # compiled on first use, then cached

    l_codes, r_codes = _codes(l), _codes(r)
    labels = component_labels(l_codes, r_codes, int(l_codes.max()) + 1, int(r_codes.max()) + 1)
    return labels, l_codes, r_codes


def _codes(key: pl.Series) -> np.ndarray:
    """`key` as int64 codes from 0 (equal keys, equal codes; order kept), whatever its
    type: content hashes are unsigned and text sorts slowly in numpy.  Keys already in
    ascending order (the pairs' left ids, sorted by assign) are counted, not ranked, and
    so are integer keys close together (the right ids), over the span of their values."""
    if key.null_count() == 0 and key.is_sorted():
        return (key != key.shift()).fill_null(False).cast(pl.Int64).cum_sum().to_numpy()
    span = _close_span(key)
    if span is not None:
        # ids of one table, close together: the codes are the running count of the
        # values present, a pass over an array as long as their span, not a sort
        # (0.18 s against 0.64 s for the right ids of 8.4M pairs)
        lo, hi = span
        at = (key - lo).cast(pl.Int64).to_numpy()
        present = np.zeros(hi - lo + 1, dtype=np.int64)
        present[at] = 1
        codes: np.ndarray = np.cumsum(present)[at] - 1
        return codes
    return (key.rank("dense").cast(pl.Int64) - 1).to_numpy()


def _twin_scores(l: np.ndarray, r: np.ndarray, key: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Per pair, the best score of the pairs of its left row with copies of its right
    item (same `key`), less 1e-6 for each copy of lower id: ``max(score) over (l, key)
    - 1e-6 * (rank of r over (l, key) - 1)``.  Sorted once in numpy, as two windows
    over (l, key) in polars cost 0.7 s at 700k pairs."""
    if len(score) == 0:
        return score.astype(np.float64)
    order = _argsort(l, key, r)
    starts, group = _runs(order, l, key)
    best = np.maximum.reduceat(score[order], starts)
    out = np.empty(len(score), dtype=np.float64)
    out[order] = best[group] - 1e-6 * (np.arange(len(order)) - starts[group])
    return out


def _argsort(*keys: np.ndarray) -> np.ndarray:
    """The order sorting by `keys`, the first first, ties kept in index order: what
    ``np.lexsort(keys[::-1])`` gives, from polars's multi-threaded sort (six times as
    fast at 8M pairs)."""
    frame = pl.DataFrame({f"k{i}": k for i, k in enumerate(keys)}).with_row_index("i")
    order: np.ndarray = frame.sort([f"k{i}" for i in range(len(keys))], maintain_order=True)[
        "i"
    ].to_numpy()
    return order


def _runs(order: np.ndarray, *keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Of the elements taken in `order` (a sort on `keys` first): where each run of equal
    `keys` starts, and each element's run number, in that order."""
    first = np.zeros(len(order), dtype=bool)
    first[:1] = True
    for key in keys:
        k = key[order]
        first[1:] |= k[1:] != k[:-1]
    return np.flatnonzero(first), np.cumsum(first) - 1


def _solve_stars(stars: pl.DataFrame, margin: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Components where one row has all the candidates (most of them), without a loop.

    The optimum is the centre's best pair (ties: the lowest id, as the solver
    takes them); forbidding it (and the twins of its right row) leaves the best
    pair of another item, so the pair is ambiguous when that one is within
    `margin`.  This is what :mod:`recon.solver` finds, per component, in one pass.
    """
    if stars.height == 0:
        return stars, stars
    other = pl.when(pl.col("nl") == 1).then(pl.col("ri")).otherwise(pl.col("li"))
    # a left centre's alternatives are its candidates other than the chosen item's
    # copies; items are numbers (a right row's item code `rk` or a left row's code),
    # compared only within a component
    item = pl.when(pl.col("nl") == 1).then(pl.col("rk")).otherwise(pl.col("li").cast(pl.Int64))
    ranked = stars.with_columns(other.alias("__other"), item.alias("__item")).sort(
        ["comp", "score", "__other"], descending=[False, True, False]
    )
    # sorted by component, its best pair first; `filter(first).first().over("comp")`
    # took time quadratic in the rows (47 s for 2M star pairs), first().over() does not
    ranked = ranked.with_columns(
        pl.col("__item").first().over("comp").alias("__best_item"),
        pl.col("comp").is_first_distinct().alias("__best"),
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
    """Boolean masks over `multi` rows (with their component's `nl`, `nr` and item codes
    `rk`): accepted, ambiguous.  Components up to `max_side` rows a side go to the
    compiled exact solver in one call; larger ones (rare) get the mutual-best rule."""
    keep = np.zeros(multi.height, dtype=bool)
    amb = np.zeros(multi.height, dtype=bool)
    if multi.height == 0:
        return keep, amb
    cols = multi.select(
        pl.int_range(pl.len()).alias("row"),
        pl.col("comp").cast(pl.Int64),
        big(pl.col("nl"), pl.col("nr"), max_side).alias("big"),
        "li",
        "ri",
        pl.col("score").cast(pl.Float64),
        "rk",
    ).sort("comp", maintain_order=True)  # and by row: `row` is the row's index
    # rows numbered from 0 within their component, in id order
    comp = cols["comp"].to_numpy()
    cols = cols.with_columns(
        pl.Series("lp", _positions(comp, cols["li"].to_numpy())),
        pl.Series("rp", _positions(comp, cols["ri"].to_numpy())),
    )
    exact = cols.filter(~pl.col("big"))
    if exact.height:
        from recon.solver import BIG, solve_components  # compiled on first use, then cached

        # a missing pair must cost more than any component's total score
        assert max_side < BIG, "max_side too large for the solver's missing-pair cost"

        comp = exact["comp"].to_numpy()
        starts = np.r_[0, np.flatnonzero(np.diff(comp)) + 1, len(comp)].astype(np.int64)
        k = np.zeros(exact.height, dtype=bool)
        a = np.zeros(exact.height, dtype=bool)
        lp, rp, score, rk = (exact[c].to_numpy() for c in ("lp", "rp", "score", "rk"))

        def solve(part: np.ndarray) -> None:
            solve_components(part, lp, rp, score, rk, margin, k, a)

        # the kernel releases the GIL: the components in one slice per core, each
        # slice's pairs marked by its own thread (slices hold different pairs)
        with ThreadPoolExecutor(_SOLVER_THREADS) as pool:
            list(pool.map(solve, _slices(starts, _SOLVER_THREADS)))
        rows = exact["row"].to_numpy()
        keep[rows[k]] = True
        amb[rows[a]] = True
    bigs = cols.filter(pl.col("big"))
    if bigs.height:
        # every big component at once: the rule reads each row's own pairs only
        k, a = _mutual_best(
            bigs["comp"].to_numpy(),
            bigs["lp"].to_numpy(),
            bigs["rp"].to_numpy(),
            bigs["score"].to_numpy(),
            margin,
        )
        rows = bigs["row"].to_numpy()
        keep[rows[k]] = True
        amb[rows[a]] = True
    return keep, amb


def _confident_first(
    multi: pl.DataFrame, margin: float, max_side: int, auto_above: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_solve_components`'s masks (accepted, ambiguous), the confident pairs
    (score at least `auto_above`) decided before the unsure ones (see the module).

    The exact solver puts as many pairs as it can first: assigned together, an unsure
    pair (a payment of another name) taking a row pushed a confident row onto its
    look-alike, auto-matched, where alone it was a tie.  The components the
    mutual-best rule decides keep all their pairs: that rule takes only a pair that is
    the best of both its rows by the margin, which no unsure pair can move."""
    keep = np.zeros(multi.height, dtype=bool)
    amb = np.zeros(multi.height, dtype=bool)
    if multi.height == 0:
        return keep, amb
    wide = multi.select(big(pl.col("nl"), pl.col("nr"), max_side)).to_series().to_numpy()
    sure = (multi["score"] >= auto_above).to_numpy()
    first = wide | sure
    keep[first], amb[first] = _solve_components(multi.filter(pl.Series(first)), margin, max_side)
    _undo_near_unsure(multi, keep, amb, margin, ~wide)
    later = ~wide & ~sure & ~_claimed(multi, keep, amb, margin)
    keep[later], amb[later] = _solve_components(multi.filter(pl.Series(later)), margin, max_side)
    return keep, amb


#: Slack of the margin comparisons, as the solver's (see recon.solver).
_EPS = 1e-12


def _rivals(
    multi: pl.DataFrame, chosen: np.ndarray, margin: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The rivals within `margin` of the pairs of `multi` marked `chosen`: (i, r) for each
    pair i and the right row r (code `ri`) of a pair of its left row with another item,
    and (i, l) for each pair i and the left row l (code `li`) of another pair of its
    right row."""
    rows = multi.select(
        pl.int_range(pl.len()).alias("i"), "li", "ri", pl.col("score").cast(pl.Float64), "rk"
    )
    mine = rows.filter(pl.Series(chosen))
    near = pl.col("s2") > pl.col("score") - margin + _EPS
    other = rows.select("li", "ri", pl.col("score").alias("s2"), pl.col("rk").alias("rk2"))
    by_l = (
        mine.join(other.rename({"ri": "ri2"}), on="li")
        .filter(near & (pl.col("rk2") != pl.col("rk")))
    )
    by_r = mine.join(other.drop("rk2").rename({"li": "li2"}), on="ri").filter(
        near & (pl.col("li2") != pl.col("li"))
    )
    return (
        by_l["i"].to_numpy(), by_l["ri2"].to_numpy(), by_r["i"].to_numpy(), by_r["li2"].to_numpy()
    )


def _marked(codes: np.ndarray, *marked: np.ndarray) -> np.ndarray:
    """Per code from 0 to the largest of `codes`, whether it is among `marked`."""
    out = np.zeros(int(codes.max()) + 1, dtype=bool)
    for m in marked:
        out[m] = True
    return out


def _undo_near_unsure(
    multi: pl.DataFrame, keep: np.ndarray, amb: np.ndarray, margin: float, exact: np.ndarray
) -> None:
    """Withhold (in `keep` and `amb`) each kept pair of the `exact` components with a
    rival within the margin whose other row no kept pair holds: the rival is an
    alternative (an unsure pair, or one freed by a pair withheld here).  Until none
    is left: a pair withheld frees its rows for the rivals of others.  The rivals are
    found once (kept pairs only leave); each round reads which rows are still held."""
    by_l, r_of, by_r, l_of = _rivals(multi, keep & exact, margin)
    li, ri = multi["li"].to_numpy(), multi["ri"].to_numpy()
    while True:
        held_l, held_r = _marked(li, li[keep]), _marked(ri, ri[keep])
        undone = np.union1d(
            by_l[keep[by_l] & ~held_r[r_of]], by_r[keep[by_r] & ~held_l[l_of]]
        )
        if not len(undone):
            return
        keep[undone] = False
        amb[undone] = True


def _claimed(multi: pl.DataFrame, keep: np.ndarray, amb: np.ndarray, margin: float) -> np.ndarray:
    """Per pair of `multi`, whether a row of it is taken (`keep`), withheld (`amb`) or a
    rival within the margin of a withheld pair: an unsure pair must not take it, or
    the next pass would see the tie broken (see recon.pipeline.resolve_proposals)."""
    held = keep | amb
    _, r_of, _, l_of = _rivals(multi, amb, margin)
    li, ri = multi["li"].to_numpy(), multi["ri"].to_numpy()
    claimed: np.ndarray = _marked(li, li[held], l_of)[li] | _marked(ri, ri[held], r_of)[ri]
    return claimed


def _positions(comp: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Per row (rows sorted by `comp`), the dense rank from 0 of its `ids` among its
    component's: one sort of (component, id) packed in an int64 instead of a window
    per component.  Both are codes below the number of rows n (components, dense
    codes), so the key stays below n * n, in range for any n that fits in memory."""
    if len(ids) == 0:
        return ids.astype(np.int64)
    code = _codes(pl.Series(comp.astype(np.int64) * (int(ids.max()) + 1) + ids))
    starts, group = _runs(np.arange(len(comp)), comp)
    # a component's (component, id) keys are consecutive codes: rank = code - its first
    ranks: np.ndarray = code - np.minimum.reduceat(code, starts)[group]
    return ranks


#: Threads solving slices of the components (see _solve_components).
_SOLVER_THREADS = max(1, min(os.cpu_count() or 1, 4))


def _slices(starts: np.ndarray, n: int) -> list[np.ndarray]:
    """`starts` (component c: pairs starts[c] to starts[c + 1]) cut in at most `n` runs
    of whole components with about the same number of pairs, each as its own starts."""
    edges = np.searchsorted(starts, np.linspace(0, starts[-1], n + 1)[1:-1])
    cuts = np.unique(np.r_[0, edges, len(starts) - 1])
    return [starts[lo : hi + 1] for lo, hi in itertools.pairwise(cuts) if hi > lo]


def _mutual_best(
    comp: np.ndarray, lpos: np.ndarray, rpos: np.ndarray, score: np.ndarray, margin: float
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (accepted, ambiguous) over pairs of components `comp` (rows `lpos`,
    `rpos` numbered within their component): a pair is accepted only if it is the best of
    both its rows and beats every rival of both by `margin`; a best pair of both that
    does not is ambiguous."""
    lmax, l2 = _top_two(comp, lpos, score)
    rmax, r2 = _top_two(comp, rpos, score)
    best = (score == lmax) & (score == rmax)
    clear = (score - l2 >= margin) & (score - r2 >= margin)
    return best & clear, best & ~clear


def _top_two(comp: np.ndarray, pos: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pair, the best score of its row (`pos` within `comp`) and the second best (the
    best again when two tie; -1 when the row has one pair).  Sorted once in numpy, not
    grouped per component."""
    if len(score) == 0:
        return score.astype(np.float64), score.astype(np.float64)
    order = _argsort(comp, pos, -score)
    starts, group = _runs(order, comp, pos)
    s = score[order]
    sizes = np.diff(np.r_[starts, len(s)])
    second = np.where(sizes > 1, s[np.minimum(starts + 1, len(s) - 1)], -1.0)
    top = np.empty(len(s), dtype=np.float64)
    runner_up = np.empty(len(s), dtype=np.float64)
    top[order] = s[starts][group]
    runner_up[order] = second[group]
    return top, runner_up
