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


@st.composite
def mt940_exports(
    draw: st.DrawFn, max_lines: int = 10
) -> tuple[list[tuple[str, str, str, str]], list[list[tuple[str, str, str, str]]], bool]:
    """(MT940 lines, exports of them, whether an earlier recon loaded the first export).

    Lines (YYMMDD, sign, amount, :61: reference part) over a quarter: most take their
    customer reference as id ('Rente', 'nota': the account holder's, repeated month
    after month, some equal on one day), others carry the bank's own reference.  Each
    export holds the lines of a run of whole days, as a bank cuts them; they overlap.
    """
    days = draw(st.lists(st.integers(0, 89), min_size=1, max_size=5))
    lines = []
    for i in range(draw(st.integers(1, max_lines))):
        day = date(2026, 1, 1) + timedelta(draw(st.sampled_from(days)))
        ref = draw(st.sampled_from(["Rente", "nota", f"KARTE//B-{i}"]))
        lines.append((day.strftime("%y%m%d"), draw(st.sampled_from("CD")),
                      draw(st.sampled_from(["0,98", "1,23"])), ref))
    lines.sort(key=lambda line: line[0])  # stable: a day's lines in one order in each export
    present = sorted({line[0] for line in lines})
    windows = draw(st.lists(st.tuples(st.sampled_from(present), st.sampled_from(present)),
                            min_size=1, max_size=4))
    exports = [[line for line in lines if min(w) <= line[0] <= max(w)] for w in windows]
    return lines, exports, draw(st.booleans())


#: What a paged statement prints where a page ends: the balance carried, the page's
#: subtotal, and the balance brought forward at the head of the next page.
PAGE_WORDS = [
    ("Balance carried forward", "Sub total", "Balance brought forward"),
    ("c/f", "Page total", "b/f"),
    ("过次页", "本页小计", "承前页"),
    ("转下页", "本页合计", "承上页"),
]
DOC_TYPES = {"invoice": "Invoice", "credit_note": "Credit note", "payment": "Payment",
             "": "Payment"}


def effect(doc_type: str, amount: Decimal) -> Decimal:
    """A statement line's effect on the customer's balance, checked before matching."""
    return abs(amount) if doc_type == "invoice" else -abs(amount) \
        if doc_type == "credit_note" else -amount


@st.composite
def paged_statements(draw: st.DrawFn, max_rows: int = 10
                     ) -> tuple[list[tuple], list[tuple], bool]:
    """(on one page, on pages, whether an opening balance is stated): a customer
    statement's rows (id, date or None, amount, reference, description, doc_type) with
    or without an opening and a closing balance line, and the same statement cut into
    pages: at each cut the balance carried, perhaps the page's subtotal, and the balance
    brought forward (English or Chinese, dated or not); oldest or newest first."""
    n = draw(st.integers(1, max_rows))
    dates = sorted(draw(st.lists(days, min_size=n, max_size=n)))
    opening = draw(st.one_of(st.none(), amounts))
    balance = opening or Decimal(0)
    one, paged = [], []
    if opening is not None:
        one.append(("S0", draw(st.sampled_from([dates[0], None])), opening, "",
                    draw(st.sampled_from(["Balance b/f", "期初余额"])), ""))
    cuts = draw(st.sets(st.integers(1, n - 1))) if n > 1 else set()
    for i, day in enumerate(dates, 1):
        doc, amount = draw(st.sampled_from(sorted(DOC_TYPES))), draw(amounts)
        ref = f"INV-2026-{i:05d}" if doc else ""
        one.append((f"S{i}", day, amount, ref, DOC_TYPES[doc], doc))
        paged.append(one[-1])
        balance += effect(doc, amount)
        if i in cuts:
            carried, subtotal, brought = draw(st.sampled_from(PAGE_WORDS))
            dated = draw(st.lists(st.sampled_from([day, None]), min_size=3, max_size=3))
            paged.append((f"P{i}c", dated[0], balance, "", carried, ""))
            if draw(st.booleans()):
                paged.append((f"P{i}s", dated[1], draw(amounts), "", subtotal, ""))
            paged.append((f"P{i}b", dated[2], balance, "", brought, ""))
    if draw(st.booleans()):
        one.append(("S99", draw(st.sampled_from([dates[-1], None])), balance, "",
                    draw(st.sampled_from(["Closing balance", "期末余额"])), ""))
    paged = one[:1] * (opening is not None) + paged + one[-1:] * (one[-1][0] == "S99")
    if dates[0] < dates[-1] and draw(st.booleans()):  # newest first
        one, paged = one[::-1], paged[::-1]
    return one, paged, opening is not None
