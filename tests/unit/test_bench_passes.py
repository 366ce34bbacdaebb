"""bench/passes.py: which rows' pairs changed between two passes, and how many of a pass's
pairs lie in big components near them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.conftest import ROOT, load_module

bench = load_module(ROOT / "bench" / "passes.py", "recon_bench_passes")


def _pairs(*pairs: tuple[int, int]) -> pl.DataFrame:
    return pl.DataFrame({"l": [p[0] for p in pairs], "r": [p[1] for p in pairs]},
                        schema={"l": pl.Int64, "r": pl.Int64})


def test_changed_rows_are_those_that_lost_a_pair_had_theirs_rebuilt_or_gained_one() -> None:
    old = _pairs((1, 10), (2, 11), (2, 12), (3, 12), (5, 20), (5, 21), (7, 22))
    right_open = pl.Series([r != 12 for r in old["r"]])  # ledger row 12 was matched
    left_open = pl.Series([l != 7 for l in old["l"]])  # bank row 7 too
    left, right = bench.changed_rows(
        old, _pairs((6, 30)), pl.Series([5], dtype=pl.Int64), left_open, right_open
    )
    # 2 and 3 lost their pair with 12, 5 had its pairs built again (and so its right
    # rows 20 and 21 may score otherwise), 6 and 30 are a new pair, 22 lost its pair
    assert left.to_list() == [2, 3, 5, 6]
    assert right.to_list() == [20, 21, 22, 30]


def test_near_changes_counts_only_big_components_and_the_pairs_of_changed_rows() -> None:
    # two components of two rows a side (big with max_side 1) and a star (one left row)
    work = _pairs((1, 10), (1, 11), (2, 11), (3, 13), (4, 13), (4, 14), (5, 20), (5, 21))
    counts = bench.near_changes(
        work, pl.Series([2, 3, 5], dtype=pl.Int64), pl.Series([], dtype=pl.Int64), max_side=1
    )
    assert counts == {
        "work": 8,
        "comps": 3,
        "big": 6,  # the star is solved as a star, whatever its size
        "near": 2,  # (2, 11) and (3, 13)
        "context": 4,  # and the other pairs of 11 and 13: (1, 11), (4, 13)
    }
    # a component no bigger than max_side a side is solved exactly: never counted
    assert bench.near_changes(work, pl.Series([2], dtype=pl.Int64),
                              pl.Series([], dtype=pl.Int64))["big"] == 0


def test_watching_a_run_reports_its_later_passes_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The benchmark's wrappers see every later pass's assignment of the rules that carry
    pairs, and the run's outputs are those of a run not watched."""
    from recon import pipeline
    from recon.run import Inputs, run

    from ..conftest import RULES
    from ..test_generator import gen

    data = gen.generate(tmp_path / "data", seed=5, rows=600, mode="hard")

    def outputs(folder: Path) -> dict[str, bytes]:
        run(RULES, Inputs(bank=[data["bank"]], ledger=[data["ledger"]]),
            db_path=folder / "r.duckdb", out_dir=folder / "out", as_of=None)
        return {n: (folder / "out" / n).read_bytes() for n in ("matches.csv", "exceptions.csv")}

    plain = outputs(tmp_path / "plain")
    for name in ("_one_pass", "run_rule", "_with_carried", "assign"):
        monkeypatch.setattr(pipeline, name, getattr(pipeline, name))  # restored after
    rows: list[dict[str, Any]] = []
    bench.watch(rows)
    assert outputs(tmp_path / "watched") == plain
    assert rows and all(r["pass"] > 1 for r in rows)
    assert {"fuzzy_name", "fx"} <= {r["rule"] for r in rows}
    for r in rows:
        assert r["near"] <= r["big"] <= r["work"] and r["near"] <= r["context"] <= r["big"]
