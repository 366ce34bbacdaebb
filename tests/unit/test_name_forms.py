"""NameForms: the similarities of pairs of names read once per distinct name equal those
computed from each pair's own strings, as the per-pair read they replace did."""

from __future__ import annotations

import duckdb
import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.scoring import NAMES, NameForms, name_ids, name_similarity, similarity

# few words, so names share words, repeat and start one another
words = st.sampled_from(
    ["acme", "acmes", "trading", "gmbh", "müller", "上海", "利民", "ab", "x"]
)
names = st.lists(words, max_size=5).map(" ".join)
forms = st.lists(
    st.tuples(names, names, st.booleans(), st.booleans()), min_size=1, max_size=25, unique=True
)


def per_pair(
    ln: list[str], rn: list[str], la: list[str], ra: list[str], alt: list[bool]
) -> np.ndarray:
    """The similarity of each pair from its own strings (the computation NameForms replaced)."""
    sim = similarity(ln, rn)
    for i, has_alt in enumerate(alt):
        if has_alt:
            sim[i] = max(sim[i], similarity([la[i]], [ra[i]])[0])
    cut = [
        len(a) >= 8 and len(b) >= 8 and (b.startswith(a) or a.startswith(b))
        for a, b in zip(ln, rn, strict=True)
    ]
    return np.where(cut, np.maximum(sim, 95.0), sim)


@settings(deadline=None, max_examples=60)
@given(forms, st.data())
def test_pairs_score_as_from_their_own_strings(
    rows: list[tuple[str, str, bool, bool]], data: st.DataObject
) -> None:
    # name ids neither from 1 nor contiguous: positions are looked up, not assumed
    nids = [7 + 3 * i for i in range(len(rows))]
    forms_frame = pl.DataFrame(  # noqa: F841 (read by DuckDB)
        {
            "nid": nids,
            "ln": [r[0] for r in rows],
            "alt": [r[1] for r in rows],
            "own_alt": [r[2] for r in rows],
            "has_key": [r[3] for r in rows],
        },
        schema={
            "nid": pl.Int32,
            "ln": pl.String,
            "alt": pl.String,
            "own_alt": pl.Boolean,
            "has_key": pl.Boolean,
        },
    )
    con = duckdb.connect()
    con.execute(f"create temp table {NAMES} as select * from forms_frame order by random()")
    index = st.integers(0, len(rows) - 1)
    pairs = data.draw(st.lists(st.tuples(index, index), min_size=1, max_size=40))
    left = pl.Series("lnid", [nids[i] for i, _ in pairs], dtype=pl.Int32)
    right = pl.Series("rnid", [nids[j] for _, j in pairs], dtype=pl.Int32)
    got = NameForms(con, left, right)
    at_l, at_r = got.at(left), got.at(right)
    want = per_pair(
        [rows[i][0] for i, _ in pairs],
        [rows[j][0] for _, j in pairs],
        [rows[i][1] for i, _ in pairs],
        [rows[j][1] for _, j in pairs],
        [rows[i][2] or rows[j][2] for i, j in pairs],
    )
    assert np.array_equal(name_similarity(got, at_l, at_r), want)
    # the names a text field compares: a row without a name of its own compares ''
    assert got.texts("key", at_l) == [rows[i][0] if rows[i][3] else "" for i, _ in pairs]
    assert got.texts("alt", at_r) == [rows[j][1] for _, j in pairs]


def test_an_id_it_was_not_made_for_is_refused() -> None:
    forms_frame = pl.DataFrame(  # noqa: F841 (read by DuckDB)
        {"nid": [3, 5, 9], "ln": ["a", "b", "c"], "alt": ["a", "b", "c"],
         "own_alt": [False] * 3, "has_key": [True] * 3},
        schema_overrides={"nid": pl.Int32},
    )
    con = duckdb.connect()
    con.execute(f"create temp table {NAMES} as select * from forms_frame")
    got = NameForms(con, pl.Series([3, 9], dtype=pl.Int32))
    assert got.at(pl.Series([9, 3])).tolist() == [1, 0]
    # 5 is in NAMES but not among the ids it read; 10 is past the last one
    for stray in (5, 10):
        with pytest.raises(AssertionError, match="not made for"):
            got.at(pl.Series([3, stray]))


@settings(deadline=None, max_examples=60)
@given(
    st.dictionaries(st.integers(0, 5000), st.integers(1, 10**6), min_size=1, max_size=40),
    st.data(),
)
def test_name_ids_are_those_a_join_gives(rows: dict[int, int], data: st.DataObject) -> None:
    """A pair's name ids, looked up by indexing, are those a join of its ids with the
    open table gives: in the pairs' order, an id as often as it is paired."""
    open_rows = pl.DataFrame(  # noqa: F841 (read by DuckDB)
        {"id": list(rows), "nid": list(rows.values())}, schema={"id": pl.Int64, "nid": pl.Int32}
    )
    con = duckdb.connect()
    con.execute("create temp table t as select * from open_rows order by random()")
    ids = pl.Series("l", data.draw(st.lists(st.sampled_from(list(rows)), max_size=60)), pl.Int64)
    assert name_ids(con, "t", ids).to_list() == [rows[i] for i in ids]


def test_name_ids_refuse_an_id_not_in_the_table() -> None:
    con = duckdb.connect()
    con.execute("create temp table t as select * from (values (4, 40), (8, 80)) v(id, nid)")
    for stray in (5, 9):
        with pytest.raises(AssertionError, match="not in the table"):
            name_ids(con, "t", pl.Series([4, stray]))


def test_name_sims_score_each_pair_once_and_answer_every_pair(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A pair of names is scored the first time it is asked about, read from NAME_SIMS
    after: every pair asked gets the similarity scoring it would give, once each."""
    from recon import scoring

    forms_frame = pl.DataFrame(  # noqa: F841 (read by DuckDB)
        {"nid": [1, 2, 3, 4], "ln": ["acme trading", "acme", "mueller bau", "muller bau"],
         "alt": ["acme trading", "acme", "mueller bau", "muller bau"],
         "own_alt": [False] * 4, "has_key": [True] * 4},
        schema_overrides={"nid": pl.Int32},
    )
    con = duckdb.connect()
    con.execute(f"create temp table {NAMES} as select * from forms_frame")
    con.execute(scoring.NAME_SIMS_SQL)
    scored: list[int] = []
    real = scoring.name_similarity

    def counting(names: NameForms, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        scored.append(len(left))
        return real(names, left, right)

    monkeypatch.setattr(scoring, "name_similarity", counting)

    def ask(pairs: list[tuple[int, int]]) -> dict[tuple[int, int], float]:
        frame = pl.DataFrame(pairs, schema={"lnid": pl.Int32, "rnid": pl.Int32}, orient="row")
        got = scoring._name_sims(con, frame)
        assert got.height == len(pairs)
        return {(a, b): s for a, b, s in got.iter_rows()}

    first = ask([(1, 2), (3, 4)])
    second = ask([(3, 4), (2, 1), (1, 1)])
    assert scored == [2, 2]  # (3, 4) was read, not scored again
    forms = NameForms(con, pl.Series([1, 2, 3, 4], dtype=pl.Int32))
    for (a, b), sim in {**first, **second}.items():
        at = forms.at(pl.Series([a], dtype=pl.Int32)), forms.at(pl.Series([b], dtype=pl.Int32))
        assert sim == real(forms, *at)[0]
    assert con.execute(f"select count(*) from {scoring.NAME_SIMS}").fetchone() == (4,)
