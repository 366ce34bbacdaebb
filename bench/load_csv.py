"""Benchmark: load a 1M-row canonical CSV with CsvLoader and print the time.

Usage: python bench/load_csv.py [ROWS] [--keep PATH]
Not a test: the figure depends on the machine (target: well under 2 s on 2 cores).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from recon.loaders.csv import CsvLoader


def write_canonical(path: Path, rows: int, seed: int = 7) -> None:
    """Write `rows` random canonical bank rows (vectorised; ~1 s for 1M rows)."""
    rng = np.random.default_rng(seed)
    cents = rng.integers(-500_000, 500_000, rows)
    days = rng.integers(0, 365, rows)
    frame = pl.DataFrame({
        "id": pl.int_range(0, rows, eager=True).cast(pl.String).str.pad_start(9, "0"),
        "date": pl.Series(days + 20_089).cast(pl.Date),  # 2025-01-01 + 0..364 days
        "amount": pl.Series(cents).cast(pl.Decimal(20, 2)) / 100,
        "currency": pl.Series(rng.choice(["EUR", "USD", "GBP"], rows)),
        "counterparty": pl.Series(rng.choice(["ACME GmbH", "Müller & Söhne", "Globex, Inc."],
                                             rows)),
        "reference": pl.Series(rng.integers(10_000, 99_999, rows)).cast(pl.String),
        "description": pl.Series(rng.choice(["Invoice payment", "SEPA transfer \"urgent\"",
                                             "Card purchase"], rows)),
    }).with_columns(("B" + pl.col("id")).alias("id"), ("INV-" + pl.col("reference"))
                    .alias("reference"))
    frame.select(pl.all()).write_csv(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rows", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="write the CSV here and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "canonical.csv"
        t0 = time.perf_counter()
        write_canonical(path, args.rows)
        size = path.stat().st_size / 1e6
        print(f"wrote {args.rows:,} rows ({size:.0f} MB) in {time.perf_counter() - t0:.2f} s")
        CsvLoader().load(path)  # warm-up: imports, profile YAML parsing
        best, cpu = float("inf"), float("inf")
        for _ in range(3):
            t0, c0 = time.perf_counter(), time.process_time()
            result = CsvLoader().load(path)
            best = min(best, time.perf_counter() - t0)
            cpu = min(cpu, time.process_time() - c0)
        print(f"loaded {result.frame.height:,} rows: best of 3 = {best:.2f} s wall, "
              f"{cpu:.2f} s CPU over all threads ({args.rows / best / 1e6:.2f} M rows/s)")


if __name__ == "__main__":
    main()
