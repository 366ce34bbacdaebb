"""bench/memory.py: a run's memory per rule and pass, the process beside DuckDB's share."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tests.conftest import ROOT, load_module

bench = load_module(ROOT / "bench" / "memory.py", "recon_bench_memory")

GIB = 2**30


@dataclass
class _Carry:
    pairs: pl.DataFrame
    levels: pl.DataFrame | None = None
    seen: int = 0
    more: dict[str, Any] = field(default_factory=dict)


def test_frame_bytes_sums_the_frames_inside_dataclasses_dicts_and_lists() -> None:
    a = pl.DataFrame({"l": list(range(1000)), "r": list(range(1000))})
    b = pl.DataFrame({"x": ["some text"] * 500})
    s = pl.Series("s", list(range(300)))
    memo = {0: _Carry(a), 1: _Carry(a, b, more={"big": [s, b, 7]}), 2: "not a frame"}
    want = 2 * a.estimated_size() + 2 * b.estimated_size() + s.estimated_size()
    assert bench.frame_bytes(memo) == want
    assert bench.frame_bytes(None) == 0
    # four levels down, no further: the frames a run carries are two or three levels in
    deep: Any = b
    for _ in range(5):
        deep = [deep]
    assert bench.frame_bytes(deep) == 0
    assert bench.frame_bytes([[[[b]]]]) == b.estimated_size()


def test_carried_parts_name_each_rule_and_field_holding_frames() -> None:
    a = pl.DataFrame({"l": list(range(1000)), "r": list(range(1000))})
    b = pl.DataFrame({"x": ["some text"] * 500})
    memo = {0: _Carry(a), 3: _Carry(a, b, more={"big": [b]}), 4: None}
    parts = bench.carried_parts(memo, {0: "amount_date", 3: "fx"})
    assert parts == {"amount_date.pairs": a.estimated_size(), "fx.pairs": a.estimated_size(),
                     "fx.levels": b.estimated_size(), "fx.more": b.estimated_size()}
    assert sum(parts.values()) == bench.frame_bytes(memo)
    # a rule not named yet is shown by its index
    assert set(bench.carried_parts({7: _Carry(a)}, {})) == {"7.pairs"}
    assert bench.carried_parts(None, {}) == {}


def test_largest_carried_lists_the_frames_where_the_peak_was() -> None:
    rows = [
        {"pass": 1, "rule": "fx", "peak": GIB, "carried": GIB // 2,
         "parts": {"fx.pairs": GIB // 2}},
        {"pass": 2, "rule": "amount_date", "peak": 2 * GIB, "carried": 3 * GIB // 4,
         "parts": {"fx.pairs": GIB // 4, "group_one_to_many.held": GIB // 2,
                   "fx.levels": GIB // 4}},
    ]
    assert bench.largest_carried(rows, top=2) == [
        "the largest frames carried at the end of pass 2 amount_date (MiB, of 768.0):",
        "   512.0  group_one_to_many.held",
        "   256.0  fx.levels",
    ]
    assert bench.largest_carried([]) == []


def test_the_table_gives_the_rest_and_marks_the_highest_peak() -> None:
    def row(p: int, rule: str, peak: float, end: float, duckdb: float, carried: float) -> dict[str, Any]:
        return {"pass": p, "rule": rule, "start": GIB, "peak": int(peak * GIB),
                "end": int(end * GIB), "duckdb": int(duckdb * GIB), "tag": "IN_MEMORY_TABLE",
                "tag_bytes": int(duckdb * GIB * 0.75), "carried": int(carried * GIB)}

    lines = bench.table([row(1, "exact_reference", 2.0, 1.75, 0.75, 0.25),
                         row(2, "fx", 1.5, 1.5, 1.0, 0.125)])
    assert lines[0].split()[:8] == ["pass", "rule", "start", "peak", "end", "duckdb", "carried",
                                    "rest"]
    assert lines[1].split() == ["1", "exact_reference", "1.00", "2.00", "1.75", "0.75", "0.25",
                                "0.75", "IN_MEMORY_TABLE", "0.56", "<-", "the", "highest"]
    assert lines[2].split()[-3:] == ["0.38", "IN_MEMORY_TABLE", "0.75"]
    assert bench.table([]) == lines[:1]


def test_watching_a_run_reads_every_rule_and_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every rule of the first pass gives a row; DuckDB's memory and the carried frames
    are seen; the outputs are those of a run not watched."""
    from recon import pipeline
    from recon.run import Inputs, run

    from ..conftest import RULES
    from ..test_generator import gen

    data = gen.generate(tmp_path / "data", seed=5, rows=2000, mode="hard")["bank"].parent
    inputs = Inputs(bank=[data / "bank.csv"], ledger=[data / "ledger.csv"])

    def once(folder: Path) -> dict[str, bytes]:
        run(RULES, inputs, db_path=folder / "r.duckdb", out_dir=folder / "out", as_of=None)
        return {n: (folder / "out" / n).read_bytes() for n in ("matches.csv", "exceptions.csv")}

    plain = once(tmp_path / "plain")
    for name in ("_one_pass", "run_rule"):
        monkeypatch.setattr(pipeline, name, getattr(pipeline, name))  # restored after
    rows: list[dict[str, Any]] = []
    sampler = bench.scale.Sampler()
    bench.watch(rows, sampler)
    try:
        assert once(tmp_path / "watched") == plain
    finally:
        sampler.stop()
    first = [r for r in rows if r["pass"] == 1]
    import yaml

    names = [r["name"] for r in yaml.safe_load(Path(RULES).read_text())["rules"]]
    assert [r["rule"] for r in first] == names
    for r in rows:
        assert 0 < r["start"] <= r["peak"] and 0 < r["end"] <= r["peak"]
        assert 0 < r["tag_bytes"] <= r["duckdb"] < r["end"]
    # the incremental rules carry their pairs to the next pass, named by rule and field
    assert max(r["carried"] for r in first) > 0
    for r in rows:
        assert sum(r["parts"].values()) == r["carried"]
    assert any(name.startswith("group_one_to_many.") for name in first[-1]["parts"])
