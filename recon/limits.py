"""Size limits on input files, checked before a loader reads them.

A file that breaks a limit is refused with InputFileError (exit 2) naming the
limit and how to raise it, so a hostile or broken file costs neither memory
nor time.  Each limit can be changed by an environment variable::

    RECON_MAX_FILE_BYTES      size of one input file            (default 512 MiB)
    RECON_MAX_LINE_BYTES      one physical line of a text file  (default 256 KiB)
    RECON_MAX_COLUMNS         fields in one CSV line            (default 1000)
    RECON_MAX_UNZIPPED_BYTES  all members of an XLSX/ZIP        (default 1 GiB)
    RECON_MAX_ZIP_RATIO       one member's unzipped/zipped size (default 200)

XML (CAMT, OFX 2) may not declare entities or fetch a DTD: ``<!ENTITY``,
``SYSTEM`` or ``PUBLIC`` inside a ``<!DOCTYPE`` is refused (billion laughs,
external entities); the loaders' parsers refuse them as well.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from recon.errors import InputFileError, ReconError

MiB = 1 << 20
CHUNK = 4 * MiB
#: formats read line by line (OFX 1 and XML may legitimately sit on one line)
LINE_FORMATS = frozenset({"csv", "mt940", "bai2", "csb43"})
ZIP_MAGIC = b"PK\x03\x04"
XML_HEAD = 64 * 1024
_DOCTYPE = re.compile(rb"<!DOCTYPE\b(.*?)(?:\]\s*>|>)", re.S | re.I)
_DANGER = re.compile(rb"<!ENTITY|\bSYSTEM\b|\bPUBLIC\b", re.I)
DELIMITERS = b",;\t|"


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits in force (see the module docstring for their variables)."""

    max_file_bytes: int = 512 * MiB
    max_line_bytes: int = 256 * 1024
    max_columns: int = 1000
    max_unzipped_bytes: int = 1024 * MiB
    max_zip_ratio: int = 200
    max_zip_members: int = 10_000


ENV = {
    "max_file_bytes": "RECON_MAX_FILE_BYTES",
    "max_line_bytes": "RECON_MAX_LINE_BYTES",
    "max_columns": "RECON_MAX_COLUMNS",
    "max_unzipped_bytes": "RECON_MAX_UNZIPPED_BYTES",
    "max_zip_ratio": "RECON_MAX_ZIP_RATIO",
}


def current() -> Limits:
    """The default limits, with the environment's overrides."""
    values: dict[str, int] = {}
    for name, var in ENV.items():
        text = os.environ.get(var, "").strip().replace("_", "")
        if not text:
            continue
        if not text.isdigit() or int(text) <= 0:
            raise ReconError(f"${var}: expected a positive whole number, got {text!r}")
        values[name] = int(text)
    return Limits(**values)


def _human(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", MiB), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def check_file(path: Path, format: str | None = None, limits: Limits | None = None) -> None:
    """Refuse `path` (InputFileError) when it breaks a limit for its `format`."""
    lim = limits or current()
    size = path.stat().st_size
    if size > lim.max_file_bytes:
        raise InputFileError(
            path, f"file is {_human(size)}, larger than the limit of "
            f"{_human(lim.max_file_bytes)}",
            hint=f"split the file, or raise ${ENV['max_file_bytes']} if it is genuine")
    with path.open("rb") as fh:
        head = fh.read(XML_HEAD)
    if head.startswith(ZIP_MAGIC):
        check_zip(path, lim)
        return
    if format in LINE_FORMATS:
        check_columns(path, head, lim)
        check_lines(path, lim)
    check_xml_head(path, head)  # any text file: XML hides in UTF-16 and behind odd names


def check_zip(path: Path, lim: Limits) -> None:
    """Refuse archives (XLSX is one) that unpack to far more than they weigh."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputFileError(path, f"damaged ZIP/XLSX archive: {exc}") from exc
    if len(members) > lim.max_zip_members:
        raise InputFileError(path, f"archive holds {len(members)} files, more than the limit "
                             f"of {lim.max_zip_members}")
    total = sum(m.file_size for m in members)
    if total > lim.max_unzipped_bytes:
        raise InputFileError(
            path, f"archive unpacks to {_human(total)}, more than the limit of "
            f"{_human(lim.max_unzipped_bytes)} (a zip bomb?)",
            hint=f"raise ${ENV['max_unzipped_bytes']} if the file is genuine")
    for m in members:
        ratio = m.file_size / max(m.compress_size, 1)
        if m.file_size > MiB and ratio > lim.max_zip_ratio:
            raise InputFileError(
                path, f"archive member {m.filename!r} unpacks {ratio:.0f} times its packed "
                f"size ({_human(m.file_size)}), more than the limit of {lim.max_zip_ratio} "
                "(a zip bomb?)", hint=f"raise ${ENV['max_zip_ratio']} if the file is genuine")


def check_lines(path: Path, lim: Limits) -> None:
    """Refuse a text file with a physical line longer than the limit (streamed, 4 MiB chunks)."""
    line_no, run = 1, 0
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(CHUNK), b""):
            arr = np.frombuffer(chunk, dtype=np.uint8)
            # the line ends among the few bytes up to CR: two passes over the chunk, not five
            low = np.flatnonzero(arr <= 13)
            kind = arr[low]
            breaks = low[(kind == 10) | (kind == 13)]
            starts = np.concatenate(([-1], breaks))
            ends = np.concatenate((breaks, [len(chunk)]))
            lengths = ends - starts - 1
            lengths[0] += run
            longest = int(np.argmax(lengths))
            if lengths[longest] > lim.max_line_bytes:
                where = line_no + int(np.count_nonzero(arr[: starts[longest] + 1] == 10))
                raise InputFileError(
                    path, f"a line is longer than {_human(lim.max_line_bytes)}",
                    line=where,
                    hint=f"not a statement export? raise ${ENV['max_line_bytes']} if genuine")
            line_no += int(np.count_nonzero(kind == 10))
            run = int(lengths[-1])


def check_columns(path: Path, head: bytes, lim: Limits) -> None:
    """Refuse a CSV whose first lines have more fields than the limit."""
    for i, line in enumerate(head.splitlines()[:100], start=1):
        widest = max(line.count(bytes([d])) for d in DELIMITERS) + 1
        if widest > lim.max_columns:
            raise InputFileError(
                path, f"line has at least {widest} fields, more than the limit of "
                f"{lim.max_columns}", line=i,
                hint=f"raise ${ENV['max_columns']} if the file is genuine")


def check_xml_head(path: Path, head: bytes) -> None:
    """Refuse XML whose DOCTYPE declares entities or points at an external DTD."""
    text = head.removeprefix(b"\xef\xbb\xbf")
    if b"\x00" in text[:200]:  # UTF-16 (or 32) XML: look at it as text
        for codec in ("utf-16", "utf-16-le", "utf-16-be", "utf-32"):
            try:
                text = head[: len(head) // 4 * 4].decode(codec).encode("utf-8")
            except UnicodeDecodeError:
                continue
            if b"<" in text[:200]:
                break
    m = _DOCTYPE.search(text)
    if m and _DANGER.search(m.group(0)):
        raise InputFileError(
            path, "XML declares entities or an external DTD in its DOCTYPE; refused "
            "(entity expansion and external fetches are never done)",
            hint="bank statements (CAMT, OFX) need no DOCTYPE: export the file again")
