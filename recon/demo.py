"""Where the bundled demo data and default rules live (checkout or installed package)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from recon.errors import ReconError


@dataclass(frozen=True, slots=True)
class DemoPaths:
    """Inputs of `recon demo`."""

    rules: Path
    bank: Path
    ledger: Path
    as_of: date | None


def demo_paths() -> DemoPaths:
    """Locate the demo month: the source checkout first, else the installed copy."""
    package = Path(__file__).resolve().parent
    root = package.parent
    candidates = [
        (root / "rules", root / "sample_data" / "demo"),  # a source checkout
        (package / "_rules", package / "_demo"),  # an installed package (pyproject package-dir)
    ]
    for rules, data in candidates:
        if (rules / "default.yaml").is_file() and (data / "bank.csv").is_file():
            as_of_file = data / "AS_OF"
            as_of = (
                date.fromisoformat(as_of_file.read_text().strip()) if as_of_file.is_file() else None
            )
            return DemoPaths(rules / "default.yaml", data / "bank.csv", data / "ledger.csv", as_of)
    raise ReconError("the bundled sample data is missing; reinstall recon")
