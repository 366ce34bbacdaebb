"""A rule builds the pass's reference-pair table (REF_PAIRS) before its join exactly when
its join reads it: every matcher of the default rules, and one of each kind with and
without the reference among its fields (groups: among its blocks)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from recon.config import load_rules
from recon.matchers.base import REF_PAIRS, AmountTolerance, Matcher, Tables
from recon.matchers.exact import Exact
from recon.matchers.fee import Fee
from recon.matchers.fuzzy import Fuzzy
from recon.matchers.fx import Fx
from recon.matchers.group import Group
from recon.matchers.tolerance import Tolerance

ROOT = Path(__file__).resolve().parents[2]
T = Tables(ref_pairs="__recon__ref_pairs_all")
READS = re.compile(rf"\b{REF_PAIRS}\b")  # not __recon__ref_pairs_all


def _builds(m: Matcher) -> bool:
    return any(
        s.lstrip().startswith(f"create or replace temp table {REF_PAIRS} ")
        for s in m.prepare_sql(T)
    )


def _matchers() -> list[Matcher]:
    found: list[Matcher] = []
    for path in sorted((ROOT / "rules").glob("*.yaml")):
        found += [r.matcher for r in load_rules(path).rules]
    tol = AmountTolerance(abs=Decimal(1), pct=Decimal(1))
    found += [
        Exact(equal=("amount", "currency", "reference")),
        Exact(equal=("amount", "currency")),
        Exact(equal=("currency", "reference")),
        Tolerance(equal=("currency", "reference"), amount=tol),
        Tolerance(equal=("currency",), amount=tol),
        Fuzzy(equal=("currency", "reference"), amount=tol),
        Fuzzy(equal=("currency",), amount=tol),
        Fee(equal=("currency", "reference")),
        Fee(equal=("currency",)),
        Fx(),
        Group(block=("reference", "counterparty")),
        Group(block=("counterparty",)),
    ]
    return found


@pytest.mark.parametrize("m", _matchers(), ids=lambda m: repr(m)[:60])
def test_the_reference_pairs_are_built_exactly_for_the_joins_that_read_them(m: Matcher) -> None:
    reads = bool(READS.search(m.candidates_sql(T)))
    assert _builds(m) == reads
    assert m.reads_ref_pairs == reads


def test_the_default_rules_skip_it_where_no_join_reads_it() -> None:
    rules = load_rules(ROOT / "rules" / "default.yaml").rules
    skipped = {r.name for r in rules if not r.matcher.reads_ref_pairs}
    assert {"amount_date", "fuzzy_name", "fee_netted", "fx"} <= skipped
    assert "exact_reference" not in skipped
