"""Exact matcher: the listed fields are equal, dates within a window."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from recon.matchers.base import (
    EQUAL_FIELDS,
    REF_PAIRS,
    JoinedMatcher,
    Tables,
    bucket_join_sql,
    bucketed_sql,
    date_condition_sql,
    equal_condition_sql,
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

    def _join(self, t: Tables, out: str = "pairs") -> str | None:
        conds = [*equal_condition_sql(self.equal), date_condition_sql(self.date)]
        where = " and ".join(conds)
        if "reference" in self.equal:
            if out != "pairs":
                return None
            return f"""select p.l, p.r from {REF_PAIRS} p
                join {t.left} l on l.id = p.l join {t.right} r on r.id = p.r
                where {where}"""
        if "amount" in self.equal:
            return bucket_join_sql(
                bucketed_sql(t.left, "amount", neighbours=False),
                bucketed_sql(t.right, "amount", neighbours=False),
                where,
                out=out,
                levels=t.levels,
            )
        if out != "pairs":
            return None
        return f"select l.id as l, r.id as r from {t.left} l join {t.right} r on {where}"
