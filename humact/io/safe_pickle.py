"""Loading the pickles of this field (PYSKL annotations, AVA proposals) safely and boundedly.

`pickle.load` runs whatever code a file names, and even a pickle that names nothing can ask
for gigabytes: its opcodes carry lengths and memo indices that CPython's unpickler
allocates for before reading anything (10 bytes `LONG_BINPUT 0x10000000` make it zero a
4 GiB memo), and the constructors it calls take sizes (`bytearray(3_000_000_000)`,
`numpy.ndarray((n,))`, a zero-byte dtype with a shape of 10**15). These files only ever
hold plain containers, strings, numbers and numpy arrays, so `safe_load`:

1. scans the opcodes first (no object is built): every length must fit in the bytes that
   remain, every memo index must be at most the number of opcodes before it (what a real
   pickler writes), the protocol must be known; anything else is an `UnsafePickleError`
   or a `PickleFormatError` naming the file and the byte offset;
2. unpickles with CPython's fast unpickler, allowing exactly the globals needed to rebuild
   those types, through wrappers that check every size before allocating: the bytes the
   constructors create are bounded by the file's own size (they only ever copy data the
   file holds), `numpy.ndarray` can only be used as `_reconstruct`'s argument (as numpy's
   own pickles do), `_codecs.encode` only turns text into latin-1 / UTF-8 bytes;
3. checks every array it built against `MAX_ARRAY_ELEMENTS` / `MAX_ARRAY_BYTES`.

Every failure is an `InputError` (`UnsafePickleError`, `PickleFormatError`, `LimitError`)
whose message names the file. A nested list the file shares many times is still cheap
here; a reader that turns one into an array counts it first (`humact.io.limits.as_array`).
"""

from __future__ import annotations

import _compat_pickle
import codecs
import io
import math
import mmap
import os
import pickle
import warnings
from typing import Any

import numpy as np

from humact.errors import InputError, LimitError
from humact.io.limits import MAX_ARRAY_BYTES, MAX_ARRAY_ELEMENTS, check_limit

__all__ = ["UnsafePickleError", "PickleFormatError", "safe_load", "safe_loads", "scan_opcodes"]


class UnsafePickleError(InputError, pickle.UnpicklingError):
    """The pickle refers to a global that is not a plain container or numpy type, or uses one
    in a way numpy's own pickles never do."""


class PickleFormatError(InputError, pickle.UnpicklingError):
    """The file is not a valid pickle (truncated, unknown opcode, inconsistent contents)."""


# ---- 1. the opcode scan ---------------------------------------------------------------

# Per opcode byte: `_SKIP` = bytes taken by a plain opcode with its fixed-size argument, or
# -1 for the ones that need a look (lengths, lines, memo indices, frames, STOP, unknown).
_SKIP = [-1] * 256
for _c in b"NaelR)t\x85\x86\x87}dsu\x8f\x90\x9101(2\x94\x93bo\x81\x92Q\x88\x89\x97\x98]":
    _SKIP[_c] = 1
for _c, _n in ((b"J", 4), (b"K", 1), (b"M", 2), (b"G", 8), (b"h", 1), (b"j", 4), (b"q", 1),
               (b"\x82", 1), (b"\x83", 2), (b"\x84", 4)):
    _SKIP[_c[0]] = 1 + _n
_LINE = frozenset(b"ILSVFgP")          # one argument line
_TWO_LINES = frozenset(b"ci")          # module and name lines
_LEN1 = frozenset(b"\x8aUC\x8c")       # 1-byte length, then data
_LEN4 = {b"\x8b"[0]: True, b"T"[0]: True, b"B"[0]: False, b"X"[0]: False}   # 4-byte length: signed?
_LEN8 = frozenset(b"\x8e\x96\x8d")     # 8-byte length
_STOP, _PROTO, _FRAME, _PUT, _LONG_BINPUT = b".\x80\x95pr"


def _memo_index(idx: int, ops: int, at: int, source: str) -> None:
    if idx < 0 or idx > ops:
        raise PickleFormatError(f"{source}: byte {at}: memo index {idx} after {ops} opcodes "
                                "(no pickler writes that; it would allocate the memo up to it)")


def scan_opcodes(buf, source: str) -> int:
    """Walk the opcodes of the pickle in `buf` (bytes, a memoryview or an mmap) building nothing.

    Returns the number of opcodes up to STOP. Raises `PickleFormatError` when a declared
    length runs past the end, a memo index is larger than the number of opcodes before it,
    an opcode or the protocol is unknown, or there is no STOP. About 0.3 us per opcode (a
    PYSKL annotation pickle has ~70 per sample).
    """
    n = len(buf)
    pos = 0
    ops = 0
    skip = _SKIP
    while pos < n:
        code = buf[pos]
        s = skip[code]
        ops += 1
        if s > 0:
            pos += s
            continue
        at = pos
        pos += 1
        if code in _LEN1:
            if pos >= n:
                break
            pos += 1 + buf[pos]
        elif code in _LEN4 or code in _LEN8:
            w = 8 if code in _LEN8 else 4
            length = int.from_bytes(buf[pos:pos + w], "little", signed=_LEN4.get(code, False))
            if length < 0:
                raise PickleFormatError(f"{source}: byte {at}: negative length {length}")
            pos += w + length
            if pos > n:
                raise PickleFormatError(f"{source}: byte {at}: declares {length:,} bytes but only "
                                        f"{max(n - at - 1 - w, 0):,} remain (truncated or forged)")
        elif code == _STOP:
            return ops
        elif code in _LINE or code in _TWO_LINES or code == _PUT:
            e = buf.find(b"\n", pos)
            if e < 0:
                break
            if code == _PUT:
                try:
                    idx = int(bytes(buf[pos:e]).decode("ascii"))
                except (ValueError, UnicodeDecodeError):
                    raise PickleFormatError(f"{source}: byte {at}: PUT needs a decimal memo index") from None
                _memo_index(idx, ops, at, source)
            pos = e + 1
            if code in _TWO_LINES:
                e = buf.find(b"\n", pos)
                if e < 0:
                    break
                pos = e + 1
        elif code == _LONG_BINPUT:
            _memo_index(int.from_bytes(buf[pos:pos + 4], "little"), ops, at, source)
            pos += 4
        elif code == _FRAME:
            length = int.from_bytes(buf[pos:pos + 8], "little")
            pos += 8
            if pos + length > n:
                raise PickleFormatError(f"{source}: byte {at}: a frame of {length:,} bytes but only "
                                        f"{max(n - pos, 0):,} remain (truncated or forged)")
        elif code == _PROTO:
            if pos < n and buf[pos] > pickle.HIGHEST_PROTOCOL:
                raise PickleFormatError(f"{source}: unsupported pickle protocol {buf[pos]}")
            pos += 1
        else:
            raise PickleFormatError(f"{source}: byte {at}: not a pickle opcode (0x{code:02x})")
    raise PickleFormatError(f"{source}: not a valid pickle (truncated: no STOP opcode by byte {n})")


# ---- 2. the restricted, size-checked unpickler -------------------------------------------------

class _NdarrayClass:
    """Stands for `numpy.ndarray` in a pickle: numpy's pickles only pass it to `_reconstruct`.
    Calling it (which would allocate a shape from the file with no data behind it) is refused."""

    def __init__(self, loader: "_Loader") -> None:
        self._loader = loader

    def __call__(self, *args, **kw):
        raise UnsafePickleError(f"{self._loader.source}: calls numpy.ndarray directly (an array of a shape "
                                "the file chooses, with no data); numpy's own pickles never do")


def _dtype_of(dtype) -> np.dtype:
    return dtype if isinstance(dtype, np.dtype) else np.dtype(dtype)


class _Loader:
    """The state of one load: the file's name, the bytes its constructors may still create,
    and the arrays built (checked once they hold their data)."""

    def __init__(self, source: str, nbytes: int) -> None:
        self.source = source
        self.budget = nbytes + (1 << 20)
        self.arrays: list = []
        self.ndarray = _NdarrayClass(self)
        self.max_elements = MAX_ARRAY_ELEMENTS.value   # read once: one load checks thousands of arrays
        self.max_bytes = MAX_ARRAY_BYTES.value

    def spend(self, nbytes: int, what: str) -> None:
        if nbytes > self.budget:
            raise LimitError(f"{self.source}: {what} asks for {nbytes:,} bytes, more than the whole file "
                             f"could hold ({self.budget:,}); refusing before allocating")
        self.budget -= nbytes

    def check_array(self, arr: np.ndarray, where: str) -> np.ndarray:
        if arr.size > self.max_elements:
            check_limit(arr.size, MAX_ARRAY_ELEMENTS, source=self.source, field=f"{where} elements")
        if arr.nbytes > self.max_bytes:
            check_limit(arr.nbytes, MAX_ARRAY_BYTES, source=self.source, field=f"{where} bytes")
        return arr

    # the wrapped constructors ----------------------------------------------------------
    def reconstruct(self, real):
        def _reconstruct(subtype, shape, dtype):
            if subtype is not self.ndarray:
                raise UnsafePickleError(f"{self.source}: numpy _reconstruct of {type(subtype).__name__}: "
                                        "only plain numpy arrays are allowed")
            dt = _dtype_of(dtype)
            dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)[:64]
            n = math.prod(int(d) if isinstance(d, (int, np.integer)) else 0 for d in dims)
            if n > self.max_elements:
                check_limit(n, MAX_ARRAY_ELEMENTS, source=self.source, field="array shape")
            self.spend(n * dt.itemsize, "an array's shape")
            arr = real(np.ndarray, shape, dt)
            self.arrays.append(arr)
            return arr
        return _reconstruct

    def frombuffer(self, real):
        def _frombuffer(*args, **kw):
            return self.check_array(real(*args, **kw), "array")
        return _frombuffer

    def scalar(self, real):
        def scalar(dtype, *args):
            dt = _dtype_of(dtype)
            self.spend(dt.itemsize, "a numpy scalar's dtype")
            return real(dt, *args)
        return scalar

    def byte_string(self, cls):
        """`bytes` / `bytearray`, with the bytes they create counted against the budget."""
        what = cls.__name__

        def _byte_string(*args):
            if args and isinstance(args[0], (int, np.integer)) and not isinstance(args[0], bool):
                self.spend(int(args[0]), f"{what}(n)")
            elif args and isinstance(args[0], str):
                self.spend(4 * len(args[0]), f"{what}(text)")
            elif args and isinstance(args[0], (bytes, bytearray, memoryview, list, tuple)):
                self.spend(len(args[0]), f"{what}(bytes)")
            elif args:
                raise UnsafePickleError(f"{self.source}: {what} of a {type(args[0]).__name__}: "
                                        "only bytes, a list of byte values, text or a length are allowed")
            return cls(*args)
        return _byte_string

    def encode(self):
        def encode(obj, encoding="utf-8", errors="strict"):
            if not isinstance(obj, str) or not isinstance(encoding, str):
                raise UnsafePickleError(f"{self.source}: _codecs.encode of a {type(obj).__name__}: only text")
            try:
                name = codecs.lookup(encoding).name
            except LookupError:
                name = ""
            if name not in ("iso8859-1", "utf-8", "ascii"):
                raise UnsafePickleError(f"{self.source}: _codecs.encode to {encoding!r}: only latin-1, UTF-8 "
                                        "or ASCII (what numpy and Python 2 pickles use)")
            self.spend(4 * len(obj), "_codecs.encode")
            return codecs.encode(obj, name, errors)
        return encode


# (module, name) pairs a numpy array / scalar / dtype pickle refers to, for numpy 1.x and 2.x,
# and the plain containers; each maps to how the loader provides it.
_NUMPY_CORE = ("numpy.core.multiarray", "numpy._core.multiarray")
_NUMPY_NUMERIC = ("numpy.core.numeric", "numpy._core.numeric")
_PLAIN: frozenset[tuple[str, str]] = frozenset({
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("builtins", "complex"),
})


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, loader: _Loader):
        super().__init__(file, encoding="latin1")
        self._loader = loader

    def find_class(self, module: str, name: str) -> Any:
        ld = self._loader
        # Python 2 names (protocols 0-2), mapped as pickle's own find_class does with fix_imports
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        key = (module, name)
        if key in _PLAIN or (module in ("numpy", "numpy.dtypes") and name.endswith("DType")):
            return super().find_class(module, name)
        if key == ("numpy", "ndarray"):
            return ld.ndarray
        if module in _NUMPY_CORE and name == "_reconstruct":
            return ld.reconstruct(super().find_class(module, name))
        if module in _NUMPY_CORE and name == "scalar":
            return ld.scalar(super().find_class(module, name))
        if module in _NUMPY_NUMERIC and name == "_frombuffer":
            return ld.frombuffer(super().find_class(module, name))
        if key in (("builtins", "bytearray"), ("builtins", "bytes")):
            return ld.byte_string(bytearray if name == "bytearray" else bytes)
        if key == ("_codecs", "encode"):
            return ld.encode()
        raise UnsafePickleError(
            f"{ld.source}: refusing to load global {module}.{name}; only plain containers and "
            "numpy arrays are allowed in annotation pickles"
        )


def _load(file, buf, source: str, nbytes: int) -> Any:
    scan_opcodes(buf, source)
    loader = _Loader(source, nbytes)
    try:
        with warnings.catch_warnings():   # numpy's deprecations for odd constructor arguments are not the user's
            warnings.simplefilter("ignore")
            obj = _RestrictedUnpickler(file, loader).load()
        for i, arr in enumerate(loader.arrays):
            loader.check_array(arr, f"array #{i + 1}")
    except InputError:
        raise
    except MemoryError:
        raise LimitError(f"{source}: out of memory while unpickling (the file asks for more than is free)") from None
    except RecursionError:
        raise PickleFormatError(f"{source}: not a valid pickle here: nested too deeply") from None
    except Exception as e:   # what a hostile byte stream makes the unpickler or a constructor raise
        detail = str(e).splitlines()[0] if str(e) else ""
        raise PickleFormatError(f"{source}: not a valid pickle ({type(e).__name__}: {detail[:200]})") from None
    return obj


def safe_loads(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle `data` allowing only containers, scalars, strings and numpy arrays (module docstring)."""
    data = bytes(data) if not isinstance(data, bytes) else data
    return _load(io.BytesIO(data), data, source, len(data))


def safe_load(path: str | os.PathLike) -> Any:
    """Unpickle the file at `path` allowing only containers, scalars, strings and numpy arrays.

    The file is scanned through a read-only memory map (no copy) before it is unpickled.

    Raises:
        FileNotFoundError: no such file.
        UnsafePickleError: the file names a disallowed global, or uses an allowed one in a way
            numpy's own pickles never do (the message names it).
        PickleFormatError: the file is not a valid pickle (the message names the file).
        LimitError: an array or allocation beyond the limits of `humact.io.limits`.
    All three are `InputError`s; the first two are also `pickle.UnpicklingError`s.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            raise PickleFormatError(f"{path}: not a valid pickle (the file is empty)")
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            return _load(f, mm, path, size)
