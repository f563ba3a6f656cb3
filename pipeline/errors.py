"""The one error type a user can cause, and the errors of each stage built on it.

Every error a user can cause and fix (a bad convo.toml, an unreadable export, a
rate card with a gap, a lock another convo process holds, a warehouse not built
yet) is a :class:`ConvoError` with a one-line message naming the file, line or
setting at fault. The command line catches ConvoError once, at its boundary
(pipeline/cli.py), and prints that line with a non-zero exit code; nothing else
is caught there, so an error of our own (a bug, a malformed SQL model:
``pipeline.models.ModelError``) stays a loud traceback.

Each stage keeps its own subclass where its callers find it today
(``pipeline.config.ConfigError``, ``pipeline.readers.InputError``, ...), and each
also keeps the built-in base it had (ValueError or RuntimeError), so code that
catches those still does. :class:`BuildError` lives here because the reference
data modules (policy, pricing) raise it and pipeline.build imports them: defined
in build.py it could only be imported lazily, an import cycle.
"""

from __future__ import annotations


class ConvoError(Exception):
    """A condition the user can fix; its message is one line, shown as it is."""


class BuildError(ConvoError, RuntimeError):
    """The lake cannot be built into a warehouse (a user-fixable condition)."""


def one_line(exc: BaseException) -> str:
    """An exception's text on one line (Arrow, DuckDB and others add newlines and control bytes)."""
    text = "".join(char if char.isprintable() else " " for char in str(exc))
    return " ".join(text.split()) or type(exc).__name__
