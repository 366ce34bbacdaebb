"""bench/apply.py: `recon apply` of a reviewer's files on a database of a full run."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, load_module

bench = load_module(ROOT / "bench" / "apply.py", "recon_bench_apply")


def test_apply_bench_times_both_files_on_copies_of_one_base(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    figures = bench.main(["--work", str(tmp_path), "--rows", "1500", "--decisions", "40",
                          "--manual", "6", "--repeat", "1"])
    # as many as the run left to decide, up to the numbers asked for
    assert 0 < figures["matches"]["decisions"] <= 40 and 0 < figures["manual"]["decisions"] <= 6
    assert all(f["seconds"] > 0 for f in figures.values())
    printed = capsys.readouterr().out
    assert "matches" in printed and "manual" in printed and "decisions/s" in printed
    # each apply ran on a copy: the base keeps no decision, and a second run of the bench
    # reuses it rather than running recon again
    import duckdb

    base = tmp_path / "n1500" / "apply-base.duckdb"
    con = duckdb.connect(str(base), read_only=True)
    assert con.execute("select count(*) from decisions").fetchall() == [(0,)]
    con.close()
    made = base.stat().st_mtime_ns
    bench.main(["--work", str(tmp_path), "--rows", "1500", "--decisions", "4", "--manual", "1",
                "--repeat", "1"])
    assert base.stat().st_mtime_ns == made
