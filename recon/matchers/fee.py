"""Fee matcher: the bank amount is the ledger amount less a fee within a band.

A customer pays 100.00 and the bank credits 97.50 (a 2.50 charge netted);
we pay 100.00 and the bank debits 102.50.  Signed, both read
``bank = ledger - fee`` with ``min <= fee <= max``.  The match carries a
``fee`` discrepancy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import ClassVar

from recon.matchers.base import (
    AmountTolerance,
    JoinedMatcher,
    Tables,
    band_join_sql,
    check_equal_fields,
    date_condition_sql,
    equal_condition_sql,
)


@dataclass(frozen=True, slots=True)
class FeeBand:
    """Smallest and largest fee the bank may net from a payment."""

    min: Decimal = Decimal("0.01")
    max: Decimal = Decimal("25.00")

    def __post_init__(self) -> None:
        if self.min <= 0 or self.max < self.min:
            raise ValueError("fee band needs 0 < min <= max")


@dataclass(frozen=True, slots=True)
class Fee(JoinedMatcher):
    """`bank = ledger - fee` with the fee inside `fee`, dates within `date`."""

    name: ClassVar[str] = "fee"
    difference: ClassVar[str | None] = "fee"

    equal: tuple[str, ...] = ("currency",)
    fee: FeeBand = field(default_factory=FeeBand)

    def __post_init__(self) -> None:
        check_equal_fields(self.equal)

    def _join(self, t: Tables, out: str = "pairs") -> str | None:
        amount, dates = self.fits_sql()
        extra = [*equal_condition_sql(self.equal), dates, amount]
        return band_join_sql(
            t,
            AmountTolerance(abs=self.fee.max),
            extra,
            by_reference=self.reads_ref_pairs,
            out=out,
        )

    def amount_tolerance(self) -> AmountTolerance:
        return AmountTolerance(abs=self.fee.max)

    def fits_sql(self) -> tuple[str, str]:
        # the fee is small next to the payment: at most a quarter of it
        amount = (f"l.amount - r.amount between {-self.fee.max} and {-self.fee.min} "
                  "and abs(l.amount - r.amount) * 4 <= abs(r.amount)")
        return amount, date_condition_sql(self.date)
