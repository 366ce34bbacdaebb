"""Fuzzing the loaders: every mutated real file gives a correct load or a ReconError,
never another exception and never a hang.

Seeds are the shared corpus and the test fixtures; hypothesis mutates them (bit
flips, cut, repeated and spliced ranges, tokens that parsers trip on).  The time
budget is RECON_FUZZ_SECONDS (default 20) shared by the formats.  With atheris
installed, a short coverage-guided run (RECON_ATHERIS_SECONDS, default 6) runs too;
``python tests/test_fuzz.py --atheris [libFuzzer args]`` runs it by hand.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus"
FIXTURES = ROOT / "tests" / "fixtures"
DATA_SUFFIXES = {".csv", ".xlsx", ".ofx", ".qfx", ".sta", ".942", ".940", ".bai2", ".bai",
                 ".n43", ".xml", ".txt", ".mt940", ".053", ".zip", ".aeb43", ".csb"}
BUDGET = float(os.environ.get("RECON_FUZZ_SECONDS", "20"))
ATHERIS_BUDGET = int(os.environ.get("RECON_ATHERIS_SECONDS", "6"))
PER_FILE_SECONDS = 10  # a load slower than this counts as a hang
MAX_SEED_BYTES = 256 * 1024
TOKENS = [b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"-", b"--", b"+", b"9" * 40, b"1e308",
          b"NaN", b"-0", b"0,00", b"1.234,56", b"2026-02-30", b"31.02.2026", b"99999999",
          b"\r", b"\n", b"\r\n", b",", b";", b"\t", b'"', b'""', b"<", b">", b"</", b"&",
          b"&amp;", b"&#0;", b"]]>", b"<![CDATA[", b":61:", b":20:", b":60F:", b":86:",
          b"<STMTTRN>", b"<TRNAMT>", b"</BANKTRANLIST>", b"<Ntry>", b"<Amt Ccy=\"EUR\">",
          b"01,", b"16,", b"49,", b"88,", b"/", b"\xc3\x28", b"\x80", b"\xe4\xb8", b"PK\x03\x04"]


def _seeds() -> list[Path]:
    roots = [CORPUS, FIXTURES]
    found = []
    for root in roots:
        if not root.is_dir():
            continue
        for p in sorted(root.rglob("*")):
            if (p.is_file() and p.suffix.lower() in DATA_SUFFIXES and "hostile" not in p.parts
                    and p.name != "MANIFEST.csv"
                    and p.stat().st_size <= MAX_SEED_BYTES):
                found.append(p)
    return found


SEEDS = _seeds()


def _group(p: Path) -> str:
    return p.parent.name if CORPUS in p.parents else p.suffix.lower()


GROUPS = sorted({_group(p) for p in SEEDS})


# --- mutations -----------------------------------------------------------------------
class Example:
    """A mutated seed; its repr names the seed and the mutations, not the bytes."""

    __slots__ = ("data", "seed", "steps")

    def __init__(self, seed: Path, data: bytes, steps: tuple[str, ...]) -> None:
        self.seed, self.data, self.steps = seed, data, steps

    def __repr__(self) -> str:
        return f"Example({self.seed.name}, {list(self.steps)}, {len(self.data)} bytes)"


@st.composite
def mutated(draw: st.DrawFn, group: str) -> Example:
    seed = draw(st.sampled_from([p for p in SEEDS if _group(p) == group]))
    data = bytearray(seed.read_bytes())
    steps: list[str] = []
    for _ in range(draw(st.integers(1, 4))):
        n = len(data)
        at = draw(st.integers(0, max(n - 1, 0)))
        op = draw(st.sampled_from(["flip", "token", "cut", "delete", "repeat", "splice"]))
        if op == "flip" and n:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "token":
            token = draw(st.sampled_from(TOKENS))
            width = draw(st.integers(0, 8))
            data[at:at + width] = token
        elif op == "cut":
            del data[at:]
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif op == "repeat":
            piece = bytes(data[at:at + draw(st.integers(1, 200))])
            data[at:at] = piece * draw(st.integers(1, 50))
        else:  # a line of another seed file
            other = draw(st.sampled_from(SEEDS)).read_bytes().splitlines(keepends=True)
            if other:
                data[at:at] = draw(st.sampled_from(other))
        steps.append(f"{op}@{at}")
    return Example(seed, bytes(data), tuple(steps))


class _BudgetSpent(Exception):
    """Ends hypothesis's generation when the time budget is spent."""


class Hang(Exception):
    """A loader ran longer than PER_FILE_SECONDS."""


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def _raise(signum: int, frame: object) -> None:
        raise Hang(f"no answer after {seconds} s")

    old = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check_load(path: Path) -> str:
    """Load `path`; return 'ok' or 'refused'; raise AssertionError for anything else."""
    from recon.errors import ReconError
    from recon.loaders import CANONICAL_SCHEMA, LoadResult, load_file

    try:
        with _time_limit(PER_FILE_SECONDS):
            result = load_file(path)
    except ReconError as exc:
        assert str(exc).strip(), "a ReconError without a message"
        return "refused"
    assert isinstance(result, LoadResult)
    frame = result.frame
    assert frame.columns == list(CANONICAL_SCHEMA), frame.columns
    assert dict(frame.schema) == dict(CANONICAL_SCHEMA), frame.schema
    for col in ("id", "date", "amount", "currency"):
        assert frame[col].null_count() == 0, f"null {col} in a successful load"
    return "ok"


def _example_file(tmp: Path, seed: Path, data: bytes) -> Path:
    path = tmp / seed.name
    path.write_bytes(data)
    return path


#: failures already routed to a loader's owner: (group, text in the failure) -> reason.
#: The test turns into an xfail while only these occur; anything else fails it.
KNOWN: dict[tuple[str, str], str] = {}


def _failure(seed: Path, data: bytes, steps: list[str], exc: BaseException) -> str:
    keep = Path(tempfile.gettempdir()) / "recon-fuzz-failures"
    keep.mkdir(exist_ok=True)
    saved = keep / f"{seed.stem}-{hashlib.sha256(data).hexdigest()[:10]}{seed.suffix}"
    saved.write_bytes(data)
    where = traceback.extract_tb(exc.__traceback__)[-1]
    return (f"{type(exc).__module__}.{type(exc).__name__}: {exc} at "
            f"{Path(where.filename).name}:{where.lineno} ({seed.name} mutated by {steps}, "
            f"saved as {saved})")


@pytest.mark.skipif(not SEEDS, reason="no seed files (shared corpus and fixtures missing)")
@pytest.mark.parametrize("group", GROUPS)
def test_mutated_files_load_or_are_refused(group: str) -> None:
    deadline = time.monotonic() + BUDGET / max(len(GROUPS), 1)
    tally = {"ok": 0, "refused": 0}
    failures: dict[str, str] = {}  # one example per kind of failure

    @settings(max_examples=2000, deadline=None, database=None,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    @given(mutated(group))
    def run(example: Example) -> None:
        if time.monotonic() > deadline:
            raise _BudgetSpent
        seed, data, steps = example.seed, example.data, list(example.steps)
        with tempfile.TemporaryDirectory() as tmp:
            path = _example_file(Path(tmp), seed, data)
            try:
                tally[check_load(path)] += 1
            except Exception as exc:  # every other exception is a finding
                text = _failure(seed, data, steps, exc)
                kind = f"{type(exc).__name__} {text.split(' at ')[-1].split(' (')[0]}"
                failures.setdefault(kind, text)

    with contextlib.suppress(_BudgetSpent):
        run()
    assert tally["ok"] + tally["refused"] + len(failures) > 0
    unknown = [t for t in failures.values()
               if not any(g == group and k in t for (g, k) in KNOWN)]
    assert not unknown, f"{group}: loaders failed on mutated files:\n" + "\n".join(unknown)
    if failures:
        pytest.xfail("; ".join(sorted({r for (g, k), r in KNOWN.items()
                                        if g == group and any(k in t for t in failures.values())})))


# --- atheris (optional, coverage-guided) ----------------------------------------------
#: failures already routed (see KNOWN; the workbook one is also in test_hostile.py)
ATHERIS_KNOWN = ("zlib.error", "does not support .dat file format")

def _atheris_main(argv: list[str]) -> None:  # pragma: no cover - runs in a subprocess
    import atheris

    with atheris.instrument_imports(include=["recon"]):
        from recon.errors import ReconError
        from recon.loaders import load_file

    tmpdir = Path(tempfile.mkdtemp(prefix="recon-atheris-"))

    def one(data: bytes) -> None:
        path = tmpdir / "input.dat"
        path.write_bytes(data)
        try:
            load_file(path)
        except ReconError:
            pass
        except Exception as exc:
            if not any(k in f"{type(exc).__module__}.{type(exc).__name__}: {exc}"
                       for k in ATHERIS_KNOWN):
                raise

    atheris.Setup(argv, one)
    atheris.Fuzz()


def test_atheris_short_run(tmp_path) -> None:
    pytest.importorskip("atheris")
    if not SEEDS:
        pytest.skip("no seed files")
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for i, seed in enumerate(SEEDS):
        (corpus / f"{i:04d}{seed.suffix}").write_bytes(seed.read_bytes())
    proc = subprocess.run(
        [sys.executable, __file__, "--atheris", f"-max_total_time={ATHERIS_BUDGET}",
         "-timeout=20", "-rss_limit_mb=3000", f"-artifact_prefix={tmp_path}/", str(corpus)],
        cwd=ROOT, capture_output=True, text=True, timeout=ATHERIS_BUDGET + 120,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    crashes = sorted(tmp_path.glob("crash-*")) + sorted(tmp_path.glob("timeout-*"))
    assert proc.returncode == 0 and not crashes, (
        f"atheris found {crashes}:\n{proc.stderr[-4000:]}")


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:2] == ["--atheris"]:
        _atheris_main([sys.argv[0], *sys.argv[2:]])
