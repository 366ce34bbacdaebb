"""Commands for customer accounts: `aging`, `statements`, `reminders`, `customers`.

Registered through :data:`recon.cli.PLUGINS`; each handler returns the exit
code and raises :class:`~recon.errors.ReconError` for anything the user can fix.

::

    recon customers FILE [--db PATH] [--user NAME]          load the customer master
    recon aging --as-of DATE [--db PATH] --out FILE.csv [--rules FILE] [--apply POLICY]
    recon statements --from DATE --to DATE --out DIR [--customer ID] [--db PATH]
    recon reminders --as-of DATE --out DIR [--db PATH] [--rules FILE] [--levels L]
                    [--smtp-host HOST --smtp-port N --from ADDR] [--resend]
                    [--repeat-days N] [--user NAME]

``--apply`` is how receipts not tied to an invoice by a match or a reference
are applied: ``oldest_first`` (default) or ``none`` (left unapplied).
"""

from __future__ import annotations

import argparse
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from recon.errors import ReconError
from recon.openitems import POLICIES


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from exc


def _common(p: argparse.ArgumentParser, *, rules: bool = True) -> None:
    p.add_argument("--db", default=Path("recon.duckdb"), type=Path)
    if rules:
        p.add_argument("--rules", type=Path, help="rules YAML: its aging.buckets are used "
                                                  "(default 30, 60, 90 days)")
    p.add_argument("--apply", choices=POLICIES, default=None, dest="policy",
                   help="apply receipts no match or reference ties to an invoice "
                        "(default: the rules file's customers.settlement, else oldest_first)")


def register(sub: Any) -> None:
    """Add the customer-account commands to the `recon` subparsers."""
    from recon.cli import actor  # the CLI's own, for the commands it registers
    cus = sub.add_parser("customers", help="load a customer master file (CSV or XLSX)")
    cus.add_argument("file", type=Path, metavar="FILE")
    cus.add_argument("--db", default=Path("recon.duckdb"), type=Path)
    cus.add_argument("--user", type=actor, default="recon", help="who loaded it (audit log)")
    cus.set_defaults(handler=cmd_customers)

    age = sub.add_parser("aging", help="receivables aging per customer")
    age.add_argument("--as-of", required=True, type=_date)
    age.add_argument("--out", required=True, type=Path, metavar="FILE.csv")
    _common(age)
    age.set_defaults(handler=cmd_aging)

    st = sub.add_parser("statements", help="statements of account per customer (HTML, PDF)")
    st.add_argument("--from", required=True, type=_date, dest="date_from")
    st.add_argument("--to", required=True, type=_date, dest="date_to")
    st.add_argument("--out", required=True, type=Path, metavar="DIR")
    st.add_argument("--customer", help="only this customer id")
    _common(st)
    st.set_defaults(handler=cmd_statements)

    rem = sub.add_parser("reminders", help="payment reminders for overdue customers")
    rem.add_argument("--as-of", required=True, type=_date)
    rem.add_argument("--out", required=True, type=Path, metavar="DIR")
    rem.add_argument("--levels", default=None,
                     help="reminder levels as name=days past due (default: the rules file's "
                          "customers.reminder_levels, else friendly=7,second=30,final=60)")
    rem.add_argument("--dtp-window", type=int, default=90, metavar="DAYS",
                     help="days-to-pay trend: compare the last DAYS with the DAYS before")
    rem.add_argument("--smtp-host", help="send the letters through this SMTP server")
    rem.add_argument("--smtp-port", type=int, default=25)
    rem.add_argument("--resend", action="store_true",
                     help="send again the letters already sent (see --repeat-days)")
    rem.add_argument("--repeat-days", type=int, default=30, metavar="DAYS",
                     help="a customer's letter at the level sent within the DAYS before "
                          "--as-of is not sent again (default 30; 0: only for the same "
                          "--as-of, a rerun)")
    rem.add_argument("--from", dest="sender", help="sender address (required to send)")
    rem.add_argument("--user", type=actor, default="recon", help="who sends (audit log)")
    _common(rem)
    rem.set_defaults(handler=cmd_reminders)


def _say(text: str) -> None:
    print(text)  # noqa: T201 - a command's summary goes to stdout


def _open_db(path: Path) -> duckdb.DuckDBPyConnection:
    from recon.db import connect

    if not path.is_file():
        raise ReconError(f"{path}: no database here; run `recon run --db {path}` first")
    return connect(path)


def _buckets(args: argparse.Namespace) -> tuple[int, ...]:
    from recon.aging import DEFAULT_BUCKETS
    from recon.config import load_rules

    rules = load_rules(args.rules) if getattr(args, "rules", None) else None
    # the command line wins over the rules file, which wins over the defaults
    if getattr(args, "policy", None) is None:
        args.policy = rules.settlement if rules else "oldest_first"
    if hasattr(args, "levels") and args.levels is None:
        levels = rules.reminder_levels if rules else (("friendly", 7), ("second", 30), ("final", 60))
        args.levels = ",".join(f"{n}={d}" for n, d in levels)
    return rules.aging_buckets if rules else DEFAULT_BUCKETS


def cmd_customers(args: argparse.Namespace) -> int:
    """`recon customers FILE`."""
    from recon.customers import load_customers
    from recon.db import session

    with session(args.db) as con:
        s = load_customers(con, args.file, actor=args.user)
    _say(f"recon customers: {s.rows} customers in {s.path}: {s.new} new, {s.updated} updated, "
          f"{s.unchanged} unchanged")
    return 0


def cmd_aging(args: argparse.Namespace) -> int:
    """`recon aging --as-of DATE --out FILE.csv`."""
    from recon.aging import write_aging

    buckets = _buckets(args)
    con = _open_db(args.db)
    try:
        files = write_aging(con, args.as_of, args.out, buckets, args.policy)
    finally:
        con.close()
    _say(f"recon aging: {files.customers} customer balances on {args.as_of} in {files.aging}; "
          f"totals in {files.segments.name}; {files.unlinked_lines} unlinked lines in "
          f"{files.unlinked.name}")
    return 0


def cmd_statements(args: argparse.Namespace) -> int:
    """`recon statements --from DATE --to DATE --out DIR`."""
    from recon.soa import write_statements

    buckets = _buckets(args)
    con = _open_db(args.db)
    try:
        written = write_statements(con, args.date_from, args.date_to, args.out,
                                   customer=args.customer, buckets=buckets, policy=args.policy)
    finally:
        con.close()
    _say(f"recon statements: {len(written)} statements (HTML and PDF) in {args.out}/, "
          f"see {args.out / 'index.html'}")
    return 0


def cmd_reminders(args: argparse.Namespace) -> int:
    """`recon reminders --as-of DATE --out DIR`."""
    from recon.reminders import Smtp, parse_levels, write_reminders

    buckets = _buckets(args)  # also settles --apply and --levels from the rules file
    levels = parse_levels(args.levels)
    if args.dtp_window < 1:
        raise ReconError(f"--dtp-window: expected a positive number of days, got {args.dtp_window}")
    smtp = None
    if args.smtp_host:
        if not args.sender:
            raise ReconError("--smtp-host needs --from: the sender address of the reminders")
        if args.repeat_days < 0:
            raise ReconError(f"--repeat-days: expected 0 or more days, got {args.repeat_days}")
        smtp = Smtp(args.smtp_host, args.smtp_port, args.sender, args.user, args.resend,
                    args.repeat_days)
    con = _open_db(args.db)
    try:
        run = write_reminders(con, args.as_of, args.out, levels=levels, policy=args.policy,
                              window=args.dtp_window, smtp=smtp, buckets=buckets)
    finally:
        con.close()
    sent = sum(lt.sent and not lt.before for lt in run.letters)
    before = sum(lt.before for lt in run.letters)
    how = f"{sent} sent via {args.smtp_host}" if smtp else "none sent (no --smtp-host)"
    if before:
        how += (f", {before} sent before at their level within {max(args.repeat_days, 1)} "
                f"day(s) of {args.as_of} (--resend sends them again)")
    _say(f"recon reminders: {len(run.letters)} letters in {args.out}/ ({how}); "
          f"summary {run.summary}")
    return 0
