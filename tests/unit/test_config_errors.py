"""Rules validation: every problem reported with its key path, line and the choices."""

from __future__ import annotations

from pathlib import Path

import pytest

from recon.config import load_rules
from recon.errors import RulesError

from ..conftest import RULES

CASES = [
    (
        "rules:\n  - matcher: fuzzy_names\n",
        [
            "rules[0].matcher (line 2): unknown matcher 'fuzzy_names'; did you mean 'fuzzy'?",
            "(known: deposit_count, exact, fee, fuzzy, fx, group, reversal, tolerance)",
        ],
    ),
    (
        "rules:\n  - matcher: tolerance\n    params:\n      date: {before: 3d}\n",
        ["rules[0].params.date.before (line 4): expected an integer, got '3d'"],
    ),
    (
        "rules:\n  - matcher: tolerance\n    params:\n      amout: {abs: 1}\n",
        ["rules[0].params.amout (line 4): unknown parameter 'amout'; did you mean 'amount'?"],
    ),
    (
        "rules:\n  - matcher: exact\n    params: {equal: [amount, colour]}\n",
        ["rules[0].params (line 3): unknown field 'colour'"],
    ),
    (
        "rules:\n  - matcher: fuzzy\n    params:\n      text: [{scorer: magic}]\n",
        ["unknown scorer 'magic'", "token_set_ratio"],
    ),
    (
        "rules:\n  - matcher: exact\n    auto_above: 1.5\n",
        ["rules[0].auto_above (line 3): expected a score between 0 and 1, got 1.5"],
    ),
    (
        "rulez: []\n",
        ["unknown key 'rulez'; did you mean 'rules'?", "rules: expected a non-empty list"],
    ),
    ("rules: [\n", ["not valid YAML"]),
    (
        "rules:\n  - matcher: tolerance\n    params:\n      amount: {abs: '1,5'}\n",
        ["rules[0].params.amount.abs (line 4): expected a number like 0.50, got '1,5'"],
    ),
    (
        "references:\n  patterns:\n    - {name: inv, regex: '(unclosed'}\nrules:\n  - matcher: exact\n",
        ["references.patterns[0] (line 3): invalid regex"],
    ),
    (
        "settings:\n  date_lag_days: 5.5\nrules:\n  - matcher: exact\n",
        ["settings.date_lag_days (line 2): expected an integer, got 5.5"],
    ),
    (
        "settings:\n  diagnostic_days: -45\nrules:\n  - matcher: exact\n",
        ["settings.diagnostic_days (line 2): expected a non-negative number of days, got -45"],
    ),
    (
        "rules:\n  - matcher: exact\n    auto_above: 0.9\n    auto_above: 0.2\n",
        ["rules[0].auto_above (line 4): given twice (first on line 3); keep one"],
    ),
    (
        "settings:\n  weights: {amount: .nan}\nrules:\n  - matcher: exact\n",
        ["settings.weights.amount (line 2): expected a number, got nan"],
    ),
    (
        "aging:\n  buckets: [true, 60, 90]\nrules:\n  - matcher: exact\n",
        ["aging.buckets (line 2): expected a list of positive day counts, got [True, 60, 90]"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_bad_rules_name_file_line_and_choices(
    tmp_path: Path, text: str, expected: list[str]
) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(RulesError) as info:
        load_rules(path)
    message = str(info.value)
    assert message.startswith(str(path))
    for part in expected:
        assert part in message


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "rules:\n  - matcher: nope\n  - matcher: tolerance\n    params: {date: {after: -1}}\n"
    )
    with pytest.raises(RulesError) as info:
        load_rules(path)
    assert "2 problems" in str(info.value)


def test_default_rules_load() -> None:
    rules = load_rules(RULES)
    assert [r.name for r in rules.rules][:2] == ["exact_reference", "amount_date"]
    assert {r.matcher.name for r in rules.rules} == {
        "exact", "tolerance", "fuzzy", "fee", "fx", "group", "deposit_count", "reversal"}
    assert {p.name for p in rules.references} >= {"invoice", "cheque"}


def test_yaml_on_and_no_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text("rules:\n  - matcher: exact\n    name: no\n")
    assert load_rules(path).rules[0].name == "no"
