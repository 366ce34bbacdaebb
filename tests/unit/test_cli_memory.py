"""A run that does not fit in memory ends with a clear message and exit 1, no traceback."""

from __future__ import annotations

import duckdb
import pytest

from recon import cli
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
    argv = ["run", "--rules", "r.yaml", "--bank", "b.csv", "--ledger", "l.csv", "--out", "out",
            "--memory-limit", "4GB"]
    code = cli.run_cli(argv)
    err = capsys.readouterr().err
    assert code == 1
    assert 'out of memory within --memory-limit 4GB at stage "receivables aging"' in err
    assert "3.7 GiB/3.7 GiB used" in err
    assert "database is unchanged" in err and "larger --memory-limit" in err
    assert "Traceback" not in err
