"""A scripted month-end close: two nights of loads, a reviewer's decisions, a rerun.

Night 1 loads the first half of the demo month, night 2 the rest; the
accountant matches, rejects and writes off; night 3 reruns: every decision
is honoured, nothing rejected comes back, and a second rerun writes
byte-identical CSV outputs.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from .conftest import ROOT, RULES, read_rows, write_rows

DEMO = ROOT / "sample_data" / "demo"
CSVS = ("matches.csv", "exceptions.csv", "discrepancies.csv", "bank_reconciliation.csv")


def halves(tmp: Path, name: str) -> tuple[Path, Path]:
    frame = pl.read_csv(DEMO / name, infer_schema=False)
    first = frame.filter(pl.col("date") <= "2026-03-15")
    second = frame.filter(pl.col("date") > "2026-03-15")
    a, b = tmp / f"{name[:-4]}_1.csv", tmp / f"{name[:-4]}_2.csv"
    first.write_csv(a)
    second.write_csv(b)
    return a, b


def night(cli, tmp: Path, banks: list[Path], ledgers: list[Path], out: str) -> Path:
    code, _, err = cli("run", "--rules", RULES, "--bank", *banks, "--ledger", *ledgers,
                       "--db", tmp / "close.duckdb", "--out", tmp / out, "--as-of", "2026-03-31")
    assert code == 0, err
    return tmp / out


def test_month_end_close(tmp_path, cli) -> None:
    bank1, bank2 = halves(tmp_path, "bank.csv")
    ledger1, ledger2 = halves(tmp_path, "ledger.csv")
    out1 = night(cli, tmp_path, [bank1], [ledger1], "night1")
    matched_1 = {r["match_id"] for r in read_rows(out1 / "matches.csv")}
    out2 = night(cli, tmp_path, [bank2], [ledger2], "night2")
    matched_2 = {r["match_id"] for r in read_rows(out2 / "matches.csv")}
    assert matched_1 <= matched_2, "a later night broke an earlier match"
    assert {r["change"] for r in read_rows(out2 / "changes.csv")} >= {"new_match"}

    # the accountant's decisions
    exc = read_rows(out2 / "exceptions.csv")
    left_open = [r for r in exc if r["side"] == "left"]
    right_open = [r for r in exc if r["side"] == "right"]
    pair = next((b, l) for b in left_open for l in right_open if b["currency"] == l["currency"])
    write_off = next(r for r in left_open if r is not pair[0])
    for r in exc:
        if r is pair[0]:
            r.update(decision="match", match_with=pair[1]["id"], note="confirmed with customer")
        elif r is write_off:
            r.update(decision="write_off", note="bank charge, immaterial")
    assert cli("apply", write_rows(tmp_path / "exc.csv", exc, crlf=True),
               "--db", tmp_path / "close.duckdb", "--user", "anna")[0] == 0
    auto = [r for r in read_rows(out2 / "matches.csv") if r["status"] == "auto"]
    rejected = auto[0]
    mrows = [{**r, "decision": "reject" if r["match_id"] == rejected["match_id"] else "",
              "note": "wrong customer"}
             for r in read_rows(out2 / "matches.csv")]
    assert cli("apply", write_rows(tmp_path / "m.csv", mrows, crlf=True),
               "--db", tmp_path / "close.duckdb", "--user", "bob")[0] == 0

    out3 = night(cli, tmp_path, [bank1, bank2], [ledger1, ledger2], "night3")
    m3 = read_rows(out3 / "matches.csv")
    manual = [r for r in m3 if r["status"] == "manual"]
    assert any(r["left_ids"] == pair[0]["id"] and r["right_ids"] == pair[1]["id"] for r in manual)
    pairs3 = {(r["left_ids"], r["right_ids"]) for r in m3}
    assert (rejected["left_ids"], rejected["right_ids"]) not in pairs3, "a rejected pair came back"
    ids3 = {r["id"] for r in read_rows(out3 / "exceptions.csv")}
    assert write_off["id"] not in ids3
    assert {r["change"] for r in read_rows(out3 / "changes.csv")} >= {"broken_match"}

    out4 = night(cli, tmp_path, [bank1, bank2], [ledger1, ledger2], "night4")
    for name in CSVS:
        assert (out4 / name).read_bytes() == (out3 / name).read_bytes(), name
    # the reconciliation statement ties out on the demo month
    brs = {(r["account"], r["line"]): r["amount"]
           for r in read_rows(out4 / "bank_reconciliation.csv")}
    accounts = {a for a, _ in brs}
    assert len(accounts) == 4
    for account in accounts:
        assert brs[(account, "unexplained_difference")] == "0.00", account
    con = duckdb.connect(str(tmp_path / "close.duckdb"), read_only=True)
    actions = {a for (a,) in con.execute("select distinct action from audit_log").fetchall()}
    con.close()
    assert {"load", "run", "match", "write_off", "reject"} <= actions


def test_closing_a_month_with_suggestions_says_they_are_frozen_unreviewed(tmp_path, cli) -> None:
    """The demo's March has 3 suggested matches: closing it said only "closed", and
    they could then be neither accepted nor rejected."""
    out = tmp_path / "demo"
    assert cli("demo", "--out", out)[0] == 0
    pending = sum(r["status"] == "suggested" for r in read_rows(out / "matches.csv"))
    db = out / "recon.duckdb"
    code, stdout, _ = cli("close-period", "2026-03", "--db", db, "--user", "cfo")
    assert code == 0 and pending > 0
    assert f"{pending} suggested match(es) dated in it await review" in stdout
    code, stdout, _ = cli("close-period", "2026-01", "--db", db, "--user", "cfo")
    assert code == 0 and stdout.strip().endswith("period 2026-01 closed")


def test_a_closed_month_gets_no_new_matches_but_its_open_items_clear_later(tmp_path, cli) -> None:
    """After `close-period 2026-03`, a run that loads late March bank lines made new
    auto matches whose rows were all dated in March: frozen as they were made (never to
    be rejected) and changing the closed month's reconciliation statement.  A match is
    dated by its latest row: the late lines stay open until March reopens, while March's
    outstanding cheque, cleared by an April line, is matched as before."""
    from .conftest import BANK_HEADER, LEDGER_HEADER, write_csv

    db = tmp_path / "r.duckdb"

    def run(bank: Path, ledger: Path, out: str) -> dict[str, dict[str, str]]:
        code, _, err = cli("run", "--rules", RULES, "--bank", bank, "--ledger", ledger,
                           "--db", db, "--out", tmp_path / out, "--as-of", "2026-04-05")
        assert code == 0, err
        return {r["left_ids"]: r for r in read_rows(tmp_path / out / "matches.csv")}

    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER, [
        "L1,2026-03-02,1000.00,EUR,Müller GmbH,INV-2026-00123,receipt",
        "L6,2026-03-20,77.00,EUR,Nobody Srl,INV-2026-00140,receipt",
        "L7,2026-03-28,-300.00,EUR,Rossi Spa,CHQ-1001,cheque 1001",
        "L8,2026-03-25,250.00,EUR,Acme Ltd,INV-2026-00150,invoice",
        "L9,2026-03-26,350.00,EUR,Acme Ltd,INV-2026-00151,invoice",
    ])
    march = write_csv(tmp_path / "bank_march.csv", BANK_HEADER, [
        "B1,2026-03-02,1000.00,EUR,Müller GmbH,INV-2026-00123,SEPA-GUTSCHRIFT",
    ])
    assert set(run(march, ledger, "night1")) == {"B1"}
    assert cli("close-period", "2026-03", "--db", db, "--user", "cfo")[0] == 0
    late = write_csv(tmp_path / "bank_late.csv", BANK_HEADER, [
        "B7,2026-03-30,77.00,EUR,Nobody Srl,INV-2026-00140,late March line",
        "B8,2026-04-02,-300.00,EUR,Rossi Spa,CHQ-1001,cheque 1001 presented",
        "B9,2026-03-31,600.00,EUR,Acme Ltd,,INV-2026-00150 INV-2026-00151",
    ])
    matches = run(late, ledger, "night2")
    assert set(matches) == {"B1", "B8"}
    assert matches["B8"]["right_ids"] == "L7"
    exceptions = {r["id"]: r for r in read_rows(tmp_path / "night2" / "exceptions.csv")}
    assert {"B7", "B9", "L6", "L8", "L9"} <= set(exceptions)
    # they say why (the late line scored 0.98 with its receipt: 'low_similarity')
    assert {i: exceptions[i]["reason"] for i in ("B7", "B9", "L6", "L8", "L9")} == dict.fromkeys(
        ("B7", "B9", "L6", "L8", "L9"), "period_closed")
    assert exceptions["B7"]["best_candidate_ids"] == "L6"
    assert exceptions["B7"]["explanation"].startswith(
        "the match would be dated 2026-03-30, in a closed month (reopen it to match); "
        "amount equal;")
    assert cli("reopen-period", "2026-03", "--db", db, "--user", "cfo",
               "--reason", "late bank lines")[0] == 0
    matches = run(late, ledger, "night3")
    assert set(matches) == {"B1", "B7", "B8", "B9"}
    assert matches["B7"]["right_ids"] == "L6"
    assert set(matches["B9"]["right_ids"].split(";")) == {"L8", "L9"}
