"""The reference scan normalises to NFKC only the rows with a character outside
refs.NFKC_STABLE: text made of those characters must be its own NFKC, as Python's
Unicode tables and polars' (which normalises) both say."""

from __future__ import annotations

import unicodedata

import polars as pl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from recon.refs import NFKC_STABLE, _nfkc

STABLE = [chr(c) for lo, hi in NFKC_STABLE for c in range(lo, hi + 1)]


def _second_of_a_composition() -> set[str]:
    """Every character that is the second of a canonical decomposition into two: one
    that can combine with the character before it."""
    seconds = set()
    for c in range(0x110000):
        parts = unicodedata.decomposition(chr(c)).split()
        if len(parts) == 2 and not parts[0].startswith("<"):
            seconds.add(chr(int(parts[1], 16)))
    return seconds


def test_each_stable_character_is_its_own_nfkc_and_combines_with_nothing() -> None:
    seconds = _second_of_a_composition()
    for ch in STABLE:
        assert unicodedata.category(ch) != "Cn", f"U+{ord(ch):04X} unassigned"
        assert unicodedata.normalize("NFKC", ch) == ch, f"U+{ord(ch):04X}"
        assert unicodedata.combining(ch) == 0, f"U+{ord(ch):04X}"
        assert ch not in seconds, f"U+{ord(ch):04X}"
    # Hangul syllables compose algorithmically, not by the table: their jamo are outside
    assert not any(lo <= 0x11FF and hi >= 0x1100 for lo, hi in NFKC_STABLE)
    # and polars, which normalises the rows, agrees: alone and in one text
    alone = pl.Series(STABLE)
    assert alone.str.normalize("NFKC").to_list() == STABLE
    text = pl.Series(["".join(STABLE)])
    assert text.str.normalize("NFKC").to_list() == text.to_list()


#: stable characters and some NFKC changes: fullwidth forms, the ideographic space, a
#: no-break space, ligatures, the six Latin Extended-A letters left out, combining marks,
#: superscripts, Hangul jamo, a CJK compatibility ideograph
CHARS = st.one_of(
    st.sampled_from(STABLE),
    st.sampled_from("２０ＩＮＶ（），\u3000\u00a0ﬁĲĳĿŀŉſ\u0301\u0308²µ¼\u1100\u1161\u11a8豈①"),
    st.characters(exclude_categories=("Cs",)),  # no surrogates: not text in UTF-8
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(CHARS, max_size=12)), min_size=1, max_size=20))
@example(["e\u0301", "ｅ\u0301", "Ａ", "ü", "\u1100\u1161", "发票２０２６", "北京\u3000上海", "ſ", None])
def test_normalising_the_unstable_rows_normalises_every_row(texts: list[str | None]) -> None:
    df = pl.DataFrame({"id": range(len(texts)), "a": texts}, schema={"id": pl.Int64, "a": pl.String})
    got = _nfkc(df, "a").sort("id")["a"].to_list()
    assert got == df["a"].str.normalize("NFKC").to_list()
