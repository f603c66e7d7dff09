"""Loading the pickles of this field (PYSKL annotations, AVA proposals) safely.

`pickle.load` runs whatever code a file names. These files only ever hold plain
containers, strings, numbers and numpy arrays, so `safe_load` allows exactly the
globals needed to rebuild those and refuses anything else with an error that
names the file and the offending global.
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any

from humact.errors import InputError

# (module, name) pairs a numpy array / scalar / dtype pickle refers to, for numpy 1.x and 2.x.
_ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("collections", "OrderedDict"),
        ("collections", "defaultdict"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "slice"),
        ("builtins", "complex"),
        ("builtins", "bytearray"),
        ("_codecs", "encode"),
    }
)


class UnsafePickleError(InputError, pickle.UnpicklingError):
    """The pickle refers to a global that is not a plain container or numpy type."""


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, source: str):
        super().__init__(file, encoding="latin1")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED or (module in ("numpy", "numpy.dtypes") and name.endswith("DType")):
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"{self._source}: refusing to load global {module}.{name}; only plain containers and "
            "numpy arrays are allowed in annotation pickles"
        )


def safe_loads(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle `data` allowing only containers, scalars, strings and numpy arrays."""
    return _RestrictedUnpickler(io.BytesIO(data), source).load()


def safe_load(path: str | os.PathLike) -> Any:
    """Unpickle the file at `path` allowing only containers, scalars, strings and numpy arrays.

    Raises:
        FileNotFoundError: no such file.
        UnsafePickleError: the file names a disallowed global (the message names it).
        pickle.UnpicklingError: the file is not a valid pickle (the message names the file).
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        try:
            return _RestrictedUnpickler(f, path).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as e:
            raise pickle.UnpicklingError(f"{path}: not a valid pickle ({e})") from e
