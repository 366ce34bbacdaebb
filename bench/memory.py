"""Where a run's memory goes: per rule and pass, the process beside DuckDB's share.

bench/scale.py prints a run's peak RSS per stage; this says what holds it.  It runs
this checkout's `recon run` on bench/scale.py's N x N data in this process, samples the
process's RSS every 20 ms, and at the end of each rule reads DuckDB's own account of
its memory (`duckdb_memory()`, which its memory limit bounds) and sums the polars
frames the passes carry from one to the next.  Per rule and pass it prints:

- the RSS when the rule began, its peak while the rule ran, and at its end;
- DuckDB's memory at its end, and its largest part (temp tables are IN_MEMORY_TABLE);
- the frames carried between passes (each rule's kept pairs, the group rules' blocks),
  and at the end, the largest of them by rule and field where the peak was;
- the rest of the RSS at its end: Python, the libraries, frames not yet freed and
  what the allocators keep.

    python bench/memory.py --work /tmp/bench/w1m --rows 1000000

A rule whose peak rises far above its start holds a large frame while it runs: that
is beside DuckDB's limit, which bounds DuckDB's part only (the README's "Memory stays
bounded").  The run's outputs are those of a run not watched.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import resource
import shutil
import sys
from pathlib import Path
from typing import Any

import polars as pl

ROOT = Path(__file__).resolve().parent.parent
# this checkout's recon, not the installed one
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import scale  # noqa: E402  (bench/scale.py, beside this file)

GIB = 2**30
MIB = 2**20


def frame_bytes(obj: Any, depth: int = 0) -> int:
    """The bytes of the polars frames and series in `obj`: itself, or inside its
    dataclass fields, dict values and list or tuple items (four levels down)."""
    if isinstance(obj, pl.DataFrame | pl.Series):
        return int(obj.estimated_size())
    if depth >= 4:
        return 0
    if isinstance(obj, dict):
        return sum(frame_bytes(v, depth + 1) for v in obj.values())
    if isinstance(obj, list | tuple):
        return sum(frame_bytes(v, depth + 1) for v in obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return sum(frame_bytes(getattr(obj, f.name), depth + 1) for f in dataclasses.fields(obj))
    return 0


def carried_parts(memo: dict[int, Any] | None, names: dict[int, str]) -> dict[str, int]:
    """The bytes of the frames `memo` (the run's carries, by rule index) holds, per rule
    and field ("group_one_to_many.held"), those holding any."""
    parts = {}
    for index, carry in (memo or {}).items():
        if not dataclasses.is_dataclass(carry) or isinstance(carry, type):
            continue
        for f in dataclasses.fields(carry):
            size = frame_bytes(getattr(carry, f.name))
            if size:
                parts[f"{names.get(index, index)}.{f.name}"] = size
    return parts


def largest_carried(rows: list[dict[str, Any]], top: int = 6) -> list[str]:
    """The `top` largest carried frames at the end of the rule with the highest peak: what
    to move or free first for a lower peak."""
    if not rows:
        return []
    high = max(rows, key=lambda r: r["peak"])
    parts = sorted(high["parts"].items(), key=lambda p: (-p[1], p[0]))[:top]
    lines = [f"the largest frames carried at the end of pass {high['pass']} {high['rule']} "
             f"(MiB, of {high['carried'] / MIB:.1f}):"]
    lines += [f"{size / MIB:>8.1f}  {name}" for name, size in parts]
    return lines


def duckdb_parts(con: Any) -> dict[str, int]:
    """DuckDB's memory by tag (those in use), as `duckdb_memory()` gives it."""
    rows = con.sql(
        "select tag, memory_usage_bytes from duckdb_memory() where memory_usage_bytes > 0"
    ).fetchall()
    return {str(tag): int(used) for tag, used in rows}


def watch(rows: list[dict[str, Any]], sampler: scale.Sampler) -> None:
    """Wrap the pipeline's rules so that each appends a row to `rows`: pass, rule, RSS
    at its start, peak and end (from `sampler`, of this process), DuckDB's memory at its
    end (in all and its largest tag), and the frames the passes carry (the run's memo)
    at its end."""
    import recon.pipeline as pipeline

    now: dict[str, Any] = {}
    scale.track_pass(now)
    run_rule = pipeline.run_rule
    names: dict[int, str] = {}

    @functools.wraps(run_rule)
    def run_rule_(con: Any, rule: Any, index: int, *a: Any, **k: Any) -> Any:
        names[index] = rule.name
        start = sampler.reset()
        stats = run_rule(con, rule, index, *a, **k)
        peak, end = sampler.lap()
        memo = scale.argument(run_rule, "memo", (con, rule, index, *a), k)
        parts = duckdb_parts(con)
        tag, most = max(parts.items(), key=lambda p: p[1], default=("-", 0))
        carried = carried_parts(memo, names)
        rows.append({"pass": now["pass"], "rule": rule.name, "start": start, "peak": peak,
                     "end": end, "duckdb": sum(parts.values()), "tag": tag, "tag_bytes": most,
                     "carried": sum(carried.values()), "parts": carried})
        return stats

    pipeline.run_rule = run_rule_  # type: ignore[assignment]


def table(rows: list[dict[str, Any]]) -> list[str]:
    """The rows as lines (GiB), the rule with the highest peak marked."""
    top = max((r["peak"] for r in rows), default=0)
    lines = [f"{'pass':>4} {'rule':<20}{'start':>7}{'peak':>7}{'end':>7}{'duckdb':>8}"
             f"{'carried':>9}{'rest':>7}  largest DuckDB part"]
    for r in rows:
        rest = r["end"] - r["duckdb"] - r["carried"]
        mark = " <- the highest" if r["peak"] == top else ""
        lines.append(
            f"{r['pass']:>4} {r['rule']:<20}{r['start'] / GIB:>7.2f}{r['peak'] / GIB:>7.2f}"
            f"{r['end'] / GIB:>7.2f}{r['duckdb'] / GIB:>8.2f}{r['carried'] / GIB:>9.2f}"
            f"{rest / GIB:>7.2f}  {r['tag']} {r['tag_bytes'] / GIB:.2f}{mark}"
        )
    return lines


def main() -> None:
    args = scale.bench_args(__doc__)
    data = scale.generated(args.rows, args.work)
    os.environ.update(scale.run_env(data))
    slot = args.work / f"memory-n{args.rows}"
    shutil.rmtree(slot, ignore_errors=True)
    slot.mkdir(parents=True)
    cmd = scale.recon_cmd(data, [data / "bank.csv"], [data / "ledger.csv"], args.memory_limit,
                          db=slot / "recon.duckdb", out=slot / "out")
    sampler = scale.Sampler()
    sampler.reset()
    rows: list[dict[str, Any]] = []
    watch(rows, sampler)
    wall = scale.run_here(cmd, "--as-of", args.as_of)
    # ru_maxrss is in KiB on Linux
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(f"\n== a full run at N = {args.rows:,} in this process: {wall:.1f} s, "
          f"peak RSS {peak / GIB:.2f} GiB (GiB below; rest = end - duckdb - carried)")
    print("\n".join(table(rows)))
    print("\n".join(largest_carried(rows)))


if __name__ == "__main__":
    main()
