"""Where a run's later passes spend their assignments, and how much of it lies near a change.

A rule's later pass assigns again every connected component of its pairs that a row
leaving (or a pair built again) touched (see recon.pipeline.Settled).  At 5M lines the
fuzzy and FX rules' graphs hold components of hundreds of thousands of pairs, and a
pass where a few dozen rows leave assigns them all again.  Components with more than
MAX_SIDE rows a side are decided by the mutual-best rule (recon.assign._mutual_best),
which reads a pair's two rows' own pairs only: there, only the pairs of rows whose pairs
changed need deciding again, reading every pair of those rows.  This prints, per rule
and later pass, how many pairs that would be:

    python bench/passes.py --work /tmp/bench/w1m --rows 1000000
    python bench/passes.py --work /tmp/bench/w5m --rows 5000000 --memory-limit 4GB

It runs this checkout's `recon run --dry-run` in this process on bench/scale.py's data
(generated under --work unless there), with the pipeline's assignment and its carrying
step wrapped to look at their inputs.  Columns: `work` the pairs assigned, `comps` their
components, `big` the pairs in components of more than MAX_SIDE rows a side (and more
than one row on each: a one-row side is solved as a star), `near` those of a row whose
pairs changed since the pass before, `context` `near` and every other pair of their
rows, `seconds` the assignment's.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
# this checkout's recon, not the installed one
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: Rows a side above which the assignment decides a component by the mutual-best rule
#: (recon.assign.assign's max_side).
MAX_SIDE = 300


def changed_rows(
    old: pl.DataFrame, new: pl.DataFrame, regrow: pl.Series, left_open: pl.Series,
    right_open: pl.Series,
) -> tuple[pl.Series, pl.Series]:
    """(left ids, right ids) of the open rows whose pairs changed between the last
    assignment's graph `old` (l, r) and this pass's: a pair of theirs lost (its other row
    left), rebuilt (`regrow`, the left rows whose pairs were built again) or new (`new`).
    `left_open`, `right_open`: whether each pair of `old` has its left (right) row open."""
    old = old.select(pl.col("l").cast(pl.Int64), pl.col("r").cast(pl.Int64)).with_columns(
        lo=left_open, ro=right_open, rebuilt=pl.col("l").is_in(regrow.cast(pl.Int64).implode())
    )
    gone = old.filter(~pl.col("lo") | ~pl.col("ro") | pl.col("rebuilt"))
    left = pl.concat(
        [gone.filter(pl.col("lo"))["l"], regrow.cast(pl.Int64), new["l"].cast(pl.Int64)]
    )
    right = pl.concat([gone.filter(pl.col("ro"))["r"], new["r"].cast(pl.Int64)])
    return left.unique().sort(), right.unique().sort()


def near_changes(
    work: pl.DataFrame, left: pl.Series, right: pl.Series, max_side: int = MAX_SIDE
) -> dict[str, int]:
    """Of the pairs `work` (l, r) assigned: their components, the pairs in big ones, those
    of a changed row (`left`, `right`) and those with every other pair of their rows."""
    from recon.assign import components

    pairs = work.select(pl.col("l").cast(pl.Int64), pl.col("r").cast(pl.Int64)).unique()
    if pairs.height == 0:
        return {"work": work.height, "comps": 0, "big": 0, "near": 0, "context": 0}
    pairs = pairs.with_columns(pl.Series("c", components(pairs["l"], pairs["r"])))
    sides = pairs.group_by("c").agg(
        pl.col("l").n_unique().alias("nl"), pl.col("r").n_unique().alias("nr")
    )
    big = (pl.col("nl") > max_side) | (pl.col("nr") > max_side)
    star = (pl.col("nl") == 1) | (pl.col("nr") == 1)
    bigs = sides.filter(big & ~star)["c"].implode()
    inside = pairs.filter(pl.col("c").is_in(bigs))
    near = inside.filter(pl.col("l").is_in(left.implode()) | pl.col("r").is_in(right.implode()))
    context = inside.filter(
        pl.col("l").is_in(near["l"].implode()) | pl.col("r").is_in(near["r"].implode())
    )
    return {"work": work.height, "comps": sides.height, "big": inside.height,
            "near": near.height, "context": context.height}


def watch(rows: list[dict[str, Any]]) -> None:
    """Wrap the pipeline's steps so that each later pass's assignment appends a row to
    `rows` (pass, rule, near_changes' counts, seconds)."""
    import recon.pipeline as pipeline

    now: dict[str, Any] = {}
    one_pass, run_rule = pipeline._one_pass, pipeline.run_rule
    with_carried, assign = pipeline._with_carried, pipeline.assign  # type: ignore[attr-defined]

    def one_pass_(*a: Any, **k: Any) -> Any:
        now["pass"] = a[7] if len(a) > 7 else k.get("pass_no", 1)
        return one_pass(*a, **k)

    def run_rule_(con: Any, rule: Any, *a: Any, **k: Any) -> Any:
        now["rule"], now["changed"] = rule.name, None
        return run_rule(con, rule, *a, **k)

    def with_carried_(pairs: Any, carried: Any, regrow: Any, left: Any, right: Any) -> Any:
        old = [carried.pairs.select("l", "r")]
        if carried.dropped is not None:
            old.append(carried.dropped.select("l", "r"))
        graph = pl.concat(
            [o.select(pl.col("l").cast(pl.Int64), pl.col("r").cast(pl.Int64)) for o in old]
        )
        opened = graph.select(left.expr("l").alias("lo"), right.expr("r").alias("ro"))
        now["changed"] = changed_rows(graph, pairs, regrow, opened["lo"], opened["ro"])
        return with_carried(pairs, carried, regrow, left, right)

    def assign_(pairs: Any, **k: Any) -> Any:
        started = time.perf_counter()
        result = assign(pairs, **k)
        seconds = time.perf_counter() - started
        if now.get("pass", 1) > 1 and now.get("changed") is not None:
            counts = near_changes(pairs, *now["changed"])
            rows.append({"pass": now["pass"], "rule": now["rule"], **counts,
                         "seconds": seconds})
        return result

    wrapped = {"_one_pass": one_pass_, "run_rule": run_rule_,
               "_with_carried": with_carried_, "assign": assign_}
    for name, fn in wrapped.items():
        setattr(pipeline, name, fn)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000, help="bank lines (default 100000)")
    ap.add_argument("--work", type=Path, required=True, help="data (and the run's database) here")
    ap.add_argument("--memory-limit")
    ap.add_argument("--as-of", default="2026-12-04")
    args = ap.parse_args()
    import scale  # bench/scale.py, beside this file

    from recon.cli import main as recon

    data = scale.generated(args.rows, args.work)
    db = args.work / f"passes-n{args.rows}.duckdb"
    for stale in args.work.glob(f"{db.name}*"):
        stale.unlink()
    cmd = scale.recon_cmd(data, [data / "bank.csv"], [data / "ledger.csv"], args.memory_limit,
                          db=db, out=args.work / f"passes-n{args.rows}-out")
    rows: list[dict[str, Any]] = []
    watch(rows)
    try:
        recon([*cmd[cmd.index("run"):], "--dry-run", "--as-of", args.as_of])
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise
    cols = ("work", "comps", "big", "near", "context")
    print(f"\n{'pass':>4} {'rule':<20}" + "".join(f"{c:>10}" for c in cols) + f"{'seconds':>9}")
    for r in rows:
        if not r["work"]:
            continue
        print(f"{r['pass']:>4} {r['rule']:<20}" + "".join(f"{r[c]:>10,}" for c in cols)
              + f"{r['seconds']:>9.3f}")
    total = {c: sum(r[c] for r in rows) for c in ("work", "big", "context")}
    print(f"later passes: {total['work']:,} pairs assigned, {total['big']:,} in big components, "
          f"{total['context']:,} of those near a change with their rows' other pairs; "
          f"assignment {sum(r['seconds'] for r in rows):.2f} s")


if __name__ == "__main__":
    main()
