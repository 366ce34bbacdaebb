"""Hostile and broken inputs: each gives exit 2 with a message naming the file, nothing
loaded (a database the run created is removed), nothing written, within bounded time
and memory.

The inputs go through the real `recon run` (``run_cli``), one after another in a
single helper process (``python tests/test_hostile.py --harness SPEC``) that caps
its address space, samples its resident memory during each case and stops a case
after CASE_SECONDS.  Small attack files live in tests/fixtures/hostile/; the big ones
(zip bombs, a million characters or columns) are made here.

Cases marked ``limits`` need :func:`recon.limits.check_file` wired into
:func:`recon.loaders.load_file`; until it is, they are expected failures and are not
run.  Cases marked ``loader`` are loader bugs routed to the loaders' owners.
"""

from __future__ import annotations

import inspect
import json
import os
import resource
import subprocess
import sys
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ROOT / "tests" / "fixtures" / "hostile"
RULES = ROOT / "rules" / "default.yaml"
CASE_SECONDS = 30
MAX_GROWTH_MB = 1024  # resident memory a case may add to the helper process
HEADER = "id,date,amount,currency,counterparty,reference,description"


def _limits_wired() -> bool:
    from recon import loaders

    return "check_file" in inspect.getsource(loaders.load_file)


WIRED = _limits_wired()


@dataclass
class Case:
    name: str
    make: Any  # (tmp dir) -> path of the hostile bank file
    needs: str = ""  # "limits" or "loader"
    reason: str = ""
    env: dict[str, str] = field(default_factory=dict)
    expect: tuple[str, ...] = ()  # words the message must contain


# --- the hostile files ------------------------------------------------------------------
def fixture(name: str):
    return lambda tmp: HOSTILE / name


def _deep_xml(tmp: Path) -> Path:
    p = tmp / "camt_deep_nesting.xml"
    p.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="urn:iso:std:iso:'
                 '20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>' + "<a>" * 100_000
                 + "</a>" * 100_000 + "</BkToCstmrStmt></Document>\n")
    return p


def _deflate_member(z: zipfile.ZipFile, name: str, head: bytes, unit: bytes, n: int,
                    tail: bytes) -> None:
    """A member of len(head)+n*len(unit)+len(tail) bytes, deflated fast (level 6)."""
    with z.open(name, "w", force_zip64=True) as fh:  # the archive's deflate level
        fh.write(head)
        block = unit * max(1, (4 << 20) // len(unit))
        for _ in range(n * len(unit) // len(block)):
            fh.write(block)
        fh.write(tail)


def _xlsx_bomb(tmp: Path) -> Path:
    """A real workbook whose sheet unpacks to 300 MiB of 1000-character cells."""
    src = zipfile.ZipFile(ROOT / "tests" / "fixtures" / "profiles" / "bbva.xlsx")
    path = tmp / "statement_bomb.xlsx"
    row = b'<row><c t="inlineStr"><is><t>' + b"A" * 1000 + b"</t></is></c></row>"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for info in src.infolist():
            if info.filename == "xl/worksheets/sheet1.xml":
                _deflate_member(
                    z, info.filename, b'<?xml version="1.0" encoding="UTF-8"?><worksheet '
                    b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
                    b"<sheetData>", row, 300_000, b"</sheetData></worksheet>")
            else:
                z.writestr(info, src.read(info.filename))
    return path


def _camt_zip_bomb(tmp: Path) -> Path:
    """A zipped camt.053 whose one statement unpacks to 400 MiB (blank padding)."""
    ok = (HOSTILE / "camt_ok.xml").read_bytes()
    head, tail = ok.split(b"<BkToCstmrStmt>", 1)
    path = tmp / "camt_bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        _deflate_member(z, "statement.xml", head, b" " * 1024, 400 * 1024,
                        b"<BkToCstmrStmt>" + tail)
    return path


def _long_line(tmp: Path) -> Path:
    p = tmp / "long_line.csv"
    p.write_text(f"{HEADER}\nB1,2026-03-02,10.00,EUR,Foo,R1,{'A' * 1_000_000}\n")
    return p


def _million_columns(tmp: Path) -> Path:
    p = tmp / "million_columns.csv"
    extra = ",".join(f"c{i}" for i in range(1_000_000))
    p.write_text(f"{HEADER},{extra}\nB1,2026-03-02,10.00,EUR,Foo,R1,x\n")
    return p


def _mixed_encoding(tmp: Path) -> Path:
    p = tmp / "mixed_encoding.csv"
    p.write_bytes(f"{HEADER}\nB1,2026-03-02,10.00,EUR,Müller GmbH,R1,x\n".encode()
                  + "B2,2026-03-03,11.00,EUR,Müller GmbH,R2,y\n".encode("latin-1"))
    return p


def _invalid_bytes(tmp: Path) -> Path:
    p = tmp / "invalid_bytes.csv"
    p.write_bytes(f"{HEADER}\n".encode() + b"B1,2026-03-02,10.00,EUR,Foo\xff\xfe\x01,R1,x\n")
    return p


def _nul_bytes(tmp: Path) -> Path:
    p = tmp / "nul_bytes.csv"
    p.write_bytes(f"{HEADER}\nB1,2026-03-02,10.00,EUR,Fo\x00o,R1,x\n".encode())
    return p


def _utf16_then_utf8(tmp: Path) -> Path:
    p = tmp / "utf16_then_utf8.csv"
    p.write_bytes(f"{HEADER}\n".encode("utf-16-le") + b"B1,2026-03-02,10.00,EUR,Foo,R1,x\n")
    return p


def _garbage(tmp: Path) -> Path:
    p = tmp / "garbage.csv"
    p.write_bytes(bytes(range(256)) * 64)
    return p


def _big(tmp: Path) -> Path:
    p = tmp / "too_big.csv"
    p.write_text(HEADER + "\n" + "".join(f"B{i},2026-03-02,10.00,EUR,Foo,R{i},x\n"
                                         for i in range(200)))
    return p


def _misnamed_workbook(tmp: Path) -> Path:
    p = tmp / "statement.xls"  # an .xlsx saved under the old extension
    p.write_bytes((ROOT / "tests" / "fixtures" / "profiles" / "bbva.xlsx").read_bytes())
    return p


def test_xlsx_saved_under_xls_name_is_read_not_refused(tmp_path: Path) -> None:
    # not hostile after all: the workbook is read from its bytes, whatever its name
    from recon.loaders import load_file

    assert load_file(_misnamed_workbook(tmp_path)).frame.height > 0


LIMITS = "needs recon.limits.check_file wired into recon.loaders.load_file"
CASES = [
    Case("camt_billion_laughs", fixture("camt_billion_laughs.xml"), expect=("DOCTYPE",)),
    Case("camt_external_entity", fixture("camt_external_entity.xml"), expect=("DOCTYPE",)),
    Case("camt_external_dtd", fixture("camt_external_dtd.xml"), expect=("DOCTYPE",)),
    Case("camt_parameter_entity", fixture("camt_parameter_entity.xml"), expect=("DOCTYPE",)),
    Case("camt_external_entity_utf16", fixture("camt_xxe_utf16.xml")),
    Case("camt_deep_nesting", _deep_xml, expect=("depth",)),
    Case("ofx_entities", fixture("ofx_external_entity.ofx"), "limits", LIMITS,
         expect=("entities",)),
    Case("xlsx_zip_bomb", _xlsx_bomb, "limits", LIMITS, expect=("zip bomb",)),
    Case("camt_zip_bomb", _camt_zip_bomb, "limits", LIMITS, expect=("zip bomb",)),
    Case("csv_line_of_a_million_characters", _long_line, "limits", LIMITS,
         expect=("line is longer",)),
    Case("csv_million_columns", _million_columns, "limits", LIMITS, expect=("fields",)),
    Case("csv_over_the_size_limit", _big, "limits", LIMITS,
         env={"RECON_MAX_FILE_BYTES": "2000"}, expect=("RECON_MAX_FILE_BYTES",)),
    Case("csv_utf16_then_utf8", _utf16_then_utf8, expect=("utf-16",)),
    Case("binary_garbage", _garbage),
    Case("csv_mixed_utf8_and_latin1", _mixed_encoding),
    Case("csv_invalid_bytes", _invalid_bytes),
    Case("csv_nul_bytes", _nul_bytes),
]


def _marks(case: Case) -> list[pytest.MarkDecorator]:
    if case.needs == "limits" and not WIRED:
        return [pytest.mark.xfail(reason=case.reason, run=False)]
    if case.needs == "loader":
        return [pytest.mark.xfail(reason=case.reason, strict=False)]
    return []


# --- running them -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def made(tmp_path_factory) -> dict[str, Path]:
    """Every hostile file, made once: case name -> path."""
    tmp = tmp_path_factory.mktemp("hostile_files")
    out = {}
    for case in CASES:
        (tmp / case.name).mkdir()
        out[case.name] = case.make(tmp / case.name)
    return out


@pytest.fixture(scope="module")
def results(tmp_path_factory, made) -> dict[str, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("hostile")
    ledger = tmp / "ledger.csv"
    ledger.write_text(f"{HEADER}\nL1,2026-03-02,10.00,EUR,Foo,R1,x\n")
    spec = []
    for case in CASES:
        if case.needs == "limits" and not WIRED:
            continue  # not run: the bombs would only cost time
        work = tmp / case.name
        work.mkdir()
        bank = made[case.name]
        spec.append({"name": case.name, "env": case.env, "db": str(work / "r.duckdb"),
                     "out": str(work / "out"),
                     "args": ["run", "--rules", str(RULES), "--bank", str(bank), "--ledger",
                              str(ledger), "--db", str(work / "r.duckdb"),
                              "--out", str(work / "out"), "--as-of", "2026-03-31"],
                     "file": bank.name})
    (tmp / "spec.json").write_text(json.dumps(spec))
    proc = subprocess.run([sys.executable, __file__, "--harness", str(tmp / "spec.json")],
                          cwd=ROOT, capture_output=True, text=True,
                          timeout=60 + CASE_SECONDS * len(spec),
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {r["name"]: r for r in json.loads(proc.stdout)}


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=_marks(c)) for c in CASES])
def test_hostile_input_is_refused_with_nothing_loaded(case: Case, results) -> None:
    r = results[case.name]
    summary = (f"{case.name}: exit {r['code']} in {r['seconds']:.1f}s, +{r['growth_mb']:.0f} MB, "
               f"database files left: {r['db_files']}\n{r['stderr'][-2000:]}")
    assert not r["timed_out"], summary
    assert r["code"] == 2, summary
    assert r["file"] in r["stderr"] and "Traceback" not in r["stderr"], summary
    for word in case.expect:
        assert word.lower() in r["stderr"].lower(), summary
    assert not r["db_files"] and not r["outputs"], summary
    assert r["growth_mb"] < MAX_GROWTH_MB, summary


# --- the limits on their own (fast, no pipeline) -------------------------------------------
@pytest.mark.parametrize("case", [c for c in CASES if c.needs == "limits"], ids=lambda c: c.name)
def test_limits_refuse_the_file(case: Case, made, monkeypatch) -> None:
    from recon.errors import InputFileError
    from recon.limits import check_file

    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    path = made[case.name]
    fmt = {".csv": "csv", ".ofx": "ofx", ".xlsx": "xlsx", ".zip": "camt053"}[path.suffix]
    t0 = time.monotonic()
    with pytest.raises(InputFileError) as err:
        check_file(path, fmt)
    assert time.monotonic() - t0 < 5
    assert path.name in str(err.value)
    for word in case.expect:
        assert word.lower() in str(err.value).lower()


def test_limits_pass_every_genuine_file(corpus) -> None:
    """No false alarms: every file of the corpus and the fixtures passes the limits."""
    from recon.errors import ReconError
    from recon.limits import check_file
    from recon.loaders import detect_format

    checked = 0
    for root in (corpus, ROOT / "tests" / "fixtures", ROOT / "sample_data"):
        for p in sorted(root.rglob("*")):
            if not p.is_file() or "hostile" in p.parts or p.suffix in (".py", ".md", ".yaml",
                                                                      ".json"):
                continue
            try:
                fmt, _ = detect_format(p)
            except ReconError:
                fmt = None
            check_file(p, fmt)
            checked += 1
    assert checked > 100


def test_limits_read_their_overrides(monkeypatch) -> None:
    from recon.errors import ReconError
    from recon.limits import current

    monkeypatch.setenv("RECON_MAX_LINE_BYTES", "1_000")
    assert current().max_line_bytes == 1000
    monkeypatch.setenv("RECON_MAX_COLUMNS", "lots")
    with pytest.raises(ReconError, match="RECON_MAX_COLUMNS"):
        current()


# --- the helper process ---------------------------------------------------------------------
def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _vm_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


class _Sampler(threading.Thread):
    """Peak resident memory while a case runs (sampled every 5 ms)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak, self.stop = _rss_mb(), threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.005):
            self.peak = max(self.peak, _rss_mb())


class _TimedOut(BaseException):
    pass


def _run_case(case: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - helper process
    import contextlib
    import io
    import signal

    from recon.cli import run_cli

    old_env = {k: os.environ.get(k) for k in case["env"]}
    os.environ.update(case["env"])
    err = io.StringIO()
    base = _rss_mb()
    sampler = _Sampler()
    sampler.start()

    def _alarm(signum: int, frame: object) -> None:
        raise _TimedOut

    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    t0, timed_out = time.monotonic(), False
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = run_cli(case["args"])
            except _TimedOut:
                code, timed_out = -1, True
            except BaseException as exc:  # a bug: what main() would show as a traceback
                import traceback

                traceback.print_exc()
                code = 1 if not isinstance(exc, SystemExit) else int(exc.code or 0)
    finally:
        signal.alarm(0)
        sampler.stop.set()
        sampler.join()
        for k, v in old_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    seconds = time.monotonic() - t0
    db = Path(case["db"])
    # the database the refused run created, its .wal and lock file: all removed again
    db_files = sorted(p.name for p in db.parent.iterdir() if p.name.startswith(db.name))
    out = Path(case["out"])
    outputs = sorted(p.name for p in out.iterdir()) if out.exists() else []
    return {"name": case["name"], "code": code, "stderr": err.getvalue(), "seconds": seconds,
            "timed_out": timed_out, "growth_mb": sampler.peak - base, "db_files": db_files,
            "outputs": outputs, "file": case["file"]}


def _harness(spec_path: str) -> None:  # pragma: no cover - helper process
    import recon.run  # noqa: F401  (import before measuring: it is not the case's memory)

    cap = _vm_bytes() + 6 * 2**30  # a runaway case fails with MemoryError, not the machine
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    results = [_run_case(c) for c in json.loads(Path(spec_path).read_text())]
    sys.stdout.write(json.dumps(results))


if __name__ == "__main__":  # pragma: no cover
    if sys.argv[1:2] == ["--harness"]:
        _harness(sys.argv[2])
