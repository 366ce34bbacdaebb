"""Features and the weighted score of candidate pairs, computed in bulk.

Every rule scores its candidates the same way, so scores are comparable
across rules and every match can say which fields agreed and by how much:

* amount: 1 when equal, falling to 0.5 at the edge of the rule's tolerance;
* date: 1 on the same day, falling with distance inside the rule's window;
* reference: 1 when a reference key is shared, 0 when both sides carry
  references and none is shared, 0.5 when a side has none;
* name: rapidfuzz similarity of the normalised counterparty names (a side
  without a name is compared through its description), 0.5 when unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb
import numpy as np
import polars as pl
from rapidfuzz import fuzz, process

from recon.matchers.base import (
    NAME_BLOCK,
    NAME_TOKENS,
    AmountTolerance,
    DateWindow,
    Tables,
    TextField,
    ref_pairs_sql,
)
from recon.matchers.group import name_block_sql

SCORER_FUNCS = {
    "ratio": fuzz.ratio,
    "partial_ratio": fuzz.partial_ratio,
    "token_sort_ratio": fuzz.token_sort_ratio,
    "token_set_ratio": fuzz.token_set_ratio,
    "WRatio": fuzz.WRatio,
    "QRatio": fuzz.QRatio,
}

#: The long free-text columns of a row (a third of an open row's bytes), which the open
#: tables leave out: the text fields and the diagnosis that compare or show them read
#: them from txns, for the pairs and rows concerned (see recon.pipeline).  Names are
#: compared by their normalised forms (name_key, the names table), which stay.
RAW_TEXT = ("counterparty", "description")

_TEXT_SQL = {
    "counterparty": "coalesce({a}.name_key, '')",
    "reference": "lower(coalesce({a}.reference, ''))",
    "description": "lower(coalesce({a}.description, ''))",
    "text": "lower(concat_ws(' ', {a}.counterparty, {a}.reference, {a}.description))",
}


#: The text fields reading a column of RAW_TEXT (counterparty compares name_key).
_FROM_TXNS = frozenset(
    f for f, sql in _TEXT_SQL.items() if any("{a}." + c in sql for c in RAW_TEXT)
)


#: Whether row `a` has a name to compare (a side without a name is compared through its
#: description): column `has_name` of the open tables, made with them, so the features
#: of every candidate pair read a boolean, not two text columns of each side.
HAS_NAME_SQL = "({a}.name_key is not null or {a}.description is not null)"


def features_sql(
    t: Tables, cand: str, text: tuple[TextField, ...], right_amount: str = "r.amount"
) -> str:
    """SQL adding amount, date, reference and text features to candidate pairs.

    The exact difference is not among them: a match gets it when it is recorded.
    Fetched as a decimal for every candidate, it took a third of the time of
    fetching the features.

    `shares_ref` tells whether a pair shares a reference key (a hash join with the
    pass's reference pairs); which keys it shares is text for the explanation
    alone, found by :func:`with_shared_refs` for the pairs kept, not for every
    candidate (the list per pair cost a rule 1.1 of its 1.7 s of features at 1M)."""
    pairs = t.ref_pairs or f"(select distinct l, r from ({ref_pairs_sql(t)}))"
    compared = [(i, f) for i, f in enumerate(text) if not _by_name(f)]
    extra = "".join(
        f", {_text_sql(f.left, 'l')} as tl{i}, {_text_sql(f.right, 'r')} as tr{i}"
        for i, f in compared
    )
    # the raw text of the pairs' rows, from txns (the open tables leave it out)
    raw = any(x in _FROM_TXNS for _, f in compared for x in (f.left, f.right))
    texts = "join txns xl on xl.txn_id = c.l join txns xr on xr.txn_id = c.r" if raw else ""
    return f"""
    select c.l, c.r,
           (l.amount - {right_amount})::double as amount_diff,
           abs({right_amount})::double as right_abs,
           date_diff('day', r.date, l.date) as date_diff,
           s.l is not null as shares_ref, l.has_ref as l_has_ref, r.has_ref as r_has_ref,
           l.nid as lnid, r.nid as rnid,
           l.has_name as l_has_name, r.has_name as r_has_name,
           r.ckey as r_key, l.ckey as l_key
           {extra}
    from {cand} c join {t.left} l on l.id = c.l join {t.right} r on r.id = c.r {texts}
    left join {pairs} s on s.l = c.l and s.r = c.r"""


def _text_sql(field: str, side: str) -> str:
    """Text field `field` of the pair's `side` row (l or r): from the open table, or from
    its row of txns (alias xl or xr) when it reads a column of RAW_TEXT."""
    return _TEXT_SQL[field].format(a=f"x{side}" if field in _FROM_TXNS else side)


def with_shared_refs(
    con: duckdb.DuckDBPyConnection, t: Tables, pairs: pl.DataFrame
) -> pl.DataFrame:
    """`pairs` (l, r, shares_ref, ...) with `shared_refs`: the reference keys a pair
    shares, sorted and joined by ';' (null when it shares none)."""
    # read by DuckDB from this variable, not registered (see recon.db)
    sharing = pairs.filter(pl.col("shares_ref")).select("l", "r").unique()
    if sharing.height == 0:
        return pairs.with_columns(pl.lit(None, dtype=pl.String).alias("shared_refs"))
    # a sorted list, not an ordered string_agg: DuckDB sorts each group's rows
    # for that, a third slower over a million pairs
    refs: pl.DataFrame = con.sql(
        f"""select c.l, c.r,
               array_to_string(list_sort(list(distinct lr.ref)), ';') as shared_refs
        from sharing c join {t.left_refs} lr on lr.id = c.l
        join {t.right_refs} rr on rr.id = c.r and rr.ref = lr.ref
        group by c.l, c.r"""
    ).pl()
    return pairs.join(
        refs.cast({"l": pairs.schema["l"], "r": pairs.schema["r"]}),
        on=["l", "r"],
        how="left",
        maintain_order="left",
    )


#: Per run, every distinct name form once: `nid` on the open tables points here, so
#: pairs carry two integers and each distinct pair of names is compared once.
NAMES = "__recon__names"


def names_sql(rows: str) -> str:
    """The name forms of `rows` (txns rows), each once: the compared name `ln` (a side
    without a name is compared through its description), the alternative form `alt`
    (pinyin, else the name), whether the row has a name and an alternative of its own,
    and what the matchers derive from a name: the name block `nb`, the group block
    `gnb` and the words `toks`, so no rule computes them per row and pass.

    The words are numbered (one number per distinct word of `rows`, see
    :func:`words_sql`): the fuzzy rule joins, groups and counts rows by word, and
    integers do that faster than the words' text."""
    forms = f"""select row_number() over ()::integer as nid, ln, alt, own_alt, has_key,
               {NAME_BLOCK} as nb, {name_block_sql("x")} as gnb, {NAME_TOKENS} as words
        from (select *, case when has_key then ln end as name_key,
                     case when own_alt then alt end as name_alt
              from (select distinct coalesce(name_key, lower(description), '') as ln,
                           coalesce(name_alt, name_key, '') as alt,
                           name_alt is not null as own_alt, name_key is not null as has_key
                    from {rows})) x"""
    return words_sql(forms)


def words_sql(forms: str) -> str:
    """The rows of `forms` (with `nid` and a list of words `words`) with `toks`, the
    words' numbers, instead of `words`: equal words get equal numbers and different
    words different ones, so a join or a grouping by number pairs and counts exactly
    the rows it did by the words themselves."""
    return f"""with f as materialized ({forms}),
        vocab as (select w, (row_number() over (order by w))::integer as wid
                  from (select distinct unnest(words) as w from f)),
        ids as (select x.nid, list(v.wid) as toks
                from (select nid, unnest(words) as w from f) x join vocab v on v.w = x.w
                group by x.nid)
        select f.* exclude (words), coalesce(ids.toks, []::integer[]) as toks
        from f left join ids on ids.nid = f.nid"""


def name_key_sql(a: str) -> str:
    """Join condition of rows `a` with their entry in NAMES (aliased n)."""
    return (
        f"n.ln = coalesce({a}.name_key, lower({a}.description), '') "
        f"and n.alt = coalesce({a}.name_alt, {a}.name_key, '') "
        f"and n.own_alt = ({a}.name_alt is not null) "
        f"and n.has_key = ({a}.name_key is not null)"
    )


def content_key_sql(a: str) -> str:
    """Rows with equal keys are interchangeable copies of one item (another id, maybe a
    later date): the same amount, counterparty and reference.  Without a reference
    the description must agree too, so two separate payments are not taken for copies."""
    return (
        f"hash(concat_ws('|', {a}.side, {a}.account, {a}.amount, {a}.currency, {a}.name_key, "
        f"coalesce({a}.reference, '#' || coalesce({a}.description, '') || {a}.date)))"
    )


def positions(keys: np.ndarray) -> np.ndarray:
    """The position in `keys` (distinct non-negative integers) of each integer up to
    their largest, -1 where it is not a key: the positions of many keys are then one
    indexing (:func:`found_at`), not a join or a search per key."""
    pos = np.full(int(keys.max()) + 1 if len(keys) else 0, -1, dtype=np.int32)
    pos[keys] = np.arange(len(keys), dtype=np.int32)
    return pos


def found_at(pos: np.ndarray, wanted: np.ndarray, refusal: str) -> np.ndarray:
    """The positions (from :func:`positions`) of the keys `wanted`, every one a key:
    one that is not would silently take another key's place, so it fails, saying
    `refusal`."""
    assert len(wanted) == 0 or (wanted.min() >= 0 and wanted.max() < len(pos)), refusal
    at: np.ndarray = pos[wanted]
    assert len(at) == 0 or at.min() >= 0, refusal
    return at


def name_ids(con: duckdb.DuckDBPyConnection, table: str, ids: pl.Series) -> pl.Series:
    """The name id (`nid`) of the row of open table `table` with each id of `ids`.

    Looked up by indexing: joining the 5M fuzzy rule's 27 million candidates with both
    open tables for their name ids took DuckDB 3.3 s of that query's 15.5 s, run alone
    on that pass's open tables (within the run, 30.7-32.4 s a first pass either way)."""
    rows = con.sql(f"select id, nid from {table}").pl()
    at = found_at(positions(rows["id"].to_numpy()), ids.to_numpy(), "an id not in the table")
    return pl.Series(rows["nid"].to_numpy()[at]).cast(pl.Int32)


class NameForms:
    """The name forms in NAMES of the name ids of some pairs, each read once.

    A pair's names were read from DuckDB per pair (the same few names over and over)
    and turned into Python strings per pair; here each distinct name is read once, and
    a pair's lists hold the same Python strings, which rapidfuzz reads fastest.  The
    per-pair reads were sampled at 8 s of a 5M run; the run measured 2 to 3 s less
    (the fuzzy rule's first pass 35.2 -> 32.4 s), the same outputs."""

    def __init__(self, con: duckdb.DuckDBPyConnection, *nids: pl.Series) -> None:
        # read by DuckDB from this variable, not registered (see recon.db)
        wanted = pl.concat([n.cast(pl.Int32) for n in nids]).unique().to_frame("nid")
        self.forms: pl.DataFrame = con.sql(
            f"select n.nid, n.ln, n.alt, n.own_alt, n.has_key from {NAMES} n "
            "semi join wanted w on w.nid = n.nid order by n.nid"
        ).pl()
        assert self.forms.height == wanted.height, "a pair's name id is not in NAMES"
        # a pair's names are found by indexing, not by a binary search per pair (0.4 s
        # of a full 1M run)
        self._pos = positions(self.forms["nid"].to_numpy())
        self._texts: dict[str, np.ndarray] = {}

    def at(self, nids: pl.Series) -> np.ndarray:
        """The positions in `forms` of the name ids `nids` (ids of the pairs it was made for)."""
        return found_at(
            self._pos, nids.cast(pl.Int32).to_numpy(), "a name id NameForms was not made for"
        )

    def texts(self, column: str, at: np.ndarray) -> list[str]:
        """`column` (ln, alt, or key: ln where the row has a name, else '') at positions `at`."""
        if column not in self._texts:
            if column == "key":
                own = self.forms.select(
                    pl.when(pl.col("has_key")).then(pl.col("ln")).otherwise(pl.lit(""))
                ).to_series()
            else:
                own = self.forms[column]
            self._texts[column] = np.array(own.to_list(), dtype=object)
        texts: list[str] = self._texts[column][at].tolist()
        return texts


def name_similarity(names: NameForms, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Best of: token-set similarity of the normalised names, of their pinyin forms
    (where a side is Chinese), and 95 when one name is the other cut short by a bank;
    for the names at positions `left` and `right` of `names`."""
    sim = similarity(names.texts("ln", left), names.texts("ln", right))
    own = names.forms["own_alt"].to_numpy()
    idx = np.flatnonzero(own[left] | own[right])
    if idx.size:
        sim[idx] = np.maximum(
            sim[idx],
            similarity(names.texts("alt", left[idx]), names.texts("alt", right[idx])),
        )
    ln = names.forms["ln"]
    short, long = pl.col("ln"), pl.col("rn")
    cut = (
        pl.DataFrame([ln.gather(left).alias("ln"), ln.gather(right).alias("rn")])
        .select(
            (
                (short.str.len_chars() >= 8)
                & (long.str.len_chars() >= 8)
                & (long.str.starts_with(short) | short.str.starts_with(long))
            ).alias("c")
        )["c"]
        .to_numpy()
    )
    return np.where(cut, np.maximum(sim, 95.0), sim)


def _by_name(f: TextField) -> bool:
    """A text field comparing counterparty with counterparty: scored per pair of names."""
    return f.left == f.right == "counterparty"


#: (lnid, rnid, name_sim) of every pair of names scored since NAMES was made (see
#: pipeline.prepare_open_tables, which empties it with NAMES): the rules and the
#: diagnosis compare many of the same names, and two names score alike whichever
#: rows carry them.
NAME_SIMS = "__recon__name_sims"
NAME_SIMS_SQL = (
    f"create or replace temp table {NAME_SIMS} (lnid integer, rnid integer, name_sim double)"
)


def _pair_similarity(
    con: duckdb.DuckDBPyConnection,
    pairs: pl.DataFrame,
    text: tuple[TextField, ...] = (),
    *,
    name_sim: bool = True,
) -> pl.DataFrame:
    """name_sim (unless `name_sim` is false) and text_sim{i} of counterparty text
    fields, of each of the distinct (lnid, rnid) pairs `pairs`: a few names paired
    many times (a customer's invoices against its payments) are compared once, and
    name_sim once per run (NAME_SIMS)."""
    by_name = [(i, f) for i, f in enumerate(text) if _by_name(f)]
    nid_pairs = pairs.select("lnid", "rnid")
    # the names of all the pairs, read once for both uses when the fields compare them
    forms = NameForms(con, nid_pairs["lnid"], nid_pairs["rnid"]) if by_name else None
    names = _name_sims(con, nid_pairs, forms) if name_sim else nid_pairs
    sims: list[pl.Series] = []
    if forms is not None:  # the names themselves, for the fields' own scorers
        lk = forms.texts("key", forms.at(names["lnid"]))
        rk = forms.texts("key", forms.at(names["rnid"]))
        sims = [pl.Series(f"text_sim{i}", similarity(lk, rk, f.scorer)) for i, f in by_name]
    return names.select("lnid", "rnid", *(["name_sim"] if name_sim else []), *sims)


def _name_sims(
    con: duckdb.DuckDBPyConnection, nid_pairs: pl.DataFrame, forms: NameForms | None = None
) -> pl.DataFrame:
    """(lnid, rnid, name_sim) of each of the distinct pairs `nid_pairs`: read from
    NAME_SIMS, or scored (their names read from `forms` when given: those of all the
    pairs) and added to it.

    One read of NAME_SIMS: it holds every pair of names the run scored, and the rules
    and passes ask it about a hundred times at 5M lines (an anti join for the pairs it
    lacked, then a join for all of them: 7.2 s of that run)."""
    # `nid_pairs` and `new_sims` are read by DuckDB from these variables (see recon.db)
    known: pl.DataFrame = con.sql(
        f"""select p.lnid, p.rnid, s.name_sim from nid_pairs p
        left join {NAME_SIMS} s on s.lnid = p.lnid and s.rnid = p.rnid"""
    ).pl()
    new = known.filter(pl.col("name_sim").is_null()).select("lnid", "rnid")
    if new.height == 0:
        return known
    if forms is None:
        forms = NameForms(con, new["lnid"], new["rnid"])
    sims = name_similarity(forms, forms.at(new["lnid"]), forms.at(new["rnid"]))
    new_sims = new.with_columns(pl.Series("name_sim", sims))
    con.execute(f"insert into {NAME_SIMS} select lnid, rnid, name_sim from new_sims")
    return pl.concat([known.filter(pl.col("name_sim").is_not_null()), new_sims])


def _name_thresholds(text: tuple[TextField, ...]) -> list[tuple[int, TextField]]:
    """(index, field) of the fields that decide a pair by its two names alone."""
    return [(i, f) for i, f in enumerate(text) if _by_name(f) and f.threshold > 0]


def drop_unlike_names(
    con: duckdb.DuckDBPyConnection, t: Tables, cand: pl.DataFrame, text: tuple[TextField, ...]
) -> pl.DataFrame | None:
    """The pairs (l, r) of `cand` (pairs of rows of `t.left` and `t.right`) whose names
    pass the thresholds of the rule's counterparty fields (None: the rule has no such
    threshold).

    Those thresholds decide a pair by its two names alone, so the names are compared
    once per distinct pair of names before any other feature is computed: at 5M lines
    a later pass of the fuzzy rule has 9 million candidates and keeps a few thousand.
    """
    named = _name_thresholds(text)
    if not named:
        return None
    cand = cand.select(
        "l", "r", name_ids(con, t.left, cand["l"]).alias("lnid"),
        name_ids(con, t.right, cand["r"]).alias("rnid"),
    )
    # `cand` and `alike_names` are read by DuckDB from these variables (see recon.db): on
    # the 5M fuzzy rule's 27 million candidates its distinct took 1.4 s, polars's 3.4 s
    nids = con.sql("select distinct lnid, rnid from cand").pl()
    # the thresholds read the fields' own scores: name_sim is computed for the pairs kept
    sims = _pair_similarity(con, nids, text, name_sim=False)
    alike = pl.all_horizontal(pl.col(f"text_sim{i}") >= f.threshold for i, f in named)
    alike_names = sims.filter(alike).select("lnid", "rnid")  # noqa: F841
    kept: pl.DataFrame = con.sql(
        """select c.l, c.r from cand c
        semi join alike_names k on k.lnid = c.lnid and k.rnid = c.rnid"""
    ).pl()
    return kept


def similarity(a: list[str], b: list[str], scorer: str = "token_set_ratio") -> np.ndarray:
    """Pairwise similarity 0..100 of a[i] and b[i], in one vectorised call."""
    if not a:
        return np.zeros(0)
    return process.cpdist(a, b, scorer=SCORER_FUNCS[scorer], workers=-1).astype(float)


def score_pairs(
    con: duckdb.DuckDBPyConnection,
    t: Tables,
    cand: str | pl.DataFrame,
    *,
    tolerance: AmountTolerance,
    window: DateWindow,
    text: tuple[TextField, ...],
    weights: dict[str, float],
    right_amount: str = "r.amount",
    explain: bool = True,
) -> pl.DataFrame:
    """Candidate pairs with features, text similarities, `score` and (with `explain`)
    `explanation`; without it, add the explanation to the pairs kept with
    :func:`explained`, which is cheaper when most candidates are dropped.  `cand` is a
    table (or a subquery) of (l, r) pairs, or a frame of them."""
    if isinstance(cand, pl.DataFrame):
        # read by DuckDB from this variable, not registered (see recon.db)
        given_pairs = cand  # noqa: F841
        cand = "given_pairs"
    # features go straight to polars: a temp table made inside the run's transaction
    # would be kept (for a rollback) until the commit, every rule and pass of it
    feats: pl.DataFrame = con.sql(features_sql(t, cand, text, right_amount)).pl()
    # the two name ids as one integer: polars finds the distinct pairs and joins their
    # similarities back on one column in about half the time it takes on two
    feats = feats.with_columns(_name_pair_key())
    distinct = feats.select("nkey").unique()
    names = _pair_similarity(
        con,
        distinct.select(
            (pl.col("nkey") // _NID_SPAN).cast(pl.Int32).alias("lnid"),
            (pl.col("nkey") % _NID_SPAN).cast(pl.Int32).alias("rnid"),
        ),
        text,
    )
    df = feats.join(
        names.with_columns(_name_pair_key()).drop("lnid", "rnid"), on="nkey", how="inner"
    ).drop("nkey")
    if df.height == 0:
        return df.with_columns(
            *(
                pl.lit(0.0).alias(c)
                for c in (
                    "name_sim",
                    "s_amount",
                    "s_date",
                    "s_ref",
                    "s_name",
                    "score",
                    *(f"text_sim{i}" for i in range(len(text))),
                )
            ),
            pl.lit("").alias("explanation"),
        )
    cols = []
    for i, f in enumerate(text):
        if _by_name(f):
            continue
        sims = similarity(df[f"tl{i}"].to_list(), df[f"tr{i}"].to_list(), f.scorer)
        cols.append(pl.Series(f"text_sim{i}", sims))
    df = df.with_columns(cols)
    tol = pl.max_horizontal(
        pl.lit(float(tolerance.abs)), pl.col("right_abs") * float(tolerance.pct) / 100
    )
    amount_s = (
        pl.when(pl.col("amount_diff") == 0)
        .then(1.0)
        .when(tol > 0)
        .then((0.9 - 0.4 * pl.col("amount_diff").abs() / tol).clip(0.0, 0.9))
        .otherwise(0.0)
    )
    width = max(window.before, window.after, 1)
    date_s = (1.0 - 0.5 * pl.col("date_diff").abs() / width).clip(0.0, 1.0)
    ref_s = (
        pl.when(pl.col("shares_ref"))
        .then(1.0)
        .when(pl.col("l_has_ref") & pl.col("r_has_ref"))
        .then(0.0)
        .otherwise(0.5)
    )
    name_s = (
        pl.when(pl.col("l_has_name") & pl.col("r_has_name"))
        .then(pl.col("name_sim") / 100)
        .otherwise(0.5)
    )
    df = df.with_columns(
        amount_s.alias("s_amount"),
        date_s.alias("s_date"),
        ref_s.alias("s_ref"),
        name_s.alias("s_name"),
    )
    df = df.with_columns(weighted_score(weights).round(4).alias("score"))
    return explained(with_shared_refs(con, t, df)) if explain else df


#: Name ids (`nid`, a 32-bit integer from 1) of a pair fold into one key below this span.
_NID_SPAN = 2**32


def _name_pair_key() -> pl.Expr:
    """Column `nkey`: the pair's (lnid, rnid) as one integer."""
    return (pl.col("lnid").cast(pl.Int64) * _NID_SPAN + pl.col("rnid").cast(pl.Int64)).alias("nkey")


#: Candidate pairs scored at a time: the features of a few million pairs fit in memory
#: at once, those of a 5M night's fuzzy candidates do not.
CHUNK_PAIRS = 2_000_000


def score_in_chunks(
    con: duckdb.DuckDBPyConnection,
    t: Tables,
    cand: pl.DataFrame,
    keep: Callable[[pl.DataFrame], pl.DataFrame],
    chunk_pairs: int | None = None,
    **kw: Any,
) -> tuple[pl.DataFrame, int]:
    """`keep` applied to the scored pairs `cand` (l, r), scoring at most about
    `chunk_pairs` pairs at a time (the pairs of one range of left ids); returns the kept
    pairs and the number scored.  `keep` must decide each pair by its own row and its
    left row's other pairs, which are always in one chunk (a rule's thresholds, the best
    per row)."""
    total = cand.height
    chunks = -(-total // (chunk_pairs or CHUNK_PAIRS))
    if chunks <= 1:
        return keep(score_pairs(con, t, cand, **kw)), total
    # the left id at each chunk's end: a left row's pairs stay in one chunk
    ends = cand["l"].sort().gather([(total - 1) * i // chunks for i in range(1, chunks)])
    ends = ends.unique(maintain_order=True)
    # chunk i: the pairs whose left id is above end i - 1 and at most end i (one pass)
    chunk = pl.Series("chunk", ends.search_sorted(cand["l"], side="left"))
    parts = cand.with_columns(chunk).partition_by("chunk", as_dict=True, include_key=False)
    kept = [keep(score_pairs(con, t, parts[k], **kw)) for k in sorted(parts)]
    nonempty = [k for k in kept if k.height] or kept[:1]
    return pl.concat(nonempty, how="vertical_relaxed"), total


def explained(pairs: pl.DataFrame) -> pl.DataFrame:
    """Scored pairs with their `explanation`: which fields agreed and by how much
    (`shared_refs` from :func:`with_shared_refs`)."""
    return pairs.with_columns(_explanation().alias("explanation"))


def weighted_score(weights: dict[str, float]) -> pl.Expr:
    """The weighted mean of the feature scores s_amount, s_date, s_ref, s_name."""
    total = sum(weights.values())
    return (
        pl.col("s_amount") * weights["amount"]
        + pl.col("s_date") * weights["date"]
        + pl.col("s_ref") * weights["reference"]
        + pl.col("s_name") * weights["name"]
    ) / total


def _explanation() -> pl.Expr:
    amount = (
        pl.when(pl.col("amount_diff") == 0)
        .then(pl.lit("amount equal"))
        # the float difference is no figure to print (0.005 KWD read "0.0"): a match's
        # explanation gets the exact one when it is recorded (recon.pipeline)
        .otherwise(pl.lit("amount differs"))
    )
    date = (
        pl.when(pl.col("date_diff") == 0)
        .then(pl.lit("same date"))
        .otherwise(pl.format("date {}d", pl.col("date_diff")))
    )
    ref = (
        pl.when(pl.col("shared_refs").is_not_null())
        .then(pl.format("reference {}", pl.col("shared_refs")))
        .when(pl.col("l_has_ref") & pl.col("r_has_ref"))
        .then(pl.lit("references differ"))
        .otherwise(pl.lit("no reference"))
    )
    name = pl.format("name {}%", pl.col("name_sim").round(0).cast(pl.Int64))
    return pl.concat_str([amount, date, ref, name], separator="; ")
