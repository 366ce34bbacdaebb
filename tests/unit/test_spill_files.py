"""Spill files a killed run left in <db>.tmp are removed when recon next opens the database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from recon.db import connect

SPILL = """
import duckdb, os, sys, time
con = duckdb.connect(sys.argv[1])
con.execute("set memory_limit = '64MB'")
con.execute("begin")
con.execute("create temp table x as select i, repeat('x', 100) || i as s from range(2000000) r(i)")
spill = sys.argv[1] + ".tmp"
print(sum(os.path.getsize(os.path.join(spill, f)) for f in os.listdir(spill)), flush=True)
time.sleep(600)
"""


def test_a_killed_runs_spill_files_are_removed_and_others_kept(tmp_path: Path) -> None:
    db = tmp_path / "recon.duckdb"
    proc = subprocess.Popen(
        [sys.executable, "-c", SPILL, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        spilled = int(proc.stdout.readline())  # type: ignore[union-attr]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    spill_dir = tmp_path / "recon.duckdb.tmp"
    dead = [f.name for f in spill_dir.iterdir()]
    assert spilled > 10_000_000 and any(f.startswith(f"duckdb_temp_{proc.pid}_") for f in dead)
    # a live process's (our parent's) spill file and a file DuckDB did not make stay
    live = spill_dir / f"duckdb_temp_{os.getppid()}_0_storage_DEFAULT-0.tmp"
    live.write_bytes(b"")
    (spill_dir / "notes.txt").write_text("mine")

    con = connect(db)
    con.close()
    assert sorted(f.name for f in spill_dir.iterdir()) == sorted([live.name, "notes.txt"])
