"""recon_fmt, the amount text of every CSV output: its 64-bit path (amounts of at most
four decimals below 10^14) writes exactly what rounding in 128-bit decimals writes.
recon_exact, the figure of an explanation, writes what recon.db.amount_text writes."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon.db import CURRENCY_EXPONENTS, _round_text_sql, connect

#: A currency of each exponent (CURRENCY_EXPONENTS): 2 (default), 0, 3.
CURRENCIES = ("EUR", "JPY", "KWD")
#: Types the outputs pass: stored amounts, their sums, other scales, integers, a double.
TYPES = ("decimal(20,4)", "decimal(38,4)", "decimal(18,2)", "decimal(10,3)", "integer")


@pytest.fixture(scope="module")
def con(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    c = connect(Path(tmp_path_factory.mktemp("fmt")) / "f.duckdb")
    yield c
    c.close()


def test_examples(con: duckdb.DuckDBPyConnection) -> None:
    got = con.execute(
        "select recon_fmt(1234.5650::decimal(20,4), 'EUR'), recon_fmt(-0.0050::decimal(20,4), 'EUR'), "
        "recon_fmt(1234.5::decimal(20,4), 'JPY'), recon_fmt(-1.00049::decimal(20,5), 'KWD'), "
        "recon_fmt(0, 'EUR'), recon_fmt(sum(x), 'EUR') from (values (1.005::decimal(20,4))) t(x)"
    ).fetchall()[0]
    assert got == ("1234.57", "-0.01", "1235", "-1.000", "0.00", "1.01")


def test_a_bai2_currency_of_no_decimals_is_written_without(con: duckdb.DuckDBPyConnection,
                                                          tmp_path: Path) -> None:
    # BAI2 read PYG 12345 as 12345 (its own table) and the outputs wrote "12345.00"
    from recon.loaders.bai2 import Bai2Loader

    path = tmp_path / "pyg.bai"
    path.write_text("01,BANK,CUST,260302,0800,1,80,,2/\n02,CUST,BANK,1,260301,,PYG,2/\n"
                    "03,1234567,PYG,,,,/\n16,175,12345,0,R1,,/\n49,12345,3/\n98,12345,1,5/\n"
                    "99,12345,1,7/\n")
    (amount,) = Bai2Loader().load(path).frame["amount"].to_list()
    got = con.execute("select recon_fmt(?::decimal(20,4), 'PYG'), recon_fmt(?, 'XPF')",
                      [amount, Decimal("500")]).fetchall()[0]
    assert (amount, got) == (Decimal("12345"), ("12345", "500"))


@pytest.mark.parametrize("typ", TYPES)
def test_every_four_decimal_amount_of_a_range_as_in_128_bits(
    con: duckdb.DuckDBPyConnection, typ: str
) -> None:
    # every value of four decimals in [-30, 30] (each rounding boundary), and amounts
    # around 10^14, where the 64-bit path gives way to the 128-bit one
    values = f"""
        select (i::decimal(20,4) / 10000)::{typ} as a from range(-300000, 300001) t(i)
        union all select (x::decimal(20,4) + d::decimal(20,4) / 10000)::{typ}
        from (values (99999999999999), (100000000000000), (-99999999999999),
                     (-100000000000000), (999999999999998)) v(x),
             (select unnest([0, 4999, 5000, 5001, 9999]) as d)
        where '{typ}' in ('decimal(20,4)', 'decimal(38,4)')"""
    for cur in CURRENCIES:
        differ = con.execute(
            f"select count(*), count(*) filter (where recon_fmt(a, '{cur}') "
            f"is distinct from recon_fmt128(a, '{cur}')) from ({values})"
        ).fetchall()[0]
        assert differ[0] > 600_000 and differ[1] == 0, (typ, cur, differ)


@settings(max_examples=200, deadline=None)
@given(
    units=st.one_of(st.integers(-10**9, 10**9), st.integers(-(10**20) + 1, 10**20 - 1)),
    cur=st.sampled_from(CURRENCIES),
)
def test_any_stored_amount_as_in_128_bits(
    con: duckdb.DuckDBPyConnection, units: int, cur: str
) -> None:
    amount = Decimal(units).scaleb(-4)  # anything decimal(20,4) holds
    fast, wide = con.execute(
        "select recon_fmt(a, ?), recon_fmt128(a, ?) from (select ?::decimal(20,4) as a)",
        [cur, cur, str(amount)],
    ).fetchall()[0]
    assert fast == wide


def test_other_types_keep_the_128_bit_path(con: duckdb.DuckDBPyConnection) -> None:
    # a double (or more than four decimals) is not cut to four decimals first
    got = con.execute(
        "select recon_fmt(0.00499999::double, 'EUR'), recon_fmt(0.004999::decimal(20,6), 'EUR')"
    ).fetchall()[0]
    assert got == ("0.00", "0.00")


@pytest.mark.parametrize(
    ("kind", "fast"), [("decimal(20,4)", True), ("bigint", True), ("double", False)]
)
def test_the_path_is_chosen_when_the_query_is_planned(
    con: duckdb.DuckDBPyConnection, kind: str, fast: bool
) -> None:
    # typeof is folded to a constant: the plan holds one path and no per-row type test
    # (a table with rows: DuckDB folds more over the statistics of an empty one)
    con.execute(
        f"create or replace temp table typed as select (i / 7)::{kind} as a, "
        "case when i % 2 = 0 then 'EUR' else 'JPY' end as cur from range(100) r(i)"
    )
    plan = con.execute("explain select recon_fmt(a, cur) from typed").fetchall()[0][1]
    assert "typeof" not in plan.lower() and "regexp" not in plan.lower()
    assert ("DECIMAL(18," in plan) is fast
    assert "DECIMAL(20," in plan  # the 128-bit path: amounts of 10^14 or more, or all


def test_a_minor_unit_per_exponent() -> None:
    # both widths have a branch for every exponent recon knows, 2 being the default
    for width in (18, 20):
        sql = _round_text_sql(width)
        for e in set(CURRENCY_EXPONENTS.values()):
            assert f"decimal({width},{e})" in sql


def test_exact_examples(con: duckdb.DuckDBPyConnection) -> None:
    # recon_exact: the minor units, and digits beyond them only where the amount has them
    got = con.execute(
        "select recon_exact(-199.995::decimal(20,4), 'EUR'), recon_exact(500::decimal(20,4), 'EUR'), "
        "recon_exact(0.1::decimal(20,4), 'EUR'), recon_exact(-0.0050::decimal(20,4), 'KWD'), "
        "recon_exact(-500::decimal(20,4), 'JPY'), recon_exact(0.5::decimal(20,4), 'JPY'), "
        "recon_exact(0::decimal(20,4), 'EUR'), recon_exact(12.3456::decimal(21,4), 'XXX')"
    ).fetchall()[0]
    assert got == ("-199.995", "500.00", "0.10", "-0.005", "-500", "0.5", "0.00", "12.3456")


@settings(max_examples=300, deadline=None)
@given(
    units=st.one_of(st.integers(-10**7, 10**7), st.integers(-(10**20) + 1, 10**20 - 1)),
    cur=st.sampled_from(CURRENCIES),
)
def test_exact_writes_what_amount_text_writes(
    con: duckdb.DuckDBPyConnection, units: int, cur: str
) -> None:
    from recon.db import amount_text

    amount = Decimal(units).scaleb(-4)  # anything decimal(20,4) holds
    (sql,) = con.execute(
        "select recon_exact(?::decimal(20,4), ?)", [str(amount), cur]
    ).fetchall()[0]
    assert sql == amount_text(amount, cur)
