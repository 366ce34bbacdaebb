"""Speed and memory of the real `recon run` at N x N rows, against a DuckDB floor.

For each N: generate hard-mode data with sample_data/generate.py, run
``python -m recon.cli run`` (CSV in, default rules, every output, a database
file on disk) as a separate process, sample the peak RSS of its process tree,
and read the per-stage times from summary.json.  The floor is a minimal DuckDB
script that loads both CSVs and writes an exact join on reference and amount
to CSV; recon's time is printed as a multiple of it.

    python bench/scale.py --rows 100000 [--rows 1000000 ...] [--memory-limit [N=]4GB ...]
                          [--night 0.01] [--repeat 3]

With several N, each N but the smallest is compared with the next smaller one: how
many times its lines, wall time, floor and peak RSS.  `--memory-limit 4GB` is passed to
every run; `--memory-limit 5000000=4GB` to the runs of that N only, so that
``--rows 1000000 --rows 5000000 --memory-limit 5000000=4GB`` times the issue's pair
in one go: 1M with recon's default limit, 5M within 4GB, the same hour.

With --night, the full run loads all but the last 1% of the lines (by date) and
the next night adds them: the incremental night is timed against the full run.  The
same night is then run again, its files already loaded: that rerun, with nothing new
to load or match, is the cost every run pays over the whole book (open items,
outputs, statement, aging, report), the part of a night that does not shrink with it.

With --repeat K, each N is run K times (each from an empty database; the full run,
its night, the rerun and the floor in turn) and every figure is the median of the K runs, its
spread (lowest and highest) beside the wall times.  On a shared machine one run's
wall time can be a fifth off another's: compare medians.  With several N the runs go in
K rounds, each running every N once, so that the runs compared in a growth line are
minutes apart, not K runs apart; the line then also gives each round's ratio of wall
times and their median (bench/README.md gives how far single pairs differ).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import inspect
import itertools
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

ROOT = Path(__file__).resolve().parents[1]

FLOOR_SQL = """
import duckdb, sys
con = duckdb.connect()
con.execute("create table b as select * from read_csv(?, all_varchar=true)", [sys.argv[1]])
con.execute("create table l as select * from read_csv(?, all_varchar=true)", [sys.argv[2]])
con.execute(f\"\"\"copy (select b.id, l.id from b join l on b.reference = l.reference
              and b.amount::decimal(20,4) = l.amount::decimal(20,4))
              to '{sys.argv[3]}' (header)\"\"\")
"""


def peak_rss(cmd: list[str], **kw: object) -> tuple[int, float, int]:
    """Run `cmd`; return (exit code, wall seconds, peak RSS in bytes of its process tree)."""
    code, wall, peak, _ = traced(cmd, **kw)
    return code, wall, peak


class Sampler:
    """The RSS of a process (this one unless `pid`; with `tree`, its children's added)
    every `every` seconds, in a thread: the peak since `reset()` (`lap`) and since the
    start (`top`).  The thread ends with the process or at `stop()`."""

    def __init__(self, pid: int | None = None, *, tree: bool = False, every: float = 0.02) -> None:
        self._proc = psutil.Process(pid)
        self._tree = tree
        self._every = every
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.peak = self.top = 0
        threading.Thread(target=self._run, daemon=True).start()

    def rss(self) -> int:
        """The RSS now (0 once the process has ended)."""
        total = 0
        with contextlib.suppress(psutil.Error):
            procs = [self._proc, *self._proc.children(recursive=True)] if self._tree else [self._proc]
            for p in procs:
                with contextlib.suppress(psutil.Error):
                    total += p.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.wait(self._every) and self._proc.is_running():
            self._note(self.rss())

    def _note(self, rss: int) -> None:
        with self._lock:
            self.peak, self.top = max(self.peak, rss), max(self.top, rss)

    def stop(self) -> None:
        self._stop.set()

    def reset(self) -> int:
        """Start a new peak at the RSS now; return it."""
        return self.lap()[1]

    def lap(self) -> tuple[int, int]:
        """(the peak since `reset()`, the RSS now included; the RSS now), from one reading
        of the RSS, and a new peak starts at it, as `reset()` starts one."""
        rss = self.rss()
        with self._lock:
            peak = max(self.peak, rss)
            self.peak, self.top = rss, max(self.top, rss)
        return peak, rss


def traced(cmd: list[str], **kw: object) -> tuple[int, float, int, list[tuple[str, int]]]:
    """Run `cmd`, sampling the RSS of its process tree; return (exit code, wall seconds,
    peak RSS, and per line it wrote to stderr: the line and the peak RSS since the
    line before, the RSS at both lines included). recon logs one line as each stage
    ends, so that is the peak per stage."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True, **kw)  # type: ignore[call-overload]
    sampler = Sampler(proc.pid, tree=True, every=0.05)
    lines: list[tuple[str, int]] = []
    assert proc.stderr is not None
    for line in proc.stderr:
        lines.append((line.rstrip(), sampler.lap()[0]))
    code = proc.wait()
    sampler.stop()
    return code, time.perf_counter() - started, sampler.top, lines


_RULE_LINE = re.compile(
    r"^recon: (?:rule (?P<rule>\S+)|(?P<step>open items|suggestions))"
    r"(?: \(pass (?P<pass>\d+)\))?(?:: \d+ matches)? \((?P<s>[\d.]+) s\)$"
)


def pass_seconds(lines: list[str]) -> dict[str, float]:
    """Seconds per rule pass from recon's log: a rule's first pass under "rule", its
    later passes summed under "rule (later)"; the same for the pipeline's own steps
    between the rules, "open items" (the open tables, names, reference keys and caps,
    before a pass's first rule: 12% of a 1M run, inside `match_bank`) and "suggestions"."""
    out: dict[str, float] = {}
    for line in lines:
        m = _RULE_LINE.match(line)
        if m:
            name = m["rule"] or m["step"]
            key = name if m["pass"] is None else f"{name} (later)"
            out[key] = out.get(key, 0.0) + float(m["s"])
    return out


#: The pipeline's own steps between the rules (see pass_seconds).
STEPS = ("open items", "suggestions")

_COMMIT_LINE = re.compile(r"^recon: committed; outputs in .* \((?P<s>[\d.]+) s\)$")


def commit_seconds(lines: list[str]) -> float:
    """Seconds of the run's commit, from recon's log (0 when it logged none): after
    the outputs, so not among summary.json's stages, and 12-20 s of a 5M full run."""
    for line in reversed(lines):
        m = _COMMIT_LINE.match(line)
        if m:
            return float(m["s"])
    return 0.0


def with_commit(stages: dict[str, float], lines: list[str]) -> dict[str, float]:
    """summary.json's `stages` and the commit (see commit_seconds) after them."""
    return stages | {"commit": commit_seconds(lines)}


def steps(log: list[tuple[str, int]]) -> dict[str, float]:
    """Seconds of each of STEPS in a run's log, its passes summed (as the rules' are)."""
    seconds = pass_seconds([line for line, _ in log])
    return {s: seconds.get(s, 0.0) + seconds.get(f"{s} (later)", 0.0) for s in STEPS}


def made_before(stamp: Path, made: str, *outputs: Path) -> bool:
    """Whether `outputs` were made as `made` says: the text of `stamp`, written beside
    them once they were complete.  If not, the stamp is removed first, so that outputs
    left half made by an interrupted run are never taken; the caller makes them and then
    writes `made` to `stamp`."""
    if stamp.is_file() and stamp.read_text() == made and all(p.is_file() for p in outputs):
        return True
    stamp.unlink(missing_ok=True)
    return False


def split_night(data: Path, share: float) -> dict[str, list[Path]]:
    """Cut the last `share` of each side's rows (by date, then id) into a second file:
    the base files are the full run, base plus the cut files the next night.

    Files cut before from the same data and share are left as they are (a stamp beside
    them says which): a night handed the base files again finds them as the run before
    left them, as a nightly job finds its archive, and recon reads their status, not
    their bytes (see recon.db.file_sha256)."""
    import polars as pl

    files: dict[str, list[Path]] = {}
    for side in ("bank", "ledger"):
        src = data / f"{side}.csv"
        base, new = data / f"{side}_base.csv", data / f"{side}_night.csv"
        files[side] = [base, new]
        st = src.stat()
        stamp = data / f".{side}_night"
        made = f"{share!r} {st.st_size} {st.st_mtime_ns}"
        if made_before(stamp, made, base, new):
            continue
        frame = pl.read_csv(src, infer_schema=False).sort(["date", "id"])
        cut = frame.height - max(1, int(frame.height * share))
        frame.head(cut).write_csv(base)
        frame.tail(frame.height - cut).write_csv(new)
        stamp.write_text(made)
    return files


def run_env(data: Path) -> dict[str, str]:
    """The environment of a `recon run` on `data`'s files: this process's, with the input
    size limit (a safety default of 512 MiB) raised for big N."""
    return dict(os.environ, RECON_MAX_FILE_BYTES=str(2 * (data / "bank.csv").stat().st_size))


def recon_cmd(data: Path, bank: list[Path], ledger: list[Path], memory_limit: str | None,
              *, tree: Path = ROOT, db: Path | None = None, out: Path | None = None
              ) -> list[str]:
    """`recon run` of the checkout at `tree` (its rules/default.yaml) on these files, into
    `db` and `out` (by default recon.duckdb and out/ in `data`)."""
    cmd = [sys.executable, "-m", "recon.cli", "run", "--rules",
           str(tree / "rules" / "default.yaml"), "--db", str(db or data / "recon.duckdb"),
           "--out", str(out or data / "out")]
    cmd += [a for p in bank for a in ("--bank", str(p))]
    cmd += [a for p in ledger for a in ("--ledger", str(p))]
    if memory_limit:
        cmd += ["--memory-limit", memory_limit]
    return cmd


# In-process benchmarks (bench/passes.py, night.py, memory.py) run this checkout's recon
# in their own process, wrapping its steps to look at them; the helpers they share.


def bench_args(doc: str, night: bool = False) -> argparse.Namespace:
    """The arguments of an in-process benchmark: --rows, --work, --memory-limit, --as-of,
    and with `night` --night."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000, help="bank lines (default 100000)")
    ap.add_argument("--work", type=Path, required=True, help="data and databases here")
    if night:
        ap.add_argument("--night", type=float, default=0.01, metavar="SHARE")
    ap.add_argument("--memory-limit")
    ap.add_argument("--as-of", default="2026-12-04")
    return ap.parse_args()


def run_here(cmd: list[str], *more: str) -> float:
    """`recon run` as recon_cmd gives it, with `more` arguments, in this process; return
    its wall seconds.  A run that fails stops the benchmark."""
    from recon.cli import main as recon

    started = time.perf_counter()
    try:
        recon([*cmd[cmd.index("run"):], *more])
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise
    return time.perf_counter() - started


def argument(fn: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """What `fn` called with `args` and `kwargs` gets for its parameter `name` (its
    default when not given): read by the signature, not by a position a wrapper assumes."""
    bound = inspect.signature(fn).bind(*args, **kwargs)
    bound.apply_defaults()
    return bound.arguments[name]


def track_pass(now: dict[str, Any]) -> None:
    """Wrap the pipeline's pass so that `now["pass"]` holds the number of the pass running."""
    import recon.pipeline as pipeline

    one_pass = pipeline._one_pass

    @functools.wraps(one_pass)
    def one_pass_(*a: Any, **k: Any) -> Any:
        now["pass"] = argument(one_pass, "pass_no", a, k)
        return one_pass(*a, **k)

    pipeline._one_pass = one_pass_  # type: ignore[assignment]


def generated(rows: int, work: Path) -> Path:
    """The folder of N x N hard-mode data under `work` (seed 5), generated unless an
    earlier run left it there."""
    data = work / f"n{rows}"
    args = [str(ROOT / "sample_data" / "generate.py"), "--seed", "5", "--rows", str(rows),
            "--mode", "hard", "--out", str(data)]
    stamp = data / ".generated"
    # --work kept from an earlier run: the same arguments give the same files
    if not made_before(stamp, repr(args[1:])):
        subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL)
        stamp.write_text(repr(args[1:]))
    return data


def in_rounds(sizes: list[int], work: Path, limits: dict[int, str | None],
              night: float | None = None, repeat: int = 1,
              run: Callable[[int, Path, str | None, float | None], dict[str, Any]] | None = None
              ) -> list[dict[str, Any]]:
    """Generate each N's data, then time recon `repeat` times on each, in rounds (every N
    once per round, in the order of `sizes`): per N, the median run, with its runs in
    round order under "runs".  `run` (rows, data, memory limit, night) times one run
    (`timed` when not given)."""
    run = run or timed
    data: dict[int, Path] = {}
    gen: dict[int, float] = {}
    for n in sizes:
        t0 = time.perf_counter()
        data[n] = generated(n, work)
        gen[n] = time.perf_counter() - t0
    runs: dict[int, list[dict[str, Any]]] = {n: [] for n in sizes}
    for _ in range(repeat):
        for n in sizes:
            runs[n].append(run(n, data[n], limits[n], night))
    return [median_run(runs[n]) | {"generate_s": gen[n], "runs": runs[n],
                                   "memory_limit": limits[n]} for n in sizes]


def timed(rows: int, data: Path, memory_limit: str | None, night: float | None
          ) -> dict[str, Any]:
    """One full run from an empty database (and its night and rerun), and the floor."""
    out = data / "out"
    # the database, its lock and, after a killed run, DuckDB's spill folder
    for stale in data.glob("recon.duckdb*"):
        if stale.is_dir():
            shutil.rmtree(stale)
        else:
            stale.unlink()
    if night:
        parts = split_night(data, night)
        bank, ledger = [parts["bank"][0]], [parts["ledger"][0]]
    else:
        bank, ledger = [data / "bank.csv"], [data / "ledger.csv"]
    env = run_env(data)
    full = measured(recon_cmd(data, bank, ledger, memory_limit), out, env, "full run", rows)
    if night:
        # the next night: yesterday's files again (skipped by hash) and the new lines;
        # then the same again, every file skipped
        night_cmd = recon_cmd(data, parts["bank"], parts["ledger"], memory_limit)
        full["night"] = measured(night_cmd, out, env, "next night", rows) | {"share": night}
        full["rerun"] = measured(night_cmd, out, env, "rerun", rows)
    _floor_code, floor, floor_rss = peak_rss(
        [sys.executable, "-c", FLOOR_SQL, str(data / "bank.csv"), str(data / "ledger.csv"),
         str(data / "floor.csv")])
    return full | {"rows": rows, "floor_s": floor, "floor_rss": floor_rss}


def measured(cmd: list[str], out: Path, env: dict[str, str], what: str, rows: int
             ) -> dict[str, Any]:
    """One `recon run` (the full run, the night, its rerun) on the database the runs
    before left: wall, peak RSS, new rows, stages, rules, counts, steps and log."""
    # the data generated, the files deleted and the runs' writes before are on disk
    # before the clock starts, as they are by the next night
    os.sync()
    code, wall, rss, log = traced(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, env=env)
    if code != 0:
        raise SystemExit(f"recon run ({what}) exited {code} at {rows} rows: {log[-1:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {"wall_s": wall, "peak_rss": rss,
            "new_rows": sum(i["new_rows"] for i in summary["inputs"]),
            "stages": with_commit(summary["stages"], [line for line, _ in log]), "rules": summary["rules"],
            "counts": summary["counts"], "steps": steps(log), "log": log}


def median_run(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One run of the same shape whose every figure (wall, peak RSS, floor, each stage's
    and each rule's seconds, the night's and the rerun's) is the median over `runs`; the
    lowest and highest wall times are under "wall_range" (the night's and the rerun's
    under their own)."""
    first = runs[0]
    if len(runs) == 1:
        return dict(first)

    def med(values: list[float]) -> float:
        return float(statistics.median(values))

    def stages(key: str, of: list[dict[str, Any]]) -> dict[str, float]:
        return {k: med([r[key][k] for r in of]) for k in of[0][key]}

    def medians(of: list[dict[str, Any]]) -> dict[str, Any]:
        """The figures every run has (the full run, the night, the rerun): the first
        run's with the wall, its spread, peak RSS, stages and steps taken as medians."""
        walls = [float(r["wall_s"]) for r in of]
        mid = med(walls)
        return dict(of[0]) | {
            "wall_s": mid, "wall_range": [min(walls), max(walls)],
            "peak_rss": med([r["peak_rss"] for r in of]), "stages": stages("stages", of),
            **({"steps": stages("steps", of)} if "steps" in of[0] else {}),
            # the log's peaks per stage are those of the run nearest the median wall
            "log": min(of, key=lambda r: abs(r["wall_s"] - mid))["log"]}

    result = medians(runs) | {
        "floor_s": med([r["floor_s"] for r in runs]),
        "floor_rss": med([r["floor_rss"] for r in runs]),
        "rules": [rule | {"seconds": med([r["rules"][i]["seconds"] for r in runs])}
                  for i, rule in enumerate(first["rules"])]}
    for key in ("night", "rerun"):
        if key in first:
            result[key] = medians([r[key] for r in runs])
    return result


def _spread(r: dict[str, Any], runs: int) -> str:
    """ ", median of K (lowest-highest s)" when `r` is the median of several runs."""
    if "wall_range" not in r:
        return ""
    lo, hi = r["wall_range"]
    return f", median of {runs} ({lo:.1f}-{hi:.1f} s)"


def report(r: dict[str, Any]) -> None:
    rows, wall = int(r["rows"]), float(r["wall_s"])
    repeats = len(r.get("runs", []))
    limit = r.get("memory_limit")
    print(f"\n== N = {rows:,} bank lines (hard mode), generated (or found) in "
          f"{float(r['generate_s']):.1f} s; "
          + (f"--memory-limit {limit}" if limit else "recon's default memory limit"))
    print(f"recon run: {wall:.1f} s wall{_spread(r, repeats)}, {rows / wall:,.0f} bank lines/s, "
          f"peak RSS {int(r['peak_rss']) / 2**30:.2f} GiB")
    print(f"floor (DuckDB load + exact join + CSV): {float(r['floor_s']):.2f} s; "
          f"recon = {wall / float(r['floor_s']):.1f} x floor")
    stage_table(r["stages"], r["counts"], r["new_rows"])
    print(f"{'rule':28} {'seconds':>9} {'matches':>9} {'candidates/s':>14}")
    for rule in r["rules"]:
        # the group and reversal rules count no candidate pairs
        rate = (f"{rule['candidates'] / rule['seconds']:14,.0f}"
                if rule["candidates"] and rule["seconds"] else f"{'-':>14}")
        print(f"{rule['name']:28} {rule['seconds']:9.2f} {rule['matches']:9,} {rate}")
    step_rows(r)
    print_log(r["log"])
    if "night" in r:
        n = r["night"]
        later(n, f"next night, {n['share']:.0%} new lines ({n['new_rows']:,} rows)", wall,
              repeats)
    if "rerun" in r:
        later(r["rerun"], "the same night again, nothing new", wall, repeats)


def growth(results: list[dict[str, Any]]) -> list[str]:
    """Each N after the smallest against the N before it: how many times the lines, the
    wall time, the floor and the peak RSS (the medians, with --repeat); with rounds of
    runs (see `in_rounds`), also each round's ratio of wall times and their median."""
    runs = sorted(results, key=lambda r: int(r["rows"]))
    lines = []
    for small, big in itertools.pairwise(runs):
        x = {key: float(big[key]) / float(small[key])
             for key in ("rows", "wall_s", "floor_s", "peak_rss")}
        line = (
            f"N = {int(big['rows']):,} against {int(small['rows']):,}: {x['rows']:.1f}x the "
            f"lines, {x['wall_s']:.2f}x the wall time ({float(big['wall_s']):.1f} / "
            f"{float(small['wall_s']):.1f} s), {x['floor_s']:.2f}x the floor, "
            f"{x['peak_rss']:.2f}x the peak RSS"
        )
        rounds = list(zip(small.get("runs", []), big.get("runs", []), strict=True))
        if len(rounds) > 1:
            each = [float(b["wall_s"]) / float(s["wall_s"]) for s, b in rounds]
            line += (f"; round by round {', '.join(f'{r:.2f}x' for r in each)} "
                     f"(median {statistics.median(each):.2f}x)")
        lines.append(line)
    return lines


def memory_limits(values: list[str] | None, sizes: list[int]) -> dict[int, str | None]:
    """Each N's --memory-limit from the option's values: LIMIT for every N, N=LIMIT for
    that N (which wins); None where none is given (recon's default)."""
    every: str | None = None
    per: dict[int, str] = {}
    for value in values or []:
        n, sep, limit = value.rpartition("=")  # no "=": ("", "", value)
        n = n.replace("_", "")
        if not limit or (sep and not n.isdigit()):
            raise SystemExit(f"--memory-limit {value!r}: expected LIMIT or N=LIMIT (5000000=4GB)")
        if sep:
            per[int(n)] = limit
        else:
            every = limit
    unknown = sorted(set(per) - set(sizes))
    if unknown:
        raise SystemExit(f"--memory-limit names N = {unknown[0]:,}, which no --rows gives")
    return {n: per.get(n, every) for n in sizes}


def later(n: dict[str, Any], title: str, wall: float, repeats: int) -> None:
    """A later run's wall time against the full run's `wall`, its stages and log."""
    print(f"{title}: {n['wall_s']:.1f} s wall{_spread(n, repeats)} = "
          f"{n['wall_s'] / wall:.1%} of the full run, "
          f"peak RSS {n['peak_rss'] / 2**30:.2f} GiB")
    stage_table(n["stages"], n["counts"], n["new_rows"])
    step_rows(n)
    print_log(n["log"])


def step_rows(r: dict[str, Any]) -> None:
    """The pipeline's own steps between the rules (every pass, inside match_bank): the
    open tables with their names, reference keys and caps, and the suggestions."""
    for step, secs in r.get("steps", {}).items():
        print(f"{step + ' (all passes)':28} {secs:9.2f} {'-':>9} {'-':>14}")


def stage_table(stages: dict[str, float], counts: dict[str, int], new_rows: int) -> None:
    """Seconds and rows per second of each stage: the new rows for parsing and storing,
    every row the database holds (both sides) for the others, which read them all."""
    held = counts["left_total"] + counts["right_total"]
    print(f"{'stage':28} {'seconds':>9} {'rows/s':>12}  rows")
    for stage, secs in stages.items():
        rows, what = (new_rows, "new") if stage in ("parse", "load") else (held, "held")
        rate = rows / secs if secs else 0.0
        print(f"{stage:28} {secs:9.2f} {rate:12,.0f}  {what} {rows:,}")


def print_log(log: list[tuple[str, int]]) -> None:
    """recon's stage lines, each with the peak RSS of the process tree during the stage."""
    print(f"{'peak RSS (GiB)':>14}  stage line")
    for line, rss in log:
        print(f"{rss / 2**30:14.2f}  {line}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, action="append", help="bank lines (repeatable)")
    ap.add_argument("--memory-limit", action="append", metavar="[N=]LIMIT",
                    help="passed to recon run: LIMIT (4GB) for every N, N=LIMIT for that N's "
                         "runs only (repeatable)")
    ap.add_argument("--work", type=Path, help="keep data here (default: a temp dir)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--night", type=float, metavar="SHARE",
                    help="also time the next night: the full run loads all but the last "
                         "SHARE of the lines (e.g. 0.01), the next night adds them; then "
                         "that night again, with nothing new")
    ap.add_argument("--repeat", type=int, default=1, metavar="K",
                    help="run each N K times, in rounds of every N once, and print the "
                         "medians (and the wall times' spread)")
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    sizes = args.rows or [100_000]
    limits = memory_limits(args.memory_limit, sizes)
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        results = in_rounds(sizes, work, limits, args.night, args.repeat)
    for r in results:
        report(r)
    for line in growth(results):
        print(line)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
