"""Reference keys are a function of each row alone, and earlier patterns take precedence."""

from __future__ import annotations

from unittest.mock import patch

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from recon import refs
from recon.config import RefPattern, load_rules
from recon.refs import _keys, reference_keys

from ..conftest import RULES

PATTERNS = load_rules(RULES).references

FRAGMENTS = st.sampled_from(
    ["INV-2026-00123", "inv 2026/00123", "Rechnung 2026-00123", "DEP-2026-4072", "CHQ#4512",
     "cheque 004512", "EREF+ABCDEF123", "SI-001510", "Kd-Nr 77812", "0012345", "Müller GmbH",
     "payment", "NOTPROVIDED", "R0002567", "2026-00123", "ＩＮＶ２０２６００１２３", "", "x"]
)
TEXT = st.lists(FRAGMENTS, max_size=4).map(" ".join)
ROWS = st.lists(st.tuples(st.one_of(st.none(), TEXT), st.one_of(st.none(), TEXT)),
                min_size=1, max_size=25)


def _frame(rows: list[tuple[str | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"id": list(range(len(rows))), "reference": [r for r, _ in rows],
         "description": [d for _, d in rows]},
        schema={"id": pl.Int64, "reference": pl.String, "description": pl.String},
    )


def _set(frame: pl.DataFrame) -> set[tuple[int, str]]:
    return set(zip(frame["id"].to_list(), frame["ref"].to_list(), strict=True))


@settings(max_examples=60, deadline=None)
@given(ROWS)
def test_keys_of_a_frame_are_the_keys_of_its_rows(rows: list[tuple[str | None, str | None]]
                                                  ) -> None:
    df = _frame(rows)
    each = set().union(*(_set(_keys(df.slice(i, 1), PATTERNS)) for i in range(df.height)))
    whole = _keys(df, PATTERNS)
    assert _set(whole) == each
    # distinct rows, not only a distinct set: the reference caps count the rows of a key
    assert whole.height == len(each)
    # cut in slices worked on by threads: the same
    with patch.object(refs, "SLICE_ROWS", 2):
        sliced = reference_keys(df, PATTERNS)
        assert _set(sliced) == each
        assert sliced.height == len(each)


def test_a_key_found_twice_in_a_row_is_one_key() -> None:
    """The invoice number in both the reference and the description, written two ways."""
    keys = _keys(_frame([("INV-2026-00123", "paying inv 2026/00123, INV-2026-00123")]), PATTERNS)
    assert keys.filter(pl.col("ref") == "invoice:2026-123").height == 1
    assert keys.height == keys.unique().height


def test_patterns_sharing_a_name_still_give_distinct_keys() -> None:
    """Two patterns named alike (or one named `ref`, as the whole reference's keys are)
    can find the same key in one row: it is still one row of keys."""
    same = [RefPattern("ref", r"\b([A-Z]{3}\d{3,})\b"), RefPattern("ref", r"\b(\w+)\b")]
    keys = _keys(_frame([("ABC12345", "ABC12345")]), same)
    assert _set(keys) == {(0, "ref:ABC12345")}
    assert keys.height == 1


def test_placeholders_are_never_keys() -> None:
    """A bank's placeholder for a missing reference, as the whole reference or found by
    a pattern (EREF+NOTPROVIDED), gives no key."""
    keys = _set(_keys(_frame([("NOTPROVIDED", "EREF+NOTPROVIDED"), ("NONREF", None)]), PATTERNS))
    assert not any(ref.split(":", 1)[1] in refs.STOP_REFS for _, ref in keys), keys


def test_an_earlier_pattern_hides_its_text_from_later_ones() -> None:
    keys = _set(_keys(_frame([(None, "DEP-2026-4072 and INV-2026-00123"),
                              ("CHQ#4512", None)]), PATTERNS))
    assert (0, "deposit:4072") in keys and (0, "invoice:2026-123") in keys
    assert not any(ref.startswith("invoice:2026-4072") for _, ref in keys)
    assert (1, "cheque:4512") in keys and (1, "number:4512") not in keys


def test_an_ideograph_next_to_a_number_separates_it() -> None:
    # Chinese bank text puts numbers against the characters: 发票 = invoice,
    # 付款 = payment.  Word boundaries are ASCII (as in RE2): the ideographs
    # separate the key as a space would.
    keys = _set(_keys(_frame([(None, "付款发票2026-00123深圳华强"), (None, "货款SI-001510付清")]),
                      PATTERNS))
    assert (0, "invoice:2026-123") in keys
    assert (1, "code:SI-1510") in keys


def test_boundaries_become_ascii_and_everything_else_is_kept() -> None:
    assert refs.ascii_boundaries(r"\b0*(\d{5})\b") == r"(?-u:\b)0*(\d{5})(?-u:\b)"
    assert refs.ascii_boundaries(r"\Bx") == r"(?-u:\B)x"
    # an escaped backslash, a class and a ']' first in a class are not boundaries
    assert refs.ascii_boundaries(r"\\b[\w-]") == r"\\b[\w-]"
    assert refs.ascii_boundaries(r"[]b]\b") == r"[]b](?-u:\b)"
    assert refs.ascii_boundaries(r"[[:alpha:]]\b") == r"[[:alpha:]](?-u:\b)"


ASCII_TEXT = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(TEXT, ASCII_TEXT), min_size=1, max_size=10))
def test_on_ascii_text_ascii_boundaries_change_nothing(texts: list[str]) -> None:
    texts = [t for t in texts if t.isascii()] or ["INV-2026-00123"]
    column = pl.Series("t", texts)
    for p in PATTERNS:
        unicode = column.str.extract_all(p.regex).to_list()
        ascii_ = column.str.extract_all(refs.ascii_boundaries(p.regex)).to_list()
        assert ascii_ == unicode, p.name
