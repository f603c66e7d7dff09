"""The restricted unpickler: nothing runs, nothing is allocated beyond what the file holds."""

from __future__ import annotations

import collections
import pickle
import struct
import tracemalloc

import numpy as np
import pytest

import bad_inputs
from humact.errors import HumactError, InputError, LimitError
from humact.io.safe_pickle import PickleFormatError, UnsafePickleError, safe_load, safe_loads, scan_opcodes


def _peak_mb(fn) -> float:
    """Peak traced memory (Python and numpy allocations) of `fn()` in MB; exceptions propagate."""
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak / 1e6


def _refused(data: bytes, error=InputError, match: str | None = None) -> float:
    """Assert `safe_loads(data)` raises `error` naming the source; return the peak memory in MB."""
    box = {}

    def load():
        with pytest.raises(error, match=match) as e:
            safe_loads(data, "hostile.pkl")
        box["e"] = e

    peak = _peak_mb(load)
    assert "hostile.pkl" in str(box["e"].value)
    return peak


class _CallsSystem:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned",))


def test_pickle_that_calls_a_function_is_refused_naming_it(tmp_path):
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(_CallsSystem()))
    with pytest.raises(UnsafePickleError, match=r"evil\.pkl.*(posix|os)\.system"):
        safe_load(tmp_path / "evil.pkl")


def test_every_refusal_is_a_humact_error():
    for cls in (UnsafePickleError, PickleFormatError):
        assert issubclass(cls, HumactError) and issubclass(cls, pickle.UnpicklingError)


def test_bytearray_of_a_size_beyond_the_file_is_refused_before_allocating():
    data = b"\x80\x04cbuiltins\nbytearray\nI3000000000\n\x85R."     # 37 bytes asking for 3 GB
    assert _refused(data, LimitError, "bytearray") < 20


def test_bytes_and_bytearray_of_the_files_own_data_load():
    for obj in (bytearray(b"x" * 1000), b"y" * 1000, bytearray()):
        for proto in range(6):
            assert safe_loads(pickle.dumps(obj, protocol=proto)) == obj


def test_memo_index_beyond_the_opcodes_is_refused_before_allocating():
    data = b"\x80\x04Nr\x00\x00\x00\x10."      # LONG_BINPUT 2**28: CPython zeroes a 4 GiB memo
    assert _refused(data, PickleFormatError, "memo index") < 20
    assert _refused(b"\x80\x02Np268435456\n.", PickleFormatError, "memo index") < 20   # text PUT


def test_declared_length_beyond_the_file_is_refused_before_allocating():
    for op, width in ((b"\x8e", "<Q"), (b"\x96", "<Q"), (b"\x8d", "<Q"), (b"B", "<I"), (b"X", "<I")):
        data = b"\x80\x04" + op + struct.pack(width, 3 << 30 if width == "<Q" else 0xFFFFFFF0) + b"abc."
        assert _refused(data, PickleFormatError, "declares") < 20


def test_frame_longer_than_the_file_is_refused():
    _refused(b"\x80\x04\x95" + struct.pack("<Q", 3 << 30) + b"N.", PickleFormatError, "frame")


def test_array_shape_beyond_its_data_is_refused_before_allocating():
    # numpy's own `_reconstruct` with a shape of 350 M float64 and no data: 66 bytes, 2.8 GB
    assert _refused(bad_inputs._forged_array_pickle(), LimitError) < 20


def test_calling_ndarray_directly_is_refused():
    data = b"\x80\x04cnumpy\nndarray\nJ\x00\x00\x00\x20\x85R."   # np.ndarray((536870912,)): 4 GB
    _refused(data, UnsafePickleError, "ndarray directly")
    _refused(b"\x80\x04cnumpy\nndarray\nK\x05\x85\x81.", PickleFormatError)  # NEWOBJ on it


def test_zero_byte_dtype_with_a_huge_shape_is_refused():
    # np.zeros(3, dtype=[]) with its shape set to 10**15: no data, 10**15 elements
    _refused(bad_inputs._zero_itemsize_pickle(), LimitError, "elements")


def test_codecs_encode_only_turns_text_into_latin1_or_utf8():
    _refused(b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x04\x00\x00\x00zlib\x86R.", UnsafePickleError, "zlib")
    ok = b"\x80\x02c_codecs\nencode\nX\x03\x00\x00\x00abcX\x06\x00\x00\x00latin1\x86R."
    assert safe_loads(ok) == b"abc"


def test_truncated_pickle_names_the_file(tmp_path):
    (tmp_path / "cut.pkl").write_bytes(pickle.dumps({"a": np.zeros(10)})[:-7])
    with pytest.raises(PickleFormatError, match=r"cut\.pkl"):
        safe_load(tmp_path / "cut.pkl")


def test_empty_file_and_junk_name_the_file(tmp_path):
    (tmp_path / "empty.pkl").write_bytes(b"")
    (tmp_path / "junk.pkl").write_bytes(b"this is not a pickle")
    for name in ("empty.pkl", "junk.pkl"):
        with pytest.raises(PickleFormatError, match=name.replace(".", r"\.")):
            safe_load(tmp_path / name)


def test_deep_nesting_is_an_input_error_not_a_recursion_error():
    data = b"\x80\x04" + b"]" * 200000 + b"a" * 199999 + b"."   # 200,000 nested lists
    try:
        safe_loads(data, "deep.pkl")
    except HumactError as e:
        assert "deep.pkl" in str(e)


LEGIT = [np.zeros(3), np.arange(12, dtype=np.int16).reshape(3, 4).T, np.array([True, False]), np.array(["ab", "c"]),
         np.array([1, "a", None], dtype=object), np.zeros((0, 5), np.float32), np.float32(3.5), np.int64(-2),
         np.array(3.0), np.zeros(2, dtype=[("a", "f4"), ("b", "i8", (2,))]), np.array(["2020-01-01"], "datetime64[D]"),
         np.asfortranarray(np.random.default_rng(0).random((3, 4))), np.dtype("f8"), collections.OrderedDict(a=1),
         collections.defaultdict(set, a={1}), {1, 2}, frozenset({3}), slice(1, 2), 1 + 2j, "text", None]


@pytest.mark.parametrize("proto", range(6))
def test_numpy_arrays_and_plain_containers_round_trip_at_every_protocol(proto):
    for obj in LEGIT:
        back = safe_loads(pickle.dumps(obj, protocol=proto))
        if isinstance(obj, np.ndarray):
            assert type(back) is np.ndarray and back.dtype == obj.dtype and back.shape == obj.shape
            assert back.tolist() == obj.tolist() if obj.dtype == object else back.tobytes() == obj.tobytes()
        else:
            assert back == obj and type(back) is type(obj)


def test_a_pyskl_annotation_file_loads_with_its_arrays(tmp_path):
    rng = np.random.default_rng(0)
    annos = [{"frame_dir": f"S{i:03d}", "label": i % 3, "img_shape": (480, 640), "total_frames": 20,
              "keypoint": rng.random((2, 20, 17, 2), dtype=np.float32)} for i in range(50)]
    (tmp_path / "a.pkl").write_bytes(pickle.dumps({"split": {"train": ["S000"]}, "annotations": annos}, protocol=4))
    back = safe_load(tmp_path / "a.pkl")
    assert all((a["keypoint"] == b["keypoint"]).all() for a, b in zip(annos, back["annotations"]))


def test_opcode_scan_counts_opcodes_and_stops_at_stop():
    data = pickle.dumps([1, 2], protocol=2) + b"trailing bytes after STOP are not read"
    assert scan_opcodes(data, "x") == len(list(__import__("pickletools").genops(data)))


def _object_array_pickle(items: int, shape: int) -> bytes:
    """numpy's own object-array pickle with `shape` in its state and `items` items in its list."""
    data = pickle.dumps(np.array(list(range(items)) + [None], dtype=object)[:items], protocol=2)
    return data.replace(b"K" + bytes([items]) + b"\x85", b"K" + bytes([shape]) + b"\x85", 1)


def test_object_array_with_fewer_items_than_its_shape_is_refused():
    # numpy's __setstate__ would read pointers past the list (a crash when the array is used)
    assert safe_loads(_object_array_pickle(2, 2)).tolist() == [0, 1]
    _refused(_object_array_pickle(2, 3), UnsafePickleError, "object array of 3 items pickled with 2")


def test_dtype_field_outside_the_dtype_is_refused():
    data = pickle.dumps(np.zeros(2, dtype=[("a", "<f8")]), protocol=2)
    forged = data.replace(b"K\x00\x86", b"M\xe8\x03\x86", 1)     # field 'a' at offset 1000 of 8 bytes
    assert forged != data
    _refused(forged, UnsafePickleError, "field 'a' at bytes 1000..1008 of a 8-byte dtype")


def test_dtype_changed_after_an_array_uses_it_is_refused():
    # dtype d = V8 (copy), array of d, then BUILD d with a field at offset 1000
    data = (b"\x80\x02cnumpy\ndtype\nU\x02V8K\x00K\x01\x87R\x94"           # memo 0: d
            b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R"
            b"(K\x01K\x01\x85h\x00\x89C\x08\x00\x00\x00\x00\x00\x00\x00\x00tb"   # the array: 1 x d
            b"h\x00(K\x03U\x01|NU\x01a\x85}U\x01acnumpy\ndtype\nU\x02f8K\x00K\x01\x87RM\xe8\x03\x86sK\x08K\x01K\x10tb"
            b"\x86.")
    _refused(data, UnsafePickleError, "forged layout")


def test_arrays_come_back_as_plain_ndarrays_wherever_they_are():
    a = np.arange(3.0)
    obj = {"t": (a, [a, (a,)]), "o": np.array([a, None], dtype=object), "s": slice(None, 2), "l": [a]}
    back = safe_loads(pickle.dumps(obj, protocol=4))
    arrays = [back["t"][0], back["t"][1][0], back["t"][1][1][0], back["o"][0], back["l"][0]]
    assert all(type(x) is np.ndarray and x.tolist() == [0.0, 1.0, 2.0] for x in arrays)
    assert back["t"][0] is back["t"][1][0] is back["l"][0]          # shared stays shared
    assert type(back["o"]) is np.ndarray and back["o"].dtype == object
