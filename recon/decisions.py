"""`recon apply`: a reviewer's decisions from an edited exceptions.csv or matches.csv.

Tolerates what a spreadsheet does to a CSV on re-saving: a BOM, CRLF line
ends, `;` as delimiter, reordered or extra columns, an apostrophe recon put
before formula-like text, ids whose leading zeros were dropped.  All or
nothing: every problem in the file is listed (line and column) and nothing
is applied unless the file is clean.

Decisions: on exception rows ``match`` (with ``match_with``), ``write_off``
(with a ``note`` giving the reason) and ``ignore``; on match rows ``accept``
(a suggested match becomes manual) and ``reject`` (the match is broken, its
rows return to the exceptions and the pair is never proposed again).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from recon.db import LEFT_SIDES, _now, audit_many, decided_sql, first
from recon.errors import DecisionsError
from recon.matchinfo import active_member_sql
from recon.matchinfo import match_id as manual_match_id
from recon.normalise import CONTROL_CHARS
from recon.periods import closed_period_of_sql

EXCEPTION_DECISIONS = ("match", "write_off", "ignore")
MATCH_DECISIONS = ("accept", "reject")


@dataclass(slots=True)
class Row:
    """One non-empty decision row of the file."""

    line: int
    decision: str
    values: dict[str, str]


@dataclass(slots=True)
class Plan:
    """Validated changes, applied in one transaction."""

    groups: list[tuple[set[int], set[int], str, int]] = field(default_factory=list)
    resolutions: list[tuple[int, str, str, int]] = field(
        default_factory=list
    )  # txn, kind, note, line
    accepts: list[tuple[str, str, int]] = field(default_factory=list)  # match_id, note, line
    rejects: list[tuple[str, str, int]] = field(default_factory=list)


def read_decisions(path: Path) -> list[tuple[str, str, list[Row]]]:
    """(where, kind, rows with a decision) for each table in the file.

    A CSV holds one table; a workbook from `matches.xlsx` may carry decisions
    on both its `exceptions` and `matches` sheets.
    """
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        tables = _read_xlsx(path)
    else:
        tables = [("", *_read_csv(path))]
    out = []
    for where, records, header in tables:
        kind = _kind(path, where, header, strict=len(tables) == 1)
        if kind is None:
            continue
        rows = []
        for line, rec in records:
            values = {k.strip().lower(): _clean(v) for k, v in rec.items() if k is not None}
            decision = values.get("decision", "").lower().replace("-", "_").replace(" ", "_")
            if decision:
                rows.append(Row(line, decision, values))
        out.append((where, kind, rows))
    if not out:
        raise DecisionsError(
            path,
            [
                "header: expected the columns of exceptions.csv (side, id, reason, decision, "
                "match_with, note) or of matches.csv (match_id, left_ids, right_ids, decision, note)"
            ],
        )
    return out


def _kind(path: Path, where: str, header: list[str], *, strict: bool) -> str | None:
    cols = {h.strip().lower() for h in header}
    if {"match_id", "left_ids", "right_ids"} <= cols:
        kind = "matches"
    elif {"side", "id", "reason"} <= cols:
        kind = "exceptions"
    else:
        return None
    if "decision" not in cols and not strict:
        return None  # a sheet of the workbook nobody decided on
    if "decision" not in cols:
        raise DecisionsError(
            path,
            [
                f"{where or 'header'}: no 'decision' column; "
                "add it and fill it in for the rows to apply"
            ],
        )
    return kind


_CONTROL = re.compile(CONTROL_CHARS)


def _clean(value: Any) -> str:
    text = "" if value is None else str(value).strip()
    return text[1:] if text.startswith("'") else text  # recon's formula guard


def _read_csv(path: Path) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")  # Excel's "CSV" in Western Windows locales
        except UnicodeDecodeError as exc:
            raise DecisionsError(path, [
                f"byte {exc.start + 1}: the file is neither UTF-8 nor Windows-1252; "
                "save it as 'CSV UTF-8' and apply it again"
            ]) from exc
    if bad := _CONTROL.search(text):
        raise DecisionsError(path, [
            f"line {text.count(chr(10), 0, bad.start()) + 1}: control character "
            f"{bad.group()!r} in the text; a decisions file is text: remove it, or save "
            "the sheet again as 'CSV UTF-8'"
        ])
    first_line = text.splitlines()[0] if text else ""
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
    header = list(reader.fieldnames or [])
    # a record is named by its first line: line_num is its last (a note may hold breaks)
    return [(reader.line_num - sum(v.count("\n") for v in rec.values() if isinstance(v, str)),
             rec) for rec in reader], header


def _read_xlsx(path: Path) -> list[tuple[str, list[tuple[int, dict[str, str]]], list[str]]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many types for a broken workbook
        raise DecisionsError(path, [f"cannot read the workbook: {exc}"]) from exc
    tables = []
    for ws in wb.worksheets:
        it = ws.iter_rows(values_only=True)
        header = [str(h or "") for h in next(it, ())]
        records = [
            (n, {h: _cell(v) for h, v in zip(header, values, strict=False)})
            for n, values in enumerate(it, start=2)
        ]
        tables.append((f"sheet {ws.title!r}", records, header))
    return tables


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, str) and "_x" in v:
        from openpyxl.utils.escape import unescape

        # control characters are stored as _x000D_ escapes, which openpyxl keeps as text
        return str(unescape(v))
    return str(v)


#: A stored row the resolver may name: txn id, account, file name.
_Hit = tuple[int, str | None, str | None]


class _Resolver:
    """Maps ids as written in the file to txn ids, tolerating lost leading zeros.

    Only the stored rows whose id is one of `idents` (leading zeros aside) are read:
    reading every stored row into Python dicts took 14 s (profiled) at two million rows."""

    def __init__(self, con: duckdb.DuckDBPyConnection, idents: set[str]) -> None:
        rows = con.execute(
            """select t.txn_id, t.side, t.source_id, t.account, f.name from txns t
            left join files f on f.file_id = t.file_id
            where t.source_id in (select unnest(?::varchar[]))
               or ltrim(t.source_id, '0') in (select unnest(?::varchar[]))""",
            [sorted(idents), sorted({i.lstrip("0") for i in idents})],
        ).fetchall()
        self.ids = {int(r[0]) for r in rows}
        self.sides = {int(r[0]): str(r[1]) for r in rows}
        self.exact: dict[tuple[str, str], list[_Hit]] = {}
        self.loose: dict[tuple[str, str], list[_Hit]] = {}
        for txn_id, side, source_id, account, file in rows:
            role = "right" if side == "ledger" else "left"
            self.exact.setdefault((role, source_id), []).append((txn_id, account, file))
            self.loose.setdefault((role, source_id.lstrip("0")), []).append(
                (txn_id, account, file))

    def find(self, role: str, ident: str, account: str | None = None,
             file: str | None = None) -> tuple[int | None, str]:
        hits = self.exact.get((role, ident)) or self.loose.get((role, ident.lstrip("0"))) or []
        side = "bank/statement" if role == "left" else "ledger"
        if account and hits:
            # the row of that account or none: another account's row of the same id is
            # another transaction (it was taken when it was the only one)
            mine = [h for h in hits if h[1] == account]
            if not mine:
                found = ", ".join(sorted(str(h[1]) for h in hits))
                return None, (f"no {side} row {ident!r} in account {account!r} "
                              f"(the id is in account(s) {found})")
            hits = mine
        if len(hits) > 1 and file:
            # exceptions.csv names each row's file: a bank line and a customer statement's
            # line (both 'left') or two accounts' files without account numbers
            hits = [h for h in hits if h[2] == file] or hits
        if len(hits) == 1:
            return hits[0][0], ""
        if not hits:
            return None, f"unknown {side} id {ident!r}"
        where = ", ".join(sorted(f"{h[1]} in {h[2]}" for h in hits))
        return None, (f"{side} id {ident!r} exists in several accounts or files ({where}); "
                      "fill 'account' or 'file'")


def plan(
    con: duckdb.DuckDBPyConnection, path: Path, tables: list[tuple[str, str, list[Row]]]
) -> Plan:
    """Validate every row of every table; raise DecisionsError listing all problems."""
    problems: list[str] = []
    p = Plan()
    for where, kind, rows in tables:
        found: list[str] = []
        if kind == "exceptions":
            _plan_exceptions(con, rows, p, found)
        else:
            _plan_matches(con, rows, p, found)
        problems += [f"{where}, {x}" if where else x for x in found]
    if problems:
        raise DecisionsError(path, problems)
    return p


def _matched(con: duckdb.DuckDBPyConnection, txns: set[int]) -> dict[int, dict[str, str]]:
    """txn id -> its active matches by pass, of the rows `txns`.  A match is of the pass
    of the left side it holds (a bank line, a customer statement's line), and a match of
    ledger rows alone (a reversal) of every pass, as recon.pipeline.open_items_sql reads
    them: a ledger row can be in one match of each pass."""
    rows = con.execute(
        f"""select mm.txn_id, mm.match_id,
                   list_distinct(list(x.side) filter (where x.side <> 'ledger'))
        from match_members mm
        join match_members y on y.match_id = mm.match_id
        join txns x on x.txn_id = y.txn_id
        where mm.txn_id in (select unnest(?::bigint[])) and {active_member_sql()}
        group by mm.txn_id, mm.match_id""",
        [sorted(txns)],
    ).fetchall()
    out: dict[int, dict[str, str]] = {}
    for t, m, sides in rows:
        for side in sides or LEFT_SIDES:
            out.setdefault(int(t), {})[str(side)] = str(m)
    return out


def _match_with(row: Row) -> list[str]:
    """The ids of a row's `match_with`, separated by ';' or ','."""
    return [i.strip() for i in row.values.get("match_with", "").replace(",", ";").split(";")
            if i.strip()]


def _named_ids(rows: list[Row]) -> set[str]:
    """The ids an exceptions table's rows name, in `id` and in `match_with`."""
    return {i for row in rows for i in (row.values.get("id", ""), *_match_with(row))}


@dataclass(frozen=True, slots=True)
class _Taken:
    """What keeps a stored row from a decision, be it the row decided or an id of its
    `match_with`: an active match, a period closed, an earlier write-off or ignore."""

    matched: dict[int, dict[str, str]]  # txn -> its active matches by pass (see _matched)
    resolved: set[int]  # txns written off or ignored
    closed: dict[int, str]  # txn -> the closed period it is dated in
    dates: dict[int, str]  # txn -> its date (ISO), of the rows the file names
    currencies: dict[int, str]  # txn -> its currency, of the rows the file names
    sides: dict[int, str]  # txn -> its side, of the rows the file names

    def why(self, txn: int, ident: str) -> str | None:
        """Why the row `txn` (`ident` as the file wrote it) cannot be written off or
        ignored (every pass leaves it then); None if it can."""
        if txn in self.matched:
            return (f"{ident!r} is already matched ({min(self.matched[txn].values())}); "
                    "reject that match first")
        if txn in self.closed:
            return (f"{ident!r} is dated in closed period {self.closed[txn]}; reopen it first "
                    "with `recon reopen-period`")
        if txn in self.resolved:
            return f"{ident!r} was already written off or ignored"
        return None

    def why_not_match(self, named: dict[int, tuple[str, str]]) -> str | None:
        """Why the rows `named` (txn -> the column and id the file wrote, the decided
        row first) cannot be one match; None if they can.  The match is of the customer
        statement pass when it holds a statement line: a row matched in the other pass
        only is open to it.  Each side's rows are in one currency: its amount is their
        sum.  It is dated by its latest row (see recon.periods)."""
        kinds = {self.sides[t] for t in named} - {"ledger"}
        if len(kinds) > 1:
            return ("column 'match_with': a bank line and a customer statement's line in one "
                    "match; each is matched to the ledger on its own")
        first: dict[bool, int] = {}  # is a ledger row -> the first row of its side
        for t, (column, ident) in named.items():
            mate = first.setdefault(self.sides[t] == "ledger", t)
            if self.currencies[t] != self.currencies[mate]:
                return (f"column {column!r}: {ident!r} is in {self.currencies[t]}, "
                        f"{named[mate][1]!r} in {self.currencies[mate]}; the rows of one side "
                        "of a match are in one currency")
        kind = "statement" if "statement" in kinds else "bank"
        for t, (column, ident) in named.items():
            if kind in self.matched.get(t, {}):
                return (f"column {column!r}: {ident!r} is already matched "
                        f"({self.matched[t][kind]}); reject that match first")
            if t in self.resolved:
                return f"column {column!r}: {ident!r} was already written off or ignored"
        last = max(named, key=lambda t: self.dates[t])
        if last not in self.closed:
            return None
        column, ident = named[last]
        return (f"column {column!r}: {ident!r} is dated in closed period {self.closed[last]}, "
                "and so would be the match, dated by its latest row; reopen it first with "
                "`recon reopen-period`")


def _plan_exceptions(
    con: duckdb.DuckDBPyConnection, rows: list[Row], p: Plan, problems: list[str]
) -> None:
    # what the checks read, of the rows the table names only
    res = _Resolver(con, _named_ids(rows))
    resolved = {
        int(t)
        for (t,) in con.execute(
            decided_sql()
        ).fetchall()
    }
    facts = con.execute(
        f"""select txn_id, date::varchar, currency, {closed_period_of_sql('date')} from txns
        where txn_id in (select unnest(?::bigint[]))""",
        [sorted(res.ids)],
    ).fetchall()
    taken = _Taken(
        _matched(con, res.ids),
        resolved,
        closed={int(t): str(p) for t, _, _, p in facts if p is not None},
        dates={int(t): str(d) for t, d, _, _ in facts},
        currencies={int(t): str(c) for t, _, c, _ in facts},
        sides=res.sides,
    )
    decided: dict[int, int] = {}  # txn -> the line writing it off or ignoring it
    groups: list[tuple[set[int], set[int], str, int]] = []
    for row in rows:
        where = f"line {row.line}"
        if row.decision not in EXCEPTION_DECISIONS:
            problems.append(
                f"{where}, column 'decision': unknown decision {row.decision!r}; on exception rows "
                f"expected one of {', '.join(EXCEPTION_DECISIONS)}"
            )
            continue
        role = row.values.get("side", "").lower()
        if role not in ("left", "right"):
            problems.append(f"{where}, column 'side': expected 'left' or 'right', got {role!r}")
            continue
        txn, err = res.find(role, row.values.get("id", ""), row.values.get("account") or None,
                            row.values.get("file") or None)
        if txn is None:
            problems.append(f"{where}, column 'id': {err}")
            continue
        why = taken.why(txn, row.values["id"]) if row.decision != "match" else None
        if why:
            problems.append(f"{where}, column 'id': {why}")
            continue
        note = row.values.get("note", "")
        if row.decision == "write_off" and not note:
            problems.append(f"{where}, column 'note': a write-off needs its reason in 'note'")
            continue
        if row.decision in ("write_off", "ignore"):
            if txn in decided:
                problems.append(
                    f"{where}, column 'id': {row.values['id']!r} is also decided on line "
                    f"{decided[txn]}; one decision per row"
                )
                continue
            decided[txn] = row.line
            p.resolutions.append((txn, row.decision, note, row.line))
            continue
        group = _match_group(res, row, role, txn, taken, where, problems)
        if group is not None:
            groups.append((*group, note, row.line))
    p.groups = _distinct_groups(groups, decided, problems)


def _match_group(
    res: _Resolver,
    row: Row,
    role: str,
    txn: int,
    taken: _Taken,
    where: str,
    problems: list[str],
) -> tuple[set[int], set[int]] | None:
    other = "right" if role == "left" else "left"
    ids = _match_with(row)
    if not ids:
        problems.append(
            f"{where}, column 'match_with': 'match' needs the other side's ids, separated by ';'"
        )
        return None
    mine, theirs = {txn}, set()
    named = {txn: ("id", row.values["id"])}
    for ident in ids:
        found, err = res.find(other, ident)
        if found is None:
            found, _err2 = res.find(role, ident)  # a same-side id joins the group (many-to-one)
            if found is None:
                problems.append(f"{where}, column 'match_with': {err}")
                return None
            mine.add(found)
        else:
            theirs.add(found)
        named.setdefault(found, ("match_with", ident))
    if not theirs:
        problems.append(f"{where}, column 'match_with': no id of the other side given")
        return None
    why = taken.why_not_match(named)
    if why:
        problems.append(f"{where}, {why}")
        return None
    return (mine, theirs) if role == "left" else (theirs, mine)


def _distinct_groups(
    groups: list[tuple[set[int], set[int], str, int]],
    decided: dict[int, int],
    problems: list[str],
) -> list[tuple[set[int], set[int], str, int]]:
    """The file's matches (left ids, right ids, note, line), each once.

    A match written on each of its rows counts once: a row whose ids are all in another
    row's match (the same match, or the part of it one row names) adds nothing.  A row
    sharing an id with another match, or naming an id the file writes off or ignores,
    is a problem, whichever line comes first."""
    # the largest first, so that a match's parts meet it whole; then in file order
    by_size = sorted(groups, key=lambda g: (-(len(g[0]) + len(g[1])), g[3]))
    kept: list[tuple[set[int], set[int], str, int]] = []
    owner: dict[int, int] = {}  # txn -> its match in `kept`
    for left, right, note, line in by_size:
        met = sorted({owner[t] for t in left | right if t in owner})
        if len(met) == 1 and left <= kept[met[0]][0] and right <= kept[met[0]][1]:
            continue
        resolved = next((decided[t] for t in sorted(left | right) if t in decided), None)
        if met:
            problems.append(
                f"line {line}, column 'match_with': an id of this group is also "
                f"matched on line {kept[met[0]][3]}; put all ids of one match on one row"
            )
        elif resolved is not None:
            problems.append(
                f"line {line}, column 'match_with': an id of this group is written off "
                f"or ignored on line {resolved}"
            )
        else:
            owner.update(dict.fromkeys(left | right, len(kept)))
            kept.append((left, right, note, line))
    return sorted(kept, key=lambda g: g[3])


def _frozen_matches(con: duckdb.DuckDBPyConnection, mids: list[str]) -> dict[str, str]:
    """match_id -> closed period for active matches among `mids` dated in a closed
    period: by their latest row (see recon.periods)."""
    rows = con.execute(
        f"""select match_id, {closed_period_of_sql("last")} as p from (
            select mm.match_id, max(t.date) as last
            from match_members mm join txns t on t.txn_id = mm.txn_id
            where mm.match_id in (select unnest(?::varchar[])) and {active_member_sql()}
            group by mm.match_id)
        where p is not null""",
        [mids],
    ).fetchall()
    return {str(m): str(p) for m, p in rows}


def _plan_matches(
    con: duckdb.DuckDBPyConnection, rows: list[Row], p: Plan, problems: list[str]
) -> None:
    # the matches the table names only
    mids = sorted({row.values.get("match_id", "") for row in rows})
    active = {
        str(m): str(s)
        for m, s in con.execute(
            "select match_id, status from matches "
            "where active and match_id in (select unnest(?::varchar[]))",
            [mids],
        ).fetchall()
    }
    frozen = _frozen_matches(con, mids)
    decided: dict[str, int] = {}  # match id -> the line deciding it
    for row in rows:
        where = f"line {row.line}"
        mid = row.values.get("match_id", "")
        if mid in decided:
            # applied, an accept and a reject of one match left it manual and ended
            problems.append(
                f"{where}, column 'match_id': {mid!r} is also decided on line "
                f"{decided[mid]}; one decision per match"
            )
            continue
        decided[mid] = row.line
        if row.decision not in MATCH_DECISIONS:
            problems.append(
                f"{where}, column 'decision': unknown decision {row.decision!r}; on match rows "
                f"expected one of {', '.join(MATCH_DECISIONS)}"
            )
        elif mid not in active:
            problems.append(f"{where}, column 'match_id': no active match {mid!r}")
        elif mid in frozen:
            problems.append(
                f"{where}, column 'match_id': {mid!r} is dated in closed period {frozen[mid]}; "
                f"reopen it first with `recon reopen-period {frozen[mid]} --reason ...`"
            )
        elif row.decision == "accept" and active[mid] == "manual":
            # as a write-off applied twice is: accepted again, the match took a second
            # decision and audit record
            problems.append(
                f"{where}, column 'match_id': {mid!r} is already manual (accepted or "
                "matched by hand); nothing to accept"
            )
        elif row.decision == "accept":
            p.accepts.append((mid, row.values.get("note", ""), row.line))
        else:
            p.rejects.append((mid, row.values.get("note", ""), row.line))


def apply_plan(
    con: duckdb.DuckDBPyConnection, p: Plan, *, user: str, source: Path
) -> dict[str, int]:
    """Write the validated decisions and their audit records (caller holds the transaction).

    The decisions, the audit records and each kind's change of matches are written by
    one statement each, not one per decision: table matches has no index on match_id
    (see recon.db), and an update per match scanned it; with them `recon apply` of 5,000
    accepts and rejects took 144 s on the 1M benchmark's database (35 s with the index,
    1.3 s now: bench/apply.py)."""
    now = _now()
    next_id = int((first(con, "select coalesce(max(decision_id), 0) from decisions") or (0,))[0])
    decided: list[tuple[Any, ...]] = []
    records: list[tuple[str, str, dict[str, Any]]] = []

    def decide(txn: int | None, decision: str, match_id: str | None, note: str, line: int,
               obj: str, **detail: Any) -> None:
        decided.append((next_id + len(decided) + 1, txn, decision, match_id, note, user,
                        str(source), now, True))
        records.append((decision, obj, {**detail, "note": note, "file": str(source),
                                        "line": line}))

    mids = _manual_matches(con, [(left, right, note) for left, right, note, _ in p.groups], now)
    for mid, (left, right, note, line) in zip(mids, p.groups, strict=True):
        decide(None, "match", mid, note, line, mid, left=sorted(left), right=sorted(right))
    for txn, kind, note, line in p.resolutions:
        decide(txn, kind, None, note, line, str(txn))
    _update_matches(con, "status = 'manual'", [mid for mid, _, _ in p.accepts])
    for mid, note, line in p.accepts:
        decide(None, "accept", mid, note, line, mid)
    _update_matches(
        con,
        "active = false, ended_reason = 'rejected', ended_at = ?",
        [mid for mid, _, _ in p.rejects],
        [now],
    )
    for mid, note, line in p.rejects:
        decide(None, "reject", mid, note, line, mid)
    # read by DuckDB from this variable (see recon.db)
    rows = pl.DataFrame(decided, schema=DECISION_SCHEMA, orient="row")  # noqa: F841
    con.execute("insert into decisions select * from rows")
    audit_many(con, user, records)
    return {
        "matched": len(p.groups),
        "resolved": len(p.resolutions),
        "accepted": len(p.accepts),
        "rejected": len(p.rejects),
    }


#: The columns of table decisions as a polars schema (for :func:`apply_plan`'s frame).
DECISION_SCHEMA = pl.Schema({
    "decision_id": pl.Int64(), "txn_id": pl.Int64(), "decision": pl.String(), "match_id": pl.String(),
    "note": pl.String(), "actor": pl.String(), "source_file": pl.String(),
    "decided_at": pl.Datetime("us"), "active": pl.Boolean(),
})


def _update_matches(
    con: duckdb.DuckDBPyConnection, assignments: str, ids: list[str], params: list[Any] | None = None
) -> None:
    """`update matches set <assignments>` of the matches `ids` (`params`: the assignments')."""
    if ids:
        con.execute(
            f"update matches set {assignments} "
            "where match_id in (select unnest(?::varchar[]))",
            [*(params or []), ids],
        )


#: A manual match's kind by whether it has more than one row on the left and on the right.
_KINDS = {
    (False, False): "one_to_one",
    (False, True): "one_to_many",
    (True, False): "many_to_one",
    (True, True): "many_to_many",
}


def _manual_matches(
    con: duckdb.DuckDBPyConnection, groups: list[tuple[set[int], set[int], str]], now: Any
) -> list[str]:
    """Record the manual matches of `groups` (left txn ids, right txn ids, note), each
    replacing a match of the same id; return their ids, in order.  Every table is
    written by one statement, where five or more per match each scanned txns or
    matches (500 manual matches: 40.6 s of `recon apply` before, 1.1 s now with
    :func:`plan`'s reads, bench/apply.py)."""
    if not groups:
        return []
    mids, heads, members = [], [], []
    for left, right, note in groups:
        ids = [*sorted(left), -1, *sorted(right)]
        mid = manual_match_id("manual|" + ",".join(map(str, ids)))
        mids.append(mid)
        kind = _KINDS[(len(left) > 1, len(right) > 1)]
        heads.append((mid, kind, f"matched by hand: {note}" if note else "matched by hand"))
        members += [(mid, t, "left") for t in left] + [(mid, t, "right") for t in right]
    # read by DuckDB from these variables (see recon.db)
    head = pl.DataFrame(heads, schema=["match_id", "kind", "explanation"], orient="row")  # noqa: F841
    member = pl.DataFrame(  # noqa: F841
        members, schema={"match_id": pl.String(), "txn_id": pl.Int64(), "role": pl.String()},
        orient="row",
    )
    con.execute("delete from match_members where match_id in (select match_id from head)")
    con.execute("delete from matches where match_id in (select match_id from head)")
    con.execute(
        """insert into matches
        with s as (
            select m.match_id,
                   sum(t.amount) filter (where m.role = 'left') as la,
                   sum(t.amount) filter (where m.role = 'right') as ra,
                   -- across two currencies no difference is stated: each side's rows
                   -- are in one (see _Taken.why_not_match), but apply has no rate
                   count(distinct t.currency) > 1 as fx,
                   date_diff('day', max(t.date) filter (where m.role = 'right'),
                                    max(t.date) filter (where m.role = 'left')) as dd
            from member m join txns t on t.txn_id = m.txn_id group by m.match_id)
        select h.match_id, null, 'manual', -1, h.kind, 'manual', 1.0, s.la, s.ra,
               case when not s.fx then s.la - s.ra end, s.dd, h.explanation, ?, true, null,
               null, null, null
        from head h join s using (match_id)""",
        [now],
    )
    con.execute("insert into match_members select match_id, txn_id, role from member")
    return mids
