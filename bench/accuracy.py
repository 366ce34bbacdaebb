"""Accuracy benchmark: seeded data with ground truth -> the real pipeline -> scores.

    python bench/accuracy.py [--seeds 11 12 13] [--rows 2000] [--mode hard] [--json]

For each seed, ``sample_data/generate.py`` writes bank.csv, ledger.csv and truth.csv
into a temporary directory; ``python -m recon.cli run`` reconciles them; :func:`score`
compares out/matches.csv and out/exceptions.csv with the truth:

- a predicted match is correct iff its set of left ids and its set of right ids equal
  those of one truth match group;
- precision = correct ``auto`` matches / all ``auto`` matches;
- recall = truth groups found by a correct ``auto`` or ``suggested`` match / truth groups;
- an expected exception is *kept* when its id is in no match of any status, and its
  reason *agrees* when exceptions.csv gives it the truth's reason code.

A wrong match is charged to the case of every truth row whose ids it touches, so the
per-case "auto bad" column can add up to more than the overall figure.  Without
``--seeds`` three fresh random seeds are drawn (and printed, to re-run them).
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
GENERATOR = REPO / "sample_data" / "generate.py"
DEFAULT_RULES = REPO / "rules" / "default.yaml"

#: Per-case counters, in table order.
COUNTS = ("groups", "exceptions", "auto_correct", "auto_wrong", "suggested_correct",
          "suggested_wrong", "missed", "exceptions_kept", "exceptions_reason_ok")
UNKNOWN_CASE = "(not in truth)"


# --- scoring --------------------------------------------------------------------------
def _ids(cell: str | None) -> frozenset[str]:
    """Ids of a `;`-joined cell; a leading apostrophe (formula neutralising) is dropped."""
    parts = (p.strip().lstrip("'") for p in (cell or "").split(";"))
    return frozenset(p for p in parts if p)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


class _Truth:
    """truth.csv as lookup tables."""

    def __init__(self, path: Path) -> None:
        self.groups: dict[tuple[frozenset[str], frozenset[str]], str] = {}
        self.exceptions: dict[tuple[str, str], tuple[str, str]] = {}  # (side, id) -> case, reason
        self.case_of: dict[tuple[str, str], str] = {}
        self.cases: list[str] = []
        for row in _rows(path):
            case, left, right = row["case"], _ids(row["left_ids"]), _ids(row["right_ids"])
            if case not in self.cases:
                self.cases.append(case)
            keys = [("left", i) for i in left] + [("right", i) for i in right]
            self.case_of.update(dict.fromkeys(keys, case))
            if row["expected"] == "match":
                self.groups[left, right] = case
            else:
                for key in keys:
                    self.exceptions[key] = (case, (row.get("reason") or "").strip())

    def cases_touched(self, left: Iterable[str], right: Iterable[str]) -> list[str]:
        keys = [("left", i) for i in left] + [("right", i) for i in right]
        cases = {self.case_of.get(k, UNKNOWN_CASE) for k in keys}
        return sorted(cases) or [UNKNOWN_CASE]


def _score_matches(truth: _Truth, matches: list[dict[str, str]], per_case: dict[str, Counter[str]]
                   ) -> tuple[Counter[str], set[tuple[str, str]]]:
    """Count correct and wrong predictions; return overall counts and every matched id."""
    overall: Counter[str] = Counter()
    found: set[tuple[frozenset[str], frozenset[str]]] = set()
    matched: set[tuple[str, str]] = set()
    for row in matches:
        left, right = _ids(row.get("left_ids")), _ids(row.get("right_ids"))
        matched.update([("left", i) for i in left] + [("right", i) for i in right])
        status = (row.get("status") or "").strip().lower()
        if status not in ("auto", "suggested"):
            overall[status or "no_status"] += 1
            continue
        case = truth.groups.get((left, right))
        if case is not None:
            overall[f"{status}_correct"] += 1
            per_case[case][f"{status}_correct"] += 1
            found.add((left, right))
        else:
            overall[f"{status}_wrong"] += 1
            for touched in truth.cases_touched(left, right):
                per_case[touched][f"{status}_wrong"] += 1
    for key, case in truth.groups.items():
        if key not in found:
            overall["missed"] += 1
            per_case[case]["missed"] += 1
    return overall, matched


def _score_exceptions(truth: _Truth, exceptions: list[dict[str, str]],
                      matched: set[tuple[str, str]], per_case: dict[str, Counter[str]]
                      ) -> Counter[str]:
    reported = {(r.get("side", "").strip(), r.get("id", "").strip().lstrip("'")):
                (r.get("reason") or "").strip() for r in exceptions}
    overall: Counter[str] = Counter()
    for key, (case, reason) in truth.exceptions.items():
        if key in matched:
            continue
        overall["exceptions_kept"] += 1
        per_case[case]["exceptions_kept"] += 1
        if reason and reported.get(key) == reason:
            overall["exceptions_reason_ok"] += 1
            per_case[case]["exceptions_reason_ok"] += 1
    every_id = set(truth.case_of)
    overall["lost_ids"] = len(every_id - matched - set(reported))
    overall["unknown_ids"] = len((matched | set(reported)) - every_id)
    return overall


def score(truth: Path, matches: Path, exceptions: Path) -> dict[str, Any]:
    """Score the pipeline's matches.csv and exceptions.csv against truth.csv.

    Returns ``{"overall": {...}, "cases": [{"case": ..., counts..., "precision", "recall"}]}``
    where ratios are ``None`` when their denominator is zero.
    """
    t = _Truth(Path(truth))
    per_case: dict[str, Counter[str]] = defaultdict(Counter)
    for case in t.groups.values():
        per_case[case]["groups"] += 1
    for case, _ in t.exceptions.values():
        per_case[case]["exceptions"] += 1
    overall, matched = _score_matches(t, _rows(Path(matches)), per_case)
    overall.update(_score_exceptions(t, _rows(Path(exceptions)), matched, per_case))
    overall["groups"] = len(t.groups)
    overall["exceptions"] = len(t.exceptions)
    order = t.cases + sorted(set(per_case) - set(t.cases))
    return _with_ratios({"overall": dict(overall),
                         "cases": [{"case": c, **per_case[c]} for c in order]})


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _finish(counts: dict[str, Any]) -> dict[str, Any]:
    """Counts in table order (missing ones 0), other counts after, then the ratios."""
    out: dict[str, Any] = {"case": counts["case"]} if "case" in counts else {}
    out.update({key: counts.get(key, 0) for key in COUNTS})
    out.update({k: v for k, v in counts.items() if k not in out})
    out["precision"] = _ratio(out["auto_correct"], out["auto_correct"] + out["auto_wrong"])
    out["recall"] = _ratio(out["auto_correct"] + out["suggested_correct"], out["groups"])
    out["auto_recall"] = _ratio(out["auto_correct"], out["groups"])
    out["exceptions_kept_rate"] = _ratio(out["exceptions_kept"], out["exceptions"])
    return out


def _with_ratios(result: dict[str, Any]) -> dict[str, Any]:
    return {"overall": _finish(result["overall"]),
            "cases": [_finish(row) for row in result["cases"]]}


def merge(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Add up the counts of several scores (one per seed) and recompute the ratios."""
    overall: Counter[str] = Counter()
    cases: dict[str, Counter[str]] = {}
    for result in results:
        overall.update({k: v for k, v in result["overall"].items()
                        if isinstance(v, int) and not isinstance(v, bool)})
        for row in result["cases"]:
            counts = cases.setdefault(row["case"], Counter())
            counts.update({k: v for k, v in row.items()
                           if isinstance(v, int) and not isinstance(v, bool)})
    return _with_ratios({"overall": dict(overall),
                         "cases": [{"case": c, **v} for c, v in cases.items()]})


# --- report ---------------------------------------------------------------------------
def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def format_table(result: dict[str, Any]) -> str:
    """The per-case table and the overall figures as text."""
    head = ("case", "groups", "auto ok", "auto bad", "sugg ok", "sugg bad", "missed",
            "precision", "recall", "exc kept")
    lines = [head]
    for row in [*result["cases"], {"case": "TOTAL", **result["overall"]}]:
        kept = f"{row['exceptions_kept']}/{row['exceptions']}" if row["exceptions"] else "-"
        lines.append((row["case"], str(row["groups"]), str(row["auto_correct"]),
                      str(row["auto_wrong"]), str(row["suggested_correct"]),
                      str(row["suggested_wrong"]), str(row["missed"]),
                      _pct(row["precision"]), _pct(row["recall"]), kept))
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    text = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                      for i, (c, w) in enumerate(zip(line, widths, strict=True)))
            for line in lines]
    text.insert(1, "-" * len(text[0]))
    text.insert(len(text) - 1, "-" * len(text[0]))
    o = result["overall"]
    text.append(f"auto precision {_pct(o['precision'])}, recall (auto+suggested) "
                f"{_pct(o['recall'])}, auto recall {_pct(o['auto_recall'])}, "
                f"exceptions kept {_pct(o['exceptions_kept_rate'])}, exception reasons agreeing "
                f"{o['exceptions_reason_ok']}/{o['exceptions']} (informational), rows lost "
                f"{o['lost_ids']}, unknown ids {o['unknown_ids']}")
    return "\n".join(text)


# --- running the pipeline -------------------------------------------------------------
def load_generator() -> ModuleType:
    """Import sample_data/generate.py by path (sample_data is not a package)."""
    spec = importlib.util.spec_from_file_location("recon_sample_generate", GENERATOR)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {GENERATOR}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    spec.loader.exec_module(module)
    return module


def run_pipeline(data: dict[str, Path], work: Path, rules: Path, timeout: float) -> float:
    """Run `recon run` on the generated files; return seconds; raise with stderr on failure."""
    cmd = [sys.executable, "-m", "recon.cli", "run", "--rules", str(rules),
           "--bank", str(data["bank"]), "--ledger", str(data["ledger"]),
           "--db", str(work / "recon.duckdb"), "--out", str(work / "out")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"recon run exited {proc.returncode}: {' '.join(cmd)}\n{tail}")
    return time.perf_counter() - started


def bench_seed(seed: int, args: argparse.Namespace, root: Path) -> dict[str, Any]:
    """Generate, reconcile and score one seed."""
    work = root / f"seed-{seed}"
    started = time.perf_counter()
    data = load_generator().generate(work / "data", seed=seed, rows=args.rows, mode=args.mode)
    generated = time.perf_counter() - started
    engine = run_pipeline(data, work, args.rules, args.timeout)
    out = work / "out"
    result = score(data["truth"], out / "matches.csv", out / "exceptions.csv")
    result.update(seed=seed, rows=args.rows, mode=args.mode,
                  generate_seconds=round(generated, 3), engine_seconds=round(engine, 3))
    return result


def _fresh_seeds(n: int = 3) -> list[int]:
    return random.SystemRandom().sample(range(1_000, 1_000_000), n)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", help="default: 3 fresh random seeds")
    parser.add_argument("--rows", type=int, default=2000, help="bank lines per seed")
    parser.add_argument("--mode", choices=("easy", "hard"), default="hard")
    parser.add_argument("--rules", type=Path, default=DEFAULT_RULES)
    parser.add_argument("--json", action="store_true",
                        help="print JSON on stdout (the table goes to stderr)")
    parser.add_argument("--keep", type=Path, help="keep data and outputs in this directory")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per engine run")
    args = parser.parse_args(argv)
    seeds = args.seeds or _fresh_seeds()
    say = (lambda text: print(text, file=sys.stderr)) if args.json else print
    say(f"seeds: {' '.join(map(str, seeds))}  rows: {args.rows}  mode: {args.mode}")
    root = args.keep or Path(tempfile.mkdtemp(prefix="recon-bench-"))
    try:
        runs = []
        for seed in seeds:
            run = bench_seed(seed, args, root)
            o = run["overall"]
            say(f"seed {seed}: precision {_pct(o['precision'])} recall {_pct(o['recall'])} "
                f"(generate {run['generate_seconds']:.1f}s, engine {run['engine_seconds']:.1f}s)")
            runs.append(run)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"accuracy bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)
    total = merge(runs)
    say(format_table(total))
    if args.json:
        print(json.dumps({"seeds": seeds, "rows": args.rows, "mode": args.mode,
                          "total": total, "runs": runs}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
