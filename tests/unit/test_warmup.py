"""The warm-up freezes what it loads, once per process, and leaves the collector as it
found it."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from recon import warmup


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A process whose warm-up has not frozen anything yet; what a test freezes is let go."""
    monkeypatch.setattr(warmup, "_frozen", False)
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.enable()


def test_warm_up_freezes_the_pinyin_tables_once(fresh: None) -> None:
    warmup._warm()
    frozen = gc.get_freeze_count()
    # the pinyin tables alone are some 280,000 objects
    assert frozen > 200_000
    assert gc.isenabled()
    from pypinyin.phrases_dict import phrases_dict

    # no collection walks them: they are in no generation
    assert all(o is not phrases_dict for o in gc.get_objects())
    gc.unfreeze()
    warmup._warm()  # a second run in the same process (a test session) freezes nothing
    assert gc.get_freeze_count() == 0
    assert gc.isenabled()


def test_a_failed_warm_up_turns_the_collector_back_on(
    fresh: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import recon.reports.html

    def broken() -> None:
        raise RuntimeError("no template")

    monkeypatch.setattr(recon.reports.html, "warm_template", broken)
    warmup._warm()
    assert gc.isenabled()
    assert gc.get_freeze_count() > 0


def test_a_collector_turned_off_by_the_program_stays_off(fresh: None) -> None:
    gc.disable()
    warmup._warm()
    assert not gc.isenabled()
    assert gc.get_freeze_count() > 200_000
