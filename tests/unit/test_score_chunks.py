"""Candidates scored a chunk of left rows at a time give the same run as all at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from recon import scoring
from recon.run import Inputs, run

from ..conftest import RULES
from ..test_generator import gen

OUTPUTS = ("matches.csv", "exceptions.csv", "discrepancies.csv")


def _run(data: dict[str, Path], folder: Path) -> dict[str, bytes]:
    run(RULES, Inputs(bank=[data["bank"]], ledger=[data["ledger"]]),
        db_path=folder / "r.duckdb", out_dir=folder / "out", as_of=None)
    return {name: (folder / "out" / name).read_bytes() for name in OUTPUTS}


def test_chunked_scoring_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = gen.generate(tmp_path / "data", seed=11, rows=400, mode="hard")
    whole = _run(data, tmp_path / "whole")
    chunks: list[int] = []
    real = scoring.score_pairs

    def counting(*args, **kw):  # type: ignore[no-untyped-def]
        frame = real(*args, **kw)
        chunks.append(frame.height)
        return frame

    monkeypatch.setattr(scoring, "CHUNK_PAIRS", 37)
    monkeypatch.setattr(scoring, "score_pairs", counting)
    chunked = _run(data, tmp_path / "chunked")
    # every rule and the diagnosis were cut into many small chunks ...
    assert len(chunks) > 12 and max(chunks) < 37 * 3
    # ... and the matches, exceptions (with their best candidates) and discrepancies agree
    for name in OUTPUTS:
        assert chunked[name] == whole[name], name
    assert whole["matches.csv"].count(b"\n") > 300


def test_comparing_names_first_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fuzzy rule drops pairs whose names miss its threshold before computing the
    other features; without that shortcut the run is the same."""
    from recon import pipeline

    demo = Path(__file__).resolve().parents[2] / "sample_data" / "demo"
    data = {"bank": demo / "bank.csv", "ledger": demo / "ledger.csv"}
    calls: list[object] = []
    real = pipeline.drop_unlike_names

    def spy(*args, **kw):  # type: ignore[no-untyped-def]
        calls.append(real(*args, **kw))
        return calls[-1]

    monkeypatch.setattr(pipeline, "drop_unlike_names", spy)
    first = _run(data, tmp_path / "first")
    assert any(c is not None for c in calls), "the fuzzy rule compared names first"
    monkeypatch.setattr(pipeline, "drop_unlike_names", lambda *a, **k: None)
    plain = _run(data, tmp_path / "plain")
    for name in OUTPUTS:
        assert first[name] == plain[name], name
    assert b"fuzzy_name" in first["matches.csv"]
