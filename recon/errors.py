"""Exceptions recon raises for problems the user can fix.

::

    ReconError            base; the CLI prints str(e) and exits 2
      RulesError          bad YAML rules (collects every problem)
      InputFileError      bad statement / ledger file (path, line, field)
      SchemaError         loader output misses a canonical column
      DecisionsError      bad `recon apply` file (collects every problem)
    LockedError           another process holds the database; exit 3

Anything else is a bug: the CLI shows the traceback and exits 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class ReconError(Exception):
    """A problem in the user's input; the CLI prints it and exits 2."""

    exit_code = 2


class RulesError(ReconError):
    """Every problem found in one rules file, reported together."""

    def __init__(self, path: str | Path, problems: Iterable[str]) -> None:
        self.path = str(path)
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{self.path}: {n} problem{'s' if n != 1 else ''}"
        super().__init__("\n  ".join([head, *self.problems]))


class InputFileError(ReconError):
    """A bad input file: says which file, where, what was found and expected."""

    def __init__(
        self,
        path: str | Path,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = str(path)
        self.line = line
        self.field = field
        self.message = message
        self.hint = hint
        where = self.path
        if line is not None:
            where += f" line {line}"
        if field is not None:
            where += f" ({field})"
        text = f"{where}: {message}"
        if hint:
            text += f"\n  hint: {hint}"
        super().__init__(text)

    @classmethod
    def not_a_file(cls, path: str | Path, hint: str | None = None) -> InputFileError:
        """The error for an input path that is missing, or is a directory."""
        found = "is a directory, expected a file" if Path(path).is_dir() else "no such file"
        return cls(path, found, hint=hint)


class SchemaError(ReconError):
    """A loader produced a frame without the canonical columns."""


class DecisionsError(ReconError):
    """Every problem found in one decisions file, reported together."""

    def __init__(self, path: str | Path, problems: Iterable[str]) -> None:
        self.path = str(path)
        self.problems = list(problems)
        n = len(self.problems)
        head = f"{self.path}: {n} problem{'s' if n != 1 else ''}; nothing was applied"
        super().__init__("\n  ".join([head, *self.problems]))


class LockedError(ReconError):
    """Another recon process holds the database."""

    exit_code = 3
