"""Shared fixtures: the ../shared corpus location, small canonical files, a CLI runner."""

from __future__ import annotations

import csv
import importlib.util
import sys
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

# Property tests check behaviour, not speed (bench/ measures speed): hypothesis's
# 200 ms deadline per example failed a DuckDB round trip on a loaded machine.
settings.register_profile("recon", deadline=None)
settings.load_profile("recon")

if TYPE_CHECKING:
    import duckdb

    from recon.loaders.base import LoadResult
    from tests.fixtures.customers.books import Books

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
RULES = ROOT / "rules" / "default.yaml"

BANK_HEADER = "id,date,amount,currency,counterparty,reference,description"
LEDGER_HEADER = "id,date,amount,currency,counterparty,reference,description"


def load_module(path: Path, name: str) -> ModuleType:
    """The script at `path` (sample_data/, bench/: not packages) imported as module `name`."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def dump_tables(path: Path) -> dict[str, list[tuple]]:
    """Every row of every table of the database at `path`, in a stable order."""
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        names = [r[0] for r in con.execute(
            "select table_name from duckdb_tables() where schema_name = 'main' order by 1"
        ).fetchall()]
        return {n: con.execute(f'select * from "{n}" order by all').fetchall() for n in names}
    finally:
        con.close()


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    """Write a small canonical CSV."""
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def write_mt940(path: Path, lines: list[tuple[str, str, str, str]]) -> Path:
    """Write a one-statement MT940 file: (YYMMDD, sign, amount, :61: reference part)
    per line, with the balances they add up to."""
    first, last = lines[0][0], lines[-1][0]
    total = sum((Decimal(a.replace(",", ".")) * (1 if s == "C" else -1)
                 for _, s, a, _ in lines), Decimal("1000.00"))
    body = "".join(f":61:{day}{day[2:]}{s}{a}NMSC{ref}\n:86:Zinsen/Rente\n"
                   for day, s, a, ref in lines)
    path.write_text(f":20:STMT{first}\n:25:DE89370400440532013000\n:28C:1/1\n"
                    f":60F:C{first}EUR1000,00\n{body}"
                    f":62F:C{last}EUR{format(total, 'f').replace('.', ',')}\n-\n",
                    encoding="utf-8")
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    """The rows of a CSV file (an output such as exceptions.csv) as dicts."""
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def write_rows(
    path: Path,
    data: list[dict[str, str]],
    *,
    bom: bool = False,
    crlf: bool = False,
    delimiter: str = ",",
) -> Path:
    """Write dict rows as CSV (header from the first row), e.g. a decisions file for apply."""
    fields = list(data[0].keys())
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as fh:
        w = csv.DictWriter(
            fh, fieldnames=fields, delimiter=delimiter, lineterminator="\r\n" if crlf else "\n"
        )
        w.writeheader()
        w.writerows(data)
    return path


def decide(rows: list[dict[str, str]], **by_id: dict[str, str]) -> list[dict[str, str]]:
    """Fill in the decision columns of the rows whose `id` is a keyword: decide(exc, B3={...})."""
    for r in rows:
        r.update(by_id.get(r["id"], {}))
    return rows


def run_args(bank: Path, ledger: Path, tmp: Path, *extra: str) -> list[str | Path]:
    """`recon run` arguments for one bank and one ledger file, database and out/ in `tmp`."""
    return [
        "run",
        "--rules",
        RULES,
        "--bank",
        bank,
        "--ledger",
        ledger,
        "--db",
        tmp / "r.duckdb",
        "--out",
        tmp / "out",
        "--as-of",
        "2026-03-31",
        *extra,
    ]


def run_books(folder: Path, seed: int, as_of: date) -> tuple[Books, Path]:
    """Generated books (`make_books(seed)`) run through `recon run` (bank pass) in `folder`,
    with the customer master loaded; returns the books and the database."""
    from recon.customers import load_customers
    from recon.db import connect
    from recon.run import Inputs, run
    from tests.fixtures.customers.books import make_books

    books = make_books(seed)
    ledger, bank = books.write(folder)
    db = folder / "recon.duckdb"
    run(RULES, Inputs(bank=[bank], ledger=[ledger]), db_path=db, out_dir=folder / "out",
        as_of=as_of)
    con = connect(db)
    load_customers(con, Path(__file__).parent / "fixtures" / "customers" / "customers.csv")
    con.close()
    return books, db


def reconciled(files: list[tuple[str, LoadResult]], rules: Path = RULES) -> duckdb.DuckDBPyConnection:
    """An in-memory database holding `files` (side, loaded file), stored in that order
    and reconciled by `rules` (the pipeline only: no outputs)."""
    from recon import db as D
    from recon.config import load_rules
    from recon.pipeline import run_pipeline

    con = D.connect(":memory:")
    with D.transaction(con):
        for side, res in files:
            D.store_file(con, res, side=side, sha=f"{side}:{res.path.name}", run_id="R")
        run_pipeline(con, load_rules(rules), "R")
    return con


@pytest.fixture
def corpus() -> Path:
    """The shared corpus; skip (with a message) when ../shared is absent."""
    if not (CORPUS / "MANIFEST.csv").is_file():
        pytest.skip(f"shared corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture
def small_month(tmp_path: Path) -> tuple[Path, Path]:
    """A bank file and a ledger file with obvious matches and leftovers."""
    bank = write_csv(
        tmp_path / "bank.csv",
        BANK_HEADER,
        [
            "B1,2026-03-02,1000.00,EUR,Müller GmbH,INV-2026-00123,SEPA-GUTSCHRIFT",
            "B2,2026-03-03,250.00,EUR,ACME LTD,,TRF FROM ACME LTD",
            "B3,2026-03-03,500.00,EUR,Foo,,x",
            "B4,2026-03-03,500.00,EUR,Foo,,x",
            "B5,2026-03-05,-12.50,EUR,,,BANK FEE",
            "B6,2026-03-09,99.50,EUR,Smith & Co,,payment",
        ],
    )
    ledger = write_csv(
        tmp_path / "ledger.csv",
        LEDGER_HEADER,
        [
            "L1,2026-03-01,1000.00,EUR,Mueller,2026-00123,receipt",
            "L2,2026-03-01,250.00,EUR,Acme Limited,,receipt",
            "L3,2026-03-03,500.00,EUR,Foo,,a",
            "L4,2026-03-03,500.00,EUR,Foo,,b",
            "L5,2026-03-08,100.00,EUR,Smith and Co,,receipt",
            "L6,2026-03-20,77.00,EUR,Nobody,,outstanding",
        ],
    )
    return bank, ledger


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run `recon ARGS` in-process; return (exit code, stdout, stderr)."""
    from recon.cli import run_cli

    def _run(*args: str | Path) -> tuple[int, str, str]:
        code = run_cli([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return _run
