"""A group rule keeps its block fingerprints and exact subsets between runs: the next
night searches only the anchors whose blocks changed, and its outputs equal those of a
night that searches every anchor.  A changed rule does not reuse what the old one kept.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import duckdb
import pytest
from hypothesis import settings

from recon import groups
from recon.config import load_rules
from recon.db import SCHEMA_SQL
from recon.matchers.group import Group
from recon.run import Inputs, run

from ..conftest import ROOT, load_module
from ..test_generator import gen
from .test_incremental import _MOVED, _PASSES, _blocks, _passes, _tight
from .test_score_chunks import OUTPUTS, RULES

#: bench/scale.py: the night the benchmark runs, cut from the generated files as it cuts it
scale = load_module(ROOT / "bench" / "scale.py", "recon_bench_scale")


@settings(max_examples=60, deadline=None)
@_PASSES
@_MOVED
def test_a_kept_carry_read_back_searches_like_a_full_search(
    before: list[tuple[int, str, int]], after: list[tuple[int, str, int]], keep: list[bool]
) -> None:
    """What one run keeps (tables group_blocks, group_solutions), read back by the next
    whose blocks lost and gained rows, gives exactly the subsets of a full search."""
    con = duckdb.connect()
    con.execute(SCHEMA_SQL)  # tables group_blocks and group_solutions, as recon makes them
    m = Group(max_group=4, max_block=12)
    first, second = _passes(before, after, keep)
    carry = groups.GroupCarry()
    groups.carried_solutions(con, m, carry, _blocks(con, first))
    groups.save_carries(con, {"k": carry}, {"k"})
    kept = groups.load_carry(con, "k")
    if carry.blocks is None or carry.blocks.height == 0:
        assert kept.blocks is None
    else:
        assert kept.blocks is not None and kept.sols is not None and carry.sols is not None
        assert kept.blocks.sort("a").equals(carry.blocks.sort("a"))
        assert kept.sols.sort("a", "xs").equals(carry.sols.sort("a", "xs"))
    blocks = _blocks(con, second)
    carried = groups.carried_solutions(con, m, kept, blocks)
    assert carried.sort("sol").equals(groups.find_solutions(con, m, blocks).sort("sol"))


def _night(files: dict[str, list[Path]], db: Path, out: Path, rules: Path = RULES) -> None:
    run(rules, Inputs(bank=files["bank"], ledger=files["ledger"]), db_path=db,
        out_dir=out, as_of=None)


def _searches(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """(anchors searched, anchors with blocks) of every group search from now on."""
    searched: list[tuple[int, int]] = []
    real = groups.find_solutions

    def spy(con, m, blocks, anchors=None):  # type: ignore[no-untyped-def]
        everyone = blocks["a"].n_unique()
        searched.append((anchors.height if anchors is not None else everyone, everyone))
        return real(con, m, blocks, anchors)

    monkeypatch.setattr(groups, "find_solutions", spy)
    return searched


def _kept(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return dict(con.execute("select rule_key, count(*) from group_blocks group by 1").fetchall())
    finally:
        con.close()


@pytest.mark.parametrize("seed", [7, 9])
def test_the_next_night_searches_only_changed_anchors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    gen.generate(tmp_path / "data", seed=seed, rows=800, mode="hard")
    files = scale.split_night(tmp_path / "data", 0.1)
    # tiny crowding bounds: at a few hundred lines every group anchor is settled by the
    # end of a run otherwise, and the run keeps nothing
    _tight(monkeypatch)
    base = tmp_path / "base.duckdb"
    run(RULES, Inputs(bank=files["bank"][:1], ledger=files["ledger"][:1]), db_path=base,
        out_dir=tmp_path / "base_out", as_of=None)
    ruleset = load_rules(RULES)
    keys = {groups.carry_key(r, "bank") for r in ruleset.rules
            if isinstance(r.matcher, Group) and r.matcher.incremental}
    assert set(_kept(base)) == keys and all(_kept(base).values())
    # the same night from the same database, with and without what the base run kept
    kept, scratch = tmp_path / "kept.duckdb", tmp_path / "scratch.duckdb"
    shutil.copy(base, kept)
    shutil.copy(base, scratch)
    con = duckdb.connect(str(scratch))
    con.execute("delete from group_blocks; delete from group_solutions")
    con.close()
    searched = _searches(monkeypatch)
    _night(files, kept, tmp_path / "kept_out")
    first_kept = searched[:2]  # the first pass's two group rules
    searched.clear()
    _night(files, scratch, tmp_path / "scratch_out")
    first_scratch = searched[:2]
    assert all(some == everyone for some, everyone in first_scratch)
    assert any(some < everyone for some, everyone in first_kept)
    for name in (*OUTPUTS, "changes.csv", "bank_reconciliation.csv"):
        assert (tmp_path / "kept_out" / name).read_bytes() == (
            tmp_path / "scratch_out" / name
        ).read_bytes(), name
    assert b"group_" in (tmp_path / "kept_out" / "matches.csv").read_bytes()
    # each run leaves its own carry: the two databases now keep the same
    assert _kept(kept) == _kept(scratch)


def test_a_changed_rule_searches_afresh_and_drops_the_old_carry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen.generate(tmp_path / "data", seed=9, rows=800, mode="hard")
    files = scale.split_night(tmp_path / "data", 0.1)
    _tight(monkeypatch)
    db = tmp_path / "r.duckdb"
    run(RULES, Inputs(bank=files["bank"][:1], ledger=files["ledger"][:1]), db_path=db,
        out_dir=tmp_path / "base_out", as_of=None)
    before = set(_kept(db))
    text = RULES.read_text(encoding="utf-8")
    assert text.count("max_group: 5") == 1
    changed = tmp_path / "rules.yaml"
    changed.write_text(text.replace("max_group: 5", "max_group: 4"), encoding="utf-8")
    searched = _searches(monkeypatch)
    _night(files, db, tmp_path / "out", changed)
    # the changed rule (the first group rule) searched every anchor of its first pass
    assert searched[0][0] == searched[0][1] > 0
    after = set(_kept(db))
    # the changed rule's carry is under a new key, the old one gone; the other rule's kept
    assert len(before) == len(after) == 2
    assert len(before & after) == 1
    new_keys = {groups.carry_key(r, "bank") for r in load_rules(changed).rules
                if isinstance(r.matcher, Group) and r.matcher.incremental}
    assert after == new_keys
