"""A run takes an input file's sha256 from the one kept by the run before when the file
is the one it was made of and had not changed just before (recon.db.file_sha256)."""

from __future__ import annotations

import hashlib
import os
import shutil
import time
from pathlib import Path

import duckdb
import pytest
from duckdb import DuckDBPyConnection as DuckDB

from recon import db
from recon.db import connect, file_sha256, remember_hashes
from recon.run import Inputs, run

from ..conftest import RULES


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _hashed_later(monkeypatch: pytest.MonkeyPatch, seconds: float = 5.0) -> None:
    """Hashes made from now on count as made `seconds` after the file's last change (a
    file written by the test is otherwise always too fresh to be trusted)."""
    real = time.time_ns
    monkeypatch.setattr(db.time, "time_ns", lambda: real() + int(seconds * 1e9))


def _no_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(path: Path) -> str:
        raise AssertionError(f"{path} was hashed")

    monkeypatch.setattr(db, "sha256_of", refuse)


def _kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[DuckDB, Path, str]:
    """A database keeping the hash of a file (made long enough after it was written)."""
    con = connect(tmp_path / "r.duckdb")
    f = tmp_path / "bank.csv"
    f.write_bytes(b"id,amount\nB1,10.00\n")
    with monkeypatch.context() as m:
        _hashed_later(m)
        sha, made = file_sha256(con, f)
    assert sha == _sha(f.read_bytes()) and made is not None
    remember_hashes(con, [made])
    return con, f, sha


def test_a_kept_hash_is_taken_until_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    con, f, sha = _kept(tmp_path, monkeypatch)
    with monkeypatch.context() as m:
        _no_hashing(m)
        assert file_sha256(con, f) == (sha, None)

    # the same size and modification time, other bytes: the status change gives it away
    st = f.stat()
    time.sleep(0.05)  # past the file system's timestamp tick
    f.write_bytes(b"id,amount\nB1,99.00\n")
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert f.stat().st_size == st.st_size and f.stat().st_mtime_ns == st.st_mtime_ns
    sha2, made2 = file_sha256(con, f)
    assert sha2 == _sha(b"id,amount\nB1,99.00\n") != sha and made2 is not None


def test_a_file_replaced_by_a_copy_with_its_times_is_hashed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    con, f, _ = _kept(tmp_path, monkeypatch)
    other = tmp_path / "other.csv"
    other.write_bytes(b"id,amount\nB1,77.00\n")
    shutil.copystat(f, other)
    os.replace(other, f)  # a new inode under the old name, the old times
    assert file_sha256(con, f)[0] == _sha(b"id,amount\nB1,77.00\n")


def test_a_hash_made_just_after_the_file_changed_is_not_trusted(tmp_path: Path) -> None:
    """Hashed within RACY_NS of its last change, a file could change again within the
    same timestamp tick, keeping its size and times: it is hashed again next time."""
    con = connect(tmp_path / "r.duckdb")
    f = tmp_path / "bank.csv"
    f.write_bytes(b"id,amount\nB1,10.00\n")
    _, made = file_sha256(con, f)
    assert made is not None
    remember_hashes(con, [made])
    again = file_sha256(con, f)
    assert again[1] is not None and again[1].hashed_at_ns >= made.hashed_at_ns


def _inputs(small_month: tuple[Path, Path]) -> Inputs:
    bank, ledger = small_month
    return Inputs(bank=[bank], ledger=[ledger])


def _kept_rows(path: Path) -> list[tuple[str, str]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute("select path, sha256 from file_hashes order by path").fetchall()
    finally:
        con.close()


def test_a_rerun_reads_the_old_files_status_not_their_bytes(
    tmp_path: Path, small_month: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    dbp, out = tmp_path / "r.duckdb", tmp_path / "out"
    with monkeypatch.context() as m:
        _hashed_later(m)
        run(RULES, _inputs(small_month), db_path=dbp, out_dir=out, as_of=None)
    kept = _kept_rows(dbp)
    assert [Path(p).name for p, _ in kept] == ["bank.csv", "ledger.csv"]
    assert {sha for _, sha in kept} == {_sha(p.read_bytes()) for p in small_month}
    with monkeypatch.context() as m:
        _no_hashing(m)
        report = run(RULES, _inputs(small_month), db_path=dbp, out_dir=out, as_of=None)
    inputs = report.summary["inputs"]
    assert len(inputs) == 2 and all(f["new_rows"] == 0 for f in inputs)
    assert {f["sha256"] for f in inputs} == {sha for _, sha in kept}
    assert _kept_rows(dbp) == kept


def test_a_dry_run_keeps_no_hash(
    tmp_path: Path, small_month: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    dbp = tmp_path / "r.duckdb"
    db.connect(dbp).close()  # a dry run leaves no database it would have made
    _hashed_later(monkeypatch)
    run(RULES, _inputs(small_month), db_path=dbp, out_dir=tmp_path / "out",
        as_of=None, dry_run=True)
    assert _kept_rows(dbp) == []


def test_no_kept_hash_is_taken_where_ctime_is_the_creation_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On Windows st_ctime is when the file was made, which a rewrite keeps: every run
    hashes the file."""
    con, f, sha = _kept(tmp_path, monkeypatch)
    monkeypatch.setattr(db, "STATUS_TIMES", False)
    again, made = file_sha256(con, f)
    assert again == sha and made is not None
