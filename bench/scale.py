"""Speed and memory of the real `recon run` at N x N rows, against a DuckDB floor.

For each N: generate hard-mode data with sample_data/generate.py, run
``python -m recon.cli run`` (CSV in, default rules, every output, a database
file on disk) as a separate process, sample the peak RSS of its process tree,
and read the per-stage times from summary.json.  The floor is a minimal DuckDB
script that loads both CSVs and writes an exact join on reference and amount
to CSV; recon's time is printed as a multiple of it.

    python bench/scale.py --rows 100000 [--rows 1000000 ...] [--memory-limit 4GB]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

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
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, **kw)  # type: ignore[call-overload]
    peak = 0

    def sample() -> None:
        nonlocal peak
        try:
            root = psutil.Process(proc.pid)
            while proc.poll() is None:
                procs = [root, *root.children(recursive=True)]
                total = 0
                for p in procs:
                    try:
                        total += p.memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, total)
                time.sleep(0.05)
        except psutil.Error:
            pass

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    code = proc.wait()
    t.join()
    return code, time.perf_counter() - started, peak


def one(rows: int, work: Path, memory_limit: str | None) -> dict[str, object]:
    data = work / f"n{rows}"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "sample_data" / "generate.py"), "--seed", "5",
                    "--rows", str(rows), "--mode", "hard", "--out", str(data)],
                   check=True, stdout=subprocess.DEVNULL)
    gen = time.perf_counter() - t0
    out = data / "out"
    cmd = [sys.executable, "-m", "recon.cli", "-q", "run", "--rules",
           str(ROOT / "rules" / "default.yaml"), "--bank", str(data / "bank.csv"),
           "--ledger", str(data / "ledger.csv"), "--db", str(data / "recon.duckdb"),
           "--out", str(out)]
    if memory_limit:
        cmd += ["--memory-limit", memory_limit]
    code, wall, rss = peak_rss(cmd, cwd=ROOT, stdout=subprocess.DEVNULL)
    if code != 0:
        raise SystemExit(f"recon run exited {code} at {rows} rows")
    floor_code, floor, floor_rss = peak_rss(
        [sys.executable, "-c", FLOOR_SQL, str(data / "bank.csv"), str(data / "ledger.csv"),
         str(data / "floor.csv")])
    summary = json.loads((out / "summary.json").read_text())
    return {"rows": rows, "generate_s": gen, "wall_s": wall, "peak_rss": rss,
            "floor_s": floor, "floor_rss": floor_rss, "stages": summary["stages"],
            "rules": summary["rules"], "counts": summary["counts"]}


def report(r: dict[str, object]) -> None:
    rows, wall = int(r["rows"]), float(r["wall_s"])  # type: ignore[arg-type]
    print(f"\n== N = {rows:,} bank lines (hard mode), generated in {float(r['generate_s']):.1f} s")  # type: ignore[arg-type]
    print(f"recon run: {wall:.1f} s wall, {rows / wall:,.0f} bank lines/s, "
          f"peak RSS {int(r['peak_rss']) / 2**30:.2f} GiB")  # type: ignore[call-overload]
    print(f"floor (DuckDB load + exact join + CSV): {float(r['floor_s']):.2f} s; "  # type: ignore[arg-type]
          f"recon = {wall / float(r['floor_s']):.1f} x floor")  # type: ignore[arg-type]
    print(f"{'stage':28} {'seconds':>9}")
    for stage, secs in r["stages"].items():  # type: ignore[attr-defined]
        print(f"{stage:28} {secs:9.2f}")
    print(f"{'rule':28} {'seconds':>9} {'matches':>9}")
    for rule in r["rules"]:  # type: ignore[attr-defined]
        print(f"{rule['name']:28} {rule['seconds']:9.2f} {rule['matches']:9,}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, action="append", help="bank lines (repeatable)")
    ap.add_argument("--memory-limit")
    ap.add_argument("--work", type=Path, help="keep data here (default: a temp dir)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sizes = args.rows or [100_000]
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        results = [one(n, work, args.memory_limit) for n in sizes]
    for r in results:
        report(r)
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
