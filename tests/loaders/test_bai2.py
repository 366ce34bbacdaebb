"""BAI2 loader: records, continuations, type codes, and every trailer total."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from recon.errors import InputFileError
from recon.loaders.bai2 import Bai2Loader

BANKS = Path(__file__).resolve().parents[1] / "fixtures" / "banks" / "bai2"
FIXTURE = BANKS / "two_accounts.bai2"
CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "bai2"


def load(tmp_path: Path, text: str):
    path = tmp_path / "s.bai2"
    path.write_text(text, encoding="ascii")
    return Bai2Loader().load(path)


def wrap(records: list[str], total: int, count: int) -> str:
    """A one-account file around `records` with correct trailers."""
    body = ["01,SENDER,RECEIVER,260302,0800,1,80,,2/", "02,RECEIVER,SENDER,1,260301,,USD,2/",
            *records, f"49,{total},{count}/", f"98,{total},1,{count + 2}/",
            f"99,{total},1,{count + 4}/"]
    return "\n".join(body) + "\n"


def test_accounts_balances_and_detail_records() -> None:
    result = Bai2Loader().load(FIXTURE)
    rows = result.frame.to_dicts()
    assert [r["amount"] for r in rows] == [Decimal("1000"), Decimal("-250"), Decimal("-10")]
    assert [r["id"] for r in rows][:2] == ["BR-0001", "BR-0002"]  # bank references
    assert [r["line"] for r in rows] == [4, 7, 10]
    credit, check, _ = rows
    assert (credit["counterparty"], credit["reference"]) == ("ACME CORP", "E2E-77")  # 88s
    assert credit["description"].startswith("165 Preauthorized ACH Credit")
    assert check["reference"] == "1042"  # customer reference
    one, two = result.statements
    assert (one.account, one.opening_balance, one.closing_balance, one.transactions) == (
        "4455667788", Decimal("5000.00"), Decimal("5750.00"), 2)
    assert (two.opening_balance, two.closing_balance) == (Decimal("0"), Decimal("-10.00"))
    assert str(one.start_date) == "2026-03-01"


def test_sniff() -> None:
    assert Bai2Loader.sniff(FIXTURE.read_bytes(), Path("x.txt")) == 95
    assert Bai2Loader.sniff(b"id,date,amount\n", Path("x.bai")) == 30  # extension only


def test_control_total_mismatch_is_refused(tmp_path: Path) -> None:
    text = FIXTURE.read_text().replace("49,1200000,6/", "49,1200001,6/")
    with pytest.raises(InputFileError) as err:
        load(tmp_path, text)
    assert err.value.line == 8 and err.value.field == "control total"
    assert "states control total 1200001, the records add up to 1200000" in err.value.message


@pytest.mark.parametrize(("old", "new", "words"), [
    ("98,1200000,2,11/", "98,1200000,3,11/", "number of accounts 3"),
    ("98,1200000,2,11/", "98,1200000,2,12/", "number of records 12"),
    ("99,1200000,1,13/", "99,1200001,1,13/", "control total 1200001"),
])
def test_group_and_file_trailers_are_checked(tmp_path: Path, old: str, new: str,
                                             words: str) -> None:
    with pytest.raises(InputFileError, match=words):
        load(tmp_path, FIXTURE.read_text().replace(old, new))


def test_deleted_continuation_is_caught_by_the_record_count(tmp_path: Path) -> None:
    text = FIXTURE.read_text().replace("88,DBNM: ACME CORP\n", "")
    with pytest.raises(InputFileError, match="number of records 6, the records add up to 5"):
        load(tmp_path, text)


def test_truncated_file_is_refused(tmp_path: Path) -> None:
    text = FIXTURE.read_text()
    with pytest.raises(InputFileError, match=r"without its trailer record \(99\)"):
        load(tmp_path, text[:text.index("49,0,3/")])


@pytest.mark.parametrize(("record", "words"), [
    ("16,165,10O,Z,,,X/", "cannot parse amount '10O'"),
    ("16,999,100,Z,,,X/", "type code '999'"),
    ("17,165,100,Z,,,X/", "unknown record"),
    ("16,165,100,Q,,,X/", "funds type 'Q'"),
])
def test_bad_records_name_their_line(tmp_path: Path, record: str, words: str) -> None:
    text = wrap(["03,111,USD,010,0,,/", record], 100, 3)
    with pytest.raises(InputFileError) as err:
        load(tmp_path, text)
    assert words in err.value.message and err.value.line == 4


def test_impossible_as_of_date(tmp_path: Path) -> None:
    text = wrap(["03,111,USD/"], 0, 2).replace("260301", "260230")
    with pytest.raises(InputFileError, match="impossible date '260230'"):
        load(tmp_path, text)


def test_several_records_per_line_folded_text_and_availability(tmp_path: Path) -> None:
    text = wrap([
        "03,111,,010,+100,,,015,50,,/",
        "16,142,25,S,5,10,10,REF1,,ACH/ 16,451,75,V,260302,,REF2,,DEBIT A",
        "CONTINUED WITHOUT CODE/",
        "16,195,0,D,2,0,0,1,0,REF3,,WIRE/",
    ], 250, 5)
    result = load(tmp_path, text)
    rows = result.frame.to_dicts()
    assert [r["amount"] for r in rows] == [Decimal("0.25"), Decimal("-0.75"), Decimal("0")]
    assert [r["id"] for r in rows] == ["REF1", "REF2", "REF3"]
    assert str(rows[1]["value_date"]) == "2026-03-02"
    assert "DEBIT A CONTINUED WITHOUT CODE" in rows[1]["description"]
    assert result.statements[0].currency == "USD"  # the group's currency
    assert any("several records" in n for n in result.notes)


def test_summary_continuation_and_extra_comma(tmp_path: Path) -> None:
    # 03 summaries spread over 88 records, with the extra ',' some banks write
    text = wrap(["03,111,USD,010,1000,,,/", "88,015,1200,,,/", "16,108,200,Z,,,X/"],
                2400, 4)
    info = load(tmp_path, text).statements[0]
    assert (info.opening_balance, info.closing_balance) == (Decimal("10"), Decimal("12"))


@pytest.mark.parametrize("split", [
    "16,195,100000,Z/|88,BANKREF1,CUSTREF1,INCOMING WIRE FROM ACME/",
    "16,195,100000/|88,Z,BANKREF1/|88,CUSTREF1,INCOMING WIRE FROM ACME/",
    "16,195,100000,D/|88,1,0,100000/|88,BANKREF1,CUSTREF1,INCOMING WIRE FROM ACME/",
])
def test_detail_continued_inside_its_fixed_fields(tmp_path: Path, split: str) -> None:
    # an 88 may continue a 16 before its text: refused as "funds type 'Z/'"
    records = ["03,111,USD,010,0,,/", *split.split("|")]
    one = "16,195,100000,Z,BANKREF1,CUSTREF1,INCOMING WIRE FROM ACME/"
    want = load(tmp_path, wrap(["03,111,USD,010,0,,/", one], 100000, 3)).frame
    got = load(tmp_path, wrap(records, 100000, len(records) + 1)).frame
    assert got.drop("line").equals(want.drop("line"))
    row = got.row(0, named=True)
    assert (row["id"], row["reference"], row["amount"]) == ("BANKREF1", "CUSTREF1",
                                                            Decimal("1000"))
    assert row["description"] == "195 Incoming Money Transfer | INCOMING WIRE FROM ACME"


@pytest.mark.parametrize("path", sorted(CORPUS.glob("*")) if CORPUS.is_dir() else [],
                         ids=lambda p: p.name)
def test_same_detail_records_as_the_bai2_library(path: Path) -> None:
    """Second opinion: where the bai2 library reads a corpus file, amounts agree."""
    bai2 = pytest.importorskip("bai2.bai2")
    try:
        theirs = bai2.parse_from_string(path.read_text(), check_integrity=False)
    except Exception as exc:
        pytest.skip(f"the bai2 library cannot read it: {exc!r}")
    expected = sorted(Decimal(t.amount) / 100 * (1 if t.type_code.transaction.value ==
                                                 "credit" else -1)
                      for g in theirs.children for a in g.children for t in a.children)
    try:
        ours = Bai2Loader().load(path)
    except InputFileError as exc:
        pytest.skip(f"refused on purpose: {exc.message}")
    assert sorted(ours.frame["amount"].to_list()) == expected
