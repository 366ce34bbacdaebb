"""Reference keys pulled out of reference and description text, vectorised.

Each pattern of the rules file's ``references.patterns``, in order, yields keys
``<name>:<normalised>``; ``INV-2026-00123``, ``INV202600123``,
``inv 2026/00123`` and ``2026-00123`` all give ``invoice:2026-123``.  The
whole ``reference`` field also gives a key ``ref:<ALNUM>`` so that equal
end-to-end ids meet without a pattern.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import polars as pl

from recon.config import RefPattern

MIN_REF_LEN = 4

#: Placeholders banks put where a reference would be: never a key.
STOP_REFS = ("NOTPROVIDED", "NONREF", "NONE", "NA", "NOREF", "UNKNOWN", "KEINE", "OHNEREF")


def ascii_boundaries(regex: str) -> str:
    """`regex` with its word boundaries (``\\b``, ``\\B``) on ASCII word characters, as in RE2.

    A letter outside ASCII (an ideograph, an umlaut) then separates words as a space
    does: ``发票2026-00123`` yields invoice 2026-00123, which a Unicode boundary (no
    boundary between 票 and 2) would miss.  It is also what keeps the scan fast: a
    Unicode boundary makes the regex engine leave its DFA on every line with a
    non-ASCII character, ten times slower.  On ASCII text both read the same.
    """
    out: list[str] = []
    i, depth = 0, 0  # depth: nested character classes ([[:alpha:]], [a-z&&[^aeiou]])
    while i < len(regex):
        c = regex[i]
        if c == "\\" and i + 1 < len(regex):
            nxt = regex[i + 1]
            out.append(f"(?-u:\\{nxt})" if nxt in "bB" and not depth else c + nxt)
            i += 2
            continue
        if c == "[":
            depth += 1
            # a ']' first in a class (or after '^') is a literal, not the end
            j = i + 1 + (regex[i + 1 : i + 2] == "^")
            if depth == 1 and regex[j : j + 1] == "]":
                out.append(regex[i : j + 1])
                i = j + 1
                continue
        elif c == "]" and depth:
            depth -= 1
        out.append(c)
        i += 1
    return "".join(out)


def _normalise(p: RefPattern, regex: str) -> pl.Expr:
    """Normalise the extracted matches (column `ref`) of pattern `p`, run as `regex`."""
    e = pl.col("ref")
    ngroups = _group_count(p.regex)
    if ngroups:
        # keep the capture groups (of the match, run again on its own text), leading
        # zeros dropped, joined by '-'; extracting them is twice as fast as replacing
        # the match with them
        groups = e.str.extract_groups(regex).struct
        e = pl.concat_str(
            [groups[i].fill_null("") for i in range(ngroups)], separator="-"
        ).str.replace_all(r"(^|-)0+([0-9])", "${1}${2}")
        e = e.str.to_uppercase().str.replace_all(r"[^0-9A-Z-]", "").str.strip_chars("-")
    elif p.normalise == "digits":
        e = e.str.replace_all(r"[^0-9]", "").str.replace(r"^0+", "")
    else:
        e = e.str.to_uppercase().str.replace_all(r"[^0-9A-Z]", "")
    return pl.lit(p.name + ":") + e


def _group_count(regex: str) -> int:
    import re

    return re.compile(regex).groups


#: Frames longer than this are cut in slices worked on in parallel (one per core):
#: a regex over one column runs on one core.
SLICE_ROWS = 50_000


def reference_keys(
    frame: pl.DataFrame | pl.LazyFrame, patterns: Sequence[RefPattern]
) -> pl.DataFrame:
    """(id, ref), distinct, for every key found in `reference` and `description` of
    `frame`, whose ids are distinct."""
    df = frame.lazy().collect() if isinstance(frame, pl.LazyFrame) else frame
    workers = min(os.cpu_count() or 1, df.height // SLICE_ROWS)
    if workers < 2:
        return _keys(df, patterns)
    # more slices than workers: a slice of long texts does not hold up the others
    count = min(4 * workers, df.height // SLICE_ROWS)
    size = -(-df.height // count)
    slices = [df.slice(i * size, size) for i in range(count)]
    with ThreadPoolExecutor(workers) as pool:
        found = list(pool.map(lambda part: _keys(part, patterns), slices))
    # each slice's keys are distinct, and the slices hold different rows
    return pl.concat(found)


#: Characters NFKC keeps as they are wherever they stand: ASCII, the letters of Latin-1
#: and Latin Extended-A but the six with a compatibility form (Ĳ ĳ Ŀ ŀ ŉ ſ), the
#: ideographic comma and full stop, the CJK Unified Ideographs.  None has a
#: compatibility form, none combines with the character before it (no canonical
#: combining class, not the second of any composition), so text made of them is its own
#: NFKC (tests/unit/test_nfkc_stable.py checks each against unicodedata and polars).
NFKC_STABLE = ((0x00, 0x7F), (0xC0, 0xD6), (0xD8, 0xF6), (0xF8, 0x131), (0x134, 0x13E),
               (0x141, 0x148), (0x14A, 0x17E), (0x3001, 0x3002), (0x4E00, 0x9FFF))

#: A character outside NFKC_STABLE (a regex).
NFKC_UNSTABLE = "[^" + "".join(f"\\x{{{lo:X}}}-\\x{{{hi:X}}}" for lo, hi in NFKC_STABLE) + "]"


def _nfkc(df: pl.DataFrame, *cols: str) -> pl.DataFrame:
    """`df` with its `cols` in Unicode NFKC (fullwidth digits become ASCII ones).

    Only rows with a character outside NFKC_STABLE are normalised: other text is its
    own NFKC.  Normalising every row cost more than all the patterns' scans, and every
    row with a non-ASCII character (an umlaut, a Chinese name: 45% of the 1M
    benchmark's rows, 2.6% with a fullwidth or other changing character) 0.37 s per
    million rows, against 0.07 s to find the few.
    """
    mask = df.select(
        pl.any_horizontal(
            [pl.col(c).str.contains(NFKC_UNSTABLE).fill_null(False) for c in cols]
        )
    ).to_series()
    if not mask.any():
        return df
    return pl.concat(
        [
            df.filter(~mask),
            df.filter(mask).with_columns(pl.col(c).str.normalize("NFKC") for c in cols),
        ]
    )


def _keys(frame: pl.DataFrame, patterns: Sequence[RefPattern]) -> pl.DataFrame:
    df = _nfkc(
        frame.select(
            "id",
            "reference",
            pl.concat_str(
                [pl.col("reference").fill_null(""), pl.col("description").fill_null("")],
                separator=" ",
            ).alias("text"),
        ),
        "reference",
        "text",
    ).select(
        "id",
        "text",
        pl.col("reference").str.to_uppercase().str.replace_all(r"[^0-9A-Z]", "").alias("whole"),
    )
    stop = pl.Series(STOP_REFS).implode()
    parts = [
        df.filter(
            (pl.col("whole").str.len_chars() >= MIN_REF_LEN) & ~pl.col("whole").is_in(stop)
        ).select("id", (pl.lit("ref:") + pl.col("whole")).alias("ref"))
    ]
    for i, p in enumerate(patterns):
        # each step is materialised: a lazy chain would redo every earlier step's
        # replacement for each later pattern; matches are normalised flat, not per list
        regex = ascii_boundaries(p.regex)
        found = df.select("id", "text", pl.col("text").str.extract_all(regex).alias("ref"))
        n = found["ref"].list.len().fill_null(0)
        prefix = len(p.name) + 1
        keep = (pl.col("ref").str.len_chars() > prefix) & ~pl.col("ref").str.slice(prefix).is_in(
            stop
        )
        # a row's keys are distinct: only rows with several matches can repeat one (an
        # invoice number in both the reference and the description), so only their
        # keys are made distinct, not all keys at the end (a quarter of the scan)
        one = found.filter(n == 1).select("id", pl.col("ref").list.first())
        several = found.filter(n > 1).select("id", "ref").explode("ref")
        for matches, distinct in ((one, False), (several, True)):
            got = matches.select("id", _normalise(p, regex).alias("ref")).filter(keep)
            parts.append(got.unique() if distinct else got)
        if i + 1 < len(patterns):
            # earlier patterns take precedence: what they matched is not seen by later
            # ones (DEP-2026-4072 is a deposit slip, not invoice 2026-4072); only the
            # rows it matched are rewritten
            hit = n > 0
            df = pl.concat(
                [
                    found.filter(~hit).select("id", "text"),
                    found.filter(hit).select("id", pl.col("text").str.replace_all(regex, " ")),
                ]
            )
    keys = pl.concat(parts)
    names = [p.name for p in patterns]
    # keys of different names differ, unless two patterns share a name (or one is "ref")
    if len(set(names)) < len(names) or "ref" in names:
        keys = keys.unique()
    return keys
