"""The rules run again over what is still open until a pass matches nothing, at most
MAX_PASSES passes; a run stopped by that bound says so, since a rerun may match more."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from recon import pipeline

from ..test_generator import gen
from .test_score_chunks import _run


def test_a_run_cut_short_by_the_pass_bound_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    data = gen.generate(tmp_path / "data", seed=3, rows=600, mode="hard")
    results: list[pipeline.PipelineResult] = []
    real = pipeline.run_pipeline

    def spy(*args, **kw):  # type: ignore[no-untyped-def]
        results.append(real(*args, **kw))
        return results[-1]

    monkeypatch.setattr("recon.run.run_pipeline", spy)
    with caplog.at_level(logging.WARNING, logger="recon"):
        first = _run(data, tmp_path / "whole")
    # the bank pass ran until a pass matched nothing: no warning, and a rerun of the
    # same files matches nothing more
    assert results[0].unsettled == 0 and 1 < results[0].passes <= pipeline.MAX_PASSES
    assert "a rerun may match more" not in caplog.text
    assert _run(data, tmp_path / "whole") == first
    monkeypatch.setattr(pipeline, "MAX_PASSES", 1)
    results.clear()
    with caplog.at_level(logging.WARNING, logger="recon"):
        _run(data, tmp_path / "cut")
    assert results[0].passes == 1 and results[0].unsettled > 0
    said = f"bank matching reached its limit of 1 passes still matching ({results[0].unsettled} in"
    assert said in caplog.text
