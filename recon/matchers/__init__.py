"""Matcher registry: every matcher a rules file may name."""

from __future__ import annotations

from recon.matchers.base import (
    AmountTolerance,
    DateWindow,
    Matcher,
    Tables,
    TextField,
)
from recon.matchers.exact import Exact
from recon.matchers.fuzzy import Fuzzy
from recon.matchers.tolerance import Tolerance

MATCHERS: dict[str, type[Matcher]] = {m.name: m for m in (Exact, Tolerance, Fuzzy)}

__all__ = [
    "MATCHERS",
    "AmountTolerance",
    "DateWindow",
    "Exact",
    "Fuzzy",
    "Matcher",
    "Tables",
    "TextField",
    "Tolerance",
]
