"""The one family of errors a user can cause: bad files, configs, arguments, checkpoints, missing extras.

Every such error derives from :class:`VidlabError`. The command line prints it as one line,
``vidlab <command>: error: <message>``, and exits with code 2, whatever the command (``VIDLAB_DEBUG=1`` prints the
traceback as well). Each subclass also derives from the built-in exception it replaces (``ValueError``,
``RuntimeError``, ``ImportError``, ...), so code that catches those keeps working.

Errors that are not listed here (an ``AssertionError``, a ``RuntimeError`` from PyTorch) are bugs or faults of the
machine, and keep their traceback.
"""

from __future__ import annotations


class VidlabError(Exception):
    """Base class of the errors a user can cause and fix; the message says what is wrong and where."""

    exit_code = 2


class InputError(VidlabError, ValueError):
    """An argument, a value in a file or a combination of options that vidlab cannot use."""


class ArgumentTypeError(InputError, TypeError):
    """An argument or a config value of the wrong type (a pipeline step's unknown keyword, a model's)."""


class MissingFileError(VidlabError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class MissingDependencyError(VidlabError, ImportError):
    """An optional package (an extra) or tool that this feature needs is not installed."""


def one_line(error: BaseException) -> str:
    """The error's message on one line (multi-line messages are joined with ``; ``)."""
    text = str(error) or type(error).__name__
    if isinstance(error, OSError) and error.filename and str(error.filename) not in text:
        text = f"{text}: {error.filename}"
    return "; ".join(part.strip() for part in text.splitlines() if part.strip())
