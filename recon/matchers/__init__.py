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
from recon.matchers.group import Group
from recon.matchers.tolerance import Tolerance

MATCHERS: dict[str, type[Matcher]] = {m.name: m for m in (Exact, Tolerance, Fuzzy, Group)}

__all__ = [
    "MATCHERS",
    "AmountTolerance",
    "DateWindow",
    "Exact",
    "Fuzzy",
    "Group",
    "Matcher",
    "Tables",
    "TextField",
    "Tolerance",
]
