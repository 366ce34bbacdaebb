"""Commands `recon audit verify|show`, `recon backup` and `recon restore` (a CLI plugin).

Exit codes follow CONTRACT.md: 0 success; 2 a broken audit chain, a damaged,
altered or unreadable backup, or a bad argument; 3 another process holds the
database.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from recon.errors import ReconError

DEFAULT_DB = Path("recon.duckdb")


def _say(text: str) -> None:
    """The command's output on stdout (like the CLI's own commands)."""
    sys.stdout.write(text + "\n")


def register(sub: Any) -> None:
    """Add the audit, backup and restore commands to the `recon` subparsers."""
    from recon.cli import actor  # the CLI's own, for the commands it registers
    aud = sub.add_parser("audit", help="check the audit trail, or show one item's history")
    asub = aud.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    ver = asub.add_parser("verify", help="recompute the hash chain; exit 2 naming the "
                          "first record altered or removed")
    ver.add_argument("--db", default=DEFAULT_DB, type=Path)
    ver.add_argument("--against", type=Path, action="append", default=[], metavar="FILE",
                     help="a run's summary.json or a backup's manifest.json: the head of "
                          "the log it kept must still be there (catches a rebuilt chain)")
    ver.set_defaults(handler=cmd_audit_verify)
    show = asub.add_parser("show", help="history of one item: its file, matches, decisions")
    show.add_argument("item", metavar="ID", help="the row's id as in the outputs, or a match id")
    show.add_argument("--db", default=DEFAULT_DB, type=Path)
    show.add_argument("--side", choices=("left", "right", "bank", "ledger", "statement"))
    show.add_argument("--json", action="store_true", help="one JSON list of events")
    show.set_defaults(handler=cmd_audit_show)

    bak = sub.add_parser("backup", help="export the whole database into DIR (verifiable)")
    bak.add_argument("dir", type=Path, metavar="DIR")
    bak.add_argument("--db", default=DEFAULT_DB, type=Path)
    bak.add_argument("--encrypt", action="store_true",
                     help="AES-256-GCM; key from $RECON_BACKUP_KEY or --key-file")
    bak.add_argument("--key-file", type=Path, metavar="PATH",
                     help="file holding the base64 32-byte key")
    bak.set_defaults(handler=cmd_backup)

    res = sub.add_parser("restore", help="replace the database with the backup in DIR")
    res.add_argument("dir", type=Path, metavar="DIR")
    res.add_argument("--db", default=DEFAULT_DB, type=Path)
    res.add_argument("--force", action="store_true",
                     help="replace an existing database (its state is exported first)")
    res.add_argument("--key-file", type=Path, metavar="PATH")
    res.add_argument("--user", type=actor, help="who restores (audit log; default: the OS user)")
    res.set_defaults(handler=cmd_restore)


def _existing(db: Path) -> Path:
    if not db.is_file():
        raise ReconError(f"{db}: no database here; run `recon run --db {db}` first")
    return db


def cmd_audit_verify(args: argparse.Namespace) -> int:
    """`recon audit verify`: 0 when the chain holds, 2 naming the first broken record."""
    from recon.audit import check_copy, verify
    from recon.db import connect

    copies = [(str(f), _kept_head(f)) for f in args.against]
    con = connect(_existing(args.db))
    try:
        problems = verify(con)
        for where, copy in copies:
            problems += check_copy(con, copy, where)
        n = con.execute("select count(*) from audit_log").fetchall()[0][0]
    finally:
        con.close()
    if problems:
        raise ReconError(f"{args.db}: the audit trail is broken:\n  " + "\n  ".join(problems))
    _say(f"recon audit: {n} records, hash chain intact")
    return 0


def _kept_head(path: Path) -> str:
    """The audit_head a summary.json or backup manifest.json kept."""
    import json

    try:
        head = json.loads(path.read_text(encoding="utf-8")).get("audit_head")
    except (OSError, ValueError, AttributeError) as exc:
        raise ReconError(f"{path}: cannot read it as a summary.json or manifest.json "
                         f"({exc})") from exc
    if not isinstance(head, str):
        raise ReconError(f"{path}: holds no audit_head; give a summary.json or backup "
                         "manifest.json written by this recon")
    return head


def cmd_audit_show(args: argparse.Namespace) -> int:
    """`recon audit show ID`: the item's history, oldest first."""
    from recon.audit import show
    from recon.db import connect

    con = connect(_existing(args.db))
    try:
        events = show(con, args.item, args.side)
    finally:
        con.close()
    if args.json:
        _say(json.dumps(events, indent=2, ensure_ascii=False, default=str))
        return 0
    for e in events:
        seq = f"  [audit {e['audit_seq']}]" if e["audit_seq"] else ""
        _say(f"{e['at'] or '?':19}  {e['item']}  {e['event']:<13} by {e['by'] or '-'}: "
              f"{e['detail']}{seq}")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    """`recon backup DIR [--encrypt]`."""
    from recon.backup import KEY_ENV, backup, read_key

    key = None
    if args.encrypt:
        key = read_key(args.key_file)
        if key is None:
            raise ReconError(f"--encrypt: set ${KEY_ENV} (base64 of 32 bytes) or give "
                             "--key-file; a key is never taken from the command line")
    elif args.key_file:
        raise ReconError("--key-file is only used with --encrypt")
    manifest = backup(_existing(args.db), args.dir, key=key)
    rows = sum(manifest["tables"].values())
    _say(f"recon backup: {args.db} -> {args.dir} ({len(manifest['tables'])} tables, {rows} "
          f"rows{', encrypted' if key else ''})")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    """`recon restore DIR [--force]`: verified before anything changes."""
    from recon.backup import read_key, restore

    restore(args.dir, args.db, key=read_key(args.key_file), force=args.force,
            actor=args.user)
    _say(f"recon restore: {args.dir} -> {args.db}")
    return 0
