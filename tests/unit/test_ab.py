"""bench/ab.py: what it reads from recon's log, its medians, and its same-output check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, load_module

ab = load_module(ROOT / "bench" / "ab.py", "recon_bench_ab")


def test_pass_seconds_split_the_first_pass_from_the_later_ones() -> None:
    log = [
        "recon: parsed 21883 rows (0.34 s)",
        "recon: open items (1.10 s)",
        "recon: rule exact_reference: 8197 matches (0.24 s)",
        "recon: rule group_one_to_many: 742 matches (0.92 s)",
        "recon: open items (pass 2) (0.15 s)",
        "recon: rule exact_reference (pass 2): 0 matches (0.04 s)",
        "recon: rule group_one_to_many (pass 2): 9 matches (0.26 s)",
        "recon: rule group_one_to_many (pass 3): 1 matches (0.22 s)",
        "recon: suggestions (pass 3): 6 matches (0.05 s)",
        "recon: open items (pass 4) (0.13 s)",
        "recon: suggestions: 895 matches (0.07 s)",
        "recon: wrote bank outputs (4.70 s)",
        "recon: rule fx: committed",
    ]
    seconds = ab.scale.pass_seconds(log)
    assert seconds == pytest.approx(
        {
            "open items": 1.10,
            "exact_reference": 0.24,
            "group_one_to_many": 0.92,
            "open items (later)": 0.28,
            "exact_reference (later)": 0.04,
            "group_one_to_many (later)": 0.48,
            "suggestions (later)": 0.05,
            "suggestions": 0.07,
        }
    )
    # the table's rows come in the log's order: the open items before the first rule
    assert list(seconds)[:2] == ["open items", "exact_reference"]


def test_commit_seconds_come_from_the_last_line_of_the_run() -> None:
    log = [
        "recon: wrote bank outputs (4.70 s)",
        "recon: report.html and matches.xlsx (0.90 s)",
        "recon: committed; outputs in /tmp/x (y) (0.58 s)",
    ]
    assert ab.scale.commit_seconds(log) == pytest.approx(0.58)
    assert ab.scale.commit_seconds(log[:2]) == 0.0
    stages = ab.scale.with_commit({"parse": 1.0}, log)
    assert stages == pytest.approx({"parse": 1.0, "commit": 0.58})
    assert list(stages) == ["parse", "commit"]


def _run(
    wall: float, aging: float, digest: str, extra: dict[str, float] | None = None
) -> dict[str, Any]:
    figures = {"wall": wall, "aging": aging, **(extra or {})}
    return {"figures": figures, "peak_rss": 2**30, "digests": dict.fromkeys(ab.OUTPUTS, digest)}


def test_medians_take_each_figure_alone_and_count_a_missing_one_as_zero() -> None:
    runs = [_run(30.0, 1.0, "a"), _run(20.0, 3.0, "a", {"fx (later)": 0.5}), _run(25.0, 2.0, "a")]
    got = ab.medians(runs)
    assert got["wall"] == (25.0, 20.0, 30.0)
    assert got["aging"] == (2.0, 1.0, 3.0)
    # a rule that needed no later pass in two runs
    assert got["fx (later)"] == (0.0, 0.0, 0.5)


def test_report_says_whether_every_run_wrote_the_same_outputs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = ["old", "new"]
    same = [[_run(10.0, 1.0, "d1")] * 2, [_run(9.0, 0.5, "d1")] * 2]
    assert ab.report(names, same) is True
    printed = capsys.readouterr().out
    assert "matches.csv" in printed and "DIFFERENT" not in printed
    # one run of the new code wrote another file
    differ = [same[0], [_run(9.0, 0.5, "d1"), _run(9.0, 0.5, "d2")]]
    assert ab.report(names, differ) is False
    assert "DIFFERENT: d1 d2" in capsys.readouterr().out


def test_the_same_checkout_twice_gets_two_columns_of_its_own_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    main = Path("/x/main")
    names = ab.labels([main, main, Path("/y/main"), Path("/x/dev")])
    assert names == ["main", "main (2)", "main (3)", "dev"]
    assert ab.report(names[:2], [[_run(20.0, 1.0, "d")], [_run(22.0, 1.0, "d")]]) is True
    wall = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("wall"))
    assert "20.00" in wall and "22.00" in wall


def test_digests_tell_files_apart(tmp_path: Path) -> None:
    for i, name in enumerate(ab.OUTPUTS):
        (tmp_path / name).write_text(f"header\n{i}\n")
    first = ab.digests(tmp_path)
    assert len(set(first.values())) == len(ab.OUTPUTS)
    (tmp_path / "aging.csv").write_text("header\nchanged\n")
    second = ab.digests(tmp_path)
    assert [n for n in ab.OUTPUTS if first[n] != second[n]] == ["aging.csv"]


def test_as_of_is_passed_to_recon_run_only_when_given() -> None:
    assert ab._dated(None) == []
    assert ab._dated("2026-12-04") == ["--as-of", "2026-12-04"]
