"""Stage-by-stage progress of a run: a live display on a terminal, log lines in cron.

A run reports each stage twice: when it starts (``start``) and when it is
done (``done``, with its duration and what it did: rows loaded, matches
made).  :class:`LogProgress` writes one log line per finished stage, which is
what a nightly job's log wants; :class:`LiveProgress` shows the stage being
worked on with a spinner and its elapsed time, and keeps a line per finished
stage.  Both are callables ``(message, seconds)`` as well, so code that only
reports finished stages works with either.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Protocol

log = logging.getLogger("recon")


class Progress(Protocol):
    """What a run reports to."""

    def __call__(self, message: str, seconds: float) -> None: ...


def start(progress: Any, stage: str) -> None:
    """Tell `progress` that `stage` begins, if it wants to know; remember it for
    messages about a failure (:func:`current_stage`)."""
    global _current
    _current = stage
    begin = getattr(progress, "start", None)
    if begin is not None:
        begin(stage)


_current = ""


def current_stage() -> str:
    """The stage the last :func:`start` began ('' before any)."""
    return _current


class LogProgress:
    """One log line per finished stage, with its duration (and JSON fields)."""

    def start(self, stage: str) -> None:
        log.debug("%s ...", stage)

    def __call__(self, message: str, seconds: float) -> None:
        log.info(
            "%s (%.2f s)",
            message,
            seconds,
            extra={"extra_fields": {"stage": message, "seconds": round(seconds, 3)}},
        )

    def close(self) -> None:
        """Nothing to tidy up."""


class LiveProgress:
    """A rich display: a spinner and elapsed time on the current stage, a tick per done one."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import Progress as Bar
        from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

        self._bar = Bar(
            SpinnerColumn(finished_text="[green]✓"),
            TextColumn("{task.description}"),
            TimeElapsedColumn(),
            console=Console(stderr=True),
            transient=False,
        )
        self._bar.start()
        self._task: Any = None

    def start(self, stage: str) -> None:
        self._finish(None)
        self._task = self._bar.add_task(stage, total=1)

    def __call__(self, message: str, seconds: float) -> None:
        self._finish(f"{message} [dim]({seconds:.2f} s)[/dim]")

    def _finish(self, text: str | None) -> None:
        if self._task is None:
            if text is not None:
                self._bar.console.print(f"[green]✓[/green] {text}")
            return
        if text is not None:
            self._bar.update(self._task, description=text)
        self._bar.update(self._task, completed=1)
        self._bar.stop_task(self._task)
        self._task = None

    def close(self) -> None:
        self._finish(None)
        self._bar.stop()


def for_terminal(log_format: str, quiet: bool) -> LogProgress | LiveProgress:
    """A live display when stderr is a terminal and logs are text; log lines otherwise."""
    if not quiet and log_format == "text" and sys.stderr.isatty():
        return LiveProgress()
    return LogProgress()
