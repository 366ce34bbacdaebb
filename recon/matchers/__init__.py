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
from recon.matchers.fee import Fee
from recon.matchers.fuzzy import Fuzzy
from recon.matchers.fx import Fx
from recon.matchers.group import DepositCount, Group
from recon.matchers.reversal import Reversal
from recon.matchers.tolerance import Tolerance

MATCHERS: dict[str, type[Matcher]] = {
    m.name: m for m in (Exact, Tolerance, Fuzzy, Fee, Fx, Group, DepositCount, Reversal)
}

__all__ = [
    "MATCHERS",
    "AmountTolerance",
    "DateWindow",
    "DepositCount",
    "Exact",
    "Fee",
    "Fuzzy",
    "Fx",
    "Group",
    "Matcher",
    "Reversal",
    "Tables",
    "TextField",
    "Tolerance",
]
