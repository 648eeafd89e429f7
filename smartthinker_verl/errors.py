"""``SmartThinkerError``: the base of every error the package raises for bad input or configuration.

Each concrete error also derives from the built-in that fits (``ValueError`` for bad values, ``FileNotFoundError``
for missing files, ``RuntimeError`` for an environment that cannot do the job), so callers may catch either. The
``smartthinker-verl`` CLIs print a ``SmartThinkerError`` as one line that names the fix and exit 2; any other
exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class SmartThinkerError(Exception):
    """Bad input, configuration or environment; the message says what was wrong and how to fix it."""


class MissingFileError(SmartThinkerError, FileNotFoundError):
    """A file or folder the user named does not exist; the message names it and what writes it."""


class UsageError(SmartThinkerError, ValueError):
    """A command-line argument or option value that cannot work; the message names it and the fix."""


class DataError(SmartThinkerError, ValueError):
    """A data row or file lacks what training or evaluation needs; the message names the row and the fix."""
