"""A/B two recon checkouts on the same data: speed per stage and rule pass, same outputs?

Runs the real ``python -m recon.cli run`` of each checkout (each from its own folder,
with its own rules/default.yaml) on the same N x N hard-mode data as bench/scale.py,
the checkouts in turn, `--repeat` times, and prints per checkout the median (lowest
and highest) of the wall time, of each stage and the commit, of each rule's first and
later passes and of the pipeline's own steps between them (open items, suggestions),
and whether the six output files are byte for byte the same.

    python bench/ab.py --work /tmp/ab --rows 1000000 OLD_DIR NEW_DIR [--repeat 3]
    python bench/ab.py --work /tmp/ab --rows 1000000 DIR DIR   # the noise of identical runs
    python bench/ab.py --work /tmp/ab --rows 1000000 --rev HEAD~1 [--full]
    python bench/ab.py --work /tmp/ab --rows 5000000 --rev HEAD~1 --full --repeat 1 \
        --memory-limit 4GB --as-of 2026-12-04

With --rev, OLD is a git worktree of that revision (made under --work) and NEW this
checkout.  By default each run is the next night: the last --night share (1%) of the
lines added to a database holding a full run of the others, made once with OLD's code
and copied before each run, so every run starts from the same state (it is kept
under --work as base-n<N>-<folder name>: delete it when OLD's code changed).  With
--own-base each checkout's night starts from a base made by its own code (a change that
keeps state between runs shows only so).  With --full each run is a full run from an
empty database.

The exceptions, the statement and the aging depend on the run's date: without
`--as-of` an A/B that crosses midnight reports them DIFFERENT.  `--as-of DATE` passes
the date to every run (and to the base database's, kept as base-n<N>-<folder>-<DATE>).

One run on this machine can be a fifth off the next: changes of a few percent show
only in medians of runs alternated like these, never in one pair.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale  # bench/scale.py, beside this file

#: The outputs compared byte for byte (summary.json and report.html hold run ids and times).
OUTPUTS = (
    "matches.csv",
    "exceptions.csv",
    "discrepancies.csv",
    "changes.csv",
    "bank_reconciliation.csv",
    "aging.csv",
)

def digests(out: Path) -> dict[str, str]:
    """Short sha256 of each output file (read in blocks: matches.csv is 150 MB at 1M)."""
    digest = {}
    for n in OUTPUTS:
        with (out / n).open("rb") as fh:
            digest[n] = hashlib.file_digest(fh, "sha256").hexdigest()[:12]
    return digest


def medians(runs: list[dict[str, Any]]) -> dict[str, tuple[float, float, float]]:
    """(median, lowest, highest) of every figure of `runs` (wall, stages, rules)."""
    keys: list[str] = []
    for r in runs:
        keys += [k for k in r["figures"] if k not in keys]
    result = {}
    for k in keys:
        values = [float(r["figures"].get(k, 0.0)) for r in runs]
        result[k] = (float(statistics.median(values)), min(values), max(values))
    return result


def worktree(rev: str, work: Path) -> Path:
    """A checkout of `rev` under `work` (a git worktree of this repository)."""
    sha = subprocess.run(
        ["git", "-C", str(scale.ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    tree = work / "trees" / sha[:12]
    if not (tree / "recon").is_dir():
        subprocess.run(
            [
                "git",
                "-C",
                str(scale.ROOT),
                "worktree",
                "add",
                "--force",
                "--detach",
                str(tree),
                sha,
            ],
            check=True,
            capture_output=True,
        )
    return tree


def _run(tree: Path, cmd: list[str], env: dict[str, str]) -> tuple[float, int, list[str]]:
    # from the checkout's folder, `python -m recon.cli` imports that checkout's recon
    code, wall, peak, log = scale.traced(cmd, cwd=tree, stdout=subprocess.DEVNULL, env=env)
    lines = [line for line, _ in log]
    if code != 0:
        raise SystemExit(f"{tree}: recon run exited {code}: {lines[-3:]}")
    return wall, peak, lines


def one_run(
    tree: Path,
    data: Path,
    files: dict[str, list[Path]],
    base: Path | None,
    slot: Path,
    env: dict[str, str],
    memory_limit: str | None = None,
    as_of: str | None = None,
) -> dict[str, Any]:
    """One run of `tree`'s recon in folder `slot`: the night on a copy of `base`, or a
    full run when `base` is None."""
    shutil.rmtree(slot, ignore_errors=True)
    slot.mkdir(parents=True)
    db, out = slot / "recon.duckdb", slot / "out"
    if base is not None:
        shutil.copy2(base, db)
        bank, ledger = files["bank"], files["ledger"]
    else:
        bank, ledger = [data / "bank.csv"], [data / "ledger.csv"]
    os.sync()
    cmd = scale.recon_cmd(data, bank, ledger, memory_limit, tree=tree, db=db, out=out)
    wall, peak, lines = _run(tree, cmd + _dated(as_of), env)
    summary = json.loads((out / "summary.json").read_text())
    figures = {
        "wall": wall,
        **scale.with_commit(summary["stages"], lines),
        **scale.pass_seconds(lines),
    }
    return {"figures": figures, "peak_rss": peak, "digests": digests(out)}


def base_db(
    tree: Path,
    data: Path,
    files: dict[str, list[Path]],
    work: Path,
    env: dict[str, str],
    memory_limit: str | None = None,
    as_of: str | None = None,
) -> Path:
    """A database holding a full run of the base files by `tree`'s code (made once)."""
    base = work / f"base-n{data.name[1:]}-{tree.name}{'-' + as_of if as_of else ''}"
    db = base / "recon.duckdb"
    stamp = base / ".done"
    if not stamp.is_file():
        shutil.rmtree(base, ignore_errors=True)
        base.mkdir(parents=True)
        _run(
            tree,
            scale.recon_cmd(
                data,
                files["bank"][:1],
                files["ledger"][:1],
                memory_limit,
                tree=tree,
                db=db,
                out=base / "out",
            )
            + _dated(as_of),
            env,
        )
        stamp.write_text("ok")
    return db


def _dated(as_of: str | None) -> list[str]:
    """recon run's arguments for the run date `as_of` (none: today)."""
    return ["--as-of", as_of] if as_of else []


def labels(trees: list[Path]) -> list[str]:
    """The checkouts' column names: their folder names, numbered where one repeats (the
    same checkout twice measures how far identical runs differ)."""
    out: list[str] = []
    for t in trees:
        n = sum(1 for seen in out if seen.split(" (")[0] == t.name)
        out.append(t.name if n == 0 else f"{t.name} ({n + 1})")
    return out


def report(names: list[str], runs: list[list[dict[str, Any]]]) -> bool:
    """Print the medians of each checkout's runs (`runs[i]` those of column `names[i]`)
    side by side and the outputs' digests; True when every run wrote the same outputs."""
    table = [medians(r) for r in runs]
    keys: list[str] = []
    for t in table:
        keys += [k for k in t if k not in keys]
    print(f"{'seconds (median, lowest-highest)':34}" + "".join(f"{n[:24]:>26}" for n in names))
    for k in keys:
        cells = []
        for t in table:
            mid, lo, hi = t.get(k, (0.0, 0.0, 0.0))
            cells.append(f"{mid:9.2f} ({lo:6.2f}-{hi:6.2f})")
        print(f"{k:34}" + "".join(f"{c:>26}" for c in cells))
    peaks = [statistics.median(x["peak_rss"] for x in r) / 2**30 for r in runs]
    print(f"{'peak RSS (GiB)':34}" + "".join(f"{p:26.2f}" for p in peaks))
    same = True
    first = runs[0][0]["digests"]
    for name in OUTPUTS:
        seen = {x["digests"][name] for r in runs for x in r}
        same = same and len(seen) == 1
        print(
            f"{name:34}{'same' if len(seen) == 1 else 'DIFFERENT: ' + ' '.join(sorted(seen))}"
            f"  {first[name]}"
        )
    return same


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trees", nargs="*", type=Path, help="recon checkouts (OLD NEW ...)")
    ap.add_argument("--rev", help="OLD is a worktree of this git revision, NEW this checkout")
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--work", type=Path, required=True, help="data, databases and worktrees")
    ap.add_argument("--repeat", type=int, default=3, metavar="K")
    ap.add_argument("--night", type=float, default=0.01, metavar="SHARE")
    ap.add_argument("--full", action="store_true", help="full runs instead of the night")
    ap.add_argument(
        "--own-base",
        action="store_true",
        help="each checkout's night starts from a base run by its own code (for changes "
        "that keep state between runs), not from OLD's",
    )
    ap.add_argument("--memory-limit", help="passed to recon run (as scale.py's, e.g. 4GB)")
    ap.add_argument(
        "--as-of", type=date.fromisoformat, help="the run date of every run (YYYY-MM-DD)"
    )
    args = ap.parse_args()
    trees = [t.resolve() for t in args.trees]
    if args.rev:
        trees = [worktree(args.rev, args.work), *(trees or [scale.ROOT])]
    if len(trees) < 2:
        ap.error("give two checkouts (OLD NEW) or --rev")
    data = scale.generated(args.rows, args.work)
    files = scale.split_night(data, args.night)
    env = scale.run_env(data)
    limit = args.memory_limit
    as_of = args.as_of.isoformat() if args.as_of else None
    owners = trees if args.own_base else trees[:1] * len(trees)
    bases = [
        None if args.full else base_db(owner, data, files, args.work, env, limit, as_of)
        for owner in owners
    ]
    names = labels(trees)
    # by position, not by checkout: the same checkout may be given twice
    runs: list[list[dict[str, Any]]] = [[] for _ in trees]
    for i in range(args.repeat):
        for j, tree in enumerate(trees):
            slot = args.work / f"run{j}"
            runs[j].append(one_run(tree, data, files, bases[j], slot, env, limit, as_of))
            print(
                f"run {i + 1}/{args.repeat} of {names[j]}: {runs[j][-1]['figures']['wall']:.1f} s",
                file=sys.stderr,
            )
    print(
        f"\n== {'full runs' if args.full else 'next night'} at N = {args.rows:,}, "
        f"{args.repeat} run(s) each, alternating"
    )
    for n, t in zip(names, trees, strict=True):
        print(f"  {n}: {t}")
    same = report(names, runs)
    raise SystemExit(0 if same else 1)


if __name__ == "__main__":
    main()
