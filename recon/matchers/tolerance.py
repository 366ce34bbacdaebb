"""Tolerance matcher: amounts within an absolute or percentage band, dates within a window."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from recon.matchers.base import (
    AmountTolerance,
    JoinedMatcher,
    Tables,
    amount_condition_sql,
    band_join_sql,
    check_equal_fields,
    date_condition_sql,
    equal_condition_sql,
)


@dataclass(frozen=True, slots=True)
class Tolerance(JoinedMatcher):
    """Amounts within `amount` tolerance, dates within `date`, `equal` fields equal."""

    name: ClassVar[str] = "tolerance"

    equal: tuple[str, ...] = ("currency",)
    amount: AmountTolerance = field(default_factory=AmountTolerance)

    def __post_init__(self) -> None:
        check_equal_fields(self.equal)

    def _join(self, t: Tables, out: str = "pairs") -> str | None:
        extra = [*equal_condition_sql(self.equal), date_condition_sql(self.date)]
        return band_join_sql(
            t, self.amount, extra, by_reference=self.reads_ref_pairs, out=out
        )

    def amount_tolerance(self) -> AmountTolerance:
        return self.amount

    def fits_sql(self) -> tuple[str, str]:
        return amount_condition_sql(self.amount, keyed=False), date_condition_sql(self.date)
