"""The errors humact raises for what a user gave it: one base class, caught once by the CLI.

Every problem with a user's files, values or command line is a `HumactError`; `humact.cli.main`
prints its message as one line (`humact COMMAND: error: ...`) and exits with code 2, and a Python
caller can catch the one class. Messages name the file (or flag) and the field, and say what was
expected. Anything else that escapes is a bug in humact, not a problem with the input.

The subclasses keep the built-in class they refine (`InputError` is a `ValueError`, ...), so code
that catches the built-in still works.
"""

from __future__ import annotations

__all__ = ["HumactError", "InputError", "LimitError", "CheckpointError", "ConfigError", "UsageError",
           "OutputError", "one_line"]


class HumactError(Exception):
    """A problem with the user's input or environment: one clear line, exit code 2."""


class InputError(HumactError, ValueError):
    """A file or value the user gave is malformed or out of range (the message names file and field)."""


class LimitError(InputError):
    """A size read from a file is beyond a sane limit; refused before anything is allocated."""


class CheckpointError(InputError):
    """A checkpoint cannot be read, or does not fit the model it is loaded into."""


class ConfigError(InputError):
    """A training or model configuration value is unknown, of the wrong type or out of range."""


class UsageError(HumactError):
    """Command-line arguments that are missing or do not go together."""


class OutputError(HumactError):
    """The output location cannot be used: not a folder, not writable, or it would overwrite an input."""


def one_line(message: str) -> str:
    """`message` folded onto one line (a multi-line detail joined with '; ')."""
    return "; ".join(part.strip() for part in str(message).splitlines() if part.strip())
