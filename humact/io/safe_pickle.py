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
3. checks what numpy itself does not: an array's pickled state (BUILD) must match its
   shape and dtype before numpy's `__setstate__` sees it (an object array given fewer items
   than its shape reads pointers past the list), and every dtype must fit its own size
   (numpy's `dtype.__setstate__` takes fields at any offset; arrays of it read and write
   outside their memory); arrays get private copies of their dtypes;
4. checks every array it built against `MAX_ARRAY_ELEMENTS` / `MAX_ARRAY_BYTES`, and
   returns them as plain `ndarray`s.

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

# the encodings numpy and Python 2 pickles write text-as-bytes in, by normalised name
_TEXT_ENCODINGS = {"latin1": "latin-1", "iso88591": "latin-1", "l1": "latin-1", "utf8": "utf-8", "ascii": "ascii",
                   "usascii": "ascii"}


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


def _check_dtype(dt: np.dtype, source: str, depth: int = 0) -> np.dtype:
    """Refuse a dtype whose layout does not fit its size: numpy's `dtype.__setstate__` accepts
    fields at any offset and subarrays of any shape, and arrays of such a dtype read and
    write outside their memory. Structured dtypes holding objects are refused too (no
    annotation file has them; their pickled form writes pointers at those offsets)."""
    if not isinstance(dt, np.dtype):
        raise UnsafePickleError(f"{source}: an array's dtype is a {type(dt).__name__}")
    if depth > 32:
        raise UnsafePickleError(f"{source}: a dtype nested more than 32 levels deep")
    if dt.fields:
        if dt.hasobject:
            raise UnsafePickleError(f"{source}: a structured dtype with object fields ({dt}); not allowed")
        for name, spec in dt.fields.items():
            f, off = spec[0], spec[1]
            if off < 0 or off + f.itemsize > dt.itemsize:
                raise UnsafePickleError(f"{source}: dtype field {name!r} at bytes {off}..{off + f.itemsize} of a "
                                        f"{dt.itemsize}-byte dtype (a forged layout)")
            _check_dtype(f, source, depth + 1)
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        if base.itemsize * math.prod(shape) != dt.itemsize or any(d < 0 for d in shape):
            raise UnsafePickleError(f"{source}: dtype {dt}: a subarray of {shape} x {base.itemsize} bytes in "
                                    f"{dt.itemsize} bytes (a forged layout)")
        _check_dtype(base, source, depth + 1)
    return dt


class _PendingArray(np.ndarray):
    """What `_reconstruct` / `_frombuffer` give the unpickler instead of a plain array, so that
    the BUILD opcode's `__setstate__` is checked before numpy runs it (numpy's own does not
    check that an object array's list has as many items as its shape: a short list makes it
    read and keep pointers past the list). Replaced by plain `ndarray` views after loading."""

    _loader: "_Loader | None" = None

    def __setstate__(self, state):
        ld = self._loader
        src = ld.source if ld is not None else "<pickle>"
        if not isinstance(state, tuple) or len(state) not in (4, 5):
            raise UnsafePickleError(f"{src}: an array's state is not numpy's (version, shape, dtype, order, data)")
        shape, dtype, data = state[-4], state[-3], state[-1]
        if isinstance(shape, (int, np.integer)):
            shape = (shape,)
        if not isinstance(shape, tuple) or not all(isinstance(d, (int, np.integer)) and d >= 0 for d in shape):
            raise UnsafePickleError(f"{src}: an array's shape is {shape!r:.60}")
        dt = ld.private(dtype) if ld is not None else _private(_check_dtype(dtype, src))
        n = math.prod(int(d) for d in shape)
        if ld is not None:
            if n > ld.max_elements:
                check_limit(n, MAX_ARRAY_ELEMENTS, source=src, field="array shape")
            if n * dt.itemsize > ld.max_bytes:
                check_limit(n * dt.itemsize, MAX_ARRAY_BYTES, source=src, field="array bytes")
        if dt.hasobject:
            if not isinstance(data, list) or len(data) != n:
                raise UnsafePickleError(f"{src}: an object array of {n:,} items pickled with "
                                        f"{len(data) if isinstance(data, list) else type(data).__name__} items")
        elif not isinstance(data, (bytes, bytearray)) or len(data) != n * dt.itemsize:
            raise UnsafePickleError(f"{src}: an array of {n * dt.itemsize:,} bytes pickled with "
                                    f"{len(data) if isinstance(data, (bytes, bytearray)) else type(data).__name__}")
        # the array gets a private copy: a later BUILD on the pickle's dtype object cannot reach it
        state = state[:-3] + (dt,) + state[-2:]
        np.ndarray.__setstate__(self, state)


def _private(dt: np.dtype) -> np.dtype:
    """A copy of `dt` that the pickle holds no reference to."""
    return np.dtype(dt, False, True)


_WALKED = (dict, list, tuple, slice, np.ndarray)


def _plain_arrays(obj, source: str):
    """`obj` with every `_PendingArray` in it replaced by a plain `ndarray` view.

    Iterative (no recursion limit), each container once (shared ones stay shared): dicts,
    lists and object arrays are updated in place, tuples and slices holding an array are
    rebuilt. A tuple that holds an array and (through a list) itself is refused.
    """
    new: dict[int, Any] = {}        # id of a replaced object -> its replacement
    old: list = []                  # replaced objects, kept alive so that their ids stay unique
    done: set[int] = set()
    active: set[int] = set()
    cyclic: set[int] = set()
    stack = [(obj, False)]
    while stack:
        x, closing = stack.pop()
        i = id(x)
        if closing:
            active.discard(i)
            done.add(i)
            if isinstance(x, dict):
                changed = [(k, new[id(v)]) for k, v in x.items() if id(v) in new]
                for k, v in changed:
                    x[k] = v
            elif isinstance(x, list):
                for j, v in enumerate(x):
                    if id(v) in new:
                        x[j] = new[id(v)]
            elif isinstance(x, np.ndarray):        # an object array: its items, then itself
                for j, v in enumerate(x.flat):
                    if id(v) in new:
                        x.flat[j] = new[id(v)]
                if type(x) is _PendingArray:
                    new[i] = x.view(np.ndarray)
                    old.append(x)
            elif isinstance(x, (tuple, slice)):
                items = (x.start, x.stop, x.step) if isinstance(x, slice) else x
                if any(id(v) in new for v in items):
                    if i in cyclic:
                        raise UnsafePickleError(f"{source}: a tuple that holds an array and itself")
                    rebuilt = tuple(new.get(id(v), v) for v in items)
                    new[i] = slice(*rebuilt) if isinstance(x, slice) else rebuilt
                    old.append(x)
            continue
        if i in done:
            continue
        if i in active:
            cyclic.add(i)
            continue
        if isinstance(x, dict):
            children = x.values()
        elif isinstance(x, (list, tuple)):
            children = x
        elif isinstance(x, slice):
            children = (x.start, x.stop, x.step)
        elif isinstance(x, np.ndarray) and x.dtype.hasobject:
            children = list(x.flat)
        elif type(x) is _PendingArray:
            new[i] = x.view(np.ndarray)
            old.append(x)
            done.add(i)
            continue
        else:
            done.add(i)
            continue
        active.add(i)
        stack.append((x, True))
        # only what can hold (or be) an array is visited: strings and numbers are skipped here
        stack.extend((c, False) for c in children if isinstance(c, _WALKED) and id(c) not in done)
    return new.get(id(obj), obj)


class _Loader:
    """The state of one load: the file's name, the bytes its constructors may still create,
    and the arrays built (checked once they hold their data)."""

    def __init__(self, source: str, nbytes: int) -> None:
        self.source = source
        self.budget = nbytes + (1 << 20)
        self.arrays: list = []
        self.dtypes: list = []
        self._privates: dict = {}
        self.ndarray = _NdarrayClass(self)
        self.max_elements = MAX_ARRAY_ELEMENTS.value   # read once: one load checks thousands of arrays
        self.max_bytes = MAX_ARRAY_BYTES.value

    def private(self, dtype) -> np.dtype:
        """A checked private copy of the pickle's dtype object, one per object (numpy's pickles
        share one dtype among all arrays of that type)."""
        hit = self._privates.get(id(dtype))
        if hit is not None and hit[0] is dtype:
            return hit[1]
        copy = _private(_check_dtype(dtype, self.source))
        self._privates[id(dtype)] = (dtype, copy)
        return copy

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
            if subtype is self.ndarray and shape == (0,) and dtype == b"b":   # what numpy's pickles write
                arr = real(_PendingArray, shape, dtype)
                arr._loader = self
                self.arrays.append(arr)
                return arr
            if subtype is not self.ndarray:
                raise UnsafePickleError(f"{self.source}: numpy _reconstruct of {type(subtype).__name__}: "
                                        "only plain numpy arrays are allowed")
            dt = _dtype_of(dtype)
            dims = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)[:64]
            n = math.prod(abs(int(d)) if isinstance(d, (int, np.integer)) else 0 for d in dims)
            if n > self.max_elements:
                check_limit(n, MAX_ARRAY_ELEMENTS, source=self.source, field="array shape")
            self.spend(n * dt.itemsize, "an array's shape")
            arr = real(_PendingArray, shape, self.private(dt))
            arr._loader = self
            self.arrays.append(arr)
            return arr
        return _reconstruct

    def frombuffer(self, real):
        def _frombuffer(buf, dtype, *args, **kw):
            arr = real(buf, self.private(_dtype_of(dtype)), *args, **kw).view(_PendingArray)
            arr._loader = self
            self.arrays.append(arr)
            return self.check_array(arr, "array")
        return _frombuffer

    def scalar(self, real):
        def scalar(dtype, *args):
            dt = self.private(_dtype_of(dtype))
            self.spend(dt.itemsize, "a numpy scalar's dtype")
            return real(dt, *args)
        return scalar

    def dtype(self, real):
        """`numpy.dtype` (always a copy, as numpy's pickles ask) and the `numpy.dtypes` classes;
        each dtype made is checked once the load has set its state."""
        def dtype(*args, **kw):
            if real is np.dtype and args:
                args = (args[0], bool(args[1]) if len(args) > 1 else False, True)
            dt = real(*args, **kw)
            self.dtypes.append(dt)
            return dt
        return dtype

    def byte_string(self, cls):
        """`bytes` / `bytearray`, with the bytes they create counted against the budget."""
        what = cls.__name__

        def _byte_string(*args):
            if args and isinstance(args[0], (int, np.integer)) and not isinstance(args[0], bool):
                self.spend(int(args[0]), f"{what}(n)")
            elif args and isinstance(args[0], str):
                if len(args) < 2 or not isinstance(args[1], str) or \
                        args[1].lower().replace("-", "").replace("_", "") not in _TEXT_ENCODINGS:
                    raise UnsafePickleError(f"{self.source}: {what} of text in {args[1:2]!r:.40}: only latin-1, "
                                            "UTF-8 or ASCII")
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
            if not isinstance(obj, str) or not isinstance(encoding, str) or errors != "strict":
                raise UnsafePickleError(f"{self.source}: _codecs.encode of a {type(obj).__name__}: only text")
            name = _TEXT_ENCODINGS.get(encoding.lower().replace("-", "").replace("_", ""))
            if name is None:
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
        if key == ("numpy", "dtype") or (module in ("numpy", "numpy.dtypes") and name.endswith("DType")):
            return ld.dtype(super().find_class(module, name))
        if key in _PLAIN:
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
        for dt in loader.dtypes:
            _check_dtype(dt, source)
        if loader.arrays:
            obj = _plain_arrays(obj, source)
            for arr in loader.arrays:     # the views keep these alive: drop their link to the loader
                arr._loader = None
            loader.arrays.clear()
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
