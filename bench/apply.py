"""Speed of `recon apply` on a big database: a reviewer's decisions files at month-end.

Makes (once, kept under --work) a database holding a full run of bench/scale.py's
N x N hard-mode data, then times the real ``python -m recon.cli apply`` of two files,
each on a fresh copy of that database:

- matches: the first --decisions suggested matches of matches.csv, accepted and
  rejected in turn (a reviewer's pass over the suggestions);
- manual: --manual bank lines of exceptions.csv matched by hand with their best
  candidate, each line and candidate used once (the exceptions a reviewer settles).

    python bench/apply.py --work /tmp/bench/w1m --rows 1000000 [--decisions 5000] \\
        [--manual 500] [--repeat 3]

Prints per file the decisions, the median wall time (lowest-highest) and decisions per
second. The wall time includes starting Python and opening the database (about 0.5 s).

The base database (`apply-base.duckdb` in the data folder) is made by the checkout that
made it first and kept: to compare two checkouts, give each its own --work (a database
made by other code has that code's schema, such as the keys older versions kept).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import ROOT, generated, recon_cmd, run_env


def base_database(data: Path) -> Path:
    """A database with a full run of `data`'s bank.csv and ledger.csv, made once, with
    its outputs in `data`/apply-out."""
    db = data / "apply-base.duckdb"
    if not db.is_file():
        env = run_env(data)
        tmp = data / "apply-making.duckdb"
        tmp.unlink(missing_ok=True)
        cmd = recon_cmd(data, [data / "bank.csv"], [data / "ledger.csv"], None, db=tmp,
                        out=data / "apply-out")
        subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, cwd=ROOT)
        tmp.rename(db)
    return db


def decision_files(data: Path, decisions: int, manual: int) -> dict[str, tuple[Path, int]]:
    """The two decisions files (see the module's docstring), written beside the data, with
    the number of decisions each holds."""
    out = data / "apply-out"
    matches = pl.read_csv(out / "matches.csv", infer_schema=False)
    suggested = matches.filter(pl.col("status") == "suggested").head(decisions)
    reviewed = suggested.with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0).then(pl.lit("accept"))
        .otherwise(pl.lit("reject")).alias("decision"),
        pl.lit("bench").alias("note"),
    )
    exceptions = pl.read_csv(out / "exceptions.csv", infer_schema=False)
    rights = exceptions.filter(pl.col("side") == "right")["id"]
    by_hand = (
        exceptions.filter(
            (pl.col("side") == "left")
            & pl.col("best_candidate_ids").is_not_null()
            & ~pl.col("best_candidate_ids").str.contains(";")
            & pl.col("best_candidate_ids").is_in(rights.implode())
        )
        .filter(pl.col("best_candidate_ids").is_first_distinct())
        .head(manual)
        .with_columns(
            pl.lit("match").alias("decision"),
            pl.col("best_candidate_ids").alias("match_with"),
            pl.lit("bench").alias("note"),
        )
    )
    files = {"matches": data / "apply-matches.csv", "manual": data / "apply-manual.csv"}
    reviewed.write_csv(files["matches"])
    by_hand.write_csv(files["manual"])
    return {"matches": (files["matches"], reviewed.height),
            "manual": (files["manual"], by_hand.height)}


def timed_apply(base: Path, decisions: Path, work: Path) -> float:
    """Wall seconds of `recon apply` of `decisions` on a fresh copy of `base`."""
    db = work / "apply-run.duckdb"
    for stale in work.glob("apply-run.duckdb*"):
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    shutil.copyfile(base, db)
    cmd = [sys.executable, "-m", "recon.cli", "apply", str(decisions), "--db", str(db),
           "--user", "bench"]
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"recon apply {decisions.name} exited {done.returncode}: {done.stderr}")
    return wall


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--decisions", type=int, default=5000)
    ap.add_argument("--manual", type=int, default=500)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    data = generated(args.rows, args.work)
    base = base_database(data)
    files = decision_files(data, args.decisions, args.manual)
    print(f"recon apply on a database of {args.rows:,} bank lines ({base.stat().st_size / 2**20:,.0f} MiB)")
    print(f"{'file':10s} {'decisions':>9s}  {'seconds (median, lowest-highest)':>34s} {'decisions/s':>11s}")
    figures = {}
    for name, (path, n) in files.items():
        walls = [timed_apply(base, path, data) for _ in range(args.repeat)]
        mid = statistics.median(walls)
        figures[name] = {"decisions": n, "seconds": mid}
        print(f"{name:10s} {n:9,d}  {mid:16.2f} ({min(walls):6.2f}-{max(walls):6.2f}) "
              f"{n / mid:11,.0f}")
    return figures


if __name__ == "__main__":
    main()
