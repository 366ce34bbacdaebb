"""bench/passes.py: how many of a later pass's pairs are decided again, and how."""

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


def test_plan_counts_reads_the_plan_of_a_pass() -> None:
    from recon.pipeline import Plan

    graph = _pairs((1, 10), (1, 11), (2, 11), (3, 13), (4, 13), (4, 14), (5, 20), (5, 21))
    none = pl.Series([], dtype=pl.Int64)
    plan = Plan(
        exact=_pairs((5, 20), (5, 21)),
        near=_pairs((1, 11), (2, 11), (1, 10)).with_columns(redo=pl.Series([True, True, False])),
        changed_l=pl.Series([2], dtype=pl.Int64),
        changed_r=none,
        big=pl.Series([1, 2, 3, 4], dtype=pl.Int64),
    )
    assert bench.plan_counts(graph, plan) == {
        "graph": 8, "exact": 2, "big": 6, "near": 3, "redo": 2
    }


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
    for name in ("_one_pass", "run_rule", "_with_carried"):
        monkeypatch.setattr(pipeline, name, getattr(pipeline, name))  # restored after
    monkeypatch.setattr(pipeline.Plan, "decide", pipeline.Plan.decide)
    rows: list[dict[str, Any]] = []
    bench.watch(rows)
    assert outputs(tmp_path / "watched") == plain
    assert rows and all(r["pass"] > 1 for r in rows)
    assert {"fuzzy_name", "fx"} <= {r["rule"] for r in rows}
    for r in rows:
        assert r["redo"] <= r["near"] <= r["big"] <= r["graph"] and r["exact"] <= r["graph"]
