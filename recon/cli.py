"""The `recon` command line (CONTRACT.md): run, demo, inspect.

Exit codes: 0 success (exceptions are normal output); 2 bad input, rules or
decisions (stderr says file, line or field, what was expected; nothing is
written to the database); 3 another run holds the database; 4 more items
unmatched than --fail-on-exceptions allows; 1 a bug.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import duckdb

from recon import __version__
from recon.db import DEFAULT_LIMIT_TEXT
from recon.errors import ReconError
from recon.progress import current_stage, for_terminal

log = logging.getLogger("recon")


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from exc


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    p = argparse.ArgumentParser(prog="recon", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"recon {__version__}")
    p.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines on stderr as text or one JSON object per line",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="only errors on stderr")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="load inputs, match, write outputs")
    run.add_argument("--rules", required=True, type=Path, help="rules YAML file")
    # --bank a.csv b.csv and --bank a.csv --bank b.csv both load the two files
    run.add_argument("--bank", nargs="+", action="extend", default=[], type=Path, metavar="FILE")
    run.add_argument(
        "--ledger", nargs="+", action="extend", default=[], type=Path, metavar="FILE"
    )
    run.add_argument(
        "--statement",
        nargs="+",
        action="extend",
        default=[],
        type=Path,
        metavar="FILE",
        help="customer statements to agree with the ledger",
    )
    run.add_argument("--db", default=Path("recon.duckdb"), type=Path)
    run.add_argument("--out", required=True, type=Path, help="output directory")
    run.add_argument("--as-of", type=_date, help="cut-off date YYYY-MM-DD")
    run.add_argument("--format", help="force the input format (default: detect)")
    run.add_argument("--profile", help="CSV/XLSX profile name or YAML path")
    run.add_argument(
        "--memory-limit",
        help=(
            f"DuckDB memory limit, e.g. 4GB (spills to disk); default: {DEFAULT_LIMIT_TEXT}. "
            "It bounds DuckDB, not the process: Python's frames come on top (see README)"
        ),
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="compute and write outputs but change nothing in the database",
    )
    run.add_argument(
        "--mask-accounts",
        action="store_true",
        help="show only the last four characters of account numbers and IBANs in outputs",
    )
    run.add_argument(
        "--fail-on-exceptions",
        type=int,
        metavar="N",
        help="exit 4 when more than N items stay unmatched (for schedulers)",
    )

    demo = sub.add_parser("demo", help="run the pipeline on the bundled sample data")
    demo.add_argument("--out", default=Path("recon-demo"), type=Path)

    app = sub.add_parser("apply", help="record a reviewer's decisions (edited CSV/XLSX)")
    app.add_argument("decisions", type=Path, metavar="DECISIONS.csv")
    app.add_argument("--db", default=Path("recon.duckdb"), type=Path)
    app.add_argument("--user", required=True, type=actor,
                     help="who decided (goes to the audit log)")

    for name, text in (
        ("close-period", "freeze matches dated in a month"),
        ("reopen-period", "reopen a closed month (with a reason)"),
    ):
        per = sub.add_parser(name, help=text)
        per.add_argument("period", metavar="YYYY-MM")
        per.add_argument("--db", default=Path("recon.duckdb"), type=Path)
        per.add_argument("--user", required=True, type=actor)
        per.add_argument("--reason", default="", help="why (required to reopen; audited)")

    ins = sub.add_parser("inspect", help="parse one file and describe it")
    ins.add_argument("file", type=Path)
    ins.add_argument("--format")
    ins.add_argument("--profile")
    ins.add_argument("--json", action="store_true", help="print JSON (CONTRACT shape)")
    for name in PLUGINS:
        importlib.import_module(name).register(sub)
    return p


def actor(text: str) -> str:
    """A `--user` value: who acts, as the audit log names them; a blank one names nobody."""
    name = text.strip()
    if not name:
        raise argparse.ArgumentTypeError(
            "expected a name (the audit log records who acted), got a blank"
        )
    return name


#: Modules that add commands: each has `register(subparsers)`, which adds its
#: parser(s) with `set_defaults(handler=function(args) -> exit code)`.
PLUGINS: tuple[str, ...] = ("recon.safety_cli", "recon.customer_cli")


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        data.update(getattr(record, "extra_fields", {}))
        return json.dumps(data, ensure_ascii=False)


def _setup_logging(fmt: str, quiet: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("recon: %(message)s"))
    log.handlers[:] = [handler]
    log.setLevel(logging.ERROR if quiet else logging.INFO)
    log.propagate = False


def cmd_run(args: argparse.Namespace) -> int:
    """`recon run`."""
    from recon.run import Inputs, run

    if not args.bank and not args.statement:
        raise ReconError("recon run: give at least one --bank or --statement file")
    if not args.ledger:
        raise ReconError("recon run: give at least one --ledger file")
    progress = for_terminal(args.log_format, args.quiet)
    try:
        report = run(
            args.rules,
            Inputs(args.bank, args.ledger, args.statement, args.format, args.profile),
            db_path=args.db,
            out_dir=args.out,
            as_of=args.as_of,
            memory_limit=args.memory_limit,
            progress=progress,
            dry_run=args.dry_run,
            mask_accounts=args.mask_accounts,
        )
    finally:
        progress.close()
    _print_summary(report.summary, args.out)
    counts = report.summary["counts"]
    open_items = counts["left_exceptions"] + counts["right_exceptions"]
    if args.fail_on_exceptions is not None and open_items > args.fail_on_exceptions:
        log.error(
            "%d items unmatched, more than --fail-on-exceptions %d",
            open_items,
            args.fail_on_exceptions,
        )
        return 4
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """`recon demo`: the bundled sample month with the default rules."""
    from recon.db import check_dir
    from recon.demo import demo_paths
    from recon.run import Inputs, run

    paths = demo_paths()
    check_dir(args.out, f"--out {args.out}")
    args.out.mkdir(parents=True, exist_ok=True)
    db = args.out / "recon.duckdb"
    for stale in (db, db.with_name(db.name + ".wal")):
        stale.unlink(missing_ok=True)  # the demo always starts from an empty database
    progress = for_terminal(args.log_format, args.quiet)
    try:
        report = run(
            paths.rules,
            Inputs(bank=[paths.bank], ledger=[paths.ledger]),
            db_path=db,
            out_dir=args.out,
            as_of=paths.as_of,
            progress=progress,
        )
    finally:
        progress.close()
    _print_summary(report.summary, args.out)
    return 0


def cmd_apply(args: argparse.Namespace) -> int:
    """`recon apply DECISIONS.csv --user NAME`."""
    from recon.db import connect, transaction
    from recon.decisions import apply_plan, plan, read_decisions
    from recon.errors import InputFileError

    if not args.decisions.is_file():
        raise InputFileError.not_a_file(args.decisions)
    if not args.db.is_file():
        raise ReconError(f"{args.db}: no database here; run `recon run --db {args.db}` first")
    tables = read_decisions(args.decisions)
    rows = [r for _, _, rs in tables for r in rs]
    con = connect(args.db)
    try:
        changes = plan(con, args.decisions, tables)
        with transaction(con):
            counts = apply_plan(con, changes, user=args.user, source=args.decisions)
    finally:
        con.close()
    print(
        f"recon apply: {len(rows)} decisions from {args.decisions}: "
        + ", ".join(f"{v} {k}" for k, v in counts.items())
    )
    return 0


def cmd_period(args: argparse.Namespace) -> int:
    """`recon close-period` / `recon reopen-period`."""
    from recon.db import connect, transaction
    from recon.periods import close_period, reopen_period

    if not args.db.is_file():
        raise ReconError(f"{args.db}: no database here; run `recon run --db {args.db}` first")
    con = connect(args.db)
    try:
        with transaction(con):
            if args.command == "close-period":
                message = close_period(con, args.period, user=args.user, reason=args.reason)
            else:
                message = reopen_period(con, args.period, user=args.user, reason=args.reason)
    finally:
        con.close()
    print(f"recon: {message}")
    return 0


def cmd_inspect(args: argparse.Namespace) -> int:
    """`recon inspect FILE --json`."""
    from recon.inspect import inspect_file

    info = inspect_file(args.file, format=args.format, profile=args.profile)
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False, default=str))
    else:
        print(f"{info['file']}: {info['format']}, {info['transactions']} transactions")
        for st in info["statements"]:
            print(
                f"  {st['account']} {st['currency']} {st['start_date']}..{st['end_date']}: "
                f"opening {st['opening_balance']} closing {st['closing_balance']}, "
                f"{st['transactions']} transactions"
            )
    return 0


def _print_summary(summary: dict[str, Any], out: Path) -> None:
    counts = summary["counts"]
    assert isinstance(counts, dict)
    rate = summary["match_rate"]
    assert isinstance(rate, float)
    left = summary.get("left_side", "bank")  # "statement" when no bank line is loaded
    lines = [
        f"recon {summary['run_id']}: {counts['left_matched']}/{counts['left_total']} "
        f"{left} lines matched ({rate:.1%}), {counts['right_matched']}/{counts['right_total']} "
        f"ledger lines matched",
        f"exceptions: {counts['left_exceptions']} {left}, {counts['right_exceptions']} ledger"
        + "".join(f"; {k} {v}" for k, v in (summary.get("exceptions_by_reason") or {}).items()),
        "by rule: " + ", ".join(f"{k} {v}" for k, v in summary["by_rule"].items()),
        f"outputs: {out}/ (matches.csv, exceptions.csv, discrepancies.csv, summary.json, report.html)",
    ]
    print("\n".join(lines))


COMMANDS = {
    "run": cmd_run,
    "demo": cmd_demo,
    "inspect": cmd_inspect,
    "apply": cmd_apply,
    "close-period": cmd_period,
    "reopen-period": cmd_period,
}


def _out_of_memory(exc: BaseException, limit: str | None) -> str:
    """What to tell the operator when the work did not fit in memory."""
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    bound = (
        f"--memory-limit {limit}"
        if limit
        else f"recon's default memory limit ({DEFAULT_LIMIT_TEXT})"
    )
    stage = current_stage()
    where = f' at stage "{stage}"' if stage else ""
    log.debug("out of memory%s", where, exc_info=exc)
    return (
        f"error: out of memory within {bound}{where} ({detail}); the database is "
        "unchanged and no output was published. Run again with a larger --memory-limit, "
        "or load the files over several nights."
    )


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the `recon` console script; exits with the CONTRACT codes."""
    sys.exit(run_cli(argv))


def run_cli(argv: Sequence[str] | None = None) -> int:
    """Parse `argv`, run the command, return the exit code (for tests)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: usage errors are bad input
        return 0 if exc.code == 0 else 2
    _setup_logging(args.log_format, args.quiet)
    started = time.perf_counter()
    handler = getattr(args, "handler", None) or COMMANDS[args.command]
    try:
        code = handler(args)
    # through the log: with --log-format json the error is one JSON object too
    except ReconError as exc:
        log.error("error: %s", exc, extra={"extra_fields": {"exit_code": exc.exit_code}})
        return exc.exit_code
    except KeyboardInterrupt:
        log.error("interrupted; the database is unchanged",
                  extra={"extra_fields": {"exit_code": 130}})
        return 130
    except (duckdb.OutOfMemoryException, MemoryError) as exc:
        log.error("%s", _out_of_memory(exc, getattr(args, "memory_limit", None)),
                  extra={"extra_fields": {"exit_code": 1}})
        return 1
    log.debug("done in %.2f s", time.perf_counter() - started)
    return code


if __name__ == "__main__":
    main()
