"""The open tables' `has_name` (made once per run) decides the name feature as the two
text columns it stands for did: a row with neither a name nor a description scores the
name at 0.5, whatever its partner."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from recon import pipeline
from recon.config import load_rules
from recon.db import connect
from recon.run import Inputs, run
from recon.scoring import score_pairs

from ..conftest import RULES
from ..test_generator import gen


def test_has_name_stands_for_name_or_description(tmp_path: Path) -> None:
    data = gen.generate(tmp_path / "data", seed=12, rows=300, mode="hard")
    run(RULES, Inputs(bank=[data["bank"]], ledger=[data["ledger"]]),
        db_path=tmp_path / "r.duckdb", out_dir=tmp_path / "out", as_of=None)
    ruleset = load_rules(RULES)
    con = connect(tmp_path / "r.duckdb")
    con.execute("begin")
    con.execute("delete from match_members")
    con.execute("delete from matches")
    # every third row loses its name and every fifth its description: all four kinds
    con.execute("update txns set name_key = null, name_alt = null where txn_id % 3 = 0")
    con.execute("update txns set description = null where txn_id % 5 = 0")
    pipeline.prepare_open_tables(con, ruleset, left_side="bank", as_of=None)
    t = pipeline.T
    for table in (t.left, t.right):
        rows = con.execute(
            f"""select o.has_name, x.name_key is not null, x.description is not null
            from {table} o join txns x on x.txn_id = o.id"""
        ).fetchall()
        assert rows and all(h == (k or d) for h, k, d in rows)
        kinds = {(k, d) for _, k, d in rows}
        assert kinds == {(True, True), (True, False), (False, True), (False, False)}, table
    # pairs of every kind with every kind, scored as a rule scores them
    con.execute(
        f"""create temp table cand as
        select l.id as l, r.id as r from {t.left} l join {t.right} r
          on l.currency = r.currency and abs(date_diff('day', l.date, r.date)) <= 2"""
    )
    rule = ruleset.rules[0]
    feats = score_pairs(
        con,
        t,
        "cand",
        tolerance=rule.matcher.amount_tolerance(),
        window=rule.matcher.date,
        text=(),
        weights=rule.weights,
        explain=False,
    )
    truth = con.sql(
        """select c.l, c.r,
               (a.name_key is not null or a.description is not null)
               and (b.name_key is not null or b.description is not null) as both
        from cand c join txns a on a.txn_id = c.l join txns b on b.txn_id = c.r"""
    ).pl()
    checked = feats.join(truth, on=["l", "r"])
    assert checked.height == feats.height > 100
    named = checked.filter("both")
    assert named.height and checked.filter(~pl.col("both")).height
    assert (named["s_name"] == named["name_sim"] / 100).all()
    assert (checked.filter(~pl.col("both"))["s_name"] == 0.5).all()
    con.execute("rollback")
    con.close()
