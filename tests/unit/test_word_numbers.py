"""The name words the fuzzy rule joins on are numbered per run: the numbering is
one-to-one, so joining and counting by number pairs and counts what the words did."""

from __future__ import annotations

import duckdb
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.scoring import words_sql

WORDS = st.lists(
    st.lists(st.sampled_from(["acme", "gmbh", "bolt", "ag", "müller", "李", "city", ""]),
             max_size=4, unique=True),
    min_size=1,
    max_size=12,
)


@settings(max_examples=60, deadline=None)
@given(WORDS)
def test_numbers_are_one_to_one_with_words(forms: list[list[str]]) -> None:
    con = duckdb.connect()
    con.execute("create table forms (nid integer, words varchar[])")
    con.executemany("insert into forms values (?, ?)", list(enumerate(forms, start=1)))
    rows = dict(con.execute(f"select nid, toks from ({words_sql('select * from forms')})").fetchall())
    assert sorted(rows) == list(range(1, len(forms) + 1))
    number: dict[str, int] = {}
    for nid, words in enumerate(forms, start=1):
        toks = rows[nid]
        assert len(toks) == len(words)  # a name without words has an empty list, not null
        by_word = dict(zip(sorted(words), sorted(toks), strict=True))
        for w, n in by_word.items():
            assert number.setdefault(w, n) == n
    # different words, different numbers
    assert len(set(number.values())) == len(number)
    # and numbered in the words' order, the same whatever the rows' order
    assert [w for w, _ in sorted(number.items(), key=lambda kv: kv[1])] == sorted(number)


def test_pairs_by_number_equal_pairs_by_word() -> None:
    """Rows sharing a word pair up the same through their numbers."""
    con = duckdb.connect()
    forms = [["acme", "gmbh"], ["bolt"], ["acme"], ["city", "gmbh"], [], ["bolt", "city"]]
    con.execute("create table forms (nid integer, words varchar[])")
    con.executemany("insert into forms values (?, ?)", list(enumerate(forms, start=1)))
    con.execute(f"create table n as {words_sql('select * from forms')}")

    def pairs(col: str, table: str) -> set[tuple[int, int]]:
        found = con.execute(
            f"""select distinct a.nid, b.nid
            from (select nid, unnest({col}) as w from {table}) a
            join (select nid, unnest({col}) as w from {table}) b on a.w = b.w
            where a.nid < b.nid"""
        ).fetchall()
        return set(found)

    assert pairs("toks", "n") == pairs("words", "forms")
    assert pairs("toks", "n") == {(1, 3), (1, 4), (2, 6), (4, 6)}
