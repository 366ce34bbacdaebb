"""Loader registry and format detection.

Loaders are imported lazily (``"module:Class"``) so that a run that reads
only CSV never imports lxml or ofxparse.  Detection asks every loader's
``sniff`` how sure it is, from the file's first bytes and its name.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from recon.errors import InputFileError
from recon.limits import check_file
from recon.loaders.base import CANONICAL_SCHEMA, Loader, LoadResult, StatementInfo

LOADERS: dict[str, str] = {
    "csv": "recon.loaders.csv:CsvLoader",
    "xlsx": "recon.loaders.xlsx:XlsxLoader",
    "parquet": "recon.loaders.parquet:ParquetLoader",
    "ofx": "recon.loaders.ofx:OfxLoader",
    "mt940": "recon.loaders.mt940:Mt940Loader",
    "camt053": "recon.loaders.camt:CamtLoader",
    "bai2": "recon.loaders.bai2:Bai2Loader",
    "csb43": "recon.loaders.csb43:Csb43Loader",
}

SNIFF_BYTES = 64 * 1024

__all__ = [
    "CANONICAL_SCHEMA",
    "LOADERS",
    "LoadResult",
    "Loader",
    "StatementInfo",
    "detect_format",
    "get_loader",
    "load_file",
]


def get_loader(name: str) -> type[Loader]:
    """Return the loader class registered under `name`."""
    module_name, _, cls_name = LOADERS[name].partition(":")
    module = importlib.import_module(module_name)
    cls: type[Loader] = getattr(module, cls_name)
    return cls


def _available() -> dict[str, type[Loader]]:
    out = {}
    for name in LOADERS:
        try:
            out[name] = get_loader(name)
        except ModuleNotFoundError:
            continue  # an optional dependency is missing: that format is unavailable
    return out


def detect_format(path: Path) -> tuple[str, str]:
    """Choose a format for `path` from its content; return (format, reason)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise InputFileError(path, f"cannot read file: {exc.strerror or exc}") from exc
    if not head.strip():
        raise InputFileError(path, "file is empty", hint="export the statement again")
    scores = sorted(
        ((cls.sniff(head, path), name) for name, cls in _available().items()),
        reverse=True,
    )
    best_score, best = scores[0]
    if best_score <= 0:
        raise InputFileError(
            path,
            "cannot tell the file's format from its content",
            hint=f"force one with --format (known: {', '.join(sorted(LOADERS))})",
        )
    return best, f"content looks like {best} (confidence {best_score}/100)"


def load_file(
    path: str | Path, *, format: str | None = None, profile: str | None = None,
    undated_balances: bool = False,
) -> LoadResult:
    """Detect (or take) the format of `path` and load it into canonical rows.

    `undated_balances`: the file is a customer statement, whose balance lines may have
    no date (see recon.loaders.balances); any other row without one is refused.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError.not_a_file(p)
    if format is None:
        format, reason = detect_format(p)
    else:
        if format not in LOADERS:
            raise InputFileError(
                p, f"unknown format {format!r}; known: {', '.join(sorted(LOADERS))}"
            )
        reason = f"format {format} given with --format"
    check_file(p, format)  # size, line length, zip-bomb limits before parsing
    loader = get_loader(format)(undated_balances=undated_balances)
    result = loader.load(p, profile=profile)
    result.notes.insert(0, reason)
    return result
