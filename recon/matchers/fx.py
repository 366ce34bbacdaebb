"""FX matcher: bank and ledger in different currencies, agreeing at a known rate.

Rates come from the rules file (``settings.fx_rates``: ``USD/EUR: 0.92``
means one USD is 0.92 EUR; the inverse is derived).  The ledger amount is
converted to the bank's currency and must agree within ``pct`` percent (the
day's rate and the bank's spread differ from the table).  The match carries
an ``fx`` discrepancy stating the rate applied.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar

from recon.matchers.base import (
    DAY_SQL,
    AmountTolerance,
    JoinedMatcher,
    Tables,
    bucket_join_sql,
    bucketed_sql,
    date_condition_sql,
    keyed_tables,
    log_bucket_sql,
    tolerance_sql,
)

RATES = "__recon__fx"


@dataclass(frozen=True, slots=True)
class Fx(JoinedMatcher):
    """Different currencies; the converted ledger amount within `pct` percent of the bank's."""

    name: ClassVar[str] = "fx"
    difference: ClassVar[str | None] = "fx"

    pct: Decimal = Decimal("3")

    def __post_init__(self) -> None:
        if not 0 < self.pct < 50:
            raise ValueError("pct must be between 0 and 50")

    def _join(self, t: Tables, out: str = "pairs") -> str:
        # `conv` exact, for the tolerance; its bucket from the product of doubles: the
        # exact product is a 38-digit decimal, and turning ~750k of them into doubles
        # for the logarithm took three quarters of a night pass's count of the bounds
        converted = f"""(select r0.*, r0.amount * fx.rate as conv, fx.to_cur,
                   r0.amount::double * fx.rate::double as conv_d
            from {t.right} r0 join {RATES} fx on fx.from_cur = r0.currency)"""
        # the sign of `conv` and the difference it allows once per right row (see
        # keyed_sql), and only for the rows of the buckets the left rows reach, where
        # the join pairs rows
        tol = tolerance_sql(self.amount_tolerance(), "conv")
        late = f", sign(conv) as conv_sg, {tol} as tol, {DAY_SQL} as dn"
        where = f"""l.currency = r.to_cur and l.currency <> r.currency
         and l.sg = r.conv_sg
         and abs(l.amount - r.conv) <= r.tol
         and {date_condition_sql(self.date)}"""
        left, _ = keyed_tables(t, out)
        return bucket_join_sql(
            # the touched rows spread the right rows' buckets instead (see _touched_sql)
            bucketed_sql(left, log_bucket_sql("amount", self.pct), neighbours=out != "touched"),
            bucketed_sql(converted, log_bucket_sql("conv_d", self.pct), neighbours=False),
            where,
            right_cur="to_cur",
            out=out,
            levels=t.levels,
            counts=t.counts,
            late=late,
            same_cur=True,  # `where` pairs a bank row with rows converted into its currency
        )

    def right_amount_sql(self, r: str = "r", l: str = "l") -> str:
        return (
            f"({r}.amount * coalesce((select rate from {RATES} "
            f"where from_cur = {r}.currency and to_cur = {l}.currency), 1))"
        )

    def amount_tolerance(self) -> AmountTolerance:
        return AmountTolerance(pct=self.pct)
