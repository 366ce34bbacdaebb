"""`recon reminders`: levels, letters (.eml, English and Chinese), flags, audited sending."""

from __future__ import annotations

import csv
import email
import smtplib
from email import policy
from pathlib import Path
from typing import ClassVar

import pytest

from recon.customers import load_customers
from recon.db import connect
from recon.errors import ReconError
from recon.reminders import parse_levels

AS_OF = "2026-06-30"
CUSTOMERS = """id,name,credit_limit,email,language
R1,Friendly Co,,ap@friendly.example,en
R2,Second GmbH,500.00,ap@second.example,en
R3,最后贸易有限公司,,cw@zuihou.example,zh
R4,Early Ltd,,ap@early.example,en
R5,Credit Ltd,,ap@credit.example,en
R6,Slow Payer,,,en
"""
# id, date, due_date, amount, reference, doc_type, customer
LINES = [
    ("A1", "2026-05-20", "2026-06-20", "500.00", "INV-1", "invoice", "R1"),  # 10 days late
    ("A2", "2026-04-21", "2026-05-21", "800.00", "INV-2", "invoice", "R2"),  # 40 days late
    ("A3", "2026-03-22", "2026-04-21", "1200.00", "INV-3", "invoice", "R3"),  # 70 days late
    ("A4", "2026-06-01", "2026-06-28", "99.90", "INV-4", "invoice", "R3"),  # 2 days late
    ("A5", "2026-06-01", "2026-06-27", "70.00", "INV-5", "invoice", "R4"),  # 3 days late
    ("A6", "2026-05-01", "2026-06-10", "100.00", "INV-6", "invoice", "R5"),
    ("P6", "2026-05-02", None, "300.00", "ADVANCE", "receipt", "R5"),  # more than owed
    ("A7", "2026-01-10", "2026-02-10", "100.00", "INV-7", "invoice", "R6"),
    ("P7", "2026-01-20", None, "100.00", "INV-7", "receipt", "R6"),  # paid in 10 days
    ("A8", "2026-04-10", "2026-06-10", "200.00", "INV-8", "invoice", "R6"),
    ("P8", "2026-05-20", None, "200.00", "INV-8", "receipt", "R6"),  # paid in 40 days
]


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "recon.duckdb"
    con = connect(path)
    for i, (sid, when, due, amount, ref, doc, cid) in enumerate(LINES, start=1):
        con.execute(
            """insert into txns (txn_id, side, source_id, date, due_date, amount, currency,
                                 counterparty, reference, doc_type, customer_id)
            values (?, 'ledger', ?, ?, ?, ?, 'EUR', ?, ?, ?, ?)""",
            [i, sid, when, due, amount, cid, ref, doc, cid])
    (tmp_path / "customers.csv").write_text(CUSTOMERS, encoding="utf-8")
    load_customers(con, tmp_path / "customers.csv")
    con.close()
    return path


def _summary(out: Path) -> dict[str, dict[str, str]]:
    with (out / "reminders.csv").open(encoding="utf-8") as fh:
        return {r["customer"]: r for r in csv.DictReader(fh)}


def _eml(path: Path) -> email.message.EmailMessage:
    return email.message_from_bytes(path.read_bytes(), policy=policy.default)  # type: ignore[return-value]


def _audits(db: Path) -> int:
    con = connect(db)
    try:
        return con.execute(
            "select count(*) from audit_log where action = 'reminder_sent'").fetchone()[0]
    finally:
        con.close()


def test_levels_letters_and_flags(db, tmp_path, cli):
    out = tmp_path / "out"
    code, stdout, err = cli("reminders", "--as-of", AS_OF, "--db", db, "--out", out)
    assert code == 0, err
    assert "3 letters" in stdout and "none sent" in stdout
    assert sorted(p.name for p in out.glob("*.eml")) == ["R1.eml", "R2.eml", "R3.eml"]
    rows = _summary(out)
    assert set(rows) == {"R1", "R2", "R3", "R6"}  # R4 only 3 days late, R5 in credit
    assert {c: rows[c]["level"] for c in rows} == {
        "R1": "friendly", "R2": "second", "R3": "final", "R6": ""}
    assert (rows["R3"]["max_days_overdue"], rows["R3"]["overdue_amount"],
            rows["R3"]["balance"]) == ("70", "1299.90", "1299.90")
    assert rows["R2"]["over_credit_limit"] == "true" and rows["R1"]["over_credit_limit"] == "false"
    assert (rows["R6"]["avg_days_to_pay_before"], rows["R6"]["avg_days_to_pay_recent"],
            rows["R6"]["paying_slower"]) == ("10.0", "40.0", "true")
    assert rows["R1"]["letter"] == "R1.eml" and rows["R6"]["letter"] == ""
    assert all(r["sent"] == "false" for r in rows.values())
    assert _audits(db) == 0


def test_letters_are_ready_to_send_in_the_customers_language(db, tmp_path, cli):
    out = tmp_path / "out"
    cli("reminders", "--as-of", AS_OF, "--db", db, "--out", out)
    en = _eml(out / "R2.eml")
    assert en["To"] == "ap@second.example"
    assert en["Subject"].startswith("Second notice")
    body = en.get_content()
    assert "Dear Second GmbH" in body and "INV-2" in body and "800.00 EUR" in body
    zh = _eml(out / "R3.eml")
    assert zh["Subject"].startswith("最后催款通知")
    body = zh.get_content()
    assert "最后贸易有限公司" in body and "INV-3" in body and "1,200.00" in body
    assert "INV-4" in body  # every overdue invoice is listed
    assert "逾期合计" in body and "1,299.90" in body
    friendly = _eml(out / "R1.eml").get_content()
    assert "friendly reminder" in friendly


class FakeSMTP:
    """Stands in for smtplib.SMTP; records what was sent."""

    sent: ClassVar[list[tuple[str, str, str]]] = []
    fail_after: ClassVar[int | None] = None

    def __init__(self, host: str, port: int, timeout: float = 0) -> None:
        self.host, self.port = host, port

    def __enter__(self) -> FakeSMTP:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def send_message(self, msg, from_addr=None):
        if FakeSMTP.fail_after is not None and len(FakeSMTP.sent) >= FakeSMTP.fail_after:
            raise smtplib.SMTPServerDisconnected("connection lost")
        FakeSMTP.sent.append((self.host, from_addr, msg["To"]))
        return {}


@pytest.fixture
def fake_smtp(monkeypatch):
    FakeSMTP.sent = []
    FakeSMTP.fail_after = None
    monkeypatch.setattr(smtplib, "SMTP", FakeSMTP)
    return FakeSMTP


def test_sends_only_with_an_smtp_server_and_audits_each_sending(db, tmp_path, cli, fake_smtp):
    out = tmp_path / "out"
    code, stdout, err = cli("reminders", "--as-of", AS_OF, "--db", db, "--out", out,
                            "--smtp-host", "mail.example", "--smtp-port", "2525",
                            "--from", "ar@us.example", "--user", "anna")
    assert code == 0, err
    assert "3 sent via mail.example" in stdout
    assert sorted(to for _, _, to in fake_smtp.sent) == [
        "ap@friendly.example", "ap@second.example", "cw@zuihou.example"]
    assert {frm for _, frm, _ in fake_smtp.sent} == {"ar@us.example"}
    assert _audits(db) == 3
    con = connect(db)
    actors = con.execute(
        "select distinct actor from audit_log where action = 'reminder_sent'").fetchall()
    con.close()
    assert actors == [("anna",)]
    assert {c: r["sent"] for c, r in _summary(out).items()} == {
        "R1": "true", "R2": "true", "R3": "true", "R6": "false"}


def test_a_failing_server_stops_with_exit_2_and_keeps_the_record(db, tmp_path, cli, fake_smtp):
    fake_smtp.fail_after = 1
    out = tmp_path / "out"
    code, _, err = cli("reminders", "--as-of", AS_OF, "--db", db, "--out", out,
                       "--smtp-host", "mail.example", "--from", "ar@us.example")
    assert code == 2 and "1 reminders were sent" in err
    assert _audits(db) == 1
    assert sum(r["sent"] == "true" for r in _summary(out).values()) == 1


def test_a_rerun_after_a_failure_sends_only_the_letters_not_sent(db, tmp_path, cli, fake_smtp):
    """The server failed after the first letter; the rerun of the same night sent it
    again. Now it sends the others, says so, and --resend sends all again."""
    fake_smtp.fail_after = 1
    out = tmp_path / "out"
    args = ("reminders", "--as-of", AS_OF, "--db", db, "--out", out,
            "--smtp-host", "mail.example", "--from", "ar@us.example")
    assert cli(*args)[0] == 2
    first = list(fake_smtp.sent)
    fake_smtp.fail_after = None
    code, stdout, err = cli(*args)
    assert code == 0, err
    assert "2 sent via mail.example, 1 sent before at their level within 30 day(s) of 2026-" in stdout
    assert len(fake_smtp.sent) == 3 and fake_smtp.sent[0] == first[0]
    assert first[0] not in fake_smtp.sent[1:]
    assert _audits(db) == 3
    assert sum(r["sent"] == "true" for r in _summary(out).values()) == 3
    code, stdout, _ = cli(*args)
    assert code == 0 and "0 sent via" in stdout and len(fake_smtp.sent) == 3
    code, stdout, _ = cli(*args, "--resend")
    assert code == 0 and "3 sent via" in stdout and len(fake_smtp.sent) == 6


def test_custom_levels_and_user_errors(db, tmp_path, cli):
    out = tmp_path / "out"
    code, _, err = cli("reminders", "--as-of", AS_OF, "--db", db, "--out", out,
                       "--levels", "gentle=5,hard=35")
    assert code == 0, err
    rows = _summary(out)
    assert {c: rows[c]["level"] for c in ("R1", "R2", "R3")} == {
        "R1": "gentle", "R2": "hard", "R3": "hard"}
    assert _eml(out / "R2.eml")["Subject"].startswith("Final notice")  # last level
    code, _, err = cli("reminders", "--as-of", AS_OF, "--db", db, "--out", tmp_path / "x",
                       "--smtp-host", "mail.example")
    assert code == 2 and "--from" in err
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("text", ["friendly=7,second=7", "friendly", "a=30,b=10", "a=0", ""])
def test_bad_levels(text):
    with pytest.raises(ReconError, match="--levels"):
        parse_levels(text)


def test_default_levels():
    assert parse_levels("friendly=7,second=30,final=60") == (
        ("friendly", 7), ("second", 30), ("final", 60))


def test_ids_that_are_not_file_safe_get_a_letter_each(tmp_path, cli):
    # 华东001 and 华南001 were both `___001.eml`: one letter overwrote the other
    path = tmp_path / "recon.duckdb"
    con = connect(path)
    for i, cid in enumerate(("华东001", "华南001"), start=1):
        con.execute("""insert into txns (txn_id, side, source_id, date, due_date, amount,
                                         currency, counterparty, doc_type, customer_id)
                       values (?, 'ledger', ?, '2026-04-01', '2026-05-01', 100, 'CNY', ?,
                               'invoice', ?)""", [i, f"L{i}", cid, cid])
    con.close()
    code, _, err = cli("reminders", "--as-of", AS_OF, "--db", path, "--out", tmp_path / "out")
    assert code == 0, err
    letters = {r["customer"]: r["letter"] for r in _summary(tmp_path / "out").values()}
    assert len(set(letters.values())) == 2
    for cid, name in letters.items():
        assert _eml(tmp_path / "out" / name)["X-Recon-Customer"] == cid


def _overdue_invoice(con, counterparty: str, customer_id: str) -> None:  # type: ignore[no-untyped-def]
    """One more invoice of 100.00, due on 1 May: overdue on AS_OF."""
    con.execute("""insert into txns (txn_id, side, source_id, date, due_date, amount,
                                     currency, counterparty, doc_type, customer_id)
                   values (99, 'ledger', 'A99', '2026-04-01', '2026-05-01', 100, 'EUR',
                           ?, 'invoice', ?)""", [counterparty, customer_id])


def test_an_id_with_a_line_break_gets_its_letter(db, tmp_path, cli):
    # a ledger's customer_id "R\nBcc: ..." ended in EmailMessage's ValueError, exit 1
    con = connect(db)
    _overdue_invoice(con, 'Odd', 'R9\nBcc: x@evil.example')
    con.close()
    out = tmp_path / "out"
    code, _, err = cli("reminders", "--as-of", AS_OF, "--db", db, "--out", out)
    assert code == 0, err
    letter = _summary(out)["R9\nBcc: x@evil.example"]["letter"]
    msg = _eml(out / letter)
    assert msg["X-Recon-Customer"] == "R9 Bcc: x@evil.example" and msg["Bcc"] is None
    assert msg["Subject"].endswith("customer no. R9 Bcc: x@evil.example")


def test_the_letter_has_the_name_and_address_the_csv_neutralises(db, tmp_path, cli):
    # reminders.csv writes '@Home... with a quote for spreadsheets; the letter said
    # "Dear '@Home Services GmbH," and went To: '-ar@home.example
    con = connect(db)
    _overdue_invoice(con, 'Home', 'H1')
    (tmp_path / "more.csv").write_text("id,name,email\nH1,@Home Services GmbH,-ar@home.example\n",
                                       encoding="utf-8")
    load_customers(con, tmp_path / "more.csv")
    con.close()
    out = tmp_path / "out"
    code, _, err = cli("reminders", "--as-of", AS_OF, "--db", db, "--out", out)
    assert code == 0, err
    row = _summary(out)["H1"]
    assert (row["name"], row["email"]) == ("'@Home Services GmbH", "'-ar@home.example")
    msg = _eml(out / row["letter"])
    assert msg["To"] == "-ar@home.example"
    assert "Dear @Home Services GmbH," in msg.get_content()


def test_a_nightly_job_sends_a_level_once_and_repeats_it_a_month_on(db, tmp_path, cli,
                                                                     fake_smtp):
    """A daily job sent each overdue customer a letter every night: the same friendly
    reminder on the 10th, the 11th and the 12th.  A level is now sent again only
    --repeat-days (30) after it was; a customer reaching the next level gets its letter
    the night they reach it."""
    def night(as_of: str, *extra: str) -> list[str]:
        before = len(fake_smtp.sent)
        code, _, err = cli("reminders", "--as-of", as_of, "--db", db, "--out",
                           tmp_path / as_of, "--smtp-host", "mail.example",
                           "--from", "ar@us.example", *extra)
        assert code == 0, err
        return sorted(to for _, _, to in fake_smtp.sent[before:])

    assert night("2026-06-30") == [
        "ap@friendly.example", "ap@second.example", "cw@zuihou.example"]
    assert night("2026-07-01") == []
    # on 20 July R1 (due 20 June) reaches the second notice, R2 (due 21 May) the final
    # one, and R4 (due 27 June) the friendly reminder
    assert night("2026-07-20") == [
        "ap@early.example", "ap@friendly.example", "ap@second.example"]
    # R4 reaches the second notice; a month after the first night, R3's final notice
    # goes again
    assert night("2026-07-30") == ["ap@early.example", "cw@zuihou.example"]
    assert night("2026-07-31", "--repeat-days", "0") == [
        "ap@early.example", "ap@friendly.example", "ap@second.example", "cw@zuihou.example"]
    assert night("2026-07-31", "--repeat-days", "0") == []
    code, _, err = cli("reminders", "--as-of", "2026-08-01", "--db", db, "--out",
                       tmp_path / "x", "--smtp-host", "mail.example", "--from",
                       "ar@us.example", "--repeat-days", "-1")
    assert code == 2 and "--repeat-days: expected 0 or more days, got -1" in err


def _write_off(db: Path, tmp_path: Path, cli, source_id: str) -> None:  # type: ignore[no-untyped-def]
    decisions = tmp_path / "decisions.csv"
    decisions.write_text("side,id,reason,decision,match_with,note\n"
                         f"right,{source_id},no_candidate,write_off,,customer insolvent\n",
                         encoding="utf-8")
    code, _, err = cli("apply", decisions, "--db", db, "--user", "ann")
    assert code == 0, err


def test_an_invoice_written_off_in_recon_is_not_chased(db, tmp_path, cli):
    """R3's INV-3 (1200.00, 70 days late) written off in recon got a final notice every
    night.  It is left out of the letters and reminders.csv; the aging, which ties to
    the books, still holds it and says how much is written off."""
    _write_off(db, tmp_path, cli, "A3")
    out = tmp_path / "out"
    code, stdout, err = cli("reminders", "--as-of", AS_OF, "--db", db, "--out", out)
    assert code == 0, err
    assert "2 letters" in stdout
    assert sorted(p.name for p in out.glob("*.eml")) == ["R1.eml", "R2.eml"]
    assert "R3" not in _summary(out)  # INV-4, 2 days late, is all R3 is asked for
    code, _, err = cli("aging", "--as-of", AS_OF, "--db", db, "--out", tmp_path / "a.csv")
    assert code == 0, err
    with (tmp_path / "a.csv").open(encoding="utf-8") as fh:
        row = next(r for r in csv.DictReader(fh) if r["customer"] == "R3")
    assert (row["d61_90"], row["total"], row["written_off"]) == ("1200.00", "1299.90", "1200.00")
    # a month on INV-4 is 32 days late: R3's second notice asks for it alone
    out = tmp_path / "later"
    code, _, err = cli("reminders", "--as-of", "2026-07-30", "--db", db, "--out", out)
    assert code == 0, err
    row = _summary(out)["R3"]
    assert (row["level"], row["max_days_overdue"], row["overdue_amount"], row["balance"]) == (
        "second", "32", "99.90", "99.90")
    text = _eml(out / "R3.eml").get_content()
    assert "INV-4" in text and "INV-3" not in text and "1,200.00" not in text


def test_a_receipt_quoting_no_invoice_settles_what_is_not_written_off_first(db, tmp_path, cli):
    """A receipt of 99.90 quoting no invoice was applied to the oldest invoice, INV-3,
    written off; INV-4, which it paid, stayed open and was chased."""
    con = connect(db)
    con.execute("""insert into txns (txn_id, side, source_id, date, amount, currency,
                                     counterparty, doc_type, customer_id)
                   values (98, 'ledger', 'P9', '2026-07-01', 99.90, 'EUR', 'R3', 'receipt',
                           'R3')""")
    con.close()
    _write_off(db, tmp_path, cli, "A3")
    out = tmp_path / "out"
    code, _, err = cli("reminders", "--as-of", "2026-07-30", "--db", db, "--out", out)
    assert code == 0, err
    assert "R3" not in _summary(out)
    code, _, err = cli("aging", "--as-of", "2026-07-30", "--db", db, "--out", tmp_path / "a.csv")
    assert code == 0, err
    with (tmp_path / "a.csv").open(encoding="utf-8") as fh:
        row = next(r for r in csv.DictReader(fh) if r["customer"] == "R3")
    assert (row["d61_90"], row["d90_plus"], row["total"], row["written_off"]) == (
        "0.00", "1200.00", "1200.00", "1200.00")
