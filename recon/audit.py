"""The audit trail: check its hash chain, and tell the history of one item.

Every record of ``audit_log`` carries the hash of the record before it
(:func:`recon.db.audit`), and ``meta.audit_head`` names the newest one.
:func:`verify` recomputes the chain: an edited record no longer matches its
own hash, a removed record leaves a gap in ``seq`` and a ``prev_hash`` that
points at nothing, and records cut from the end fall short of the head.

The chain makes edits evident, not impossible: someone who can write the
database file could rebuild every hash after an edit.  Copies of the head
kept elsewhere catch that: each run's ``summary.json`` and each backup's
``manifest.json`` hold ``audit_head`` (``seq:hash`` of the newest record then),
and ``recon audit verify --against FILE`` checks that the log still holds that
record with that hash (:func:`check_copy`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb

from recon.db import LEFT_SIDES, audit_digest, scalar
from recon.errors import ReconError

GENESIS = "0" * 64
MAX_PROBLEMS = 20


def _label(seq: int, at: datetime | None, action: str | None, obj: str | None) -> str:
    when = at.isoformat(sep=" ", timespec="seconds") if at else "?"
    return f"audit record {seq} ({action} {obj!r} at {when})"


def verify(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Recompute the audit chain; return its problems, the first broken record first."""
    problems: list[str] = []
    expected_seq, prev_hash, prev_label = 1, GENESIS, "the start of the log"
    rows = con.execute(
        "select seq, logged_at, actor, action, object, detail, prev_hash, hash "
        "from audit_log order by seq"
    ).fetchall()
    for seq, at, actor, action, obj, body, stored_prev, stored in rows:
        label = _label(seq, at, action, obj)
        if seq != expected_seq:
            missing = (f"record {expected_seq}" if seq == expected_seq + 1
                       else f"records {expected_seq}..{seq - 1}")
            problems.append(f"{missing} removed: the log jumps from {prev_label} to {label}")
        elif stored_prev != prev_hash:
            problems.append(f"{label}: its link to {prev_label} is broken "
                            "(that record was altered or one before it removed)")
        if at is None or stored != audit_digest(
            seq, at, actor or "", action or "", obj or "", body or "", stored_prev or ""
        ):
            problems.append(f"{label} was altered: its content no longer matches its hash")
        expected_seq, prev_hash, prev_label = seq + 1, stored, label
    problems += _check_head(con, expected_seq - 1, prev_hash, prev_label)
    return problems[:MAX_PROBLEMS]


def _check_head(con: duckdb.DuckDBPyConnection, last: int, last_hash: str, label: str) -> list[str]:
    head = scalar(con, "select value from meta where key = 'audit_head'")
    if head is None:
        return []  # a database from before the head was kept
    seq_text, _, digest = str(head).partition(":")
    if not seq_text.isdigit():
        return [f"meta.audit_head: damaged value {head!r}"]
    seq = int(seq_text)
    if seq > last:
        missing = f"record {seq}" if seq == last + 1 else f"records {last + 1}..{seq}"
        return [f"{missing} removed from the end of the log (it ends at {label})"]
    if seq == last and digest != last_hash:
        return [f"{label} was altered: it differs from the recorded head of the log"]
    if seq < last:
        return [f"meta.audit_head names record {seq}, but the log goes on to {label}: "
                "records were added without recon"]
    return []


def head(con: duckdb.DuckDBPyConnection) -> str | None:
    """`seq:hash` of the newest audit record (meta.audit_head), for a copy kept elsewhere."""
    value = scalar(con, "select value from meta where key = 'audit_head'")
    return None if value is None else str(value)


def check_copy(con: duckdb.DuckDBPyConnection, copy: str, where: str) -> list[str]:
    """Problems of the log against `copy`, a head kept in `where` (see the module): the
    record it names must still be there with that hash, or the log was rewritten."""
    seq_text, _, digest = copy.partition(":")
    if not seq_text.isdigit() or len(digest) != 64:
        return [f"{where}: audit_head {copy!r} is not 'seq:hash'"]
    row = con.execute("select hash from audit_log where seq = ?", [int(seq_text)]).fetchall()
    if not row:
        return [f"record {seq_text}, the head {where} kept, is gone from the log"]
    if row[0][0] != digest:
        return [f"record {seq_text} differs from the head {where} kept: the log was "
                "rewritten after it (every hash rebuilt)"]
    return []


# --- history of one item -------------------------------------------------------------
MATCH_ACTIONS = ("match", "accept", "reject")
ROW_ACTIONS = ("write_off", "ignore")
PERIOD_ACTIONS = ("close_period", "reopen_period")


def _txns(con: duckdb.DuckDBPyConnection, item_id: str, side: str | None) -> list[tuple[Any, ...]]:
    sides = {None: ("bank", "statement", "ledger"), "left": LEFT_SIDES, "right": ("ledger",)}
    wanted = sides.get(side, (side,))
    marks = ", ".join("?" for _ in wanted)
    return con.execute(
        f"""select t.txn_id, t.side, t.source_id, t.account, t.date, t.amount, t.currency,
                   t.line, f.name, f.path, f.sha256, f.loaded_at, f.run_id
            from txns t left join files f on f.file_id = t.file_id
            where t.source_id = ? and t.side in ({marks}) order by t.txn_id""",
        [item_id, *wanted],
    ).fetchall()


def show(
    con: duckdb.DuckDBPyConnection, item_id: str, side: str | None = None
) -> list[dict[str, Any]]:
    """History of one item (by its source id, or a match id): oldest event first.

    Each event: ``at``, ``event``, ``by``, ``item``, ``detail`` and ``audit_seq``
    (the audit record that vouches for it, when there is one).
    """
    txns = _txns(con, item_id, side)
    if not txns:
        if scalar(con, "select count(*) from matches where match_id = ?", [item_id]):
            return _match_history(con, item_id)
        where = f" on side {side}" if side else ""
        raise ReconError(f"no item {item_id!r}{where} in the database")
    events: list[dict[str, Any]] = []
    for row in txns:
        events += _txn_history(con, row, several=len(txns) > 1)
    return sorted(events, key=lambda e: (e["at"] or "", e["audit_seq"] or 0))


def _event(at: Any, event: str, by: str | None, item: str, detail: str,
           seq: int | None = None) -> dict[str, Any]:
    stamp = at.isoformat(sep=" ", timespec="seconds") if isinstance(at, datetime) else at
    return {"at": stamp, "event": event, "by": by, "item": item, "detail": detail,
            "audit_seq": seq}


def _load_audit(con: duckdb.DuckDBPyConnection, path: str | None) -> tuple[Any, ...] | None:
    rows = con.execute(
        "select seq, actor from audit_log where action = 'load' and object = ? "
        "order by seq limit 1", [path]).fetchall()
    return rows[0] if rows else None


def _txn_history(
    con: duckdb.DuckDBPyConnection, row: tuple[Any, ...], *, several: bool
) -> list[dict[str, Any]]:
    txn_id, side, source_id, account, day, amount, cur, line, name, path, sha, loaded, run = row
    item = f"{side} {source_id}" + (f" (account {account})" if several and account else "")
    loaded_by = _load_audit(con, path)
    events = [_event(
        loaded, "loaded", loaded_by[1] if loaded_by else None, item,
        f"{day} {amount} {cur} from {name or '?'} line {line} (sha256 {str(sha)[:12]}…, "
        f"run {run})", loaded_by[0] if loaded_by else None)]
    match_ids = [r[0] for r in con.execute(
        "select distinct match_id from match_members where txn_id = ? order by 1", [txn_id]
    ).fetchall()]
    for mid in match_ids:
        events += _match_history(con, mid, item=item)
    events += _txn_decisions(con, txn_id, item)
    if day is not None:
        for seq, at, actor, action, obj, body in _audit_for(
            con, f"{day.year:04d}-{day.month:02d}", PERIOD_ACTIONS
        ):
            events.append(_event(at, action, actor, item, f"period {obj}: {_detail(body)}", seq))
    return events


def _run_actor(con: duckdb.DuckDBPyConnection, run_id: str | None) -> tuple[Any, ...] | None:
    rows = con.execute(
        "select seq, actor from audit_log where action = 'run' and object = ? limit 1",
        [run_id]).fetchall()
    return rows[0] if rows else None


def _match_history(
    con: duckdb.DuckDBPyConnection, match_id: str, item: str | None = None
) -> list[dict[str, Any]]:
    m = con.execute(
        """select match_id, run_id, rule, kind, status, score, created_at, active,
                  ended_reason, ended_at, amount_diff from matches where match_id = ?""",
        [match_id]).fetchall()[0]
    mid, run_id, rule, kind, status, score, created, active, reason, ended, diff = m
    members = con.execute(
        """select string_agg(t.side || ' ' || t.source_id, ', ' order by mm.role, t.source_id)
           from match_members mm join txns t using (txn_id) where mm.match_id = ?""",
        [mid]).fetchall()[0][0]
    label = item or f"match {mid}"
    records = _audit_for(con, mid)
    # a manual match across currencies states no difference (see recon.decisions)
    stated = "none stated across currencies" if diff is None else diff
    what = (f"match {mid} by rule {rule} ({kind}, {status}, score {score}, difference {stated}) "
            f"with {members}")
    if run_id:
        ran = _run_actor(con, run_id)
        events = [_event(created, "matched", ran[1] if ran else "recon", label,
                         f"{what} in run {run_id}", ran[0] if ran else None)]
    elif records and records[0][3] == "match":  # matched by hand in `recon apply`
        seq, at, actor, _action, _obj, body = records.pop(0)
        events = [_event(at, "matched", actor, label, f"{what}; {_detail(body)}", seq)]
    else:
        events = [_event(created, "matched", None, label, what)]
    for seq, at, actor, action, _obj, body in records:
        events.append(_event(at, action, actor, label, f"match {mid}: {_detail(body)}", seq))
    if not active:
        events.append(_event(ended, "match ended", None, label,
                             f"match {mid} ended: {reason or 'broken'}"))
    return events


def _audit_for(
    con: duckdb.DuckDBPyConnection, obj: str, actions: tuple[str, ...] = MATCH_ACTIONS
) -> list[tuple[Any, ...]]:
    marks = ", ".join("?" for _ in actions)
    return con.execute(
        "select seq, logged_at, actor, action, object, detail from audit_log "
        f"where object = ? and action in ({marks}) order by seq", [obj, *actions]).fetchall()


def _txn_decisions(con: duckdb.DuckDBPyConnection, txn_id: int, item: str) -> list[dict[str, Any]]:
    """Decisions on the row itself (write_off, ignore), with their audit records."""
    out = []
    for seq, at, actor, action, _obj, body in _audit_for(con, str(txn_id), ROW_ACTIONS):
        out.append(_event(at, action, actor, item, _detail(body), seq))
    if out:
        return out
    for decided, decision, actor, note, source in con.execute(
        "select decided_at, decision, actor, note, source_file from decisions "
        "where txn_id = ? order by decision_id", [txn_id]).fetchall():
        out.append(_event(decided, decision, actor, item,
                          f"{note or ''} (from {source})".strip()))
    return out


def _detail(body: str | None) -> str:
    """An audit record's detail as text; internal row numbers (left/right) left out."""
    try:
        data = json.loads(body or "{}")
    except json.JSONDecodeError:
        return str(body)
    if not isinstance(data, dict):
        return str(data)
    return ", ".join(f"{k} {v}" for k, v in data.items()
                     if v not in (None, "", []) and k not in ("left", "right")) or "-"
