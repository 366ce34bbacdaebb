"""bench/scale.py split_night: the night's files are cut once per data and share, so a
night handed the base files again finds them as the run before left them."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT, load_module

scale = load_module(ROOT / "bench" / "scale.py", "recon_bench_scale_split")


def _write(data: Path, side: str, ids: range) -> None:
    rows = [f"{side[0].upper()}{i},2026-03-{1 + i % 28:02d},{i}.00" for i in ids]
    (data / f"{side}.csv").write_text("id,date,amount\n" + "\n".join(rows) + "\n")


def test_the_night_is_cut_once_and_again_when_the_data_or_share_change(tmp_path: Path) -> None:
    for side in ("bank", "ledger"):
        _write(tmp_path, side, range(1, 101))
    files = scale.split_night(tmp_path, 0.1)
    base, night = files["bank"]
    assert len(base.read_text().splitlines()) == 1 + 90
    assert len(night.read_text().splitlines()) == 1 + 10
    made = {p: p.stat().st_mtime_ns for ps in files.values() for p in ps}
    assert scale.split_night(tmp_path, 0.1) == files
    assert {p: p.stat().st_mtime_ns for p in made} == made
    # another share cuts again
    scale.split_night(tmp_path, 0.2)
    assert len(night.read_text().splitlines()) == 1 + 20
    # other data cuts again
    _write(tmp_path, "bank", range(1, 51))
    scale.split_night(tmp_path, 0.2)
    assert len(base.read_text().splitlines()) == 1 + 40


def test_outputs_are_taken_only_under_their_stamp(tmp_path: Path) -> None:
    """A stamp not matching, or an output missing, removes the stamp before the outputs
    are made again: outputs an interrupted run left half made are not taken next time."""
    stamp, out = tmp_path / ".made", tmp_path / "out.csv"
    assert not scale.made_before(stamp, "a", out)
    out.write_text("x")
    stamp.write_text("a")
    assert scale.made_before(stamp, "a", out)
    assert not scale.made_before(stamp, "b", out) and not stamp.exists()
    stamp.write_text("a")
    out.unlink()
    assert not scale.made_before(stamp, "a", out) and not stamp.exists()
