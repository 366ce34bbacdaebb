"""bench/night.py: how many of a night's pairs have one of the night's new lines."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest

from tests.conftest import ROOT, load_module

bench = load_module(ROOT / "bench" / "night.py", "recon_bench_night")
scale = bench.scale


def test_a_pair_is_new_when_either_row_was_stored_after_the_base() -> None:
    pairs = pl.DataFrame({"l": [1, 5, 6, 2], "r": [3, 2, 7, 9]})
    assert bench.with_new(pairs, 4) == 3
    assert bench.with_new(pairs, 9) == 0
    assert bench.with_new(pairs.head(0), 0) == 0


def test_unchanged_compares_the_diagnoses_of_the_rows_open_both_nights() -> None:
    def exceptions(*rows: tuple[str, str, str | None, str, str | None, str | None]) -> pl.DataFrame:
        cols = ["side", "id", "account", "reason", "best_candidate_ids", "best_score"]
        return pl.DataFrame([dict(zip(cols, r, strict=True)) for r in rows],
                            schema=dict.fromkeys(cols, pl.String))

    before = exceptions(
        ("left", "B1", "DE1", "low_similarity", "L7", "0.41"),
        ("left", "B2", None, "no_candidate", None, None),
        ("right", "L3", None, "amount_mismatch", "B9", "0.5"),
        ("right", "L4", None, "ambiguous", "B5;B6", "0.9"),  # matched since
    )
    after = exceptions(
        ("left", "B1", "DE1", "low_similarity", "L7", "0.41"),  # the same
        ("left", "B2", None, "no_candidate", None, None),  # the same, nulls and all
        ("right", "L3", None, "no_candidate", None, None),  # its candidate left
        ("left", "B1", "DE2", "no_candidate", None, None),  # another account's B1: new
        ("right", "L8", None, "no_candidate", None, None),  # new
    )
    assert bench.unchanged(before, after) == (3, 2)


def test_the_table_totals_the_first_pass_the_later_ones_and_the_diagnosis() -> None:
    rows = [
        {"pass": 1, "rule": "fx", "candidates": 100, "pairs": 40, "with_new": 4, "seconds": 0.5},
        {"pass": 1, "rule": "fee", "candidates": 60, "pairs": 10, "with_new": 6, "seconds": 0.25},
        {"pass": 2, "rule": "fx", "candidates": 9, "pairs": 0, "with_new": 0, "seconds": 0.1},
        {"pass": 0, "rule": "diagnosis", "candidates": 80, "pairs": 80, "with_new": 8,
         "seconds": 0.3},
    ]
    lines = bench.table(rows)
    assert lines[1].split() == ["1", "fx", "100", "40", "4", "0.500", "10.0%"]
    assert lines[3].split()[-1] == "0.0%"  # no pair kept: no share
    assert lines[4].split()[:2] == ["diag", "diagnosis"]
    assert lines[-3] == (
        "first pass: 160 candidates, 50 pairs kept, 10 with a new line (20.0%); "
        "0.75 s building and scoring"
    )
    assert lines[-2].startswith("later passes: 9 candidates, 0 pairs kept, 0 with a new line")
    assert lines[-1] == (
        "diagnosis: 80 candidates, 80 pairs kept, 8 with a new line (10.0%); 0.30 s scoring"
    )


def test_the_breakdown_splits_the_night_by_what_it_grows_with() -> None:
    stages = {"parse": 0.5, "load": 0.25, "match_bank": 8.0, "outputs_bank": 5.0,
              "reconciliation_statement": 1.5, "aging": 1.25, "report": 1.0}
    spent = {"pass 1": 4.5, "open items 1": 1.0, "pass 2": 2.0, "open items 2": 0.125,
             "pass 3": 1.0, "open items 3": 0.125, "diagnosis": 2.25}
    assert bench.breakdown(stages, spent, 20.0) == [
        ("parsing and storing the new lines", 0.75),
        ("open items (every pass)", 1.25),
        ("the first pass's rules and suggestions", 3.5),
        ("the later passes' rules and suggestions", 2.75),
        ("the diagnosis", 2.25),
        ("the other bank outputs", 2.75),
        ("statement, aging and report", 3.75),
        ("start-up, commit and the rest", 2.5),
    ]


def test_watching_a_night_counts_its_new_pairs_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The wrappers see the night's first pass and its diagnosis, pairs with a new line
    and pairs without, and the night's outputs are those of a night not watched."""
    import recon.diagnose as diagnose
    import recon.run
    from recon import pipeline
    from recon.run import Inputs, run

    from ..conftest import RULES
    from ..test_generator import gen

    data = gen.generate(tmp_path / "data", seed=5, rows=2000, mode="hard")["bank"].parent
    files = scale.split_night(data, 0.05)
    base = tmp_path / "base.duckdb"
    run(RULES, Inputs(bank=files["bank"][:1], ledger=files["ledger"][:1]),
        db_path=base, out_dir=tmp_path / "base-out", as_of=None)
    with duckdb.connect(str(base), read_only=True) as con:
        newer_than = int(con.sql("select max(txn_id) from txns").fetchall()[0][0])

    def night(folder: Path) -> dict[str, bytes]:
        folder.mkdir()
        shutil.copy2(base, folder / "r.duckdb")
        run(RULES, Inputs(bank=files["bank"], ledger=files["ledger"]),
            db_path=folder / "r.duckdb", out_dir=folder / "out", as_of=None)
        return {n: (folder / "out" / n).read_bytes() for n in ("matches.csv", "exceptions.csv")}

    plain = night(tmp_path / "plain")
    for name in ("_one_pass", "_build_pairs", "prepare_open_tables"):
        monkeypatch.setattr(pipeline, name, getattr(pipeline, name))  # restored after
    monkeypatch.setattr(diagnose, "score_in_chunks", diagnose.score_in_chunks)
    monkeypatch.setattr(recon.run, "diagnose", recon.run.diagnose)
    rows: list[dict[str, Any]] = []
    spent: dict[str, float] = {}
    bench.watch(rows, newer_than, spent)
    assert night(tmp_path / "watched") == plain
    passes = sorted(k for k in spent if k.startswith("pass "))
    assert passes[0] == "pass 1" and set(spent) == {
        *passes, *(f"open items {p.split()[1]}" for p in passes), "diagnosis"}
    for p in passes:
        assert 0 < spent[f"open items {p.split()[1]}"] < spent[p]
    first = [r for r in rows if r["pass"] == 1]
    assert {"amount_date", "fuzzy_name", "fx"} <= {r["rule"] for r in first}
    assert [r["rule"] for r in rows if r["pass"] == 0] == ["diagnosis"]
    for r in rows:
        assert r["with_new"] <= r["pairs"] <= r["candidates"]
    assert sum(r["with_new"] for r in first) > 0
    # the diagnosis pairs the open items the base left among themselves too
    diag = next(r for r in rows if r["pass"] == 0)
    assert 0 < diag["with_new"] < diag["pairs"]
