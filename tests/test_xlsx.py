"""matches.xlsx as written by recon.reports.xlsx, read back the way `recon apply` reads it."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import openpyxl
import polars as pl
import pytest

from recon.decisions import read_decisions
from recon.reports import xlsx
from recon.reports.xlsx import MONEY_FORMAT, write_workbook

FORMULA = '=HYPERLINK("http://x","click")'
SUMMARY = {
    "run_id": "R1",
    "as_of": None,
    "finished_at": "2026-03-31T10:00:00+00:00",
    "match_rate": 0.5,
    "counts": {"left_total": 2},
    "by_rule": {"exact_reference": 1},
    "exceptions_by_reason": {"no_candidate": 1},
}


def _exceptions() -> pl.DataFrame:
    rows = {
        "side": ["left", "left", "right"],
        "id": ["B1", "'-B2", "L3"],  # the CSV writer's guard on a leading minus
        "amount": ["-1234.50", "7.00", ""],
        "counterparty": [FORMULA, "@SUM(A1)", None],
        "description": ["<r><t>x</t></r>", "\tTAB", "plain"],
        "reason": ["low_similarity", "ambiguous", "no_candidate"],
        "best_score": ["0.5353", "1", None],
        "age_days": ["12", "3", "0"],
        "line": ["8", "n/a", "1_000"],
        "decision": [None, None, "write_off"],
    }
    return pl.DataFrame(rows, schema=dict.fromkeys(rows, pl.String))


@pytest.fixture(params=["one_chunk", "chunks_of_2"])
def workbook(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    if request.param == "chunks_of_2":  # rows are turned into cells a slice at a time
        monkeypatch.setattr(xlsx, "_CHUNK", 2)
    path = tmp_path / "matches.xlsx"
    empty = pl.DataFrame(schema={"match_id": pl.String, "left_amount": pl.String})
    write_workbook(path, {"exceptions": _exceptions(), "matches": empty}, SUMMARY)
    return path


def test_sheets_layout_and_header(workbook: Path) -> None:
    assert stat.S_IMODE(workbook.stat().st_mode) == 0o600
    assert [p.name for p in workbook.parent.iterdir()] == ["matches.xlsx"]  # no temporary left
    wb = openpyxl.load_workbook(workbook)
    assert wb.sheetnames == ["summary", "exceptions", "matches"]
    ws = wb["exceptions"]
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == "A1:J4"
    head = ws["A1"]
    assert [c.value for c in ws[1]] == list(_exceptions().columns)
    assert head.font.b and head.font.color.rgb.endswith("FFFFFF")
    assert head.fill.fill_type == "solid" and head.fill.fgColor.rgb.endswith("1F4E79")
    widths = {i: d.width for d in ws.column_dimensions.values() for i in range(d.min, d.max + 1)}
    assert widths[1] == 10  # at least 10
    assert widths[4] == len(FORMULA) + 1  # the longest value, plus one
    assert widths[7] == len("best_score") + 2  # the header, plus two
    empty = wb["matches"]
    assert empty.freeze_panes == "A2" and empty.auto_filter.ref is None
    assert [c.value for c in empty[1]] == ["match_id", "left_amount"]
    summary = wb["summary"]
    rows = [tuple(c.value for c in r) for r in summary.iter_rows()]
    assert rows[:4] == [
        ("run_id", "R1"),
        ("as_of", None),
        ("finished_at", "2026-03-31T10:00:00+00:00"),
        ("match_rate", 0.5),
    ]
    assert rows[4:] == [
        ("left_total", 2),
        ("rule exact_reference", 1),
        ("exceptions: no_candidate", 1),
    ]
    widths = {
        i: d.width for d in summary.column_dimensions.values() for i in range(d.min, d.max + 1)
    }
    assert widths == {1: 28, 2: 60}


def test_cells_are_typed_and_text_is_never_a_formula(workbook: Path) -> None:
    with zipfile.ZipFile(workbook) as z:
        for name in z.namelist():
            if name.startswith("xl/worksheets/"):
                xml = z.read(name).decode("utf-8")
                assert "<f>" not in xml and "<f " not in xml and 't="str"' not in xml
    ws = openpyxl.load_workbook(workbook)["exceptions"]
    header = [c.value for c in ws[1]]
    rows = [dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=2)]
    b1, b2, l3 = rows
    # text: as is, formula-looking or not; the CSV's guarding apostrophe is dropped
    assert (b1["counterparty"].value, b1["counterparty"].data_type) == (FORMULA, "s")
    assert (b2["counterparty"].value, b2["counterparty"].data_type) == ("@SUM(A1)", "s")
    assert (b2["id"].value, b2["id"].data_type) == ("-B2", "s")
    assert b2["description"].value == "\tTAB"
    assert (b1["description"].value, b1["description"].data_type) == ("<r><t>x</t></r>", "s")
    # money: a float with the red-negative format
    assert b1["amount"].value == -1234.5 and isinstance(b1["amount"].value, float)
    assert b1["amount"].number_format == MONEY_FORMAT
    assert b2["amount"].value == 7 and b2["amount"].number_format == MONEY_FORMAT
    # other numbers: ints when integral, else floats
    assert b1["best_score"].value == 0.5353 and isinstance(b1["best_score"].value, float)
    assert b2["best_score"].value == 1 and isinstance(b2["best_score"].value, int)
    assert b1["age_days"].value == 12 and isinstance(b1["age_days"].value, int)
    assert b1["age_days"].number_format == "General"
    # a numeric column's value that is no number stays text; Decimal's reading decides
    assert (b2["line"].value, b2["line"].data_type) == ("n/a", "s")
    assert l3["line"].value == 1000
    # empty string and None: blank
    assert l3["amount"].value is None and l3["counterparty"].value is None
    assert l3["best_score"].value is None and b1["decision"].value is None


@pytest.mark.parametrize("chunk", [16_384, 2])
def test_amounts_show_their_currency_minor_units(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(xlsx, "_CHUNK", chunk)
    mixed = {"amount": ["1000", "-3.125", "12.50", "", "1_000.500", "n/a"],
             "currency": ["JPY", "KWD", "EUR", "EUR", "KWD", "EUR"]}
    jpy = {"left_amount": ["-2500", "10000"], "amount_diff": ["0", "0"]}
    path = tmp_path / "matches.xlsx"
    write_workbook(path, {"exceptions": pl.DataFrame(mixed), "matches": pl.DataFrame(jpy)},
                   SUMMARY)
    wb = openpyxl.load_workbook(path)
    cells = [(c.value, c.number_format) for (c,) in wb["exceptions"].iter_rows(
        min_row=2, max_col=1)]
    assert cells == [
        (1000, "#,##0;[Red]-#,##0"), (-3.125, "#,##0.000;[Red]-#,##0.000"),
        (12.5, MONEY_FORMAT), (None, "General"), (1000.5, "#,##0.000;[Red]-#,##0.000"),
        ("n/a", "General")]
    for row in wb["matches"].iter_rows(min_row=2):
        assert [c.number_format for c in row] == ["#,##0;[Red]-#,##0"] * 2


def test_only_the_csv_guard_apostrophe_is_dropped(tmp_path: Path) -> None:
    text = ["'=SUM(A1)", "'tis the season", "'Quoted Name'", "'\tTAB", "'-B2", "''@x"]
    path = tmp_path / "matches.xlsx"
    write_workbook(path, {"exceptions": pl.DataFrame({"description": text})}, SUMMARY)
    ws = openpyxl.load_workbook(path)["exceptions"]
    assert [c.value for (c,) in ws.iter_rows(min_row=2)] == [
        "=SUM(A1)", "'tis the season", "'Quoted Name'", "\tTAB", "-B2", "''@x"]


def test_recon_apply_reads_the_workbook(workbook: Path) -> None:
    tables = read_decisions(workbook)
    [(where, kind, [row])] = tables
    assert "exceptions" in where and kind == "exceptions"
    assert row.decision == "write_off"
    assert row.values["id"] == "L3" and row.values["line"] == "1000"


def test_a_failed_write_leaves_the_old_workbook(tmp_path: Path) -> None:
    path = tmp_path / "matches.xlsx"
    path.write_bytes(b"old")
    with pytest.raises(Exception, match=r"(?i)sheet"):
        write_workbook(path, {"bad/name": _exceptions()}, SUMMARY)  # no "/" in a sheet name
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["matches.xlsx"]


def test_a_big_night_keeps_only_matches_to_review_in_the_workbook(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Above REVIEW_ONLY_ABOVE rows the matches sheet drops auto matches (they stay in
    matches.csv) and summary.json says how many were left out."""
    import json

    from recon import run as run_module

    monkeypatch.setattr(run_module, "REVIEW_ONLY_ABOVE", 10)
    out = tmp_path / "out"
    code, _, _ = cli("demo", "--out", out)
    assert code == 0
    csv_statuses = pl.read_csv(out / "matches.csv", infer_schema=False)["status"].to_list()
    sheet = openpyxl.load_workbook(out / "matches.xlsx", read_only=True)["matches"]
    rows = list(sheet.iter_rows(values_only=True))
    status = rows[0].index("status")
    in_sheet = [r[status] for r in rows[1:]]
    assert "auto" not in in_sheet
    assert len(in_sheet) == sum(s != "auto" for s in csv_statuses)
    note = json.loads((out / "summary.json").read_text())["xlsx"]
    assert f"the {csv_statuses.count('auto')} auto matches are in matches.csv" in note
