"""`recon run`: load inputs, run the rule pipeline, write the outputs.

The database changes in one transaction: a bad file, bad rules or a crash
leaves it as it was (and a database the run created is removed again when the
run fails before its commit, see recon.db.session).  Files whose bytes were
loaded before are skipped, rows already stored are not stored twice, and
earlier matches are kept, so a nightly rerun with the same inputs changes
nothing.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from recon import __version__, matchinfo, warmup
from recon.aging import aging_frame, unlinked_sql
from recon.agreement import OUR_LINES, agreement_frame, carried_balances, statement_totals
from recon.audit import head as audit_head
from recon.config import RuleSet, load_rules
from recon.db import (
    LEFT_SIDES,
    FileHash,
    StoredFile,
    audit,
    check_dir,
    file_sha256,
    first,
    known_file,
    remember_hashes,
    session,
    size_memory_limit,
    sql_literal,
    store_file,
    transaction,
)
from recon.diagnose import diagnose
from recon.errors import InputFileError
from recon.integrity import StatementCheck
from recon.loaders import load_file
from recon.loaders.balances import split_balances
from recon.mask import mask
from recon.pipeline import PipelineResult, run_pipeline
from recon.progress import start
from recon.reports import csvout
from recon.reports.brs import statement_frame, statement_rows

Progress = Callable[[str, float], None]
log = logging.getLogger("recon")

#: matches.xlsx is written when the three tables together have at most this many rows.
MAX_XLSX_ROWS = 200_000
#: Above this many rows, the workbook's matches sheet holds only matches to review.
REVIEW_ONLY_ABOVE = 50_000


@dataclass(slots=True)
class Inputs:
    """Input files of a run, by side."""

    bank: Sequence[Path] = ()
    ledger: Sequence[Path] = ()
    statement: Sequence[Path] = ()
    format: str | None = None
    profile: str | None = None

    def by_side(self) -> list[tuple[str, Path]]:
        """(side, path) for every input, in command-line order."""
        return (
            [("bank", Path(p)) for p in self.bank]
            + [("ledger", Path(p)) for p in self.ledger]
            + [("statement", Path(p)) for p in self.statement]
        )


@dataclass(slots=True)
class RunReport:
    """What a run did: the summary written to summary.json, and where outputs are."""

    summary: dict[str, Any]
    out_dir: Path
    outputs: dict[str, Path] = field(default_factory=dict)


def _utc() -> datetime:
    return datetime.now(UTC)


#: A new file's rows, estimated from its size until the load counts them (to size the
#: memory limit of the load): a CSV line of a bank export is 100 to 200 bytes; files with
#: more bytes per row (OFX, CAMT) are estimated low, and their load is small anyway.
BYTES_PER_ROW = 150


def run(
    rules_path: Path,
    inputs: Inputs,
    *,
    db_path: Path,
    out_dir: Path,
    as_of: date | None = None,
    memory_limit: str | None = None,
    progress: Progress | None = None,
    actor: str = "recon",
    dry_run: bool = False,
    mask_accounts: bool = False,
) -> RunReport:
    """Run the whole pipeline; raise ReconError (exit 2) before any change on bad input."""
    started = _utc()
    stages: dict[str, float] = {}
    say = progress or (lambda msg, secs: None)

    def begin(stage: str) -> None:
        start(progress, stage)

    ruleset = load_rules(rules_path)
    check_dir(out_dir, f"--out {out_dir}")
    check_dir(db_path.parent, f"--db {db_path}")
    run_id = started.strftime("R%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
    # a database this run creates is removed again if the run commits nothing to it (it
    # failed before its commit, or ran with --dry-run)
    with session(db_path, memory_limit=memory_limit) as con:
        # the compiled kernel and the report's template, beside the loading; once the
        # database is ours: a run refused (bad rules, a locked database) warms nothing up
        warmup.start()
        todo, hashed = _new_files(con, inputs)
        if not memory_limit:
            # sized to the rows held and, until they are counted, those of the new files
            size_memory_limit(con, sum(p.stat().st_size for _, p, _, k in todo if k is None)
                              // BYTES_PER_ROW)
        # --dry-run: compute and write everything, then roll the database back
        with transaction(con, commit=not dry_run):
            # kept with the run: a dry run or a failed one keeps none
            remember_hashes(con, hashed)
            stored, integrity = _load(con, todo, inputs, run_id, actor, progress, stages)
            if not memory_limit:
                size_memory_limit(con)
            parsed = sum(s["rows"] for s in stored if not s["already_loaded"])
            say(f"parsed {parsed} rows", stages["parse"])
            say(f"stored {sum(s['new_rows'] for s in stored)} new rows", stages["load"])
            passes = _passes(con, inputs)
            staging = out_dir / f".staging-{run_id}"
            _remove_stale_staging(out_dir)
            staging.mkdir(parents=True, exist_ok=True)
            results: dict[str, PipelineResult] = {}
            reasons: dict[str, int] = {}
            agreement: pl.DataFrame | None = None  # with the customer statements' pass
            for left_side in passes:
                t0 = time.perf_counter()
                results[left_side] = run_pipeline(
                    con, ruleset, run_id, left_side=left_side, as_of=as_of, progress=progress
                )
                stages[f"match_{left_side}"] = time.perf_counter() - t0
                if results[left_side].unsettled:
                    log.warning(
                        "%s matching reached its limit of %d passes still matching (%d in "
                        "the last): a rerun may match more",
                        left_side, results[left_side].passes, results[left_side].unsettled,
                    )
                t0 = time.perf_counter()
                begin(f"writing {left_side} matches, exceptions and discrepancies")
                matchinfo.refresh(con)
                diagnose(con, ruleset)
                if left_side == "statement":
                    # the statements' exceptions are their customers' lines in our books
                    # (as the agreement reads them), not every ledger row
                    agreement = agreement_frame(con, as_of or started.date())
                    con.execute(f"""delete from __recon__diag where side = 'right'
                        and id not in (select txn_id from {OUR_LINES})""")
                prefix = "" if left_side == passes[0] else f"{left_side}_"
                _write_csvs(
                    con, ruleset, left_side, staging, prefix, as_of or started.date(), mask_accounts
                )
                csvout.copy_atomic(con, changes_sql(run_id, left_side),
                                   staging / f"{prefix}changes.csv")
                con.execute(
                    "insert into run_exceptions select ?, side, id, reason, ? from __recon__diag",
                    [run_id, left_side],
                )
                if not prefix:
                    reasons = dict(
                        con.execute(
                            "select reason, count(*) from __recon__diag group by 1 order by 1"
                        ).fetchall()
                    )
                stages[f"outputs_{left_side}"] = time.perf_counter() - t0
                say(f"wrote {left_side} outputs", stages[f"outputs_{left_side}"])
            _check_match_ids(con, run_id)
            finished = _utc()
            summary = _summary(
                con, ruleset, run_id, started, finished, stored, results, as_of, stages
            )
            summary["exceptions_by_reason"] = {k: int(v) for k, v in reasons.items()}
            summary["integrity"] = integrity
            if agreement is not None:
                _write_frame(agreement, staging / "statement_agreement.csv")
            summary["dry_run"] = dry_run
            con.execute(
                "insert into runs values (?, ?, ?, ?, ?, ?, ?, 'ok', ?)",
                [
                    run_id,
                    started.replace(tzinfo=None),
                    finished.replace(tzinfo=None),
                    str(rules_path),
                    ruleset.sha256,
                    as_of,
                    __version__,
                    json.dumps(summary),
                ],
            )
            audit(con, actor, "run", run_id, {"rules": ruleset.sha256, "counts": summary["counts"]})
            t0 = time.perf_counter()
            begin("bank reconciliation statement")
            brs = statement_frame(statement_rows(con, as_of or started.date()))
            if mask_accounts:
                brs = brs.with_columns(pl.col("account").map_elements(mask, return_dtype=pl.String))
            _write_frame(brs, staging / "bank_reconciliation.csv")
            summary["stages"]["reconciliation_statement"] = round(time.perf_counter() - t0, 3)
            say("bank reconciliation statement", time.perf_counter() - t0)
            t0 = time.perf_counter()
            begin("receivables aging")
            aging = aging_frame(con, as_of or started.date(), ruleset.aging_buckets,
                                ruleset.settlement)
            _write_frame(aging, staging / "aging.csv")
            csvout.copy_atomic(con, unlinked_sql(), staging / "aging_unlinked.csv")
            summary["stages"]["aging"] = round(time.perf_counter() - t0, 3)
            say("receivables aging", time.perf_counter() - t0)
            t0 = time.perf_counter()
            begin("report.html and matches.xlsx")
            _write_report(staging, summary, brs, aging)
            summary["stages"]["report"] = round(time.perf_counter() - t0, 3)
            say("report.html and matches.xlsx", time.perf_counter() - t0)
            t0 = time.perf_counter()
            begin("committing")
            # the next run removes those of them it does not write again (see _publish)
            summary["outputs"] = sorted([*(f.name for f in staging.iterdir()), "summary.json"])
            # a copy of the log's head kept out of the database (`recon audit verify
            # --against`); a dry run's records are rolled back
            summary["audit_head"] = None if dry_run else audit_head(con)
            _write_json(staging / "summary.json", summary)
        # published only after the commit: a killed run leaves the old outputs
        outputs = _publish(staging, out_dir)
        say(f"committed; outputs in {out_dir}", time.perf_counter() - t0)
        return RunReport(summary, out_dir, outputs)


def _check_match_ids(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Stop the run, before its commit, if it made a match id that another match holds.

    Match ids are hashes of their members (recon.matchinfo.MATCH_ID_HEX); table
    matches has no key constraint to refuse a second row with one: the key's index
    cost the 1M benchmark's full run about 6 s (its commit 7.2 -> 2.0 s, recording
    the one-to-one matches 2.4 -> 1.4 s).  This looks at the ids of this run's matches
    only: 0.17-0.21 s for the 891,677 of the 1M benchmark's full run, 0.03 s for the
    13,059 of its night."""
    dup = first(
        con,
        """select match_id from matches
        where match_id in (select match_id from matches where run_id = ?)
        group by match_id having count(*) > 1 limit 1""",
        [run_id],
    )
    if dup is not None:
        raise RuntimeError(
            f"match id {dup[0]} was made for two different matches in run {run_id}; "
            "nothing was committed: report this as a bug"
        )


def _new_files(
    con: duckdb.DuckDBPyConnection, inputs: Inputs
) -> tuple[list[tuple[str, Path, str, StoredFile | None]], list[FileHash]]:
    """Each input as (side, path, sha256, earlier load of the same bytes or None), and
    the hashes made now, for the run to keep (see recon.db.file_sha256)."""
    todo, hashed = [], []
    for side, path in inputs.by_side():
        if not path.is_file():
            raise InputFileError.not_a_file(path, hint="check the path given to --" + side)
        sha, made = file_sha256(con, path)
        if made is not None:
            hashed.append(made)
        todo.append((side, path, sha, known_file(con, sha, side)))
    return todo, hashed


def _load(
    con: duckdb.DuckDBPyConnection,
    todo: list[tuple[str, Path, str, StoredFile | None]],
    inputs: Inputs,
    run_id: str,
    actor: str,
    progress: Progress | None,
    stages: dict[str, float],
) -> tuple[list[dict[str, Any]], list[dict[str, object]]]:
    """Parse and store the inputs one file at a time, in the run's transaction.

    A file's parsed rows are let go once stored, so a run holds one file's rows in
    memory, not every file's; an error in any file rolls the transaction back, so
    nothing is half-loaded.  Returns what was stored per file and the integrity
    breaks of the bank and customer statements loaded.
    """
    stages["parse"] = stages["load"] = 0.0
    check = StatementCheck()
    stored = []
    this_run: dict[tuple[str, str], StoredFile] = {}
    for side, path, sha, done in todo:
        if done is None and (side, sha) in this_run:
            # the same bytes given twice in one command: skipped, as in a later run
            done = replace(this_run[side, sha], new_rows=0, already_loaded=True)
        if done is None:
            t0 = time.perf_counter()
            start(progress, f"parsing {path.name}")
            # a customer statement's balance b/f may have no date (split_balances below)
            result = load_file(path, format=inputs.format, profile=inputs.profile,
                               undated_balances=side == "statement")
            if side == "bank":
                check.add(result)
            elif side == "statement":  # a customer's balance b/f is no payment of theirs
                result = split_balances(result)
                # checked once its balance lines state its balances
                check.add_customer(result, statement_totals(con, result.frame),
                                   carried_balances(con, result.frame, result.carried))
            stages["parse"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            start(progress, f"storing {path.name}")
            done = this_run[side, sha] = store_file(con, result, side=side, sha=sha,
                                                    run_id=run_id)
            del result  # in the database now: the next file needs the memory
        info = {"file": str(path), "side": side, "format": done.format,
                "profile": done.profile, "rows": done.rows, "new_rows": done.new_rows,
                "sha256": sha, "already_loaded": done.already_loaded}
        if not done.already_loaded:
            audit(con, actor, "load", str(path), info)
            stages["load"] += time.perf_counter() - t0
        stored.append(info)
    return stored, [b.as_dict() for b in check.breaks()]


def _passes(con: duckdb.DuckDBPyConnection, inputs: Inputs) -> list[str]:
    """Which left sides to reconcile against the ledger: bank and/or statement."""
    sides = [
        s
        for (s,) in con.execute(
            "select distinct side from txns where list_contains(?, side) order by side",
            [list(LEFT_SIDES)],
        ).fetchall()
    ]
    return sides or ["bank"]


def _summary(
    con: duckdb.DuckDBPyConnection,
    ruleset: RuleSet,
    run_id: str,
    started: datetime,
    finished: datetime,
    stored: list[dict[str, Any]],
    results: dict[str, PipelineResult],
    as_of: date | None,
    stages: dict[str, float],
) -> dict[str, Any]:
    main = "bank" if "bank" in results else next(iter(results))
    counts = _counts(con, main, as_of)
    res = results[main]
    by_rule = {r.name: r.matches for r in res.rules}
    return {
        "run_id": run_id,
        "started_at": started.isoformat(timespec="seconds"),
        "finished_at": finished.isoformat(timespec="seconds"),
        "inputs": [
            {
                "file": s["file"],
                "side": s["side"],
                "format": s["format"],
                "profile": s["profile"],
                "rows": s["rows"],
                "new_rows": s["new_rows"],
                "sha256": s["sha256"],
            }
            for s in stored
        ],
        "counts": counts,
        "by_rule": by_rule,
        "match_rate": round(counts["left_matched"] / counts["left_total"], 6)
        if counts["left_total"]
        else 0.0,
        "engine_version": __version__,
        "rules_file": {"path": ruleset.path, "sha256": ruleset.sha256},
        "as_of": as_of.isoformat() if as_of else None,
        "left_side": main,
        "rules": [
            {
                "name": r.name,
                "matcher": r.matcher,
                "candidates": r.candidates,
                "matches": r.matches,
                "auto": r.auto,
                "suggested": r.suggested,
                "ambiguous": r.ambiguous,
                "seconds": round(r.seconds, 3),
            }
            for r in res.rules
        ],
        "stages": {k: round(v, 3) for k, v in stages.items()},
    }


def _counts(con: duckdb.DuckDBPyConnection, left_side: str, as_of: date | None) -> dict[str, int]:
    cutoff = f"and t.date <= date '{as_of.isoformat()}'" if as_of else ""
    row = first(
        con,
        f"""
        select
          count(*) filter (where side = '{left_side}'),
          count(*) filter (where side = 'ledger'),
          count(*) filter (where side = '{left_side}' and matched),
          count(*) filter (where side = 'ledger' and matched)
        from (select t.side, t.txn_id in ({matchinfo.ACTIVE_MEMBERS_SQL}) as matched
              from txns t where true {cutoff})""",
    )
    assert row is not None
    lt, rt, lm, rm = (int(x) for x in row)
    return {
        "left_total": lt,
        "right_total": rt,
        "left_matched": lm,
        "right_matched": rm,
        "left_exceptions": lt - lm,
        "right_exceptions": rt - rm,
    }


def changes_sql(run_id: str, left_side: str = "bank") -> str:
    """What changed since the previous run: matches made and broken, exceptions in and
    out, of the pass of `left_side` (a ledger row open for the statements but matched to
    the bank is no exception of the bank)."""
    q = sql_literal(run_id)
    return f"""
    with prev as (select run_id, finished_at from runs where run_id <> {q}
                  order by finished_at desc limit 1),
    prev_exc as (select side, txn_id, reason from run_exceptions
                 where run_id = (select run_id from prev)
                   and coalesce(left_side, '{left_side}') = '{left_side}'),
    changed as (select match_id from matches
                where (run_id = {q} and active)
                   or (not active and ended_at > coalesce((select finished_at from prev),
                                                          timestamp '1900-01-01'))),
    ids as (select match_id, left_ids as l, right_ids as r from match_info i
            where match_id in (select match_id from changed)
              and {csvout.scope_sql(left_side)})
    select 'new_match' as change, null as side, recon_safe(i.l) as left_ids,
           recon_safe(i.r) as right_ids, m.match_id, m.status as detail
    from matches m join ids i using (match_id) where m.run_id = {q} and m.active
    union all
    select 'broken_match', null, recon_safe(i.l), recon_safe(i.r), m.match_id,
           coalesce(m.ended_reason, 'broken')
    from matches m join ids i using (match_id)
    where not m.active and m.ended_at > coalesce((select finished_at from prev), timestamp '1900-01-01')
    union all
    select 'new_exception', d.side, case when d.side = 'left' then recon_safe(d.source_id) end,
           case when d.side = 'right' then recon_safe(d.source_id) end, null, d.reason
    from __recon__diag d
    where (d.side, d.id) not in (select (side, txn_id) from prev_exc)
    union all
    select 'resolved_exception', p.side, case when p.side = 'left' then recon_safe(t.source_id) end,
           case when p.side = 'right' then recon_safe(t.source_id) end, null, p.reason
    from prev_exc p join txns t on t.txn_id = p.txn_id
    where (p.side, p.txn_id) not in (select (side, id) from __recon__diag)
    order by 1, 3, 4"""


def _write_csvs(
    con: duckdb.DuckDBPyConnection,
    ruleset: RuleSet,
    left_side: str,
    staging: Path,
    prefix: str,
    as_of: date,
    mask_accounts: bool = False,
) -> None:
    files = {
        "matches": csvout.matches_sql(left_side),
        "exceptions": csvout.exceptions_sql(as_of, mask=mask_accounts),
        "discrepancies": csvout.discrepancies_sql(left_side, ruleset.date_lag_days),
    }
    for name, sql in files.items():
        csvout.copy_atomic(con, sql, staging / f"{prefix}{name}.csv")


def _remove_stale_staging(out_dir: Path) -> None:
    """Staging folders of runs that were killed before they published."""
    import shutil

    if out_dir.is_dir():
        for old in out_dir.glob(".staging-*"):
            shutil.rmtree(old, ignore_errors=True)


def _publish(staging: Path, out_dir: Path) -> dict[str, Path]:
    """Move every staged output into `out_dir` (each by an atomic rename), once the
    outputs of the run before that this one did not write are gone: a matches.xlsx
    that a bigger night skipped would stay beside the new files, looking current."""
    staged = sorted(staging.iterdir())
    for name in _published_before(out_dir) - {f.name for f in staged}:
        if (out_dir / name).is_file():
            (out_dir / name).unlink()
    outputs = {}
    for f in staged:
        target = out_dir / f.name
        os.replace(f, target)
        outputs[f.stem] = target
    staging.rmdir()
    return outputs


def _published_before(out_dir: Path) -> set[str]:
    """The files the run before published in `out_dir`, as its summary.json lists them."""
    try:
        listed = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))["outputs"]
    except (OSError, ValueError, TypeError, KeyError):
        return set()  # no run before, or one from before summary.json listed its outputs
    # plain names only: nothing outside out_dir is ever removed
    return {n for n in listed if isinstance(n, str) and n not in ("", ".", "..")
            and n == Path(n).name}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _write_frame(frame: pl.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    frame.write_csv(tmp)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def _write_report(
    out_dir: Path, summary: dict[str, Any], brs: pl.DataFrame, aging: pl.DataFrame | None = None
) -> Path:
    from recon.reports.html import MATCH_COLUMNS, render_report
    from recon.reports.xlsx import write_workbook

    def read(name: str, columns: list[str] | None = None) -> pl.DataFrame:
        return pl.read_csv(out_dir / name, infer_schema=False, columns=columns)

    # the report tallies matches by rule and status: their other columns are read
    # only for the workbook, and on a big night only the matches to review
    tally = read("matches.csv", list(MATCH_COLUMNS))
    frames = {name: read(f"{name}.csv") for name in ("exceptions", "discrepancies")}
    html = render_report(summary, tally, frames["exceptions"], frames["discrepancies"], brs, aging)
    others = sum(f.height for f in frames.values())
    review_only = tally.height + others > REVIEW_ONLY_ABOVE
    # a big night: the workbook keeps what a person decides on; auto matches
    # stay in matches.csv (writing them costs more than the rest of the run)
    shown = tally.filter(pl.col("status") != "auto").height if review_only else tally.height
    rows = shown + others
    if rows <= MAX_XLSX_ROWS:
        matches = pl.scan_csv(out_dir / "matches.csv", infer_schema=False)
        if review_only:
            matches = matches.filter(pl.col("status") != "auto")
        sheets = {"matches": matches.collect(), **frames}
        write_workbook(out_dir / "matches.xlsx", {"bank_reconciliation": brs, **sheets}, summary)
        summary["xlsx"] = "matches.xlsx"
        if shown < tally.height:
            summary["xlsx"] += (
                f" (matches to review only; the {tally.height - shown}"
                " auto matches are in matches.csv)"
            )
    else:
        # a workbook of this size is slow to write and to open: the CSVs have it all
        summary["xlsx"] = f"not written: {rows} rows, more than {MAX_XLSX_ROWS}"
        log.info("matches.xlsx not written: %d rows (limit %d); use the CSV files", rows, MAX_XLSX_ROWS)
    path = out_dir / "report.html"
    tmp = path.with_name(".report.html.tmp")
    tmp.write_text(html, encoding="utf-8")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path
