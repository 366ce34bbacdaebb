"""One writer per database: an advisory lock file beside it (``<db>.lock``).

The lock is ``fcntl.flock`` on the lock file, so the kernel releases it when
its process ends, however it ends (SIGKILL, power loss, OOM killer).  The file
also holds JSON naming the holder (pid, host, start time, command), written
after the lock is taken and emptied on a clean release.  A second process is
refused with :class:`~recon.errors.LockedError` (exit 3) naming that holder.
A lock file that still names a holder although nobody holds the flock was
left by a process that died: it is taken over, and the takeover is reported.
A command that created a database and fails removes it with its lock file,
while it holds the flock (:func:`recon.db.session`); a process that opened the
removed file meanwhile opens the path again once it has the flock.

``hold()`` holds the lock for a block and is re-entrant within a process
(``recon run`` inside a wrapper that already holds the lock does not lock
itself out).  :func:`recon.db.connect` takes the lock too and keeps it as long
as the connection object lives; ``check()`` only asks whether another process
holds it.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recon.errors import LockedError, ReconError

log = logging.getLogger("recon")

MAX_COMMAND = 300  # characters of the holder's command line kept in the lock file
#: How long a refused process re-reads a lock file still being written (seconds).
SETTLE_SECONDS = 0.5


@dataclass(slots=True)
class _Held:
    fd: int
    depth: int


#: lock path -> open descriptor holding the flock, for locks this process holds.
_HELD: dict[str, _Held] = {}
_MUTEX = threading.RLock()  # _HELD is shared by the threads of the process


def lock_path(db_path: str | Path) -> Path:
    """The lock file of a database: ``<db>.lock`` beside it."""
    p = Path(db_path)
    return p.with_name(p.name + ".lock")


def _key(db_path: str | Path) -> str:
    return str(lock_path(Path(db_path).absolute()))


def holds(db_path: str | Path) -> bool:
    """True when this process holds the lock of `db_path`."""
    return _key(db_path) in _HELD


def pid_alive(pid: int) -> bool:
    """True when a process with this pid exists on this host."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def read_holder(db_path: str | Path) -> dict[str, Any] | None:
    """The holder recorded in the lock file, or None when it records none."""
    try:
        text = lock_path(db_path).read_text(encoding="utf-8")
    except (FileNotFoundError, PermissionError, UnicodeDecodeError):
        return None
    try:
        data = json.loads(text) if text.strip() else None
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def describe(holder: dict[str, Any] | None) -> str:
    """'pid 123 on host h, started 2026-03-01T02:00:00Z: recon run' (or 'an unknown process')."""
    if not holder:
        return "an unknown process (the lock file names no holder yet)"
    text = (f"pid {holder.get('pid')} on host {holder.get('host')}, "
            f"started {holder.get('started_at')}")
    if holder.get("command"):
        text += f": {holder['command']}"
    return text


def _open(path: Path) -> int:
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as exc:
        raise ReconError(f"{path}: cannot open the lock file: {exc.strerror or exc}") from exc


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
            return False
        raise
    return True


def _flock_settled(fd: int, db_path: str | Path) -> bool:
    """Take the flock; while it is busy and names no holder, retry briefly.

    A busy lock naming nobody is another process between taking the flock and
    writing its record, or a `check()` probing it for an instant.
    """
    deadline = time.monotonic() + SETTLE_SECONDS
    while not _try_flock(fd):
        if read_holder(db_path) is not None or time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _locked(db_path: str | Path) -> int:
    """A descriptor of the lock file holding its flock; LockedError if another process has it.

    The flock must be on the file at the lock's path.  A process that created a
    database and removed it again (a refused command, :func:`recon.db.session`)
    removes the lock file too, while it holds the flock: a process that opened the
    file before it was removed gets the flock of a file no longer there, which would
    lock nobody out, so it opens the path again.
    """
    path = lock_path(db_path)
    while True:
        fd = _open(path)
        if not _flock_settled(fd, db_path):
            os.close(fd)
            raise _refuse(db_path)
        if _is_file_at(fd, path):
            return fd
        os.close(fd)


def _is_file_at(fd: int, path: Path) -> bool:
    """True when the open file `fd` is the file at `path` (not one removed since)."""
    try:
        there = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino)


def _refuse(db_path: str | Path) -> LockedError:
    """The error for a lock held elsewhere; waits briefly for the holder's record."""
    deadline = time.monotonic() + SETTLE_SECONDS
    holder = read_holder(db_path)
    while (holder is None or _dead_here(holder)) and time.monotonic() < deadline:
        time.sleep(0.05)  # the holder took the flock but has not written its record yet
        holder = read_holder(db_path)
    text = f"{db_path}: the database is in use by {describe(holder)}"
    if holder and _dead_here(holder):
        text += " (that pid is gone, but a process it started still holds the lock)"
    return LockedError(text + "; wait for it to finish, or stop it if it is stuck")


def _dead_here(holder: dict[str, Any]) -> bool:
    """The recorded holder ran on this host and is gone."""
    return holder.get("host") == socket.gethostname() and not pid_alive(
        int(holder.get("pid") or 0))


def _record(fd: int, command: str) -> dict[str, Any]:
    holder = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "command": command,
    }
    data = json.dumps(holder).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)
    return holder


def _take_over_note(db_path: str | Path, previous: dict[str, Any] | None) -> None:
    """Report a lock file left behind by a process that died while holding it."""
    if not previous or previous.get("pid") == os.getpid():
        return
    state = "no longer running"
    if previous.get("host") != socket.gethostname():
        state = "on another host; its lock is no longer held"
    elif pid_alive(int(previous.get("pid") or 0)):
        state = "alive but no longer holding the lock"
    log.warning("%s: taking over a stale lock of %s (%s)", db_path, describe(previous), state)


def acquire(db_path: str | Path, command: str | None = None) -> None:
    """Take the lock of `db_path` (re-entrant); raise LockedError if another process has it."""
    key = _key(db_path)
    with _MUTEX:
        if key in _HELD:
            _HELD[key].depth += 1
            return
        command = (command or " ".join(["recon", *sys.argv[1:]]))[:MAX_COMMAND]
        fd = _locked(db_path)
        _take_over_note(db_path, read_holder(db_path))
        _record(fd, command)
        _HELD[key] = _Held(fd, 1)


def release(db_path: str | Path) -> None:
    """Release one level of the lock; the last level empties the record and unlocks."""
    key = _key(db_path)
    with _MUTEX:
        held = _HELD.get(key)
        if held is None:
            return
        held.depth -= 1
        if held.depth > 0:
            return
        del _HELD[key]
        with contextlib.suppress(OSError):
            os.ftruncate(held.fd, 0)  # a clean exit leaves no holder behind
        fcntl.flock(held.fd, fcntl.LOCK_UN)
        os.close(held.fd)


@contextlib.contextmanager
def hold(db_path: str | Path, command: str | None = None) -> Iterator[None]:
    """Hold the database's lock for a block; LockedError (exit 3) if another process has it."""
    acquire(db_path, command)
    try:
        yield
    finally:
        release(db_path)


def check(db_path: str | Path) -> None:
    """Raise LockedError when another process holds the lock of `db_path`."""
    if holds(db_path):
        return
    path = lock_path(db_path)
    if not path.exists():
        return
    fd = _open(path)
    try:
        if not _try_flock(fd):
            raise _refuse(db_path)
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
