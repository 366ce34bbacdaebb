"""Every bank-format file of ../shared/corpus against what its MANIFEST.csv states.

One test per file.  Checked wherever the manifest states them: transaction count,
opening balance (first statement of the file's first account), closing balance
(last statement of that account), currency, plus the first transaction and the
per-statement balances the notes column records.  Files the notes say must fail
(``expects ... fail/error``, ``TEST: invalid``) agree when they raise
InputFileError; files the notes call ``malformed`` agree either way.

Disagreements that are understood are listed in KNOWN with the reason; they run as
strict xfails, so a change that makes one agree fails until the entry is removed.
``python tests/test_corpus.py`` prints the agreement per format and every reason.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from recon.errors import InputFileError
from recon.inspect import inspect_file
from recon.loaders import load_file

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
MANIFEST = SHARED / "corpus" / "MANIFEST.csv"

FAMILIES = {"ofx": "ofx", "mt940": "mt940", "mt942": "mt940", "camt": "camt053",
            "zip:camt": "camt053", "bai2": "bai2", "csb43": "csb43"}
EXPECT_FAIL = re.compile(r"expects? (import to )?fail|expects failure|expects (a )?"
                         r"(parse|integrity) error|TEST: invalid", re.I)
MALFORMED = re.compile(r"malformed", re.I)

#: Understood disagreements: the manifest counts differently or wants a file loaded
#: that recon refuses on purpose.
KNOWN = {
    "bai2/dnsbty-bai2__test.bai": "refused: trailer record counts (49: 2 for 4 records) "
    "and group/file control totals (98: 12000 for 11000) do not add up",
    "bai2/dnsbty-bai2__test2.bai": "refused: account control total 446000 stated, the "
    "records add up to 604938",
    "bai2/dnsbty-bai2__test3.bai": "refused as truncated: no 49/98/99 trailers",
    "bai2/moov-bai2__sample5-issue113.txt": "refused: account 107049932 states control "
    "total -1260161341762, its records add up to 7999960",
    "bai2/moov-bai2__sample3.txt": "26 transactions, manifest 24: it counted lines, and "
    "two lines carry two 16 records each; the 49 trailers' record counts confirm 26",
    "camt/bank-statement-import__test-camt053.zip": "6 entries, manifest 3: the archive "
    "holds two statements of 3 entries each; the manifest counted the first member",
    "camt/camt__camt052.v6.xml": "0 transactions, manifest 1: the only entry is pending "
    "(Sts PDNG) and pending entries are not loaded",
}


def _family(fmt: str) -> str | None:
    for prefix, family in FAMILIES.items():
        if fmt.startswith(prefix):
            return family
    return None


def _rows() -> list[dict[str, str]]:
    if not MANIFEST.is_file():
        return []
    with MANIFEST.open(encoding="utf-8", newline="") as fh:
        return [r for r in csv.DictReader(fh) if _family(r["format"])]


ROWS = _rows()
PARAMS = [pytest.param(r, id=r["path"], marks=(
    [pytest.mark.xfail(reason=KNOWN[r["path"]], strict=True)] if r["path"] in KNOWN else []))
    for r in ROWS] or [pytest.param(None, id="no-corpus", marks=pytest.mark.skip(
        reason=f"shared corpus not found at {MANIFEST}"))]
RESULTS: Counter[tuple[str, bool]] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report(request: pytest.FixtureRequest) -> Any:
    yield
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin(
        "capturemanager")
    if reporter is None or capture is None or not RESULTS:
        return  # e.g. an xdist worker: run `python tests/test_corpus.py` for the table
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        for line in summary_lines(RESULTS):
            reporter.write_line(line)


@pytest.mark.corpus
@pytest.mark.parametrize("row", PARAMS)
def test_corpus_file(row: dict[str, str]) -> None:
    problems = disagreements(row)
    RESULTS[(_family(row["format"]) or "?", not problems)] += 1
    assert not problems, "\n".join(problems)


def disagreements(row: dict[str, str]) -> list[str]:
    """What differs between the manifest row and what recon reads from the file."""
    path = SHARED / "corpus" / row["path"]
    notes = row["notes"]
    try:
        got = inspect_file(path)
        result = load_file(path, format=got["format"])
    except InputFileError as exc:
        if EXPECT_FAIL.search(notes) or MALFORMED.search(notes):
            return []
        return [f"refused: {exc}"]
    if EXPECT_FAIL.search(notes):
        return ["loaded, but the manifest says this file must fail"]
    if got["format"] != _family(row["format"]):
        return [f"detected as {got['format']}, expected {_family(row['format'])}"]
    return (_count(row, got, result) + _balances(row, got, result) + _currency(row, got)
            + _first(notes, result) + _per_statement(notes, got))


def _count(row: dict[str, str], got: dict[str, Any], result: Any) -> list[str]:
    if not row["expected_txn_count"]:
        return []
    found = got["transactions"]
    if "expands via TxDtls" in row["notes"] and result.details is not None:
        batches = result.details["parent_id"].n_unique()
        found = found - batches + result.details.height
    expected = int(row["expected_txn_count"])
    return [] if found == expected else [f"transactions: expected {expected}, found {found}"]


def _balances(row: dict[str, str], got: dict[str, Any], result: Any) -> list[str]:
    stmts = got["statements"]
    if not stmts:
        return ["no statement"]
    account = stmts[0]["account"]
    chain = [s for s in stmts if s["account"] == account]
    out = []
    opening = chain[0]["opening_balance"]
    if opening is None and chain[0]["closing_balance"] is not None:
        opening = str(_derived_opening(result, 0))  # OFX states no opening balance
    for what, expected, found in (("opening", row["expected_open_balance"], opening),
                                  ("closing", row["expected_close_balance"],
                                   chain[-1]["closing_balance"])):
        if expected and (found is None or Decimal(found) != Decimal(expected)):
            out.append(f"{what} balance: expected {expected}, found {found}")
    return out


def _derived_opening(result: Any, index: int) -> Decimal:
    """Closing minus the statement's own lines (rows come in statement order)."""
    start = sum(s.transactions for s in result.statements[:index])
    info = result.statements[index]
    lines = result.frame.slice(start, info.transactions)["amount"].sum()
    return Decimal(info.closing_balance) - Decimal(lines or 0)


def _currency(row: dict[str, str], got: dict[str, Any]) -> list[str]:
    expected = row["currency"].replace("(default)", "").strip()
    found = got["statements"][0]["currency"] if got["statements"] else None
    if expected and found != expected:
        return [f"currency: expected {expected}, found {found}"]
    return []


def _first(notes: str, result: Any) -> list[str]:
    """`first_txn=-6.60@20090401`, `first_entry=8.85@`, `first16=type409 ...2500c`."""
    m = re.search(r"first_(?:txn|entry)=([-+]?[\d.,]+)@(\d{8})?", notes)
    bai = re.search(r"first16=type(\d{3}) (\d+)c", notes)
    if result.frame.height == 0 or not (m or bai):
        return []
    first = result.frame.row(0, named=True)
    if bai:
        code, amount = int(bai.group(1)), Decimal(bai.group(2)) / 100
        expected = amount if code < 400 else -amount
        day = None
    else:
        expected, day = Decimal(m.group(1).replace(",", ".")), m.group(2)  # type: ignore[union-attr]
    out = []
    if first["amount"] != expected:
        out.append(f"first transaction amount: expected {expected}, found {first['amount']}")
    dates = {d.strftime("%Y%m%d") for d in (first["date"], first["value_date"]) if d}
    if day and day not in dates:
        out.append(f"first transaction date: expected {day}, found {sorted(dates)}")
    return out


def _per_statement(notes: str, got: dict[str, Any]) -> list[str]:
    """`first :60x:=3236.28; last :62x:=1849.75`, `010/015 ledger (cents) open=[...]`."""
    stmts, out = got["statements"], []
    first = re.search(r"first :60x:=([-\d.,]+)", notes)
    last = re.search(r"last :62x:=([-\d.,]+)", notes)
    for m, key, pick in ((first, "opening_balance", 0), (last, "closing_balance", -1)):
        stated = [s[key] for s in stmts if s[key] is not None]  # the first/last tag written
        if m and (not stated or Decimal(stated[pick]) != Decimal(m.group(1).replace(",", "."))):
            out.append(f"{key} of the {'first' if pick == 0 else 'last'} statement: "
                       f"expected {m.group(1)}, found {stated[pick] if stated else None}")
    for code, key in (("open", "opening_balance"), ("close", "closing_balance")):
        ledger = re.search(rf"{code}=\[([^\]]*)\]", notes)
        if ledger and "ledger (cents)" in notes:
            # The manifest lists the first three non-zero 010 / 015 amounts.
            expected = [Decimal(v.strip(" '+")) / 100 for v in ledger.group(1).split(",")
                        if v.strip()]
            found = [Decimal(s[key]) for s in stmts if s[key] is not None and Decimal(s[key])]
            if expected != found[:len(expected)]:
                out.append(f"BAI2 {key}s: expected {expected}, found {found}")
    return out


def summary_lines(results: Counter[tuple[str, bool]]) -> list[str]:
    """'mt940: 33/34 agree' per format."""
    out = []
    for family in sorted({f for f, _ in results}):
        ok, bad = results[(family, True)], results[(family, False)]
        out.append(f"corpus {family}: {ok}/{ok + bad} agree with the manifest")
    return out


if __name__ == "__main__":  # a readable report: python tests/test_corpus.py
    tally: Counter[tuple[str, bool]] = Counter()
    for r in ROWS:
        found = disagreements(r)
        tally[(_family(r["format"]) or "?", not found)] += 1
        if found:
            print(f"DISAGREES {r['path']}: {'; '.join(found)}")
            if r["path"] in KNOWN:
                print(f"          known: {KNOWN[r['path']]}")
    print("\n".join(summary_lines(tally)))
