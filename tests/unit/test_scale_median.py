"""bench/scale.py --repeat: every figure it prints is the median of the runs."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.conftest import ROOT, load_module

scale = load_module(ROOT / "bench" / "scale.py", "recon_bench_scale")


def _run(wall: float, parse: float, rule: float, night: float, log: str) -> dict[str, Any]:
    counts = {"left_total": 10, "right_total": 12}
    return {
        "rows": 10,
        "wall_s": wall,
        "peak_rss": int(wall * 100),
        "floor_s": wall / 10,
        "floor_rss": 5,
        "stages": {"parse": parse, "match_bank": wall - parse},
        "rules": [{"name": "exact", "seconds": rule, "matches": 3, "candidates": 4}],
        "counts": counts,
        "log": [(log, 1)],
        "steps": {"open items": parse * 2, "suggestions": rule / 10},
        "new_rows": 22,
        "night": {
            "share": 0.01,
            "wall_s": night,
            "peak_rss": 7,
            "new_rows": 1,
            "stages": {"parse": parse / 10},
            "counts": counts,
            "log": [(log, 2)],
            "steps": {"open items": parse, "suggestions": 0.5},
        },
        "rerun": {
            "wall_s": night / 2,
            "peak_rss": 6,
            "new_rows": 0,
            "stages": {"parse": 0.0, "match_bank": night / 4},
            "counts": counts,
            "log": [(log, 3)],
            "steps": {"open items": parse / 2, "suggestions": 0.25},
        },
    }


def test_median_run_takes_each_figure_median_and_keeps_the_spread(
    capsys: pytest.CaptureFixture[str],
) -> None:
    runs = [
        _run(90.0, 3.0, 7.0, 30.0, "a"),
        _run(75.0, 4.0, 9.0, 40.0, "b"),
        _run(80.0, 3.5, 6.0, 20.0, "c"),
    ]
    m = scale.median_run(runs)
    assert m["wall_s"] == 80.0 and m["wall_range"] == [75.0, 90.0]
    # each figure on its own, not the whole run nearest the median
    assert m["stages"] == {"parse": 3.5, "match_bank": 80.0 - 3.5}
    assert m["rules"][0]["seconds"] == 7.0 and m["rules"][0]["matches"] == 3
    assert m["peak_rss"] == 8000 and m["floor_s"] == 8.0
    assert m["night"]["wall_s"] == 30.0 and m["night"]["wall_range"] == [20.0, 40.0]
    assert m["night"]["stages"] == {"parse": 0.35}
    assert m["steps"] == {"open items": 7.0, "suggestions": 0.7}
    assert m["night"]["steps"] == {"open items": 3.5, "suggestions": 0.5}
    # the rerun (nothing new) is taken the same way, apart from the night
    assert m["rerun"]["wall_s"] == 15.0 and m["rerun"]["wall_range"] == [10.0, 20.0]
    assert m["rerun"]["stages"] == {"parse": 0.0, "match_bank": 7.5}
    assert m["rerun"]["steps"] == {"open items": 1.75, "suggestions": 0.25}
    assert m["rerun"]["log"] == [("a", 3)]
    # the per-stage peaks are read from the run nearest the median wall
    assert m["log"] == [("c", 1)] and m["night"]["log"] == [("a", 2)]
    # one run is reported as it is
    assert scale.median_run(runs[:1]) == runs[0]
    scale.report(m | {"generate_s": 1.0, "runs": runs})
    out = capsys.readouterr().out
    assert "80.0 s wall, median of 3 (75.0-90.0 s)" in out
    assert "30.0 s wall, median of 3 (20.0-40.0 s) = 37.5% of the full run" in out
    assert (
        "the same night again, nothing new: 15.0 s wall, median of 3 (10.0-20.0 s) "
        "= 18.8% of the full run" in out
    )
    assert re.search(r"^open items \(all passes\) +7\.00 ", out, re.M)
    assert re.search(r"^suggestions \(all passes\) +0\.70 ", out, re.M)
    assert re.search(r"^suggestions \(all passes\) +0\.50 ", out, re.M)


def test_steps_sum_every_pass_of_the_pipelines_own_steps() -> None:
    log = [
        ("recon: parsed 10 rows (0.50 s)", 1),
        ("recon: open items (1.25 s)", 1),
        ("recon: rule exact: 3 matches (2.00 s)", 1),
        ("recon: suggestions: 1 matches (0.25 s)", 1),
        ("recon: open items (pass 2) (0.50 s)", 1),
        ("recon: rule exact (pass 2): 0 matches (0.10 s)", 1),
        ("recon: suggestions (pass 2): 0 matches (0.05 s)", 1),
    ]
    assert scale.steps(log) == {"open items": 1.75, "suggestions": 0.3}
    assert scale.steps([]) == {"open items": 0.0, "suggestions": 0.0}


def test_traced_gives_every_line_the_rss_between_it_and_the_line_before() -> None:
    """Two lines written together (recon's "parsed" and "stored") each read the RSS of
    the process then, not 0 for want of a sample between them; the peak is the run's."""
    import sys

    child = (
        "import sys, time\n"
        "b = bytearray(300 * 2**20)\n"  # zero-filled: touched, resident
        "time.sleep(0.3)\n"
        "print('one', file=sys.stderr, flush=True)\n"
        "print('two', file=sys.stderr, flush=True)\n"
        "time.sleep(0.2)\n"
        "del b\n"
        "print('three', file=sys.stderr, flush=True)\n"
    )
    code, wall, peak, lines = scale.traced([sys.executable, "-c", child])
    assert code == 0 and wall > 0.5
    assert [line for line, _ in lines] == ["one", "two", "three"]
    mib = {line: rss / 2**20 for line, rss in lines}
    assert mib["one"] > 300 and mib["two"] > 300
    # the peak since "two" holds the RSS at "two", the array still there
    assert mib["three"] > 300
    assert peak / 2**20 >= mib["one"]


def test_memory_limits_give_every_n_its_own_or_the_common_limit() -> None:
    sizes = [1_000_000, 5_000_000]
    assert scale.memory_limits(None, sizes) == {1_000_000: None, 5_000_000: None}
    assert scale.memory_limits(["4GB"], sizes) == {1_000_000: "4GB", 5_000_000: "4GB"}
    # N=LIMIT wins over the common limit, whichever comes first
    assert scale.memory_limits(["5_000_000=4GB", "2GB"], sizes) == {
        1_000_000: "2GB",
        5_000_000: "4GB",
    }
    assert scale.memory_limits(["5000000=4GB"], sizes) == {1_000_000: None, 5_000_000: "4GB"}
    with pytest.raises(SystemExit, match="no --rows gives"):
        scale.memory_limits(["2000000=4GB"], sizes)
    for bad in ("five=4GB", "5000000=", ""):
        with pytest.raises(SystemExit, match="N=LIMIT"):
            scale.memory_limits([bad], sizes)


def test_growth_compares_each_n_with_the_one_below_it() -> None:
    def run(rows: int, wall: float, floor: float, rss: int) -> dict[str, Any]:
        return {"rows": rows, "wall_s": wall, "floor_s": floor, "peak_rss": rss}

    lines = scale.growth(
        [run(5_000_000, 303.8, 6.06, 6_700), run(100_000, 5.0, 0.2, 500),
         run(1_000_000, 50.3, 1.65, 1_950)]
    )
    assert lines == [
        "N = 1,000,000 against 100,000: 10.0x the lines, 10.06x the wall time (50.3 / 5.0 s), "
        "8.25x the floor, 3.90x the peak RSS",
        "N = 5,000,000 against 1,000,000: 5.0x the lines, 6.04x the wall time (303.8 / 50.3 s), "
        "3.67x the floor, 3.44x the peak RSS",
    ]
    assert scale.growth([run(100_000, 5.0, 0.2, 500)]) == []


def test_argument_reads_a_parameter_by_the_signature() -> None:
    def one_pass(con: Any, rules: Any, pass_no: int = 1, memo: Any = None) -> None:
        pass

    assert scale.argument(one_pass, "pass_no", ("c", "r", 3), {}) == 3
    assert scale.argument(one_pass, "pass_no", ("c", "r"), {"pass_no": 4}) == 4
    assert scale.argument(one_pass, "pass_no", ("c", "r"), {}) == 1
    assert scale.argument(one_pass, "memo", ("c",), {"rules": 2, "memo": {}}) == {}


def test_repeats_run_in_rounds_and_growth_gives_each_rounds_ratio(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    order: list[tuple[int, str | None]] = []
    walls = {1_000_000: iter([40.0, 50.0, 41.0]), 5_000_000: iter([280.0, 285.0, 300.0])}

    def run(rows: int, data: Any, limit: str | None, night: float | None) -> dict[str, Any]:
        order.append((rows, limit))
        return _run(next(walls[rows]), 3.0, 7.0, 30.0, "a") | {"rows": rows}

    monkeypatch.setattr(scale, "generated", lambda rows, work: tmp_path / f"n{rows}")
    results = scale.in_rounds([1_000_000, 5_000_000], tmp_path,
                              {1_000_000: None, 5_000_000: "4GB"}, None, 3, run)
    # every N once per round, in the order given: the pair of a round is minutes apart
    assert order == [(1_000_000, None), (5_000_000, "4GB")] * 3
    assert [r["wall_s"] for r in results] == [41.0, 285.0]
    assert [[x["wall_s"] for x in r["runs"]] for r in results] == [[40.0, 50.0, 41.0],
                                                                  [280.0, 285.0, 300.0]]
    assert scale.growth(results) == [
        "N = 5,000,000 against 1,000,000: 5.0x the lines, 6.95x the wall time (285.0 / 41.0 s), "
        "6.95x the floor, 6.95x the peak RSS; round by round 7.00x, 5.70x, 7.32x "
        "(median 7.00x)"
    ]
