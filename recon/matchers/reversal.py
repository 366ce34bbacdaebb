"""Reversal matcher: a row and its exact opposite on the same side and account.

A bank booking and its storno, a returned transfer the ledger never saw, a
ledger posting and its cancellation: they cancel out and need no partner on
the other side.  Put this rule after the cross-side rules, so that a
reversal the other side also booked is matched there first.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from recon.matchers.base import Matcher, Tables

SIDES = ("left", "right", "both")


@dataclass(frozen=True, slots=True)
class Reversal(Matcher):
    """Pairs `x` and `-x` on one side, same account and currency, within `date.after` days."""

    name: ClassVar[str] = "reversal"
    kinds: ClassVar[tuple[str, ...]] = ("reversal",)

    side: str = "both"
    require_same_name: bool = True

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {', '.join(SIDES)}")

    def sides(self) -> tuple[str, ...]:
        """Which sides to search."""
        return ("left", "right") if self.side == "both" else (self.side,)

    def candidates_sql(self, t: Tables) -> str:
        """Pairs (l = the positive row, r = the negative row) of the left table."""
        return self.pairs_sql(t.left)

    def pairs_sql(self, table: str) -> str:
        """(l, r): positive row and the negative row that reverses it, in `table`."""
        name = (
            "and (coalesce(p.name_key, '') = coalesce(n.name_key, '') "
            "or coalesce(p.reference, '') = coalesce(n.reference, '') and p.reference is not null)"
            if self.require_same_name
            else ""
        )
        days = max(self.date.before, self.date.after)
        return f"""select p.id as l, n.id as r
            from {table} p join {table} n
              on n.amount = -p.amount and p.amount > 0
             and coalesce(p.account, '') = coalesce(n.account, '') and p.currency = n.currency
             and abs(date_diff('day', p.date, n.date)) <= {days} {name}"""
