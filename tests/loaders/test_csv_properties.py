"""Property tests for the CSV loader (hypothesis).

- canonical rows written by Python's csv module load back exactly, lines included;
- amounts written in national formats (1.234,56 / 1,234.56 / 1 234,56) parse back equal;
- any byte-level mutation of a valid file loads correctly or raises InputFileError.
"""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.errors import InputFileError
from recon.loaders import CANONICAL_SCHEMA
from recon.loaders.csv import CsvLoader

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "profiles"
FIELDS = ["id", "date", "amount", "currency", "counterparty", "reference", "description"]
SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

text = st.text(
    alphabet=st.one_of(
        st.characters(whitelist_categories=("L", "N", "P", "S", "Zs")),
        st.sampled_from([",", '"', ";", "\n", " "]),
    ),
    max_size=25,
)
amounts = st.decimals(min_value=-10**12, max_value=10**12, places=4, allow_nan=False)
row = st.fixed_dictionaries({
    "id": st.from_regex(r"[A-Za-z0-9_.-]{1,12}", fullmatch=True),
    "date": st.dates(min_value=date(1970, 1, 1), max_value=date(2099, 12, 31)),
    "amount": amounts,
    "currency": st.sampled_from(["EUR", "USD", "GBP", "CNY", "JPY"]),
    "counterparty": text,
    "reference": text,
    "description": text,
})


def _load(data: bytes, name: str = "x.csv", profile: str | None = None) -> pl.DataFrame:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        if profile is not None:
            (Path(tmp) / "p.yaml").write_text(profile)
            profile = str(Path(tmp) / "p.yaml")
        return CsvLoader().load(path, profile=profile).frame


@SETTINGS
@given(rows=st.lists(row, max_size=25, unique_by=lambda r: r["id"]),
       order=st.permutations(FIELDS))
def test_canonical_rows_round_trip(rows, order):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=order, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    frame = _load(out.getvalue().encode("utf-8"))
    assert frame.height == len(rows)
    line = 2
    for got, want in zip(frame.iter_rows(named=True), rows, strict=True):
        assert got["id"] == want["id"] and got["date"] == want["date"]
        assert got["amount"] == want["amount"] and got["currency"] == want["currency"]
        for name in ("counterparty", "reference", "description"):
            assert got[name] == (want[name].strip() or None)
        assert got["line"] == line
        line += 1 + sum(want[n].count("\n") for n in ("counterparty", "reference",
                                                      "description"))


def _national(value: Decimal, decimal: str, thousands: str, style: str) -> str:
    sign, digits = ("-" if value < 0 else ""), f"{abs(value):.2f}"
    whole, cents = digits.split(".")
    groups = f"{int(whole):,}".replace(",", thousands)
    body = f"{groups}{decimal}{cents}"
    return {"lead": f"{sign}{body}", "trail": f"{body}{sign}",
            "paren": f"({body})" if sign else body}[style]


@SETTINGS
@given(values=st.lists(st.decimals(min_value=-10**11, max_value=10**11, places=2,
                                   allow_nan=False), min_size=1, max_size=20),
       conv=st.sampled_from([(",", "."), (".", ","), (",", " "), (",", "'")]),
       style=st.sampled_from(["lead", "trail", "paren"]))
def test_national_amount_formats_parse_back_equal(values, conv, style):
    decimal, thousands = conv
    lines = ["Datum;Betrag"] + [f'2026-03-01;"{_national(v, decimal, thousands, style)}"'
                                for v in values]
    profile = (f"name: p\ndelimiter: ';'\ndecimal: '{decimal}'\nthousands: \"{thousands}\"\n"
               "columns: {date: Datum, amount: Betrag}\ncurrency: EUR\n")
    frame = _load("\n".join(lines).encode(), profile=profile)
    assert frame["amount"].to_list() == values


BASE = (
    "id,date,amount,currency,counterparty,reference,description\n"
    "b1,2026-03-01,-1234.56,EUR,ACME GmbH,INV-1,\"multi\nline, with comma\"\n"
    "b2,2026-03-02,100,USD,\"Foo \"\"Bar\"\"\",,paid\n"
    "b3,2026-03-03,0.5,GBP,Café,R-3,\n"
).encode()
SEEDS = [
    (BASE, "canonical.csv"),
    ((FIXTURES / "deutsche_bank.csv").read_bytes(), "db.csv"),
    ((FIXTURES / "icbc.csv").read_bytes(), "icbc.csv"),
    ((FIXTURES / "credit_agricole.csv").read_bytes(), "ca.csv"),
    ((FIXTURES / "wells_fargo.csv").read_bytes(), "wf.csv"),
    ((FIXTURES / "alipay.csv").read_bytes(), "alipay.csv"),
]

mutation = st.tuples(
    st.sampled_from(["replace", "insert", "delete"]),
    st.floats(min_value=0, max_value=1, allow_nan=False),
    st.binary(min_size=0, max_size=4) | st.sampled_from(
        [b",", b";", b'"', b"\n", b"\r", b"\xff\xfe", b"\xef\xbb\xbf", b"-", b"9" * 20]),
)


def _mutate(data: bytes, ops: list[tuple[str, float, bytes]]) -> bytes:
    for kind, where, chunk in ops:
        pos = int(where * len(data))
        if kind == "replace":
            data = data[:pos] + chunk + data[pos + len(chunk):]
        elif kind == "insert":
            data = data[:pos] + chunk + data[pos:]
        else:
            data = data[:pos] + data[pos + max(len(chunk), 1):]
    return data


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.sampled_from(SEEDS), ops=st.lists(mutation, min_size=1, max_size=4))
def test_mutated_files_load_or_raise_input_file_error(seed, ops):
    data, name = seed
    try:
        frame = _load(_mutate(data, ops), name)
    except InputFileError as exc:
        assert str(exc).strip()
        return
    assert frame.schema == pl.Schema(CANONICAL_SCHEMA)
    lines = frame["line"].to_list()
    assert lines == sorted(lines) and len(set(lines)) == len(lines)
    assert frame["id"].null_count() == 0 and frame["id"].n_unique() == frame.height
    assert all(isinstance(a, Decimal) for a in frame["amount"].to_list())


def test_a_negative_year_is_a_bad_date_not_a_crash() -> None:
    """Found by the mutation test: "%Y" parses "-024" as the year -24, which no Python
    date holds; the file is refused with the line and field, for any date format."""
    canonical = (b"id,date,amount,currency,counterparty,reference,description\n"
                 b"a1,2026-03-01,10.00,EUR,ACME,R1,x\na2,-024-03-02,5.00,EUR,ACME,R2,y\n")
    try:
        _load(canonical)
    except InputFileError as exc:
        assert exc.line == 3 and "-024-03-02" in str(exc)
    else:
        raise AssertionError("a negative year loaded")
    wells = (b'"03/05/2024","-45.67","*","","PURCHASE"\r\n'
             b'"03/04/-024","-120.00","*","1187","CHECK # 1187"\r\n')
    try:
        _load(wells, name="wf.csv")
    except InputFileError as exc:
        assert "-024" in str(exc)
    else:
        raise AssertionError("a negative year loaded")


def _decodes(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# bytes near UTF-8's edges: lead and continuation bytes, overlong forms (C0, E0 80),
# surrogates (ED A0..BF), code points past U+10FFFF (F4 90, F5..FF), cut sequences
edgy = st.lists(
    st.one_of(
        st.sampled_from([0x00, 0x41, 0x7F, 0x80, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED,
                         0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0xA0, 0x9F, 0x90, 0x8F]),
        st.integers(min_value=0, max_value=255),
    ),
    max_size=40,
).map(bytes)


@settings(max_examples=500, deadline=None)
@given(st.one_of(edgy, st.text(max_size=30).map(lambda s: s.encode("utf-8", "surrogatepass"))))
def test_the_in_place_utf8_check_agrees_with_python(raw: bytes) -> None:
    from recon.loaders.csv import valid_utf8

    assert valid_utf8(raw) == _decodes(raw)


def test_the_in_place_utf8_check_refuses_what_python_refuses() -> None:
    from recon.loaders.csv import valid_utf8

    refused = [b"\xed\xa0\x80", b"\xc0\x80", b"\xe0\x80\x80", b"\xf4\x90\x80\x80",
               b"\xf5\x80\x80\x80", b"\xe2\x82", b"abc\x80", b"\xff"]
    for raw in refused:
        assert not valid_utf8(raw) and not _decodes(raw), raw
    for text in ("", "Müller GmbH", "发票 2026-00123", "€ 1.234,56", "\U0001f4b6"):
        assert valid_utf8(text.encode()), text
