"""The deposit_count rule: a bank line depositing cheques that states how many, and our
ledger's deposit lines that make it (rules/default.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from recon.config import load_rules
from recon.errors import RulesError

from .conftest import BANK_HEADER, LEDGER_HEADER, RULES, read_rows, write_csv

LEDGER = f"{LEDGER_HEADER},doc_type"


def _cheques(amounts: list[str], day: str = "2026-03-09") -> list[str]:
    return [f"C{i},{day},{a},EUR,Customer {i},INV-2026-0{i:04d},Cheque received,deposit"
            for i, a in enumerate(amounts, start=1)]


def _run(cli, tmp: Path, bank: list[str], ledger: list[str]) -> tuple[dict[str, tuple[str, str]],
                                                                     dict[str, str]]:
    """{bank ids: (ledger ids, status)} of the matches, {id: reason} of the exceptions."""
    out = tmp / "out"
    code, _, err = cli("run", "--rules", RULES,
                       "--bank", write_csv(tmp / "bank.csv", BANK_HEADER, bank),
                       "--ledger", write_csv(tmp / "ledger.csv", LEDGER, ledger),
                       "--db", tmp / "r.duckdb", "--out", out, "--as-of", "2026-03-31")
    assert code == 0, err
    matches = {m["left_ids"]: (m["right_ids"], m["status"], m["rule"])
               for m in read_rows(out / "matches.csv")}
    return matches, {e["id"]: e["reason"] for e in read_rows(out / "exceptions.csv")}


def test_the_cheques_a_deposit_states_are_found_among_the_days_deposits(tmp_path, cli) -> None:
    # 5 cheques of 117.30 + 48.00 + 1210.55 + 86.15 + 402.00 = 1864.00; two more deposits
    # of the days before are on another slip (in transit)
    ledger = _cheques(["117.30", "48.00", "1210.55", "86.15", "402.00", "930.10", "77.77"])
    bank = ["B1,2026-03-11,1864.00,EUR,,,REMISE DE CHEQUES N 4873 5 CHQ"]
    matches, exceptions = _run(cli, tmp_path, bank, ledger)
    assert matches == {"B1": ("C1;C2;C3;C4;C5", "auto", "deposit_count")}
    assert exceptions == {"C6": "no_candidate", "C7": "no_candidate"}


def test_twelve_of_fourteen_cheques_are_found_by_the_two_left_out(tmp_path, cli) -> None:
    amounts = ["449.19", "234.49", "717.54", "986.00", "360.19", "1176.30", "738.45",
               "351.81", "483.15", "610.00", "1128.15", "643.43", "2269.23", "509.70"]
    stated = sum(float(a) for i, a in enumerate(amounts) if i not in (6, 12))
    bank = [f"B1,2026-03-11,{stated:.2f},EUR,,,EINZAHLUNG SCHECKS BELEG 0017 12 STK"]
    matches, exceptions = _run(cli, tmp_path, bank, _cheques(amounts))
    twelve = ";".join(sorted(f"C{i}" for i in range(1, 15) if i not in (7, 13)))
    assert matches == {"B1": (twelve, "auto", "deposit_count")}
    assert set(exceptions) == {"C7", "C13"}


def test_a_deposit_is_only_the_number_of_cheques_it_states(tmp_path, cli) -> None:
    # 100 + 200 + 300 make 600, but the bank line says 4 cheques
    ledger = _cheques(["100.00", "200.00", "300.00", "55.00"])
    bank = ["B1,2026-03-11,600.00,EUR,,,BATCH DEPOSIT SLIP 2389 4 ITEMS"]
    matches, exceptions = _run(cli, tmp_path, bank, ledger)
    assert matches == {}
    assert exceptions["B1"] == "no_candidate"


def test_two_sets_of_the_stated_count_summing_alike_are_not_guessed(tmp_path, cli) -> None:
    # 100 + 250 + 300 and 150 + 200 + 300 both make 650 in 3 cheques
    ledger = _cheques(["100.00", "250.00", "300.00", "150.00", "200.00"])
    bank = ["B1,2026-03-11,650.00,EUR,,,REMISE DE CHEQUES N 12 3 CHQ"]
    matches, exceptions = _run(cli, tmp_path, bank, ledger)
    assert matches == {}
    assert exceptions["B1"] == "ambiguous"


def test_a_window_with_more_deposits_than_a_block_holds_is_not_searched(tmp_path, cli) -> None:
    # 31 deposit lines in the window (max_block 30): the 3 that make the deposit are
    # not looked for among them
    ledger = _cheques(["10.00", "20.00", "30.00"] + [f"{1000 + i}.00" for i in range(28)])
    bank = ["B1,2026-03-11,60.00,EUR,,,REMISE DE CHEQUES N 12 3 CHQ"]
    matches, _ = _run(cli, tmp_path, bank, ledger)
    assert "B1" not in matches
    (tmp_path / "fewer").mkdir()
    matches, _ = _run(cli, tmp_path / "fewer", bank, ledger[:30])
    assert matches == {"B1": ("C1;C2;C3", "auto", "deposit_count")}


def test_our_own_cheques_paid_out_do_not_crowd_the_window(tmp_path, cli) -> None:
    # 40 cheques we wrote (money out) in the window: the deposit's 3 are still found
    ledger = _cheques(["10.00", "20.00", "30.00"]) + [
        f"P{i},2026-03-09,-{100 + i}.00,EUR,Supplier {i},CHQ {i:06d},Cheque paid,cheque"
        for i in range(40)]
    bank = ["B1,2026-03-11,60.00,EUR,,,REMISE DE CHEQUES N 12 3 CHQ"]
    matches, _ = _run(cli, tmp_path, bank, ledger)
    assert matches["B1"] == ("C1;C2;C3", "auto", "deposit_count")


@pytest.mark.parametrize(("params", "message"), [
    ("direction: many_to_one", "direction must be one_to_many"),
    ("block: [counterparty]", "block is always the date window"),
    ("items: '\\d+ CHQ'", "items must have one group"),
    ("items: '(\\d+'", "items: not a regular expression"),
    ("items: '(?=[0-9])(\\d+) CHQ'", "items: not a regular expression"),  # not RE2's
])
def test_bad_deposit_count_params_are_refused(tmp_path, params, message) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"version: 1\nrules:\n  - name: d\n    matcher: deposit_count\n"
                     f"    params:\n      {params}\n", encoding="utf-8")
    with pytest.raises(RulesError) as err:
        load_rules(rules)
    assert message in str(err.value)
