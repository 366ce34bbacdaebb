"""Counterparty name normalisation, vectorised with polars.

`Müller GmbH`, `MUELLER GMBH` and `mueller` meet; so do
`上海华盛贸易有限公司` and `华盛贸易（上海）有限公司`.  The result (`name_key`)
is stored with each transaction at load time and compared with rapidfuzz.
"""

from __future__ import annotations

import re

import polars as pl

from recon.normalise import non_ascii_expr

_TRANSLIT = {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "æ": "ae", "ø": "oe", "å": "aa"}

#: Latin-script legal forms, matched as whole words after dots are removed.
LEGAL_FORMS = (
    "ltd",
    "limited",
    "inc",
    "incorporated",
    "llc",
    "llp",
    "lp",
    "corp",
    "corporation",
    "co",
    "company",
    "plc",
    "gmbh",
    "mbh",
    "ag",
    "kg",
    "ohg",
    "ug",
    "ek",
    "eg",
    "ev",
    "kgaa",
    "se",
    "sarl",
    "sa",
    "sas",
    "sasu",
    "eurl",
    "snc",
    "srl",
    "spa",
    "sl",
    "slu",
    "bv",
    "nv",
    "vof",
    "oy",
    "oyj",
    "ab",
    "as",
    "asa",
    "aps",
    "pty",
    "pte",
    "kk",
    "sp zoo",
    "zoo",
    "the",
    "und",
    "and",
    "et",
    "y",
    "cie",
)

#: CJK legal forms, longest first (no word boundaries in Chinese).
CJK_LEGAL_FORMS = (
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "集团公司",
    "株式会社",
    "有限会社",
    "合伙企业",
    "集团",
    "公司",
    "分公司",
    "商行",
    "企业",
)

#: Place names that prefix Chinese company names (上海华盛… = 华盛…（上海）).
CJK_PLACES = (
    "北京",
    "上海",
    "天津",
    "重庆",
    "深圳",
    "广州",
    "杭州",
    "南京",
    "苏州",
    "武汉",
    "成都",
    "西安",
    "青岛",
    "大连",
    "宁波",
    "厦门",
    "福州",
    "长沙",
    "郑州",
    "济南",
    "沈阳",
    "哈尔滨",
    "长春",
    "合肥",
    "南昌",
    "昆明",
    "贵阳",
    "南宁",
    "海口",
    "石家庄",
    "太原",
    "呼和浩特",
    "兰州",
    "西宁",
    "银川",
    "乌鲁木齐",
    "拉萨",
    "无锡",
    "佛山",
    "东莞",
    "珠海",
    "温州",
    "广东",
    "江苏",
    "浙江",
    "山东",
    "河南",
    "河北",
    "湖北",
    "湖南",
    "福建",
    "安徽",
    "四川",
    "香港",
    "澳门",
    "台湾",
    "中国",
)


def name_key_expr(col: pl.Expr, *, ascii_only: bool = False) -> pl.Expr:
    """Normalised counterparty name: NFKC, case, accents, punctuation, legal forms.

    With `ascii_only` the steps that change nothing in ASCII text (Unicode forms,
    transliterations, CJK places and legal forms) are left out: for names known to
    be ASCII, the same keys in half the time.
    """
    s = col.str.to_lowercase() if ascii_only else col.str.normalize("NFKC").str.to_lowercase()
    if not ascii_only:
        for src, dst in _TRANSLIT.items():
            s = s.str.replace_all(src, dst, literal=True)
        s = s.str.normalize("NFKD").str.replace_all(r"\p{M}", "")
    s = s.str.replace_all(r"\([^)]*\)", " ")  # parenthesised places: (上海), (UK)
    s = s.str.replace_all(r"\.", "")  # S.A. -> sa, e.K. -> ek
    s = s.str.replace_all(r"[^\p{L}\p{N}]+", " ")
    if not ascii_only:
        places = "|".join(sorted(CJK_PLACES, key=len, reverse=True))
        s = s.str.replace(rf"^\s*(?:{places})(?:省|市)?", "")
        cjk = "|".join(CJK_LEGAL_FORMS)
        s = s.str.replace_all(rf"(?:{cjk})", " ")
        # banks cut names at a fixed width: 利民贸易股份有限 lost its 公司
        s = s.str.replace(r"(?:股份有限|有限责任|有限公|股份有|有限|股份)\s*$", "")
    latin = "|".join(sorted(LEGAL_FORMS, key=len, reverse=True))
    s = s.str.replace_all(rf"\b(?:{latin})\b", " ")
    s = s.str.replace_all(r"\s+", " ").str.strip_chars()
    return pl.when(s == "").then(None).otherwise(s)


_HAN = re.compile(r"[\u4e00-\u9fff]")


def name_alt_series(names: pl.Series) -> pl.Series:
    """Pinyin of Chinese names (李军 -> 'li jun'), so that a bank's romanised
    `LI J` can meet the ledger's 李军; null for names without Han characters."""
    keys = pl.DataFrame({"n": names}).select(name_key_expr(pl.col("n")).alias("k"))["k"]
    return _pinyin_of_keys(keys)


def _pinyin_of_keys(keys: pl.Series) -> pl.Series:
    """Pinyin of normalised names; only the distinct Chinese ones are converted."""
    uniq = [k for k in keys.unique().drop_nulls().to_list() if _HAN.search(k)]
    if not uniq:
        return pl.Series("name_alt", [None] * len(keys), dtype=pl.String)
    from pypinyin import lazy_pinyin

    mapping = {k: " ".join(p for p in lazy_pinyin(k) if p.strip()) for k in uniq}
    return keys.replace_strict(mapping, default=None, return_dtype=pl.String).alias("name_alt")


def name_columns(frame: pl.DataFrame, column: str = "counterparty") -> pl.DataFrame:
    """Each distinct non-null `column` of `frame` with its `name_key` and `name_alt`,
    normalised once per distinct name (a million bank lines name a few thousand
    payers); the caller joins them to its rows."""
    names = frame.select(pl.col(column).unique().drop_nulls())
    mask = names.select(~non_ascii_expr(pl.col(column))).to_series()
    # ASCII names take the short way; halves of each kind run side by side (a string
    # expression over one column runs on one core)
    parts = []
    for rows, is_ascii in ((names.filter(mask), True), (names.filter(~mask), False)):
        half = -(-rows.height // 2)
        for part in (rows.head(half), rows.tail(rows.height - half)):
            key = name_key_expr(pl.col(column), ascii_only=is_ascii).alias("name_key")
            parts.append(part.lazy().select(column, key))
    keys = pl.concat(parts, parallel=True).collect()
    return keys.with_columns(_pinyin_of_keys(keys["name_key"]))


def name_keys(names: list[str | None]) -> list[str | None]:
    """Normalise a list of names (convenience for tests and single values)."""
    out = pl.DataFrame({"n": names}, schema={"n": pl.String}).select(
        name_key_expr(pl.col("n")).alias("n")
    )
    return out["n"].to_list()
