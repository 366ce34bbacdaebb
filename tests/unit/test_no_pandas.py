"""A run never imports pandas: pyarrow imports it to ask whether an array it is handed
is a pandas object (pa.array on a numpy array), 0.24 s of every run's first group rule
until the group search built its Arrow arrays over the numpy buffers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ..conftest import ROOT, RULES


def test_a_run_with_group_matches_does_not_import_pandas(tmp_path: Path) -> None:
    demo = ROOT / "sample_data" / "demo"
    code = f"""
import sys
from pathlib import Path
from recon.run import Inputs, run
report = run(Path({str(RULES)!r}),
             Inputs(bank=[Path({str(demo / "bank.csv")!r})],
                    ledger=[Path({str(demo / "ledger.csv")!r})]),
             db_path=Path({str(tmp_path / "r.duckdb")!r}), out_dir=Path({str(tmp_path / "out")!r}),
             as_of=None)
by_rule = report.summary["by_rule"]
assert by_rule["group_one_to_many"] and by_rule["group_many_to_one"], by_rule
assert "pandas" not in sys.modules, "the run imported pandas"
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
