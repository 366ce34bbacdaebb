"""Seeded sample data with ground truth: one month of a mid-size company's bank and ledger.

    python sample_data/generate.py --seed 7 --rows 300 --mode hard --out DIR [--ofx]

Writes ``bank.csv`` and ``ledger.csv`` in the canonical layouts of CONTRACT.md,
``truth.csv`` (``case,left_ids,right_ids,expected,reason``) and, with ``--ofx``,
``bank.ofx`` (OFX 2 XML, FITID = bank id, one statement per account).  Every bank
and ledger row is in exactly one truth row: a match group (``expected=match``,
left = bank ids, right = ledger ids; a bank error and its storno form a group with
no ledger side) or one item that must stay unmatched (``expected=exception`` with
its reason code).  Same seed and arguments give byte-identical files.  The cases
are listed in ``CASES`` and in sample_data/README.md.

Generation is vectorised so that a million bank lines take seconds: party names
and their nine variants (upper-cased, truncated, transliterated, ...) are composed
by polars from small word tables, rows pick a party and a variant by index, and
all per-row text is built by polars expressions; no Python loop runs per row.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import polars as pl

MONTH_START = date(2026, 3, 1)
MONTH_DAYS = 31
_EPOCH = (MONTH_START - date(1970, 1, 1)).days  # day offsets -> polars Date
_HOLIDAYS = (33, 36)  # Good Friday 3 Apr and Easter Monday 6 Apr 2026: TARGET2 closed

BANK_COLUMNS = ("id", "date", "amount", "currency", "counterparty", "reference",
                "description", "account", "value_date", "iban")
LEDGER_COLUMNS = ("id", "date", "amount", "currency", "counterparty", "reference",
                  "description", "account", "due_date", "doc_type", "customer_id")
TRUTH_COLUMNS = ("case", "left_ids", "right_ids", "expected", "reason")

CURRENCIES = ("EUR", "USD", "GBP", "CNY")
_CUR_SCALE = np.array([1.0, 1.1, 0.85, 7.8])  # typical invoice size per currency
_EUR_PER_UNIT = np.array([1.0, 0.92, 1.17, 0.127])  # reference FX rates
BANK_ACCOUNTS = {"EUR": "DE89370400440532013000", "USD": "021000021-4459871230",
                 "GBP": "GB29NWBK60161331926819", "CNY": "6222021001123456789"}
GL_ACCOUNTS = {"EUR": "1200", "USD": "1210", "GBP": "1220", "CNY": "1230"}
BANK_NAMES = {"EUR": "RHEINLAND HANDELSBANK AG", "USD": "HUDSON VALLEY NATIONAL BANK",
              "GBP": "THAMES & MERCIA BANK PLC", "CNY": "华夏东方商业银行"}

# --- party names: (canonical, variants) built once per party --------------------------
def _words(text: str, sep: str | None = None) -> tuple[str, ...]:
    return tuple(text.split(sep))


def _pairs(text: str) -> list[list[str]]:
    """'上海:Shanghai 北京:Beijing' -> [['上海', 'Shanghai'], ...] (_ stands for a space)."""
    return [pair.split(":") for pair in text.split()]


_EN_A = _words(
    "Northwind Bluewater Redstone Summit Harbor Oakridge Pinnacle Silverline Greenfield Atlas "
    "Crescent Evergreen Ironbridge Maple Falcon Granite Lakeside Westbrook Kingsley Ashford "
    "Riverside Brightwater Clearview Highland Keystone Lighthouse Meridian Northstar Oakwood "
    "Phoenix Quantum Redwood Sterling Thornbury Union Vanguard Whitmore Yorkshire Zenith "
    "Cobalt Horizon Beacon Cedar Driftwood Eastgate Foxglove Goldcrest Hawthorne Juniper "
    "Larkspur")
_EN_MID = ("", "Global", "International", "European", "Pacific", "Northern", "United",
           "Advanced")
_EN_B = _words(
    "Trading Logistics Systems Supplies Engineering Foods Consulting Holdings Manufacturing "
    "Industries Technologies Distribution Partners Services Retail Packaging Components "
    "Textiles Chemicals Electronics")
_EN_FORMS = ("Ltd", "Ltd.", "LLC", "Inc.", "Inc", "PLC", "Corp.", "Limited")
_DE_LAST = _words(
    "Müller Schröder Schäfer Köhler Groß Weiß Böhm Krüger Jäger Hoffmann Schmidt Fischer "
    "Becker Wagner Schulz Zimmermann Braun Hartmann Lange König Fuchs Vogel Günther Kühn "
    "Möller Bäcker Dörr Pöhlmann Süß Wößner Hübner Lührs Brückner Förster Görlitz Heß Jürgens "
    "Löffler Nüßlein Rößler")
_DE_MID = ("", " & Söhne", " & Partner", " Nord", " Süd")
_DE_B = _words(
    "Maschinenbau Logistik Elektrotechnik Handelsgesellschaft Metallbau Bauunternehmung "
    "Feinkost Druckerei Spedition Anlagenbau Werkzeugbau Kunststofftechnik "
    "Softwareentwicklung Gebäudetechnik Lebensmittel Holzverarbeitung Präzisionsteile "
    "Stahlhandel Umwelttechnik Medizintechnik")
_DE_FORMS = ("GmbH", "AG", "GmbH & Co. KG", "KG", "e.K.", "UG (haftungsbeschränkt)", "SE")
_FR_LAST = _words(
    "Dubois Lefèvre Moreau Girard Rousseau Bérard Fontaine Chevalier Gauthier Lemaître Benoît "
    "Mercier Faure André Leclerc Giraud Barbier Brunet Rénard Mathieu Garnier Chevrier Hébert "
    "Cloutier Lévêque Thibault Perrin Marchand Dupré Noël")
_FR_PRE = ("", "Établissements ", "Groupe ", "Société ")
_FR_B = _words(
    "Logistique Équipements Transports Distribution Bâtiment Informatique Alimentaire Conseil "
    "Électricité Industries Emballages Matériaux Services Négoce Mécanique")
_FR_FORMS = ("SARL", "S.A.", "SAS", "EURL", "SNC")
_NL_LAST = _words(
    "Van der Berg|De Vries|Jansen|Bakker|Visser|Smit|Meijer|De Boer|Mulder|De Groot|Bos|Vos|"
    "Peters|Hendriks|Van Dijk|Van Leeuwen|Dekker|Brouwer|De Wit|Dijkstra|Van den Heuvel|Kok|"
    "Jacobs|Van der Linden|Schouten", sep="|")
_NL_PRE = ("", "Groothandel ", "Handelsonderneming ")
_NL_B = _words(
    "Techniek Logistiek Handel Installatietechniek Bouw Transport Metaal Verpakkingen "
    "Automatisering Agri Elektro Machinebouw")
_NL_FORMS = ("B.V.", "BV", "N.V.", "VOF")
_ZH_CITY = _pairs(
    "上海:Shanghai 北京:Beijing 深圳:Shenzhen 广州:Guangzhou 杭州:Hangzhou "
    "苏州:Suzhou 南京:Nanjing 天津:Tianjin 宁波:Ningbo 厦门:Xiamen 成都:Chengdu "
    "武汉:Wuhan 青岛:Qingdao 东莞:Dongguan 无锡:Wuxi")
_ZH_BRAND = _pairs(
    "华盛:Huasheng 金达:Jinda 宏远:Hongyuan 鑫源:Xinyuan 恒通:Hengtong 永泰:Yongtai "
    "瑞丰:Ruifeng 嘉禾:Jiahe 东方:Dongfang 中联:Zhonglian 天成:Tiancheng 新华:Xinhua "
    "明辉:Minghui 盛世:Shengshi 安捷:Anjie 百川:Baichuan 海纳:Haina 远航:Yuanhang "
    "正泰:Zhengtai 长城:Changcheng 德信:Dexin 富达:Fuda 国泰:Guotai 利民:Limin "
    "振华:Zhenhua")
_ZH_IND = _pairs(
    "贸易:Trading 电子:Electronics 科技:Technology 机械:Machinery 化工:Chemical "
    "纺织:Textile 物流:Logistics 进出口:Import_&_Export 实业:Industrial "
    "精密制造:Precision_Manufacturing 包装材料:Packaging_Materials "
    "电器:Electric_Appliance 五金:Hardware 食品:Food 医疗器械:Medical_Devices")
_ZH_FORMS = ("有限公司", "股份有限公司")
_EN_FIRST = _words(
    "John Mary James Patricia Robert Jennifer Michael Linda William Elizabeth David Susan "
    "Richard Sarah Thomas Karen Charles Emma Daniel Olivia")
_EN_LAST = _words(
    "Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Moore Martin "
    "Jackson Thompson White Harris Clark Lewis Robinson Walker Young Allen King Wright Scott")
_DE_FIRST = _words(
    "Jürgen Hans Günter Käthe Jörg Sören Björn Ulrike Monika Stefan Andreas Claudia Sabine "
    "Wolfgang Dieter")
_FR_FIRST = _words("François Hélène Jérôme Céline Émile Loïc Agnès Pierre Marie Benoît")
_NL_FIRST = _words("Pieter Jan Sanne Joost Femke Bram Maarten Lotte")
_ZH_SUR = _pairs(
    "王:Wang 李:Li 张:Zhang 刘:Liu 陈:Chen 杨:Yang 黄:Huang 赵:Zhao 吴:Wu 周:Zhou "
    "徐:Xu 孙:Sun 马:Ma 朱:Zhu 胡:Hu")
_ZH_GIVEN = _pairs(
    "伟:Wei 芳:Fang 娜:Na 敏:Min 静:Jing 丽:Li 强:Qiang 磊:Lei 军:Jun 洋:Yang 勇:Yong "
    "艳:Yan 杰:Jie 娟:Juan 涛:Tao 明:Ming 超:Chao 秀英:Xiuying 华:Hua 建国:Jianguo")

N_VARIANTS = 9
#: Variant columns: 0 canonical (the ledger's), 1 upper, 2 upper truncated, 3 legal form
#: dropped, 4 upper without legal form, 5 transliterated (Mueller; pinyin for Chinese),
#: 6 full-width (or 华盛贸易（上海）有限公司), 7 short/initials (MUELLER GMBH, J. SMITH),
#: 8 accents folded (MULLER; 华盛贸易(上海)有限公司).
EASY_VARIANTS = (0, 1, 2, 3, 4)
_PRINTABLE = [chr(i) for i in range(0x20, 0x7F)]
_FULLWIDTH = ["\u3000"] + [chr(i + 0xFEE0) for i in range(0x21, 0x7F)]
_UMLAUTS = (["ß", "ä", "ö", "ü", "Ä", "Ö", "Ü"], ["ss", "ae", "oe", "ue", "Ae", "Oe", "Ue"])


def _ascii(text: pl.Expr, *, expand: bool = True) -> pl.Expr:
    """Bank-style ASCII: Müller -> Mueller (expand) or Muller; other accents dropped."""
    if expand:
        text = text.str.replace_many(*_UMLAUTS)
    else:
        text = text.str.replace_all("ß", "ss", literal=True)
    return text.str.normalize("NFKD").str.replace_all(r"[^\x00-\x7F]", "")


def _upper(text: pl.Expr) -> pl.Expr:
    return text.str.to_uppercase()


def _fullwidth(text: pl.Expr) -> pl.Expr:
    return text.str.replace_many(_PRINTABLE, _FULLWIDTH)


def _company(core: pl.Expr, key: pl.Expr, form: pl.Expr) -> list[pl.Expr]:
    name = core + " " + form
    flat = _upper(_ascii(name))
    return [name, _upper(name), _upper(name).str.slice(0, pl.col("cut")).str.strip_chars_end(),
            core, _upper(core), flat, _fullwidth(flat), _upper(_ascii(key) + " " + form),
            _upper(_ascii(name, expand=False))]


def _person(first: pl.Expr, last: pl.Expr) -> list[pl.Expr]:
    name = first + " " + last
    flat = _upper(_ascii(name))
    return [name, _upper(name), _upper(name).str.slice(0, pl.col("cut")).str.strip_chars_end(),
            last + ", " + first, _upper(last + " " + first), flat, _fullwidth(flat),
            _upper(_ascii(first).str.head(1) + ". " + _ascii(last)),
            _upper(_ascii(last, expand=False) + " " + _ascii(first, expand=False))]


def _zh_company() -> list[pl.Expr]:
    city, brand, ind, form = (pl.col(c) for c in ("city", "brand", "ind", "form"))
    name = city + brand + ind + form
    return [name, name, name.str.head(-2), city + brand + ind, brand + ind + form,
            _upper(pl.concat_str(["city_py", "brand_py", "ind_py"], separator=" "))
            + " CO., LTD.", brand + ind + "（" + city + "）" + form,
            _upper(pl.col("brand_py") + " " + pl.col("ind_py") + " (" + pl.col("city_py")
                   + ") CO LTD"), brand + ind + "(" + city + ")" + form]


def _zh_person() -> list[pl.Expr]:
    name = pl.col("sur") + pl.col("given")
    py = _upper(pl.col("sur_py") + " " + pl.col("given_py"))
    return [name] * 5 + [py, _fullwidth(py),
                         _upper(pl.col("sur_py") + " " + pl.col("given_py").str.head(1)),
                         _upper(pl.col("given_py") + " " + pl.col("sur_py"))]


def _hanzi(pairs: list[list[str]]) -> list[str]:
    return [h for h, _ in pairs]


def _pinyin(pairs: list[list[str]]) -> list[str]:
    return [p.replace("_", " ") for _, p in pairs]


def _nl_person_last(last: str) -> str:
    for particle in ("Van der ", "Van den ", "Van ", "De "):
        if last.startswith(particle):
            return particle.lower() + last[len(particle):]
    return last


_MID = pl.when(pl.col("p1") != "").then(pl.col("p1"))
_SUFFIXED = pl.col("p0") + pl.col("p1") + " " + pl.col("p2")


@dataclass(frozen=True)
class _Lang:
    """Where party names of one kind come from and how their variants are built."""

    code: str
    parts: dict[str, tuple[Sequence[str], int]]  # column -> (words, index dimension)
    variants: list[pl.Expr]
    share: float
    currency_p: tuple[float, float, float, float]  # home currency: EUR, USD, GBP, CNY
    iban_country: str

    @property
    def dims(self) -> tuple[int, ...]:
        sizes = {dim: len(words) for words, dim in self.parts.values()}
        return tuple(sizes[d] for d in sorted(sizes))


def _p(*lists: Sequence[str]) -> dict[str, tuple[Sequence[str], int]]:
    return {f"p{i}": (words, i) for i, words in enumerate(lists)}


_EURO = (1.0, 0.0, 0.0, 0.0)
_NL_PERSON_LAST = [_nl_person_last(x) for x in _NL_LAST]
LANGS = (
    _Lang("en", _p(_EN_A, _EN_MID, _EN_B, _EN_FORMS),
          _company(pl.concat_str(["p0", _MID, "p2"], separator=" ", ignore_nulls=True),
                   pl.col("p0"), pl.col("p3")), 0.25, (0.5, 0.25, 0.25, 0.0), "GB"),
    _Lang("de", _p(_DE_LAST, _DE_MID, _DE_B, _DE_FORMS),
          _company(_SUFFIXED, pl.col("p0"), pl.col("p3")), 0.28, _EURO, "DE"),
    _Lang("fr", _p(_FR_PRE, _FR_LAST, _FR_B, _FR_FORMS),
          _company(_SUFFIXED, pl.col("p1"), pl.col("p3")), 0.13, _EURO, "FR"),
    _Lang("nl", _p(_NL_PRE, _NL_LAST, _NL_B, _NL_FORMS),
          _company(_SUFFIXED, pl.col("p1"), pl.col("p3")), 0.10, _EURO, "NL"),
    _Lang("zh", {"city": (_hanzi(_ZH_CITY), 0), "city_py": (_pinyin(_ZH_CITY), 0),
                 "brand": (_hanzi(_ZH_BRAND), 1), "brand_py": (_pinyin(_ZH_BRAND), 1),
                 "ind": (_hanzi(_ZH_IND), 2), "ind_py": (_pinyin(_ZH_IND), 2),
                 "form": (_ZH_FORMS, 3)},
          _zh_company(), 0.14, (0.2, 0.4, 0.0, 0.4), ""),
    _Lang("p_en", _p(_EN_FIRST, _EN_LAST), _person(pl.col("p0"), pl.col("p1")), 0.03,
          (0.3, 0.2, 0.5, 0.0), "GB"),
    _Lang("p_de", _p(_DE_FIRST, _DE_LAST), _person(pl.col("p0"), pl.col("p1")), 0.03,
          _EURO, "DE"),
    _Lang("p_fr", _p(_FR_FIRST, _FR_LAST), _person(pl.col("p0"), pl.col("p1")), 0.015,
          _EURO, "FR"),
    _Lang("p_nl", _p(_NL_FIRST, _NL_PERSON_LAST), _person(pl.col("p0"), pl.col("p1")), 0.01,
          _EURO, "NL"),
    _Lang("p_zh", {"sur": (_hanzi(_ZH_SUR), 0), "sur_py": (_pinyin(_ZH_SUR), 0),
                   "given": (_hanzi(_ZH_GIVEN), 1), "given_py": (_pinyin(_ZH_GIVEN), 1)},
          _zh_person(), 0.015, (0.4, 0.0, 0.0, 0.6), ""),
)
_IBAN_SPEC = {"DE": ((), 18), "FR": ((), 23), "NL": (("ABNA", "RABO", "INGB", "TRIO"), 10),
              "GB": (("NWBK", "BARC", "LOYD", "HBUK"), 14)}


def _iban_check(rem: np.ndarray, text: str | np.ndarray) -> np.ndarray:
    """Fold characters into a running mod-97 remainder (letters count as two digits)."""
    if isinstance(text, str):
        for ch in text:
            rem = (rem * (100 if ch.isalpha() else 10) + int(ch, 36)) % 97
        return rem
    for j in range(text.shape[1]):  # a matrix of digits
        rem = (rem * 10 + text[:, j]) % 97
    return rem


def _ibans(country: np.ndarray, rng: np.random.Generator) -> pl.Series:
    """Syntactically valid IBANs (mod-97 check digits) for parties with a country code."""
    out = pl.Series("iban", [None] * len(country), dtype=pl.String)
    for code, (banks, ndigits) in _IBAN_SPEC.items():
        rows = np.flatnonzero(country == code)
        if not len(rows):
            continue
        digits = rng.integers(0, 10, (len(rows), ndigits))
        bank = rng.integers(0, max(1, len(banks)), len(rows))
        rem = np.zeros(len(rows), dtype=np.int64)
        for i, name in enumerate(banks):  # letters of the bank code first, as in the BBAN
            mask = bank == i
            rem[mask] = _iban_check(rem[mask], name)
        rem = _iban_check(_iban_check(rem, digits), code + "00")
        frame = pl.DataFrame(digits).with_columns(
            _bank=pl.Series(list(banks) or [""]).gather(bank),
            _check=pl.Series(98 - rem).cast(pl.String).str.zfill(2))
        text = frame.select(pl.concat_str([pl.lit(code), "_check", "_bank", *[
            pl.col(c).cast(pl.String) for c in frame.columns[:ndigits]]])).to_series()
        out = out.scatter(rows, text)
    return out


@dataclass(frozen=True)
class Parties:
    """Customers, suppliers and strangers; names as a flat (party x variant) series."""

    names: pl.Series  # len = n * N_VARIANTS, index pid * N_VARIANTS + variant
    kind: np.ndarray  # 0 customer, 1 supplier, 2 stranger (never in the ledger)
    cur: np.ndarray  # home currency index into CURRENCIES
    iban: pl.Series
    cid: pl.Series  # C000001 / V000001 / null
    sstyle: np.ndarray  # supplier-invoice number style
    customers: np.ndarray
    suppliers: np.ndarray
    strangers: np.ndarray
    p_customer: np.ndarray  # how often each customer pays (a few big ones pay often)
    p_supplier: np.ndarray


def _quotas(total: int) -> list[int]:
    """Parties per language; a language whose name pool is small hands over to English."""
    quotas = [round(total * lang.share) for lang in LANGS]
    for i, lang in enumerate(LANGS):
        cap = int(np.prod(lang.dims) * 0.8)
        if quotas[i] > cap:
            quotas[0] += quotas[i] - cap
            quotas[i] = cap
    quotas[0] += total - sum(quotas)
    return quotas


def _language_names(lang: _Lang, quota: int, rng: np.random.Generator) -> pl.DataFrame:
    """`quota` distinct names of one language with their variants v0..v8."""
    picks = rng.choice(int(np.prod(lang.dims)), size=quota, replace=False)
    idx = np.stack(np.unravel_index(picks, lang.dims), axis=1)
    parts = pl.DataFrame({col: pl.Series(list(words), dtype=pl.String).gather(idx[:, dim])
                          for col, (words, dim) in lang.parts.items()})
    parts = parts.with_columns(cut=pl.Series(rng.integers(14, 23, quota)))
    return parts.select(e.alias(f"v{i}") for i, e in enumerate(lang.variants))


def build_parties(rng: np.random.Generator, n_cust: int, n_supp: int, n_strange: int
                  ) -> Parties:
    """Draw distinct party names per language and their variants, ids and IBANs."""
    total = n_cust + n_supp + n_strange
    frames, curs, countries = [], [], []
    for lang, quota in zip(LANGS, _quotas(total), strict=True):
        frames.append(_language_names(lang, quota, rng))
        cur = rng.choice(4, size=quota, p=lang.currency_p)
        curs.append(cur)
        countries.append(np.where(np.isin(cur, (0, 2)), lang.iban_country, ""))  # no US/CN
    order = rng.permutation(total)
    names = pl.concat(frames)[order]
    if names["v0"].n_unique() != total:
        raise AssertionError("party names must be distinct")
    kind = np.repeat(np.array([0, 1, 2], dtype=np.int8), [n_cust, n_supp, n_strange])
    cid = [f"C{i + 1:06d}" for i in range(n_cust)] + [f"V{i + 1:06d}" for i in range(n_supp)]
    return Parties(
        names=names.select(pl.concat_list(pl.all())).to_series().explode(),
        kind=kind, cur=np.concatenate(curs)[order].astype(np.int8),
        iban=_ibans(np.concatenate(countries)[order], rng),
        cid=pl.Series("cid", cid + [None] * n_strange, dtype=pl.String),
        sstyle=rng.integers(0, len(_SREF_STYLES), total).astype(np.int8),
        customers=np.arange(n_cust), suppliers=np.arange(n_cust, n_cust + n_supp),
        strangers=np.arange(n_cust + n_supp, total),
        p_customer=_zipf(rng, n_cust), p_supplier=_zipf(rng, n_supp))


def _zipf(rng: np.random.Generator, n: int) -> np.ndarray:
    weights: np.ndarray = 1.0 / (1.0 + rng.permutation(n)) ** 0.7
    share: np.ndarray = weights / weights.sum()
    return share


# --- text tables used by the row expressions ------------------------------------------
_BANK_WORDS = (  # (currency, in/out) x 3 templates
    "SEPA-GUTSCHRIFT", "SEPA CREDIT TRANSFER", "GUTSCHRIFT UEBERWEISUNG",
    "SEPA-UEBERWEISUNG", "SEPA-LASTSCHRIFT", "SEPA CT OUT",
    "WIRE IN FROM", "ACH CREDIT", "TRF FROM", "WIRE OUT TO", "ACH DEBIT", "TRF TO",
    "FASTER PAYMENT FROM", "BACS CREDIT", "TRF FROM", "FASTER PAYMENT TO", "DIRECT DEBIT",
    "TRF TO",
    "汇入汇款", "TRF FROM", "货款收入", "汇出汇款", "TRF TO", "货款支付",
)
_LEDGER_WORDS = ("Zahlungseingang", "Payment received", "Zahlungseingang", "Customer receipt",
                 "Zahlungsausgang", "Supplier payment", "Zahlungsausgang", "Lieferantenzahlung")
#: Invoice numbers as customers write them in remittance text (all INV-2026-00123).
_FREE_REF = ("INV-2026-", "INV2026", "inv 2026/", "2026-", "Rechnung 2026/", "RE 2026-",
             "Facture INV 2026 ", "Factuur 2026/", "发票号 INV-2026-", "RG.NR. 2026",
             "INV-2026-", "Invoice no. 2026 / ")
_FREE_UNPADDED = 10  # INV-2026-123: leading zeros dropped
_REF_PREFIX = ("", "Rechnung ", "Invoice ", "Facture ")
_GENERIC = ("ZAHLUNG", "PAYMENT", "ACOMPTE", "BETALING", "货款", "RECHNUNGSAUSGLEICH",
            "PAYMENT ON ACCOUNT", "OVERBOEKING")
_SREF_STYLES = (("RE-", 6), ("R", 7), ("FA26-", 5), ("SI-", 6), ("", 8))
_ROUND_AMOUNTS = np.array([250, 500, 1000, 1500, 2000, 2500, 5000]) * 100

_FRAME_SCHEMA: dict[str, Any] = {
    "grp": pl.Int64, "case": pl.String, "expected": pl.String, "reason": pl.String,
    "out": pl.Boolean, "sup": pl.Boolean, "pid": pl.Int64, "cur": pl.Int8,
    "bcur": pl.Int8, "lcents": pl.Int64, "bcents": pl.Int64, "bday": pl.Int32,
    "vday": pl.Int32, "lday": pl.Int32, "due_day": pl.Int32, "inv": pl.Int64,
    "refmode": pl.Int8, "rf": pl.Int8, "btmpl": pl.Int8, "ltmpl": pl.Int8, "e2e": pl.Boolean,
    "bname": pl.String, "lname": pl.String, "iban": pl.String, "cid": pl.String,
    "sstyle": pl.Int8,
    # overrides: null = the default text built from the columns above
    "remit": pl.String, "bword": pl.String, "bpre": pl.String, "bsuf": pl.String,
    "bref": pl.String, "ldesc": pl.String, "lref": pl.String, "lsuf": pl.String,
    "doc": pl.String, "trntype": pl.String, "checknum": pl.String,
}
#: refmode: where the bank line carries the reference.
REF_EXACT, REF_IN_DESC, REF_FREE, REF_NONE, REF_NO_TEXT = range(5)


def _calendar() -> tuple[np.ndarray, int, int]:
    """Business days (offsets from MONTH_START) from late Jan to May; month index range."""
    days = np.arange(-40, 80)
    weekday = (days + MONTH_START.weekday()) % 7
    bdays = days[(weekday < 5) & ~np.isin(days, _HOLIDAYS)].astype(np.int32)
    return bdays, int(np.searchsorted(bdays, 0)), int(np.searchsorted(bdays, MONTH_DAYS))


BDAYS, M0, M1 = _calendar()


class Generator:
    """Draws the rows of each case into a common frame layout; turns them into files."""

    def __init__(self, seed: int, rows: int, mode: str) -> None:
        if mode not in ("easy", "hard"):
            raise ValueError(f"mode must be 'easy' or 'hard', got {mode!r}")
        self.rng = np.random.default_rng(seed)
        self.hard = mode == "hard"
        self.parties = build_parties(
            self.rng, int(np.clip(rows * 0.5, 120, 40_000)),
            int(np.clip(rows * 0.12, 40, 10_000)), int(np.clip(rows * 0.02, 10, 2_000)))
        self._grp = 0
        self._inv = self.rng.permutation(3 * rows + 2000) + int(self.rng.integers(100, 900))
        self._inv_next = 0
        self._cheque = int(self.rng.integers(1000, 5000))
        self.bank: list[pl.DataFrame] = []
        self.ledger: list[pl.DataFrame] = []

    # -- draws ---------------------------------------------------------------------
    def groups(self, n: int) -> np.ndarray:
        self._grp += n
        return np.arange(self._grp - n, self._grp, dtype=np.int64)

    def invoices(self, n: int) -> np.ndarray:
        """Distinct document numbers, not in date order (invoices from past weeks)."""
        if self._inv_next + n > len(self._inv):  # tiny --rows with large minimum cases
            self._inv = np.concatenate([self._inv, self._inv.max() + 1 + np.arange(n)])
        self._inv_next += n
        return self._inv[self._inv_next - n:self._inv_next].astype(np.int64)

    def cheques(self, n: int) -> np.ndarray:
        self._cheque += n
        return np.arange(self._cheque - n, self._cheque, dtype=np.int64)

    def pick(self, out: np.ndarray) -> np.ndarray:
        """A supplier where money goes out, else a customer (big ones more often)."""
        p = self.parties
        cust = self.rng.choice(p.customers, len(out), p=p.p_customer)
        supp = self.rng.choice(p.suppliers, len(out), p=p.p_supplier)
        return np.where(out, supp, cust)

    def pick_foreign(self, out: np.ndarray) -> np.ndarray:
        """A party that invoices in USD, GBP or CNY (any party if there is none)."""
        p = self.parties
        pools = []
        for pool in (p.customers, p.suppliers):
            foreign = pool[p.cur[pool] != 0]
            pools.append(foreign if len(foreign) else pool)
        return np.where(out, self.rng.choice(pools[1], len(out)),
                        self.rng.choice(pools[0], len(out)))

    def amounts(self, cur: np.ndarray, median: float = 900.0, sigma: float = 1.1) -> np.ndarray:
        """Invoice-like amounts in cents: log-normal, some whole units."""
        n = len(cur)
        eur = np.clip(self.rng.lognormal(np.log(median), sigma, n), 5.0, 250_000.0)
        cents = np.rint(eur * _CUR_SCALE[cur] * 100).astype(np.int64)
        whole = self.rng.random(n) < 0.2
        out: np.ndarray = np.where(whole, np.maximum(cents // 100, 1) * 100, cents)
        return out

    def choice(self, options: Sequence[int] | np.ndarray, n: int, p: Sequence[float] | None = None
               ) -> np.ndarray:
        return self.rng.choice(np.asarray(options), n, p=p)

    def month_bidx(self, n: int, last: int = 0) -> np.ndarray:
        """Business-day indexes in the month, leaving `last` business days after them."""
        return self.rng.integers(M0, M1 - last, n)

    def names(self, pid: np.ndarray, variant: np.ndarray | int) -> pl.Series:
        return self.parties.names.gather(pid * N_VARIANTS + variant)

    def frame(self, case: str, n: int, **given: Any) -> pl.DataFrame:
        """`n` rows of `case` in the common layout; draw every column not `given`."""
        r, g = self.rng, dict(given)
        out = np.asarray(g.pop("out", np.zeros(n, dtype=bool)), dtype=bool)
        pid = np.asarray(g.pop("pid", None) if "pid" in g else self.pick(out))
        cur = np.asarray(g.pop("cur", self.parties.cur[pid]), dtype=np.int8)
        bcur = np.asarray(g.pop("bcur", cur), dtype=np.int8)
        lcents = np.asarray(g.pop("lcents", None) if "lcents" in g else self.amounts(cur))
        bidx = np.asarray(g.pop("bidx", None) if "bidx" in g else self.month_bidx(n))
        vshift = self.choice((0, 1, -1), n, p=(0.85, 0.1, 0.05))
        bday = BDAYS[bidx]
        lday = np.asarray(g.pop("lday", bday - np.asarray(g.pop("lag", 0))))
        refmode = np.broadcast_to(np.asarray(g.pop("refmode", REF_EXACT)), n)
        variant = np.broadcast_to(np.asarray(g.pop("nv", 0)), n)
        cols: dict[str, Any] = {
            "grp": g.pop("grp", None) if "grp" in g else self.groups(n),
            "case": case, "expected": g.pop("expected", "match"),
            "reason": g.pop("reason", None), "out": out,
            "sup": self.parties.kind[pid] == 1, "pid": pid,
            "cur": cur, "bcur": bcur,
            "lcents": lcents, "bcents": g.pop("bcents", lcents), "bday": bday,
            "vday": BDAYS[bidx + vshift], "lday": lday,
            "due_day": lday + r.integers(-25, 11, n),
            "inv": g.pop("inv", None) if "inv" in g else self.invoices(n),
            "refmode": refmode, "rf": r.integers(0, len(_FREE_REF), n),
            "btmpl": self.choice((0, 1, 2), n, p=(0.6, 0.25, 0.15)),
            "ltmpl": r.integers(0, 4, n),
            "e2e": self.hard & np.isin(refmode, (REF_IN_DESC, REF_FREE, REF_NONE))
            & (r.random(n) < 0.3),  # SEPA end-to-end id the payer did not fill in
            "bname": self.names(pid, variant), "lname": self.names(pid, 0),
            "iban": self.parties.iban.gather(pid), "cid": self.parties.cid.gather(pid),
            "sstyle": self.parties.sstyle[pid],
        }
        if g:
            raise TypeError(f"unknown frame columns: {sorted(g)}")
        frame = pl.DataFrame({k: _column(v, n) for k, v in cols.items()})
        return _conform(frame)

    def emit(self, frame: pl.DataFrame, *, bank: bool = True, ledger: bool = True) -> None:
        if bank:
            self.bank.append(_conform(frame))
        if ledger:
            self.ledger.append(_conform(frame))


def _column(value: Any, n: int) -> Any:
    if isinstance(value, pl.Series | np.ndarray):
        return value
    return pl.repeat(value, n, eager=True, dtype=pl.String if value is None else None)


def _conform(frame: pl.DataFrame) -> pl.DataFrame:
    """Every case's rows in one schema (missing override columns are null)."""
    return frame.select(
        (pl.col(k) if k in frame.columns else pl.lit(None)).cast(t).alias(k)
        for k, t in _FRAME_SCHEMA.items())


# --- the cases ------------------------------------------------------------------------
def _exact(g: Generator, n: int) -> None:
    """Same amount, reference in the reference field, same or next-day booking."""
    g.emit(g.frame("exact", n, out=g.rng.random(n) < 0.3, nv=g.choice((0, 1), n),
                   lag=g.choice((0, 1), n, p=(0.7, 0.3))))


def _date_lag(g: Generator, n: int) -> None:
    """Ledger and bank dates 1-3 days apart; card payments booked days after purchase."""
    r = g.rng
    pos = r.random(n) < 0.2
    out = pos | (r.random(n) < 0.25)
    lag = r.integers(1, 4, n) * np.where(pos | (r.random(n) < 0.7), 1, -1)
    pid = g.pick(out)
    f = g.frame("date_lag", n, out=out, pid=pid, nv=g.choice((0, 1), n), lag=lag,
                cur=np.where(pos, 0, g.parties.cur[pid]))
    purchase = (pl.col("lday") + _EPOCH).cast(pl.Date).dt.strftime("%d.%m.")
    terminal = pl.Series(r.integers(10_000_000, 99_999_999, n)).cast(pl.String)
    small = pl.Series(np.rint(r.lognormal(np.log(45), 0.8, n) * 100).astype(np.int64))
    is_pos = pl.Series(pos)
    f = f.with_columns(
        lcents=pl.when(is_pos).then(small).otherwise("lcents"),
        bcents=pl.when(is_pos).then(small).otherwise("bcents"),
        bword=pl.when(is_pos).then(pl.concat_str([pl.lit("POS"), terminal], separator=" ")),
        remit=pl.when(is_pos).then(purchase),
        bref=pl.when(is_pos).then(pl.lit("")),  # "" beats the default; written empty
        lref=pl.when(is_pos).then(pl.lit("")),
        ldesc=pl.when(is_pos).then(pl.lit("Kartenzahlung ") + pl.col("lname")),
        doc=pl.when(is_pos).then(pl.lit("card")),
        trntype=pl.when(is_pos).then(pl.lit("POS")))
    g.emit(f)


def _name_variant(g: Generator, n: int) -> None:
    """Counterparty upper-cased, truncated or without legal form; mostly no reference."""
    g.emit(g.frame("name_variant", n, out=g.rng.random(n) < 0.2, nv=g.choice((2, 3, 4), n),
                   refmode=g.choice((REF_NONE, REF_IN_DESC), n, p=(0.7, 0.3)),
                   lag=g.choice((0, 1), n, p=(0.8, 0.2))))


def _ref_in_description(g: Generator, n: int) -> None:
    """Reference field empty; the invoice number only in the description."""
    g.emit(g.frame("ref_in_description", n, out=g.rng.random(n) < 0.2,
                   nv=g.choice((0, 1, 2), n), refmode=REF_IN_DESC,
                   lag=g.choice((0, 1), n, p=(0.7, 0.3))))


def _ref_free_text(g: Generator, n: int) -> None:
    """Invoice number written any way in free text: INV202600123, inv 2026/00123, ..."""
    g.emit(g.frame("ref_free_text", n, nv=g.choice(EASY_VARIANTS, n), refmode=REF_FREE,
                   lag=g.choice((0, 1, 2), n, p=(0.5, 0.3, 0.2))))


def _name_variant_intl(g: Generator, n: int) -> None:
    """Transliterated, full-width, re-ordered Chinese, initials; mostly no reference."""
    g.emit(g.frame("name_variant_intl", n, out=g.rng.random(n) < 0.1,
                   nv=g.choice((5, 6, 7, 8), n),
                   refmode=g.choice((REF_NONE, REF_FREE), n, p=(0.7, 0.3)),
                   lag=g.choice((0, 1, 2), n, p=(0.6, 0.3, 0.1))))


def _hard_variants(g: Generator, n: int) -> np.ndarray:
    return g.choice(range(N_VARIANTS), n, p=(0.2, 0.3, 0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.05))


def _within(k: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For groups of sizes k: row -> group index, position in group, group start rows."""
    rep = np.repeat(np.arange(len(k)), k)
    starts = np.concatenate([[0], np.cumsum(k)[:-1]])
    return rep, np.arange(len(rep)) - starts[rep], starts


def _split(g: Generator, total: np.ndarray, k: np.ndarray, equal: bool) -> np.ndarray:
    """Split each total into k parts (cents) that add up exactly."""
    rep, _, starts = _within(k)
    weight = np.ones(len(rep)) if equal else g.rng.random(len(rep)) + 0.3
    share = weight / np.add.reduceat(weight, starts)[rep]
    parts: np.ndarray = np.floor(total[rep] * share).astype(np.int64)
    parts[starts] += total - np.add.reduceat(parts, starts)
    return parts


def _one_to_many(g: Generator, n: int) -> None:
    """One bank line pays 2-5 invoices of one customer, listed (or not) in the text."""
    k = g.choice((2, 3, 4, 5), n, p=(0.45, 0.3, 0.15, 0.1))
    rep, _, _ = _within(k)
    pid = g.pick(np.zeros(n, dtype=bool))
    rf = g.choice(range(len(_FREE_REF)), n)
    fl = g.frame("one_to_many", len(rep), grp=g.groups(n)[rep], pid=pid[rep],
                 bidx=g.month_bidx(n)[rep], lag=g.choice((0, 1), n)[rep], refmode=REF_FREE)
    fl = fl.with_columns(rf=pl.Series(rf[rep]).cast(pl.Int8))
    listed = pl.Series(g.rng.random(n) < 0.8)
    summary = g.choice(range(3), n)
    fb = fl.group_by("grp", maintain_order=True).agg(
        pl.exclude("lcents", "bcents").first(), pl.col("lcents").sum(), pl.col("bcents").sum(),
        _free_ref().str.join(", ").alias("_refs"), pl.len().cast(pl.String).alias("_k"))
    fb = fb.with_columns(
        nv_name=g.names(pid, _hard_variants(g, n)),
        remit=pl.when(listed).then("_refs").otherwise(pl.concat_str([
            pl.Series(np.array(["SAMMELZAHLUNG", "PAYMENT", "REGLEMENT"])[summary]),
            pl.col("_k"),
            pl.Series(np.array(["RECHNUNGEN", "INVOICES", "FACTURES"])[summary])],
            separator=" ")))
    g.emit(fb.with_columns(bname="nv_name"), ledger=False)
    g.emit(fl, bank=False)


def _batch_deposit(g: Generator, n: int) -> None:
    """One bank deposit = 3-12 cheques of different customers booked one by one."""
    k = g.rng.integers(3, 13, n)
    rep, _, _ = _within(k)
    m = len(rep)
    slip = pl.Series(g.rng.integers(1, 9999, n)[rep]).cast(pl.String).str.zfill(4)
    fl = g.frame("batch_deposit", m, grp=g.groups(n)[rep], cur=np.zeros(m, dtype=np.int8),
                 lcents=g.amounts(np.zeros(m, dtype=np.int8), median=600, sigma=0.9),
                 bidx=g.month_bidx(n)[rep], lag=g.rng.integers(0, 3, m), refmode=REF_NO_TEXT)
    with_slip = pl.Series(g.rng.random(n)[rep] < 0.7)
    fl = fl.with_columns(
        lref=pl.when(with_slip).then(pl.lit("DEP-2026-") + slip),
        ldesc=pl.concat_str([pl.lit("Cheque received"), pl.col("lname"), _inv_ref()],
                            separator=" "),
        doc=pl.lit("deposit"), _slip=slip, _tpl=pl.Series(g.choice(range(3), n)[rep]))
    fb = fl.group_by("grp", maintain_order=True).agg(
        pl.exclude("lcents", "bcents").first(), pl.col("lcents").sum(), pl.col("bcents").sum(),
        pl.len().cast(pl.String).alias("_k"))
    word = pl.col("_tpl").replace_strict(
        {0: "EINZAHLUNG SCHECKS BELEG", 1: "REMISE DE CHEQUES N", 2: "BATCH DEPOSIT SLIP"},
        return_dtype=pl.String)
    fb = fb.with_columns(
        bname=pl.lit(None, pl.String), bword=pl.concat_str([word, pl.col("_slip")],
                                                            separator=" "),
        remit=pl.col("_k") + pl.col("_tpl").replace_strict(
            {0: " STK", 1: " CHQ", 2: " ITEMS"}, return_dtype=pl.String),
        trntype=pl.lit("DEP"))
    g.emit(fb, ledger=False)
    g.emit(fl, bank=False)


def _instalment(g: Generator, n: int) -> None:
    """One invoice paid in 2-4 weekly instalments (many bank lines, one ledger line)."""
    k = g.choice((2, 3, 4), n, p=(0.4, 0.4, 0.2))
    _many_to_one(g, "instalment", k, spacing=5, equal=True)


def _split_payment(g: Generator, n: int) -> None:
    """One invoice paid by 2-3 transfers on the same day (e.g. from two accounts)."""
    _many_to_one(g, "split_payment", g.choice((2, 3), n, p=(0.8, 0.2)), spacing=0,
                 equal=False)


def _many_to_one(g: Generator, case: str, k: np.ndarray, spacing: int, equal: bool) -> None:
    n = len(k)
    rep, pos, _ = _within(k)
    start = g.rng.integers(M0, M1 - spacing * (k - 1))
    fl = g.frame(case, n, out=np.zeros(n, dtype=bool), bidx=start + spacing * (k - 1),
                 refmode=REF_FREE)
    total = g.amounts(fl["cur"].to_numpy(), median=2500)
    pid, inv = fl["pid"].to_numpy(), fl["inv"].to_numpy()
    fb = g.frame(case, len(rep), grp=fl["grp"].to_numpy()[rep], pid=pid[rep], inv=inv[rep],
                 bidx=start[rep] + spacing * pos, lcents=_split(g, total, k, equal),
                 nv=_hard_variants(g, len(rep)), refmode=g.choice(
                     (REF_EXACT, REF_FREE), n)[rep], lag=0)
    if spacing:  # "RATE 2/3", "INSTALMENT 2 OF 3", ...
        style = pl.Series(g.choice(range(4), n)[rep])
        fb = fb.with_columns(bpre=pl.concat_str([
            style.replace_strict({0: "RATE ", 1: "INSTALMENT ", 2: "ACOMPTE ", 3: "TERMIJN "},
                                 return_dtype=pl.String),
            pl.Series(pos + 1).cast(pl.String),
            style.replace_strict({1: " OF "}, default="/", return_dtype=pl.String),
            pl.Series(k[rep]).cast(pl.String)]))
    g.emit(fb, ledger=False)
    g.emit(fl.with_columns(lcents=pl.Series(total), bcents=pl.Series(total),
                           lsuf=pl.lit("(") + pl.Series(k).cast(pl.String) + pl.lit("x)")),
           bank=False)


def _fee_netted(g: Generator, n: int) -> None:
    """The bank deducted a fee of 0.50-25.00: bank = ledger - fee."""
    r = g.rng
    fee = r.integers(50, 2501, n)
    out = r.random(n) < 0.2
    f = g.frame("fee_netted", n, out=out, nv=_hard_variants(g, n),
                refmode=g.choice((REF_EXACT, REF_FREE), n), lag=g.choice((0, 1, 2), n))
    lcents = np.maximum(f["lcents"].to_numpy(), fee * 4)
    bcents = np.where(out, lcents + fee, lcents - fee)  # signed: bank = ledger - fee
    g.emit(f.with_columns(
        lcents=pl.Series(lcents), bcents=pl.Series(bcents),
        bsuf=pl.when(pl.Series(r.random(n) < 0.5)).then(pl.lit("CHARGES SHA"))))


def _fx(g: Generator, n: int) -> None:
    """USD/GBP/CNY invoice paid through the EUR account at the day's rate +-2%."""
    r = g.rng
    out = r.random(n) < 0.2
    pid = g.pick_foreign(out)
    cur = g.parties.cur[pid]
    f = g.frame("fx", n, out=out, pid=pid, bcur=np.zeros(n, dtype=np.int8),
                nv=_hard_variants(g, n), refmode=g.choice((REF_EXACT, REF_FREE), n),
                lag=g.choice((0, 1, 2), n))
    rate = np.round(_EUR_PER_UNIT[cur] * (1 + r.uniform(-0.02, 0.02, n)), 4)
    bcents = np.rint(f["lcents"].to_numpy() * rate).astype(np.int64)
    words = np.where(out, np.array(["SWIFT-UEBERWEISUNG", "FX PAYMENT"])[r.integers(0, 2, n)],
                     np.array(["SWIFT-GUTSCHRIFT", "FX CREDIT"])[r.integers(0, 2, n)])
    detail = pl.concat_str([pl.lit("ORIG"), _currency("cur"), _money(pl.col("lcents")),
                            pl.lit("KURS"), _decimal(pl.Series(np.rint(rate * 10_000)), 4)],
                           separator=" ")
    g.emit(f.with_columns(bcents=pl.Series(bcents), bword=pl.Series(words),
                          bsuf=pl.when(pl.Series(r.random(n) < 0.5)).then(detail)))


def _short_payment(g: Generator, n: int) -> None:
    """Customer pays less: 2%/3% cash discount (Skonto) or a disputed deduction."""
    r = g.rng
    f = g.frame("short_payment", n, nv=_hard_variants(g, n),
                refmode=g.choice((REF_EXACT, REF_FREE), n), lag=g.choice((0, 1, 2), n))
    lcents = np.maximum(f["lcents"].to_numpy(), 2000)
    skonto = r.random(n) < 0.5
    pct = g.choice((2, 3), n)
    cut = np.where(skonto, lcents * pct / 100, lcents * r.uniform(0.01, 0.15, n))
    note = pl.concat_str([pl.lit("ABZGL."), pl.Series(pct).cast(pl.String) + "%",
                          pl.lit("SKONTO")], separator=" ")
    g.emit(f.with_columns(
        lcents=pl.Series(lcents),
        bcents=pl.Series(lcents - np.maximum(np.rint(cut), 1).astype(np.int64)),
        bsuf=pl.when(pl.Series(skonto & (r.random(n) < 0.6))).then(note)))


def _over_payment(g: Generator, n: int) -> None:
    """Customer pays more: a few cents to 5% more, or a round 10/50/100 extra."""
    r = g.rng
    f = g.frame("over_payment", n, nv=_hard_variants(g, n),
                refmode=g.choice((REF_EXACT, REF_FREE), n), lag=g.choice((0, 1, 2), n))
    lcents = f["lcents"].to_numpy()
    extra = np.where(r.random(n) < 0.6,
                     r.integers(1, np.maximum(2, lcents // 20)),
                     g.choice((1000, 5000, 10000), n))
    g.emit(f.with_columns(bcents=pl.Series(lcents + extra)))


def _reversal(g: Generator, n: int) -> None:
    """A payment and its exact opposite on both sides: returned transfer / direct debit."""
    r = g.rng
    out = r.random(n) < 0.5
    bidx = g.month_bidx(n, last=5)
    first = g.frame("reversal", n, out=out, bidx=bidx, nv=g.choice((0, 1, 2), n),
                    refmode=g.choice((REF_EXACT, REF_IN_DESC), n), lag=g.choice((0, 1), n))
    euro, returned = pl.col("bcur") == 0, pl.Series(out)  # returned: our transfer came back
    collected = pl.when(euro).then(pl.lit("SEPA-LASTSCHRIFT EINZUG")).otherwise(
        pl.lit("DIRECT DEBIT COLLECTION"))  # we collected the customer's payment by debit
    g.emit(first.with_columns(bword=pl.when(~returned).then(collected)))
    back = g.frame("reversal", n, out=~out, pid=first["pid"].to_numpy(),
                   lcents=first["lcents"].to_numpy(), inv=first["inv"].to_numpy(),
                   bidx=bidx + r.integers(1, 5, n), nv=g.choice((0, 1, 2), n),
                   refmode=first["refmode"].to_numpy())
    word = {(True, True): "SEPA-RUECKUEBERWEISUNG", (True, False): "RETURNED PAYMENT",
            (False, True): "RUECKLASTSCHRIFT", (False, False): "RETURNED DIRECT DEBIT"}
    why = {(True, True): "AC04 KONTO ERLOSCHEN", (True, False): "ACCOUNT CLOSED",
           (False, True): "MD06 WIDERSPRUCH", (False, False): "REFER TO PAYER"}
    back = back.with_columns(cur=first["cur"], bcur=first["bcur"])
    g.emit(back.with_columns(
        bword=_by_flags(returned, euro, word), bsuf=_by_flags(returned, euro, why),
        ldesc=pl.concat_str([pl.lit("Storno"), _ref()], separator=" "),
        doc=pl.lit("reversal"), due_day=pl.lit(None, pl.Int32)))


def _by_flags(a: pl.Series | pl.Expr, b: pl.Expr, texts: dict[tuple[bool, bool], str]
              ) -> pl.Expr:
    """Text chosen by two boolean conditions."""
    return (pl.when(a & b).then(pl.lit(texts[True, True]))
            .when(a).then(pl.lit(texts[True, False]))
            .when(b).then(pl.lit(texts[False, True]))
            .otherwise(pl.lit(texts[False, False])))


def _bank_error_reversal(g: Generator, n: int) -> None:
    """The bank books a line by mistake and reverses it next day; the ledger has neither.

    The two bank lines offset each other: one match group with no ledger side.
    """
    out = g.rng.random(n) < 0.5
    bidx = g.month_bidx(n, last=1)
    first = g.frame("bank_error_reversal", n, out=out, bidx=bidx, nv=g.choice((0, 1), n),
                    refmode=g.choice((REF_EXACT, REF_NONE), n))
    g.emit(first, ledger=False)
    storno = g.frame("bank_error_reversal", n, grp=first["grp"].to_numpy(), out=~out,
                     pid=first["pid"].to_numpy(), lcents=first["lcents"].to_numpy(),
                     inv=first["inv"].to_numpy(), bidx=bidx + 1,
                     refmode=first["refmode"].to_numpy())
    g.emit(storno.with_columns(cur=first["cur"], bcur=first["bcur"], bname=first["bname"],
                               bword=pl.lit("STORNO")), ledger=False)


def _duplicate_ledger(g: Generator, n: int) -> None:
    """The same item booked twice: the first copy matches, the later one is a duplicate."""
    f = g.frame("duplicate_ledger", n, out=g.rng.random(n) < 0.3, nv=g.choice((0, 1, 2), n),
                refmode=g.choice((REF_EXACT, REF_IN_DESC), n), lag=g.choice((0, 1), n))
    g.emit(f)
    g.emit(f.with_columns(grp=pl.Series(g.groups(n)), expected=pl.lit("exception"),
                          reason=pl.lit("duplicate"),
                          lday=pl.col("lday") + pl.Series(g.rng.integers(1, 5, n))),
           bank=False)


def _decoy(g: Generator, n: int) -> None:
    """2-4 customers pay the same round amount on the same day, without references."""
    sets = max(1, n // 3)
    k = g.rng.integers(2, 5, sets)
    rep, pos, _ = _within(k)
    m = len(rep)
    cust = g.parties.customers
    step = max(1, len(cust) // 4)  # distinct customers within a set
    pid = cust[(g.rng.integers(0, len(cust), sets)[rep] + pos * step) % len(cust)]
    g.emit(g.frame("decoy", m, pid=pid, cur=np.zeros(m, dtype=np.int8),
                   lcents=g.choice(_ROUND_AMOUNTS, sets)[rep], bidx=g.month_bidx(sets)[rep],
                   lag=g.choice((0, 1), m, p=(0.7, 0.3)), nv=g.choice((0, 1, 3, 4, 5, 8), m),
                   refmode=g.choice((REF_NONE, REF_FREE), m, p=(0.7, 0.3))))


def _cheques(g: Generator, frame: pl.DataFrame, number: np.ndarray) -> pl.DataFrame:
    """Cheque texts on both sides: numbers, no remittance, doc_type cheque."""
    padded = pl.Series(number).cast(pl.String).str.zfill(6)
    style = pl.Series(g.choice(range(3), len(number)))
    word = pl.concat_str([style.replace_strict({0: "SCHECK NR.", 1: "CHQ", 2: "CHEQUE"},
                                               return_dtype=pl.String),
                          pl.when(style == 2).then(pl.Series(number).cast(pl.String))
                          .otherwise(padded)], separator=" ")
    return frame.with_columns(
        bname=pl.when(pl.Series(g.rng.random(len(number)) < 0.3)).then("bname"),
        bword=word, refmode=pl.lit(REF_NO_TEXT), bref=padded, checknum=padded,
        trntype=pl.lit("CHECK"), lref=padded, doc=pl.lit("cheque"),
        ldesc=pl.concat_str([pl.lit("Cheque"), padded, pl.col("lname")], separator=" "),
        due_day=pl.lit(None, pl.Int32))


def _cheque_clearing(g: Generator, n: int) -> None:
    """A cheque we wrote clears 2-10 days after it was booked; cheque number on both."""
    lag = g.rng.integers(2, 11, n)
    f = g.frame("cheque_clearing", n, out=np.ones(n, dtype=bool), lag=lag)
    number = g.cheques(n)[np.argsort(np.argsort(f["lday"].to_numpy(), kind="stable"))]
    g.emit(_cheques(g, f.with_columns(vday="bday"), number))


def _outstanding_cheque(g: Generator, n: int) -> None:
    """A cheque written in the last days of the month that has not cleared yet."""
    f = g.frame("outstanding_cheque", n, out=np.ones(n, dtype=bool),
                lday=g.rng.integers(22, MONTH_DAYS, n), expected="exception",
                reason="no_candidate")
    number = g.cheques(n)[np.argsort(np.argsort(f["lday"].to_numpy(), kind="stable"))]
    g.emit(_cheques(g, f, number), bank=False)


def _deposit_in_transit(g: Generator, n: int) -> None:
    """Receipts booked on the last business days that the bank credits next month."""
    f = g.frame("deposit_in_transit", n, lday=BDAYS[g.rng.integers(M1 - 2, M1, n)],
                expected="exception", reason="no_candidate")
    g.emit(f.with_columns(
        doc=pl.lit("deposit"),
        ldesc=pl.concat_str([pl.lit("Cheque deposit"), pl.col("lname"), _inv_ref()],
                            separator=" ")), bank=False)


def _bank_only(g: Generator, case: str, cur: np.ndarray, out: bool,
               words: Mapping[int, Sequence[str]], trntype: str, cents: np.ndarray,
               bidx: np.ndarray) -> None:
    """Lines only the bank has (no counterparty); `words` per currency code."""
    n = len(cur)
    f = g.frame(case, n, out=np.full(n, out), pid=np.zeros(n, dtype=np.int64), cur=cur,
                lcents=cents, bidx=bidx, refmode=REF_NO_TEXT, expected="exception",
                reason="no_candidate")
    pick = g.rng.integers(0, 1 << 30, n)
    text = [words[c][k % len(words[c])] for c, k in zip(cur.tolist(), pick.tolist(), strict=True)]
    g.emit(f.with_columns(bname=pl.lit(None, pl.String), bword=pl.Series(text, dtype=pl.String),
                          trntype=pl.lit(trntype)), ledger=False)


_FEE_WORDS = {0: ("ENTGELTABSCHLUSS 03/2026", "KONTOFUEHRUNGSGEBUEHR",
                  "ENTGELT AUSLANDSZAHLUNG", "BUCHUNGSPOSTENENTGELT"),
              1: ("SERVICE CHARGE", "WIRE TRANSFER FEE", "ACCOUNT MAINTENANCE FEE"),
              2: ("SERVICE CHARGE", "ACCOUNT FEE MAR", "CHAPS FEE"),
              3: ("手续费", "账户管理费", "SERVICE CHARGE")}
_INTEREST_WORDS = {0: ("HABENZINSEN 01.03.-31.03.2026",), 1: ("INTEREST CREDIT MAR 2026",),
                   2: ("GROSS INTEREST MAR 2026",), 3: ("利息收入 2026-03",)}


def _bank_fee(g: Generator, n: int) -> None:
    """Account and transaction fees charged by the bank (not in the ledger)."""
    monthly = g.rng.random(n) < 0.3
    cents = np.where(monthly, g.rng.integers(500, 6000, n), g.rng.integers(10, 1500, n))
    bidx = np.where(monthly, M1 - 1, g.month_bidx(n))
    cur = g.choice(range(4), n, p=(0.85, 0.07, 0.05, 0.03)).astype(np.int8)
    _bank_only(g, "bank_fee", cur, True, _FEE_WORDS, "SRVCHG", cents, bidx)


def _bank_interest(g: Generator, n: int) -> None:
    """Month-end interest credit on each account (not in the ledger)."""
    cur = np.arange(len(CURRENCIES), dtype=np.int8)
    _bank_only(g, "bank_interest", cur, False, _INTEREST_WORDS, "INT",
               g.rng.integers(1, 25_000, len(cur)), np.full(len(cur), M1 - 1))


def _unknown_receipt(g: Generator, n: int) -> None:
    """Money in that nobody booked: strangers or customers without an invoice."""
    r = g.rng
    pid = np.where(r.random(n) < 0.5, r.choice(g.parties.strangers, n),
                   r.choice(g.parties.customers, n))
    g.emit(g.frame("unknown_receipt", n, pid=pid, nv=g.choice((0, 1, 5), n),
                   refmode=g.choice((REF_NONE, REF_NO_TEXT), n), expected="exception",
                   reason="no_candidate"), ledger=False)


@dataclass(frozen=True)
class Case:
    """A scenario: how many rows it gets in each mode and what the truth expects."""

    name: str
    build: Callable[[Generator, int], None]
    per_unit: float  # bank lines per unit (ledger lines for ledger-only cases)
    easy: float  # share of --rows in easy mode (0: hard mode only)
    hard: float
    expects: str


CASES: tuple[Case, ...] = (
    Case("exact", _exact, 1, 0.45, 0.22, "match one_to_one"),
    Case("date_lag", _date_lag, 1, 0.2, 0.10, "match one_to_one"),
    Case("name_variant", _name_variant, 1, 0.2, 0.06, "match one_to_one"),
    Case("ref_in_description", _ref_in_description, 1, 0.15, 0.06, "match one_to_one"),
    Case("ref_free_text", _ref_free_text, 1, 0, 0.08, "match one_to_one"),
    Case("name_variant_intl", _name_variant_intl, 1, 0, 0.06, "match one_to_one"),
    Case("one_to_many", _one_to_many, 1, 0, 0.05, "match one_to_many"),
    Case("batch_deposit", _batch_deposit, 1, 0, 0.02, "match one_to_many"),
    Case("instalment", _instalment, 2.8, 0, 0.04, "match many_to_one"),
    Case("split_payment", _split_payment, 2.2, 0, 0.02, "match many_to_one"),
    Case("fee_netted", _fee_netted, 1, 0, 0.04, "match one_to_one (fee)"),
    Case("fx", _fx, 1, 0, 0.03, "match one_to_one (fx)"),
    Case("short_payment", _short_payment, 1, 0, 0.03, "match one_to_one (short_payment)"),
    Case("over_payment", _over_payment, 1, 0, 0.02, "match one_to_one (over_payment)"),
    Case("reversal", _reversal, 2, 0, 0.02, "match one_to_one, twice"),
    Case("bank_error_reversal", _bank_error_reversal, 2, 0, 0.01,
         "match: the two bank lines net to zero, no ledger side"),
    Case("duplicate_ledger", _duplicate_ledger, 1, 0, 0.02,
         "match one_to_one + exception duplicate"),
    Case("decoy", _decoy, 1, 0, 0.04, "match one_to_one"),
    Case("cheque_clearing", _cheque_clearing, 1, 0, 0.04, "match one_to_one"),
    Case("bank_fee", _bank_fee, 1, 0, 0.02, "exception no_candidate"),
    Case("bank_interest", _bank_interest, 1, 0, 0.0, "exception no_candidate"),
    Case("unknown_receipt", _unknown_receipt, 1, 0, 0.02, "exception no_candidate"),
    Case("outstanding_cheque", _outstanding_cheque, 1, 0, 0.02, "exception no_candidate"),
    Case("deposit_in_transit", _deposit_in_transit, 1, 0, 0.01, "exception no_candidate"),
)
HARD_CASES = tuple(c.name for c in CASES)
EASY_CASES = tuple(c.name for c in CASES if c.easy)


# --- row text (vectorised) ------------------------------------------------------------
def _money(cents: pl.Expr | pl.Series) -> pl.Expr:
    """Exact decimal text with 2 places from integer cents: -1234.05."""
    return _decimal(cents, 2)


def _decimal(units: pl.Expr | pl.Series, places: int) -> pl.Expr:
    c = units if isinstance(units, pl.Expr) else pl.lit(units)
    c = c.cast(pl.Int64)
    a = c.abs()
    return pl.concat_str([pl.when(c < 0).then(pl.lit("-")).otherwise(pl.lit("")),
                          (a // 10**places).cast(pl.String), pl.lit("."),
                          (a % 10**places).cast(pl.String).str.zfill(places)])


def _currency(col: str, names: Sequence[str] = CURRENCIES) -> pl.Expr:
    """Currency code (or per-currency text such as the account) from the int code."""
    return pl.col(col).replace_strict(dict(enumerate(names)), return_dtype=pl.String)


def _inv_ref() -> pl.Expr:
    return pl.lit("INV-2026-") + pl.col("inv").cast(pl.String).str.zfill(5)


def _ref() -> pl.Expr:
    """The document number as the ledger has it: our invoice or the supplier's."""
    style = pl.col("sstyle")
    prefix = style.replace_strict({i: p for i, (p, _) in enumerate(_SREF_STYLES)},
                                  return_dtype=pl.String)
    width = style.replace_strict({i: w for i, (_, w) in enumerate(_SREF_STYLES)},
                                 return_dtype=pl.Int64)
    supplier = prefix + pl.col("inv").cast(pl.String).str.zfill(width)
    return pl.when(pl.col("sup")).then(supplier).otherwise(_inv_ref())


def _free_ref() -> pl.Expr:
    """The invoice number in the free-text format `rf` (all normalise to the same)."""
    inv = pl.col("inv").cast(pl.String)
    prefix = pl.col("rf").replace_strict(dict(enumerate(_FREE_REF)), return_dtype=pl.String)
    return prefix + pl.when(pl.col("rf") == _FREE_UNPADDED).then(inv).otherwise(inv.str.zfill(5))


def _default_remit(ref: pl.Expr) -> pl.Expr:
    mode = pl.col("refmode")
    prefix = (pl.col("rf") % len(_REF_PREFIX)).replace_strict(
        dict(enumerate(_REF_PREFIX)), return_dtype=pl.String)
    generic = (pl.col("rf") % len(_GENERIC)).replace_strict(
        dict(enumerate(_GENERIC)), return_dtype=pl.String)
    return (pl.when(mode == REF_EXACT).then(ref)
            .when(mode == REF_IN_DESC).then(prefix + ref)
            .when((mode == REF_FREE) & ~pl.col("sup")).then(_free_ref())
            .when(mode == REF_FREE).then(ref)
            .when(mode == REF_NONE).then(generic))


def _bank_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """The bank file's columns (plus OFX fields) for every bank row, sorted by date."""
    tmpl = pl.col("bcur").cast(pl.Int32) * 6 + pl.col("out").cast(pl.Int32) * 3 + pl.col("btmpl")
    word = pl.coalesce("bword", tmpl.replace_strict(dict(enumerate(_BANK_WORDS)),
                                                    return_dtype=pl.String))
    rows = rows.with_columns(_ref=_ref())  # computed once, used three times
    rows = rows.with_columns(_remit=pl.coalesce("remit", _default_remit(pl.col("_ref"))))
    desc = pl.concat_str([word, "bname", "bpre", "_remit", "bsuf"], separator=" ",
                         ignore_nulls=True)
    debit = pl.when(pl.col("btmpl") == 1).then(pl.lit("DIRECTDEBIT")).otherwise(pl.lit("DEBIT"))
    cents = pl.when("out").then(-pl.col("bcents")).otherwise("bcents")
    return rows.select(
        "grp", "case", "expected", "reason", "bday", date=_day("bday"), amount=_money(cents),
        currency=_currency("bcur"), counterparty="bname",
        reference=pl.coalesce("bref", pl.when(pl.col("refmode") == REF_EXACT).then("_ref")
                              .when("e2e").then(pl.lit("NOTPROVIDED"))),
        description=pl.when(pl.col("bcur").is_in([1, 2])).then(_upper(desc)).otherwise(desc),
        account=_currency("bcur", [BANK_ACCOUNTS[c] for c in CURRENCIES]),
        value_date=_day("vday"),
        iban=pl.when(pl.col("bword").is_null() & (pl.col("bcur") == 0)).then("iban"),
        trntype=pl.coalesce("trntype", pl.when("out").then(debit).otherwise(pl.lit("CREDIT"))),
        checknum="checknum", amount_cents=cents,
    )


def _ledger_rows(rows: pl.DataFrame) -> pl.DataFrame:
    """The ledger file's columns for every ledger row."""
    word = (pl.col("out").cast(pl.Int32) * 4 + pl.col("ltmpl")).replace_strict(
        dict(enumerate(_LEDGER_WORDS)), return_dtype=pl.String)
    rows = rows.with_columns(_lref=pl.coalesce("lref", _ref()))
    return rows.select(
        "grp", "case", "expected", "reason", "lday", date=_day("lday"),
        amount=_money(pl.when("out").then(-pl.col("lcents")).otherwise("lcents")),
        currency=_currency("cur"), counterparty="lname", reference="_lref",
        description=pl.coalesce("ldesc", pl.concat_str(
            [word, "_lref", "lsuf"], separator=" ", ignore_nulls=True)),
        account=_currency("bcur", [GL_ACCOUNTS[c] for c in CURRENCIES]),
        due_date=_day("due_day"),
        doc_type=pl.coalesce("doc", pl.when("out").then(pl.lit("payment"))
                             .otherwise(pl.lit("receipt"))),
        customer_id="cid",
    )


def _day(col: str) -> pl.Expr:
    return (pl.col(col) + _EPOCH).cast(pl.Date)


def _with_ids(rows: pl.DataFrame, day: str, prefix: str, rng: np.random.Generator
              ) -> pl.DataFrame:
    """Sort by date (random order within a day) and number the rows."""
    order = pl.DataFrame({"day": rows[day], "key": rng.permutation(rows.height)})
    rows = rows[order.with_row_index("i").sort("day", "key")["i"]]
    return rows.with_columns(
        id=pl.lit(prefix) + pl.int_range(1, rows.height + 1).cast(pl.String).str.zfill(7))


def _ids_by_group(rows: pl.DataFrame, name: str) -> pl.DataFrame:
    """grp, case, expected, reason and the group's ids joined by ';' (in id order)."""
    meta = ("grp", "case", "expected", "reason")
    unique = pl.col("grp").is_unique()  # most groups are one row: no string join needed
    single = rows.filter(unique).select(*meta, pl.col("id").alias(name))
    multi = rows.filter(~unique).group_by("grp").agg(  # keeps id order inside a group
        pl.col("case", "expected", "reason").first(), pl.col("id").str.join(";").alias(name))
    return pl.concat([single, multi.select(*meta, name)])


def _truth(bank: pl.DataFrame, ledger: pl.DataFrame) -> pl.DataFrame:
    """One row per group: group numbers are dense, so place rows by number (no join)."""
    size = max(int(bank["grp"].max()), int(ledger["grp"].max())) + 1  # type: ignore[arg-type]
    sides = [_ids_by_group(bank, "left_ids"), _ids_by_group(ledger, "right_ids")]
    placed = []
    for side in sides:
        empty = {c: pl.repeat(None, size, dtype=side[c].dtype, eager=True) for c in side.columns}
        placed.append(pl.DataFrame(
            {c: empty[c].scatter(side["grp"], side[c]) for c in side.columns if c != "grp"}))
    left, right = placed
    truth = pl.DataFrame({
        "case": left["case"].fill_null(right["case"]),
        "left_ids": left["left_ids"], "right_ids": right["right_ids"],
        "expected": left["expected"].fill_null(right["expected"]),
        "reason": left["reason"].fill_null(right["reason"])})
    return truth.filter(pl.col("case").is_not_null())


def _units(case: Case, rows: int, hard: bool) -> int:
    share = case.hard if hard else case.easy
    if not share and not (hard and case.name == "bank_interest"):
        return 0
    return max(1, round(rows * share / case.per_unit))


def build(seed: int, rows: int, mode: str) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame,
                                                     pl.DataFrame]:
    """Generate (bank.csv frame, ledger.csv frame, truth frame, bank rows with OFX fields)."""
    g = Generator(seed, rows, mode)
    for case in CASES:
        n = _units(case, rows, g.hard)
        if n:
            case.build(g, n)
    bank = _with_ids(_bank_rows(pl.concat(g.bank)), "bday", "B", g.rng)
    ledger = _with_ids(_ledger_rows(pl.concat(g.ledger)), "lday", "L", g.rng)
    bank_csv = bank.select(BANK_COLUMNS)
    ledger_csv = ledger.select(LEDGER_COLUMNS)
    ofx_rows = bank.select(*BANK_COLUMNS, "trntype", "checknum", "amount_cents")
    return bank_csv, ledger_csv, _truth(bank, ledger), ofx_rows


# --- OFX ------------------------------------------------------------------------------
def _xml(expr: pl.Expr) -> pl.Expr:
    return (expr.str.replace_all("&", "&amp;", literal=True)
            .str.replace_all("<", "&lt;", literal=True)
            .str.replace_all(">", "&gt;", literal=True))


def _element(tag: str, value: pl.Expr) -> pl.Expr:
    """<TAG>value</TAG>, or null (left out) when the value is empty."""
    return pl.when(value.is_not_null() & (value != "")).then(
        pl.lit(f"<{tag}>") + _xml(value) + pl.lit(f"</{tag}>"))


def _ofx_transactions() -> pl.Expr:
    def ymd(col: str) -> pl.Expr:
        return pl.col(col).cast(pl.String).str.replace_all("-", "", literal=True)

    return pl.concat_str([
        pl.lit("<STMTTRN><TRNTYPE>") + pl.col("trntype") + pl.lit("</TRNTYPE>"),
        pl.lit("<DTPOSTED>") + ymd("date") + pl.lit("</DTPOSTED>"),
        pl.when(pl.col("value_date") != pl.col("date"))  # optional: only when it differs
        .then(pl.lit("<DTAVAIL>") + ymd("value_date") + pl.lit("</DTAVAIL>")),
        pl.lit("<TRNAMT>") + pl.col("amount") + pl.lit("</TRNAMT>"),
        pl.lit("<FITID>") + pl.col("id") + pl.lit("</FITID>"),
        _element("CHECKNUM", pl.col("checknum")), _element("REFNUM", pl.col("reference")),
        _element("NAME", pl.col("counterparty").str.slice(0, 32)),
        _element("MEMO", pl.col("description")), pl.lit("</STMTTRN>")], ignore_nulls=True)


def write_ofx(rows: pl.DataFrame, path: Path, rng: np.random.Generator) -> None:
    """OFX 2.2 XML: one statement per account, closing balance in LEDGERBAL."""
    ok = "<STATUS><CODE>0</CODE><SEVERITY>INFO</SEVERITY></STATUS>"
    text = rows.select("currency", "amount_cents", _txn=_ofx_transactions())
    with path.open("wb") as fh:
        _put(fh, '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n'
                 '<?OFX OFXHEADER="200" VERSION="220" SECURITY="NONE" OLDFILEUID="NONE" '
                 'NEWFILEUID="NONE"?>\n'
                 f"<OFX><SIGNONMSGSRSV1><SONRS>{ok}<DTSERVER>20260401080000</DTSERVER>"
                 "<LANGUAGE>ENG</LANGUAGE></SONRS></SIGNONMSGSRSV1><BANKMSGSRSV1>\n")
        for uid, cur in enumerate(CURRENCIES, 1):
            acct = text.filter(pl.col("currency") == cur)
            if not acct.height:
                continue
            opening = int(rng.integers(1_000_000, 500_000_000))
            closing = pl.select(_money(pl.lit(opening + int(acct["amount_cents"].sum())))).item()
            _put(
                fh, f"<STMTTRNRS><TRNUID>{uid}</TRNUID>{ok}<STMTRS><CURDEF>{cur}</CURDEF>"
                f"<BANKACCTFROM><BANKID>{BANK_ACCOUNTS[cur][:8]}</BANKID>"
                f"<ACCTID>{BANK_ACCOUNTS[cur]}</ACCTID><ACCTTYPE>CHECKING</ACCTTYPE>"
                "</BANKACCTFROM><BANKTRANLIST><DTSTART>20260301</DTSTART>"
                "<DTEND>20260331</DTEND>\n")
            # one transaction per line, written by polars without quoting
            acct.select("_txn").write_csv(fh, include_header=False, quote_style="never")
            _put(fh, f"</BANKTRANLIST><LEDGERBAL><BALAMT>{closing}</BALAMT>"
                     "<DTASOF>20260331</DTASOF></LEDGERBAL></STMTRS></STMTTRNRS>\n")
        _put(fh, "</BANKMSGSRSV1></OFX>\n")


def _put(fh: BinaryIO, text: str) -> None:
    fh.write(text.encode("utf-8"))


def _blank_to_null(frame: pl.DataFrame) -> pl.DataFrame:
    """Empty text is written as an empty cell (polars would write "")."""
    text = [c for c, t in frame.schema.items() if t == pl.String]
    return frame.with_columns(pl.when(pl.col(c) != "").then(pl.col(c)).alias(c) for c in text)


# --- entry points ---------------------------------------------------------------------
def generate(out_dir: Path, *, seed: int, rows: int, mode: str, ofx: bool = False
             ) -> dict[str, Path]:
    """Write bank.csv, ledger.csv, truth.csv (and bank.ofx) into `out_dir`; return paths."""
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    bank, ledger, truth, ofx_rows = build(seed, rows, mode)
    paths = {"bank": out_dir / "bank.csv", "ledger": out_dir / "ledger.csv",
             "truth": out_dir / "truth.csv"}
    for frame, key in ((bank, "bank"), (ledger, "ledger"), (truth, "truth")):
        _blank_to_null(frame).write_csv(paths[key])
    if ofx:
        paths["ofx"] = out_dir / "bank.ofx"
        write_ofx(ofx_rows, paths["ofx"], np.random.default_rng([seed, 1]))
    return paths


def _count_lines(path: Path) -> int:
    with path.open("rb") as fh:
        return sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--rows", type=int, default=300, help="approximate bank lines")
    parser.add_argument("--mode", choices=("easy", "hard"), default="hard")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--ofx", action="store_true", help="also write bank.ofx")
    args = parser.parse_args(argv)
    if args.rows < 1:
        parser.error(f"--rows must be at least 1, got {args.rows}")
    started = time.perf_counter()
    paths = generate(args.out, seed=args.seed, rows=args.rows, mode=args.mode, ofx=args.ofx)
    elapsed = time.perf_counter() - started
    counts = {k: _count_lines(p) - 1 for k, p in paths.items() if p.suffix == ".csv"}
    print(f"{args.mode} seed={args.seed}: {counts['bank']} bank, {counts['ledger']} ledger, "
          f"{counts['truth']} truth rows in {elapsed:.2f}s -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
