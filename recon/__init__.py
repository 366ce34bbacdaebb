"""recon: bank-statement reconciliation batch engine.

Loaders read bank files, customer statements and ledger exports into one
DuckDB database; an ordered YAML rule pipeline matches them; the outputs
are matches, exceptions, discrepancies, a summary and an HTML report.
"""

from __future__ import annotations

import os

# polars allocates with jemalloc, which hands freed pages back to the system only
# when the thread that freed them allocates again: after a big file was parsed and
# stored, the gigabytes it no longer used stayed in the process.  A background
# thread returns them within a second; at 1M rows the run takes as long.  polars
# reads this when first imported (so only if recon is imported first) and adds it
# to its own settings; a value the user set is kept.
os.environ.setdefault(
    "_RJEM_MALLOC_CONF", "background_thread:true,muzzy_decay_ms:0"
)

__version__ = "0.1.0"

__all__ = ["__version__"]
