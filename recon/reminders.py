"""`recon reminders`: overdue customers by level, a letter each, and a summary CSV.

A customer's level comes from their most overdue open invoice (days past
due on ``--as-of``, see :mod:`recon.openitems`): with the default levels
``friendly=7,second=30,final=60`` an invoice 12 days late gives a friendly
reminder, 45 days a second notice, 61 days a final notice.  Only customers
who owe money overall (balance > 0) and have an overdue open invoice get a
letter.  An invoice written off in recon (``recon apply``, decision ``write_off``)
is not asked for: the letter, its balance and aging, and reminders.csv's overdue
amount and balance leave it out (the aging, which ties to the books, shows it
in its ``written_off`` column until the ledger settles it).  Levels are configurable (``--levels name=days,...``, increasing
days); the first level gets the friendly wording, the last the final one,
any between the second-notice wording.

Each letter lists the overdue invoices and, per currency, the overdue total,
the balance and the aging of the account (buckets from ``--rules``).

Outputs in ``--out DIR``:

* ``<customer>.eml`` — one letter per reminded customer, in their language
  (templates ``soa_reminder_en.txt.j2`` / ``soa_reminder_zh.txt.j2``), an
  RFC 5322 message ready to send (no ``To`` when the master has no e-mail).
* ``reminders.csv`` — one row per customer and currency that is overdue,
  over its credit limit or paying slower::

      customer,name,currency,level,max_days_overdue,overdue_amount,balance,
      credit_limit,over_credit_limit,avg_days_to_pay_recent,avg_days_to_pay_before,
      paying_slower,email,language,letter,sent

  ``over_credit_limit``: balance above the master's ``credit_limit`` (in the
  customer's currency; empty limit: never).  ``avg_days_to_pay_*``: mean days
  from invoice date to the receipt that settled it, for invoices settled in
  the last ``window`` days (recent) and the ``window`` days before;
  ``paying_slower`` when recent exceeds before by more than ``margin`` days.

Nothing is sent unless an SMTP host is given; then each letter with an
address is sent and each sending is recorded in the audit log
(``reminder_sent``) as soon as the server accepted it.  A customer's letter at
the level already sent for an ``--as-of`` within ``--repeat-days`` (default 30)
before this one is not sent again, unless ``--resend``: a nightly job sends each
level once as the invoices age (friendly, then second, then final) and repeats a
level a month on, not every night; a rerun after a failure midway sends only the
letters not sent.
"""

from __future__ import annotations

import os
import re
import smtplib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from recon import openitems
from recon.aging import DEFAULT_BUCKETS, bucket_columns
from recon.db import audit, transaction
from recon.errors import ReconError
from recon.soa import bucket_labels, environment, labels, money, safe_name

DEFAULT_LEVELS: tuple[tuple[str, int], ...] = (("friendly", 7), ("second", 30), ("final", 60))

SUBJECTS = {
    "en": {"first": "Payment reminder", "middle": "Second notice", "last": "Final notice"},
    "zh": {"first": "付款提醒", "middle": "第二次催款通知", "last": "最后催款通知"},
}

SUMMARY_COLUMNS = (
    "customer", "name", "currency", "level", "max_days_overdue", "overdue_amount", "balance",
    "credit_limit", "over_credit_limit", "avg_days_to_pay_recent", "avg_days_to_pay_before",
    "paying_slower", "email", "language", "letter", "sent",
)


def parse_levels(text: str) -> tuple[tuple[str, int], ...]:
    """`friendly=7,second=30,final=60` -> ((name, days), ...), checked."""
    out: list[tuple[str, int]] = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        m = re.fullmatch(r"([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(\d{1,4})", part)
        if not m or int(m[2]) < 1:
            raise ReconError(f"--levels: expected name=days like 'friendly=7', got {part!r}")
        out.append((m[1], int(m[2])))
    days = [d for _, d in out]
    if not out or days != sorted(set(days)) or len({n for n, _ in out}) != len(out):
        raise ReconError(f"--levels: expected distinct names with increasing days, got {text!r}")
    return tuple(out)


@dataclass(slots=True)
class Letter:
    """One rendered reminder."""

    customer: str
    level: str
    path: Path
    message: EmailMessage
    to: str | None
    sent: bool = False
    before: bool = False  # sent by an earlier `recon reminders` for the same --as-of


@dataclass(slots=True)
class ReminderRun:
    """What `write_reminders` did."""

    summary: Path
    letters: list[Letter] = field(default_factory=list)
    rows: int = 0


#: An open invoice a letter asks for: past due, and not written off in recon (see
#: recon.openitems.WRITTEN_OFF; the letter's balance and aging leave those out too).
_OVERDUE = "effect > 0 and open_amount > 0 and days_past_due > 0 and not written_off"


def _level_sql(levels: tuple[tuple[str, int], ...]) -> str:
    whens = " ".join(f"when max_days >= {d} then '{n}'" for n, d in reversed(levels))
    return f"case when overdue > 0 and balance > 0 then case {whens} end end"


def summary_sql(levels: tuple[tuple[str, int], ...], window: int, margin: int) -> str:
    """Rows of reminders.csv (one `?` parameter: as_of), over `__recon__ar_items`."""
    ranks = " ".join(f"when '{n}' then {i}" for i, (n, _) in enumerate(levels))
    return f"""
        with cur as (
            select customer, currency, any_value(name) as name, any_value(email) as email,
                   any_value(language) as language, any_value(credit_limit) as credit_limit,
                   coalesce(sum(open_amount) filter (where not written_off), 0) as balance,
                   coalesce(sum(open_amount) filter (where {_OVERDUE}), 0) as overdue,
                   max(days_past_due) filter (where {_OVERDUE}) as max_days
            from {openitems.CUSTOMER_ITEMS} group by customer, currency),
        dtp as (
            select customer,
                   round(avg(d) filter (where settled_on > a - {window}), 1) as recent,
                   round(avg(d) filter (where settled_on <= a - {window}
                                        and settled_on > a - {2 * window}), 1) as before
            from (select customer, settled_on, ?::date as a,
                         greatest(0, date_diff('day', date, settled_on)) as d
                  from {openitems.CUSTOMER_ITEMS}
                  where effect > 0 and open_amount = 0 and settled_on is not null)
            group by customer),
        lv as (
            select cur.*, {_level_sql(levels)} as level,
                   coalesce(balance > credit_limit, false) as over_limit,
                   dtp.recent, dtp.before, coalesce(dtp.recent > dtp.before + {margin}, false)
                       as slower
            from cur left join dtp using (customer))
        select recon_safe(customer) as customer, recon_safe(name) as name, currency,
               level, case level {ranks} end as level_rank, max_days as max_days_overdue,
               recon_fmt(overdue, currency) as overdue_amount,
               recon_fmt(balance, currency) as balance,
               recon_fmt(credit_limit, currency) as credit_limit,
               over_limit as over_credit_limit, recent as avg_days_to_pay_recent,
               before as avg_days_to_pay_before, slower as paying_slower,
               recon_safe(email) as email, language, customer as raw_customer,
               -- the letter's: recon_safe is for the spreadsheet, not 'Dear '@Home GmbH'
               name as raw_name, email as raw_email
        from lv where level is not null or over_limit or slower
        order by customer, currency"""


def _letter_items(
    con: duckdb.DuckDBPyConnection, customers: list[str], buckets: tuple[int, ...]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(overdue open invoices, aging per currency) of the reminded customers."""
    con.register("__recon__remind_ids", pl.DataFrame({"customer": customers},
                                                     schema={"customer": pl.String}))
    mine = f"""select * from {openitems.ITEMS}
               where customer in (select customer from __recon__remind_ids)"""
    sums = ", ".join(f"coalesce(sum(open_amount) filter (where {cond}), 0) as {name}"
                     for name, cond in bucket_columns(buckets))
    try:
        items = con.sql(f"""
            select customer, source_id, reference, date, due, days_past_due, open_amount,
                   currency
            from ({mine}) where {_OVERDUE}
            order by customer, currency, due, date, source_id""").pl()
        aging = con.sql(f"""select customer, currency, {sums}, sum(open_amount) as balance
            from ({mine}) where not written_off
            group by customer, currency order by customer, currency""").pl()
    finally:
        con.unregister("__recon__remind_ids")
    return items, aging


def _render(cust: dict[str, Any], items: pl.DataFrame, aging: pl.DataFrame, stage: str,
            as_of: date, sender: str | None, buckets: tuple[int, ...]) -> EmailMessage:
    lang = "zh" if (cust["language"] or "en").startswith("zh") else "en"
    rows = [{"doc": r["source_id"], "ref": r["reference"] or "", "date": r["date"].isoformat(), "due": r["due"].isoformat(),
             "days": r["days_past_due"], "amount": money(r["open_amount"], r["currency"]),
             "currency": r["currency"]} for r in items.iter_rows(named=True)]
    names = [n for n, _ in bucket_columns(buckets)]
    bucket_text = bucket_labels(buckets, labels(lang))
    totals = [{"currency": a["currency"], "balance": money(a["balance"], a["currency"]),
               "overdue": money(sum((r["open_amount"] for r in items.iter_rows(named=True)
                                     if r["currency"] == a["currency"]), Decimal(0)),
                                a["currency"]),
               "aging": [(t, money(a[n], a["currency"])) for t, n in zip(bucket_text, names,
                                                                         strict=True)]}
              for a in aging.iter_rows(named=True)]
    body = environment().get_template(f"soa_reminder_{lang}.txt.j2").render(
        name=cust["raw_name"] or cust["raw_customer"], customer=cust["raw_customer"],
        stage=stage, as_of=as_of.isoformat(), items=rows, totals=totals)
    msg = EmailMessage()
    # a header is one line: an id with a line break (a ledger's customer_id may hold one)
    # is written there with spaces, or EmailMessage refuses it
    cid = " ".join(cust["raw_customer"].split())
    suffix = (f"：逾期发票（客户编号 {cid}）" if lang == "zh"
              else f" - overdue invoices, customer no. {cid}")
    msg["Subject"] = SUBJECTS[lang][stage] + suffix
    msg["From"] = sender or "accounts-receivable@localhost"
    if cust["raw_email"]:
        msg["To"] = cust["raw_email"]
    msg["Date"] = format_datetime(datetime.combine(as_of, time(9), tzinfo=UTC))
    msg["X-Recon-Customer"] = cid
    msg["X-Recon-Level"] = cust["level"]
    msg.set_content(body)
    return msg


def write_reminders(
    con: duckdb.DuckDBPyConnection, as_of: date, out_dir: Path, *,
    levels: tuple[tuple[str, int], ...] = DEFAULT_LEVELS, policy: str = "oldest_first",
    window: int = 90, margin: int = 5, smtp: Smtp | None = None,
    buckets: tuple[int, ...] = DEFAULT_BUCKETS,
) -> ReminderRun:
    """Write one .eml per overdue customer and reminders.csv; send only when `smtp` is given."""
    openitems.prepare(con, as_of, policy)
    rows = con.sql(summary_sql(levels, window, margin), params=[as_of]).pl()
    out_dir.mkdir(parents=True, exist_ok=True)
    # one letter per customer, at the highest level over their currencies
    per_customer = (rows.filter(pl.col("level").is_not_null())
                    .sort("level_rank", descending=True, maintain_order=True)
                    .unique("raw_customer", keep="first", maintain_order=True)
                    .sort("raw_customer"))
    items, aging = _letter_items(con, per_customer["raw_customer"].to_list(), buckets)
    run = ReminderRun(out_dir / "reminders.csv")
    for cust in per_customer.iter_rows(named=True):
        rank = cust["level_rank"]
        stage = "first" if rank == 0 else "last" if rank == len(levels) - 1 else "middle"
        mine = pl.col("customer") == cust["raw_customer"]
        msg = _render(cust, items.filter(mine), aging.filter(mine), stage, as_of,
                      smtp.sender if smtp else None, buckets)
        path = out_dir / f"{safe_name(cust['raw_customer'])}.eml"
        _atomic_bytes(path, bytes(msg))
        run.letters.append(Letter(cust["raw_customer"], cust["level"], path, msg,
                                  cust["raw_email"]))
    try:
        if smtp is not None:
            send_reminders(con, run, smtp, as_of)
    finally:  # the summary says what was sent, even when the server failed midway
        _write_summary(run, rows)
    return run


def _write_summary(run: ReminderRun, rows: pl.DataFrame) -> None:
    files = {lt.customer: lt.path.name for lt in run.letters}
    sent = {lt.customer for lt in run.letters if lt.sent}
    frame = rows.with_columns(
        pl.col("raw_customer").replace_strict(files, default=None).alias("letter"),
        pl.col("raw_customer").is_in(list(sent)).alias("sent"),
    ).select(SUMMARY_COLUMNS)
    tmp = run.summary.with_name(f".{run.summary.name}.tmp")
    frame.write_csv(tmp)
    os.replace(tmp, run.summary)
    run.rows = frame.height


@dataclass(frozen=True, slots=True)
class Smtp:
    """Where to send: a server and the sender address."""

    host: str
    port: int
    sender: str
    actor: str = "recon"
    resend: bool = False  # send again the letters already sent (see send_reminders)
    repeat_days: int = 30  # a level is sent again this many days on


def send_reminders(con: duckdb.DuckDBPyConnection, run: ReminderRun, smtp_cfg: Smtp,
                   as_of: date) -> int:
    """Send every letter that has an address and was not sent at its level for an as_of
    within `smtp_cfg.repeat_days` before `as_of` (the same as_of at least; the audit log
    says; unless `smtp_cfg.resend`); audit each sending; return how many were sent.  A
    rerun after a failure midway sent the first letters again, and a nightly job each
    overdue customer a letter every night."""
    done = set() if smtp_cfg.resend else set(con.execute(
        """select object, json_extract_string(detail, '$.level') from audit_log
        where action = 'reminder_sent' and date_diff(
            'day', json_extract_string(detail, '$.as_of')::date, ?::date) between 0 and ?""",
        [as_of.isoformat(), max(smtp_cfg.repeat_days - 1, 0)]).fetchall())
    sent = 0
    host, port = smtp_cfg.host, smtp_cfg.port
    try:
        with smtplib.SMTP(host, port, timeout=30) as smtp:
            for letter in run.letters:
                if not letter.to:
                    continue
                if (letter.customer, letter.level) in done:
                    letter.sent = letter.before = True
                    continue
                smtp.send_message(letter.message, from_addr=smtp_cfg.sender)
                letter.sent = True
                sent += 1
                with transaction(con):
                    audit(con, smtp_cfg.actor, "reminder_sent", letter.customer,
                          {"level": letter.level, "to": letter.to, "file": letter.path.name,
                           "smtp": f"{host}:{port}", "as_of": as_of.isoformat()})
    except (OSError, smtplib.SMTPException) as exc:
        raise ReconError(f"SMTP {host}:{port}: {exc}; {sent} reminders were sent and "
                         "recorded in the audit log before the failure") from exc
    return sent


def _atomic_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
