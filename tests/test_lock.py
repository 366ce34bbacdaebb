"""One writer per database: a second run, apply or close exits 3 naming the holder;
a lock file left by a dead process is taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from recon import lock
from recon.errors import LockedError

from .conftest import ROOT, RULES, write_csv

PY = sys.executable


def _month(tmp: Path, rows: int = 400) -> tuple[Path, Path]:
    out = tmp / "gen"
    subprocess.run(
        [PY, str(ROOT / "sample_data" / "generate.py"), "--seed", "11", "--rows", str(rows),
         "--out", str(out)], check=True, capture_output=True)
    return out / "bank.csv", out / "ledger.csv"


def _run_args(bank: Path, ledger: Path, db: Path, out: Path) -> list[str]:
    return ["run", "--rules", str(RULES), "--bank", str(bank), "--ledger", str(ledger),
            "--db", str(db), "--out", str(out), "--as-of", "2026-03-31"]


def _wait_for_holder(db: Path, pid: int, proc: subprocess.Popen[bytes], timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        holder = lock.read_holder(db)
        if holder and holder.get("pid") == pid:
            return holder
        if proc.poll() is not None:
            out = proc.communicate()
            pytest.fail(f"the first process ended before taking the lock: {out}")
        time.sleep(0.01)
    pytest.fail("the first process never took the lock")


def _holder_process(db: Path, seconds: float = 60) -> subprocess.Popen[bytes]:
    """A process that opens the database with recon.db.connect and keeps it open."""
    code = textwrap.dedent(f"""
        import sys, time
        from recon.db import connect
        con = connect({str(db)!r})
        print("ready", flush=True)
        time.sleep({seconds})
    """)
    proc = subprocess.Popen([PY, "-c", code], cwd=ROOT, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == b"ready"
    return proc


def test_second_run_apply_and_close_exit_3_naming_the_holder(tmp_path, cli) -> None:
    bank, ledger = _month(tmp_path)
    db = tmp_path / "r.duckdb"
    first = subprocess.Popen([PY, "-m", "recon.cli", "-q", *_run_args(bank, ledger, db,
                              tmp_path / "out1")], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    try:
        holder = _wait_for_holder(db, first.pid, first)
        code, _, err = cli(*_run_args(bank, ledger, db, tmp_path / "out2"))
        still_running = first.poll() is None
        decisions = write_csv(tmp_path / "dec.csv", "side,id,reason,decision,match_with,note",
                              ["left,B0000001,no_candidate,write_off,,fee"])
        apply_code, _, apply_err = cli("apply", decisions, "--db", db, "--user", "anna")
        close_code, _, close_err = cli("close-period", "2026-02", "--db", db, "--user", "anna")
    finally:
        _out, errs = first.communicate(timeout=120)
    assert still_running, "the first run ended too early for the test to mean anything"
    assert first.returncode == 0, errs.decode()
    assert code == 3, err
    for text in (err, apply_err, close_err):
        assert f"pid {first.pid}" in text and socket.gethostname() in text, text
        assert str(holder["started_at"]) in text and "run --rules" in text, text
    assert apply_code == 3 and close_code == 3
    assert not (tmp_path / "out2").exists() or not any((tmp_path / "out2").iterdir())
    # the first run is unaffected, and the lock is free again
    assert lock.read_holder(db) is None
    assert cli(*_run_args(bank, ledger, db, tmp_path / "out3"))[0] == 0


def test_connect_refuses_while_another_process_holds_the_database(tmp_path, cli) -> None:
    db = tmp_path / "r.duckdb"
    proc = _holder_process(db)
    try:
        with pytest.raises(LockedError, match=f"pid {proc.pid} on host"):
            from recon.db import connect

            connect(db)
        code, _, err = cli("audit", "verify", "--db", db)
        assert code == 3 and f"pid {proc.pid}" in err
    finally:
        proc.kill()
        proc.wait()
    # killed while holding it: the lock is stale now and is taken over
    code, _, err = cli("audit", "verify", "--db", db)
    assert code == 0, err
    assert f"taking over a stale lock of pid {proc.pid}" in err


def test_stale_lock_file_of_a_dead_process_is_taken_over(tmp_path, small_month, cli) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    db = tmp_path / "r.duckdb"
    lock.lock_path(db).write_text(json.dumps({
        "pid": dead.pid, "host": socket.gethostname(), "started_at": "2026-03-01T02:00:00Z",
        "command": "recon run --rules x"}))
    bank, ledger = small_month
    code, _, err = cli(*_run_args(bank, ledger, db, tmp_path / "out"))
    assert code == 0, err
    assert f"taking over a stale lock of pid {dead.pid}" in err and "no longer running" in err
    assert lock.read_holder(db) is None  # released cleanly: no holder recorded


def test_a_plain_duckdb_connection_elsewhere_also_gives_exit_3(tmp_path, small_month, cli):
    db = tmp_path / "r.duckdb"
    duckdb.connect(str(db)).close()
    code_text = f"import duckdb, time; c = duckdb.connect({str(db)!r}); print('ready', flush=True); time.sleep(60)"
    proc = subprocess.Popen([PY, "-c", code_text], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
        code, _, err = cli(*_run_args(*small_month, db, tmp_path / "out"))
    finally:
        proc.kill()
        proc.wait()
    assert code == 3, err
    assert "in use by" in err


def test_hold_is_reentrant_and_connect_inside_it_works(tmp_path) -> None:
    from recon.db import connect

    db = tmp_path / "r.duckdb"
    with lock.hold(db, "recon test"):
        holder = lock.read_holder(db)
        assert holder and holder["pid"] == os.getpid() and holder["command"] == "recon test"
        with lock.hold(db, "inner"):
            con = connect(db)
            con.execute("select 1")
            con.close()
            del con
        assert lock.holds(db)
        # another process is refused while we hold it
        probe = subprocess.run(
            [PY, "-c", f"from recon.lock import acquire; acquire({str(db)!r}, 'x')"],
            cwd=ROOT, capture_output=True, text=True)
        assert probe.returncode != 0 and f"pid {os.getpid()}" in probe.stderr
    assert not lock.holds(db) and lock.read_holder(db) is None
    assert oct(lock.lock_path(db).stat().st_mode & 0o777) == "0o600"


def test_database_files_are_owner_only(tmp_path, small_month, cli) -> None:
    db = tmp_path / "r.duckdb"
    old = os.umask(0o022)
    try:
        assert cli(*_run_args(*small_month, db, tmp_path / "out"))[0] == 0
    finally:
        os.umask(old)
    for p in [db, *tmp_path.glob("r.duckdb*"), *(tmp_path / "out").iterdir()]:
        if p.is_file():
            assert p.stat().st_mode & 0o077 == 0, p


def test_a_lock_file_removed_before_its_flock_is_opened_again(tmp_path, monkeypatch) -> None:
    """A command that created a database and failed removes it with its lock file, under
    the flock (recon.db.session).  A process that had opened the lock file before took
    the flock of a file no longer there, and a third one locked the new file beside it:
    two writers."""
    db = tmp_path / "r.duckdb"
    opened: list[Path] = []
    real_open = lock._open

    def open_then_removed(path: Path) -> int:
        fd = real_open(path)
        opened.append(path)
        if len(opened) == 1:
            path.unlink()  # its holder removed it between this open and the flock
        return fd

    monkeypatch.setattr(lock, "_open", open_then_removed)
    lock.acquire(db, "recon test")
    try:
        assert len(opened) == 2 and lock.lock_path(db).exists()
        probe = subprocess.run(
            [PY, "-c", f"from recon import lock; lock.check({str(db)!r})"],
            cwd=ROOT, capture_output=True, text=True, check=False)
        assert probe.returncode != 0 and "LockedError" in probe.stderr
    finally:
        lock.release(db)
