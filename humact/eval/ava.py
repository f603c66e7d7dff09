"""AVA spatio-temporal action detection: file formats and the official frame-mAP, exactly and fast.

Formats (https://research.google.com/ava/download.html):

    ground truth  video_id,timestamp,x1,y1,x2,y2,action_id,person_id   (boxes in [0, 1])
                  video_id,timestamp                                   (keyframe without people, newer files)
    detections    video_id,timestamp,x1,y1,x2,y2,action_id,score
    exclusions    video_id,timestamp
    label map     pbtxt, `item { name: "..." id: N }` or `label { name: "..." label_id: N ... }`
    proposals     pickle {"video_id,timestamp": (n, 5) [x1, y1, x2, y2, score]}

Frame-mAP (`evaluate_ava`) reproduces the ActivityNet evaluator (`get_ava_performance.py`
with the TensorFlow object_detection utilities it ships) number for number, in two
`semantics`:

- "activitynet-2019" (AVA v2.1 / v2.2 papers): keyframe key "%s,%04d" % (video, int(ts));
  excluded keyframes are dropped from both files; every detected keyframe is scored
  (detections on a keyframe without ground truth are false positives).
- "activitynet-head" (AVA-Kinetics style files): key "%s,%.6f" % (video, float(ts)); no
  exclusions; the keyframes scored are those of the ground truth (2-column rows
  included); detections on other keyframes are ignored.

In both, per keyframe only the 50 highest-scoring rows (all classes together) are kept
(`cap=None` switches that off, as MMAction2 1.x and PySlowFast do), ids outside the label
map are dropped, boxes with x1 >= x2 or y1 >= y2 are dropped after the cap, and matching
is greedy per keyframe and class: in score order each detection takes its highest-IoU
ground-truth box (first one on equal IoU), a true positive if IoU >= 0.5 and the box is
free, otherwise a false positive. AP is VOC all-point AP over the detections of a class
in the order `np.argsort(scores)[::-1]` (numpy's default sort, as the official code);
mAP is the mean over label-map classes with ground truth.

How ties are ordered, and why that is exact. The official code keeps each keyframe's
rows in a heap of tuples (score, action_id, y1, x1, y2, x2) fed in file order, then
sorts the heap's array by -score with a stable sort; the per-class arrays are the
keyframes' results concatenated in order of each keyframe's first row in the file.
The heap's array order differs from file order only among rows of equal score, and it
changes a result only when (a) the cap cuts through a run of equal scores, (b) two
kept rows of one class on one keyframe have equal scores, or (c) a detection's best
IoU is shared by two different ground-truth boxes (the ground truth goes through the
same heap, keyed by its 8th column). We find those keyframes vectorised and replay the
official heap for them alone in Python (a few percent of keyframes on files written with
4 decimals); every other keyframe's order is simply descending score. The per-class
arrays are then built in the official concatenation order and sorted with the same
`np.argsort` call, so ties across keyframes land exactly where the official code puts
them. (That order among equal scores is numpy's unstable sort, which depends on the
array's length and on numpy's build: "exact" means equal to the official code run with
the same numpy, which is what tests/ava_oracle.py and benchmarks/ava_eval.py check.)

CSV parsing is vectorised NumPy over 8 MB chunks (a decimal field is parsed as an
integer mantissa divided by a power of ten, which is the correctly rounded value, i.e.
exactly Python's `float`); fields it cannot parse that way (exponents, more than 15
significant digits) go through Python's `float` one by one, and a chunk with quotes,
spaces or tabs through the `csv` module. Lines are those of Python's universal newlines
(LF, CRLF or a lone CR), as the official `csv.reader(open(path))` sees them.

Bad files: every reader raises `AvaFormatError` (or `LimitError`) naming the file, the
line and the field, exactly where the official reader would fail, plus where it would
give a silently wrong number: a UTF-8 byte-order mark (kept by the official reader in the
first video id) is removed and reported in `notes` / `AvaResult.notes`; ground truth with
no box of a label-map class is an error (the official mAP is NaN); detections that cannot
score give mAP 0 with a note. Sizes a file sets are bounded (`humact.io.limits`): label
ids by `MAX_CLASS_ID`, lines by `MAX_CSV_LINE_BYTES`. `read_ava_csv` documents the rest.
"""

from __future__ import annotations

import csv
import heapq
import io
import os
import re
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from humact.errors import InputError, LimitError, UsageError
from humact.io.atomic import atomic_write
from humact.io.limits import MAX_CLASS_ID, MAX_CSV_LINE_BYTES, as_array, check_limit, short_repr
from humact.io.safe_pickle import safe_load

__all__ = [
    "SEMANTICS", "DEFAULT_CAP", "IOU_THRESHOLD", "AvaFormatError", "LabelMap", "AvaTable", "AvaDetections",
    "AvaResult", "read_label_map", "read_exclusions", "read_ava_csv", "read_proposals",
    "write_ava_detections", "write_label_map", "evaluate_ava", "evaluate_ava_files",
    "average_precision", "precision_recall",
]

SEMANTICS = ("activitynet-2019", "activitynet-head")
DEFAULT_CAP = 50          # rows kept per keyframe by the official evaluator
IOU_THRESHOLD = 0.5       # PASCAL matching threshold used by AVA
_CHUNK = 8 << 20          # bytes parsed per vectorised step: small enough that the temporaries
                          # are reused by the allocator (fewer page faults) and memory stays low


class AvaFormatError(InputError):
    """An AVA file does not follow the format; the message names the file, line and field."""


# --------------------------------------------------------------------------------------
# Label map, exclusions, proposals
# --------------------------------------------------------------------------------------

@dataclass
class LabelMap:
    """AVA classes: `ids` (1-based action ids, file order) and their `names`."""

    ids: list[int]
    names: list[str]

    def name(self, class_id: int) -> str:
        return self.names[self.ids.index(class_id)]

    def as_dict(self) -> dict[int, str]:
        return dict(zip(self.ids, self.names))


_PBTXT_NAME = re.compile(r'^\s*name:\s*"(.*)"\s*$')
_PBTXT_ID = re.compile(r"^\s*(?:id|label_id):\s*(-?\d+)\s*$")
_BOM = b"\xef\xbb\xbf"


def _bom_note(path) -> str:
    return (f"{path}: starts with a UTF-8 byte-order mark; humact removed it (the official evaluator, "
            "reading the file as plain UTF-8, would keep it in the first field)")


def _read_text(path, notes: list | None) -> str:
    """The whole file as text: a leading UTF-8 BOM removed (and noted), bytes that are not
    UTF-8 an error naming the line. For the small files (label maps, exclusions)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw.startswith(_BOM):
        raw = raw[3:]
        if notes is not None:
            notes.append(_bom_note(path))
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise AvaFormatError(f"{path}:{line}: not UTF-8 (byte 0x{raw[e.start]:02x}, {e.reason})") from None


def read_label_map(path: str | os.PathLike, *, notes: list | None = None) -> LabelMap:
    """Read a label map pbtxt in either AVA style (`item {name id}` or `label {name label_id}`).

    As the official reader, each `id:` / `label_id:` line closes an entry with the last
    `name:` seen before it. Ids must be 1-based and at most `MAX_CLASS_ID` (they size
    per-class arrays). A UTF-8 byte-order mark is removed and said in `notes`.
    """
    ids: list[int] = []
    names: list[str] = []
    name = None
    text = _read_text(path, notes)
    for lineno, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        m = _PBTXT_NAME.match(line)
        if m:
            name = m.group(1)
            continue
        m = _PBTXT_ID.match(line)
        if m:
            if name is None:
                raise AvaFormatError(f"{path}:{lineno}: id {short_repr(m.group(1))} has no `name:` before it")
            digits = m.group(1)
            if len(digits.lstrip("-")) > 18:
                raise LimitError(f"{path}:{lineno}: field id: a number of {len(digits)} digits is over the "
                                 f"limit of {MAX_CLASS_ID.value:,} ({MAX_CLASS_ID.meaning})")
            value = check_limit(int(digits), MAX_CLASS_ID, source=f"{path}:{lineno}", field="id")
            ids.append(value)
            names.append(name)
    if not ids:
        raise AvaFormatError(f"{path}: no `name:` / `id:` (or `label_id:`) entries found: not a label map pbtxt")
    if min(ids) < 1:
        raise AvaFormatError(f"{path}: field id: AVA class ids are 1-based, found {min(ids)}")
    return LabelMap(ids, names)


def write_label_map(path: str | os.PathLike, labels: LabelMap, style: str = "item") -> None:
    """Write `labels` as pbtxt, `style` "item" (`id:`) or "label" (`label_id:`, with label_type)."""
    out = []
    for i, n in zip(labels.ids, labels.names):
        if style == "item":
            out.append(f'item {{\n  name: "{n}"\n  id: {i}\n}}\n')
        elif style == "label":
            out.append(f'label {{\n  name: "{n}"\n  label_id: {i}\n  label_type: PERSON_MOVEMENT\n}}\n')
        else:
            raise ValueError(f"style: expected 'item' or 'label', got {style!r}")
    with atomic_write(path) as f:
        f.write("".join(out))


def _key_2019(video: str, ts: str, where: str):
    try:
        return video, int(ts)
    except ValueError:
        raise AvaFormatError(f"{where}: field timestamp: expected an integer second (activitynet-2019 "
                             f"keys are '%s,%04d'), got {short_repr(ts)}") from None


def _key_head(video: str, ts: str, where: str):
    try:
        return video, "%.6f" % float(ts)
    except ValueError:
        raise AvaFormatError(f"{where}: field timestamp: expected a number, got {short_repr(ts)}") from None


def _key_fn(semantics: str):
    if semantics == "activitynet-2019":
        return _key_2019
    if semantics == "activitynet-head":
        return _key_head
    raise ValueError(f"semantics: expected one of {SEMANTICS}, got {semantics!r}")


def read_exclusions(path: str | os.PathLike, semantics: str = "activitynet-2019", *,
                    notes: list | None = None) -> set:
    """Excluded keyframes `video_id,timestamp` as a set of keys (video, int(ts)) (or (video, "%.6f")).

    Read with the csv module as the official reader (any of LF, CRLF, CR line ends); a UTF-8
    byte-order mark is removed and said in `notes`.
    """
    key = _key_fn(semantics)
    out = set()
    reader = csv.reader(io.StringIO(_read_text(path, notes), newline=""))
    try:
        for row in reader:
            where = f"{path}:{reader.line_num}"
            if len(row) != 2:
                raise AvaFormatError(f"{where}: expected 2 columns video_id,timestamp, got {len(row)}")
            out.add(key(row[0], row[1], where))
    except csv.Error as e:
        raise AvaFormatError(f"{path}:{reader.line_num}: not a CSV row ({e})") from None
    return out


def read_proposals(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Person proposals pickle {"video_id,timestamp": (n, 5) float [x1, y1, x2, y2, score]}
    ((n, 4) without scores is accepted too).

    Read with the restricted unpickler: the file can only rebuild containers and arrays, of
    bounded sizes; each entry is counted before it becomes an array.
    """
    path = os.fspath(path)
    data = safe_load(path)
    if not isinstance(data, dict):
        raise AvaFormatError(f"{path}: expected a dict {{'video,timestamp': (n, 5) array}}, got {type(data).__name__}")
    out = {}
    for k, v in data.items():
        if not isinstance(k, str) or "," not in k:
            raise AvaFormatError(f"{path}: key {short_repr(k)}: expected 'video_id,timestamp'")
        try:
            arr = as_array(v, np.float64, source=path, field=f"entry {short_repr(k)}")
        except InputError as e:
            raise AvaFormatError(str(e)) from None
        if arr.ndim != 2 or arr.shape[1] not in (4, 5):
            raise AvaFormatError(f"{path}: entry {short_repr(k)}: expected shape (n, 5) [x1, y1, x2, y2, score], "
                                 f"got {arr.shape}")
        out[k] = arr
    return out


# --------------------------------------------------------------------------------------
# CSV tables
# --------------------------------------------------------------------------------------

@dataclass
class AvaTable:
    """The rows of an AVA ground-truth or detection CSV, grouped by keyframe.

    Attributes:
        keys: keyframe keys in order of first appearance in the file, (video_id, int(ts))
            for activitynet-2019 or (video_id, "%.6f" % ts) for activitynet-head.
        kf: (n,) int32 index into `keys` of each row.
        boxes: (n, 4) float64 x1, y1, x2, y2, normalised to [0, 1].
        action: (n,) int32 action id (1-based, as in the label map).
        score: (n,) float64 the 8th column (detection score; person id in ground truth),
            1.0 for 7-column rows (as the official reader).
        rows_in_file: box rows in the file, counting those the reader dropped (classes
            outside the whitelist, excluded keyframes).
    """

    keys: list
    kf: np.ndarray
    boxes: np.ndarray
    action: np.ndarray
    score: np.ndarray
    rows_in_file: int = 0

    def __len__(self) -> int:
        return len(self.kf)


class _Keys:
    """Keyframe keys -> dense ids, in order of first appearance."""

    def __init__(self) -> None:
        self.ids: dict = {}
        self.keys: list = []

    def id(self, key) -> int:
        i = self.ids.get(key)
        if i is None:
            i = self.ids[key] = len(self.keys)
            self.keys.append(key)
        return i


_POW10_INT = np.array([10 ** i for i in range(19)], dtype=np.int64)
_POW10_F = np.array([10.0 ** i for i in range(19)], dtype=np.float64)  # exact up to 1e22
_MAX_EXACT = 1 << 53


def _parse_decimals(buf: np.ndarray, start: np.ndarray, end: np.ndarray):
    """Parse buf[start:end] fields as decimals; returns (value f64, has_dot bool, ok bool).

    `ok` is False where the vectorised path cannot guarantee Python's `float` result
    (characters other than an optional leading '-', digits and one '.', no digit, or more
    than 15 significant digits); the caller re-parses those with `float`.
    """
    n = len(start)
    value = np.zeros(n, np.float64)
    has_dot = np.zeros(n, bool)
    if n == 0:
        return value, has_dot, np.ones(0, bool)
    neg = buf[start] == 45  # '-'
    s = start + neg
    length = end - s
    width = int(length.max()) if n else 0
    ok = length > 0
    if width == 0 or width > 17:
        return value, has_dot, np.zeros(n, bool)
    # Right-align every field in a (n, width) matrix; columns left of a field read as '0'.
    cols = np.arange(width - 1, -1, -1, dtype=np.int64)        # offsets back from the end
    idx = end[:, None] - 1 - cols[None, :]
    inside = idx >= s[:, None]
    ch = np.where(inside, buf[np.where(inside, idx, 0)], 48).astype(np.int16) - 48
    dot = ch == -2
    digit = (ch >= 0) & (ch <= 9)
    ok &= np.all(digit | dot, axis=1)
    ndot = dot.sum(axis=1)
    ok &= (ndot <= 1) & (length > ndot)
    has_dot = ndot == 1
    d = np.where(digit, ch, 0).astype(np.int64)
    mant_full = d @ _POW10_INT[width - 1::-1][:width] if width else np.zeros(n, np.int64)
    # digits after the dot = number of columns right of it
    frac = np.where(has_dot, width - 1 - np.argmax(dot, axis=1), 0)
    hi = _POW10_INT[frac]
    mant = np.where(has_dot, (mant_full // (hi * 10)) * hi + mant_full % hi, mant_full)
    ok &= mant <= _MAX_EXACT
    value = mant / _POW10_F[frac]
    value = np.where(neg, -value, value)
    return value, has_dot, ok


def _iter_chunks(path, notes: list | None = None) -> Iterable[tuple[bytes, int]]:
    """Yield (chunk of whole lines, 1-based number of its first line), reading 8 MB at a time.

    Lines are what Python's universal newlines make of the file, as the official reader
    (`open(path)` + `csv.reader`) sees them: CRLF and a lone CR end a line as LF does, and
    chunks hold them as LF. A leading UTF-8 byte-order mark is removed and said in `notes`.
    A line longer than `MAX_CSV_LINE_BYTES` is refused before it is gathered.
    """
    max_line = MAX_CSV_LINE_BYTES.value
    line0 = 1
    carry = b""
    first = True
    with open(path, "rb") as f:
        while True:
            block = f.read(_CHUNK)
            if first:
                first = False
                if block.startswith(_BOM):
                    block = block[3:]
                    if notes is not None:
                        notes.append(_bom_note(path))
            eof = not block
            block = carry + block
            held = b""
            if b"\r" in block:
                if not eof and block.endswith(b"\r"):   # its LF may start the next block
                    block, held = block[:-1], b"\r"
                block = block.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if eof:   # a last line without its line end (blank lines are rows too, as for csv.reader)
                if block:
                    yield (block if block.endswith(b"\n") else block + b"\n"), line0
                return
            cut = block.rfind(b"\n")
            chunk, carry = block[: cut + 1], block[cut + 1:] + held
            if len(carry) > max_line:
                line = line0 + chunk.count(b"\n")
                check_limit(len(carry), MAX_CSV_LINE_BYTES, source=f"{path}:{line}", field="line length")
            if chunk:
                yield chunk, line0
                line0 += chunk.count(b"\n")


def read_ava_csv(path: str | os.PathLike, *, semantics: str = "activitynet-2019", columns: tuple = (7, 8),
                 allow_empty_rows: bool = False, class_whitelist: set | None = None,
                 drop_keys: set | None = None, only_keys: set | None = None,
                 empty_keys: list | None = None, notes: list | None = None) -> AvaTable:
    """Read an AVA CSV (ground truth or detections) into an `AvaTable`.

    The file is read as the official reader reads it (`csv.reader` over `open(path)`): any of
    LF, CRLF or lone CR ends a line (universal newlines), quotes and spaces mean what the csv
    module makes of them, fields convert with Python's `int` / `float`. Where the official
    reader would give a silently different result, humact says so instead: a leading UTF-8
    byte-order mark, which the official reader keeps in the first video id (so that
    keyframe matches nothing), is removed and reported in `notes`. Where it would fail,
    this fails with a message naming the file, the line and the field: a wrong number of
    columns, an empty line, a field that does not parse, bytes that are not UTF-8, a quoted
    field that runs over a line end (AVA fields never hold one), a line over
    `MAX_CSV_LINE_BYTES`. Action ids beyond +-2**53 (no label map has one; the official
    reader drops them) are read as 0, which no label map has either.

    Args:
        path: the CSV file.
        semantics: how timestamps become keyframe keys (see the module docstring).
        columns: the accepted numbers of columns for box rows.
        allow_empty_rows: accept 2-column `video_id,timestamp` rows (keyframes without people);
            their keys are appended to `empty_keys` (in file order) and they give no row.
        class_whitelist: if given, rows whose action id is not in it are dropped (as the
            official reader does, before a row can open a keyframe).
        drop_keys: keys whose rows are dropped (excluded keyframes).
        only_keys: if given, rows whose key is not in it are dropped.
        empty_keys: list that receives the keys of 2-column rows.
        notes: list that receives what the reader changed (the byte-order mark).

    Returns:
        the table; its `rows_in_file` counts the box rows before any was dropped.

    Raises:
        AvaFormatError: wrong column count, an unparsable field, not UTF-8 (file, line and field named).
        LimitError: a line longer than `MAX_CSV_LINE_BYTES`.
    """
    key_fn = _key_fn(semantics)
    keys = _Keys()
    path = os.fspath(path)
    out = _Growable(os.path.getsize(path))
    rows_in_file = 0
    for chunk, line0 in _iter_chunks(path, notes):
        if b"\"" in chunk or b" " in chunk or b"\t" in chunk:
            part = _parse_chunk_slow(chunk, line0, path, key_fn, columns, allow_empty_rows, empty_keys)
        else:
            part = _parse_chunk_fast(chunk, line0, path, semantics, key_fn, columns, allow_empty_rows, empty_keys)
        rkeys, kf_local, boxes, action, score = part
        rows_in_file += len(kf_local)
        keep = np.ones(len(kf_local), bool)
        if class_whitelist is not None and len(action):
            wl = np.fromiter(sorted(class_whitelist), np.int64)
            keep &= np.isin(action, wl)
        if drop_keys or only_keys is not None:
            bad = np.array([(k in drop_keys) if drop_keys else False for k in rkeys], bool)
            if only_keys is not None:
                bad |= np.array([k not in only_keys for k in rkeys], bool)
            if len(bad):
                keep &= ~bad[kf_local]
        if not keep.all():
            kf_local, boxes, action, score = kf_local[keep], boxes[keep], action[keep], score[keep]
        # Global ids in order of first appearance of a surviving row.
        if len(kf_local):
            first = np.unique(kf_local, return_index=True)
            order = first[0][np.argsort(first[1], kind="stable")]
            remap = np.zeros(len(rkeys), np.int32)
            for loc in order.tolist():
                remap[loc] = keys.id(rkeys[loc])
            kf = remap[kf_local]
        else:
            kf = np.zeros(0, np.int32)
        out.append(len(chunk), kf, boxes, action, score)
    return AvaTable(keys.keys, *out.arrays(), rows_in_file=rows_in_file)


class _Growable:
    """Column arrays filled chunk by chunk, sized from the file size and the first chunk's
    bytes per row, so that the rows are not copied again at the end (and memory stays low)."""

    def __init__(self, file_size: int) -> None:
        self.file_size = file_size
        self.n = 0
        self.cols = None

    def append(self, nbytes: int, kf, boxes, action, score) -> None:
        m = len(kf)
        if self.cols is None:
            cap = int(self.file_size / max(nbytes, 1) * m * 1.02) + 1024
            self.cols = [np.empty(cap, np.int32), np.empty((cap, 4)), np.empty(cap, np.int32), np.empty(cap)]
        if self.n + m > len(self.cols[0]):
            cap = int((self.n + m) * 1.25) + 1024
            self.cols = [np.concatenate([c[:self.n], np.empty((cap - self.n,) + c.shape[1:], c.dtype)])
                         for c in self.cols]
        for c, v in zip(self.cols, (kf, boxes, action, score)):
            c[self.n:self.n + m] = v
        self.n += m

    def arrays(self):
        if self.cols is None:
            return np.zeros(0, np.int32), np.zeros((0, 4)), np.zeros(0, np.int32), np.zeros(0)
        return tuple(c[:self.n] for c in self.cols)


_MAX_EXACT_ID = 1 << 53   # action ids beyond this magnitude are read as 0 (never a label-map id)


def _decode(data: bytes, path, line: int, what: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AvaFormatError(f"{path}:{line}: {what}: not UTF-8 (byte 0x{data[e.start]:02x}, {e.reason})") from None


def _parse_chunk_slow(chunk, line0, path, key_fn, columns, allow_empty_rows, empty_keys):
    """Python `csv` + `float`/`int` on one chunk: the official reader's own conversions."""
    rkeys: list = []
    local: dict = {}
    kf, boxes, action, score = [], [], [], []
    try:
        text = chunk.decode("utf-8")
    except UnicodeDecodeError as e:
        line = line0 + chunk.count(b"\n", 0, e.start)
        raise AvaFormatError(f"{path}:{line}: not UTF-8 (byte 0x{chunk[e.start]:02x}, {e.reason})") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    i = line0 - 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            raise AvaFormatError(f"{path}:{line0 + reader.line_num - 1}: not a CSV row ({e})") from None
        i += 1
        where = f"{path}:{i}"
        if reader.line_num != i - line0 + 1:
            raise AvaFormatError(f"{where}: a quoted field runs over the end of the line (AVA fields hold "
                                 "no line breaks; an unclosed quote?)")
        if allow_empty_rows and len(row) == 2:
            if empty_keys is not None:
                empty_keys.append(key_fn(row[0], row[1], where))
            continue
        if len(row) not in columns:
            raise AvaFormatError(f"{where}: expected {' or '.join(map(str, columns))} columns, got {len(row)}")
        k = key_fn(row[0], row[1], where)
        j = local.get(k)
        if j is None:
            j = local[k] = len(rkeys)
            rkeys.append(k)
        try:
            b = [float(v) for v in row[2:6]]
        except ValueError:
            raise AvaFormatError(f"{where}: fields x1,y1,x2,y2: expected numbers, got "
                                 f"{short_repr(row[2:6], 120)}") from None
        try:
            a = int(row[6])
        except ValueError:
            raise AvaFormatError(f"{where}: field action_id: expected an integer, got {short_repr(row[6])}") from None
        try:
            s = float(row[7]) if len(row) == 8 else 1.0
        except ValueError:
            raise AvaFormatError(f"{where}: field score: expected a number, got {short_repr(row[7])}") from None
        kf.append(j), boxes.append(b), action.append(a if -_MAX_EXACT_ID <= a <= _MAX_EXACT_ID else 0)
        score.append(s)
    return (rkeys, np.array(kf, np.int64), np.array(boxes, np.float64).reshape(-1, 4),
            np.array(action, np.int64), np.array(score, np.float64))


_FIELD_NAMES = ("video_id", "timestamp", "x1", "y1", "x2", "y2", "action_id", "score/person_id")


_PAD = 32  # bytes appended to a chunk so that fixed-width windows never run past its end


def _parse_column(bufp: np.ndarray, start: np.ndarray, end: np.ndarray):
    """Parse bufp[start:end] fields as decimals; returns (value f64, has_dot bool, ok bool).

    Fast when the column has one layout (the same number of digits after the dot, as any
    `%.Nf` writer gives; integers of any width): every field is read as the fixed-width
    window of bytes that ends where it ends (one gather), its digits form an integer
    mantissa (a float64 dot product of integers < 2**53, hence exact) and the value is
    mantissa / 10**decimals. Otherwise it falls back to `_parse_decimals`.
    """
    n = len(start)
    if n == 0:
        return np.zeros(0), np.zeros(0, bool), np.ones(0, bool)
    length = end - start
    width = int(length.max())
    first = bytes(bufp[start[0]:end[0]])
    q = len(first) - 1 - first.find(b".") if b"." in first else -1  # dot offset from the end
    ndig = width - (q >= 0)
    if width == 0 or ndig > 15 or int((end - width).min()) < 0 or (bufp[start] == 45).any():
        return _parse_decimals(bufp, start, end)
    mat = np.lib.stride_tricks.sliding_window_view(bufp, width)[end - width]   # (n, width), right-aligned
    dig_cols = [j for j in range(width) if j != width - 1 - q]
    d = mat[:, dig_cols] - np.uint8(48)                  # uint8: anything but a digit wraps above 9
    if not bool((length == width).all()):
        # columns left of a shorter field belong to the previous field: read them as 0
        d = np.where(np.arange(width)[dig_cols] >= (width - length)[:, None], d, np.uint8(0))
    ok = bool(d.max() <= 9) and bool((length > (q >= 0)).all())
    if q >= 0:
        ok = ok and bool((mat[:, width - 1 - q] == 46).all()) and bool((length > q).all())
    if not ok:
        return _parse_decimals(bufp, start, end)
    mant = np.einsum("ij,j->i", d.astype(np.float64), _POW10_F[ndig - 1::-1][:ndig])
    value = mant / _POW10_F[max(q, 0)]
    return value, np.full(n, q >= 0), np.ones(n, bool)


def _parse_chunk_fast(chunk, line0, path, semantics, key_fn, columns, allow_empty_rows, empty_keys):
    buf = np.frombuffer(chunk + b"\n" * _PAD, np.uint8)
    groups = None
    # ',' (44) and '\n' (10) are the only bytes below 45 in a plain AVA file ('-', '.',
    # digits and id characters are all >= 45): one pass finds every delimiter, and when the
    # chunk has k commas per line (bytes.count) they reshape to (lines, k + 1).
    n_nl, n_cm = chunk.count(b"\n"), chunk.count(b",")
    for k in sorted({c - 1 for c in columns}):
        if n_nl and n_cm == k * n_nl:
            delim = np.flatnonzero(buf[:len(chunk)] < 45)
            if len(delim) == (k + 1) * n_nl:
                d2 = delim.reshape(-1, k + 1)
                if (buf[d2[:, k]] == 10).all():   # so no other delimiter is a newline
                    nl = d2[:, k]
                    c2 = d2[:, :k]
                    groups = [(slice(None), c2)]
            break
    if groups is None:
        nl = np.flatnonzero(buf[:len(chunk)] == 10)
        cm = np.flatnonzero(buf[:len(chunk)] == 44)
    nlines = len(nl)
    starts = np.empty(nlines, np.int64)
    starts[0] = 0
    starts[1:] = nl[:-1] + 1
    lines = np.arange(nlines) + line0
    long = (nl - starts) > MAX_CSV_LINE_BYTES.value
    if long.any():
        i = int(np.argmax(long))
        check_limit(int(nl[i] - starts[i]), MAX_CSV_LINE_BYTES, source=f"{path}:{lines[i]}", field="line length")
    if groups is not None:
        row_sel = np.arange(nlines)
    else:
        blank = nl == starts
        first_comma = np.searchsorted(cm, starts)
        ncomma = np.searchsorted(cm, nl) - first_comma
        if blank.any():
            i = int(np.argmax(blank))
            raise AvaFormatError(f"{path}:{lines[i]}: empty line (expected {' or '.join(map(str, columns))} columns)")
        allowed = {c - 1 for c in columns} | ({1} if allow_empty_rows else set())
        bad = ~np.isin(ncomma, sorted(allowed))
        if bad.any():
            i = int(np.argmax(bad))
            raise AvaFormatError(f"{path}:{lines[i]}: expected {' or '.join(map(str, columns))} columns, "
                                 f"got {ncomma[i] + 1}")
        if allow_empty_rows and (ncomma == 1).any():
            for i in np.flatnonzero(ncomma == 1).tolist():
                video, ts = _decode(chunk[starts[i]:nl[i]], path, lines[i], "fields video_id,timestamp").split(",")
                if empty_keys is not None:
                    empty_keys.append(key_fn(video, ts, f"{path}:{lines[i]}"))
        row_sel = np.flatnonzero(ncomma >= 6)
        groups = []
        for k in (6, 7):
            sel = np.flatnonzero(ncomma[row_sel] == k)
            if len(sel):
                groups.append((sel, cm[first_comma[row_sel[sel]][:, None] + np.arange(k)]))
    n = len(row_sel)
    rstart, rend = starts[row_sel], nl[row_sel]
    boxes = np.empty((n, 4), np.float64)
    action = np.empty(n, np.int64)
    score = np.ones(n, np.float64)
    key_end = np.empty(n, np.int64)
    for sel, c in groups:
        k = c.shape[1]
        rows_of = row_sel[sel]
        key_end[sel] = c[:, 1]
        for col in range(2, k + 1):
            fs = c[:, col - 1] + 1
            fe = c[:, col] if col < k else rend[sel]
            v, dot, ok = _parse_column(buf, fs, fe)
            if not ok.all():
                for r in np.flatnonzero(~ok).tolist():
                    line = lines[rows_of[r]]
                    t = _decode(chunk[fs[r]:fe[r]], path, line, f"field {_FIELD_NAMES[col]}")
                    try:
                        if col == 6:
                            a = int(t)
                            v[r] = a if -_MAX_EXACT_ID <= a <= _MAX_EXACT_ID else 0
                        else:
                            v[r] = float(t)
                    except ValueError:
                        raise AvaFormatError(f"{path}:{line}: field {_FIELD_NAMES[col]}: expected "
                                             f"a{'n integer' if col == 6 else ' number'}, got {short_repr(t)}") from None
                    dot[r] = col != 6 and not t.strip().lstrip("+-").isdigit()
            if col <= 5:
                boxes[sel, col - 2] = v
            elif col == 6:
                if dot.any():
                    r = int(np.argmax(dot))
                    raise AvaFormatError(f"{path}:{lines[rows_of[r]]}: field action_id: expected an integer, "
                                         f"got {short_repr(chunk[fs[r]:fe[r]].decode('utf-8', 'replace'))}")
                action[sel] = v.astype(np.int64)
            else:
                score[sel] = v
    # Keyframe keys: rows of one keyframe are usually consecutive; compare each row's
    # "video_id,timestamp" bytes with the previous row's and make one Python key per run.
    if n:
        klen = key_end - rstart
        change = np.ones(n, bool)
        change[1:] = klen[1:] != klen[:-1]
        kw = int(klen.max())
        if kw <= _PAD:   # one gather of fixed-width windows, bytes past the key zeroed
            m = np.lib.stride_tricks.sliding_window_view(buf, kw)[rstart]
            m = np.where(np.arange(kw) < klen[:, None], m, np.uint8(0))
            change[1:] |= (m[1:] != m[:-1]).any(axis=1)
        else:            # long ids: compare the key bytes in Python (cost linear in the bytes)
            texts = [chunk[a:b] for a, b in zip(rstart.tolist(), key_end.tolist())]
            change[1:] |= np.fromiter((x != y for x, y in zip(texts[1:], texts[:-1])), bool, n - 1)
        run_start = np.flatnonzero(change)
        local: dict = {}
        by_text: dict = {}
        rkeys: list = []
        run_kf = np.empty(len(run_start), np.int64)
        for i, r in enumerate(run_start.tolist()):
            text = chunk[rstart[r]:key_end[r]]
            j = by_text.get(text)
            if j is None:
                video, ts = _decode(text, path, lines[row_sel[r]], "fields video_id,timestamp").split(",")
                key = key_fn(video, ts, f"{path}:{lines[row_sel[r]]}")
                j = local.get(key)
                if j is None:
                    j = local[key] = len(rkeys)
                    rkeys.append(key)
                by_text[text] = j
            run_kf[i] = j
        kf_local = np.repeat(run_kf, np.diff(np.append(run_start, n)))
    else:
        rkeys, kf_local = [], np.zeros(0, np.int64)
    return rkeys, kf_local, boxes, action, score


# --------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------

@dataclass
class AvaDetections:
    """Detections to write as an AVA CSV, one row per (person box, action).

    Attributes:
        video: (n,) video ids (str).
        timestamp: (n,) int keyframe second.
        boxes: (n, 4) float x1, y1, x2, y2 normalised to [0, 1] by the frame's width / height.
        action: (n,) int 1-based action id.
        score: (n,) float confidence.
    """

    video: np.ndarray
    timestamp: np.ndarray
    boxes: np.ndarray
    action: np.ndarray
    score: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.video)
        self.video = np.asarray(self.video, dtype=object)
        self.timestamp = np.asarray(self.timestamp)
        self.boxes = np.asarray(self.boxes, np.float64).reshape(-1, 4)
        self.action = np.asarray(self.action, np.int64)
        self.score = np.asarray(self.score, np.float64)
        for name in ("timestamp", "action", "score"):
            if getattr(self, name).shape != (n,):
                raise ValueError(f"{name}: expected shape ({n},), got {getattr(self, name).shape}")
        if self.boxes.shape != (n, 4):
            raise ValueError(f"boxes: expected shape ({n}, 4), got {self.boxes.shape}")

    @classmethod
    def from_action_scores(cls, video: str, timestamp: int, boxes_xyxy, frame_size: tuple[int, int],
                           actions, class_ids: list[int]) -> "AvaDetections":
        """Every (person, class) pair of an `ActionScores` at one keyframe.

        Args:
            video, timestamp: the keyframe.
            boxes_xyxy: (M, 4) person boxes in pixels, one per row of `actions.scores`.
            frame_size: (width, height) in pixels, to normalise the boxes.
            actions: `humact.types.ActionScores` with M rows and C labels.
            class_ids: the AVA action id of each of the C labels.
        """
        scores = np.asarray(actions.scores, np.float64)
        m, c = scores.shape
        if len(class_ids) != c:
            raise ValueError(f"class_ids: expected {c} ids (one per label), got {len(class_ids)}")
        b = np.asarray(boxes_xyxy, np.float64).reshape(-1, 4)
        if len(b) != m:
            raise ValueError(f"boxes_xyxy: expected ({m}, 4), got {b.shape}")
        w, h = frame_size
        norm = np.clip(b / np.array([w, h, w, h], np.float64), 0.0, 1.0)
        return cls(np.full(m * c, video, object), np.full(m * c, timestamp), np.repeat(norm, c, axis=0),
                   np.tile(np.asarray(class_ids, np.int64), m), scores.ravel())


def write_ava_detections(path: str | os.PathLike, dets: AvaDetections, decimals: int = 4,
                         box_decimals: int = 3) -> None:
    """Write detections as `video_id,timestamp,x1,y1,x2,y2,action_id,score` (atomically).

    Timestamps are written `%04d`; boxes with `box_decimals`, scores with `decimals`.
    """
    bf = f"%.{box_decimals}f"
    sf = f"%.{decimals}f"
    rowf = f"%s,%04d,{bf},{bf},{bf},{bf},%d,{sf}\n"
    with atomic_write(path) as f:
        for v, t, b, a, s in zip(dets.video.tolist(), dets.timestamp.tolist(), dets.boxes.tolist(),
                                 dets.action.tolist(), dets.score.tolist()):
            f.write(rowf % (v, int(t), b[0], b[1], b[2], b[3], a, s))


# --------------------------------------------------------------------------------------
# Frame-mAP
# --------------------------------------------------------------------------------------

def precision_recall(scores: np.ndarray, tp: np.ndarray, num_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative precision and recall over detections sorted by `np.argsort(scores)[::-1]`.

    Same computation (and the same tie order) as the official `compute_precision_recall`.
    """
    order = np.argsort(scores)[::-1]
    t = tp.astype(int)[order]
    ctp = np.cumsum(t)
    cfp = np.cumsum(1 - t)
    return ctp.astype(float) / (ctp + cfp), ctp.astype(float) / num_gt


def average_precision(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC all-point interpolated AP: pad, make precision non-increasing, sum recall steps x precision."""
    if precision.size == 0:
        return 0.0
    recall = np.concatenate([[0], recall, [1]])
    precision = np.concatenate([[0], precision, [0]])
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    idx = np.where(recall[1:] != recall[:-1])[0] + 1
    return float(np.sum((recall[idx] - recall[idx - 1]) * precision[idx]))


@dataclass
class AvaResult:
    """Frame-mAP and its parts.

    Attributes:
        mAP: mean AP over label-map classes with ground truth.
        ap: {class id: AP} for those classes (AP 0 for a class with no detection).
        names: {class id: name}.
        num_gt: {class id: number of ground-truth (box, class) instances}.
        curves: {class id: (precision, recall)} arrays in ranked order, for plots.
        stats: counts (keyframes, rows kept, keyframes replayed for ties, ...).
        notes: what the user should know about the inputs (a byte-order mark removed, no
            detection on a ground-truth keyframe, ...); `humact eval ava` prints them as warnings.
    """

    mAP: float
    ap: dict
    names: dict
    num_gt: dict
    curves: dict = field(repr=False, default_factory=dict)
    stats: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {"mAP": self.mAP, "per_class": [
            {"id": c, "name": self.names[c], "ap": self.ap[c], "num_gt": self.num_gt[c]} for c in self.ap],
            "stats": self.stats, "notes": list(self.notes)}


def _group_starts(sorted_keys: np.ndarray) -> np.ndarray:
    if len(sorted_keys) == 0:
        return np.zeros(0, np.int64)
    change = np.ones(len(sorted_keys), bool)
    change[1:] = sorted_keys[1:] != sorted_keys[:-1]
    return np.flatnonzero(change)


def _heap_order(rows: list[tuple], capacity: int) -> list[tuple]:
    """The official per-keyframe reader: heap of (score, action, y1, x1, y2, x2) tuples in
    file order (capped at `capacity` rows if > 0), then a stable sort of the heap's array by -score."""
    heap: list = []
    for t in rows:
        if capacity < 1 or len(heap) < capacity:
            heapq.heappush(heap, t)
        elif t[0] > heap[0][0]:
            heapq.heapreplace(heap, t)
    return sorted(heap, key=lambda t: -t[0])


class _Same:
    """A tuple element that compares equal to every other: carries a row's identity through
    `heapq` without changing any comparison the official (identity-free) tuples make."""

    __slots__ = ("i",)

    def __init__(self, i: int) -> None:
        self.i = i

    def __lt__(self, other) -> bool:
        return False

    def __gt__(self, other) -> bool:
        return False

    def __eq__(self, other) -> bool:
        return True

    __hash__ = object.__hash__


def _replay_detections(det: AvaTable, keep_rows, which, capacity, kf, score, act, boxes):
    """Overwrite the rows of keyframes `which` with the official reader's heap order.

    The heap keeps min(rows, capacity) rows, as many as the fast path kept, so each
    keyframe's segment (rows are grouped by ascending keyframe id) is rewritten in place.
    """
    wset = np.zeros(len(det.keys), bool)
    wset[which] = True
    drow = np.flatnonzero(keep_rows & wset[det.kf])
    drow = drow[np.argsort(det.kf[drow], kind="stable")]  # file order inside each keyframe
    ds = _group_starts(det.kf[drow])
    seg = np.searchsorted(kf, det.kf[drow[ds]])
    for a, z, at in zip(ds.tolist(), np.append(ds[1:], len(drow)).tolist(), seg.tolist()):
        r = drow[a:z]
        b = det.boxes[r]
        rows = list(zip(det.score[r].tolist(), det.action[r].tolist(), b[:, 1].tolist(), b[:, 0].tolist(),
                        b[:, 3].tolist(), b[:, 2].tolist()))
        kept = _heap_order(rows, capacity)
        sl = slice(at, at + len(kept))
        if not (kf[sl] == kf[at]).all() or (at + len(kept) < len(kf) and kf[at + len(kept)] == kf[at]):
            raise AssertionError("heap replay kept a different number of rows than the fast path")
        arr = np.array(kept, np.float64).reshape(-1, 6)
        score[sl] = arr[:, 0]
        act[sl] = arr[:, 1]
        boxes[sl] = arr[:, [3, 2, 5, 4]]   # (score, action, y1, x1, y2, x2) -> x1, y1, x2, y2
    return kf, score, act, boxes


def _replay_ground_truth(g_kf, g_cls, g_boxes, g_score) -> np.ndarray:
    """Permutation putting ground-truth rows (file order) in the official heap order per keyframe."""
    o = np.argsort(g_kf, kind="stable")
    out = []
    gs = _group_starts(g_kf[o])
    for a, z in zip(gs.tolist(), np.append(gs[1:], len(o)).tolist()):
        r = o[a:z]
        b = g_boxes[r]
        rows = zip(g_score[r].tolist(), g_cls[r].tolist(), b[:, 1].tolist(), b[:, 0].tolist(),
                   b[:, 3].tolist(), b[:, 2].tolist(), map(_Same, r.tolist()))
        out.extend(t[6].i for t in _heap_order(list(rows), 0))
    return np.array(out, np.int64)


def _keyframe_score_order(kf: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Stable order by (keyframe, descending score): `np.lexsort((-score, kf))`, faster.

    Scores written with a fixed number of decimals d are integers m / 10**d; then one
    stable sort of the int64 key (kf, -m) does it, and it is cheap because keyframe ids
    already ascend in file order. Other scores take the general lexsort.
    """
    n = len(kf)
    if n == 0:
        return np.zeros(0, np.int64)
    kf_bits = max(int(kf.max()), 1).bit_length()
    sample = score[:: max(1, n // 4096)]
    for d in (2, 3, 4, 5, 6, 7, 8):
        if not np.array_equal(np.rint(sample * _POW10_F[d]) / _POW10_F[d], sample):
            continue  # a cheap look at a sample first: most d fail there
        m = np.rint(score * _POW10_F[d])
        if not np.array_equal(m / _POW10_F[d], score):
            continue
        lo, hi = m.min(), m.max()
        # |m| < 2**52 keeps distinct m distinct doubles, so equal scores <=> equal m
        if (hi - lo + 1) >= 2.0 ** (62 - kf_bits) or max(-lo, hi) >= 2.0 ** 52:
            break
        key = (kf.astype(np.int64) << (62 - kf_bits)) | (hi - m).astype(np.int64)
        return np.argsort(key, kind="stable")
    return np.lexsort((-score, kf))


def _match(kf, cls, boxes, gt_kf, gt_cls, gt_boxes):
    """Greedy matching of detections already in official order (grouped by keyframe).

    Returns (tp (n,) bool, tied (n,) bool): `tied` marks detections whose best IoU
    (>= threshold) is shared by ground-truth boxes that differ, where the ground truth's
    own order decides.
    """
    n = len(kf)
    tp = np.zeros(n, bool)
    tied = np.zeros(n, bool)
    if n == 0 or len(gt_kf) == 0:
        return tp, tied
    ncls = int(max(cls.max(), gt_cls.max())) + 1
    gkey = gt_kf.astype(np.int64) * ncls + gt_cls
    gorder = np.argsort(gkey, kind="stable")
    gkey_s = gkey[gorder]
    dkey = kf.astype(np.int64) * ncls + cls
    lo = np.searchsorted(gkey_s, dkey, "left")
    cnt = np.searchsorted(gkey_s, dkey, "right") - lo
    has = np.flatnonzero(cnt > 0)
    if len(has) == 0:
        return tp, tied
    c = cnt[has]
    det_of_pair = np.repeat(has, c)
    offs = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
    g = gorder[np.repeat(lo[has], c) + offs]
    # IoU exactly as np_box_ops.iou, boxes as (y1, x1, y2, x2)
    d = boxes[det_of_pair]
    t = gt_boxes[g]
    dy1, dx1, dy2, dx2 = d[:, 1], d[:, 0], d[:, 3], d[:, 2]
    ty1, tx1, ty2, tx2 = t[:, 1], t[:, 0], t[:, 3], t[:, 2]
    ih = np.maximum(0.0, np.minimum(dy2, ty2) - np.maximum(dy1, ty1))
    iw = np.maximum(0.0, np.minimum(dx2, tx2) - np.maximum(dx1, tx1))
    inter = ih * iw
    union = ((dy2 - dy1) * (dx2 - dx1)) + ((ty2 - ty1) * (tx2 - tx1)) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / union
    pstart = np.cumsum(c) - c
    # np.argmax semantics: NaN wins, else first maximum
    nan = np.isnan(iou)
    iou_k = np.where(nan, np.inf, iou)
    best = np.maximum.reduceat(iou_k, pstart)
    is_best = iou_k == np.repeat(best, c)
    first_best = np.minimum.reduceat(np.where(is_best, np.arange(len(g)), len(g)), pstart)
    best_iou = iou[first_best]
    best_g = g[first_best]
    cand = best_iou >= IOU_THRESHOLD
    # several different boxes at the best IoU: the ground truth's order decides
    nbest = np.add.reduceat(is_best.astype(np.int64), pstart)
    multi = (nbest > 1) & cand
    if multi.any():
        same = np.all(t == t[first_best][np.repeat(np.arange(len(c)), c)], axis=1) | ~is_best
        all_same = np.logical_and.reduceat(same, pstart)
        tied[has[multi & ~all_same]] = True
    # first claimant (in detection order) of each box is the true positive
    cd = has[cand]
    if len(cd):
        _, first = np.unique(best_g[cand], return_index=True)
        tp[cd[first]] = True
    return tp, tied


def evaluate_ava(gt: AvaTable, det: AvaTable, labels: LabelMap, *, semantics: str = "activitynet-2019",
                 cap: int | None = DEFAULT_CAP, gt_empty_keys: list | None = None) -> AvaResult:
    """Frame-mAP of `det` against `gt`, exactly as the official evaluator (module docstring).

    Args:
        gt: ground truth read with `read_ava_csv(..., class_whitelist=label ids, drop_keys=exclusions)`.
        det: detections read the same way (for activitynet-head, `only_keys` = the ground truth's keys).
        labels: the label map; classes outside it must already be dropped from both tables.
        semantics: "activitynet-2019" or "activitynet-head".
        cap: rows kept per keyframe (highest scores), None for no cap.
        gt_empty_keys: activitynet-head: keys of 2-column ground-truth rows (scored keyframes).
    """
    _key_fn(semantics)
    capacity = 0 if cap is None else int(cap)
    num_class = check_limit(max(labels.ids), MAX_CLASS_ID, source="label map", field="id")
    # ---- ground truth: map its keyframes to detection keyframe ids ---------------------
    det_id = {k: i for i, k in enumerate(det.keys)}
    gt_keys_all = set(gt.keys) | set(gt_empty_keys or [])
    gt2det = np.array([det_id.get(k, -1) for k in gt.keys], np.int64)
    gkf = gt2det[gt.kf] if len(gt) else np.zeros(0, np.int64)
    num_gt = np.bincount(gt.action, minlength=num_class + 1)[1:] if len(gt) else np.zeros(num_class, np.int64)
    # ---- detections: keep only the keyframes the official code scores -------------------
    if semantics == "activitynet-head":
        scored = np.array([k in gt_keys_all for k in det.keys], bool)
        keep_rows = scored[det.kf] if len(det) else np.zeros(0, bool)
    else:
        keep_rows = np.ones(len(det), bool)
    rows = np.flatnonzero(keep_rows) if not keep_rows.all() else None
    # group by keyframe, then by descending score, equal scores in file order
    order = _keyframe_score_order(det.kf if rows is None else det.kf[rows],
                                  det.score if rows is None else det.score[rows])
    if rows is not None:
        order = rows[order]
    kf = det.kf[order]
    sc = det.score[order]
    starts = _group_starts(kf)
    sizes = np.diff(np.append(starts, len(kf)))
    rank = np.arange(len(kf)) - np.repeat(starts, sizes)
    replay = np.zeros(len(det.keys), bool)
    if capacity > 0:
        big = sizes > capacity
        b = starts[big]
        cut_tie = sc[b + capacity - 1] == sc[b + capacity]
        replay[kf[b[cut_tie]]] = True
        kept = rank < capacity
    else:
        kept = np.ones(len(kf), bool)
    order, kf, sc = order[kept], kf[kept], sc[kept]
    act = det.action[order]
    # equal scores of one class on one keyframe: the heap decides their order
    same = np.zeros(len(kf), bool)
    same[1:] = (kf[1:] == kf[:-1]) & (sc[1:] == sc[:-1])
    if same.any():
        tie_run = np.cumsum(~same)  # run id of equal (keyframe, score)
        in_tie = same.copy()
        in_tie[:-1] |= same[1:]
        ti = np.flatnonzero(in_tie)
        pair = tie_run[ti].astype(np.int64) * (num_class + 2) + act[ti]
        u, cnts = np.unique(pair, return_counts=True)
        if (cnts > 1).any():
            dup_runs = set((u[cnts > 1] // (num_class + 2)).tolist())
            rep_rows = ti[np.isin(tie_run[ti], list(dup_runs))]
            replay[kf[rep_rows]] = True
    boxes = det.boxes[order]
    score = sc
    # ---- replay the heap for the keyframes where ties decide the order ----------------------
    which = np.flatnonzero(replay)
    if len(which):
        kf, score, act, boxes = _replay_detections(det, keep_rows, which, capacity, kf, score, act, boxes)
    # invalid boxes are dropped after the cap
    valid = (boxes[:, 1] < boxes[:, 3]) & (boxes[:, 0] < boxes[:, 2])
    kf, score, act, boxes = kf[valid], score[valid], act[valid], boxes[valid]
    act = act.astype(np.int64)
    gmask = gkf >= 0
    g_kf, g_cls, g_boxes, g_score = gkf[gmask], gt.action[gmask].astype(np.int64), gt.boxes[gmask], gt.score[gmask]
    tp, tied = _match(kf, act, boxes, g_kf, g_cls, g_boxes)
    n_gt_replayed = 0
    if tied.any():
        # the ground truth's heap order decides which box a tied detection takes
        wk = np.unique(kf[tied])
        n_gt_replayed = len(wk)
        gsel = np.flatnonzero(np.isin(g_kf, wk))
        perm = _replay_ground_truth(g_kf[gsel], g_cls[gsel], g_boxes[gsel], g_score[gsel])
        gsel = gsel[perm]
        dsel = np.flatnonzero(np.isin(kf, wk))
        tp_sub, _ = _match(kf[dsel], act[dsel], boxes[dsel], g_kf[gsel], g_cls[gsel], g_boxes[gsel])
        tp[dsel] = tp_sub
    # ---- per class, in the official concatenation order ------------------------------------
    corder = np.argsort(act, kind="stable")
    act_s = act[corder]
    cstart = np.searchsorted(act_s, np.arange(1, num_class + 2))
    ap, curves, ngt = {}, {}, {}
    names = labels.as_dict()
    ap_full = np.full(num_class, np.nan)
    for cid in labels.ids:
        n_gt = int(num_gt[cid - 1])
        if n_gt == 0:
            continue
        sl = corder[cstart[cid - 1]:cstart[cid]]
        s_c, t_c = score[sl], tp[sl]
        if len(s_c):
            p, r = precision_recall(s_c, t_c, n_gt)
        else:
            p, r = np.zeros(0), np.zeros(0)
        ap_full[cid - 1] = average_precision(p, r)
        ap[cid] = float(ap_full[cid - 1])
        curves[cid] = (p, r)
        ngt[cid] = n_gt
    mAP = float(np.nanmean(ap_full)) if ap else float("nan")
    stats = {"keyframes_scored": int(len(np.unique(kf))), "detection_rows_scored": int(len(kf)),
             "keyframes_replayed_for_ties": int(len(which)), "keyframes_gt_replayed": int(n_gt_replayed), "ground_truth_rows": int(len(gt)),
             "semantics": semantics, "cap": cap}
    return AvaResult(mAP, ap, names, ngt, curves, stats)


def evaluate_ava_files(gt_csv, det_csv, label_map, exclusions=None, *, semantics: str = "activitynet-2019",
                       cap: int | None = DEFAULT_CAP) -> AvaResult:
    """Read the files and evaluate (see `evaluate_ava`).

    Inputs that make the number meaningless are not scored silently. Ground truth without a
    box of a label-map class (an empty file, or every row excluded or of another class)
    leaves the mAP undefined: an `AvaFormatError` naming the file. Detections that cannot
    score (an empty file, no row of a label-map class, no detection on a ground-truth
    keyframe) give the true mAP of 0 with a note in `AvaResult.notes` saying why; so does
    anything the readers changed (a UTF-8 byte-order mark removed).

    Args:
        gt_csv, det_csv: ground-truth and detection CSV paths.
        label_map: pbtxt path or a `LabelMap`.
        exclusions: excluded-timestamps CSV (activitynet-2019 only) or None.
    """
    notes: list = []
    if semantics == "activitynet-head" and exclusions is not None:
        raise UsageError("exclusions: activitynet-head semantics take no exclusion file")
    _key_fn(semantics)
    labels = label_map if isinstance(label_map, LabelMap) else read_label_map(label_map, notes=notes)
    whitelist = set(labels.ids)
    excluded = read_exclusions(exclusions, semantics, notes=notes) if exclusions is not None else set()
    empty: list = []
    gt = read_ava_csv(gt_csv, semantics=semantics, class_whitelist=whitelist, drop_keys=excluded,
                      allow_empty_rows=semantics == "activitynet-head", empty_keys=empty, notes=notes)
    if len(gt) == 0:
        if gt.rows_in_file == 0:
            why = "has no box rows" + (" (only keyframes without people)" if empty else " (the file is empty)")
        else:
            why = (f"has {gt.rows_in_file:,} box rows but none of a label-map class"
                   + (" outside the excluded keyframes" if excluded else ""))
        raise AvaFormatError(f"{gt_csv}: the ground truth {why}: the mAP is undefined")
    only = (set(gt.keys) | set(empty)) if semantics == "activitynet-head" else None
    det = read_ava_csv(det_csv, semantics=semantics, columns=(8,), class_whitelist=whitelist,
                       drop_keys=excluded, only_keys=only, notes=notes)
    if det.rows_in_file == 0:
        notes.append(f"{det_csv}: no detection rows (the file is empty): every AP is 0")
    elif len(det) == 0:
        notes.append(f"{det_csv}: none of its {det.rows_in_file:,} rows is of a label-map class"
                     + (" on a ground-truth keyframe" if only is not None else "")
                     + (" outside the excluded keyframes" if excluded else "") + ": every AP is 0")
    elif not set(det.keys) & set(gt.keys):
        notes.append(f"{det_csv}: none of its {len(det.keys):,} keyframes is a keyframe of the ground truth "
                     f"{gt_csv} (compare the video ids and timestamps): every AP is 0")
    result = evaluate_ava(gt, det, labels, semantics=semantics, cap=cap, gt_empty_keys=empty)
    result.notes = notes
    return result
