"""Hypothesis strategies: amounts, dates, names and bank/ledger months with overlaps."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from hypothesis import strategies as st

NAMES = [
    "Müller GmbH",
    "MUELLER GMBH",
    "Acme Ltd",
    "ACME LIMITED",
    "上海华盛贸易有限公司",
    "华盛贸易（上海）有限公司",
    "Smith & Co",
    "Dupont SARL",
    "Van Dijk B.V.",
    "Kim Ltd",
]

amounts = (
    st.integers(min_value=-500_000, max_value=500_000)
    .filter(lambda c: c != 0)
    .map(lambda cents: Decimal(cents).scaleb(-2))
)
days = st.integers(min_value=0, max_value=27).map(lambda d: date(2026, 3, 1) + timedelta(d))
names = st.sampled_from(NAMES)
refs = st.one_of(st.none(), st.integers(1, 60).map(lambda n: f"INV-2026-{n:05d}"))


@st.composite
def months(draw: st.DrawFn, max_rows: int = 14) -> tuple[list[tuple], list[tuple]]:
    """(bank rows, ledger rows); many ledger rows are copies of bank rows, shifted a little."""
    n = draw(st.integers(1, max_rows))
    bank, ledger = [], []
    for i in range(n):
        row = (f"B{i}", draw(days), draw(amounts), "EUR", draw(names), draw(refs), "payment")
        bank.append(row)
        kind = draw(st.sampled_from(["same", "lag", "none", "decoy"]))
        if kind == "same":
            ledger.append((f"L{i}", row[1], row[2], "EUR", draw(names), row[5], "receipt"))
        elif kind == "lag":
            d = row[1] - timedelta(days=draw(st.integers(0, 5)))
            ledger.append((f"L{i}", d, row[2], "EUR", row[4], None, "receipt"))
        elif kind == "decoy":
            ledger.append((f"L{i}", row[1], row[2], "EUR", draw(names), None, "receipt"))
            # another description: with all fields equal the two would be one item
            # posted twice (the first is matched, the copy reported as a duplicate)
            ledger.append((f"D{i}", row[1], row[2], "EUR", draw(names), None, "receipt 2"))
    return bank, ledger
