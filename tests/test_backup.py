"""`recon backup` / `recon restore` round-trip every table; encrypted backups are
unreadable without the key and a flipped byte is refused; an older schema is
migrated on open after an automatic backup."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import duckdb
import pytest

from recon import db as D
from recon.audit import verify
from recon.errors import ReconError

from .conftest import BANK_HEADER, LEDGER_HEADER, RULES, dump_tables, write_csv

KEY = base64.b64encode(bytes(range(32))).decode()
OTHER_KEY = base64.b64encode(bytes(range(1, 33))).decode()
SECRET = "Zebra Secret Trading"


@pytest.fixture(scope="module")
def _state(tmp_path_factory) -> Path:
    from recon.cli import run_cli

    tmp = tmp_path_factory.mktemp("state")
    bank = write_csv(tmp / "bank.csv", BANK_HEADER, [
        f"B1,2026-03-02,1000.00,EUR,{SECRET},INV-2026-00123,SEPA",
        "B2,2026-03-05,-12.50,EUR,,,BANK FEE",
        "B3,2026-03-09,99.50,EUR,Smith & Co,,payment",
    ])
    ledger = write_csv(tmp / "ledger.csv", LEDGER_HEADER, [
        f"L1,2026-03-01,1000.00,EUR,{SECRET},2026-00123,receipt",
        "L5,2026-03-08,100.00,EUR,Smith and Co,,receipt",
    ])
    db = tmp / "r.duckdb"
    assert run_cli(["run", "--rules", str(RULES), "--bank", str(bank), "--ledger", str(ledger),
                    "--db", str(db), "--out", str(tmp / "out"), "--as-of", "2026-03-31"]) == 0
    assert run_cli(["close-period", "2026-02", "--db", str(db), "--user", "carl"]) == 0
    return db


@pytest.fixture
def state(_state, tmp_path) -> Path:
    db = tmp_path / "live" / "r.duckdb"
    db.parent.mkdir()
    db.write_bytes(_state.read_bytes())
    return db


def dump(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order."""
    return dump_tables(path)


def test_round_trip_restores_every_table(state, tmp_path, cli, monkeypatch) -> None:
    monkeypatch.delenv("RECON_BACKUP_KEY", raising=False)
    before = dump(state)
    code, _out, err = cli("backup", tmp_path / "bk", "--db", state)
    assert code == 0, err
    manifest = json.loads((tmp_path / "bk" / "manifest.json").read_text())
    assert manifest["tables"]["txns"] == 5 and manifest["schema_version"] == D.SCHEMA_VERSION
    assert {"schema.sql", "load.sql", "txns.parquet"} <= set(manifest["files"])
    target = tmp_path / "restored" / "r.duckdb"
    code, _, err = cli("restore", tmp_path / "bk", "--db", target, "--user", "erin")
    assert code == 0, err
    after = dump(target)
    assert set(after) == set(before)
    for table in before:
        if table in ("audit_log", "meta"):
            continue
        assert after[table] == before[table], f"table {table} differs after restore"
    # the restore itself is the one record added to the history
    assert after["audit_log"][:-1] == before["audit_log"]
    assert after["audit_log"][-1][2:4] == ("erin", "restore")
    meta = lambda rows: {k: v for k, v in rows if k != "audit_head"}  # noqa: E731
    assert meta(after["meta"]) == meta(before["meta"])
    con = duckdb.connect(str(target), read_only=True)
    assert verify(con) == []
    con.close()
    assert all(p.stat().st_mode & 0o077 == 0 for p in (tmp_path / "bk").iterdir())


def test_restore_over_a_database_needs_force_and_keeps_the_old_state(state, tmp_path, cli):
    assert cli("backup", tmp_path / "bk", "--db", state)[0] == 0
    con = duckdb.connect(str(state))
    con.execute("delete from matches")
    con.close()
    code, _, err = cli("restore", tmp_path / "bk", "--db", state)
    assert code == 2 and "--force" in err
    code, _, err = cli("restore", tmp_path / "bk", "--db", state, "--force")
    assert code == 0, err
    assert dump(state)["matches"]
    saved = list((state.parent / "r.duckdb.backups").glob("*-before-restore"))
    assert len(saved) == 1
    assert json.loads((saved[0] / "manifest.json").read_text())["tables"]["matches"] == 0


def test_backup_refuses_a_non_empty_directory(state, tmp_path, cli) -> None:
    (tmp_path / "bk").mkdir()
    (tmp_path / "bk" / "x").write_text("keep me")
    code, _, err = cli("backup", tmp_path / "bk", "--db", state)
    assert code == 2 and "not an empty directory" in err
    assert (tmp_path / "bk" / "x").read_text() == "keep me"


def test_backup_or_restore_under_a_file_exits_2(state, tmp_path, cli) -> None:
    blocker = tmp_path / "nightly"
    blocker.write_text("a file where a directory should be")
    code, _, err = cli("backup", blocker / "bk", "--db", state)
    assert code == 2 and f"{blocker} is a file, not a directory" in err
    assert cli("backup", tmp_path / "bk", "--db", state)[0] == 0
    code, _, err = cli("restore", tmp_path / "bk", "--db", blocker / "r.duckdb")
    assert code == 2 and f"--db {blocker / 'r.duckdb'}: {blocker} is a file" in err


def test_plain_backup_with_a_flipped_byte_is_refused(state, tmp_path, cli) -> None:
    assert cli("backup", tmp_path / "bk", "--db", state)[0] == 0
    _flip(tmp_path / "bk" / "txns.parquet", 40)
    target = tmp_path / "new.duckdb"
    code, _, err = cli("restore", tmp_path / "bk", "--db", target)
    assert code == 2 and "txns.parquet: sha256 differs" in err
    assert not target.exists()


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def sealed(state, tmp_path, cli, monkeypatch) -> Path:
    monkeypatch.setenv("RECON_BACKUP_KEY", KEY)
    code, out, err = cli("backup", tmp_path / "bk", "--db", state, "--encrypt")
    assert code == 0, err
    assert "encrypted" in out
    return tmp_path / "bk"


def test_encrypted_backup_is_unreadable_without_the_key(sealed, tmp_path, cli, monkeypatch):
    blob = b"".join(p.read_bytes() for p in sealed.iterdir())
    assert SECRET.encode() not in blob and b"PAR1" not in blob and b"CREATE TABLE" not in blob
    assert not any(p.name.endswith(".parquet") for p in sealed.iterdir())
    with pytest.raises(duckdb.Error):
        duckdb.connect().execute(f"select * from read_parquet('{sealed}/txns.parquet.enc')")
    target = tmp_path / "new.duckdb"
    monkeypatch.delenv("RECON_BACKUP_KEY")
    code, _, err = cli("restore", sealed, "--db", target)
    assert code == 2 and "encrypted" in err and "RECON_BACKUP_KEY" in err
    monkeypatch.setenv("RECON_BACKUP_KEY", OTHER_KEY)
    code, _, err = cli("restore", sealed, "--db", target)
    assert code == 2 and "the key does not open this backup" in err
    assert not target.exists()
    monkeypatch.delenv("RECON_BACKUP_KEY")
    keyfile = tmp_path / "key"
    keyfile.write_text(KEY + "\n")
    code, _, err = cli("restore", sealed, "--db", target, "--key-file", keyfile)
    assert code == 0, err
    assert dump(target)["txns"]


@pytest.mark.parametrize("where", ["manifest_too", "ciphertext_only", "truncated", "swapped"])
def test_a_tampered_encrypted_backup_is_refused(sealed, tmp_path, cli, where) -> None:
    target = tmp_path / "new.duckdb"
    victim = sealed / "txns.parquet.enc"
    manifest_path = sealed / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    if where == "swapped":
        other = sealed / "matches.parquet.enc"
        a, b = victim.read_bytes(), other.read_bytes()
        victim.write_bytes(b)
        other.write_bytes(a)
    elif where == "truncated":
        victim.write_bytes(victim.read_bytes()[:-20])
    else:
        _flip(victim, os.path.getsize(victim) // 2)
    if where != "ciphertext_only":  # a careful attacker fixes the manifest's hashes too
        from recon.backup import _sha256

        for p in sealed.glob("*.enc"):
            manifest["files"][p.name] = _sha256(p)
        manifest_path.write_text(json.dumps(manifest))
    code, _, err = cli("restore", sealed, "--db", target)
    assert code == 2
    assert ("fails authentication" in err) if where != "ciphertext_only" else (
        "sha256 differs" in err), err
    assert not target.exists()


def test_key_is_never_taken_from_the_command_line(state, tmp_path, cli, monkeypatch) -> None:
    monkeypatch.delenv("RECON_BACKUP_KEY", raising=False)
    code, _, err = cli("backup", tmp_path / "bk", "--db", state, "--encrypt", "--key", KEY)
    assert code == 2
    code, _, err = cli("backup", tmp_path / "bk", "--db", state, "--encrypt")
    assert code == 2 and "RECON_BACKUP_KEY" in err
    monkeypatch.setenv("RECON_BACKUP_KEY", "c2hvcnQ=")
    code, _, err = cli("backup", tmp_path / "bk", "--db", state, "--encrypt")
    assert code == 2 and "32 bytes" in err
    assert not (tmp_path / "bk").exists()


# --- schema migration -------------------------------------------------------------------
# schema version 1 as recon 0.1 wrote it: no migrations table, no txns.name_alt
V1_SCHEMA = D.SCHEMA_SQL.split("create table if not exists migrations")[0].replace(
    ", name_alt varchar", "")
assert V1_SCHEMA != D.SCHEMA_SQL and "name_alt" not in V1_SCHEMA


def _v1_database(path: Path) -> None:
    """A database as recon 0.1 (schema version 1) wrote it: no migrations table, no head."""
    con = duckdb.connect(str(path))
    con.execute(V1_SCHEMA)
    con.execute("insert into meta values ('schema_version', '1')")
    con.execute("insert into txns (txn_id, side, source_id, date, amount, currency, "
                "counterparty) values (1, 'bank', 'B1', date '2026-03-02', 1000, 'EUR', "
                "'上海华盛贸易有限公司'), (2, 'bank', 'B2', date '2026-03-03', 5, 'EUR', 'Foo')")
    D.audit(con, "recon", "load", "bank.csv", {"rows": 1})
    D.audit(con, "recon", "run", "R1", {})
    con.execute("delete from meta where key = 'audit_head'")  # v1 kept no head
    con.close()


def test_an_older_database_is_backed_up_then_migrated_on_open(tmp_path) -> None:
    path = tmp_path / "old.duckdb"
    _v1_database(path)
    con = D.connect(path)
    try:
        assert D.stored_version(con) == D.SCHEMA_VERSION == 3
        applied = con.execute("select version, backup from migrations").fetchall()
        assert [v for v, _ in applied] == [2, 3]
        backup = Path(applied[0][1])
        assert backup.parent == tmp_path / "old.duckdb.backups"
        manifest = json.loads((backup / "manifest.json").read_text())
        assert manifest["schema_version"] == 1 and manifest["tables"]["txns"] == 2
        assert "migrations" not in manifest["tables"]
        alt = dict(con.execute("select source_id, name_alt from txns").fetchall())
        assert alt["B2"] is None and alt["B1"] and alt["B1"].isascii()  # pinyin of the name
        actions = [a for (a,) in con.execute("select action from audit_log order by seq").fetchall()]
        assert actions == ["load", "run", "migrate"]
        assert verify(con) == []
    finally:
        con.close()
    con = D.connect(path)  # opening again migrates nothing
    assert con.execute("select count(*) from migrations").fetchall() == [(2,)]
    con.close()
    assert len(list((tmp_path / "old.duckdb.backups").iterdir())) == 1


def test_a_v2_database_gets_the_pass_of_its_exceptions(tmp_path) -> None:
    """v3 records which pass an exception was of (changes.csv compares pass with pass):
    a left row's pass is its side; a ledger row's is unknown, compared with every pass."""
    path = tmp_path / "v2.duckdb"
    con = D.connect(path)
    con.execute("alter table run_exceptions drop column left_side")
    con.execute("update meta set value = '2' where key = 'schema_version'")
    con.execute("insert into txns (txn_id, side, source_id, date, amount, currency) values "
                "(1, 'bank', 'B1', date '2026-03-02', 10, 'EUR'), "
                "(2, 'statement', 'S1', date '2026-03-02', 10, 'EUR'), "
                "(3, 'ledger', 'L1', date '2026-03-02', 10, 'EUR')")
    con.execute("insert into run_exceptions values ('R1', 'left', 1, 'no_candidate'), "
                "('R1', 'left', 2, 'no_candidate'), ('R1', 'right', 3, 'no_candidate')")
    con.close()
    con = D.connect(path)
    try:
        assert D.stored_version(con) == 3
        assert con.execute("select txn_id, left_side from run_exceptions order by 1"
                           ).fetchall() == [(1, "bank"), (2, "statement"), (3, None)]
    finally:
        con.close()


def test_a_newer_database_is_refused(tmp_path) -> None:
    path = tmp_path / "new.duckdb"
    D.connect(path).execute("update meta set value = '99' where key = 'schema_version'").close()
    with pytest.raises(ReconError, match="schema version 99 is newer"):
        D.connect(path)
