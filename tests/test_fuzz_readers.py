"""Property tests for every reader of user files: a valid value or one `HumactError` naming the file.

The contract (`assert_reader_contract`): whatever bytes a file holds, the reader either
returns (and the value passes the target's own check) or raises `humact.errors.HumactError`
whose message names the file -- never another exception (nor a numpy RuntimeWarning, the
sign of a silently wrong value), never more than `MAX_PEAK_BYTES`
of traced memory (Python and numpy allocations) or `MAX_SECONDS`. Inputs come from
hypothesis: grammar-built files of each format, random mutations of valid files (bytes
flipped, inserted, deleted, truncated; tokens such as a BOM, CR, NUL, NaN, 400-digit
numbers, deep nesting spliced in), random JSON values put in place of valid subtrees, and
hand-rolled pickle opcode programs. At most 200 examples per target.

To add a reader (a config file, a safetensors sidecar), write one test:

    @FUZZ
    @given(data=mutated(VALID_CONFIG_BYTES))
    def test_config_reader_keeps_the_contract(data):
        assert_reader_contract(load_config, data, target="config", name="run.toml")

Run with `-s` to see how many examples of each target parsed, were refused with which
error, or broke the contract (`UNINTENDED` must stay empty).
"""

from __future__ import annotations

import collections
import csv
import io
import json
import pickle
import shutil
import struct
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bad_inputs
from humact.errors import HumactError
from test_eval_tps import tps_case
from test_results_io import _result

MAX_PEAK_BYTES = 64 << 20      # the 8 MB read buffer of the CSV reader and friends; a bomb is gigabytes
MAX_SECONDS = 10.0
OUTCOMES: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
UNINTENDED: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)

FUZZ = settings(max_examples=200, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
FUZZ_SLOW = settings(FUZZ, max_examples=100)


def assert_reader_contract(reader: Callable[[Path], Any], data: bytes | dict, *, target: str, name: str = "input",
                           check: Callable[[Any], None] | None = None, base: type = HumactError) -> Any:
    """Write `data` to a fresh folder and call `reader` on it; assert the contract (module docstring).

    Args:
        reader: called with the path of the file (`data` bytes) or of the folder (`data` a dict
            {relative path: bytes}).
        data: the file's bytes, or several files.
        target: the name the outcome is counted under.
        name: the file's name (single-file `data`).
        check: called on a returned value; asserts it is valid.
        base: the error class every refusal must be an instance of.
    Returns:
        what the reader returned, or None if it refused the input.
    """
    folder = Path(tempfile.mkdtemp(prefix="fuzz_"))
    try:
        if isinstance(data, dict):
            for rel, content in data.items():
                (folder / rel).parent.mkdir(parents=True, exist_ok=True)
                (folder / rel).write_bytes(content)
            arg, names = folder, [str(folder / rel) for rel in data]
        else:
            (folder / name).write_bytes(data)
            arg, names = folder / name, [str(folder / name)]
        tracemalloc.start()
        t0 = time.perf_counter()
        error = None
        try:
            with warnings.catch_warnings():   # numpy's overflow / invalid-value warnings mean a silent garbage value
                warnings.simplefilter("error", RuntimeWarning)
                value = reader(arg)
        except base as e:
            value, error = None, e
        except Exception as e:   # the contract is broken: count it, then fail with the example
            UNINTENDED[target][type(e).__name__] += 1
            OUTCOMES[target][f"UNINTENDED {type(e).__name__}"] += 1
            raise AssertionError(f"{target}: {type(e).__name__} escaped the reader: {e!r}"[:2000]) from e
        finally:
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            seconds = time.perf_counter() - t0
        assert peak <= MAX_PEAK_BYTES, f"{target}: {peak / 1e6:.0f} MB traced for a {_size(data)}-byte input"
        assert seconds <= MAX_SECONDS, f"{target}: {seconds:.1f} s for a {_size(data)}-byte input"
        if error is not None:
            outcome = f"refused: {type(error).__name__}"
            message = str(error)
            assert "\n" not in message.strip(), f"{target}: multi-line message {message!r}"
            assert any(n in message for n in names), f"{target}: message names no file: {message!r}"
        else:
            outcome = "parsed"
            if check is not None:
                check(value)
        OUTCOMES[target][outcome] += 1
        return value
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _size(data) -> int:
    return sum(map(len, data.values())) if isinstance(data, dict) else len(data)


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    width = max((len(t) for t in OUTCOMES), default=10)
    print(f"\n{'reader':<{width}}  examples  outcomes")
    for target, counts in sorted(OUTCOMES.items()):
        print(f"{target:<{width}}  {sum(counts.values()):>8}  "
              + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    print("unintended error types: " + (", ".join(f"{t}: {dict(c)}" for t, c in UNINTENDED.items()) or
                                        "0 for every reader"))


# ---- strategies ---------------------------------------------------------------------------------

TOKENS = [b"\xef\xbb\xbf", b"\r", b"\r\n", b"\n", b"\x00", b"\xff", b"\xc3", b'"', b",", b" ", b"\t", b"-", b".",
          b"NaN", b"Infinity", b"-Infinity", b"1e400", b"9" * 30, b"9" * 5000, b"-0", b"1_0", b"\xe2\x80\xa8",
          b"[" * 3000, b"{" * 50, b"null", b"true", b"[]", b"{}", b'""', b"0x10", b"\\u0000", b"\\ud800"]


@st.composite
def mutated(draw, seeds: bytes | list[bytes], max_ops: int = 4) -> bytes:
    """One of `seeds` with up to `max_ops` random edits (bytes or tokens inserted, bytes flipped,
    ranges deleted or duplicated, the end cut off)."""
    seeds = [seeds] if isinstance(seeds, bytes) else seeds
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(0, max_ops))):
        op = draw(st.sampled_from(["flip", "insert", "token", "delete", "duplicate", "truncate"]))
        i = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            data[min(i, len(data) - 1)] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif op == "token":
            data[i:i] = draw(st.sampled_from(TOKENS))
        elif op == "delete":
            del data[i:i + draw(st.integers(1, 16))]
        elif op == "duplicate":
            data[i:i] = data[i:i + draw(st.integers(1, 64))] * draw(st.integers(1, 4))
        elif op == "truncate":
            del data[i:]
    return bytes(data)


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.sampled_from([10 ** 400, -1]),
                         st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=5), st.dictionaries(st.text(max_size=6), inner, max_size=4)), max_leaves=12)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


@st.composite
def mutated_json(draw, doc, max_ops: int = 3) -> bytes:
    """`doc` with up to `max_ops` subtrees replaced by random JSON values or removed, as JSON
    text (NaN / Infinity written as Python does), sometimes with byte edits on top."""
    doc = json.loads(json.dumps(doc))
    for _ in range(draw(st.integers(1, max_ops))):
        paths = list(_paths(doc))
        path = draw(st.sampled_from(paths))
        if not path:
            doc = draw(json_values)
            continue
        parent = doc
        for k in path[:-1]:
            parent = parent[k]
        if draw(st.booleans()) and isinstance(parent, dict):
            parent.pop(path[-1], None)
        else:
            parent[path[-1]] = draw(json_values)
    text = json.dumps(doc).encode()
    return draw(mutated(text, max_ops=2)) if draw(st.integers(0, 3)) == 0 else text


# ---- AVA -------------------------------------------------------------------------------------

from humact.eval.ava import (AvaFormatError, evaluate_ava_files, read_ava_csv, read_exclusions,  # noqa: E402
                             read_label_map, read_proposals)

field_text = st.one_of(st.sampled_from(["vid", "v,w", '"q"', "0902", "902.5", "-1", "0.25", "1e3", "nan", "inf",
                                        " 1", "1 ", "+2", "1_0", "", "9" * 20, "٣", "\x00", "é"]),
                       st.text(max_size=6))


@st.composite
def ava_csv(draw) -> bytes:
    """Rows of 2, 7 or 8 mostly plausible fields, any line ends, sometimes a BOM."""
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        n = draw(st.sampled_from([8, 8, 8, 7, 2, 1, 9]))
        if draw(st.integers(0, 2)):
            f = [draw(st.sampled_from(["a", "b", "vid_1"])), draw(st.sampled_from(["0902", "903", "0904"]))]
            f += [f"{draw(st.integers(0, 4)) / 4}" for _ in range(4)] + [str(draw(st.integers(0, 4))),
                                                                         f"{draw(st.integers(0, 9)) / 9:.3f}"]
            f = f[:n] + [draw(field_text) for _ in range(n - len(f))]
            if draw(st.integers(0, 3)) == 0:
                f[draw(st.integers(0, len(f) - 1))] = draw(field_text)
        else:
            f = [draw(field_text) for _ in range(n)]
        lines.append(",".join(f))
    end = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = end.join(lines) + (end if draw(st.booleans()) else "")
    return (b"\xef\xbb\xbf" if draw(st.integers(0, 5)) == 0 else b"") + text.encode("utf-8")


VALID_GT = bad_inputs.csv_bytes(bad_inputs.GT_ROWS)
VALID_DET = bad_inputs.csv_bytes(bad_inputs.DET_ROWS)


def _check_table(t):
    n = len(t)
    assert t.kf.shape == (n,) and t.boxes.shape == (n, 4) and t.action.shape == (n,) and t.score.shape == (n,)
    assert n == 0 or (0 <= t.kf.min() and t.kf.max() < len(t.keys))


@FUZZ
@given(data=st.one_of(ava_csv(), mutated([VALID_GT, VALID_DET])),
       semantics=st.sampled_from(["activitynet-2019", "activitynet-head"]))
def test_ava_csv_reader_keeps_the_contract(data, semantics):
    assert_reader_contract(lambda p: read_ava_csv(p, semantics=semantics, allow_empty_rows=True, empty_keys=[]),
                           data, target="AVA CSV", name="rows.csv", check=_check_table)


@FUZZ_SLOW
@given(data=st.one_of(ava_csv(), mutated([VALID_GT, VALID_DET])), which=st.sampled_from(["gt", "det"]))
def test_ava_evaluation_keeps_the_contract(data, which):
    files = {"gt.csv": VALID_GT, "det.csv": VALID_DET, "labels.pbtxt": bad_inputs.LABELS.encode()}
    files[f"{which}.csv"] = data

    def check(r):
        assert 0.0 <= r.mAP <= 1.0 and set(r.ap) <= {1, 2, 3}

    assert_reader_contract(lambda d: evaluate_ava_files(d / "gt.csv", d / "det.csv", d / "labels.pbtxt"), files,
                           target="AVA evaluation (files)", check=check)


def _official_rows(path: Path):
    """The official reader (`csv.reader(open(path))`, int / float) with humact's documented
    differences applied: BOM removed, a quoted field over a line end refused, ids beyond
    +-2**53 read as 0. Returns [(video, int ts, x1, y1, x2, y2, action, score)] or raises."""
    raw = path.read_bytes()
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    with io.TextIOWrapper(io.BytesIO(raw), encoding="utf-8", newline=None) as f:   # what open(path) gives
        reader = csv.reader(f)
        out = []
        for row in reader:
            if reader.line_num != len(out) + 1:
                raise ValueError("a quoted field over a line end")
            if len(row) not in (7, 8):
                raise ValueError("columns")
            a = int(row[6])
            out.append((row[0], int(row[1]), *(float(v) for v in row[2:6]), a if abs(a) <= 2 ** 53 else 0,
                        float(row[7]) if len(row) == 8 else 1.0))
    return out


@FUZZ
@given(data=st.one_of(ava_csv(), mutated([VALID_GT, VALID_DET])))
def test_ava_csv_reads_like_the_official_csv_reader(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("csv") / "rows.csv"
    path.write_bytes(data)
    try:
        ref = _official_rows(path)
    except (ValueError, csv.Error, UnicodeDecodeError):
        ref = None
    try:
        t = read_ava_csv(path)
    except AvaFormatError:
        t = None
    if ref is None or t is None:
        assert ref is None and t is None, (ref, t and len(t))
        return
    ours = [(t.keys[k][0], t.keys[k][1], *b, a, s) for k, b, a, s in
            zip(t.kf.tolist(), t.boxes.tolist(), t.action.tolist(), t.score.tolist())]
    # keyframe ids group rows by first appearance; the official rows are in file order
    assert sorted(map(repr, ours)) == sorted(map(repr, ref))


LABEL_SEEDS = [bad_inputs.LABELS.encode(), b'label {\n  name: "a"\n  label_id: 3\n  label_type: PERSON_MOVEMENT\n}\n']


@st.composite
def label_map_text(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(["name", "id", "label_id", "junk", "brace"]))
        if kind == "name":
            lines.append(f'  name: "{draw(st.text(max_size=5))}"')
        elif kind in ("id", "label_id"):
            lines.append(f"  {kind}: {draw(st.one_of(st.integers(-5, 10), st.integers(0, 10 ** 12), st.just(300000000)))}")
        elif kind == "junk":
            lines.append(draw(st.text(max_size=10)))
        else:
            lines.append(draw(st.sampled_from(["item {", "}", "label {"])))
    return "\n".join(lines).encode("utf-8", "surrogatepass")


def _check_labels(lm):
    assert len(lm.ids) == len(lm.names) and lm.ids and 1 <= min(lm.ids) and max(lm.ids) <= 1_000_000


@FUZZ
@given(data=st.one_of(label_map_text(), mutated(LABEL_SEEDS)))
def test_label_map_reader_keeps_the_contract(data):
    assert_reader_contract(read_label_map, data, target="AVA label map", name="labels.pbtxt", check=_check_labels)


@FUZZ
@given(data=st.one_of(mutated(b"vid_a,0902\nvid_b,903\n"), ava_csv()),
       semantics=st.sampled_from(["activitynet-2019", "activitynet-head"]))
def test_exclusions_reader_keeps_the_contract(data, semantics):
    assert_reader_contract(lambda p: read_exclusions(p, semantics), data, target="AVA exclusions", name="ex.csv",
                           check=lambda s: isinstance(s, set))


# ---- pickles ---------------------------------------------------------------------------------

from humact.io.results import read_pyskl_pickle, read_result_json, result_to_dict, to_pyskl  # noqa: E402
from humact.io.safe_pickle import safe_load  # noqa: E402

arrays = st.builds(lambda shape, kind: np.zeros(shape, kind), st.lists(st.integers(0, 6), max_size=3).map(tuple),
                   st.sampled_from(["f4", "f8", "i8", "u1", "?", "U3", "O", "V0"]))
pickle_values = st.recursive(st.one_of(json_scalars, arrays, st.binary(max_size=8)), lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.tuples(inner, inner), st.dictionaries(st.text(max_size=5), inner, max_size=4),
    st.builds(lambda v: [v] * 3, inner)), max_leaves=10)

_OPS = [b"N", b"]", b"}", b")", b"(", b"a", b"e", b"u", b"s", b"t", b"R", b"b", b"0", b"2", b"1", b"\x85", b"\x86",
        b"\x87", b"\x94", b"\x93", b"\x81", b"\x8f", b"\x90", b"\x91", b"l", b"d", b"o", b"\x88", b"\x89"]
_GLOBALS = [b"cbuiltins\nbytearray\n", b"cnumpy\nndarray\n", b"cnumpy\ndtype\n", b"cnumpy._core.multiarray\n_reconstruct\n",
            b"cnumpy.core.multiarray\nscalar\n", b"c_codecs\nencode\n", b"cbuiltins\nset\n", b"ccollections\nOrderedDict\n",
            b"cos\nsystem\n", b"cbuiltins\neval\n", b"ccollections\ndefaultdict\n", b"cnumpy._core.numeric\n_frombuffer\n"]


@st.composite
def pickle_program(draw) -> bytes:
    """A random opcode sequence: allowed and forbidden globals, sizes from tiny to 2**40,
    memo indices, frames and declared lengths that may lie."""
    out = [b"\x80" + bytes([draw(st.integers(0, 6))])]
    for _ in range(draw(st.integers(1, 25))):
        kind = draw(st.integers(0, 9))
        if kind == 0:
            out.append(draw(st.sampled_from(_GLOBALS)))
        elif kind == 1:
            out.append(b"J" + struct.pack("<i", draw(st.integers(-2 ** 31, 2 ** 31 - 1))))
        elif kind == 2:
            out.append(b"I" + str(draw(st.sampled_from([0, 3, 1 << 31, 3 << 30, 10 ** 15]))).encode() + b"\n")
        elif kind == 3:
            s = draw(st.sampled_from([b"f8", b"b", b"V0", b"latin1", b"zlib", b"<", b"O"]))
            out.append(b"U" + bytes([len(s)]) + s)
        elif kind == 4:
            out.append(draw(st.sampled_from([b"q", b"h"])) + bytes([draw(st.integers(0, 255))]))
        elif kind == 5:
            out.append(draw(st.sampled_from([b"r", b"j"])) + struct.pack("<I", draw(st.sampled_from([0, 1, 5, 1 << 28]))))
        elif kind == 6:
            n = draw(st.sampled_from([0, 3, 1 << 20, 3 << 30, 1 << 40]))
            out.append(draw(st.sampled_from([b"\x8e", b"\x96", b"\x8d"])) + struct.pack("<Q", n) + b"abc")
        elif kind == 7:
            out.append(b"\x95" + struct.pack("<Q", draw(st.sampled_from([0, 8, 1 << 33]))))
        elif kind == 8:
            out.append(b"\x8a" + bytes([8]) + struct.pack("<q", draw(st.sampled_from([10 ** 15, -1, 2 ** 62]))))
        else:
            out.append(draw(st.sampled_from(_OPS)))
    return b"".join(out) + (b"." if draw(st.integers(0, 4)) else b"")


_ARGS = [b"N", b"K\x00", b"K\x03", b"I3000000000\n", b"\x8a\x08" + struct.pack("<q", 10 ** 15), b"J\xff\xff\xff\xff",
         b"U\x02f8", b"U\x01b", b"U\x02V0", b"U\x01O", b"U\x06latin1", b"U\x04zlib", b"C\x03abc", b")",
         b"K\x00\x85", b"I350000000\n\x85", b"K\x02K\x03\x86", b"]", b"}", b"\x88", b"cnumpy\nndarray\n",
         b"cnumpy\ndtype\nU\x02f8\x89\x88\x87R"]


@st.composite
def pickle_call(draw) -> bytes:
    """GLOBAL f, 0-3 arguments, REDUCE (or NEWOBJ), maybe a BUILD state: what hits the
    constructors the unpickler allows, with the sizes an attacker would pick."""
    args = [draw(st.sampled_from(_ARGS)) for _ in range(draw(st.integers(0, 3)))]
    out = b"\x80\x02" + draw(st.sampled_from(_GLOBALS)) + b"(" + b"".join(args) + b"t"
    out += draw(st.sampled_from([b"R", b"R", b"\x81"]))
    if draw(st.booleans()):   # a state for ndarray.__setstate__ / dtype.__setstate__
        out += b"(K\x01" + draw(st.sampled_from(_ARGS)) + draw(st.sampled_from(_ARGS)) + b"\x89C\x00tb"
    return out + b"."


def _pickled(value) -> bytes:
    return pickle.dumps(value, protocol=2)


VALID_PROPOSALS = [pickle.dumps({"vid_a,0902": np.random.default_rng(0).random((3, 5))}, protocol=p) for p in (2, 4, 5)]


def _pickle_inputs():
    return st.one_of(pickle_program(), pickle_call(), pickle_values.map(_pickled),
                     pickle_values.map(lambda v: pickle.dumps(v, 5)), mutated(VALID_PROPOSALS))


@FUZZ
@given(data=_pickle_inputs())
def test_restricted_unpickler_keeps_the_contract(data):
    assert_reader_contract(safe_load, data, target="restricted unpickler", name="data.pkl")


@FUZZ
@given(data=st.one_of(_pickle_inputs(), st.dictionaries(st.sampled_from(["a,0902", "b", "c,1"]), pickle_values,
                                                         max_size=3).map(_pickled)))
def test_proposals_reader_keeps_the_contract(data):
    def check(props):
        assert all(isinstance(k, str) and v.ndim == 2 and v.shape[1] in (4, 5) for k, v in props.items())

    assert_reader_contract(read_proposals, data, target="AVA proposals pickle", name="proposals.pkl", check=check)


def _valid_pyskl() -> dict:
    return to_pyskl(_result())


@FUZZ
@given(data=st.one_of(_pickle_inputs(), mutated([pickle.dumps(_valid_pyskl(), protocol=p) for p in (2, 4)]),
                      st.builds(lambda k, v: _pickled({**_valid_pyskl(), k: v}),
                                st.sampled_from(["keypoint", "total_frames", "keypoint_score", "img_shape"]),
                                pickle_values)))
def test_pyskl_pickle_reader_keeps_the_contract(data):
    def check(anno):
        assert anno["keypoint"].ndim == 4 and anno["keypoint"].dtype == np.float32

    assert_reader_contract(read_pyskl_pickle, data, target="PYSKL pickle", name="video.pkl", check=check)


# ---- JSON ------------------------------------------------------------------------------------

from humact.eval.tps import evaluate_tps_dirs  # noqa: E402

TPS_VALID = dict(zip(("gt/gt_vid_result.json", "gt/gt_part_result.json", "pred/pred_vid_result.json",
                      "pred/pred_part_result.json"), bad_inputs.tps_files()))


@FUZZ_SLOW
@given(which=st.sampled_from(sorted(TPS_VALID)), data=st.data())
def test_tps_reader_keeps_the_contract(which, data):
    if data.draw(st.booleans()):     # a random valid case (scored), one file of it mutated
        gv, gp, pv, pp = data.draw(tps_case())
        base = {"gt/gt_vid_result.json": gv, "gt/gt_part_result.json": gp, "pred/pred_vid_result.json": pv,
                "pred/pred_part_result.json": pp}
    else:
        base = dict(TPS_VALID)
    files = {k: json.dumps(v).encode() for k, v in base.items()}
    if data.draw(st.integers(0, 4)):
        files[which] = data.draw(mutated_json(base[which], max_ops=data.draw(st.integers(1, 2))))

    def check(r):
        assert 0.0 <= r.score <= 1.0 and all(0.0 <= v["psc"] <= 1.0 for v in r.videos.values())

    assert_reader_contract(lambda d: evaluate_tps_dirs(d / "gt", d / "pred", missing="zero"), files,
                           target="Kinetics-TPS JSON (gt and pred)", check=check)


@FUZZ
@given(data=st.data())
def test_result_json_reader_keeps_the_contract(data):
    doc = result_to_dict(_result(m=data.draw(st.integers(0, 3)), t=data.draw(st.integers(1, 5)),
                                 with_actions=data.draw(st.booleans())))
    raw = data.draw(mutated_json(doc)) if data.draw(st.integers(0, 3)) else json.dumps(doc).encode()

    def check(r):
        assert r.tracks.valid.shape == (r.tracks.num_persons, r.meta.num_frames)

    assert_reader_contract(read_result_json, raw, target="result JSON", name="result.json", check=check)


# ------------------------------------------------------------------ training configs and checkpoint sidecars

_CONFIG_TOML = (b'[data]\ndataset = "pyskl"\npath = "x.pkl"\n[input]\nclip_len = 48\nstream = "b"\n'
                b'[model]\nname = "stgcnpp"\n[optim]\nepochs = 5\nlr = 0.05\nmilestones = [2, 4]\n[run]\nseed = 3\n')
_CONFIG_FLAT_JSON = json.dumps({"dataset": "jhmdb", "data": "d", "clip_len": 32, "normalize": "body",
                                "flip": 0.5, "epochs": 50, "num_threads": 1}).encode()


def _check_config(cfg):
    from humact.config import TrainConfig

    assert isinstance(cfg, TrainConfig)
    cfg.validate("fuzz")  # every value within its declared bounds


@FUZZ
@given(data=mutated(_CONFIG_TOML))
def test_training_config_toml_reader_keeps_the_contract(data):
    from humact.config import load_config

    assert_reader_contract(load_config, data, target="config-toml", name="run.toml", check=_check_config)


@FUZZ
@given(data=mutated(_CONFIG_FLAT_JSON))
def test_training_config_json_reader_keeps_the_contract(data):
    from humact.config import load_config

    assert_reader_contract(load_config, data, target="config-json", name="run.json", check=_check_config)


def _sidecar_bytes() -> bytes:
    meta = json.loads((Path(__file__).resolve().parents[1] / "humact/assets/models/stgcnpp_jhmdb15_j.json").read_text())
    return json.dumps({k: meta[k] for k in ("config", "classes", "layout", "in_channels")}).encode()


def _read_model_sidecar(path: Path):
    """Rebuild the shipped model from its weights and the fuzzed JSON sidecar (what `humact test` reads)."""
    from humact.recognize.skeleton import Recognizer

    weights = Path(__file__).resolve().parents[1] / "humact/assets/models/stgcnpp_jhmdb15_j.safetensors"
    target = path.with_suffix(".safetensors")
    shutil.copyfile(weights, target)
    if path.suffix != ".json":
        path.rename(path.with_suffix(".json"))
    return Recognizer.from_checkpoint(target)


@settings(FUZZ, max_examples=40)
@given(data=mutated(_sidecar_bytes()))
def test_checkpoint_sidecar_reader_keeps_the_contract(data):
    assert_reader_contract(_read_model_sidecar, data, target="checkpoint-sidecar", name="model.json")


@FUZZ
@given(data=mutated(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " + bytes(16)))
def test_safetensors_reader_keeps_the_contract(data):
    from humact.io.checkpoints import load_checkpoint

    def read(path: Path):
        path.with_suffix(".json").write_text("{}")
        return load_checkpoint(path)

    assert_reader_contract(read, data, target="safetensors", name="m.safetensors")
