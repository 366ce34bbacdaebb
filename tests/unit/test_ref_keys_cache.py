"""Reference keys are stored once per row and rebuilt only when the patterns change."""

from __future__ import annotations

from pathlib import Path

from recon import db as D
from recon.config import load_rules
from recon.loaders.base import LoadResult
from recon.pipeline import _scan_references

from ..conftest import RULES
from ..test_matchers import canonical, frame


def _store(con, side: str, rows: list[tuple]) -> None:
    res = LoadResult(Path(f"{side}.csv"), "csv", canonical(frame(rows), Path(side)))
    D.store_file(con, res, side=side, sha=f"{side}{rows[0][0]}", run_id="R")


def _keys(con) -> set[tuple[str, str]]:
    rows = con.execute(
        "select t.source_id, k.ref from ref_keys k join txns t using (txn_id)"
    ).fetchall()
    return set(rows)


def test_a_night_scans_only_its_new_rows_and_new_patterns_rescan_all(tmp_path: Path) -> None:
    rules = load_rules(RULES)
    con = D.connect(":memory:")
    with D.transaction(con):
        _store(con, "bank", [("B1", "2026-03-05", "100.00", "EUR", "X", "INV-2026-00123")])
        _scan_references(con, rules)
        first = _keys(con)
        assert ("B1", "invoice:2026-123") in first
        # the second night: B1's keys are not extracted (nor stored) again
        _store(con, "ledger", [("L1", "2026-03-01", "100.00", "EUR", "Y", None, "Rechnung 2026-00123")])
        _scan_references(con, rules)
        second = _keys(con)
        assert first < second and ("L1", "invoice:2026-123") in second
        total = con.execute("select count(*) from ref_keys").fetchall()[0][0]
        assert total == len(second)  # no row scanned twice
        _scan_references(con, rules)
        assert con.execute("select count(*) from ref_keys").fetchall()[0][0] == total

        # other patterns (the invoice pattern dropped): every row is scanned again
        text = RULES.read_text(encoding="utf-8")
        start = text.index("    # INV-2026-00123")
        end = text.index("    # document codes")
        changed = tmp_path / "rules.yaml"
        changed.write_text(text[:start] + text[end:], encoding="utf-8")
        _scan_references(con, load_rules(changed))
        third = _keys(con)
        assert not any(ref.startswith("invoice:") for _, ref in third)
        assert ("B1", "ref:INV202600123") in third
