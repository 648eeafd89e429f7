"""The errors for bad input, configuration or environment: each a ``SmartThinkerError`` and the built-in that fits.
The CLIs print one as one line that names the fix and exit 2; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class SmartThinkerError(Exception):
    """Bad input, configuration or environment; the message says what was wrong and how to fix it."""


class ConfigError(SmartThinkerError, ValueError):
    """An option, argument or config value that cannot work; the message names the key and the fix."""


class DataError(SmartThinkerError, ValueError):
    """A data row, record, tensor or file content lacks what the job needs; the message names it and the fix."""


class MissingFileError(SmartThinkerError, FileNotFoundError):
    """A file or folder that must exist does not; the message names it and what writes it."""


class SetupError(SmartThinkerError, RuntimeError):
    """The environment cannot do the job (a package, a backend, a worker pool); the message names the fix."""


class ResumeError(SmartThinkerError, RuntimeError):
    """A run or output folder already holds other work; the message names both ways forward."""
