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
    """Pairs `x` and `-x` on one side, same account and currency, within the larger of
    `date.before` and `date.after` days either way."""

    name: ClassVar[str] = "reversal"
    kinds: ClassVar[tuple[str, ...]] = ("reversal",)
    #: a later pass of the run takes the pairs of the pass before (see
    #: recon.pipeline.ReversalCarry): a pair depends on its two rows alone
    incremental: ClassVar[bool] = True

    side: str = "both"
    require_same_name: bool = True

    def __post_init__(self) -> None:
        if self.side not in SIDES:
            raise ValueError(f"side must be one of {', '.join(SIDES)}")

    def sides(self) -> tuple[str, ...]:
        """Which sides to search."""
        return ("left", "right") if self.side == "both" else (self.side,)

    @property
    def reads_ref_pairs(self) -> bool:
        return False  # a reversal pairs rows of one side by amount and name

    def candidates_sql(self, t: Tables) -> str:
        """Pairs (l = the positive row, r = the negative row) of the left table."""
        return self.pairs_sql(t.left)

    def pairs_sql(self, table: str) -> str:
        """(l, r): positive row and the negative row that reverses it, in `table`.

        With `require_same_name`, the two rows have the same name or the same
        reference: two joins, each on its own key, not one join filtered by either.
        A missing name or reference is the same as no other: two rows without a name
        (a cash deposit and a withdrawal of the same sum, days apart) do not cancel
        out.  On amount, account and currency alone, a round sum paired every payment
        in with every payment out of its days (on the open tables of the 5M benchmark's
        fuzzy rule: 1.42 s for both sides, 0.61 s keyed; the 5M run's four passes
        8.0 -> 4.8 s).  At 1M, where few rows share a sum, the two joins cost a little
        more (0.75 -> 0.92 s)."""
        days = max(self.date.before, self.date.after)

        def join(key: str = "true") -> str:
            return f"""select p.id as l, n.id as r
            from {table} p join {table} n
              on n.amount = -p.amount and p.amount > 0
             and coalesce(p.account, '') = coalesce(n.account, '') and p.currency = n.currency
             and abs(date_diff('day', p.date, n.date)) <= {days} and {key}"""

        if not self.require_same_name:
            return join()
        # null keys never join: names are null when empty (recon.names), references
        # may be ''
        return f"""{join("p.name_key = n.name_key")}
            union
            {join("p.reference = n.reference and p.reference <> ''")}"""
