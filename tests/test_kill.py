"""Crash safety: `recon run` SIGKILLed at random moments leaves the database exactly as
before the run (or, killed after its commit, exactly as a finished run leaves it),
never shows half an output file, and the next uninterrupted run writes byte-identical
matches.csv and exceptions.csv to a run that was never interrupted.

The month: run A loads the first half of a generated month (the state every kill
starts from); run B loads the whole month and is killed, again and again, in two
chains running side by side.  "A run never interrupted" is run B on a copy of A's
database.  A kill that lands after B's commit must leave exactly the state a finished
run B leaves; the chain then starts again from A's state (so that every kill hits
a run B on A's state: a second run B with the same inputs is not yet a no-op).

RECON_KILL_SEED reproduces a failure (the seed is in every assertion message);
RECON_KILL_POINTS changes the number of kills (default 15).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, RULES, dump_tables

PY = sys.executable
KILLS = int(os.environ.get("RECON_KILL_POINTS", "15"))
SEED = int(os.environ.get("RECON_KILL_SEED", str(int(time.time()) % 100_000)))
CHAINS = 2
CORE = ("txns", "txn_details", "files", "statements", "matches", "match_members",
        "decisions", "periods")
COMPARED = ("matches.csv", "exceptions.csv", "discrepancies.csv", "bank_reconciliation.csv")
Tables = dict[str, list[tuple]]


def _split_month(src: Path, dest: Path, last_day: str) -> Path:
    """The rows of `src` dated up to `last_day` (the first half of the month)."""
    with src.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    with dest.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(r for r in rows if r["date"] <= last_day)
    return dest


def _args(bank: Path, ledger: Path, db: Path, out: Path) -> list[str]:
    return ["run", "--rules", str(RULES), "--bank", str(bank), "--ledger", str(ledger),
            "--db", str(db), "--out", str(out), "--as-of", "2026-03-31"]


def _full(db: Path) -> Tables:
    """Every row of every table (what "exactly as before" compares)."""
    return dump_tables(db)


def _core_rows(full: Tables) -> Tables:
    """The reconciliation state: rows, files, matches, without run ids and times."""
    out = {}
    for name in CORE:
        rows = full[name]
        if name == "matches":  # match_id, rule .. explanation, active, ended_reason, diff_type
            rows = [(r[0], *r[2:12], r[13], r[15], r[16]) for r in rows]
        if name == "files":  # file_id .. new_rows
            rows = [r[:10] for r in rows]
        out[name] = sorted(rows, key=repr)
    return out


def _core(full: Tables) -> str:
    return hashlib.sha256(repr(sorted(_core_rows(full).items())).encode()).hexdigest()


def _diff(want: Tables, got: Tables) -> str:
    """Which core tables differ, with a few rows only one side has."""
    a_all, b_all = _core_rows(want), _core_rows(got)
    lines = []
    for name in CORE:
        a, b = set(a_all[name]), set(b_all[name])
        if a != b:
            lines.append(f"  {name}: {len(a)} rows expected, {len(b)} found; missing "
                         f"{sorted(a - b, key=repr)[:2]}; extra {sorted(b - a, key=repr)[:2]}")
    return "\n".join(lines)


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}


def _staging(out: Path) -> set[str]:
    return {p.name for p in out.glob(".staging-*")}


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None


def _wait_for(proc: subprocess.Popen[bytes], ready: Any, timeout: float) -> bool:
    """Poll `ready()` every 2 ms until true (True) or the process ends first (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.002)
    return False


@dataclass
class Ref:
    """The state and outputs after k uninterrupted runs B."""

    full: Tables
    core: str
    files: dict[str, bytes]


@dataclass
class Chain:
    """One working copy of the database, killed again and again."""

    name: str
    db: Path
    out: Path
    points: list[tuple[str, float]]
    committed: int = 0  # runs B that reached their commit in this chain
    log: list[str] = field(default_factory=list)


class KillTest:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        gen = tmp / "gen"
        subprocess.run([PY, str(ROOT / "sample_data" / "generate.py"), "--seed", "5",
                        "--rows", "600", "--mode", "hard", "--out", str(gen)],
                       check=True, capture_output=True)
        self.bank, self.ledger = gen / "bank.csv", gen / "ledger.csv"
        self.bank_a = _split_month(self.bank, tmp / "bank_a.csv", "2026-03-15")
        self.ledger_a = _split_month(self.ledger, tmp / "ledger_a.csv", "2026-03-15")
        self.refs: list[Ref] = []
        self._ref_lock = threading.Lock()
        self.base()
        self.t_staging, self.seconds = self._reference_run()

    def base(self) -> None:
        """Run A (first half of the month) uninterrupted: the state every kill starts from."""
        from recon.cli import run_cli

        self.base_db, self.base_out = self.tmp / "base.duckdb", self.tmp / "base_out"
        assert run_cli(["-q", *_args(self.bank_a, self.ledger_a, self.base_db,
                                     self.base_out)]) == 0
        self.base_files = _outputs(self.base_out)
        self.base_core = _core(_full(self.base_db))

    def copy_base(self, name: str) -> tuple[Path, Path]:
        db, out = self.tmp / f"{name}.duckdb", self.tmp / f"{name}_out"
        shutil.copy(self.base_db, db)
        shutil.copytree(self.base_out, out)
        return db, out

    def start(self, db: Path, out: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen([PY, "-m", "recon.cli", "-q", *_args(self.bank, self.ledger,
                                 db, out)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)

    def _reference_run(self) -> tuple[float, float]:
        """Run B once uninterrupted; return (seconds until its transaction's staging
        directory appears, seconds in all)."""
        self.ref_db, self.ref_out = self.copy_base("ref")
        t0 = time.monotonic()
        proc = self.start(self.ref_db, self.ref_out)
        staged = _wait_for(proc, lambda: _staging(self.ref_out), 300)
        t_staging = time.monotonic() - t0
        _, err = proc.communicate(timeout=300)
        seconds = time.monotonic() - t0
        assert proc.returncode == 0 and staged, err.decode()
        self._keep_ref()
        assert self.refs[0].core != self.base_core
        return t_staging, seconds

    def _keep_ref(self) -> None:
        full = _full(self.ref_db)
        self.refs.append(Ref(full, _core(full), _outputs(self.ref_out)))

    def ref(self, k: int) -> Ref:
        """The state after k uninterrupted runs B (run more of them when needed)."""
        with self._ref_lock:
            while len(self.refs) < k:
                proc = self.start(self.ref_db, self.ref_out)
                _, err = proc.communicate(timeout=300)
                assert proc.returncode == 0, err.decode()
                self._keep_ref()
            return self.refs[k - 1]

    def run_chain(self, chain: Chain) -> Chain:
        for anchor, delay in chain.points:
            self.kill_once(chain, anchor, delay)
        proc = self.start(chain.db, chain.out)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, f"{chain.name}: rerun failed: {err.decode()}"
        chain.committed += 1
        want, final = self.ref(chain.committed), _outputs(chain.out)
        for name in ("matches.csv", "exceptions.csv"):
            assert final[name] == want.files[name], (
                f"seed {SEED}, {chain.name} ({'; '.join(chain.log)}): the uninterrupted run "
                f"after the kills wrote a different {name} than run B number "
                f"{chain.committed} never interrupted")
        assert _core(_full(chain.db)) == want.core
        return chain

    def kill_once(self, chain: Chain, anchor: str, delay: float) -> None:
        before = _full(chain.db)
        old_staging = _staging(chain.out)
        first_output = chain.out / "bank_reconciliation.csv"
        old_inode = _inode(first_output)
        t0 = time.monotonic()
        proc = self.start(chain.db, chain.out)
        if anchor == "staging":  # the run's transaction has begun: loading, matching
            _wait_for(proc, lambda: _staging(chain.out) - old_staging, 300)
        elif anchor == "staged":  # matched; writing outputs and reports, not yet committed
            _wait_for(proc, lambda: any((chain.out / d / "matches.csv").exists()
                                        for d in _staging(chain.out) - old_staging), 300)
        elif anchor == "publish":  # committed; outputs being renamed into place
            _wait_for(proc, lambda: _inode(first_output) not in (old_inode, None), 300)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
        at = f"{anchor}+{delay:.2f}s (at {time.monotonic() - t0:.2f}s)"
        what = self.check_database(before, _full(chain.db), chain, at, proc.returncode == 0,
                                   err.decode())
        chain.log.append(f"{at}: {what}")
        self.check_outputs(chain, at)
        if chain.committed:  # start again from run A's state: every kill then hits run B
            shutil.rmtree(chain.out)
            for p in chain.db.parent.glob(chain.db.name + "*"):
                p.unlink()
            self.copy_base(chain.db.stem)
            chain.committed = 0

    def check_database(self, before: Tables, after: Tables, chain: Chain, at: str,
                       finished: bool, err: str) -> str:
        where = f"seed {SEED}, {chain.name}, killed at {at}"
        if after == before:
            assert not finished, f"{where}: a finished run changed nothing: {err}"
            return "rolled back"
        # changed: only a whole committed run may show, with one more `runs` row
        chain.committed += 1
        want = self.ref(chain.committed)
        assert _core(after) == want.core, (
            f"{where}: the database holds neither the state before the run nor the state "
            f"a finished run leaves:\n" + _diff(want.full, after))
        assert len(after["runs"]) == len(before["runs"]) + 1, where
        assert after["audit_log"][: len(before["audit_log"])] == before["audit_log"], where
        return "committed" + (" and finished" if finished else " before the kill")

    def check_outputs(self, chain: Chain, at: str) -> None:
        where = f"seed {SEED}, {chain.name}, killed at {at}"
        complete = [self.base_files] + [self.ref(k).files for k in range(1, chain.committed + 1)]
        for p in chain.out.iterdir():
            if p.name.startswith("."):
                assert p.is_dir() and p.name.startswith(".staging-"), f"{where}: {p.name}"
                continue
            data = p.read_bytes()
            if p.name in COMPARED:
                assert any(data == files.get(p.name) for files in complete), (
                    f"{where}: {p.name} is not one complete version of the file")
            elif p.suffix == ".json":
                assert "run_id" in json.loads(data), where
            elif p.suffix == ".xlsx":
                with zipfile.ZipFile(p) as z:
                    assert z.testzip() is None, where
            elif p.suffix == ".html":
                assert data.rstrip().endswith(b"</html>"), f"{where}: half a report.html"
            else:
                assert any(p.name in files for files in complete), where


@pytest.fixture(scope="module")
def kill_test(tmp_path_factory) -> KillTest:
    return KillTest(tmp_path_factory.mktemp("kill"))


def test_killed_runs_leave_the_database_and_outputs_whole(kill_test) -> None:
    k = kill_test
    rng = random.Random(SEED)
    # kills at random moments after landmarks of a run, so that they hit every phase
    # however fast the machine: start-up, the transaction while loading and matching,
    # while writing outputs and reports (up to the commit), and after the commit while
    # the outputs are renamed into place and the database is checkpointed
    share = {"start": 2, "staging": 5, "staged": 5, "publish": 3}
    delay = {"start": (0.2, k.t_staging), "staging": (0.0, 1.5), "staged": (0.0, 1.5),
             "publish": (0.0, 0.15)}
    points = [(a, rng.uniform(*delay[a])) for a, n in share.items()
              for _ in range(round(n * KILLS / 15))]
    rng.shuffle(points)
    chains = []
    for i in range(CHAINS):
        db, out = k.copy_base(f"chain{i}")
        chains.append(Chain(f"chain {i}", db, out, points[i::CHAINS]))
    with ThreadPoolExecutor(CHAINS) as pool:
        done = list(pool.map(k.run_chain, chains))
    outcomes = [line for c in done for line in c.log]
    print(f"seed {SEED}, run {k.seconds:.1f}s (transaction from {k.t_staging:.1f}s):",
          "; ".join(outcomes))
    assert len(outcomes) == len(points)
    # the kills must have hit the run inside its transaction, not only start-up
    assert any("rolled back" in o and o.startswith("staging") for o in outcomes), outcomes
