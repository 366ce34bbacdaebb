"""One-off set-up of a process done in a background thread while a run reads its files.

Loading the pinyin tables (0.14 s), the compiled kernels (numba's start-up and the
cached machine code of the group search and the aging's twins, 0.4-0.5 s) and
compiling the report's template (0.1 s) cost the same on a night of a few thousand
lines as on a million: done on the main thread, the kernel and the template were 0.5 s
of a 1% night's 19 s, and the pinyin tables 0.17 s of its storing.  The files are
hashed, parsed and stored by hashlib, polars and DuckDB, which release the GIL, so the
thread runs beside them; whatever it has not finished when the pipeline needs it, the
pipeline waits for (the import lock, numba's compiler lock) and then finds done.
"""

from __future__ import annotations

import gc
import logging
import threading

log = logging.getLogger(__name__)


def start() -> None:
    """Start the warm-up; not a daemon: a run that ends early waits for it rather than
    leave an import half done at the interpreter's exit."""
    threading.Thread(target=_warm, name="recon-warmup").start()


def _warm() -> None:
    # the pinyin tables are some 280,000 Python objects that live to the process's end:
    # loading them set off full collections, each of which, and every later one, walked
    # them all (0.2-0.3 s of a 1M run), and so did the collection at the interpreter's
    # exit (0.3 s). Loaded with the collector off, they are then frozen (gc.freeze): no
    # collection looks at them again.  Once per process (a test session runs many).  A
    # program that runs recon with the collector off (its own policy) finds it off after.
    global _frozen
    freeze = not _frozen
    _frozen = True
    collecting = gc.isenabled()
    if freeze:
        gc.disable()
    try:
        import numpy as np

        # first what storing the first file with Chinese names needs (the pinyin
        # tables, 0.14 s to load), then what the matching and the report need
        import pypinyin  # noqa: F401

        from recon.reports.html import warm_template
        from recon.subsets import exact_subsets

        one = np.array([1, 1], dtype=np.int64)
        exact_subsets(np.array([0, 2], dtype=np.int64), one, one + one, 2)
        # the aging's twin kernel: its signature is explicit, so importing loads it (3 ms
        # once numba is started)
        import recon.greedy  # noqa: F401
        warm_template()
    except Exception:  # pragma: no cover - the run does the same work itself anyway
        log.debug("warm-up failed; the run loads what it needs when it needs it", exc_info=True)
    finally:
        if freeze:
            gc.freeze()
            if collecting:
                gc.enable()


#: whether a warm-up has frozen what it loaded (see _warm)
_frozen = False
