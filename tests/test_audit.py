"""The audit trail: every load, run, decision, write-off, close and reopen is a record
chained to the one before; `recon audit verify` names the first record altered or
removed; `recon audit show` tells one item's history."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import pytest

from recon.audit import verify
from recon.db import audit_digest

from .conftest import (
    BANK_HEADER,
    LEDGER_HEADER,
    RULES,
    decide,
    read_rows,
    write_csv,
    write_rows,
)


@pytest.fixture(scope="module")
def _history_db(tmp_path_factory) -> Path:
    """A database with loads, runs, a manual match, a write-off, a close and a reopen."""
    from recon.cli import run_cli

    tmp = tmp_path_factory.mktemp("history")
    bank = write_csv(tmp / "bank.csv", BANK_HEADER, [
        "B1,2026-03-02,1000.00,EUR,Müller GmbH,INV-2026-00123,SEPA-GUTSCHRIFT",
        "B3,2026-03-03,500.00,EUR,Foo,,x",
        "B4,2026-03-03,500.00,EUR,Foo,,x",
        "B5,2026-03-05,-12.50,EUR,,,BANK FEE",
    ])
    ledger = write_csv(tmp / "ledger.csv", LEDGER_HEADER, [
        "L1,2026-03-01,1000.00,EUR,Mueller,2026-00123,receipt",
        "L3,2026-03-03,500.00,EUR,Foo,,a",
        "L4,2026-03-03,500.00,EUR,Foo,,b",
    ])
    db, out = tmp / "r.duckdb", tmp / "out"
    run = ["run", "--rules", str(RULES), "--bank", str(bank), "--ledger", str(ledger),
           "--db", str(db), "--out", str(out), "--as-of", "2026-03-31"]
    assert run_cli(run) == 0
    exc = decide(read_rows(out / "exceptions.csv"),
                 B3={"decision": "match", "match_with": "L4", "note": "remittance checked"},
                 B5={"decision": "write_off", "note": "bank fee March"})
    assert run_cli(["apply", str(write_rows(tmp / "dec.csv", exc, crlf=True)), "--db", str(db),
                    "--user", "anna"]) == 0
    assert run_cli(run) == 0
    assert run_cli(["close-period", "2026-03", "--db", str(db), "--user", "carl"]) == 0
    assert run_cli(["reopen-period", "2026-03", "--db", str(db), "--user", "dora",
                    "--reason", "late invoice"]) == 0
    return db


@pytest.fixture
def history(_history_db, tmp_path) -> Path:
    """A private copy of the history database."""
    db = tmp_path / "r.duckdb"
    shutil.copy(_history_db, db)
    return db


def _con(db: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(db))


def _tamper(db: Path, sql: str) -> None:
    """Run `sql` on the database behind recon's back."""
    con = _con(db)
    con.execute(sql)
    con.close()


def test_every_kind_of_change_is_audited_and_the_chain_holds(history, cli) -> None:
    con = _con(history)
    actions = {a for (a,) in con.execute("select distinct action from audit_log").fetchall()}
    by = dict(con.execute("select action, any_value(actor) from audit_log group by 1").fetchall())
    assert verify(con) == []
    con.close()
    assert {"load", "run", "match", "write_off", "close_period", "reopen_period"} <= actions
    assert by["match"] == "anna" and by["close_period"] == "carl" and by["reopen_period"] == "dora"
    code, out, err = cli("audit", "verify", "--db", history)
    assert code == 0, err
    assert "hash chain intact" in out


def test_an_edited_record_is_named(history, cli) -> None:
    _tamper(history, "update audit_log set actor = 'mallory' where seq = 3")
    code, _, err = cli("audit", "verify", "--db", history)
    assert code == 2
    assert "audit record 3 (" in err and "was altered" in err
    assert "record 4" not in err  # only the edited record is blamed


def test_an_edit_with_a_recomputed_hash_breaks_the_next_link(history) -> None:
    con = _con(history)
    seq, at, actor, action, obj, body, prev = con.execute(
        "select seq, logged_at, actor, action, object, detail, prev_hash from audit_log "
        "where seq = 4").fetchall()[0]
    body = json.dumps({"note": "nothing to see"})
    con.execute("update audit_log set detail = ?, hash = ? where seq = 4",
                [body, audit_digest(seq, at, actor, action, obj, body, prev)])
    problems = verify(con)
    con.close()
    assert problems and problems[0].startswith("audit record 5 (")
    assert "link to audit record 4" in problems[0]


def test_a_removed_record_is_named_as_a_gap(history, cli) -> None:
    _tamper(history, "delete from audit_log where seq = 2")
    code, _, err = cli("audit", "verify", "--db", history)
    assert code == 2
    assert "record 2 removed: the log jumps from audit record 1" in err


def test_records_cut_from_the_end_are_noticed(history) -> None:
    con = _con(history)
    last = con.execute("select max(seq) from audit_log").fetchall()[0][0]
    con.execute("delete from audit_log where seq >= ?", [last - 1])
    problems = verify(con)
    con.close()
    assert problems == [
        f"records {last - 1}..{last} removed from the end of the log "
        f"(it ends at {problems[0].split('(it ends at ')[1]}"
    ]


def test_removing_the_first_record_is_noticed(history) -> None:
    con = _con(history)
    con.execute("delete from audit_log where seq = 1")
    problems = verify(con)
    con.close()
    assert problems[0].startswith("record 1 removed: the log jumps from the start of the log")


def test_show_tells_where_an_item_came_from_and_who_touched_it(history, cli) -> None:
    code, out, err = cli("audit", "show", "B3", "--db", history)
    assert code == 0, err
    lines = out.splitlines()
    assert "loaded" in lines[0] and "bank.csv line 3" in lines[0]
    assert any("matched" in line and "by anna" in line and "remittance checked" in line
               and "with bank B3, ledger L4" in line for line in lines)
    assert any("close_period" in line and "by carl" in line for line in lines)
    assert any("reopen_period" in line and "late invoice" in line for line in lines)
    code, out, _ = cli("audit", "show", "B5", "--db", history, "--side", "left", "--json")
    events = json.loads(out)
    assert [e["event"] for e in events][:2] == ["loaded", "write_off"]
    assert events[1]["by"] == "anna" and "bank fee March" in events[1]["detail"]
    assert all(e["audit_seq"] for e in events)
    code, out, _ = cli("audit", "show", "L1", "--db", history, "--side", "right")
    assert code == 0 and "matched" in out and "by recon" in out
    code, _, err = cli("audit", "show", "NOPE", "--db", history)
    assert code == 2 and "no item 'NOPE'" in err


def test_records_appended_together_chain_as_records_appended_one_by_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`recon apply` appends its records by one insert (audit_many): the log, its head
    and its verification are what one call of audit per record gives, at the same time."""
    from datetime import datetime

    import recon.db as db

    monkeypatch.setattr(db, "_now", lambda: datetime(2026, 3, 31, 17, 5, 9, 123456))
    records = [
        ("accept", "M1", {"note": "ok", "file": "d.csv", "line": 2}),
        ("reject", "M2", {"note": "", "file": "d.csv", "line": 3}),
        ("match", "M3", {"left": [1, 2], "right": [7], "note": "by hand ✓", "line": 4}),
    ]
    tables = []
    for name, many in (("one", False), ("many", True)):
        con = db.connect(tmp_path / f"{name}.duckdb")
        try:
            db.audit(con, "recon", "load", "bank.csv", {"rows": 4})
            if many:
                db.audit_many(con, "anna", records)
                db.audit_many(con, "anna", [])
            else:
                for action, obj, detail in records:
                    db.audit(con, "anna", action, obj, detail)
            tables.append((
                con.execute("select * from audit_log order by seq").fetchall(),
                con.execute("select value from meta where key = 'audit_head'").fetchall(),
            ))
            assert verify(con) == []
        finally:
            con.close()
    assert tables[0] == tables[1]
    assert [r[0] for r in tables[1][0]] == [1, 2, 3, 4]


def test_a_rebuilt_chain_is_caught_by_a_head_kept_outside(_history_db, history, cli) -> None:
    """Record 4 edited and every hash after it rebuilt, the head too: the chain verifies,
    but the head the last run's summary.json kept (and a backup's manifest) is gone."""
    summary = _history_db.parent / "out" / "summary.json"
    backup = history.parent / "bk"
    assert cli("backup", backup, "--db", history)[0] == 0
    for kept in (summary, backup / "manifest.json"):
        code, _, err = cli("audit", "verify", "--db", history, "--against", kept)
        assert code == 0, err
    con = _con(history)
    rows = con.execute("select seq, logged_at, actor, action, object, detail from audit_log "
                       "order by seq").fetchall()
    prev = "0" * 64
    for seq, at, actor, action, obj, body in rows:
        body = json.dumps({"note": "nothing to see"}) if seq == 4 else body
        digest = audit_digest(seq, at, actor, action, obj, body, prev)
        con.execute("update audit_log set detail = ?, prev_hash = ?, hash = ? where seq = ?",
                    [body, prev, digest, seq])
        prev = digest
    con.execute("update meta set value = ? where key = 'audit_head'", [f"{rows[-1][0]}:{prev}"])
    con.close()
    assert cli("audit", "verify", "--db", history)[0] == 0  # the chain alone holds
    for kept in (summary, backup / "manifest.json"):
        code, _, err = cli("audit", "verify", "--db", history, "--against", kept)
        assert code == 2 and "the log was rewritten" in err and str(kept) in err
    code, _, err = cli("audit", "verify", "--db", history, "--against", history.parent)
    assert code == 2 and "cannot read it" in err
