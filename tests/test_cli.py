"""The command line end to end: outputs, exit codes, idempotence, all-or-nothing loads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from .conftest import (
    BANK_HEADER,
    LEDGER_HEADER,
    ROOT,
    RULES,
    read_rows,
    run_args,
    write_csv,
    write_mt940,
)

DEMO = ROOT / "sample_data" / "demo"
MATCH_HEADER = (
    "match_id,rule,kind,left_ids,right_ids,left_amount,right_amount,amount_diff,"
    "date_diff_days,score,status"
)
EXC_HEADER = (
    "side,id,date,amount,currency,counterparty,reference,description,reason,"
    "best_candidate_ids,best_score,age_days,decision,match_with,note"
)


def table_counts(db: Path) -> dict[str, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = [
            r[0] for r in con.execute("select table_name from information_schema.tables").fetchall()
        ]
        return {n: con.execute(f'select count(*) from "{n}"').fetchall()[0][0] for n in names}
    finally:
        con.close()


def _db_files(folder: Path) -> list[str]:
    """The database's files in `folder`: the file, its .wal, its lock file."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("r.duckdb"))


def test_run_writes_contract_outputs(tmp_path, small_month, cli) -> None:
    code, _out, err = cli(*run_args(*small_month, tmp_path))
    assert code == 0, err
    o = tmp_path / "out"
    assert (o / "matches.csv").read_text().splitlines()[0].startswith(MATCH_HEADER)
    assert (o / "exceptions.csv").read_text().splitlines()[0].startswith(EXC_HEADER)
    assert (
        (o / "discrepancies.csv")
        .read_text()
        .startswith("match_id,type,left_amount,right_amount,difference,explanation")
    )
    assert "<html" in (o / "report.html").read_text().lower()
    summary = json.loads((o / "summary.json").read_text())
    for key in ("run_id", "started_at", "finished_at", "inputs", "counts", "by_rule", "match_rate"):
        assert key in summary
    assert summary["counts"]["left_total"] == 6
    assert all(len(i["sha256"]) == 64 for i in summary["inputs"])
    matches = {(m["left_ids"], m["right_ids"]): m for m in read_rows(o / "matches.csv")}
    assert matches[("B1", "L1")]["status"] == "auto"  # shared invoice reference, name variant
    assert matches[("B2", "L2")]["status"] == "auto"  # ACME LTD = Acme Limited
    exc = {(e["side"], e["id"]): e for e in read_rows(o / "exceptions.csv")}
    # two identical 500.00 pairs: never a coin flip
    assert exc[("left", "B3")]["reason"] == "ambiguous"
    assert exc[("left", "B3")]["best_candidate_ids"] == "L3;L4"
    assert exc[("left", "B5")]["reason"] == "no_candidate"
    assert summary["counts"]["left_matched"] + summary["counts"]["left_exceptions"] == 6


def test_loading_twice_changes_nothing(tmp_path, small_month, cli) -> None:
    assert cli(*run_args(*small_month, tmp_path))[0] == 0
    before = table_counts(tmp_path / "r.duckdb")
    first = {f: (tmp_path / "out" / f).read_bytes() for f in ("matches.csv", "exceptions.csv")}
    assert cli(*run_args(*small_month, tmp_path))[0] == 0
    after = table_counts(tmp_path / "r.duckdb")
    assert {k: v for k, v in after.items() if k not in ("runs", "audit_log", "run_exceptions")} == {
        k: v for k, v in before.items() if k not in ("runs", "audit_log", "run_exceptions")
    }
    for f, data in first.items():
        assert (tmp_path / "out" / f).read_bytes() == data


def test_a_file_given_twice_in_one_command_is_loaded_once(tmp_path, small_month, cli) -> None:
    """The second time is skipped as a later run skips it: no second row of files with
    the same bytes, no second load in the audit log."""
    bank, ledger = small_month
    twice = tmp_path / "bank copy.csv"
    twice.write_bytes(bank.read_bytes())
    args = run_args(bank, ledger, tmp_path)
    at = args.index(bank) + 1
    assert cli(*args[:at], bank, twice, *args[at:])[0] == 0
    counts = table_counts(tmp_path / "r.duckdb")
    assert counts["files"] == 2 and counts["txns"] == 6 + 6
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [i["new_rows"] for i in summary["inputs"]] == [6, 0, 0, 6]
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    loads = con.execute("select count(*) from audit_log where action = 'load'").fetchall()
    con.close()
    assert loads == [(2,)]


def test_an_output_a_rerun_does_not_write_is_not_left_behind(
    tmp_path, small_month, cli, monkeypatch
) -> None:
    """A matches.xlsx of the night before stayed beside a summary saying it was not
    written (the night grew past the workbook's limit), looking current."""
    import recon.run

    assert cli(*run_args(*small_month, tmp_path))[0] == 0
    out = tmp_path / "out"
    assert (out / "matches.xlsx").is_file()
    (out / "notes.txt").write_text("the reviewer's own file")
    monkeypatch.setattr(recon.run, "MAX_XLSX_ROWS", 1)
    assert cli(*run_args(*small_month, tmp_path))[0] == 0
    assert json.loads((out / "summary.json").read_text())["xlsx"].startswith("not written")
    assert not (out / "matches.xlsx").exists()
    assert (out / "notes.txt").read_text() == "the reviewer's own file"


def test_overlapping_export_stores_each_row_once(tmp_path, small_month, cli) -> None:
    bank, ledger = small_month
    assert cli(*run_args(bank, ledger, tmp_path))[0] == 0
    overlap = write_csv(
        tmp_path / "bank2.csv",
        BANK_HEADER,
        [
            "B6,2026-03-09,99.50,EUR,Smith & Co,,payment",
            "B7,2026-03-10,42.00,EUR,New Co,,new line",
        ],
    )
    assert cli(*run_args(overlap, ledger, tmp_path))[0] == 0
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    assert con.execute("select count(*) from txns where side = 'bank'").fetchall()[0][0] == 7
    con.close()


def test_an_id_reused_for_another_transaction_is_refused_not_dropped(
    tmp_path, small_month, cli
) -> None:
    """A later file's row with a stored id (same account) but another date or amount is
    a second transaction under that id: the run stops with exit 2 naming both files'
    lines, and stores nothing, where the row was skipped as already loaded and lost
    (MT940 ids from customer references repeat month after month)."""
    bank, ledger = small_month
    assert cli(*run_args(bank, ledger, tmp_path))[0] == 0
    before = table_counts(tmp_path / "r.duckdb")
    reused = write_csv(
        tmp_path / "april.csv",
        BANK_HEADER,
        [
            "B9,2026-04-01,42.00,EUR,New Co,,new line",
            "B5,2026-04-05,-12.50,EUR,,,BANK FEE",
        ],
    )
    code, _, err = cli(*run_args(reused, ledger, tmp_path))
    assert code == 2 and "Traceback" not in err
    assert "april.csv line 3 (id): id 'B5' (2026-04-05, -12.50" in err
    assert "from bank.csv line 6, with another date or amount (2026-03-05" in err
    after = table_counts(tmp_path / "r.duckdb")
    assert after["txns"] == before["txns"] and after["files"] == before["files"]


def test_bank_given_twice_loads_both_files(tmp_path, small_month, cli) -> None:
    """`--bank a.csv --bank b.csv` is `--bank a.csv b.csv`: the second does not drop the
    first (which argparse's plain nargs did, silently)."""
    bank, ledger = small_month
    more = write_csv(
        tmp_path / "bank2.csv", BANK_HEADER, ["B7,2026-03-10,42.00,EUR,New Co,,new line"]
    )
    code, _, err = cli("run", "--rules", RULES, "--bank", bank, "--bank", more,
                       "--ledger", ledger, "--db", tmp_path / "r.duckdb", "--out", tmp_path / "out")
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert [Path(f["file"]).name for f in summary["inputs"]] == [
        "bank.csv", "bank2.csv", "ledger.csv"
    ]
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    assert con.execute("select count(*) from txns where side = 'bank'").fetchall()[0][0] == 7
    con.close()


def test_bad_amount_on_line_57_exits_2_and_loads_nothing(tmp_path, small_month, cli) -> None:
    bank, ledger = small_month
    assert cli(*run_args(bank, ledger, tmp_path))[0] == 0
    before = table_counts(tmp_path / "r.duckdb")
    rows = [f"X{i},2026-03-{1 + i % 28:02d},{i}.00,EUR,Cust {i},,row {i}" for i in range(2, 57)]
    rows.append('X57,2026-03-05,"1.234,5O",EUR,Bad,,bad amount')  # line 57
    rows += [f"X{i},2026-03-05,{i}.00,EUR,Cust {i},,row {i}" for i in range(58, 70)]
    bad = write_csv(tmp_path / "bad.csv", BANK_HEADER, rows)
    code, _, err = cli(*run_args(bad, ledger, tmp_path))
    assert code == 2
    assert "bad.csv" in err and "line 57" in err
    assert "Traceback" not in err
    assert table_counts(tmp_path / "r.duckdb") == before


def test_two_bad_files_report_the_first_and_a_good_file_before_a_bad_one_is_not_kept(
        tmp_path, cli) -> None:
    # files are parsed and stored one at a time, in input order: the bank file's error
    bad_bank = write_csv(tmp_path / "bad_bank.csv", BANK_HEADER,
                         ['X1,2026-03-05,"1.234,5O",EUR,Bad,,bad amount'])
    bad_ledger = write_csv(tmp_path / "bad_ledger.csv", BANK_HEADER,
                           ["L1,2026-03-05,12.00,EUR,Bad,,x", "L2,2026-13-45,1.00,EUR,Bad,,x"])
    for _ in range(3):
        code, _, err = cli(*run_args(bad_bank, bad_ledger, tmp_path))
        assert code == 2 and "Traceback" not in err
        assert "bad_bank.csv" in err and "bad_ledger.csv" not in err
    # a good bank file: the ledger's error
    code, _, err = cli(*run_args(write_csv(tmp_path / "ok.csv", BANK_HEADER,
                                           ["X1,2026-03-05,1.00,EUR,A,,x"]), bad_ledger, tmp_path))
    assert code == 2 and "bad_ledger.csv" in err and "line 3" in err
    # the good bank file was stored before the ledger was read: the rollback undid it,
    # and the database the run created is gone with it
    assert _db_files(tmp_path) == []


def test_bad_rules_exit_2(tmp_path, small_month, cli) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - matcher: exakt\n")
    code, _, err = cli(
        "run",
        "--rules",
        rules,
        "--bank",
        small_month[0],
        "--ledger",
        small_month[1],
        "--db",
        tmp_path / "r.duckdb",
        "--out",
        tmp_path / "o",
    )
    assert code == 2
    assert "line 2" in err and "did you mean 'exact'" in err
    assert _db_files(tmp_path) == []


def test_json_logs_give_the_error_as_one_json_object(tmp_path, small_month, cli) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - matcher: exakt\n")
    args = run_args(*small_month, tmp_path)
    args[args.index("--rules") + 1] = rules
    code, _, err = cli("--log-format", "json", *args)
    assert code == 2
    records = [json.loads(line) for line in err.splitlines()]  # every line is JSON
    assert [(r["level"], r["exit_code"]) for r in records] == [("error", 2)]
    assert str(rules) in records[0]["msg"] and "line 2" in records[0]["msg"]


def test_missing_file_and_usage_errors_exit_2(tmp_path, cli) -> None:
    code, _, err = cli(
        "run",
        "--rules",
        RULES,
        "--bank",
        tmp_path / "nope.csv",
        "--ledger",
        tmp_path / "nope2.csv",
        "--db",
        tmp_path / "r.duckdb",
        "--out",
        tmp_path / "o",
    )
    assert code == 2 and "nope.csv" in err
    assert _db_files(tmp_path) == []
    assert cli("run")[0] == 2
    assert cli("frobnicate")[0] == 2


def test_out_or_db_under_a_file_exits_2_before_loading(tmp_path, small_month, cli) -> None:
    blocker = tmp_path / "report"
    blocker.write_text("not a directory")
    args = run_args(*small_month, tmp_path)
    out_at = args.index("--out") + 1
    code, _, err = cli(*args[:out_at], blocker, *args[out_at + 1:])
    assert code == 2 and f"--out {blocker}: {blocker} is a file, not a directory" in err
    assert "Traceback" not in err and not (tmp_path / "r.duckdb").exists()
    db_at = args.index("--db") + 1
    code, _, err = cli(*args[:db_at], blocker / "r.duckdb", *args[db_at + 1:])
    assert code == 2 and f"{blocker} is a file, not a directory" in err
    code, _, err = cli("demo", "--out", blocker)
    assert code == 2 and f"--out {blocker}: {blocker} is a file" in err


def test_out_in_a_read_only_directory_exits_2_before_loading(
    tmp_path, small_month, cli, monkeypatch
) -> None:
    """A PermissionError traceback (exit 1) after the whole load and match, before."""
    import os

    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    # root writes in a 0o555 directory: what the test stands for is one it may not
    # (an immutable or read-only mounted one), as os.access says
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: Path(p) != locked and real(p, mode))
    args = run_args(*small_month, tmp_path)
    at = args.index("--out") + 1
    code, _, err = cli(*args[:at], locked / "out", *args[at + 1:])
    assert code == 2 and f"--out {locked / 'out'}: cannot write in {locked}" in err
    assert "Traceback" not in err and not (tmp_path / "r.duckdb").exists()


def test_a_directory_given_as_an_input_file_is_named_as_one(tmp_path, small_month, cli) -> None:
    folder = tmp_path / "statements"
    folder.mkdir()
    code, _, err = cli(*run_args(folder, small_month[1], tmp_path))
    assert code == 2 and f"{folder}: is a directory, expected a file" in err
    assert "no such file" not in err


def test_demo_writes_all_outputs(tmp_path, cli) -> None:
    code, out, err = cli("demo", "--out", tmp_path / "demo")
    assert code == 0, err
    for name in (
        "matches.csv",
        "exceptions.csv",
        "discrepancies.csv",
        "summary.json",
        "report.html",
    ):
        assert (tmp_path / "demo" / name).is_file(), name
    assert "matched" in out


def test_run_recon_py_is_the_cli(tmp_path, small_month) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_recon.py"), *map(str, run_args(*small_month, tmp_path))],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "matches.csv").is_file()


def test_mask_accounts_keeps_last_four(tmp_path, cli) -> None:
    demo = ROOT / "sample_data" / "demo"
    code, _, err = cli("run", "--rules", RULES, "--bank", demo / "bank.csv", "--ledger",
                       demo / "ledger.csv", "--db", tmp_path / "r.duckdb", "--out",
                       tmp_path / "out", "--mask-accounts")
    assert code == 0, err
    for name in ("exceptions.csv", "bank_reconciliation.csv"):
        text = (tmp_path / "out" / name).read_text()
        assert "DE89370400440532013000" not in text
        assert "3000" in text


def test_explanations_give_exact_amounts_in_the_currency_minor_units(tmp_path, cli) -> None:
    bank = write_csv(tmp_path / "bank.csv", BANK_HEADER, [
        "B1,2026-03-02,100.005,KWD,Gulf Trading,INV-77,payment INV-77",
        "B2,2026-03-03,9500,JPY,Tokyo KK,INV-88,payment INV-88",
        "B3,2026-03-04,100.10,EUR,Kiel AG,INV-99,payment INV-99",
        "B4,2026-03-05,250.125,KWD,Rev Co,X,r1",
        "B5,2026-03-06,-250.125,KWD,Rev Co,X,r1 storno",
    ])
    ledger = write_csv(tmp_path / "ledger.csv", BANK_HEADER, [
        "L1,2026-03-02,100.000,KWD,Gulf Trading,INV-77,invoice INV-77",
        "L2,2026-03-03,10000,JPY,Tokyo KK,INV-88,invoice INV-88",
        "L3,2026-03-04,100.00,EUR,Kiel AG,INV-99,invoice INV-99",
    ])
    code, _, err = cli(*run_args(bank, ledger, tmp_path, "--as-of", "2026-03-31"))
    assert code == 0, err
    said = {r["left_ids"]: r["explanation"].split(";")[0]
            for r in read_rows(tmp_path / "out" / "matches.csv")}
    assert said == {"B1": "amount differs by 0.005", "B2": "amount differs by -500",
                    "B3": "amount differs by 0.10",
                    "B4;B5": "reversal: 250.125 and -250.125 cancel out, 1d apart"}


def test_exceptions_give_the_exact_difference_to_the_best_candidate(tmp_path, cli) -> None:
    """exceptions.csv said "amount differs" with no figure (the float one, -200.0 for
    -199.995, was dropped as inexact): a reviewer wants the exact difference, worded as
    matches.csv words it, bank minus ledger as its amount_diff, in the currency's minor
    units and more digits only where the amounts have them."""
    bank = write_csv(tmp_path / "bank.csv", BANK_HEADER, [
        "B1,2026-03-02,500.00,EUR,Hartmann Nord GmbH,,SEPA-GUTSCHRIFT Hartmann Nord",
        "B2,2026-03-03,9500,JPY,Tokyo Seiki KK,,furikomi Tokyo Seiki",
        "B3,2026-03-04,188.250,KWD,Gulf Trading WLL,,transfer Gulf Trading",
        "B4,2026-03-05,250.00,EUR,Kiel Maschinenbau AG,INV-2026-00999,payment INV-2026-00999",
        "B5,2026-03-09,320.00,USD,Brighton Ltd,INV-2026-00666,payment INV-2026-00666",
        "B6,2026-03-10,-12.50,EUR,,,BANK FEE",
    ])
    ledger = write_csv(tmp_path / "ledger.csv", BANK_HEADER, [
        "L1,2026-03-01,560.005,EUR,Hartmann Nord GmbH,,invoice 4711",
        "L2,2026-03-03,10400,JPY,Tokyo Seiki KK,,invoice 17",
        "L3,2026-03-03,220.125,KWD,Gulf Trading WLL,,invoice 88",
        "L4,2026-03-04,-250.00,EUR,Kiel Maschinenbau AG,INV-2026-00999,credit note",
        "L5,2026-03-08,320.00,EUR,Brighton Ltd,INV-2026-00666,invoice INV-2026-00666",
    ])
    code, _, err = cli(*run_args(bank, ledger, tmp_path))
    assert code == 0, err
    said = {(r["side"], r["id"]): (r["reason"], r["best_candidate_ids"], r["explanation"])
            for r in read_rows(tmp_path / "out" / "exceptions.csv")}
    figure = {
        "B1": "amount differs by -60.005; date 1d", "B2": "amount differs by -900; same date",
        "B3": "amount differs by -31.875; date 1d",
        "B4": "opposite sign; amount differs by 500.00; date 1d",
        # two currencies: no difference to state
        "B5": "currencies differ; amount equal; date 1d",
    }
    for bank_id, start in figure.items():
        ledger_id = "L" + bank_id[1:]
        reason = "currency_mismatch" if bank_id == "B5" else "amount_mismatch"
        # the ledger row names the same pair, with the same difference
        for side, row, best in (("left", bank_id, ledger_id), ("right", ledger_id, bank_id)):
            got = said[side, row]
            assert got[:2] == (reason, best) and got[2].startswith(start), (row, got)
    assert said["left", "B6"] == ("no_candidate", "", "")


def test_match_amounts_have_their_own_currency_minor_units(tmp_path, cli) -> None:
    bank = write_csv(tmp_path / "bank.csv", BANK_HEADER, [
        "B1,2026-03-02,61.00,EUR,Tokyo KK,INV-5001,payment INV-5001"])
    ledger = write_csv(tmp_path / "ledger.csv", BANK_HEADER, [
        "L1,2026-03-02,10001,JPY,Tokyo KK,INV-5001,invoice INV-5001",
        "L2,2026-03-05,12.345,KWD,Rev Co,X9,booking",
        "L3,2026-03-06,-12.345,KWD,Rev Co,X9,storno booking",
    ])
    code, _, err = cli(*run_args(bank, ledger, tmp_path, "--as-of", "2026-03-31"))
    assert code == 0, err
    amounts = {(r["kind"], r["right_ids"]): (r["left_amount"], r["right_amount"], r["amount_diff"])
               for r in read_rows(tmp_path / "out" / "matches.csv")}
    # the FX match's ledger side in yen, the ledger reversal in dinars
    assert amounts == {("one_to_one", "L1"): ("61.00", "10001", "-0.01"),
                       ("reversal", "L2;L3"): ("0.000", "0.000", "0.000")}


# --- a refused command leaves no database it created ---------------------------------------
def _bad_amount_copy(tmp_path: Path) -> Path:
    """The demo's bank file with one amount a person mistyped, on line 150 of 305."""
    lines = (DEMO / "bank.csv").read_text(encoding="utf-8").splitlines()
    fields = lines[149].split(",")
    fields[2] = '"1.234,5O"'
    lines[149] = ",".join(fields)
    bad = tmp_path / "bank_bad.csv"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return bad


def _refused_runs(tmp_path: Path) -> dict[str, tuple[list[str | Path], str]]:
    """`recon run` arguments refused with exit 2, and what the error names, by what is
    wrong."""
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - matcher: exakt\n")
    bad = _bad_amount_copy(tmp_path)
    good = run_args(DEMO / "bank.csv", DEMO / "ledger.csv", tmp_path)
    return {
        "missing bank file": (
            run_args(tmp_path / "missing.csv", DEMO / "ledger.csv", tmp_path), "missing.csv"),
        "malformed bank file": (run_args(bad, DEMO / "ledger.csv", tmp_path), "line 150"),
        # the good bank file is stored before the ledger is read, in the transaction
        "malformed ledger file": (run_args(DEMO / "bank.csv", bad, tmp_path), "line 150"),
        "bad rules file": ([*good[:2], rules, *good[3:]], "did you mean 'exact'"),
        "bad memory limit": ([*good, "--memory-limit", "0GB"], "--memory-limit"),
    }


def test_a_refused_run_leaves_no_database_it_created(tmp_path, cli) -> None:
    """A database the run created held its schema only (and a lock file was beside it):
    a user fixing the input found a database they had not asked for."""
    for what, (args, named) in _refused_runs(tmp_path).items():
        code, _, err = cli(*args)
        assert code == 2 and named in err and "Traceback" not in err, (what, err)
        assert _db_files(tmp_path) == [], what
    customers = ROOT / "tests" / "fixtures" / "customers"
    code, _, err = cli("customers", customers / "missing_name.csv", "--db", tmp_path / "r.duckdb")
    assert code == 2 and "missing_name.csv" in err
    assert _db_files(tmp_path) == []
    # the same runs, corrected, create it
    assert cli(*run_args(DEMO / "bank.csv", DEMO / "ledger.csv", tmp_path))[0] == 0
    assert _db_files(tmp_path) == ["r.duckdb", "r.duckdb.lock"]


def test_a_dry_run_writes_its_outputs_and_leaves_no_database(tmp_path, cli) -> None:
    """--dry-run computes and writes the outputs and changes nothing in the database:
    on a new --db it left one holding the schema only, and its lock file; an existing
    database keeps its bytes."""
    from .conftest import dump_tables

    args = run_args(DEMO / "bank.csv", DEMO / "ledger.csv", tmp_path)
    code, _, err = cli(*args, "--dry-run")
    assert code == 0, err
    assert _db_files(tmp_path) == []
    dry = {p.name: p.read_bytes() for p in (tmp_path / "out").glob("*.csv")}
    assert len(read_rows(tmp_path / "out" / "matches.csv")) > 100
    assert cli(*args)[0] == 0
    db = tmp_path / "r.duckdb"
    before, tables = db.read_bytes(), dump_tables(db)
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").glob("*.csv")
            if p.name != "changes.csv"} == {k: v for k, v in dry.items() if k != "changes.csv"}
    code, _, err = cli(*args, "--dry-run")
    assert code == 0, err
    assert dump_tables(db) == tables and db.read_bytes() == before


def test_a_refused_run_leaves_no_directory_it_made_for_the_database(tmp_path, cli) -> None:
    """A run refused for a missing input left the empty folders it made for a new --db
    (`--db state/recon/r.duckdb`); a folder that was there stays."""
    (tmp_path / "state").mkdir()
    args = run_args(tmp_path / "missing.csv", DEMO / "ledger.csv", tmp_path)
    args[args.index("--db") + 1] = tmp_path / "state" / "recon" / "nightly" / "r.duckdb"
    code, _, err = cli(*args)
    assert code == 2 and "missing.csv" in err
    assert [p.name for p in tmp_path.rglob("*")] == ["state"]


def test_a_refused_run_leaves_an_existing_database_as_it_was(tmp_path, cli) -> None:
    from .conftest import dump_tables

    assert cli(*run_args(DEMO / "bank.csv", DEMO / "ledger.csv", tmp_path))[0] == 0
    db = tmp_path / "r.duckdb"
    before, tables = db.read_bytes(), dump_tables(db)
    for what, (args, named) in _refused_runs(tmp_path).items():
        code, _, err = cli(*args)
        assert code == 2 and named in err and "Traceback" not in err, (what, err)
        assert _db_files(tmp_path) == ["r.duckdb", "r.duckdb.lock"], what
        assert dump_tables(db) == tables, what
        assert db.read_bytes() == before, what


def test_a_run_failing_before_its_commit_removes_the_database_it_created(
    tmp_path, cli, monkeypatch
) -> None:
    """A bug (exit 1) or Ctrl-C during matching: nothing was committed."""
    import recon.run

    args = run_args(DEMO / "bank.csv", DEMO / "ledger.csv", tmp_path)

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug in the diagnosis")

    monkeypatch.setattr(recon.run, "diagnose", broken)
    with pytest.raises(RuntimeError, match="a bug in the diagnosis"):
        cli(*args)
    assert _db_files(tmp_path) == []

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(recon.run, "diagnose", interrupted)
    assert cli(*args)[0] == 130
    assert _db_files(tmp_path) == []


def test_a_new_database_committed_before_the_outputs_failed_is_kept(
    tmp_path, cli, monkeypatch
) -> None:
    """The outputs are published after the commit: the run's work is in the database."""
    import recon.run

    def full_disk(*_: object, **__: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(recon.run, "_publish", full_disk)
    with pytest.raises(OSError, match="No space left"):
        cli(*run_args(DEMO / "bank.csv", DEMO / "ledger.csv", tmp_path))
    counts = table_counts(tmp_path / "r.duckdb")
    assert counts["runs"] == 1 and counts["txns"] == 304 + 354


def _mt940(tmp_path: Path, name: str, day: str, lines: list[tuple[str, str, str]]) -> Path:
    """A one-statement MT940 file of `day` (YYMMDD): (sign, amount, :61: reference
    part) per line."""
    return write_mt940(tmp_path / name, [(day, *line) for line in lines])


def test_mt940_customer_references_repeating_across_files_are_two_transactions(
    tmp_path, cli
) -> None:
    """An MT940 line without a bank reference takes its customer reference as id, and
    banks repeat those month after month ('Rente', 'nota'): February's interest, under
    January's id, stopped the nightly run (exit 2) once January's was stored.  It is
    stored under its reference, date and amount; an overlapping export of it is the
    same row, and an id a bank keeps unique (a CSV's) is still refused when reused."""
    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER,
                       ["L1,2026-01-31,1.23,EUR,Bank,,interest"])
    january = _mt940(tmp_path, "jan.sta", "260131", [("C", "1,23", "Rente")])
    february = _mt940(tmp_path, "feb.sta", "260228", [("C", "0,98", "Rente")])
    assert cli(*run_args(january, ledger, tmp_path))[0] == 0
    code, _, err = cli(*run_args(february, ledger, tmp_path))
    assert code == 0, err
    again = _mt940(tmp_path, "feb_again.sta", "260228",
                   [("C", "0,98", "Rente"), ("D", "5,00", "KARTE//B-77")])
    code, _, err = cli(*run_args(again, ledger, tmp_path))
    assert code == 0, err
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    stored = con.execute("select source_id, date::varchar, amount::varchar from txns "
                         "where side = 'bank' order by date, source_id").fetchall()
    con.close()
    assert stored == [("Rente", "2026-01-31", "1.2300"),
                      ("B-77", "2026-02-28", "-5.0000"),
                      ("Rente~2026-02-28~0.98", "2026-02-28", "0.9800")]


JAN_RENTE = ("260131", "C", "1,23", "Rente")
FEB_RENTE = ("260228", "C", "0,98", "Rente")


def _bank_rows(db: Path) -> list[tuple[str, str, str]]:
    """(source id, date, amount) of the stored bank rows, by date and id."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("select source_id, date::varchar, amount::varchar from txns "
                           "where side = 'bank' order by date, source_id").fetchall()
    finally:
        con.close()


def _load_all(cli, tmp_path: Path, files: list[Path]) -> list[tuple[str, str, str]]:
    """`recon run` with each file in turn (against one small ledger); the bank rows."""
    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER,
                       ["L1,2026-01-31,1.23,EUR,Bank,,interest"])
    for path in files:
        code, _, err = cli(*run_args(path, ledger, tmp_path))
        assert code == 0, err
    return _bank_rows(tmp_path / "r.duckdb")


@pytest.mark.parametrize("order", [("jan", "both", "feb"), ("both", "jan", "feb"),
                                   ("feb", "both", "jan")])
def test_mt940_overlapping_exports_store_each_interest_line_once(
    tmp_path, cli, order
) -> None:
    """January's export, an export of January and February, February's export, in any
    order: two interest lines, each under its customer reference 'Rente'.  An export
    holding both gave each a hash id (the reference repeats in the file), and January's
    interest, stored as 'Rente' from January's export, was stored a second time."""
    files = {"jan": [JAN_RENTE], "both": [JAN_RENTE, FEB_RENTE], "feb": [FEB_RENTE]}
    stored = _load_all(cli, tmp_path,
                       [write_mt940(tmp_path / f"{name}.sta", files[name]) for name in order])
    assert [row[1:] for row in stored] == [("2026-01-31", "1.2300"), ("2026-02-28", "0.9800")]
    if order[0] == "jan":
        assert [row[0] for row in stored] == ["Rente", "Rente~2026-02-28~0.98"]
    if order[0] == "both":  # a reference repeated in one file is told apart as across files
        assert [row[0] for row in stored] == ["Rente~2026-01-31~1.23",
                                              "Rente~2026-02-28~0.98"]


def test_mt940_rows_stored_under_hash_ids_by_an_older_recon_are_not_stored_again(
    tmp_path, cli
) -> None:
    """A database holding an overlapping export loaded before this version, which gave
    the repeated reference a hash id on each line: January's export, then an export of
    February and March, store March's interest only."""
    from dataclasses import replace

    import polars as pl

    from recon.db import connect, sha256_of, store_file, transaction
    from recon.loaders.mt940 import Mt940Loader

    both = write_mt940(tmp_path / "both.sta", [JAN_RENTE, FEB_RENTE])
    result = Mt940Loader().load(both)
    # the ids recon gave these two lines before (a hash of account, date, amount, id
    # and text, and the occurrence), written down from its output
    old = ["syn-70a9a68b87968df7-1", "syn-f5ea2f7d75e969f9-1"]
    result = replace(result, frame=result.frame.with_columns(pl.Series("id", old)))
    con = connect(tmp_path / "r.duckdb")
    with transaction(con):
        store_file(con, result, side="bank", sha=sha256_of(both), run_id="before")
    con.close()
    march = ("260331", "C", "1,05", "Rente")
    stored = _load_all(cli, tmp_path, [
        write_mt940(tmp_path / "jan.sta", [JAN_RENTE]),
        write_mt940(tmp_path / "feb_mar.sta", [FEB_RENTE, march]),
        write_mt940(tmp_path / "mar.sta", [march]),
    ])
    assert stored == [(old[0], "2026-01-31", "1.2300"), (old[1], "2026-02-28", "0.9800"),
                      ("Rente~2026-03-31~1.05", "2026-03-31", "1.0500")]


def test_mt940_equal_interest_lines_of_one_day_are_stored_as_often_as_an_export_holds_them(
    tmp_path, cli
) -> None:
    """Two interest lines of 0.98 on one day are two transactions (hash ids, as before);
    an earlier export holding one of them (an interim one) under 'Rente' is one of the
    two, a later one holding one adds none."""
    rente = ("260131", "C", "0,98", "Rente")
    stored = _load_all(cli, tmp_path, [
        write_mt940(tmp_path / "early.sta", [rente]),
        write_mt940(tmp_path / "day.sta", [rente, rente]),
        write_mt940(tmp_path / "again.sta", [rente, FEB_RENTE]),
    ])
    assert [row[1:] for row in stored] == [("2026-01-31", "0.9800")] * 2 + [
        ("2026-02-28", "0.9800")]


def test_mt940_bank_reference_reused_for_another_transaction_is_still_refused(
    tmp_path, cli
) -> None:
    """A bank reference ('//B-77') is the bank's own, unique id: given again with another
    amount it is refused (exit 2), as any id a source keeps unique."""
    first = write_mt940(tmp_path / "jan.sta", [("260131", "D", "5,00", "KARTE//B-77")])
    stored = _load_all(cli, tmp_path, [first])
    assert stored == [("B-77", "2026-01-31", "-5.0000")]
    again = write_mt940(tmp_path / "feb.sta", [("260228", "D", "7,00", "KARTE//B-77")])
    code, _, err = cli(*run_args(again, tmp_path / "ledger.csv", tmp_path))
    assert code == 2
    assert "id 'B-77' (2026-02-28, -7.0000) is already stored, from jan.sta line 5" in err
    assert _bank_rows(tmp_path / "r.duckdb") == stored
