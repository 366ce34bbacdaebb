"""recon: bank-statement reconciliation batch engine.

Loaders read bank files, customer statements and ledger exports into one
DuckDB database; an ordered YAML rule pipeline matches them; the outputs
are matches, exceptions, discrepancies, a summary and an HTML report.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
