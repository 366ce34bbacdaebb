"""Where a run's later passes spend their decisions: what each pass decides again.

A rule's later pass decides again only what a change could alter (recon.pipeline.Plan):
the connected components of its pairs that a row leaving (or a pair built again)
touched, whole where the exact solver decides them, and where a component is too big
for it (more than recon.assign.MAX_SIDE rows a side: the mutual-best rule, which reads
a pair's two rows' own pairs only) only the pairs of the rows whose pairs changed, with
every other pair of those rows.  At 5M lines the fuzzy and FX rules' graphs hold
components of hundreds of thousands of pairs; this prints, per rule and later pass, how
many pairs each way:

    python bench/passes.py --work /tmp/bench/w1m --rows 1000000
    python bench/passes.py --work /tmp/bench/w5m --rows 5000000 --memory-limit 4GB

It runs this checkout's `recon run --dry-run` in this process on bench/scale.py's data
(generated under --work unless there), with the pipeline's planning and deciding steps
wrapped to look at them.  Columns: `graph` the rule's pairs this pass, `exact` those of
changed components assigned again whole, `big` those in components the mutual-best rule
decides, `near` the pairs it reads, `redo` those it decides again, `seconds` the
decisions' (exact and near, with the ambiguous rows' records).
"""

from __future__ import annotations

import functools
import sys
import time
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
# this checkout's recon, not the installed one
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale  # noqa: E402  (bench/scale.py, beside this file)

COLUMNS = ("graph", "exact", "big", "near", "redo")


def plan_counts(graph: pl.DataFrame, plan: Any) -> dict[str, int]:
    """Of a later pass's pairs `graph` (l, r) and its recon.pipeline.Plan `plan`: the
    pairs, those assigned again whole, those in components decided by the mutual-best
    rule (their left rows are `plan.big`), those it reads and those it decides again."""
    big = graph.filter(pl.col("l").cast(pl.Int64).is_in(plan.big.cast(pl.Int64).implode()))
    return {"graph": graph.height, "exact": plan.exact.height, "big": big.height,
            "near": plan.near.height, "redo": int(plan.near["redo"].sum())}


def watch(rows: list[dict[str, Any]]) -> None:
    """Wrap the pipeline's steps so that each later pass's decisions append a row to
    `rows` (pass, rule, plan_counts' counts, seconds)."""
    import recon.pipeline as pipeline

    now: dict[str, Any] = {}
    scale.track_pass(now)
    run_rule = pipeline.run_rule
    with_carried, decide = pipeline._with_carried, pipeline.Plan.decide

    @functools.wraps(run_rule)
    def run_rule_(con: Any, rule: Any, *a: Any, **k: Any) -> Any:
        now["rule"] = rule.name
        return run_rule(con, rule, *a, **k)

    @functools.wraps(with_carried)
    def with_carried_(*a: Any, **k: Any) -> Any:
        graph, plan = with_carried(*a, **k)
        now["counts"] = plan_counts(graph, plan)
        return graph, plan

    @functools.wraps(decide)
    def decide_(plan: Any, *a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        found = decide(plan, *a, **k)
        rows.append({"pass": now["pass"], "rule": now["rule"], **now["counts"],
                     "seconds": time.perf_counter() - started})
        return found

    for name, fn in {"run_rule": run_rule_, "_with_carried": with_carried_}.items():
        setattr(pipeline, name, fn)
    pipeline.Plan.decide = decide_  # type: ignore[method-assign]


def main() -> None:
    args = scale.bench_args(__doc__)

    data = scale.generated(args.rows, args.work)
    db = args.work / f"passes-n{args.rows}.duckdb"
    for stale in args.work.glob(f"{db.name}*"):
        stale.unlink()
    cmd = scale.recon_cmd(data, [data / "bank.csv"], [data / "ledger.csv"], args.memory_limit,
                          db=db, out=args.work / f"passes-n{args.rows}-out")
    rows: list[dict[str, Any]] = []
    watch(rows)
    scale.run_here(cmd, "--dry-run", "--as-of", args.as_of)
    print(f"\n{'pass':>4} {'rule':<20}" + "".join(f"{c:>10}" for c in COLUMNS) + f"{'seconds':>9}")
    for r in rows:
        if not r["exact"] and not r["near"]:
            continue
        print(f"{r['pass']:>4} {r['rule']:<20}" + "".join(f"{r[c]:>10,}" for c in COLUMNS)
              + f"{r['seconds']:>9.3f}")
    total = {c: sum(r[c] for r in rows) for c in COLUMNS}
    print(f"later passes: {total['exact']:,} pairs assigned again whole, {total['big']:,} in "
          f"big components of which {total['near']:,} read and {total['redo']:,} decided "
          f"again; decisions {sum(r['seconds'] for r in rows):.2f} s")


if __name__ == "__main__":
    main()
