"""The bank reconciliation statement (bank_reconciliation.csv) on small books whose
lines are known: each case is a defect the statement had, and what it states now."""

from __future__ import annotations

from pathlib import Path

from .conftest import BANK_HEADER, LEDGER_HEADER, RULES, read_rows, write_csv


def statement(cli, tmp: Path, banks: list[Path], ledger: Path, as_of: str,
              db: str = "r.duckdb") -> dict[tuple[str, str, str], str]:
    """`recon run` at `as_of` on database `db` in `tmp`; the statement's amounts by
    (account, currency, line)."""
    out = tmp / f"out-{db}-{as_of}"
    code, _, err = cli("run", "--rules", RULES, "--bank", *banks, "--ledger", ledger,
                       "--db", tmp / db, "--out", out, "--as-of", as_of)
    assert code == 0, err
    return {(r["account"], r["currency"], r["line"]): r["amount"]
            for r in read_rows(out / "bank_reconciliation.csv")}


def test_an_earlier_cut_off_rerun_on_a_later_database_keeps_items_open_then(
        tmp_path, cli) -> None:
    # each pair's second row is dated after 03-31: matched by the 04-05 run
    bank = write_csv(tmp_path / "bank.csv", BANK_HEADER, [
        "B1,2026-04-01,500.00,EUR,Alpha GmbH,DEP-2026-4072,deposit",
        "B2,2026-03-31,-40.00,EUR,Beta AG,PAY-77,payment",
    ])
    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER, [
        "L1,2026-03-31,500.00,EUR,Alpha GmbH,DEP-2026-4072,deposit",
        "L2,2026-04-02,-40.00,EUR,Beta AG,PAY-77,payment",
    ])
    april = statement(cli, tmp_path, [bank], ledger, "2026-04-05")
    assert april[("", "EUR", "unexplained_difference")] == "0.00"
    march = statement(cli, tmp_path, [bank], ledger, "2026-03-31")
    fresh = statement(cli, tmp_path, [bank], ledger, "2026-03-31", db="fresh.duckdb")
    assert march == fresh
    assert march[("", "EUR", "deposits_in_transit")] == "500.00"
    assert march[("", "EUR", "bank_charges_not_booked")] == "-40.00"
    assert march[("", "EUR", "unexplained_difference")] == "0.00"
