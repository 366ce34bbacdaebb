"""match_info holds, per match, the same facts a grouping of its members gives, whether it
was written when the match was recorded or derived afterwards; outputs read from it."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recon import matchinfo
from recon.db import connect
from recon.run import Inputs, run

from ..conftest import RULES, dump_tables
from ..test_generator import gen
from .test_score_chunks import OUTPUTS

STATEMENT = """id,date,amount,currency,counterparty,reference,description,doc_type
S1,{1},{2},{3},{4},{5},Invoice,invoice
"""


def _info(db: Path) -> list[tuple[object, ...]]:
    con = connect(db)
    try:
        return sorted(con.execute("select * from match_info").fetchall(), key=str)
    finally:
        con.close()


def test_recorded_info_equals_info_derived_from_members(tmp_path: Path) -> None:
    data = gen.generate(tmp_path / "data", seed=7, rows=500, mode="hard")
    # a statement line and the ledger line it agrees with: a match of the statement pass
    ledger_line = next(
        line.split(",")
        for line in data["ledger"].read_text(encoding="utf-8").splitlines()
        if "INV-" in line and '"' not in line
    )
    statement = tmp_path / "statement.csv"
    statement.write_text(STATEMENT.format(*ledger_line), encoding="utf-8")
    db, out = tmp_path / "r.duckdb", tmp_path / "out"
    run(
        RULES,
        Inputs(bank=[data["bank"]], ledger=[data["ledger"]], statement=[statement]),
        db_path=db,
        out_dir=out,
        as_of=None,
    )
    recorded = _info(db)
    con = connect(db)
    kinds = dict(con.execute("select kind, count(*) from matches group by 1").fetchall())
    assert kinds["one_to_one"] > 200 and kinds["one_to_many"] and kinds["many_to_one"]
    ids = con.execute("select match_id from match_info").fetchall()
    assert len(ids) == len(set(ids)) == con.execute("select count(*) from matches").fetchall()[0][0]
    # every kind's id keeps 80 bits of its hash (48 let tens of millions of matches share one)
    assert kinds["reversal"]
    assert all(re.fullmatch(r"M[0-9a-f]{20}", i) for (i,) in ids)
    assert con.execute("select count(*) from match_info where statement_left").fetchall()[0][0]
    con.execute("delete from match_info")
    assert matchinfo.refresh(con) == len(ids)
    assert matchinfo.refresh(con) == 0
    con.close()
    assert _info(db) == recorded


def test_outputs_unchanged_when_info_is_derived_again(tmp_path: Path) -> None:
    data = gen.generate(tmp_path / "data", seed=4, rows=300, mode="hard")
    db, out = tmp_path / "r.duckdb", tmp_path / "out"
    inputs = Inputs(bank=[data["bank"]], ledger=[data["ledger"]])
    run(RULES, inputs, db_path=db, out_dir=out, as_of=None)
    first = {name: (out / name).read_bytes() for name in OUTPUTS}
    con = connect(db)
    con.execute("delete from match_info")  # a database from before match_info
    con.close()
    run(RULES, inputs, db_path=db, out_dir=out, as_of=None)
    again = {name: (out / name).read_bytes() for name in OUTPUTS}
    assert again == first
    assert first["matches.csv"].count(b"\n") > 150


def test_active_members_are_the_members_of_the_active_matches(tmp_path: Path) -> None:
    """ACTIVE_MEMBERS_SQL ("of no inactive match") against the join with the matches,
    with a third of the matches ended (rejected, or broken by a later run)."""
    data = gen.generate(tmp_path / "data", seed=7, rows=300, mode="hard")
    db = tmp_path / "r.duckdb"
    run(RULES, Inputs(bank=[data["bank"]], ledger=[data["ledger"]]), db_path=db,
        out_dir=tmp_path / "out", as_of=None)
    con = connect(db)
    con.execute("update matches set active = false where hash(match_id) % 3 = 0")
    joined = set(con.execute(
        "select mm.txn_id from match_members mm join matches m using (match_id) where m.active"
    ).fetchall())
    ended = set(con.execute(
        "select mm.txn_id from match_members mm join matches m using (match_id) "
        "where not m.active").fetchall())
    assert joined and ended
    assert set(con.execute(matchinfo.ACTIVE_MEMBERS_SQL).fetchall()) == joined
    con.close()


@given(st.text())
def test_a_match_id_made_in_python_equals_the_one_made_in_sql(text: str) -> None:
    """Manual matches get their ids in Python, the rules' in SQL: one id per text, of
    one width, whichever makes it."""
    con = duckdb.connect()
    try:
        got = con.execute(f"select {matchinfo.match_id_sql('?')}", [text]).fetchall()[0][0]
    finally:
        con.close()
    assert got == matchinfo.match_id(text)
    assert len(got) == 1 + matchinfo.MATCH_ID_HEX == 21


def test_a_run_that_makes_one_match_id_twice_commits_nothing(
    tmp_path: Path, small_month: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Table matches has no key constraint: the run checks its new ids itself and stops
    before the commit, as the key did, when two different matches hash alike."""
    bank, ledger = small_month
    db, out = tmp_path / "r.duckdb", tmp_path / "out"
    run(RULES, Inputs(bank=[bank], ledger=[ledger]), db_path=db, out_dir=out, as_of=None)
    before = dump_tables(db)
    assert before["matches"] and len({m[0] for m in before["matches"]}) == len(before["matches"])
    # a second file, whose lines pair as the first's did: every new match hashed alike
    more = tmp_path / "more.csv"
    more.write_text(
        bank.read_text(encoding="utf-8").replace(",2026-03-", ",2026-04-").replace("\nB", "\nC"),
        encoding="utf-8",
    )
    ledger2 = tmp_path / "ledger2.csv"
    ledger2.write_text(
        ledger.read_text(encoding="utf-8").replace(",2026-03-", ",2026-04-").replace("\nL", "\nK"),
        encoding="utf-8",
    )
    monkeypatch.setattr(matchinfo, "match_id_sql", lambda text: "'Msame'")
    with pytest.raises(RuntimeError, match="match id Msame was made for two different matches"):
        run(RULES, Inputs(bank=[bank, more], ledger=[ledger, ledger2]), db_path=db,
            out_dir=out, as_of=None)
    assert dump_tables(db) == before
