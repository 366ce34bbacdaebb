"""Real-world CSVs from ../shared/corpus against MANIFEST.csv (skipped when absent).

Bank layouts must be detected by a shipped profile; test files of other
projects that are not a bank's layout load with a user profile from
tests/fixtures/profiles/user.  Where the manifest gives no count, or a count
that is not the file's, the count here was checked by hand and says why.
"""

from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path

import pytest

from recon.loaders.csv import CsvLoader

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CORPUS = SHARED / "corpus"
MANIFEST = CORPUS / "MANIFEST.csv"
USER = Path(__file__).resolve().parents[1] / "fixtures" / "profiles" / "user"

pytestmark = [
    pytest.mark.corpus,
    pytest.mark.skipif(not MANIFEST.is_file(),
                       reason=f"corpus not found: {MANIFEST} (../shared beside the repo root)"),
]

#: file -> shipped profile that detection must choose
DETECTED = {
    "bank-statement-import__paypal_activity_en.csv": "paypal",
    "bank-statement-import__paypal_statement_es.csv": "paypal_es",
    "beancount_reds_importers__Main_Checking_Account_Transactions.csv": "dcu",
    "csv2ofx__ingesp.csv": "ing_es",
    "csv2ofx__n26-fr.csv": "n26",
    "csv2ofx__schwab-checking.csv": "schwab",
    "hledger__csb43.csv": "csb43_csv",
    "hledger__sample.fr.cp1252.csv": "generic_fr",
    "hledger__sample.fr.iso88591.csv": "generic_fr",
    "ofxstatement-austrian__easybank-giro.csv": "easybank",
    "ofxstatement-austrian__ing-diba.csv": "ing_diba_at",
    "ofxstatement-austrian__livebank.csv": "livebank",
    "ofxstatement-austrian__oberbank.csv": "oberbank",
    "ofxstatement-austrian__raiffeisen.csv": "raiffeisen_at",
    "ofxstatement-de-ing__test_with_saldo_1.csv": "ing_de",
    "ofxstatement-de-ing__test_without_saldo_1.csv": "ing_de",
    "ofxstatement-sparkasse-freiburg__simple2.csv": "sparkasse_camt",
}

#: file -> user profile (test layouts of other projects, not a bank's export)
USER_PROFILE = {
    "bank-statement-import__balance.csv": "oca_sheet",
    "bank-statement-import__debit_credit.csv": "oca_debit_credit",
    "bank-statement-import__multi_currency.csv": "oca_sheet",
    "bank-statement-import__sample_statement_en.csv": "oca_sheet",
    "bank-statement-import__sample_statement_credit_card_inverse_sign_en.csv": "oca_credit_card",
    "beancount_reds_importers__semicolon_delimited.csv": "beancount_semicolon",
    "csv2ofx__creditunion.csv": "creditunion",
}

#: file -> (count, why) where the manifest has no count or another one
COUNTED = {
    "bank-statement-import__paypal_activity_en.csv": (76, "manifest blank; 76 data rows"),
    "bank-statement-import__paypal_statement_es.csv": (4, "manifest blank; 4 data rows"),
    "beancount_reds_importers__Main_Checking_Account_Transactions.csv": (10, "manifest blank"),
    "beancount_reds_importers__semicolon_delimited.csv": (2, "manifest blank; 4-line preamble"),
    "hledger__csb43.csv": (2, "manifest blank"),
    "hledger__sample.fr.cp1252.csv": (3, "manifest blank"),
    "hledger__sample.fr.iso88591.csv": (3, "manifest blank"),
    "ofxstatement-austrian__easybank-giro.csv": (10, "manifest blank; headerless"),
    "ofxstatement-austrian__ing-diba.csv": (6, "manifest blank"),
    "ofxstatement-austrian__livebank.csv": (6, "manifest blank"),
    "ofxstatement-austrian__oberbank.csv": (5, "manifest blank"),
    "ofxstatement-austrian__raiffeisen.csv": (7, "manifest blank; headerless"),
    "ofxstatement-de-ing__test_with_saldo_1.csv": (9, "manifest blank; 14-line preamble"),
    "ofxstatement-de-ing__test_without_saldo_1.csv": (6, "manifest blank; 13-line preamble"),
    "ofxstatement-sparkasse-freiburg__simple2.csv": (
        18, "manifest blank; the plugin's expected OFX has 18 lines, the pending one included"),
    "bank-statement-import__multi_currency.csv": (
        2, "manifest 1: OCA imports into a USD journal and keeps the USD line; the file holds "
           "one USD and one EUR row (the USD count is checked against the manifest)"),
    "csv2ofx__creditunion.csv": (
        8, "manifest 9, but the file has 8 rows (INV-1..INV-8) and csv2ofx's converted "
           "creditunion.qif has 8 records; 9 seems to count the QIF's !Account block"),
}


def _entries() -> list[dict[str, str]]:
    if not MANIFEST.is_file():
        return []
    with MANIFEST.open(encoding="utf-8", newline="") as fh:
        return [row for row in csv.DictReader(fh) if row["format"] == "csv"]


ENTRIES = _entries()


def _decimal(text: str) -> Decimal | None:
    return Decimal(text) if text.strip() else None


@pytest.mark.parametrize("entry", ENTRIES, ids=[Path(e["path"]).name for e in ENTRIES])
def test_corpus_csv_count_currency_and_balances(entry):
    path = CORPUS / entry["path"]
    name = path.name
    user = USER_PROFILE.get(name)
    result = CsvLoader().load(path, profile=str(USER / f"{user}.yaml") if user else None)
    if user is None:
        assert result.profile == DETECTED[name], result.notes
    manifest_count = int(entry["expected_txn_count"]) if entry["expected_txn_count"] else None
    expected = COUNTED[name][0] if name in COUNTED else manifest_count
    assert result.frame.height == expected
    stmts = result.statements
    if entry["currency"]:
        currencies = {s.currency: s.transactions for s in stmts}
        assert entry["currency"] in currencies
        if name not in COUNTED:
            assert currencies == {entry["currency"]: expected}
    if name == "bank-statement-import__multi_currency.csv":
        assert {s.currency: s.transactions for s in stmts}["USD"] == manifest_count
    opening, closing = (_decimal(entry["expected_open_balance"]),
                        _decimal(entry["expected_close_balance"]))
    if opening is not None or closing is not None:
        (stmt,) = stmts
        if opening is not None:
            assert stmt.opening_balance == opening
        if closing is not None:
            assert stmt.closing_balance == closing


def test_every_corpus_csv_is_covered():
    names = {Path(e["path"]).name for e in ENTRIES}
    assert names == set(DETECTED) | set(USER_PROFILE)
