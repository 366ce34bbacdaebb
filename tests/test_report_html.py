"""report.html rendered from tests/fixtures/report: figures, escaping, self-containment."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from recon.reports import csvout
from recon.reports.html import (
    ROW_CAP,
    Money,
    age_bucket,
    fmt_amount,
    render_report,
)

from .conftest import BANK_HEADER, LEDGER_HEADER, RULES, read_rows, write_csv

FIXTURES = Path(__file__).parent / "fixtures" / "report"
# Input frames take their column names from recon's CSV outputs (recon/reports/csvout.py).
MATCH_COLUMNS = csvout.MATCH_COLUMNS
EXC_COLUMNS = csvout.EXCEPTION_COLUMNS
DISC_COLUMNS = csvout.DISCREPANCY_COLUMNS


def read(name: str) -> pl.DataFrame:
    return pl.read_csv(FIXTURES / name, infer_schema=False)


def empty(columns: Sequence[str]) -> pl.DataFrame:
    return pl.DataFrame(schema=dict.fromkeys(columns, pl.String))


def fixture_args() -> dict[str, Any]:
    return {
        "summary": json.loads((FIXTURES / "summary.json").read_text(encoding="utf-8")),
        "matches": read("matches.csv"),
        "exceptions": read("exceptions.csv"),
        "discrepancies": read("discrepancies.csv"),
        "bank_reconciliation": read("bank_reconciliation.csv"),
    }


class Figures(HTMLParser):
    """Text of every element carrying data-figure, and the ids of all table rows."""

    def __init__(self) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self._open: list[tuple[str, str, int]] = []  # (figure, tag, depth)
        self._depth = 0
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("br", "meta", "input"):  # void elements in this page
            self.handle_data("\n" if tag == "br" else "")
            return
        self._depth += 1
        self.scripts += tag == "script"
        name = dict(attrs).get("data-figure")
        if name:
            self.figures[name] = ""
            self._open.append((name, tag, self._depth))

    def handle_endtag(self, tag: str) -> None:
        if self._open and self._open[-1][1] == tag and self._open[-1][2] == self._depth:
            self._open.pop()
        self._depth -= 1

    def handle_data(self, data: str) -> None:
        for name, _, _ in self._open:
            self.figures[name] += data


def figures(html: str) -> Figures:
    parser = Figures()
    parser.feed(html)
    return parser


def squash(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def page() -> str:
    return render_report(**fixture_args())


def test_headline_figures(page: str) -> None:
    f = figures(page).figures
    assert f["bank-lines"] == "20"
    assert f["ledger-lines"] == "19"
    assert f["match-rate"] == "69.2%"
    assert f["exceptions"] == "12"
    assert squash(f["auto-suggested"]) == "11 / 2"
    assert f["discrepancies"] == "4"
    # gross open amount per currency, largest first
    assert squash(f["exception-amount"]) == "EUR 29,139.49 USD 12.34 CHF 0.30"


def test_decimal_sums_are_exact(page: str) -> None:
    f = figures(page).figures
    # 0.10 + 0.20 (CHF fees) is 0.30, never 0.30000000000000004
    assert "CHF 0.30" in f["exception-amount"]
    # -2.50 + 1.00 + 0.10 + 0.20
    assert f["discrepancy-total"] == "-1.20"
    assert f["discrepancy-net"] == "-1.20"
    # beyond float precision (2**53 cents), shown to the cent
    assert "90,071,992,547,409.93" in page
    assert "0.30000000000000004" not in page


def test_fmt_amount_and_money() -> None:
    assert fmt_amount(Decimal("1234.5")) == "1,234.50"
    assert fmt_amount(Decimal("-0.1250")) == "-0.125"
    assert fmt_amount(Decimal("100.0000")) == "100.00"
    assert fmt_amount(None) == ""
    money = Money()
    for text in ("0.10", "0.20", "-0.30"):
        money.add("EUR", Decimal(text))
    assert money.lines("net") == ["EUR 0.00"]
    assert money.lines("gross") == ["EUR 0.60"]


def test_amounts_have_their_currency_minor_units() -> None:
    assert fmt_amount(Decimal("7500.00"), "JPY") == "7,500"
    assert fmt_amount(Decimal("7.25"), "KWD") == "7.250"
    assert fmt_amount(Decimal("0"), "KWD") == "0.000"
    assert fmt_amount(Decimal("-0.125"), "EUR") == "-0.125"
    money = Money()
    money.add("JPY", Decimal("-2500"))
    money.add("KWD", Decimal("7.250"))
    assert money.lines("net") == ["JPY -2,500", "KWD 7.250"]
    args = fixture_args()
    exc = args["exceptions"]
    args["exceptions"] = exc.with_columns(
        amount=pl.when(pl.col("id") == "B014").then(pl.lit("7.250")).otherwise("amount"),
        currency=pl.when(pl.col("id") == "B014").then(pl.lit("KWD")).otherwise("currency"))
    brs = args["bank_reconciliation"]
    args["bank_reconciliation"] = pl.concat([brs, brs.head(1).with_columns(
        account=pl.lit("JP1"), currency=pl.lit("JPY"), amount=pl.lit("7500"))])
    args["discrepancies"] = args["discrepancies"].head(1).with_columns(
        left_amount=pl.lit("9500"), right_amount=pl.lit("10000"), difference=pl.lit("-500"))
    html = render_report(**args)
    assert "<td>9,500</td><td>10,000</td><td>-500</td>" in html
    assert "<td>7.250</td><td>KWD</td>" in html
    assert '<td class="num">7,500</td>' in html and "7,500.00" not in html


def test_discrepancies_of_several_currencies_are_not_added_together() -> None:
    rows = {"match_id": ["M1", "M2", "M3"], "type": ["fee", "fee", "short_payment"],
            "left_amount": ["97.50", "9500", "10.000"],
            "right_amount": ["100.00", "10000", "12.500"],
            "difference": ["-2.50", "-500", "-2.500"], "explanation": ["", "", ""],
            "currency": ["EUR", "JPY", "KWD"]}
    disc = pl.DataFrame(rows)
    args = fixture_args() | {"discrepancies": disc}
    f = figures(render_report(**args)).figures
    assert squash(f["discrepancy-net"]) == "JPY -500 EUR -2.50 KWD -2.500"
    assert squash(f["discrepancy-total"]) == "JPY -500 EUR -2.50 KWD -2.500"
    one = disc.head(1).drop("currency")  # a discrepancies.csv of before the column
    f = figures(render_report(**(args | {"discrepancies": one}))).figures
    assert f["discrepancy-net"] == "-2.50"


def test_a_run_s_discrepancies_name_their_currency(tmp_path: Path, cli) -> None:
    bank = write_csv(tmp_path / "bank.csv", BANK_HEADER, [
        "B1,2026-03-10,97.50,EUR,Kiel AG,INV-1,payment", "B2,2026-03-10,9500,JPY,Tokyo KK,INV-2,x"])
    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER, [
        "L1,2026-03-10,100.00,EUR,Kiel AG,INV-1,invoice",
        "L2,2026-03-10,10000,JPY,Tokyo KK,INV-2,invoice"])
    code, _, err = cli("run", "--rules", RULES, "--bank", bank, "--ledger", ledger, "--db",
                       tmp_path / "r.duckdb", "--out", tmp_path / "out", "--as-of", "2026-03-31")
    assert code == 0, err
    rows = read_rows(tmp_path / "out" / "discrepancies.csv")
    assert list(rows[0]) == [*DISC_COLUMNS, "currency"]
    assert {(r["difference"], r["currency"]) for r in rows} == {("-2.50", "EUR"), ("-500", "JPY")}
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert squash(figures(page).figures["discrepancy-net"]) == "JPY -500 EUR -2.50"


@pytest.mark.parametrize(
    ("age", "bucket"),
    [
        (-3, 0),
        (0, 0),
        (7, 0),
        (8, 1),
        (30, 1),
        (31, 2),
        (60, 2),
        (61, 3),
        (90, 3),
        (91, 4),
        (5000, 4),
        (None, None),
    ],
)
def test_age_buckets(age: int | None, bucket: int | None) -> None:
    assert age_bucket(age) == bucket


def test_user_text_is_escaped() -> None:
    args = fixture_args()
    args["summary"]["run_id"] = '"><img src=x onerror=alert(2)>'
    args["exceptions"] = args["exceptions"].with_columns(
        pl.when(pl.col("id") == "B020")
        .then(pl.lit('x" onmouseover="alert(3)'))
        .otherwise(pl.col("reason"))
        .alias("reason")
    )
    html = render_report(**args)
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img" not in html
    assert 'onmouseover="alert' not in html
    assert figures(html).scripts == 1  # ours, and only ours


def test_the_csv_formula_guard_does_not_show() -> None:
    args = fixture_args()
    guarded = {"B014": "'@handle", "B015": "'tis the season", "B016": "'=SUM(A1)"}
    args["exceptions"] = args["exceptions"].with_columns(
        pl.col("id").replace_strict(guarded, default=pl.col("counterparty"))
        .alias("counterparty"))
    html = render_report(**args)
    assert "<td>@handle</td>" in html and "<td>=SUM(A1)</td>" in html
    assert "<td>&#39;tis the season</td>" in html  # the data's own apostrophe stays


def test_no_external_resources(page: str) -> None:
    assert "http://" not in page and "https://" not in page
    external = re.compile(r"""(?:src|href|action|xlink:href)\s*=\s*["']?\s*(?:[a-z]+:)?//""", re.I)
    assert not external.search(page)
    assert "@import" not in page and "url(" not in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in page.replace("&#39;", "'")


def test_sections_present(page: str) -> None:
    for text in (
        "Bank reconciliation statement",
        "Unexplained difference",
        "Integrity breaks",
        "Matching by rule",
        "reference_only",
        "bank_march.csv",
        "Over payment",
        "0–7 days",
        "&gt;90 days",
    ):
        assert text in page, text
    assert page.count('<svg class="chart"') == 4
    rows = re.search(r'id="exceptions-table".*?<tbody>(.*?)</tbody>', page, re.S)
    assert rows and rows.group(1).count("<tr") == 12


def test_empty_run_renders() -> None:
    summary = {
        "run_id": "perfect",
        "counts": {
            "left_total": 3,
            "right_total": 3,
            "left_matched": 3,
            "right_matched": 3,
            "left_exceptions": 0,
            "right_exceptions": 0,
        },
        "by_rule": {"exact": 3},
        "match_rate": 1.0,
    }
    matches = pl.DataFrame({c: [f"{c}{i}" for i in range(3)] for c in MATCH_COLUMNS}).with_columns(
        rule=pl.lit("exact"), status=pl.lit("auto")
    )
    html = render_report(summary, matches, empty(EXC_COLUMNS), empty(DISC_COLUMNS))
    f = figures(html).figures
    assert f["exceptions"] == "0" and f["match-rate"] == "100.0%"
    assert "No exceptions" in html and "No discrepancies" in html
    assert "Bank reconciliation statement" not in html and "None" not in html


def test_nothing_at_all_renders() -> None:
    summary = {"run_id": "r0", "counts": {}, "by_rule": {}, "match_rate": 0.0}
    html = render_report(summary, pl.DataFrame(), pl.DataFrame(), pl.DataFrame(), None)
    assert "No exceptions" in html and "None" not in html


def test_exception_table_is_capped() -> None:
    n = 100_000
    exceptions = pl.DataFrame({c: [""] * n for c in EXC_COLUMNS}).with_columns(
        side=pl.lit("left"),
        id=pl.format("B{}", pl.int_range(n)),
        amount=pl.format("{}.01", pl.int_range(n)),
        currency=pl.lit("EUR"),
        reason=pl.lit("no_candidate"),
        age_days=(pl.int_range(n) % 120).cast(pl.String),
    )
    summary = {
        "run_id": "big",
        "counts": {"left_total": n, "left_exceptions": n},
        "by_rule": {},
        "match_rate": 0.0,
    }
    html = render_report(summary, pl.DataFrame(), exceptions, pl.DataFrame())
    assert len(html) < 2_500_000
    assert f"Showing the {ROW_CAP:,} largest of {n:,} exceptions" in html
    rows = re.search(r'id="exceptions-table".*?<tbody>(.*?)</tbody>', html, re.S)
    assert rows and rows.group(1).count("<tr") == ROW_CAP
    assert ">99,999.01<" in html and ">5.01<" not in html  # the most material are kept
    # sums still cover every row: 0.01 * n + sum(range(n))
    total = Decimal("0.01") * n + sum(range(n))
    assert f"EUR {fmt_amount(total)}" in html


def test_customer_statement_run_names_left_side() -> None:
    args = fixture_args()
    args["summary"]["inputs"][0]["side"] = "statement"
    html = render_report(**args)
    assert "Statement lines" in html and "Bank lines" not in html
    assert "<td>Statement</td>" in html


def test_unknown_age_and_missing_reason() -> None:
    exceptions = pl.DataFrame(
        {
            "side": ["left", "right"],
            "id": ["B1", "L1"],
            "amount": ["5.00", "x"],
            "currency": ["EUR", "EUR"],
            "reason": ["", "no_candidate"],
            "age_days": ["", "12"],
        }
    )
    summary = {"run_id": "r", "counts": {}, "by_rule": {}, "match_rate": 0.0}
    html = render_report(summary, pl.DataFrame(), exceptions, pl.DataFrame())
    assert "age unknown" in html
    assert 'data-reason="(none)"' in html and '<option value="(none)">' in html
    assert ">x<" in html  # an unparseable amount is shown as given, not dropped silently


def test_aging_section_with_chart() -> None:
    import polars as pl

    from recon.reports.html import render_report

    aging = pl.DataFrame({
        "customer": ["C1", "C2"], "not_due": ["100.00", "0.00"], "d1_30": ["0.00", "50.10"],
        "d31_60": ["0.00", "0.00"], "d61_90": ["0.00", "0.00"], "d90_plus": ["0.00", "0.20"],
        "total": ["100.00", "50.30"], "name": ["Acme", "Kim"], "currency": ["EUR", "EUR"],
    })
    empty = pl.DataFrame()
    html = render_report({"counts": {}, "by_rule": {}, "match_rate": 0.0, "run_id": "R"},
                         empty, empty, empty, None, aging)
    assert 'id="aging"' in html and "Receivables aging" in html
    assert "150.30" in html  # the total over customers, exact
    assert html.count("<svg") >= 1


# ---------------------------------------------------------------- column-wise figures
# render_report sums and ranks whole columns with polars; these pin that it reads every
# cell as to_decimal does and adds as Decimal row by row would.

ODD_CELLS = ["", " ", "x", "NaN", "-inf", "1e3", "1E-2", " 5 ", "\t-3.5\n", "1_000", "٣", "１２"]
PLAIN_CELLS = ["0", "-0", "-0.00", "+0.10", ".5", "5.", "007.10", "-.25", "1.2345", "-12345678901234567.89"]


def test_exact_reads_every_cell_as_to_decimal() -> None:
    from recon.reports.html import _exact, to_decimal

    cells = [*ODD_CELLS, *PLAIN_CELLS]
    exact = _exact(pl.Series(cells))
    assert exact is not None
    assert exact.to_list() == [to_decimal(c) for c in cells]


def test_exact_declines_sums_decimal_would_round() -> None:
    from recon.reports.html import _exact

    assert _exact(pl.Series(["0." + "1" * 27])) is not None
    assert _exact(pl.Series(["0." + "1" * 28])) is None  # 29 digits: Decimal rounds to 28
    assert _exact(pl.Series(["1" * 26 + ".00"] * 10)) is None  # a sum could pass 28 digits


def test_wide_amounts_add_up_as_decimal_does() -> None:
    wide = "0." + "3" * 28  # the gross needs 29 digits: Decimal rounds it to 28
    exceptions = pl.DataFrame(
        {"side": ["left"] * 4, "amount": [wide, wide, "1.10", "x"], "currency": ["EUR"] * 4}
    )
    summary = {"run_id": "r", "counts": {}, "by_rule": {}, "match_rate": 0.0}
    html = render_report(summary, pl.DataFrame(), exceptions, pl.DataFrame())
    assert "EUR 1.766666666666666666666666667" in html  # as Money.add row by row sums it


def test_id_counts_skip_blanks_as_str_strip_does() -> None:
    import sys

    from recon.reports.html import _SPACE, _n_ids

    assert set(_SPACE) == {c for c in map(chr, range(sys.maxunicode + 1)) if c.isspace()}
    ids = [None, "", "B1", "B1;B2", " ; B3 ;", "B1;;B2", "\x1c;B4", "\u3000;B5;\u00a0", ";"]
    counted = pl.DataFrame({"ids": ids}, schema={"ids": pl.String}).select(_n_ids("ids"))
    expected = [len([i for i in (t or "").split(";") if i.strip()]) for t in ids]
    assert counted.to_series().to_list() == expected


def test_age_index_matches_age_bucket() -> None:
    from recon.reports.html import AGE_BUCKETS, _age_index, to_decimal

    cells = ["", "x", "-3", "0", "7", "7.9", "8", "30.5", "60.999", "91", "1e2", " 12", "9" * 30]
    expected = []
    for cell in cells:
        value = to_decimal(cell)
        bucket = age_bucket(int(value)) if value is not None else None
        expected.append(len(AGE_BUCKETS) if bucket is None else bucket)
    assert _age_index(pl.Series(cells)).to_list() == expected


def test_capped_table_keeps_the_first_of_equal_amounts() -> None:
    n = ROW_CAP + 10
    exceptions = pl.DataFrame(
        {
            "side": ["left"] * n,
            "id": [f"B{i}" for i in range(n)],
            "amount": ["-5.00" if i % 2 else "5" for i in range(n - 1)] + ["6"],
            "currency": ["EUR"] * n,
        }
    )
    summary = {"run_id": "r", "counts": {}, "by_rule": {}, "match_rate": 0.0}
    html = render_report(summary, pl.DataFrame(), exceptions, pl.DataFrame())
    shown = re.findall(r"<td>(B\d+)</td>", html)
    # heapq.nlargest: largest first, then equal amounts in file order
    assert shown == [f"B{n - 1}", *(f"B{i}" for i in range(ROW_CAP - 1))]
