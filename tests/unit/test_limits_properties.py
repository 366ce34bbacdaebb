"""The line-length limit (recon.limits.check_lines) against a plain reading of the lines.

A line ends at LF, CR or CRLF; a line longer than the limit is refused with the number
of a line that is too long (counted by LF, as the loaders count lines), whatever the
chunks the file is read in.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recon import limits
from recon.errors import InputFileError

pieces = st.lists(
    st.one_of(st.sampled_from([b"\n", b"\r", b"\r\n", b"\t", b"\x0b"]),
              st.binary(min_size=1, max_size=12)),
    max_size=30,
).map(b"".join)


def _too_long_lines(data: bytes, limit: int) -> set[int]:
    """Line numbers (1 + LFs before the line) of the lines longer than `limit`."""
    out = set()
    start = 0
    for end in [m.start() for m in re.finditer(rb"[\r\n]", data)] + [len(data)]:
        if end - start > limit:
            out.add(1 + data.count(b"\n", 0, start))
        start = end + 1
    return out


@settings(max_examples=300, deadline=None)
@given(pieces, st.integers(min_value=1, max_value=20), st.integers(min_value=1, max_value=40))
def test_a_line_over_the_limit_is_found_in_any_chunks(data: bytes, limit: int, chunk: int) -> None:
    expected = _too_long_lines(data, limit)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "f.csv"
        path.write_bytes(data)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(limits, "CHUNK", chunk)
            lim = limits.Limits(max_line_bytes=limit)
            if not expected:
                limits.check_lines(path, lim)
                return
            with pytest.raises(InputFileError) as err:
                limits.check_lines(path, lim)
    assert err.value.line in expected
