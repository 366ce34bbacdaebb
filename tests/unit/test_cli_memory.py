"""A run that does not fit in memory ends with a clear message and exit 1, no traceback."""

from __future__ import annotations

import os
from pathlib import Path

import duckdb
import pytest

from recon import cli
from recon.db import connect, size_memory_limit
from recon.errors import ReconError
from recon.progress import start


def _too_big(args: object) -> int:
    start(None, "receivables aging")
    raise duckdb.OutOfMemoryException(
        "Out of Memory Error: could not allocate block of size 256.0 KiB (3.7 GiB/3.7 GiB used)"
    )


def test_out_of_memory_names_the_limit_and_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(cli.COMMANDS, "run", _too_big)
    argv = [
        "run",
        "--rules",
        "r.yaml",
        "--bank",
        "b.csv",
        "--ledger",
        "l.csv",
        "--out",
        "out",
        "--memory-limit",
        "4GB",
    ]
    code = cli.run_cli(argv)
    err = capsys.readouterr().err
    assert code == 1
    assert 'out of memory within --memory-limit 4GB at stage "receivables aging"' in err
    assert "3.7 GiB/3.7 GiB used" in err
    assert "database is unchanged" in err and "larger --memory-limit" in err
    assert "Traceback" not in err


def test_out_of_memory_under_the_default_limit_says_how_it_was_sized(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(cli.COMMANDS, "run", _too_big)
    argv = ["run", "--rules", "r.yaml", "--bank", "b.csv", "--ledger", "l.csv", "--out", "out"]
    assert cli.run_cli(argv) == 1
    err = capsys.readouterr().err
    assert "out of memory within recon's default memory limit (0.4 GiB per million" in err
    assert "larger --memory-limit" in err and "Traceback" not in err


def _limit_gib(con: duckdb.DuckDBPyConnection) -> float:
    """DuckDB's memory limit in GiB, as it shows it: to one decimal."""
    text = con.execute("select current_setting('memory_limit')").fetchall()[0][0]
    value, unit = text.split()
    return float(value) * {"MiB": 1 / 1024, "GiB": 1.0, "TiB": 1024.0}[unit]


def _physical_gib() -> float:
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30


def test_default_memory_limit_grows_with_the_rows(tmp_path: Path) -> None:
    con = connect(tmp_path / "r.duckdb")
    # an empty database: the floor, 0.75 GiB (a machine with less memory: 80% of it)
    assert _limit_gib(con) == pytest.approx(min(0.75, 0.8 * _physical_gib()), abs=0.1)
    # 10 million rows about to be loaded: 0.4 GiB per million
    size_memory_limit(con, 10_000_000)
    assert _limit_gib(con) == pytest.approx(min(4.0, 0.8 * _physical_gib()), abs=0.1)
    # rows stored count as well: 3 million rows held is 1.2 GiB
    con.execute(
        "insert into txns (txn_id, side, source_id, date, amount, currency) "
        "select i, 'bank', 'B' || i, date '2026-01-01', 1, 'EUR' from range(3000000) r(i)"
    )
    size_memory_limit(con)
    assert _limit_gib(con) == pytest.approx(min(1.2, 0.8 * _physical_gib()), abs=0.1)
    con.close()


def test_a_given_memory_limit_is_kept(tmp_path: Path) -> None:
    con = connect(tmp_path / "r.duckdb", memory_limit="2GB")
    assert _limit_gib(con) == pytest.approx(2e9 / 2**30, abs=0.1)
    con.close()


@pytest.mark.parametrize("text", ["0GB", "0.0 MB", "4 GB of RAM"])
def test_a_limit_of_nothing_or_no_size_is_bad_input(tmp_path: Path, text: str) -> None:
    # '0GB' ran until DuckDB ran out of memory: exit 1, read as data too big
    with pytest.raises(ReconError, match="more than zero") as err:
        connect(tmp_path / "r.duckdb", memory_limit=text)
    assert err.value.exit_code == 2
