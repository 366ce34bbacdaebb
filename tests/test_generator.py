"""The seeded sample-data generator (sample_data/generate.py) and the accuracy scorer.

The generator must be deterministic, write the CONTRACT layouts, and its truth must
name every row exactly once; the scorer must give 100% on perfect predictions and
the right figures on a hand-made wrong one.
"""

from __future__ import annotations

import csv
import re
import xml.etree.ElementTree as ET
from collections import Counter
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import load_module

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "sample_data" / "demo"

# Written out here (not imported) so that the test checks the generator against CONTRACT.md.
BANK_HEADER = ["id", "date", "amount", "currency", "counterparty", "reference", "description",
               "account", "value_date", "iban"]
LEDGER_HEADER = ["id", "date", "amount", "currency", "counterparty", "reference",
                 "description", "account", "due_date", "doc_type", "customer_id"]
TRUTH_HEADER = ["case", "left_ids", "right_ids", "expected", "reason"]
AMOUNT = re.compile(r"^-?[0-9]+\.[0-9]{2}$")


gen = load_module(ROOT / "sample_data" / "generate.py", "recon_sample_generate")
bench = load_module(ROOT / "bench" / "accuracy.py", "recon_bench_accuracy")


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


@pytest.fixture(scope="module")
def hard(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return gen.generate(tmp_path_factory.mktemp("hard"), seed=7, rows=300, mode="hard",
                        ofx=True)


@pytest.fixture(scope="module")
def data(hard: dict[str, Path]) -> dict[str, Any]:
    """bank, ledger and truth rows, with ids -> rows lookups."""
    bank, ledger, truth = (_read(hard[k])[1] for k in ("bank", "ledger", "truth"))
    return {"bank": {r["id"]: r for r in bank}, "ledger": {r["id"]: r for r in ledger},
            "truth": truth}


def _groups(data: dict[str, Any], case: str) -> list[tuple[list[dict[str, str]],
                                                          list[dict[str, str]]]]:
    """(bank rows, ledger rows) of every truth row of `case`."""
    out = []
    for row in data["truth"]:
        if row["case"] == case:
            left = [data["bank"][i] for i in row["left_ids"].split(";") if i]
            right = [data["ledger"][i] for i in row["right_ids"].split(";") if i]
            out.append((left, right))
    return out


def _total(rows: list[dict[str, str]]) -> Decimal:
    return sum((Decimal(r["amount"]) for r in rows), Decimal(0))


def _day(row: dict[str, str], column: str = "date") -> date:
    return date.fromisoformat(row[column])


# --- generator ------------------------------------------------------------------------
def test_same_seed_gives_identical_files(hard: dict[str, Path], tmp_path: Path) -> None:
    again = gen.generate(tmp_path / "again", seed=7, rows=300, mode="hard", ofx=True)
    for key, path in hard.items():
        assert path.read_bytes() == again[key].read_bytes(), f"{key} differs"
    other = gen.generate(tmp_path / "other", seed=8, rows=300, mode="hard")
    assert other["bank"].read_bytes() != hard["bank"].read_bytes()


def test_headers_follow_the_contract(hard: dict[str, Path]) -> None:
    assert _read(hard["bank"])[0] == BANK_HEADER
    assert _read(hard["ledger"])[0] == LEDGER_HEADER
    assert _read(hard["truth"])[0] == TRUTH_HEADER
    assert hard["bank"].read_bytes().decode("utf-8")  # UTF-8, no BOM needed


def test_rows_are_well_formed(data: dict[str, Any]) -> None:
    for side in ("bank", "ledger"):
        for row in data[side].values():
            assert AMOUNT.match(row["amount"]), row
            assert row["currency"] in ("EUR", "USD", "GBP", "CNY"), row
            _day(row)
    for row in data["bank"].values():
        assert _day(row).weekday() < 5, f"bank booking on a weekend: {row}"
        assert _day(row, "value_date").weekday() < 5, row
        assert date(2026, 3, 1) <= _day(row) <= date(2026, 3, 31), row


def test_truth_names_every_row_exactly_once(data: dict[str, Any]) -> None:
    left = Counter(i for r in data["truth"] for i in r["left_ids"].split(";") if i)
    right = Counter(i for r in data["truth"] for i in r["right_ids"].split(";") if i)
    assert set(left) == set(data["bank"]) and max(left.values()) == 1
    assert set(right) == set(data["ledger"]) and max(right.values()) == 1
    for row in data["truth"]:
        assert row["expected"] in ("match", "exception"), row
        if row["expected"] == "exception":  # one item per exception row, with a reason
            assert bool(row["left_ids"]) != bool(row["right_ids"]), row
            assert ";" not in row["left_ids"] + row["right_ids"], row
            assert row["reason"] in ("no_candidate", "duplicate"), row
        elif row["case"] == "bank_error_reversal":  # same-side: the two lines net to zero
            assert ";" in row["left_ids"] and not row["right_ids"], row
        else:
            assert row["left_ids"] and row["right_ids"], row


def test_every_case_appears(data: dict[str, Any], tmp_path: Path) -> None:
    assert {r["case"] for r in data["truth"]} == set(gen.HARD_CASES)
    easy = gen.generate(tmp_path, seed=3, rows=200, mode="easy")
    cases = {r["case"] for r in _read(easy["truth"])[1]}
    assert cases == set(gen.EASY_CASES) == {"exact", "date_lag", "name_variant",
                                            "ref_in_description"}


@pytest.mark.parametrize("case", ["exact", "date_lag", "name_variant", "ref_in_description",
                                  "ref_free_text", "name_variant_intl", "one_to_many",
                                  "batch_deposit", "instalment", "split_payment", "decoy",
                                  "reversal", "duplicate_ledger", "cheque_clearing"])
def test_matches_balance_exactly(data: dict[str, Any], case: str) -> None:
    for left, right in _groups(data, case):
        if left and right:  # duplicate_ledger also has its ledger-only duplicates
            assert _total(left) == _total(right), (case, left, right)


def test_match_kinds(data: dict[str, Any]) -> None:
    kinds = {"one_to_many": (1, 2), "batch_deposit": (1, 3), "instalment": (2, 1),
             "split_payment": (2, 1)}
    for case, (n_left, n_right) in kinds.items():
        for left, right in _groups(data, case):
            assert len(left) >= n_left and len(right) >= n_right, case
            assert (len(left) == 1) != (len(right) == 1), case


def test_discrepancy_cases(data: dict[str, Any]) -> None:
    for left, right in _groups(data, "fee_netted"):
        assert Decimal("0.50") <= _total(right) - _total(left) <= Decimal("25.00")
    for left, right in _groups(data, "short_payment"):
        assert 0 < _total(left) < _total(right)
    for left, right in _groups(data, "over_payment"):
        assert _total(left) > _total(right) > 0
    rates = {"USD": Decimal("0.92"), "GBP": Decimal("1.17"), "CNY": Decimal("0.127")}
    for left, right in _groups(data, "fx"):
        assert left[0]["currency"] == "EUR" != right[0]["currency"]
        rate = _total(left) / _total(right) / rates[right[0]["currency"]]
        assert Decimal("0.979") < rate < Decimal("1.021"), (left, right)


def test_date_cases(data: dict[str, Any]) -> None:
    for left, right in _groups(data, "date_lag"):
        assert 1 <= abs((_day(left[0]) - _day(right[0])).days) <= 3
    for left, right in _groups(data, "exact"):
        assert 0 <= (_day(left[0]) - _day(right[0])).days <= 1
    for left, right in _groups(data, "cheque_clearing"):
        assert 2 <= (_day(left[0]) - _day(right[0])).days <= 10
        assert left[0]["reference"] == right[0]["reference"]  # the cheque number


def test_exception_cases(data: dict[str, Any]) -> None:
    for left, right in _groups(data, "bank_error_reversal"):
        assert len(left) == 2 and not right and _total(left) == 0
    for case in ("bank_fee", "bank_interest", "unknown_receipt"):
        assert all(left and not right for left, right in _groups(data, case))
    for case in ("outstanding_cheque", "deposit_in_transit"):
        assert all(right and not left for left, right in _groups(data, case))
    dup = [r for r in data["truth"] if r["reason"] == "duplicate"]
    originals = {r["reference"] for _, right in _groups(data, "duplicate_ledger")
                 for r in right if r["id"] not in {d["right_ids"] for d in dup}}
    assert dup and all(data["ledger"][d["right_ids"]]["reference"] in originals for d in dup)


def test_ofx_mirrors_the_bank_csv(hard: dict[str, Path], data: dict[str, Any]) -> None:
    root = ET.parse(hard["ofx"]).getroot()
    txns = {t.findtext("FITID"): t for t in root.iter("STMTTRN")}
    assert set(txns) == set(data["bank"])
    for fitid, txn in txns.items():
        assert txn.findtext("TRNAMT") == data["bank"][fitid]["amount"]
        assert txn.findtext("DTPOSTED") == data["bank"][fitid]["date"].replace("-", "")
    for stmt in root.iter("STMTRS"):
        assert stmt.findtext("LEDGERBAL/BALAMT") and stmt.findtext("CURDEF")


def test_demo_set_is_current_and_small(tmp_path: Path) -> None:
    fresh = gen.generate(tmp_path, seed=42, rows=300, mode="hard", ofx=True)
    for path in fresh.values():
        committed = DEMO / path.name
        assert committed.read_bytes() == path.read_bytes(), (
            f"{committed} is stale; regenerate on purpose with: python sample_data/generate.py"
            " --seed 42 --rows 300 --mode hard --ofx --out sample_data/demo")
    assert sum(p.stat().st_size for p in DEMO.iterdir()) < 200_000


# --- scorer ---------------------------------------------------------------------------
MATCH_HEADER = ("match_id,rule,kind,left_ids,right_ids,left_amount,right_amount,amount_diff,"
                "date_diff_days,score,status")
EXCEPTION_HEADER = ("side,id,date,amount,currency,counterparty,reference,description,reason,"
                    "best_candidate_ids,best_score,age_days,decision,match_with,note")


def _write(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _perfect(truth: Path, out: Path) -> tuple[Path, Path]:
    """matches.csv and exceptions.csv exactly as the truth wants them."""
    matches, exceptions = [], []
    for n, row in enumerate(_read(truth)[1]):
        if row["expected"] == "match":
            matches.append(f"m{n},exact,x,{row['left_ids']},{row['right_ids']},,,,,1.0,auto")
        else:
            side, ids = ("left", row["left_ids"]) if row["left_ids"] else ("right",
                                                                           row["right_ids"])
            exceptions.append(f"{side},{ids},,,,,,,{row['reason']},,,,,,")
    return (_write(out / "matches.csv", MATCH_HEADER, matches),
            _write(out / "exceptions.csv", EXCEPTION_HEADER, exceptions))


def test_score_is_perfect_on_the_truth_itself(hard: dict[str, Path], tmp_path: Path) -> None:
    result = bench.score(hard["truth"], *_perfect(hard["truth"], tmp_path))
    o = result["overall"]
    assert o["precision"] == o["recall"] == o["exceptions_kept_rate"] == 1.0
    assert o["auto_wrong"] == o["missed"] == o["lost_ids"] == o["unknown_ids"] == 0
    assert o["exceptions_reason_ok"] == o["exceptions"] > 0
    assert {c["case"] for c in result["cases"]} == set(gen.HARD_CASES)


def test_score_counts_a_hand_made_wrong_prediction(tmp_path: Path) -> None:
    truth = _write(tmp_path / "truth.csv", ",".join(TRUTH_HEADER), [
        "exact,B1,L1,match,", "exact,B2,L2,match,", "one_to_many,B3,L3;L4,match,",
        "decoy,B5,L5,match,", "decoy,B6,L6,match,", "bank_fee,B7,,exception,no_candidate",
        "duplicate_ledger,,L7,exception,duplicate"])
    matches = _write(tmp_path / "matches.csv", MATCH_HEADER, [
        "m1,exact,one_to_one,B1,L1,,,,,1,auto",  # right
        "m2,exact,one_to_one,B2,L7,,,,,1,auto",  # took the duplicate instead of L2
        "m3,many,one_to_many,B3,L4;L3,,,,,0.8,suggested",  # right, ids in another order
        "m4,fuzzy,one_to_one,B5,L6,,,,,0.9,auto",  # decoys swapped
        "m5,fuzzy,one_to_one,B6,L5,,,,,0.7,suggested"])
    exceptions = _write(tmp_path / "exceptions.csv", EXCEPTION_HEADER, [
        "left,B7,,,,,,,no_candidate,,,,,,", "right,L2,,,,,,,no_candidate,,,,,,"])
    result = bench.score(truth, matches, exceptions)
    o = result["overall"]
    assert (o["auto_correct"], o["auto_wrong"], o["suggested_correct"],
            o["suggested_wrong"]) == (1, 2, 1, 1)
    assert o["precision"] == pytest.approx(1 / 3, abs=1e-4)
    assert o["recall"] == pytest.approx(2 / 5) and o["missed"] == 3
    assert (o["exceptions"], o["exceptions_kept"], o["exceptions_reason_ok"]) == (2, 1, 1)
    assert o["lost_ids"] == o["unknown_ids"] == 0
    cases = {c["case"]: c for c in result["cases"]}
    assert (cases["exact"]["precision"], cases["exact"]["recall"]) == (0.5, 0.5)
    assert cases["decoy"]["auto_wrong"] == cases["decoy"]["suggested_wrong"] == 1
    assert cases["decoy"]["missed"] == 2 and cases["decoy"]["recall"] == 0.0
    assert cases["duplicate_ledger"]["auto_wrong"] == 1  # charged to both cases it touched
    assert cases["duplicate_ledger"]["exceptions_kept"] == 0
    assert cases["one_to_many"]["recall"] == 1.0 and cases["one_to_many"]["precision"] is None
    assert "TOTAL" in bench.format_table(result)
    twice = bench.merge([result, result])
    assert twice["overall"]["auto_wrong"] == 4 and twice["overall"]["precision"] == o["precision"]
