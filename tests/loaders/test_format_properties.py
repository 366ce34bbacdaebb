"""Damaged bank files: every mutation either loads or raises InputFileError.

Each format's fixture is truncated, has bytes flipped, lines deleted or swapped;
the loader must answer with canonical rows or a user error naming the file, never
another exception (which the CLI would show as a crash).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recon.errors import InputFileError
from recon.loaders import SNIFF_BYTES, get_loader, load_file
from recon.loaders.base import CANONICAL_SCHEMA

BANKS = Path(__file__).resolve().parents[1] / "fixtures" / "banks"
FILES = {
    "ofx": [BANKS / "ofx" / "bank_and_card_v1.ofx", BANKS / "ofx" / "fr_v2.qfx"],
    "mt940": [BANKS / "mt940" / "de_sparkasse.sta", BANKS / "mt940" / "nl_ing.sta",
              BANKS / "mt940" / "intraday.942"],
    "camt053": [BANKS / "camt" / "ch_v08_two_days.xml"],
    "bai2": [BANKS / "bai2" / "two_accounts.bai2"],
    "csb43": [BANKS / "n43" / "two_accounts.n43"],
}


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """Truncate, flip a byte, delete / duplicate / swap lines, or insert junk."""
    kind = draw(st.sampled_from(["truncate", "flip", "delete", "duplicate", "swap",
                                 "insert"]))
    if kind == "truncate":
        return data[:draw(st.integers(0, len(data) - 1))]
    if kind == "flip":
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1:]
    lines = data.splitlines(keepends=True)
    i = draw(st.integers(0, len(lines) - 1))
    if kind == "delete":
        del lines[i]
    elif kind == "duplicate":
        lines.insert(i, lines[i])
    elif kind == "swap":
        j = draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    else:
        lines.insert(i, draw(st.binary(min_size=1, max_size=40)) + b"\n")
    return b"".join(lines)


def _check(fmt: str, content: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"damaged{suffix}"
        path.write_bytes(content)
        assert 0 <= get_loader(fmt).sniff(content[:SNIFF_BYTES], path) <= 100
        try:
            result = load_file(path, format=fmt)
        except InputFileError as exc:
            assert str(path) in str(exc)
            return
        assert list(result.frame.columns) == list(CANONICAL_SCHEMA)


@pytest.mark.parametrize("fmt", sorted(FILES))
def test_damaged_files_load_or_raise_input_file_error(fmt: str) -> None:
    @settings(max_examples=50, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def run(data: st.DataObject) -> None:
        source = data.draw(st.sampled_from(FILES[fmt]))
        content = data.draw(mutated(source.read_bytes()))
        _check(fmt, content, source.suffix)

    run()
