"""`recon apply`: decisions persist, are audited, are honoured by the next run."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from .conftest import decide, read_rows, run_args, write_rows


def run(cli, tmp: Path, bank: Path, ledger: Path) -> Path:
    code, _, err = cli(*run_args(bank, ledger, tmp))
    assert code == 0, err
    return tmp / "out"


def test_match_write_off_and_reject_are_honoured(tmp_path, small_month, cli) -> None:
    out = run(cli, tmp_path, *small_month)
    exc = read_rows(out / "exceptions.csv")
    decide(
        exc,
        B3={"decision": "match", "match_with": "L4", "note": "checked remittance"},
        B4={"decision": "match", "match_with": "L3"},
        B5={"decision": "write_off", "note": "bank fee March"},
    )
    # Excel re-save: BOM, CRLF, columns reordered, an extra column
    reordered = [{"note": r["note"], "extra": "x", **r} for r in exc]
    code, _out_text, err = cli(
        "apply",
        write_rows(tmp_path / "dec.csv", reordered, bom=True, crlf=True),
        "--db",
        tmp_path / "r.duckdb",
        "--user",
        "anna",
    )
    assert code == 0, err
    out = run(cli, tmp_path, *small_month)
    m = {(r["left_ids"], r["right_ids"]): r for r in read_rows(out / "matches.csv")}
    assert m[("B3", "L4")]["status"] == "manual" and m[("B4", "L3")]["status"] == "manual"
    # a manual match's id keeps 80 bits of its hash, as the pipeline's do
    assert all(re.fullmatch(r"M[0-9a-f]{20}", r["match_id"]) for r in m.values())
    ids = {r["id"] for r in read_rows(out / "exceptions.csv")}
    assert "B5" not in ids and "B3" not in ids
    # reject the suggested fuzzy match; its rows return and the pair is never proposed again
    mrows = read_rows(out / "matches.csv")
    for r in mrows:
        r["decision"] = "reject" if r["left_ids"] == "B6" else ""
        r["note"] = "not the same payment" if r["left_ids"] == "B6" else ""
    assert (
        cli(
            "apply",
            write_rows(tmp_path / "m.csv", mrows),
            "--db",
            tmp_path / "r.duckdb",
            "--user",
            "bob",
        )[0]
        == 0
    )
    out = run(cli, tmp_path, *small_month)
    assert not any(r["left_ids"] == "B6" for r in read_rows(out / "matches.csv"))
    assert "B6" in {r["id"] for r in read_rows(out / "exceptions.csv")}
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    actions = [a for (a,) in con.execute("select action from audit_log order by seq").fetchall()]
    con.close()
    assert {"match", "write_off", "reject"} <= set(actions)


def test_bad_decisions_apply_nothing_and_list_every_problem(tmp_path, small_month, cli) -> None:
    out = run(cli, tmp_path, *small_month)
    exc = read_rows(out / "exceptions.csv")
    exc[0].update(decision="maybe")
    exc[1].update(decision="match", match_with="NOPE")
    exc[2].update(decision="write_off", note="")
    exc[3].update(decision="ignore")  # valid on its own, but the file is refused whole
    path = write_rows(tmp_path / "bad.csv", exc)
    code, _, err = cli("apply", path, "--db", tmp_path / "r.duckdb", "--user", "anna")
    assert code == 2
    assert "3 problems" in err and "line 2" in err and "'maybe'" in err
    assert "unknown ledger id 'NOPE'" in err and "needs its reason" in err
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    assert con.execute("select count(*) from decisions").fetchall()[0][0] == 0
    con.close()


def test_already_matched_row_is_an_error(tmp_path, small_month, cli) -> None:
    out = run(cli, tmp_path, *small_month)
    exc = read_rows(out / "exceptions.csv")
    decide(exc, B3={"decision": "match", "match_with": "L1"})  # L1 is matched to B1
    code, _, err = cli(
        "apply",
        write_rows(tmp_path / "d.csv", exc),
        "--db",
        tmp_path / "r.duckdb",
        "--user",
        "anna",
    )
    assert code == 2 and "already matched" in err


def test_decisions_from_the_workbook(tmp_path, small_month, cli) -> None:
    from openpyxl import load_workbook

    out = run(cli, tmp_path, *small_month)
    wb = load_workbook(out / "matches.xlsx")
    ws = wb["exceptions"]
    header = [c.value for c in ws[1]]
    col = {h: i + 1 for i, h in enumerate(header)}
    for row in range(2, ws.max_row + 1):
        if ws.cell(row, col["id"]).value == "B5":
            ws.cell(row, col["decision"]).value = "write_off"
            ws.cell(row, col["note"]).value = "bank fee"
    wb.save(tmp_path / "edited.xlsx")
    code, _, err = cli(
        "apply", tmp_path / "edited.xlsx", "--db", tmp_path / "r.duckdb", "--user", "anna"
    )
    assert code == 0, err
    out = run(cli, tmp_path, *small_month)
    assert "B5" not in {r["id"] for r in read_rows(out / "exceptions.csv")}


def test_closed_period_freezes_matches(tmp_path, small_month, cli) -> None:
    out = run(cli, tmp_path, *small_month)
    db = tmp_path / "r.duckdb"
    assert cli("close-period", "2026-03", "--db", db, "--user", "cfo")[0] == 0
    mrows = read_rows(out / "matches.csv")
    for r in mrows:
        r["decision"] = "reject" if r["left_ids"] == "B1" else ""
    path = write_rows(tmp_path / "m.csv", mrows)
    code, _, err = cli("apply", path, "--db", db, "--user", "bob")
    assert code == 2 and "closed period 2026-03" in err
    assert cli("reopen-period", "2026-03", "--db", db, "--user", "cfo")[0] == 2  # no reason
    assert (
        cli(
            "reopen-period",
            "2026-03",
            "--db",
            db,
            "--user",
            "cfo",
            "--reason",
            "late bank correction",
        )[0]
        == 0
    )
    assert cli("apply", path, "--db", db, "--user", "bob")[0] == 0


def test_ids_that_lost_their_leading_zeros_in_a_spreadsheet_are_found(tmp_path, cli) -> None:
    """A spreadsheet reads 000481 as the number 481: apply finds the row by the id without
    its zeros (reading only the stored rows whose ids the file names, zeros aside), and an
    id that matches two rows that way is refused, not guessed."""
    from .conftest import BANK_HEADER, LEDGER_HEADER, write_csv

    bank = write_csv(tmp_path / "bank.csv", BANK_HEADER, [
        "000481,2026-03-02,310.00,EUR,Rossi SRL,,bonifico",
        "0077,2026-03-03,55.00,EUR,Bianchi,,bonifico",
        "00077,2026-03-04,56.00,EUR,Verdi,,bonifico",
    ])
    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER, [
        "L0009,2026-03-20,299.00,EUR,Neri,,unrelated",
        "0042,2026-03-25,123.45,EUR,Gialli,,unrelated",
    ])
    run(cli, tmp_path, bank, ledger)
    rows = [{"side": "left", "id": "481", "reason": "no_candidate", "decision": "match",
             "match_with": "42", "note": "confirmed by phone"}]
    code, _, err = cli("apply", write_rows(tmp_path / "ok.csv", rows), "--db",
                       tmp_path / "r.duckdb", "--user", "anna")
    assert code == 0, err
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    members = con.execute(
        "select mm.role, t.source_id from match_members mm join txns t using (txn_id) "
        "join matches m using (match_id) where m.status = 'manual' order by 1"
    ).fetchall()
    con.close()
    assert members == [("left", "000481"), ("right", "0042")]
    rows = [{"side": "left", "id": "77", "reason": "no_candidate", "decision": "ignore",
             "match_with": "", "note": ""}]
    code, _, err = cli("apply", write_rows(tmp_path / "two.csv", rows), "--db",
                       tmp_path / "r.duckdb", "--user", "anna")
    assert code == 2 and "line 2, column 'id': bank/statement id '77' exists in several" in err


def _decisions(*rows: tuple[str, str, str, str, str]) -> list[dict[str, str]]:
    """Exception rows (side, id, decision, match_with, note) as a reviewer fills them in."""
    return [{"side": s, "id": i, "reason": "no_candidate", "decision": d, "match_with": w,
             "note": n} for s, i, d, w, n in rows]


def _apply(cli, tmp: Path, name: str, rows: list[dict[str, str]]) -> tuple[int, str, str]:
    return cli("apply", write_rows(tmp / name, rows), "--db", tmp / "r.duckdb", "--user", "anna")


def _decision_count(tmp: Path) -> int:
    con = duckdb.connect(str(tmp / "r.duckdb"), read_only=True)
    try:
        return int(con.execute("select count(*) from decisions").fetchall()[0][0])
    finally:
        con.close()


def test_a_row_decided_twice_in_one_file_is_refused_whole(tmp_path, small_month, cli) -> None:
    """An id may take one decision per file: a write-off repeated, or a row written off
    that another row matches, is refused with both lines named, and nothing is applied
    (applied, the reconciliation statement counted the row twice)."""
    run(cli, tmp_path, *small_month)
    code, _, err = _apply(cli, tmp_path, "twice.csv", _decisions(
        ("left", "B5", "write_off", "", "bank fee"),
        ("left", "B5", "write_off", "", "bank fee again"),
    ))
    assert code == 2 and "line 3, column 'id': 'B5' is also decided on line 2" in err
    code, _, err = _apply(cli, tmp_path, "both.csv", _decisions(
        ("left", "B3", "match", "L3;L4", "split"),
        ("right", "L4", "write_off", "", "rounding"),
    ))
    assert code == 2
    assert "line 2, column 'match_with': an id of this group is written off or ignored on line 3" in err
    assert _decision_count(tmp_path) == 0


def test_a_match_written_on_each_of_its_rows_counts_once(tmp_path, small_month, cli) -> None:
    """The reviewer marks the match on every row it joins, in any order, some rows naming
    only their part of it: one manual match.  A row naming other ids is still refused."""
    run(cli, tmp_path, *small_month)
    code, out, err = _apply(cli, tmp_path, "mirror.csv", _decisions(
        ("right", "L4", "match", "B3", "split"),
        ("left", "B3", "match", "L3;L4", "split"),
        ("right", "L3", "match", "B3", "split"),
    ))
    assert code == 0, err
    assert "1 matched" in out and _decision_count(tmp_path) == 1
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    members = con.execute(
        "select t.source_id from match_members mm join txns t using (txn_id) "
        "join matches m using (match_id) where m.status = 'manual' order by 1"
    ).fetchall()
    con.close()
    assert members == [("B3",), ("L3",), ("L4",)]
    code, _, err = _apply(cli, tmp_path, "clash.csv", _decisions(
        ("left", "B4", "match", "L6", "one"),
        ("right", "L6", "match", "B5", "other"),
    ))
    assert code == 2 and "an id of this group is also matched on line 2" in err


def test_a_row_written_off_earlier_cannot_be_matched(tmp_path, small_month, cli) -> None:
    """A row a reviewer wrote off is resolved: a later file that matches it, on its own
    row or in another row's `match_with`, is refused (applied, the row was both matched
    and written off, and the statement counted its amount twice)."""
    run(cli, tmp_path, *small_month)
    code, _, err = _apply(cli, tmp_path, "wo.csv", _decisions(
        ("right", "L6", "write_off", "", "never paid"),
    ))
    assert code == 0, err
    code, _, err = _apply(cli, tmp_path, "m.csv", _decisions(
        ("left", "B3", "match", "L3;L6", "split"),
    ))
    assert code == 2
    assert "line 2, column 'match_with': 'L6' was already written off or ignored" in err
    assert _decision_count(tmp_path) == 1


def test_a_closed_period_refuses_manual_matches_dated_in_it(tmp_path, cli) -> None:
    """A closed month freezes its matches, dated by their latest row: a manual match
    whose rows are all dated by the month's end, the latest in it, is refused until
    the month reopens, whether that row is the decided one or in `match_with` (applied,
    the match, frozen, could not even be rejected after); so is writing off a row of
    the month.  A match of a row of the month with a later one is dated after it: the
    month's outstanding items are cleared in the next, as the reconciliation
    statement at the month's end still shows them open (they were refused too)."""
    from .conftest import BANK_HEADER, LEDGER_HEADER, write_csv

    bank = write_csv(tmp_path / "bank.csv", BANK_HEADER, [
        "B1,2026-03-30,-12.34,EUR,,,bank fee",
        "B2,2026-04-02,80.00,EUR,Rossi,,late payment",
    ])
    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER, [
        "L1,2026-03-20,0.20,EUR,Zed,,tiny",
        "L2,2026-03-10,77.00,EUR,Neri,,receipt",
    ])
    run(cli, tmp_path, bank, ledger)
    db = tmp_path / "r.duckdb"
    assert cli("close-period", "2026-03", "--db", db, "--user", "cfo")[0] == 0
    code, _, err = _apply(cli, tmp_path, "own.csv", _decisions(
        ("left", "B1", "match", "L1", "fee against receipt"),
    ))
    assert code == 2 and "line 2, column 'id': 'B1' is dated in closed period 2026-03" in err
    code, _, err = _apply(cli, tmp_path, "other.csv", _decisions(
        ("right", "L1", "match", "B1", "fee against receipt"),
    ))
    assert code == 2
    assert "line 2, column 'match_with': 'B1' is dated in closed period 2026-03" in err
    code, _, err = _apply(cli, tmp_path, "wo.csv", _decisions(
        ("right", "L1", "write_off", "", "rounding"),
    ))
    assert code == 2 and "line 2, column 'id': 'L1' is dated in closed period 2026-03" in err
    assert _decision_count(tmp_path) == 0
    code, _, err = _apply(cli, tmp_path, "april.csv", _decisions(
        ("left", "B2", "match", "L2", "paid in April"),
    ))
    assert code == 0, err
    assert cli("reopen-period", "2026-03", "--db", db, "--user", "cfo",
               "--reason", "late correction")[0] == 0
    assert _apply(cli, tmp_path, "own.csv", _decisions(
        ("left", "B1", "match", "L1", "fee against receipt"),
    ))[0] == 0
    assert _decision_count(tmp_path) == 2


def test_a_decisions_file_in_another_encoding_is_refused_plainly(tmp_path, small_month, cli) -> None:
    """A file saved as Shift-JIS (a Japanese Excel's "CSV") is neither UTF-8 nor
    Windows-1252: exit 2 naming the file and what to do, not a traceback (exit 1)."""
    run(cli, tmp_path, *small_month)
    path = tmp_path / "sjis.csv"
    path.write_bytes("side,id,reason,decision,match_with,note\r\n"
                     "left,B5,no_candidate,write_off,,手数料（カード）\r\n".encode("shift_jis"))
    code, _, err = cli("apply", path, "--db", tmp_path / "r.duckdb", "--user", "anna")
    assert code == 2 and "Traceback" not in err
    assert "sjis.csv" in err and "neither UTF-8 nor Windows-1252" in err and "CSV UTF-8" in err
    assert _decision_count(tmp_path) == 0


def test_control_characters_are_refused_and_lines_are_first_lines(tmp_path, small_month,
                                                                   cli) -> None:
    """A NUL in a note was stored in the audit trail; a problem on a row whose note
    holds a line break was reported at the record's last line."""
    run(cli, tmp_path, *small_month)
    path = tmp_path / "nul.csv"
    path.write_text("side,id,reason,decision,match_with,note\n"
                    "left,B5,no_candidate,write_off,,bank\x00fee\n", encoding="utf-8")
    code, _, err = cli("apply", path, "--db", tmp_path / "r.duckdb", "--user", "anna")
    assert code == 2 and "line 2: control character '\\x00'" in err
    code, _, err = _apply(cli, tmp_path, "breaks.csv", _decisions(
        ("left", "B3", "maybe", "", "bank fee\nsee the March letter"),
        ("left", "B5", "write_off", "", "bank fee\nsee the March letter\nand April's"),
        ("left", "B4", "maybe", "", ""),
    ))
    assert code == 2 and "line 2, column 'decision'" in err and "line 7, column" in err, err
    assert _decision_count(tmp_path) == 0


def test_a_blank_user_is_refused(tmp_path, small_month, cli) -> None:
    """The audit log records who acted: `--user '  '` names nobody, and is refused (exit 2)
    by every command that takes it, before anything is written."""
    run(cli, tmp_path, *small_month)
    rows = _decisions(("left", "B5", "write_off", "", "bank fee"))
    code, _, err = cli("apply", write_rows(tmp_path / "d.csv", rows), "--db",
                       tmp_path / "r.duckdb", "--user", "  ")
    assert code == 2 and "--user" in err and "got a blank" in err
    assert _decision_count(tmp_path) == 0
    code, _, err = cli("close-period", "2026-03", "--db", tmp_path / "r.duckdb", "--user", "")
    assert code == 2 and "got a blank" in err
    code, _, err = _apply(cli, tmp_path, "d.csv", rows)  # a name, trimmed, goes through
    assert code == 0, err


def test_a_match_decided_twice_in_one_file_is_refused_whole(tmp_path, small_month, cli) -> None:
    """An accept and a reject of one match (two rows of an edited matches.csv) are
    refused, both lines named: applied, the match was made manual and ended at once,
    with both decisions in the audit log."""
    out = run(cli, tmp_path, *small_month)
    mrows = [r for r in read_rows(out / "matches.csv") if r["left_ids"] == "B6"]
    assert mrows
    twice = [{**mrows[0], "decision": "accept", "note": "ok"},
             {**mrows[0], "decision": "reject", "note": "wrong"}]
    code, _, err = cli("apply", write_rows(tmp_path / "ar.csv", twice), "--db",
                       tmp_path / "r.duckdb", "--user", "anna")
    assert code == 2
    assert f"line 3, column 'match_id': '{mrows[0]['match_id']}' is also decided on line 2" in err
    assert _decision_count(tmp_path) == 0


def test_accepting_a_manual_match_again_is_refused(tmp_path, small_month, cli) -> None:
    """The same accept applied twice (the file applied again) is refused the second
    time, as a write-off applied twice is: it recorded a second decision and audit
    record for a match already manual."""
    out = run(cli, tmp_path, *small_month)
    mrows = [{**r, "decision": "accept", "note": "checked"}
             for r in read_rows(out / "matches.csv") if r["left_ids"] == "B6"]
    path = write_rows(tmp_path / "acc.csv", mrows)
    assert cli("apply", path, "--db", tmp_path / "r.duckdb", "--user", "anna")[0] == 0
    code, _, err = cli("apply", path, "--db", tmp_path / "r.duckdb", "--user", "anna")
    assert code == 2 and "is already manual" in err
    assert _decision_count(tmp_path) == 1


def test_a_rejected_pair_is_not_offered_as_the_best_candidate(tmp_path, small_month, cli) -> None:
    """After a reviewer rejects a match, its rows are exceptions again: the pair they
    rejected is never their best candidate (it was: B6 came back as low_similarity with
    L5, score 1.0, the pair just refused)."""
    out = run(cli, tmp_path, *small_month)
    mrows = read_rows(out / "matches.csv")
    target = next(r for r in mrows if r["left_ids"] == "B6")
    rows = [{**target, "decision": "reject", "note": "not the same payment"}]
    assert cli("apply", write_rows(tmp_path / "rej.csv", rows), "--db", tmp_path / "r.duckdb",
               "--user", "bob")[0] == 0
    out = run(cli, tmp_path, *small_month)
    exc = {(r["side"], r["id"]): r for r in read_rows(out / "exceptions.csv")}
    assert target["right_ids"] not in exc[("left", "B6")]["best_candidate_ids"].split(";")
    assert "B6" not in exc[("right", target["right_ids"])]["best_candidate_ids"].split(";")


def test_an_id_in_another_account_than_the_row_names_is_refused(tmp_path, cli) -> None:
    """A row naming its account is found in that account only: when the id exists in
    another account alone, that is another transaction, and it is refused, where it was
    taken (the filter fell back to every row of the id)."""
    from .conftest import LEDGER_HEADER, write_csv

    bank = write_csv(tmp_path / "bank.csv", BANK_HEADER_ACCOUNT, [
        "7,2026-03-02,310.00,EUR,Rossi SRL,,bonifico,IT60X0542811101000000123456",
    ])
    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER, [
        "L1,2026-03-20,77.00,EUR,Neri,,unrelated",
    ])
    run(cli, tmp_path, bank, ledger)
    rows = [{"side": "left", "id": "7", "reason": "no_candidate", "decision": "ignore",
             "match_with": "", "note": "", "account": "DE89370400440532013000"}]
    code, _, err = _apply(cli, tmp_path, "acct.csv", rows)
    assert code == 2
    assert "no bank/statement row '7' in account 'DE89370400440532013000'" in err
    assert _decision_count(tmp_path) == 0
    rows[0]["account"] = "IT60X0542811101000000123456"
    assert _apply(cli, tmp_path, "acct.csv", rows)[0] == 0


BANK_HEADER_ACCOUNT = "id,date,amount,currency,counterparty,reference,description,account"


def test_the_file_column_tells_a_bank_line_from_a_statement_line(tmp_path, cli) -> None:
    """A bank line and a customer statement's line with the same id are both 'left'
    rows: the `file` column exceptions.csv gives each row tells them apart, where the
    reviewer was told to fill 'account', which neither row has."""
    from .conftest import LEDGER_HEADER, RULES, write_csv

    bank = write_csv(tmp_path / "bank.csv", BANK_HEADER_ACCOUNT.rsplit(",", 1)[0],
                     ["1,2026-03-01,10.00,EUR,A,,a"])
    stmt = write_csv(tmp_path / "stmt.csv",
                     "id,date,amount,currency,counterparty,reference,description,customer_id,doc_type",
                     ["1,2026-03-05,99.00,EUR,Cust,,inv,C1,invoice"])
    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER, ["7,2026-03-09,55.00,EUR,Z,,z"])
    code, _, err = cli("run", "--rules", RULES, "--bank", bank, "--statement", stmt, "--ledger",
                       ledger, "--db", tmp_path / "r.duckdb", "--out", tmp_path / "out",
                       "--as-of", "2026-04-30")
    assert code == 0, err
    exc = [r for r in read_rows(tmp_path / "out" / "exceptions.csv") if r["id"] == "1"]
    assert [r["file"] for r in exc] == ["bank.csv"]
    rows = [{**exc[0], "decision": "ignore"}]
    code, _, err = _apply(cli, tmp_path, "ig.csv", rows)
    assert code == 0, err
    con = duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True)
    side = con.execute("select t.side from decisions d join txns t using (txn_id)").fetchall()
    con.close()
    assert side == [("bank",)]


def test_a_ledger_row_matched_to_the_bank_can_be_matched_to_a_customer_statement(
    tmp_path, cli
) -> None:
    """The bank pass and the customer statement pass each have their own matches: a
    receipt matched to its bank line is still open against the customer's statement,
    and the statement's exceptions offer it.  Matching a statement line to it by hand
    was refused as 'already matched' (by the bank line's match).  A bank line and a
    statement line stay apart: one manual match holds lines of one pass."""
    from .conftest import LEDGER_HEADER, RULES, write_csv

    bank = write_csv(tmp_path / "bank.csv", BANK_HEADER_ACCOUNT.rsplit(",", 1)[0], [
        "B1,2026-03-06,1200.00,EUR,Rossi Spa,INV-2026-00077,SEPA CREDIT",
    ])
    stmt = write_csv(
        tmp_path / "stmt.csv",
        "id,date,amount,currency,counterparty,reference,description,customer_id,doc_type",
        ["S1,2026-03-28,1200.00,EUR,Rossi,,our payment,C1,payment"],
    )
    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER, [
        "L1,2026-03-05,1200.00,EUR,Rossi Spa,INV-2026-00077,receipt",
    ])
    args = ("run", "--rules", RULES, "--bank", bank, "--statement", stmt, "--ledger", ledger,
            "--db", tmp_path / "r.duckdb", "--out", tmp_path / "out", "--as-of", "2026-04-30")
    code, _, err = cli(*args)
    assert code == 0, err
    out = tmp_path / "out"
    assert [(r["left_ids"], r["right_ids"]) for r in read_rows(out / "matches.csv")] == [
        ("B1", "L1")]
    exc = {r["id"]: r for r in read_rows(out / "statement_exceptions.csv")}
    assert exc["S1"]["best_candidate_ids"] == "L1"
    code, _, err = _apply(cli, tmp_path, "mixed.csv", _decisions(
        ("left", "S1", "match", "L1;B1", "paid by transfer"),
    ))
    assert code == 2 and "a bank line and a customer statement's line in one match" in err
    code, _, err = _apply(cli, tmp_path, "s.csv", [{
        **exc["S1"], "decision": "match", "match_with": "L1", "note": "paid by transfer"}])
    assert code == 0, err
    code, _, err = cli(*args)
    assert code == 0, err
    assert [(r["left_ids"], r["right_ids"], r["status"])
            for r in read_rows(out / "statement_matches.csv")] == [("S1", "L1", "manual")]
    assert [(r["left_ids"], r["right_ids"]) for r in read_rows(out / "matches.csv")] == [
        ("B1", "L1")]
    assert "S1" not in {r["id"] for r in read_rows(out / "statement_exceptions.csv")}


def test_a_manual_match_across_currencies_states_no_mixed_difference(tmp_path, cli) -> None:
    """A USD invoice paid in EUR and matched by hand: the match's amount_diff was EUR
    minus USD (900.00 - 1085.00 = -185.00, in no currency), and discrepancies.csv said
    "difference to the rate table -185.00 EUR", a rate table apply never reads.  Now the
    difference is left empty and the discrepancy gives the rate the two amounts imply.
    The rows of one side of a match are in one currency."""
    from .conftest import BANK_HEADER, LEDGER_HEADER, write_csv

    bank = write_csv(tmp_path / "bank.csv", BANK_HEADER, [
        "B1,2026-03-10,900.00,EUR,Globex Inc,,SEPA CREDIT GLOBEX",
        "B2,2026-03-11,40.00,USD,Globex Inc,,USD CREDIT",
    ])
    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER, [
        "L1,2026-03-02,1085.00,USD,Globex Inc,INV-2026-00311,invoice in USD",
    ])
    run(cli, tmp_path, bank, ledger)
    code, _, err = _apply(cli, tmp_path, "mixed.csv", _decisions(
        ("left", "B1", "match", "B2;L1", "paid in two currencies"),
    ))
    assert code == 2 and "column 'match_with': 'B2' is in USD, 'B1' in EUR" in err
    code, _, err = _apply(cli, tmp_path, "fx.csv", _decisions(
        ("left", "B1", "match", "L1", "paid in EUR at the bank's rate"),
    ))
    assert code == 0, err
    out = run(cli, tmp_path, bank, ledger)
    (m,) = [r for r in read_rows(out / "matches.csv") if r["left_ids"] == "B1"]
    assert (m["left_amount"], m["right_amount"], m["amount_diff"]) == ("900.00", "1085.00", "")
    (d,) = [r for r in read_rows(out / "discrepancies.csv")
            if r["match_id"] == m["match_id"] and r["type"] != "date_lag"]
    assert (d["type"], d["difference"], d["currency"]) == ("fx", "", "EUR")
    assert d["explanation"] == (
        "ledger 1085.00 USD booked as 900.00 EUR (rate 0.829493); matched by hand, "
        "no rate table to differ from")
    code, shown, err = cli("audit", "show", "B1", "--db", tmp_path / "r.duckdb")
    assert code == 0, err
    assert "difference none stated across currencies" in shown


def test_a_ledger_row_cancelled_by_its_reversal_is_matched_in_every_pass(tmp_path, cli) -> None:
    """A receipt cancelled against its reversal (a ledger-only match, which every pass
    owns) could be matched by hand to a customer statement's line: apply read the
    reversal as the bank pass's alone, and the row stood in two matches of the
    statement pass."""
    from .conftest import LEDGER_HEADER, RULES, write_csv

    bank = write_csv(tmp_path / "bank.csv", BANK_HEADER_ACCOUNT.rsplit(",", 1)[0], [
        "B1,2026-03-20,-12.00,EUR,Bank,FEE-03,account fee",
    ])
    stmt = write_csv(
        tmp_path / "stmt.csv",
        "id,date,amount,currency,counterparty,reference,description,customer_id,doc_type",
        ["S1,2026-03-28,1200.00,EUR,Rossi,,our payment,C1,payment"],
    )
    ledger = write_csv(tmp_path / "ledger.csv", LEDGER_HEADER, [
        "L1,2026-03-05,1200.00,EUR,Rossi Spa,INV-2026-00077,receipt",
        "L2,2026-03-07,-1200.00,EUR,Rossi Spa,INV-2026-00077,receipt cancelled",
    ])
    code, _, err = cli("run", "--rules", RULES, "--bank", bank, "--statement", stmt,
                       "--ledger", ledger, "--db", tmp_path / "r.duckdb",
                       "--out", tmp_path / "out", "--as-of", "2026-04-30")
    assert code == 0, err
    assert [(r["kind"], r["right_ids"]) for r in read_rows(tmp_path / "out" / "matches.csv")
            ] == [("reversal", "L1;L2")]
    code, _, err = _apply(cli, tmp_path, "s.csv", _decisions(
        ("left", "S1", "match", "L1", "paid by transfer"),
    ))
    assert code == 2 and "'L1' is already matched" in err
