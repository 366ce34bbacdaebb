"""Name keys: the short way for ASCII names gives the same keys as the full one."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.names import LEGAL_FORMS, name_columns, name_key_expr

ascii_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)
# names with legal forms, dots, brackets and runs of punctuation, as banks write them
names = st.one_of(
    ascii_text,
    st.builds(
        lambda a, form, b: f"{a} {form}{b}",
        ascii_text,
        st.sampled_from(LEGAL_FORMS),
        st.sampled_from(["", ".", " (UK)", ", Inc.", "-"]),
    ),
)


@settings(deadline=None)  # the first call imports pypinyin
@given(st.lists(names, max_size=30))
def test_ascii_only_keys_equal_the_full_keys(values: list[str]) -> None:
    frame = pl.DataFrame({"n": values}, schema={"n": pl.String})
    full = frame.select(name_key_expr(pl.col("n")))
    short = frame.select(name_key_expr(pl.col("n"), ascii_only=True))
    assert short.to_series().to_list() == full.to_series().to_list()


@settings(deadline=None)
@given(
    st.lists(
        st.one_of(names, st.sampled_from(["Müller GmbH", "上海利民贸易股份有限公司", "ＡＣＭＥ"])),
        max_size=30,
    )
)
def test_name_columns_give_each_name_its_full_key(values: list[str]) -> None:
    """The parts name_columns works on side by side give each distinct name its key."""
    frame = pl.DataFrame({"counterparty": values}, schema={"counterparty": pl.String})
    got = name_columns(frame)
    distinct = sorted(set(values))
    assert sorted(got["counterparty"].to_list()) == distinct
    want = dict(
        zip(
            distinct,
            pl.DataFrame({"n": distinct}, schema={"n": pl.String})
            .select(name_key_expr(pl.col("n")))
            .to_series()
            .to_list(),
            strict=True,
        )
    )
    assert dict(zip(got["counterparty"], got["name_key"], strict=True)) == want
