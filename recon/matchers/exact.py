"""Exact matcher: the listed fields are equal, dates within a window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from recon.matchers.base import (
    COUNTING,
    EQUAL_FIELDS,
    REF_PAIRS,
    AmountTolerance,
    JoinedMatcher,
    Tables,
    amount_condition_sql,
    bucket_join_sql,
    bucketed_sql,
    date_condition_sql,
    equal_condition_sql,
    keyed_tables,
)


@dataclass(frozen=True, slots=True)
class Exact(JoinedMatcher):
    """Same values in every field of `equal` (reference: a shared reference key)."""

    name: ClassVar[str] = "exact"

    equal: tuple[str, ...] = ("amount", "currency", "reference")

    def __post_init__(self) -> None:
        bad = [f for f in self.equal if f not in EQUAL_FIELDS]
        if bad:
            raise ValueError(f"unknown field {bad[0]!r}; known: {', '.join(EQUAL_FIELDS)}")
        if not self.equal:
            raise ValueError("`equal` needs at least one field")

    def fits_sql(self) -> tuple[str, str]:
        amount = amount_condition_sql(AmountTolerance()) if "amount" in self.equal else "true"
        return amount, date_condition_sql(self.date)

    def _join(self, t: Tables, out: str = "pairs") -> str | None:
        conds = [*equal_condition_sql(self.equal), date_condition_sql(self.date)]
        where = " and ".join(conds)
        left, right = keyed_tables(t, out)
        if self.reads_ref_pairs:
            if out != "pairs":
                return None
            return f"""select p.l, p.r from {REF_PAIRS} p
                join {left} l on l.id = p.l join {right} r on r.id = p.r
                where {where}"""
        if "amount" in self.equal and out not in COUNTING:
            return bucket_join_sql(
                bucketed_sql(left, "amount", neighbours=False),
                bucketed_sql(right, "amount", neighbours=False),
                where,
                out=out,
                levels=t.levels,
            )
        if out != "pairs":
            return None
        return f"select l.id as l, r.id as r from {left} l join {right} r on {where}"
