"""Each matcher on a small month built for it: what it must match, and what it must not."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from recon.config import load_rules
from recon.loaders.base import LoadResult, canonical
from recon.matchers import MATCHERS, Matcher

from .conftest import RULES, reconciled

SCHEMA = {
    "id": pl.String,
    "date": pl.String,
    "amount": pl.String,
    "currency": pl.String,
    "counterparty": pl.String,
    "reference": pl.String,
    "description": pl.String,
    "account": pl.String,
}


def frame(rows: list[tuple]) -> pl.DataFrame:
    rows = [r + (None,) * (8 - len(r)) for r in rows]
    df = pl.DataFrame(rows, schema=SCHEMA, orient="row")
    return df.with_columns(pl.col("date").str.to_date(), pl.col("amount").cast(pl.Decimal(20, 4)))


def reconcile(bank: list[tuple], ledger: list[tuple], rules: Path = RULES) -> dict[tuple, tuple]:
    """{(left ids, right ids): (kind, status, rule, diff_type)} of active matches."""
    con = reconciled(
        [
            (side, LoadResult(Path(f"{side}.csv"), "csv", canonical(frame(rows), Path(side))))
            for side, rows in (("bank", bank), ("ledger", ledger))
        ],
        rules,
    )
    rows = con.execute(
        """select m.match_id, m.kind, m.status, m.rule, m.diff_type,
                  list(t.source_id order by t.source_id) filter (where mm.role = 'left'),
                  list(t.source_id order by t.source_id) filter (where mm.role = 'right')
        from matches m join match_members mm using (match_id) join txns t on t.txn_id = mm.txn_id
        where m.active group by all"""
    ).fetchall()
    con.close()
    return {(tuple(r[5] or ()), tuple(r[6] or ())): (r[1], r[2], r[3], r[4]) for r in rows}


def test_every_matcher_is_registered() -> None:
    def subclasses(cls: type) -> set[type]:
        out = set()
        for sub in cls.__subclasses__():
            out |= {sub} | subclasses(sub)
        return out

    # by name: dataclass(slots=True) leaves the pre-slots class behind as a subclass too
    found = {(c.__module__, c.__qualname__) for c in subclasses(Matcher) if "name" in c.__dict__}
    assert found == {(c.__module__, c.__qualname__) for c in MATCHERS.values()}


def test_exact_reference_meets_every_invoice_format() -> None:
    bank = [
        ("B1", "2026-03-05", "100.00", "EUR", "X", "INV-2026-00123"),
        ("B2", "2026-03-05", "200.00", "EUR", "Y", None, "Zahlung inv 2026/00124 danke"),
        ("B3", "2026-03-05", "300.00", "EUR", "Z", "INV202600125"),
    ]
    ledger = [
        ("L1", "2026-03-01", "100.00", "EUR", "Other", "2026-00123"),
        ("L2", "2026-03-02", "200.00", "EUR", "Other", "INV202600124"),
        ("L3", "2026-03-03", "300.00", "EUR", "Other", None, "Rechnung 2026-00125"),
    ]
    m = reconcile(bank, ledger)
    for b, l in (("B1", "L1"), ("B2", "L2"), ("B3", "L3")):
        assert m[((b,), (l,))][2] == "exact_reference"


@pytest.mark.parametrize(
    ("bank_name", "ledger_name"),
    [
        ("MUELLER GMBH", "Müller GmbH"),
        ("上海华盛贸易有限公司", "华盛贸易（上海）有限公司"),
        ("ＡＣＭＥ　ＴＲＡＤＩＮＧ ＣＯ．， ＬＴＤ．", "Acme Trading Company Limited"),
        ("SOCIETE GENERALE SA", "Société Générale S.A."),
    ],
)
def test_name_variants_break_a_tie_between_look_alikes(bank_name: str, ledger_name: str) -> None:
    bank = [("B1", "2026-03-05", "1000.00", "EUR", bank_name)]
    ledger = [
        ("L1", "2026-03-05", "1000.00", "EUR", ledger_name),
        ("L2", "2026-03-05", "1000.00", "EUR", "Completely Different Corp"),
    ]
    m = reconcile(bank, ledger)
    assert m[(("B1",), ("L1",))][1] == "auto"


def test_fee_netted_matches_with_fee_discrepancy() -> None:
    bank = [
        ("B1", "2026-03-05", "97.50", "EUR", "Kunde AG"),
        ("B2", "2026-03-06", "-1002.50", "EUR", "Lieferant GmbH"),
    ]
    ledger = [
        ("L1", "2026-03-04", "100.00", "EUR", "Kunde AG"),
        ("L2", "2026-03-06", "-1000.00", "EUR", "Lieferant GmbH"),
    ]
    m = reconcile(bank, ledger)
    assert m[(("B1",), ("L1",))][3] == "fee"
    assert m[(("B2",), ("L2",))][3] == "fee"


def test_fx_payment_matches_at_table_rate() -> None:
    bank = [("B1", "2026-03-05", "9250.00", "EUR", "Globex Inc", None, "SWIFT USD 10000")]
    ledger = [("L1", "2026-03-03", "10000.00", "USD", "Globex Inc")]
    m = reconcile(bank, ledger)
    assert m[(("B1",), ("L1",))][3] == "fx"


def test_group_one_to_many_exact_sum_and_ambiguity() -> None:
    bank = [
        ("B1", "2026-03-10", "600.00", "EUR", "Huber AG"),
        ("B2", "2026-03-10", "600.00", "EUR", "Kraus KG"),
    ]
    ledger = [
        ("L1", "2026-03-05", "100.00", "EUR", "Huber AG"),
        ("L2", "2026-03-05", "200.00", "EUR", "Huber AG"),
        ("L3", "2026-03-06", "300.00", "EUR", "Huber AG"),
        ("L4", "2026-03-07", "45.00", "EUR", "Huber AG"),
        # Kraus: 250+350 and 100+500 both make 600: do not guess
        ("K1", "2026-03-05", "250.00", "EUR", "Kraus KG"),
        ("K2", "2026-03-05", "350.00", "EUR", "Kraus KG"),
        ("K3", "2026-03-05", "100.00", "EUR", "Kraus KG"),
        ("K4", "2026-03-05", "500.00", "EUR", "Kraus KG"),
    ]
    m = reconcile(bank, ledger)
    assert m[(("B1",), ("L1", "L2", "L3"))][0] == "one_to_many"
    assert not any(k[0] == ("B2",) for k in m)


def test_instalments_many_to_one() -> None:
    bank = [
        ("B1", "2026-03-02", "400.00", "EUR", "Lee Ltd", None, "RATE 1/3"),
        ("B2", "2026-03-12", "400.00", "EUR", "Lee Ltd", None, "RATE 2/3"),
        ("B3", "2026-03-22", "450.00", "EUR", "Lee Ltd", None, "RATE 3/3"),
    ]
    ledger = [("L1", "2026-03-01", "1250.00", "EUR", "Lee Ltd")]
    m = reconcile(bank, ledger)
    assert m[(("B1", "B2", "B3"), ("L1",))][0] == "many_to_one"


def test_bank_storno_is_paired_as_reversal() -> None:
    bank = [
        ("B1", "2026-03-02", "75.00", "EUR", "Wrong Booking", None, "GUTSCHRIFT", "DE1"),
        ("B2", "2026-03-03", "-75.00", "EUR", "Wrong Booking", None, "STORNO", "DE1"),
    ]
    ledger = [("L1", "2026-03-20", "5.00", "EUR", "Unrelated")]
    m = reconcile(bank, ledger)
    assert m[(("B1", "B2"), ())][0] == "reversal"


def test_ledger_duplicate_matches_once() -> None:
    bank = [("B1", "2026-03-05", "480.00", "EUR", "Nord GmbH", "INV-2026-00777")]
    ledger = [
        ("L1", "2026-03-04", "480.00", "EUR", "Nord GmbH", "INV-2026-00777"),
        ("L2", "2026-03-04", "480.00", "EUR", "Nord GmbH", "INV-2026-00777"),
    ]
    m = reconcile(bank, ledger)
    assert m == {(("B1",), ("L1",)): ("one_to_one", "auto", "exact_reference", None)}


def test_recorded_difference_is_exact_for_auto_suggested_and_fx_matches() -> None:
    """Every one-to-one match records the bank amount less the ledger amount, exactly
    (the ledger amount at the table rate for fx): whether it was accepted at once or
    deferred as a suggestion and accepted after every rule ran."""
    from decimal import ROUND_HALF_UP, Decimal

    from recon.loaders import load_file

    demo = Path(__file__).resolve().parents[1] / "sample_data" / "demo"
    ruleset = load_rules(RULES)
    rates = {(f, t): Decimal(str(r)) for f, t, r in ruleset.fx_rates}
    # foreign-currency payments a little short and late: suggested, not accepted
    extra = {
        "bank": [("XB1", "2026-03-16", "9060.00", "EUR", "Globex Inc"),
                 ("XB2", "2026-03-17", "153.50", "EUR", "Shanghai Huaxin Trading")],
        "ledger": [("XL1", "2026-03-06", "10000.37", "USD", "Globex Inc"),
                   ("XL2", "2026-03-07", "1234.57", "CNY", "Shanghai Huaxin Trading")],
    }
    con = reconciled(
        [
            (side, res)
            for side in ("bank", "ledger")
            for res in (
                load_file(demo / f"{side}.csv"),
                LoadResult(Path(f"x_{side}.csv"), "csv", canonical(frame(extra[side]), Path(side))),
            )
        ]
    )
    rows = con.execute(
        """select m.rule, m.status, m.amount_diff, l.amount, l.currency, r.amount, r.currency
        from matches m
        join match_members ml on ml.match_id = m.match_id and ml.role = 'left'
        join txns l on l.txn_id = ml.txn_id
        join match_members mr on mr.match_id = m.match_id and mr.role = 'right'
        join txns r on r.txn_id = mr.txn_id
        where m.active and m.kind = 'one_to_one'"""
    ).fetchall()
    con.close()
    assert {"fx", "exact_reference"} <= {r[0] for r in rows}
    assert {"auto", "suggested"} <= {r[1] for r in rows}
    assert ("fx", "suggested") in {(r[0], r[1]) for r in rows}
    for rule, status, diff, l_amount, l_cur, r_amount, r_cur in rows:
        right = r_amount * rates.get((r_cur, l_cur), Decimal(1)) if rule == "fx" else r_amount
        expected = (l_amount - right).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        assert diff == expected, (rule, status, l_amount, r_amount)


@pytest.mark.parametrize("field", ["description", "text"])
def test_text_fields_compare_the_rows_own_text(field: str, tmp_path: Path) -> None:
    """A fuzzy rule on a free-text field (the open tables leave counterparty and
    description out; the rule reads them from the stored rows): the look-alike texts
    pair, the unlike ones do not, whatever the names say."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        f"""version: 1
rules:
  - name: by_text
    matcher: fuzzy
    params:
      equal: [currency]
      amount: {{abs: 1.00, pct: 0}}
      date: {{before: 5, after: 5}}
      text:
        - {{left: {field}, right: {field}, scorer: token_set_ratio, threshold: 90}}
    auto_above: 0.5
    suggest_above: 0.5
""",
        encoding="utf-8",
    )

    def row(i: str, day: str, amount: str, words: str, name: str) -> tuple:
        return (i, day, amount, "EUR", name, None, words)

    bank = [
        row("B1", "2026-03-02", "410.00", "harbour crane rental march", "Alpha"),
        row("B2", "2026-03-02", "980.00", "office paper order 7781", "Beta"),
    ]
    ledger = [
        row("L1", "2026-03-03", "410.50", "crane rental harbour march", "Gamma"),
        row("L2", "2026-03-03", "980.00", "consulting hours february", "Beta"),
    ]
    got = reconcile(bank, ledger, rules)
    assert got == {(("B1",), ("L1",)): ("one_to_one", "auto", "by_text", None)}
