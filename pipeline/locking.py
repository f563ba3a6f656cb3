"""One writer at a time: an advisory lock file beside the data it protects.

The lock is held by the open file (fcntl.flock), so it is released when the
process ends, however it ends: a killed run never leaves a stale lock.

crash_point() is the crash-safety tests' hook (issue 7): with the environment
variable CONVO_CRASH_AT=NAME or NAME:N the process SIGKILLs itself the N-th time
(default the first) it reaches the point NAME, e.g. CONVO_CRASH_AT=build.model:12.
Unset, it does nothing. Points: ingest.merge, ingest.manifest, lake.replace (before
each lake file's rename), build.model (before each SQL model), build.replace,
report.write, report.swap, pull.page.
"""

from __future__ import annotations

import fcntl
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import ConvoError


class Busy(ConvoError, RuntimeError):
    """Another convo process holds the lock."""


@contextmanager
def exclusive(lock_path: Path, what: str, label: str | None = None) -> Iterator[None]:
    """Hold the lock for `what`, or raise Busy naming the holder.

    `label` is written beside the holder's pid when one lock guards different
    kinds of work (the lake: ingests write it, builds read it), so the refused
    one can say what it waits for.
    """
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(lock_path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder, _, holding = handle.read().strip().partition("\n")
            holder = holder or "another process"
            if holding and holding != what:
                raise Busy(f"{what} must wait: {holding} is running ({holder}); "
                           "try again when it has finished") from None
            raise Busy(f"{what} is already running ({holder}); try again when it has finished") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}" + (f"\n{label}" if label else ""))
        handle.flush()
        yield
    finally:
        handle.close()


CRASH_VARIABLE = "CONVO_CRASH_AT"
_reached: dict[str, int] = {}


def crash_point(name: str) -> None:
    """SIGKILL this process here when CONVO_CRASH_AT names this point (tests only)."""
    wanted = os.environ.get(CRASH_VARIABLE)
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    _reached[name] = _reached.get(name, 0) + 1
    if _reached[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
