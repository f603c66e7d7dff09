"""The sizes humact accepts from a file, and the one check that enforces them.

A few bytes of a file can ask for gigabytes: a pickle that calls `bytearray(3_000_000_000)`,
a label map whose one id becomes an array length, a result JSON whose `num_frames` sizes a
dense `(persons, frames, 17, 2)` array. Every such number is checked against a named
`Limit` *before* anything is allocated, with `check_limit`, which raises `LimitError`
naming the file, the field, the value and the limit.

The defaults are far above any real file of this field (AVA has 80 classes, a Kinetics-TPS
frame a handful of people, an hour of 30 fps video 108,000 frames) and far below what
would exhaust a workstation. A limit that refuses a legitimate file can be raised for one
run with the environment variable the message names, e.g.
`HUMACT_LIMIT_MAX_ARRAY_BYTES=16G humact ...` (suffixes K, M, G, T are powers of 1024).

Other modules define their own `Limit`s where the size is theirs (configs, checkpoint
sidecars) and call the same `check_limit`. Besides the check, this module holds the two
bounded conversions every reader needs: `nested_size` / `as_array` (a nested list from a
file to an array, counted before numpy sees it: a pickle can share one list a billion
times at no cost in bytes) and `read_json` (size-checked, strict numbers, errors that name
the file).
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from humact.errors import InputError, LimitError

__all__ = [
    "Limit", "check_limit", "check_file_size", "nested_size", "as_array", "read_json", "short_repr",
    "MAX_ARRAY_BYTES", "MAX_ARRAY_ELEMENTS", "MAX_CLASS_ID", "MAX_FRAMES", "MAX_PERSONS", "MAX_JSON_BYTES",
    "MAX_CSV_LINE_BYTES", "MAX_HUMANS_PER_FRAME", "MAX_COORDINATE", "ALL_LIMITS",
]

_SUFFIX = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_NUMBER = re.compile(r"^\s*([0-9]+(?:\.[0-9]*)?(?:[eE][0-9]+)?)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Limit:
    """A named upper bound on a size read from a file.

    Attributes:
        name: lower-case identifier; the environment variable `HUMACT_LIMIT_<NAME>` overrides it.
        default: the bound (inclusive) when the variable is not set.
        unit: what is counted ("bytes", "elements", ...), for the message.
        meaning: what the limit bounds, for the message.
    """

    name: str
    default: float
    unit: str
    meaning: str

    @property
    def env(self) -> str:
        return f"HUMACT_LIMIT_{self.name.upper()}"

    @property
    def value(self) -> float:
        """The bound in force: `$HUMACT_LIMIT_<NAME>` if set (a number, optionally K/M/G/T), else the default."""
        raw = os.environ.get(self.env)
        if raw is None or not raw.strip():
            return self.default
        m = _NUMBER.match(raw)
        if not m:
            raise InputError(f"${self.env}: expected a number (optionally with K, M, G or T), got {raw!r}")
        v = float(m.group(1)) * _SUFFIX[m.group(2).upper()]
        return int(v) if float(v).is_integer() and isinstance(self.default, int) else v

    def __int__(self) -> int:
        return int(self.value)


def _fmt(v) -> str:
    if isinstance(v, (int, np.integer)):
        v = int(v)
        return f"{v:,}" if abs(v) < 10 ** 21 else f"a number of {len(str(abs(v)))} digits"
    return f"{float(v):.6g}"


def check_limit(value, limit: Limit | float, *, source: str, field: str):
    """Return `value` if it is at most `limit`, else raise `LimitError` naming `source` and `field`.

    Args:
        value: the size (an int, or a float such as a coordinate magnitude); compared exactly,
            so an int of any length is fine. NaN is refused.
        limit: a `Limit` (its value in force) or a plain number.
        source: the file (or flag) the value comes from.
        field: where in that file (e.g. "video.num_frames", "id", "line 12 length").
    """
    bound = limit.value if isinstance(limit, Limit) else limit
    try:
        ok = value <= bound
    except TypeError:
        raise InputError(f"{source}: field {field}: expected a number, got {short_repr(value)}") from None
    if ok and not (isinstance(value, float) and math.isnan(value)):
        return value
    if isinstance(limit, Limit):
        text = _fmt(value)
        unit = f" {limit.unit}" if limit.unit and not text.startswith("a number of") else ""
        raise LimitError(f"{source}: field {field}: {text}{unit} is over the limit of "
                         f"{_fmt(bound)} ({limit.meaning}); set {limit.env} to raise it")
    raise LimitError(f"{source}: field {field}: {_fmt(value)} is over the limit of {_fmt(bound)}")


#: Bytes of one array built from a file (4 GiB).
MAX_ARRAY_BYTES = Limit("max_array_bytes", 4 << 30, "bytes", "one array built from a file")
#: Elements of one array built from a file (512 Mi: 4 GiB as float64).
MAX_ARRAY_ELEMENTS = Limit("max_array_elements", 1 << 29, "elements", "one array built from a file")
#: Largest class id of a label map; ids size per-class arrays.
MAX_CLASS_ID = Limit("max_class_id", 1_000_000, "", "largest class id of a label map")
#: Frames of one video result (46 hours at 60 fps).
MAX_FRAMES = Limit("max_frames", 10_000_000, "frames", "frames of one video result")
#: Tracked persons of one video result.
MAX_PERSONS = Limit("max_persons", 100_000, "persons", "tracked persons of one video result")
#: Size of one JSON file (parsing takes about ten times its size in memory).
MAX_JSON_BYTES = Limit("max_json_bytes", 2 << 30, "bytes", "one JSON file")
#: Length of one CSV line (the csv module refuses fields over 128 KiB).
MAX_CSV_LINE_BYTES = Limit("max_csv_line_bytes", 1 << 20, "bytes", "one CSV line")
#: Ground-truth humans of one Kinetics-TPS frame (matching them is cubic in their number).
MAX_HUMANS_PER_FRAME = Limit("max_humans_per_frame", 1000, "humans", "ground-truth humans of one frame")
#: Magnitude of a pixel coordinate (areas of larger boxes overflow float32).
MAX_COORDINATE = Limit("max_coordinate", 1e9, "pixels", "magnitude of a box coordinate")

ALL_LIMITS: tuple[Limit, ...] = (MAX_ARRAY_BYTES, MAX_ARRAY_ELEMENTS, MAX_CLASS_ID, MAX_FRAMES, MAX_PERSONS,
                                 MAX_JSON_BYTES, MAX_CSV_LINE_BYTES, MAX_HUMANS_PER_FRAME, MAX_COORDINATE)


def check_file_size(path: str | os.PathLike, limit: Limit | float, *, field: str = "file size") -> int:
    """The size of the file at `path` in bytes, refused with `LimitError` when over `limit`."""
    return check_limit(os.path.getsize(path), limit, source=os.fspath(path), field=field)


def short_repr(value: Any, width: int = 60) -> str:
    """`repr(value)` on one line, cut to about `width` characters, safe on huge or deeply nested values."""
    import reprlib

    r = reprlib.Repr()
    r.maxlevel, r.maxstring, r.maxother, r.maxlist, r.maxdict = 3, width, width, 6, 4
    try:
        text = r.repr(value)
    except (RecursionError, ValueError):
        text = f"<{type(value).__name__}>"
    text = " ".join(text.split())       # one line: numpy's repr breaks rows over lines
    return text if len(text) <= width else text[: width - 3] + "..."


def nested_size(obj: Any, limit: Limit | float = MAX_ARRAY_ELEMENTS, *, source: str, field: str,
                error: type[InputError] = InputError) -> int:
    """Scalars in a nested list / tuple (arrays count their elements), refused past `limit`.

    Each list is counted once however often it is shared (cheap in a pickle: a list of ten
    references to a list of ten references ... is a few hundred bytes and 10**10 numbers for
    `np.asarray`), iteratively, so nesting deeper than Python's recursion limit or a list that
    contains itself is an `error`, and a count past the limit a `LimitError`, with nothing built.
    """
    bound = limit.value if isinstance(limit, Limit) else limit
    seq = (list, tuple)

    def leaf(x) -> int:
        return x.size if isinstance(x, np.ndarray) else 1

    if not isinstance(obj, seq):
        count = leaf(obj)
        return check_limit(count, limit, source=source, field=field) if count > bound else count
    sizes: dict[int, int] = {}      # id of a list already counted -> its scalars
    active: set[int] = set()        # ids of the lists on the current path (a cycle refers back to one)
    stack = [(obj, 0, False)]
    while stack:
        x, depth, closing = stack.pop()
        i = id(x)
        if closing:
            active.discard(i)
            n = sum(sizes[id(c)] if isinstance(c, seq) else leaf(c) for c in x)
            if n > bound:
                check_limit(n, limit, source=source, field=field)
            sizes[i] = n
            continue
        if i in sizes:
            continue
        if i in active:
            raise error(f"{source}: field {field}: a list that contains itself")
        if depth >= 32:   # numpy's own maximum number of dimensions is 64; no field has more than 5
            raise error(f"{source}: field {field}: nested more than 32 levels deep")
        active.add(i)
        stack.append((x, depth, True))
        stack.extend((c, depth + 1, False) for c in x if isinstance(c, seq) and id(c) not in sizes)
    return sizes[id(obj)]


def as_array(obj: Any, dtype, *, source: str, field: str, shape: tuple | None = None,
             limit: Limit | float | None = MAX_ARRAY_ELEMENTS, finite: bool = False,
             error: type[InputError] = InputError) -> np.ndarray:
    """`np.asarray(obj, dtype)` for a value read from a file, with every failure an `InputError`.

    Args:
        obj: a nested list / tuple, an array or a scalar.
        dtype: the numpy dtype wanted.
        source, field: named in the messages.
        shape: the expected shape; `None` in it matches any length, e.g. `(None, 4)`.
        limit: elements allowed, counted before converting; `None` skips the count (for
            parsed JSON, whose every element costs a byte of the file already bounded).
        finite: refuse NaN and infinities (also values beyond the range of `dtype`).
        error: the `InputError` subclass to raise (a `LimitError` stays one).
    """
    if limit is not None:
        nested_size(obj, limit, source=source, field=field, error=error)
    want = np.dtype(dtype)
    try:
        raw = obj if isinstance(obj, np.ndarray) else np.asarray(obj)
    except (ValueError, TypeError, OverflowError) as e:
        raise error(f"{source}: field {field}: expected an array of {want.name}, got {short_repr(obj)} "
                    f"({str(e).splitlines()[0] if str(e) else type(e).__name__})") from None
    # numbers must be numbers: numpy would turn "1.5" into 1.5 and 2.7 into the integer 2
    kinds = {"b": "b", "i": "biu", "u": "biu", "f": "biuf"}.get(want.kind)
    if kinds is not None and raw.size and raw.dtype.kind not in kinds:
        expected = {"b": "booleans", "i": "integers", "u": "integers", "f": "numbers"}[want.kind]
        raise error(f"{source}: field {field}: expected {expected}, got {short_repr(obj)}")
    if shape is not None and (raw.ndim != len(shape) or any(s is not None and s != a for s, a in zip(shape, raw.shape))):
        expect = "(" + ", ".join("n" if s is None else str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"
        raise error(f"{source}: field {field}: expected shape {expect}, got {raw.shape}")
    if raw.dtype.kind in "iu" and want.kind in "iu" and raw.size:
        info = np.iinfo(want)
        if raw.min() < info.min or raw.max() > info.max:
            raise error(f"{source}: field {field}: integers beyond {want.name}")
    with np.errstate(all="ignore"):
        arr = raw.astype(want, copy=False)
    if finite and arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise error(f"{source}: field {field}: expected finite numbers, found NaN, infinity or a value "
                    f"beyond {want.name}")
    return arr


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def read_json(path: str | os.PathLike, *, error: type[InputError] = InputError,
              limit: Limit | float = MAX_JSON_BYTES, allow_nan: bool = True) -> Any:
    """Parse the JSON file at `path`, every failure an `error` (an `InputError`) naming the file.

    The size is checked first (`limit`); a UTF-8 byte-order mark is skipped (it is not data);
    bytes that are not UTF-8 are reported with their offset; nesting deeper than the parser's
    recursion limit and integers of more than 4300 digits are refused with a message, not a
    traceback. `NaN` / `Infinity` (Python's extension, which `json.dump` writes) are read as
    floats unless `allow_nan` is False: the readers check their fields and name the one that
    holds a non-finite number, which says more than a parse error.
    """
    path = os.fspath(path)
    check_file_size(path, limit)
    try:
        with open(path, "rb") as f:
            raw = f.read()
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8: byte 0x{raw[e.start]:02x} at offset {e.start} ({e.reason})") from None
    try:
        return json.loads(text, parse_constant=None if allow_nan else _refuse_constant)
    except json.JSONDecodeError as e:
        raise error(f"{path}: not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise error(f"{path}: not valid JSON here: nested too deeply for the parser") from None
    except ValueError as e:   # NaN / Infinity, or an integer beyond Python's digit limit
        raise error(f"{path}: not valid JSON here: {str(e).splitlines()[0]}") from None
