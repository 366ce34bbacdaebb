"""Fuzzy matcher: amount and date blocking, then rapidfuzz text similarity over the pairs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from recon.matchers.base import (
    AmountTolerance,
    JoinedMatcher,
    Tables,
    TextField,
    amount_condition_sql,
    band_join_sql,
    check_equal_fields,
    date_condition_sql,
    equal_condition_sql,
)


@dataclass(frozen=True, slots=True)
class Fuzzy(JoinedMatcher):
    """Pairs inside the amount/date block whose text fields reach each `threshold`.

    Candidates come from SQL; the pipeline scores the text fields of all
    pairs in one vectorised rapidfuzz call and drops those below threshold.
    """

    name: ClassVar[str] = "fuzzy"

    equal: tuple[str, ...] = ("currency",)
    amount: AmountTolerance = field(default_factory=AmountTolerance)
    text: tuple[TextField, ...] = (TextField(threshold=85.0),)

    def __post_init__(self) -> None:
        check_equal_fields(self.equal)
        if not self.text:
            raise ValueError("`text` needs at least one field to compare")

    def _join(self, t: Tables, out: str = "pairs") -> str | None:
        extra = [*equal_condition_sql(self.equal), date_condition_sql(self.date)]
        names = any("counterparty" in (f.left, f.right) for f in self.text)
        return band_join_sql(
            t,
            self.amount,
            extra,
            by_reference=self.reads_ref_pairs,
            names="word" if names else "",
            out=out,
        )

    def text_fields(self) -> tuple[TextField, ...]:
        return self.text

    def amount_tolerance(self) -> AmountTolerance:
        return self.amount

    def fits_sql(self) -> tuple[str, str]:
        return amount_condition_sql(self.amount, keyed=False), date_condition_sql(self.date)
