"""report.html in a real headless Chromium: loads cleanly, charts draw, filter and sort work.

Needs the Debian `chromium` package and the `playwright` Python package (its own
browser download is never used). Skipped when either is missing, except on CI
(env CI set), where a missing browser is a failure: CI must prove the page works.
Leaves a screenshot in test-artifacts/report.png.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from recon.reports.csvout import EXCEPTION_COLUMNS
from recon.reports.html import render_report

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures" / "report"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("RECON_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install playwright)"
    if not Path(CHROMIUM).exists():
        return f"no Chromium at {CHROMIUM} (apt-get install chromium)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    reason = _missing()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the browser test: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def read(name: str) -> pl.DataFrame:
    return pl.read_csv(FIXTURES / name, infer_schema=False)


def fixture_report() -> str:
    summary = json.loads((FIXTURES / "summary.json").read_text(encoding="utf-8"))
    return render_report(
        summary,
        read("matches.csv"),
        read("exceptions.csv"),
        read("discrepancies.csv"),
        read("bank_reconciliation.csv"),
    )


class Opened:
    """A page showing one rendered report, with everything the console said."""

    def __init__(self, browser: Any, html: str, path: Path) -> None:
        path.write_text(html, encoding="utf-8")
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on(
            "console",
            lambda m: m.type in ("error", "warning") and self.errors.append(f"{m.type}: {m.text}"),
        )
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.goto(path.as_uri(), wait_until="load")

    def visible_rows(self) -> int:
        return int(self.page.locator("#exceptions-table tbody tr:visible").count())

    def wait_rows(self, n: int) -> None:
        """Wait (through Playwright's own world: the page's CSP forbids eval) for n rows."""
        from playwright.sync_api import expect

        expect(self.page.locator("#exceptions-table tbody tr:visible")).to_have_count(n)

    def column(self, index: int) -> list[str]:
        cells = self.page.locator(f"#exceptions-table tbody tr:visible td:nth-child({index})")
        return [t.strip() for t in cells.all_text_contents()]


@pytest.fixture
def report(browser: Any, tmp_path: Path) -> Iterator[Opened]:
    opened = Opened(browser, fixture_report(), tmp_path / "report.html")
    yield opened
    opened.page.close()


def test_loads_without_errors_or_network(report: Opened) -> None:
    assert report.errors == []
    assert all(url.startswith("file://") for url in report.requests), report.requests
    assert report.page.title().startswith("Reconciliation report")


def test_charts_render(report: Opened) -> None:
    charts = report.page.locator("svg.chart")
    assert charts.count() == 4
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box and box["width"] > 100 and box["height"] > 50, box
    bars = report.page.locator("svg.chart rect.fill")
    widths = [b["width"] for b in (bars.nth(i).bounding_box() for i in range(bars.count())) if b]
    assert sum(w > 1 for w in widths) >= 10
    meter = report.page.locator("svg.meter").first.bounding_box()
    assert meter and meter["width"] > 50


def test_filter_reduces_rows(report: Opened) -> None:
    page = report.page
    assert report.visible_rows() == 12
    page.fill("#exc-filter", "zürich")
    report.wait_rows(2)
    assert report.visible_rows() == 2
    assert page.locator("#exc-count").inner_text() == "2 of 12 rows"
    page.fill("#exc-filter", "")
    report.wait_rows(12)
    page.select_option("#exc-reason", "no_candidate")
    assert report.visible_rows() == 4
    page.select_option("#exc-side", "right")
    assert report.visible_rows() == 2
    assert set(report.column(1)) == {"Ledger"}
    page.select_option("#exc-reason", "")
    page.select_option("#exc-side", "")
    page.fill("#exc-filter", "<script>")  # the escaped payload is plain text in a cell
    report.wait_rows(1)
    assert report.column(2) == ["B015"]
    assert report.errors == []


def test_header_click_sorts(report: Opened) -> None:
    page = report.page
    amount = page.locator("#exceptions-table thead th", has_text="Amount")
    amount.click()
    assert amount.get_attribute("aria-sort") == "ascending"
    values = report.column(4)
    assert values[0] == "-2,400.00" and values[-1] == "15,000.00"
    as_numbers = [float(v.replace(",", "")) for v in values]
    assert as_numbers == sorted(as_numbers)
    amount.click()
    assert amount.get_attribute("aria-sort") == "descending"
    assert report.column(4)[0] == "15,000.00"
    page.locator("#exceptions-table thead th", has_text="Counterparty").click()
    names = report.column(6)
    assert names[0] == "<script>alert(1)</script>" and names[-1] == "Zürich Kantonalbank"
    assert names.index("Becker Logistik AG") < names.index("Bürobedarf Schmidt")
    assert report.errors == []


def test_screenshot_artifact(report: Opened) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    report.page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
    report.page.emulate_media(media="print")
    report.page.screenshot(path=str(ARTIFACTS / "report-print.png"), full_page=True)
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


def test_empty_run_in_browser(browser: Any, tmp_path: Path) -> None:
    summary = {
        "run_id": "perfect",
        "counts": {"left_total": 0, "right_total": 0},
        "by_rule": {},
        "match_rate": 0.0,
    }
    opened = Opened(
        browser,
        render_report(summary, pl.DataFrame(), pl.DataFrame(), pl.DataFrame()),
        tmp_path / "empty.html",
    )
    assert opened.errors == []
    assert opened.page.get_by_text("No exceptions").is_visible()
    opened.page.close()


def test_capped_table_stays_responsive(browser: Any, tmp_path: Path) -> None:
    n = 100_000
    exceptions = pl.DataFrame({c: [""] * n for c in EXCEPTION_COLUMNS}).with_columns(
        side=pl.lit("left"),
        id=pl.format("B{}", pl.int_range(n)),
        amount=pl.format("{}.00", pl.int_range(n)),
        currency=pl.lit("EUR"),
        counterparty=pl.format("Customer K{}", pl.int_range(n) % 1000),
        reason=pl.lit("no_candidate"),
        age_days=pl.lit("3"),
    )
    summary = {
        "run_id": "big",
        "counts": {"left_total": n, "left_exceptions": n},
        "by_rule": {},
        "match_rate": 0.0,
    }
    opened = Opened(
        browser,
        render_report(summary, pl.DataFrame(), exceptions, pl.DataFrame()),
        tmp_path / "big.html",
    )
    assert opened.visible_rows() == 5_000
    started = time.monotonic()
    opened.page.fill("#exc-filter", "k999")  # ids 95999 ... 99999: the 5,000 largest kept
    opened.wait_rows(5)
    assert time.monotonic() - started < 5
    assert opened.errors == []
    opened.page.close()
