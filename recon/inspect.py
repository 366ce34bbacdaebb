"""`recon inspect FILE --json`: what a file holds, without touching a database.

The first keys are the CONTRACT.md structure; ``profile``, ``encoding``,
``detected_because`` (the loader's notes) and ``integrity`` (statement checks)
follow it.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from recon.db import amount_text
from recon.integrity import check_statements
from recon.loaders import load_file
from recon.loaders.base import StatementInfo


def inspect_file(path: str | Path, *, format: str | None = None,
                 profile: str | None = None) -> dict[str, Any]:
    """Load `path` (format detected unless given) and describe it as JSON-ready data."""
    result = load_file(path, format=format, profile=profile)
    return {
        "file": str(path),
        "format": result.format,
        "transactions": result.frame.height,
        "statements": [_statement(s) for s in result.statements],
        "profile": result.profile,
        "encoding": result.encoding,
        "detected_because": list(result.notes),
        "integrity": [b.as_dict() for b in check_statements([result])],
    }


def _statement(s: StatementInfo) -> dict[str, Any]:
    return {
        "account": s.account,
        "currency": s.currency,
        "opening_balance": decimal_text(s.opening_balance, s.currency),
        "closing_balance": decimal_text(s.closing_balance, s.currency),
        "start_date": _iso(s.start_date),
        "end_date": _iso(s.end_date),
        "transactions": s.transactions,
    }


def decimal_text(value: Decimal | None, currency: str | None = None) -> str | None:
    """`Decimal('2156.5600')` -> `'2156.56'`, no exponent: at least the currency's minor
    units (KWD `'200.250'`, JPY `'20029'`; two for an unknown currency), more only when
    the balance has them (a statement's digits are never rounded away)."""
    return None if value is None else amount_text(value, currency)


def _iso(day: date | None) -> str | None:
    return day.isoformat() if day else None
