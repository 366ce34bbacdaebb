"""What a night's pairing works on: how much of it touches the night's new lines.

A night (bench/scale.py's: the last --night share of the lines added to a database
holding a full run of the others) considers only the new lines and the items still open.
The open items are many (the 1M benchmark's night: about 220,000 against 22,000 new
lines), and a night's first pass builds the pairs of all of them again, as the diagnosis
of the exceptions does after the passes, though most of those pairs were built the night
before from the same two rows.  This prints where the night's time went (parsing and
storing, the open items, the first pass, the later passes, the diagnosis, the other
outputs, the rest), then, per rule and pass, the candidate pairs, the pairs kept after
scoring and how many of those have a new line on a side, with the seconds spent building
and scoring them, and the same of the diagnosis's candidates (the seconds of their
scoring); then how many of the exceptions open on both nights the night diagnosed as the
night before did.  The pairs with no new line, and the diagnoses unchanged, are the most
that state kept between runs (each rule's pairs, each open item's diagnosis, carried
from night to night) could spare:

    python bench/night.py --work /tmp/bench/w1m --rows 1000000 --as-of 2026-12-04

It makes once, under --work, a database holding a full run of the base files by this
checkout (bench/ab.py's base-n<N>-<folder>[-<date>]: delete it when the code changes
what a run keeps), copies it, and runs this checkout's `recon run` on the night in this
process, the pipeline's pair building and the diagnosis's scoring wrapped to look at
them (the outputs are those of a run not watched).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
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

COLUMNS = ("candidates", "pairs", "with_new", "seconds")


def with_new(pairs: pl.DataFrame, newer_than: int) -> int:
    """How many pairs (l, r) of `pairs` have a row stored after txn id `newer_than`."""
    return int(pairs.select(((pl.col("l") > newer_than) | (pl.col("r") > newer_than)).sum()).item())


def watch(
    rows: list[dict[str, Any]], newer_than: int, spent: dict[str, float] | None = None
) -> None:
    """Wrap the pipeline's pair building and the diagnosis's scoring so that each
    appends a row to `rows`: pass (0 for the diagnosis), rule, the candidates, the
    pairs kept, those with a row stored after txn id `newer_than`, seconds.  With
    `spent`, add there the seconds of each pass (`pass N`), of its open items (`open
    items N`) and of the diagnosis (`diagnosis`)."""
    import recon.diagnose as diagnose
    import recon.pipeline as pipeline
    import recon.run as run

    now: dict[str, Any] = {}
    if spent is not None:
        for module, name, key, per_pass in ((pipeline, "_one_pass", "pass", True),
                                            (pipeline, "prepare_open_tables", "open items", True),
                                            (run, "diagnose", "diagnosis", False)):
            setattr(module, name,
                    _timed(getattr(module, name), spent, key, now if per_pass else None))
    scale.track_pass(now)
    build, score = pipeline._build_pairs, diagnose.score_in_chunks

    @functools.wraps(build)
    def build_(con: Any, m: Any, rule: Any, *a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        pairs, candidates, levels = build(con, m, rule, *a, **k)
        rows.append({"pass": now["pass"], "rule": rule.name, "candidates": candidates,
                     "pairs": pairs.height, "with_new": with_new(pairs, newer_than),
                     "seconds": time.perf_counter() - started})
        return pairs, candidates, levels

    @functools.wraps(score)
    def score_(con: Any, t: Any, cand: pl.DataFrame, *a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        found = score(con, t, cand, *a, **k)
        # the diagnosis's candidates are all scored: the pairs kept are each row's best
        rows.append({"pass": 0, "rule": "diagnosis", "candidates": cand.height,
                     "pairs": cand.height, "with_new": with_new(cand, newer_than),
                     "seconds": time.perf_counter() - started})
        return found

    pipeline._build_pairs = build_  # type: ignore[assignment]
    diagnose.score_in_chunks = score_  # type: ignore[assignment]


def _timed(fn: Any, spent: dict[str, float], key: str, now: dict[str, Any] | None) -> Any:
    """`fn`, adding its seconds to `spent[key]`, or with `now` (see scale.track_pass) to
    `spent[key + " N"]` in pass N."""

    @functools.wraps(fn)
    def fn_(*a: Any, **k: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            name = key if now is None else f"{key} {now['pass']}"
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - started

    return fn_


def breakdown(stages: dict[str, float], spent: dict[str, float], wall: float
              ) -> list[tuple[str, float]]:
    """Where a night's `wall` seconds went, from summary.json's `stages` and what
    watch put in `spent`: what grows with the new lines, with the open items and
    with the whole book, and the rest."""
    def summed(key: str, first: bool) -> float:
        return sum(v for k, v in spent.items()
                   if k.startswith(key + " ") and (k == f"{key} 1") == first)

    open_items = summed("open items", True) + summed("open items", False)
    return [
        ("parsing and storing the new lines", stages.get("parse", 0) + stages.get("load", 0)),
        ("open items (every pass)", open_items),
        ("the first pass's rules and suggestions",
         summed("pass", True) - summed("open items", True)),
        ("the later passes' rules and suggestions",
         summed("pass", False) - summed("open items", False)),
        ("the diagnosis", spent.get("diagnosis", 0.0)),
        ("the other bank outputs", stages.get("outputs_bank", 0) - spent.get("diagnosis", 0.0)),
        ("statement, aging and report", sum(stages.get(k, 0) for k in (
            "reconciliation_statement", "aging", "report"))),
        ("start-up, commit and the rest", wall - sum(stages.values())),
    ]


def unchanged(before: pl.DataFrame, after: pl.DataFrame) -> tuple[int, int]:
    """Of the rows of exceptions.csv `after` that `before` (the night before's) lists too
    (by side, id and account): how many, and how many with the same reason, best
    candidates and score (all columns read as text)."""
    key, seen = ["side", "id", "account"], ["reason", "best_candidate_ids", "best_score"]
    both = after.select(*key, *seen).join(
        before.select(*key, *seen), on=key, how="inner", nulls_equal=True, suffix="_before"
    )
    same = both.filter(pl.all_horizontal(pl.col(c).eq_missing(pl.col(f"{c}_before")) for c in seen))
    return both.height, same.height


def table(rows: list[dict[str, Any]]) -> list[str]:
    """The lines printed for `rows` (see watch): one per rule and pass, then the totals
    of the first pass, of the later passes and of the diagnosis."""
    lines = [f"{'pass':>4} {'rule':<20}" + "".join(f"{c:>12}" for c in COLUMNS) + f"{'new %':>8}"]
    for r in rows:
        share = 100 * r["with_new"] / r["pairs"] if r["pairs"] else 0.0
        lines.append(
            f"{r['pass'] or 'diag':>4} {r['rule']:<20}"
            + "".join(f"{r[c]:>12,}" for c in COLUMNS[:-1])
            + f"{r['seconds']:>12.3f}{share:>7.1f}%"
        )
    for label, keep, spent in (("first pass", lambda r: r["pass"] == 1, "building and scoring"),
                               ("later passes", lambda r: r["pass"] > 1, "building and scoring"),
                               ("diagnosis", lambda r: r["pass"] == 0, "scoring")):
        sel = [r for r in rows if keep(r)]
        pairs, new = sum(r["pairs"] for r in sel), sum(r["with_new"] for r in sel)
        lines.append(
            f"{label}: {sum(r['candidates'] for r in sel):,} candidates, {pairs:,} pairs kept, "
            f"{new:,} with a new line ({100 * new / pairs if pairs else 0:.1f}%); "
            f"{sum(r['seconds'] for r in sel):.2f} s {spent}"
        )
    return lines


def main() -> None:
    import ab  # bench/ab.py, beside this file
    import duckdb

    args = scale.bench_args(__doc__, night=True)
    data = scale.generated(args.rows, args.work)
    files = scale.split_night(data, args.night)
    env = scale.run_env(data)
    # the night runs in this process, with the limit its base was made with
    os.environ["RECON_MAX_FILE_BYTES"] = env["RECON_MAX_FILE_BYTES"]
    base = ab.base_db(ROOT, data, files, args.work, env, args.memory_limit, args.as_of)
    slot = args.work / f"night-n{args.rows}"
    shutil.rmtree(slot, ignore_errors=True)
    slot.mkdir(parents=True)
    db = slot / "recon.duckdb"
    shutil.copy2(base, db)
    with duckdb.connect(str(db), read_only=True) as con:
        newer_than = int(con.sql("select coalesce(max(txn_id), 0) from txns").fetchall()[0][0])
    cmd = scale.recon_cmd(data, files["bank"], files["ledger"], args.memory_limit,
                          db=db, out=slot / "out")
    rows: list[dict[str, Any]] = []
    spent: dict[str, float] = {}
    watch(rows, newer_than, spent)
    wall = scale.run_here(cmd, "--as-of", args.as_of)
    stages = json.loads((slot / "out" / "summary.json").read_text())["stages"]
    print(f"\n== the next night at N = {args.rows:,} (the last {args.night:.0%} of the lines "
          f"new, stored after txn id {newer_than:,}): {wall:.1f} s in all")
    print("stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in stages.items()))
    for label, seconds in breakdown(stages, spent, wall):
        print(f"  {label:<42}{seconds:>7.2f} s")
    print("\n".join(table(rows)))
    both, same = unchanged(*(pl.read_csv(d / "out" / "exceptions.csv", infer_schema=False)
                             for d in (base.parent, slot)))
    print(f"exceptions open both nights: {both:,}, of which {same:,} "
          f"({100 * same / both if both else 0:.1f}%) with the same reason, best candidates "
          "and score")


if __name__ == "__main__":
    main()
