"""bench/assign.py: its generated pairs look like a rule's, and its digest tells results apart."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.conftest import ROOT, load_module

bench = load_module(ROOT / "bench" / "assign.py", "recon_bench_assign")


def test_generated_pairs_have_the_asked_size_a_true_partner_and_twins() -> None:
    pairs = bench.generated(30_000, seed=3)
    assert 0.8 * 30_000 <= pairs.height <= 1.2 * 30_000
    assert pairs.equals(bench.generated(30_000, seed=3))  # seeded
    # each left row's first candidate is its true partner, the best it has (ties aside)
    best = pairs.group_by("l", maintain_order=True).agg(
        pl.col("score").first().alias("first"), pl.col("score").max().alias("max")
    )
    assert (best["first"] >= 0.85).all() and (best["first"] == best["max"]).all()
    # twins: right rows sharing the content key of another right row
    keys = pairs.select("r", "r_key").unique()
    assert keys.filter(pl.col("r_key") != pl.col("r") - 10_000_000).height > 0
    # some rows have a rival within the margin of their best candidate
    second = pairs.group_by("l").agg(pl.col("score").sort(descending=True).head(2))
    close = second.filter(pl.col("score").list.len() == 2).filter(
        pl.col("score").list.first() - pl.col("score").list.last() < 0.05
    )
    assert close.height > 0


def test_the_digest_is_the_same_for_the_same_pairs_saved_or_generated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bench.main(["--pairs", "3000", "--repeat", "1"])
    generated = capsys.readouterr().out
    saved = tmp_path / "pairs.parquet"
    bench.generated(3000).write_parquet(saved)
    bench.main(["--input", str(saved), "--repeat", "2"])
    from_file = capsys.readouterr().out

    def result(out: str) -> str:
        return out.split("result ")[1].split()[0]

    assert result(generated) == result(from_file)
    assert "withheld" in from_file and "peak RSS" in from_file
    assert result(generated) != result_of(bench.generated(3000, seed=8))


def result_of(pairs: pl.DataFrame) -> str:
    _, got = bench.timed(pairs, 0.05, 1)
    return str(bench.digest(got))
