"""Why is an item unmatched?  Best candidate and reason for every open row.

After the pipeline, the open rows are paired once more with relaxed
blocking (same currency, dates within ``diagnostic_days``, and: amount within
20% or 100 with names starting alike, or the same amount, or a shared
reference) and scored like any rule.  The best candidate's features
name the condition that failed, and the explanation states the exact amount
difference to it, as a match's does.

Two more kinds of candidate no rule pairs are looked for, the usual slips of a
booking: a row sharing a reference in another currency (``currency_mismatch``:
no rule but fx compares amounts of two currencies), and a row of the same name or
reference for the opposite amount (``amount_mismatch``, "opposite sign": a receipt
booked as a payment, a credit note as an invoice).

Reasons: ``ambiguous`` (two candidates about equally good),
``duplicate`` (an identical row is already matched), ``no_candidate``,
``amount_mismatch``, ``date_out_of_window``, ``currency_mismatch``,
``low_similarity`` (amount and date fit but names/references are too weak for any
rule's threshold), ``period_closed`` (a match with the best candidate would be dated
in a closed month, by its latest row: no run makes it, see recon.periods).
"""

from __future__ import annotations

from decimal import Decimal

import duckdb
import polars as pl

from recon.config import RuleSet
from recon.db import written_join_order
from recon.matchers.base import (
    REF_PAIRS,
    AmountTolerance,
    DateWindow,
    band_join_sql,
    date_condition_sql,
    keyed_sql,
)
from recon.matchers.exact import Exact
from recon.matchinfo import ACTIVE_MEMBERS_SQL
from recon.periods import frozen_mask
from recon.pipeline import (
    AMBIGUOUS,
    EXACT_DIFFERENCE_SQL,
    LEFT_OUT,
    T,
    rejected_pairs_sql,
)
from recon.scoring import explained, score_in_chunks, with_shared_refs

REASONS = (
    "ambiguous",
    "duplicate",
    "no_candidate",
    "amount_mismatch",
    "date_out_of_window",
    "currency_mismatch",
    "low_similarity",
    "period_closed",
)


def diagnose(con: duckdb.DuckDBPyConnection, ruleset: RuleSet) -> None:
    """Fill temp table __recon__diag(side, id, the row's ROW_FIELDS, reason, best_ids,
    best_score, detail)."""
    days = ruleset.diagnostic_days
    window = DateWindow(days, days)
    relaxed = AmountTolerance(Decimal(100), Decimal(20))
    by_ref = Exact(equal=("currency", "reference"), date=window)
    for statement in by_ref.prepare_sql(T):
        con.execute(statement)
    extra = ["l.currency = r.currency", date_condition_sql(window)]
    # near amounts of a payer whose name starts alike, equal amounts of anyone
    # (bounded in crowded buckets), or a shared reference: a relaxed band over every
    # open row would pair each with hundreds on a big night
    named = band_join_sql(T, relaxed, extra, names="block")
    same_amount = band_join_sql(T, AmountTolerance(), extra)
    # the slips (l, r, slip) no rule pairs; read by DuckDB from this variable below
    slips = con.sql(_slips_sql(days)).pl()
    with written_join_order(con):
        # a pair a reviewer rejected is no candidate: named the best, it was offered again
        cand: pl.DataFrame = con.sql(
            f"select distinct l, r from "
            f"(({named}) union all ({same_amount}) union all ({by_ref.candidates_sql(T)}) "
            f"union all (select l, r from slips)) "
            f"where (l, r) not in (select (l, r) from ({rejected_pairs_sql()}))"
        ).pl()
    # the best candidates of each row: those of a left row are in its chunk, and the
    # best of a right row are among the best it has in some chunk
    pairs, _ = score_in_chunks(
        con,
        T,
        cand,
        lambda p: p.filter(
            (pl.col("score") == pl.col("score").max().over("l"))
            | (pl.col("score") == pl.col("score").max().over("r"))
        ),
        tolerance=relaxed,
        window=window,
        text=(),
        weights=ruleset.settings["weights"],
        explain=False,
    )
    pairs = with_shared_refs(con, T, pairs).join(
        slips.cast({"l": pairs.schema["l"], "r": pairs.schema["r"]}), on=["l", "r"], how="left"
    )
    best = pl.concat([_best(pairs, "l", "r", "left"), _best(pairs, "r", "l", "right")])
    # a row whose best candidate would make a match dated in a closed month: no run
    # makes it (recon.periods), whatever else the pair fits
    frozen = frozen_mask(con, best.select("id", pl.col("best_ids").list.first()),
                         ("id", "best_ids"))
    best = _fitting(con, ruleset, best).with_columns(
        pl.when(frozen).then(pl.lit("period_closed")).otherwise(_reason()).alias("reason"))
    # from txns what the open tables leave out (see recon.pipeline.LEFT_OUT)
    fields = ", ".join(f"x.{c}" if c in LEFT_OUT else f"t.{c}" for c in ROW_FIELDS)
    texts = "join txns x on x.txn_id = t.id"
    own_fields = ", ".join(f"o.{c}" for c in ROW_FIELDS)
    # `best` is read by DuckDB from this variable, not registered (see recon.db)
    con.execute(
        f"""create or replace temp table __recon__diag as
        with open_rows as (
            select 'left' as side, id, {fields}, {DUPLICATE_KEYS} from {T.left} t {texts}
            union all select 'right', id, {fields}, {DUPLICATE_KEYS} from {T.right} t {texts}),
        -- a row's alternatives are ambiguous too, with the row as their candidate: the
        -- other ledger item of a tie, each member of two equally good groups
        -- (a row that is only another's alternative is a duplicate first, when it is one)
        amb_alt as (select a.side, a.id, unnest(a.alternatives) as alt, a.best, true as own
                    from {AMBIGUOUS} a
                    union all
                    select case when a.side = 'left' then 'right' else 'left' end,
                           unnest(a.alternatives), a.id, a.best, false
                    from {AMBIGUOUS} a),
        -- an ambiguity is stale once every rival has been matched by a later rule
        amb as (select x.side, x.id, list_sort(list(distinct x.alt)) as alts, max(x.best) as best,
                       bool_or(x.own) as own
                from amb_alt x
                join open_rows o on o.id = x.alt
                 and o.side = case when x.side = 'left' then 'right' else 'left' end
                group by x.side, x.id),
        why as (select o.*,
                       case when a.own then 'ambiguous'
                            when d.id is not null then 'duplicate'
                            when a.id is not null then 'ambiguous' end as given,
                       a.alts, a.best, d.twins
                from open_rows o
                left join amb a on a.side = o.side and a.id = o.id
                left join ({_duplicates_sql("open_rows")}) d on d.side = o.side and d.id = o.id)
        select o.side, o.id, {own_fields},
               case when o.given is not null then o.given
                    when b.id is null then 'no_candidate'
                    else b.reason end as reason,
               case o.given when 'ambiguous' then o.alts when 'duplicate' then o.twins
                    else b.best_ids end as best_ids,
               case when o.given = 'ambiguous' then o.best else b.best_score end as best_score,
               case coalesce(o.given, b.reason)
                    when 'ambiguous' then 'candidates within the ambiguity margin'
                    when 'duplicate' then 'same date, amount, counterparty and reference as a matched row'
                    when 'period_closed' then 'the match would be dated '
                         || greatest(o.date, c.date) || ', in a closed month (reopen it to '
                         || 'match); ' || {_detail_sql()}
                    else {_detail_sql()} end as detail
        from why o
        left join best b on b.side = o.side and b.id = o.id
        -- the exact amount of the (first) best candidate, a row of the other open table
        left join (select 'left' as side, id, amount, date from {T.right}
                   union all select 'right', id, amount, date from {T.left}) c
               on c.side = b.side and c.id = b.best_ids[1]"""
    )


def _detail_sql() -> str:
    """The explanation of row `o` by its best candidate `c` (`b`: the pair's scored
    features, the one listed first of a tie) with the exact difference, worded as a
    match's (EXACT_DIFFERENCE_SQL): left minus right, as matches.csv's amount_diff, so
    both rows of a pair state the same figure.  The scores know it as a float only.
    Both amounts are in one currency, so digits beyond its minor unit are the
    amounts' own (a line of 699.995 EUR), not an exchange rate's remainder as in an
    FX match's difference: the figure keeps them (recon_exact).  A candidate in
    another currency gets no figure."""
    diff = "case o.side when 'left' then o.amount - c.amount else c.amount - o.amount end"
    return f"""case when b.slip = 'currency' then 'currencies differ; ' || b.explanation
                    else case when b.slip = 'sign' then 'opposite sign; ' else '' end
                         || {EXACT_DIFFERENCE_SQL.format(
                                 explanation="b.explanation",
                                 figure=f"recon_exact({diff}, o.currency)")}
               end"""


#: The open row's own fields that __recon__diag carries (from the open tables): the
#: exceptions and the changes read them there, not from a scan of every stored row.
ROW_FIELDS = (
    "source_id", "date", "amount", "currency", "counterparty", "reference", "description",
    "account", "file_id", "line",
)


def _best(pairs: pl.DataFrame, own: str, other: str, side: str) -> pl.DataFrame:
    if pairs.height == 0:
        return pl.DataFrame(
            schema={
                "side": pl.String,
                "id": pl.Int64,
                "best_ids": pl.List(pl.Int64),
                "best_score": pl.Float64,
                "amount_diff": pl.Float64,
                "date_diff": pl.Int64,
                "right_abs": pl.Float64,
                "shares_ref": pl.Boolean,
                "name_sim": pl.Float64,
                "explanation": pl.String,
                "slip": pl.String,
            }
        )
    top = explained(pairs.filter(pl.col("score") == pl.col("score").max().over(own)))
    return (
        top.sort([own, other])
        .group_by(own, maintain_order=True)
        .agg(
            pl.col(other).alias("best_ids"),
            pl.col("score").first().alias("best_score"),
            pl.col("amount_diff").first(),
            pl.col("date_diff").first(),
            pl.col("right_abs").first(),
            pl.col("shares_ref").first(),
            pl.col("name_sim").first(),
            pl.col("explanation").first(),
            pl.col("slip").first(),
        )
        .select(pl.lit(side).alias("side"), pl.col(own).cast(pl.Int64).alias("id"), pl.exclude(own))
    )


def _reason() -> pl.Expr:
    """The first condition the best candidate fails, rule by rule: `amount_mismatch` when
    no one-to-one rule takes its amount (with the reference the rule requires shared),
    `date_out_of_window` when none of those takes its dates too, else `low_similarity`.

    Each rule is read alone: the widest band and window of all rules together (a group
    rule's 45 days for instalments, the 50% a reference allows) called a candidate 39
    days off, or 30% off without a shared reference, `low_similarity`."""
    slip = pl.col("slip").fill_null("")
    return (
        pl.when(slip == "currency")
        .then(pl.lit("currency_mismatch"))
        .when((slip == "sign") | ~pl.col("amount_fits"))
        .then(pl.lit("amount_mismatch"))
        .when(~pl.col("fits"))
        .then(pl.lit("date_out_of_window"))
        .otherwise(pl.lit("low_similarity"))
    )


def _fitting(con: duckdb.DuckDBPyConnection, ruleset: RuleSet, best: pl.DataFrame
             ) -> pl.DataFrame:
    """`best` with, for each row and its (first) best candidate, whether some one-to-one
    rule takes the pair's amount (`amount_fits`; with the reference it requires shared)
    and its dates too (`fits`): by the conditions the rules' candidates are joined
    with (:meth:`recon.matchers.base.Matcher.fits_sql`), exact, rule by rule."""
    amounts, both = [], []
    for rule in ruleset.rules:
        fits = rule.matcher.fits_sql()
        if fits is None:
            continue
        amount = f"({fits[0]})" + (" and b.shares_ref" if rule.matcher.reads_ref_pairs else "")
        amounts.append(f"({amount})")
        both.append(f"({amount} and ({fits[1]}))")
    # read by DuckDB from this variable, not registered (see recon.db)
    pairs = best.select(  # noqa: F841
        "side", "id", pl.col("best_ids").list.first().alias("cand"), "shares_ref")
    fitting: pl.DataFrame = con.sql(
        f"""select b.side, b.id, {" or ".join(amounts) or "true"} as amount_fits,
                   {" or ".join(both) or "true"} as fits
        from (select side, id, id as l_id, cand as r_id, shares_ref from pairs
              where side = 'left'
              union all
              select side, id, cand, id, shares_ref from pairs where side = 'right') b
        join {keyed_sql(T.left)} l on l.id = b.l_id
        join {keyed_sql(T.right)} r on r.id = b.r_id"""
    ).pl()
    return best.join(fitting, on=["side", "id"], how="left")


#: Rows of one name, currency and amount on a side beyond which the opposite-sign
#: candidates leave them out: a name paying one sum many times (a subscription and its
#: refunds) would pair every payment with every refund.
_SIGN_FAN = 48


def _slips_sql(days: int) -> str:
    """(l, r, slip): open pairs no rule pairs that make a likely candidate all the same,
    within `days`: a shared reference key in another currency (`currency`), or the same
    name or a shared reference key and the opposite amount (`sign`)."""
    near = f"abs(date_diff('day', r.date, l.date)) <= {int(days)}"

    def fewer(table: str) -> str:  # the rows whose name, currency and amount are not crowded
        return f"""(select * from {table} where name_key is not null
            qualify count(*) over (partition by name_key, currency, amount) <= {_SIGN_FAN})"""

    return f"""
    select p.l, p.r, 'currency' as slip from {REF_PAIRS} p
    join {T.left} l on l.id = p.l join {T.right} r on r.id = p.r
    where l.currency <> r.currency and {near}
    union
    select p.l, p.r, 'sign' from {REF_PAIRS} p
    join {T.left} l on l.id = p.l join {T.right} r on r.id = p.r
    where l.currency = r.currency and l.amount = -r.amount and l.amount <> 0 and {near}
    union
    select l.id, r.id, 'sign' from {fewer(T.left)} l join {fewer(T.right)} r
      on l.name_key = r.name_key and l.currency = r.currency and l.amount = -r.amount
     and l.amount <> 0 and {near}"""


#: What the duplicates check compares of an open row besides ROW_FIELDS (an open
#: table's row `t`): its stored side and name.
DUPLICATE_KEYS = "t.side as row_side, t.name_key"


def _duplicates_sql(open_rows: str) -> str:
    """Open rows with a copy (other id; same amount, counterparty, reference; within a
    week) that is already matched: the same item booked twice.  `open_rows`: the open
    rows (side 'left'/'right', id, ROW_FIELDS and DUPLICATE_KEYS), as the diagnosis
    reads them."""
    # the open rows first, from the open tables: joined whole, DuckDB paired every
    # stored row with every other before keeping the open ones (twice as slow at a
    # million lines), and taken from the stored rows they cost a scan of all of them
    return f"""
    select side, id, list_sort(list(twin)) as twins from (
        select o.side, o.id, t.txn_id as twin
        from {open_rows} o
        join txns t
          on t.side = o.row_side and t.txn_id <> o.id and t.amount = o.amount
         and t.currency = o.currency and abs(date_diff('day', t.date, o.date)) <= 7
         and coalesce(t.name_key, '') = coalesce(o.name_key, '')
         and coalesce(t.reference, '') = coalesce(o.reference, '')
         and (t.reference is not null or t.date = o.date)
        where t.txn_id in ({ACTIVE_MEMBERS_SQL}))
    group by all"""
