"""Hostile and unlucky inputs for the file readers, run through the `humact` command line.

Each `Case` builds its files in a folder and returns the command line to run. What must
happen is one of:

- "error": exit code 2 and exactly one line on stderr, `humact COMMAND: error: ...`, naming
  the file (`Case.names`), no traceback;
- "warning": exit code 0, a `warning:` line naming the file, and the same numbers as the
  clean twin the case also builds (`Case.twin`);
- "same": exit code 0 and the same numbers as the clean twin (the official tools read both
  the same way).

`tests/test_bad_inputs_cli.py` runs every case in-process. Run this file to see what a
checkout does with each case, each in a fresh process under a 12 GB address-space limit
(exit code, stderr lines, traceback or not, peak RSS, seconds):

    python tests/bad_inputs.py [--repo PATH] [--only SUBSTRING]
"""

from __future__ import annotations

import json
import pickle
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

LABELS = 'item {\n  name: "stand"\n  id: 1\n}\nitem {\n  name: "sit"\n  id: 2\n}\nitem {\n  name: "walk"\n  id: 3\n}\n'
GT_ROWS = [("vid_a", "0902", 0.1, 0.1, 0.5, 0.9, 1, 0), ("vid_a", "0902", 0.1, 0.1, 0.5, 0.9, 3, 0),
           ("vid_a", "0903", 0.5, 0.2, 0.9, 0.9, 2, 1), ("vid_b", "0902", 0.2, 0.1, 0.6, 0.8, 1, 0)]
DET_ROWS = [("vid_a", "0902", 0.12, 0.1, 0.5, 0.88, 1, 0.9), ("vid_a", "0902", 0.12, 0.1, 0.5, 0.88, 2, 0.3),
            ("vid_a", "0902", 0.12, 0.1, 0.5, 0.88, 3, 0.6), ("vid_a", "0903", 0.5, 0.2, 0.9, 0.9, 2, 0.7),
            ("vid_b", "0902", 0.2, 0.1, 0.6, 0.8, 1, 0.4), ("vid_b", "0902", 0.6, 0.1, 0.9, 0.8, 1, 0.8)]


def csv_bytes(rows, end: str = "\n") -> bytes:
    return "".join(",".join(str(v) for v in r) + end for r in rows).encode()


@dataclass
class Case:
    """One bad input: `build(folder) -> argv`; `twin(folder) -> argv` for the clean equivalent."""

    name: str
    issue: str                      # the case as the issue states it
    expect: str                     # "error", "warning" or "same"
    build: Callable[[Path], list]
    names: tuple = ()               # file names the message must contain
    twin: Callable[[Path], list] | None = None
    test: str = ""                  # the unit test that covers the reader's side, besides the CLI test
    tags: tuple = field(default=())


# ---- AVA ------------------------------------------------------------------------------------

def _ava(d: Path, gt: bytes | None = None, det: bytes | None = None, labels: str | bytes = LABELS,
         extra: tuple = (), name: str = "") -> list:
    d.mkdir(parents=True, exist_ok=True)
    (d / f"gt{name}.csv").write_bytes(csv_bytes(GT_ROWS) if gt is None else gt)
    (d / f"det{name}.csv").write_bytes(csv_bytes(DET_ROWS) if det is None else det)
    (d / f"labels{name}.pbtxt").write_bytes(labels.encode() if isinstance(labels, str) else labels)
    return ["eval", "ava", "--gt", str(d / f"gt{name}.csv"), "--pred", str(d / f"det{name}.csv"),
            "--label-map", str(d / f"labels{name}.pbtxt"), "--json", str(d / f"out{name}.json"), *extra]


def _clean_ava(d: Path) -> list:
    return _ava(d, name="_clean")


BOM = b"\xef\xbb\xbf"
AVA_CASES = [
    Case("ava-bom-in-detections", "A UTF-8 BOM in an AVA CSV changes the first video id (mAP 0.889 -> 0.722, exit 0)",
         "warning", lambda d: _ava(d, det=BOM + csv_bytes(DET_ROWS)), ("det.csv",), _clean_ava,
         "test_eval_ava.py::test_utf8_bom_is_removed_and_reported"),
    Case("ava-bom-in-ground-truth", "A UTF-8 BOM in an AVA CSV changes the first video id",
         "warning", lambda d: _ava(d, gt=BOM + csv_bytes(GT_ROWS)), ("gt.csv",), _clean_ava,
         "test_eval_ava.py::test_utf8_bom_is_removed_and_reported"),
    Case("ava-bom-in-label-map", "A UTF-8 BOM in an AVA file", "warning",
         lambda d: _ava(d, labels=BOM + LABELS.encode()), ("labels.pbtxt",), _clean_ava,
         "test_eval_ava.py::test_label_map_bom_is_removed_and_reported"),
    Case("ava-cr-only-detections", "CR-only line endings crash", "same",
         lambda d: _ava(d, det=csv_bytes(DET_ROWS, "\r")), (), _clean_ava,
         "test_eval_ava.py::test_cr_and_crlf_line_ends_read_as_universal_newlines"),
    Case("ava-cr-only-ground-truth", "CR-only line endings crash", "same",
         lambda d: _ava(d, gt=csv_bytes(GT_ROWS, "\r")), (), _clean_ava,
         "test_eval_ava.py::test_cr_and_crlf_line_ends_read_as_universal_newlines"),
    Case("ava-crlf-detections", "CR-only line endings crash (CRLF alongside)", "same",
         lambda d: _ava(d, det=csv_bytes(DET_ROWS, "\r\n")), (), _clean_ava,
         "test_eval_ava.py::test_cr_and_crlf_line_ends_read_as_universal_newlines"),
    Case("ava-empty-detections", "An empty detection file gives mAP 0 ... exit 0", "warning",
         lambda d: _ava(d, det=b""), ("det.csv",), None,
         "test_eval_ava.py::test_empty_detection_file_scores_zero_with_a_note"),
    Case("ava-detections-on-no-ground-truth-keyframe", "silently wrong: nothing matches (e.g. other video ids)",
         "warning", lambda d: _ava(d, det=csv_bytes([("x" + r[0],) + r[1:] for r in DET_ROWS])), ("det.csv",), None,
         "test_eval_ava.py::test_detections_matching_no_ground_truth_keyframe_are_noted"),
    Case("ava-empty-ground-truth", "empty ground truth NaN, exit 0", "error",
         lambda d: _ava(d, gt=b""), ("gt.csv",), None,
         "test_eval_ava.py::test_ground_truth_without_label_map_boxes_is_an_error"),
    Case("ava-ground-truth-without-label-map-class", "empty ground truth NaN, exit 0", "error",
         lambda d: _ava(d, gt=csv_bytes([r[:6] + (9,) + r[7:] for r in GT_ROWS])), ("gt.csv",), None,
         "test_eval_ava.py::test_ground_truth_without_label_map_boxes_is_an_error"),
    Case("ava-json-is-a-folder", "`eval ava --json DIR` ... prints a traceback (after computing)", "error",
         lambda d: _ava(d)[:-2] + ["--json", str(_mkdir(d / "outdir"))], ("outdir",)),
    Case("ava-plots-is-a-file", "`--plots FILE` prints a traceback (after computing)", "error",
         lambda d: _ava(d, extra=("--plots", str(_touch(d / "plots.png")))), ("plots.png",)),
    Case("ava-json-would-overwrite-an-input", "never overwrite an input", "error",
         lambda d: _ava(d)[:-2] + ["--json", str(d / "gt.csv")], ("gt.csv",)),
    Case("ava-label-map-id-300000000", "label maps (one id 300000000 allocates 5.2 GB)", "error",
         lambda d: _ava(d, labels=LABELS + 'item {\n  name: "huge"\n  id: 300000000\n}\n'), ("labels.pbtxt", "id"),
         None, "test_eval_ava.py::test_label_map_id_beyond_the_limit_is_refused_before_allocating"),
    Case("ava-csv-not-utf8", "UTF-8 decoding errors must name the file and the field", "error",
         lambda d: _ava(d, det=csv_bytes(DET_ROWS[:2]) + b"vid_\xff,0902,0.1,0.1,0.5,0.5,1,0.5\n"),
         ("det.csv:3", "video_id"), None, "test_eval_ava.py::test_bytes_that_are_not_utf8_name_file_line_and_field"),
    Case("ava-csv-not-utf8-in-a-number", "UTF-8 decoding errors must name the file and the field", "error",
         lambda d: _ava(d, det=csv_bytes(DET_ROWS[:2]) + b"vid_a,0902,0.1,0.\xe9,0.5,0.5,1,0.5\n"),
         ("det.csv:3", "y1"), None, "test_eval_ava.py::test_bytes_that_are_not_utf8_name_file_line_and_field"),
    Case("ava-label-map-not-utf8", "UTF-8 decoding errors must name the file", "error",
         lambda d: _ava(d, labels=LABELS.encode().replace(b"walk", b"w\xffalk")), ("labels.pbtxt:10",), None,
         "test_eval_ava.py::test_bytes_that_are_not_utf8_name_file_line_and_field"),
    Case("ava-line-of-2MB-without-newline", "every size from a file is validated against a sane limit", "error",
         lambda d: _ava(d, det=csv_bytes(DET_ROWS) + b"v" * (2 << 20)), ("det.csv:7", "line length"), None,
         "test_eval_ava.py::test_a_line_beyond_the_limit_is_refused"),
    Case("ava-quoted-field-over-a-line-end", "read CSVs the way the official tools would succeed or fail",
         "error", lambda d: _ava(d, det=csv_bytes(DET_ROWS) + b'"vid\nb",0902,0.1,0.1,0.5,0.5,1,0.5\n'),
         ("det.csv:7",), None, "test_eval_ava.py::test_quoted_field_over_a_line_end_is_refused"),
    Case("ava-action-id-of-30-digits", "an integer beyond float range crashed the parser", "same",
         lambda d: _ava(d, det=csv_bytes(DET_ROWS) + b"vid_a,0902,0.1,0.1,0.5,0.5," + b"9" * 30 + b",0.5\n"),
         (), lambda d: _ava(d, name="_clean", det=csv_bytes(DET_ROWS) + b"vid_a,0902,0.1,0.1,0.5,0.5,999,0.5\n"),
         "test_eval_ava.py::test_action_id_beyond_2_53_is_dropped_like_any_id_outside_the_label_map"),
    Case("ava-exclusions-with-a-bom", "a UTF-8 BOM in an AVA CSV", "warning",
         lambda d: _ava(d, extra=("--exclusions", str(_write(d / "ex.csv", BOM + b"vid_b,0902\n")))), ("ex.csv",),
         lambda d: _ava(d, name="_clean", extra=("--exclusions", str(_write(d / "ex_clean.csv", b"vid_b,0902\n")))),
         "test_eval_ava.py::test_utf8_bom_is_removed_and_reported"),
    Case("ava-exclusions-field-too-large", "csv module errors print tracebacks", "error",
         lambda d: _ava(d, extra=("--exclusions", str(_write(d / "ex.csv", b'"' + b"v" * 200000 + b'",0902\n')))),
         ("ex.csv:1",), None, "test_fuzz_readers.py::test_exclusions_reader_keeps_the_contract"),
]


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"")
    return p


def _write(p: Path, data: bytes) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


# ---- Kinetics-TPS ---------------------------------------------------------------------------

H1, HEAD = [0, 0, 99, 199], [10, 10, 29, 29]


def tps_files():
    """A valid ground truth and prediction: 2 videos, one human with two parts each."""
    gt_vid = {"v1": "run", "v2": "jump"}
    pred_vid = {"v1": "run", "v2": "run"}
    gt_part, pred_part = {}, {}
    for v in gt_vid:
        human = {"box": H1, "parts": {"head": {"box": HEAD, "verb": "look"}, "hip": {"box": [40, 90, 70, 120],
                                                                                     "verb": "bend"}}}
        gt_part[v] = {"img_00001.json": {"humans": [human]}, "img_00002.json": {"humans": []}}
        pred_part[v] = {"img_00001.json": {"humans": [
            {"box": H1, "parts": {"head": {"box": [HEAD], "verb": ["look"]}, "hip": {"box": [[40, 90, 70, 120]],
                                                                                   "verb": ["sit"]}}}]}}
    return gt_vid, gt_part, pred_vid, pred_part


def _tps(d: Path, mutate=None, raw: dict | None = None, extra: tuple = ()) -> list:
    """Write the four files (after `mutate(gt_vid, gt_part, pred_vid, pred_part)`); `raw` replaces
    whole files by bytes: {file name: bytes}."""
    files = list(tps_files())
    if mutate:
        mutate(*files)
    (d / "gt").mkdir(parents=True, exist_ok=True)
    (d / "pred").mkdir(parents=True, exist_ok=True)
    for (kind, what), data in zip((("gt", "vid"), ("gt", "part"), ("pred", "vid"), ("pred", "part")), files):
        name = f"{kind}_{what}_result.json"
        payload = (raw or {}).get(name)
        (d / kind / name).write_bytes(payload if payload is not None else json.dumps(data).encode())
    return ["eval", "tps", "--gt-dir", str(d / "gt"), "--pred-dir", str(d / "pred"), "--no-grid",
            "--json", str(d / "tps.json"), *extra]


def _gt_human(g):
    return g["v1"]["img_00001.json"]["humans"][0]


def _pred_human(p):
    return p["v1"]["img_00001.json"]["humans"][0]


TPS_CASES = [
    Case("tps-ground-truth-human-without-box", "malformed TPS files (`KeyError 'box'`)", "error",
         lambda d: _tps(d, lambda gv, gp, pv, pp: _gt_human(gp).pop("box")), ("gt_part_result.json", "'box'"), None,
         "test_eval_tps.py::test_malformed_files_name_file_video_frame_and_field"),
    Case("tps-predicted-human-without-box", "malformed TPS files (`KeyError 'box'`)", "error",
         lambda d: _tps(d, lambda gv, gp, pv, pp: _pred_human(pp).pop("box")), ("pred_part_result.json", "'box'"),
         None, "test_eval_tps.py::test_malformed_files_name_file_video_frame_and_field"),
    Case("tps-frame-is-a-list", "malformed TPS files (`AttributeError`)", "error",
         lambda d: _tps(d, lambda gv, gp, pv, pp: gp["v1"].update({"img_00001.json": []})),
         ("gt_part_result.json", "frame"), None, "test_eval_tps.py::test_malformed_files_name_file_video_frame_and_field"),
    Case("tps-nested-100000-deep", "malformed TPS files (`RecursionError`)", "error",
         lambda d: _tps(d, raw={"pred_part_result.json": b"[" * 100000 + b"]" * 100000}),
         ("pred_part_result.json", "nested"), None, "test_eval_tps.py::test_json_nested_too_deeply_is_refused"),
    Case("tps-box-coordinate-of-400-digits", "malformed TPS files (`OverflowError`)", "error",
         lambda d: _tps(d, raw={"pred_part_result.json": json.dumps(tps_files()[3]).replace(
             "[0, 0, 99, 199]", "[0, 0, 99, 1" + "0" * 400 + "]", 1).encode()}),
         ("pred_part_result.json", "box"), None, "test_eval_tps.py::test_malformed_files_name_file_video_frame_and_field"),
    Case("tps-nan-box", '"matrix contains invalid numeric entries" (TPS NaN box) must name the file and field',
         "error", lambda d: _tps(d, raw={"pred_part_result.json": json.dumps(tps_files()[3]).replace(
             "[0, 0, 99, 199]", "[0, 0, NaN, 199]", 1).encode()}),
         ("pred_part_result.json", "human 0: field box: expected finite numbers"), None,
         "test_eval_tps.py::test_malformed_files_name_file_video_frame_and_field"),
    Case("tps-predicted-action-is-a-number", "six wrong types in TPS files that are silently scored 0", "error",
         lambda d: _tps(d, lambda gv, gp, pv, pp: pv.update(v1=7)), ("pred_vid_result.json", "'v1'"), None,
         "test_eval_tps.py::test_wrong_types_are_refused_not_scored_zero"),
    Case("tps-ground-truth-verb-is-a-list", "six wrong types in TPS files that are silently scored 0", "error",
         lambda d: _tps(d, lambda gv, gp, pv, pp: _gt_human(gp)["parts"]["head"].update(verb=["look"])),
         ("gt_part_result.json", "verb"), None, "test_eval_tps.py::test_wrong_types_are_refused_not_scored_zero"),
    Case("tps-predicted-verb-is-a-number", "six wrong types in TPS files that are silently scored 0", "error",
         lambda d: _tps(d, lambda gv, gp, pv, pp: _pred_human(pp)["parts"]["head"].update(verb=[3])),
         ("pred_part_result.json", "verb"), None, "test_eval_tps.py::test_wrong_types_are_refused_not_scored_zero"),
    Case("tps-predicted-parts-is-a-list", "six wrong types in TPS files that are silently scored 0", "error",
         lambda d: _tps(d, lambda gv, gp, pv, pp: _pred_human(pp).update(
             parts=[{"name": "head", "box": [HEAD], "verb": ["look"]}])),
         ("pred_part_result.json", "parts"), None, "test_eval_tps.py::test_wrong_types_are_refused_not_scored_zero"),
    Case("tps-predicted-frame-without-humans", "six wrong types in TPS files that are silently scored 0", "error",
         lambda d: _tps(d, lambda gv, gp, pv, pp: pp["v1"].update({"img_00001.json": {"people": []}})),
         ("pred_part_result.json", "'humans'"), None, "test_eval_tps.py::test_wrong_types_are_refused_not_scored_zero"),
    Case("tps-predicted-human-without-parts", "six wrong types in TPS files that are silently scored 0", "error",
         lambda d: _tps(d, lambda gv, gp, pv, pp: _pred_human(pp).pop("parts")),
         ("pred_part_result.json", "'parts'"), None, "test_eval_tps.py::test_wrong_types_are_refused_not_scored_zero"),
    Case("tps-predicted-part-without-verb", "six wrong types in TPS files that are silently scored 0", "error",
         lambda d: _tps(d, lambda gv, gp, pv, pp: _pred_human(pp)["parts"]["head"].pop("verb")),
         ("pred_part_result.json", "'verb'"), None, "test_eval_tps.py::test_wrong_types_are_refused_not_scored_zero"),
    Case("tps-ground-truth-without-videos", '"psc: no videos to score" must name the file', "error",
         lambda d: _tps(d, lambda gv, gp, pv, pp: gv.clear()), ("gt_vid_result.json",), None,
         "test_eval_tps.py::test_ground_truth_without_videos_names_the_file"),
    Case("tps-not-utf8", "UTF-8 decoding errors must name the file", "error",
         lambda d: _tps(d, raw={"pred_vid_result.json": b'{"v1": "r\xffun", "v2": "run"}'}),
         ("pred_vid_result.json", "UTF-8"), None, "test_fuzz_readers.py::test_tps_reader_keeps_the_contract"),
    Case("tps-frame-of-5000-humans", "small files can take hours of CPU (matching is cubic)", "error",
         lambda d: _tps(d, lambda gv, gp, pv, pp: gp["v1"]["img_00001.json"].update(
             humans=[{"box": [i, i, i + 50, i + 90], "parts": {}} for i in range(5000)])),
         ("gt_part_result.json", "humans"), None, "test_eval_tps.py::test_frame_with_too_many_humans_is_refused"),
    Case("tps-json-is-a-folder", "`--json DIR` prints a traceback (after computing)", "error",
         lambda d: _tps(d)[:-2] + ["--json", str(_mkdir(d / "outdir"))], ("outdir",)),
]


# ---- pickles (through `humact train --dataset pyskl`) -----------------------------------------

def _train_pickle(d: Path, data: bytes) -> list:
    _write(d / "data.pkl", data)
    return ["train", "--dataset", "pyskl", "--data", str(d / "data.pkl"), "--out", str(d / "run"), "--epochs", "1",
            "--quiet"]


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned",))


PICKLE_CASES = [
    Case("pickle-that-runs-code", "every refused pickle (UnsafePickleError is not caught by the CLI)", "error",
         lambda d: _train_pickle(d, pickle.dumps(_Evil())), ("data.pkl", "system"), None,
         "test_safe_pickle.py::test_pickle_that_calls_a_function_is_refused_naming_it"),
    Case("pickle-bytearray-3GB", "a 32-byte pickle allocates 3 GB", "error",
         lambda d: _train_pickle(d, b"\x80\x04cbuiltins\nbytearray\nI3000000000\n\x85R."), ("data.pkl", "bytearray"),
         None, "test_safe_pickle.py::test_bytearray_of_a_size_beyond_the_file_is_refused_before_allocating"),
    Case("pickle-ndarray-of-a-forged-shape", "a 209-byte one a 2.7 GB array", "error",
         lambda d: _train_pickle(d, _forged_array_pickle()), ("data.pkl",), None,
         "test_safe_pickle.py::test_array_shape_beyond_its_data_is_refused_before_allocating"),
    Case("pickle-memo-index-4GB", "every size that comes from a file is validated (memo index)", "error",
         lambda d: _train_pickle(d, b"\x80\x04Nr\x00\x00\x00\x10."), ("data.pkl", "memo"), None,
         "test_safe_pickle.py::test_memo_index_beyond_the_opcodes_is_refused_before_allocating"),
    Case("pickle-zero-byte-dtype-of-1e15-elements", "bound array shapes before allocating", "error",
         lambda d: _train_pickle(d, _zero_itemsize_pickle()), ("data.pkl", "elements"), None,
         "test_safe_pickle.py::test_zero_byte_dtype_with_a_huge_shape_is_refused"),
    Case("pickle-truncated", "every refused pickle prints a traceback", "error",
         lambda d: _train_pickle(d, pickle.dumps({"split": {}, "annotations": []})[:-5]), ("data.pkl",), None,
         "test_safe_pickle.py::test_truncated_pickle_names_the_file"),
    Case("pickle-declares-3GB-of-bytes", "sizes read from files are bounded before allocating", "error",
         lambda d: _train_pickle(d, b"\x80\x04\x8e" + struct.pack("<Q", 3 << 30) + b"abc."), ("data.pkl",), None,
         "test_safe_pickle.py::test_declared_length_beyond_the_file_is_refused_before_allocating"),
]


def _forged_array_pickle() -> bytes:
    """numpy's `_reconstruct(ndarray, (350_000_000,), "f8")` with no data behind it: 80 bytes, 2.8 GB."""
    return (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nJ" + struct.pack("<i", 350_000_000)
            + b"\x85U\x02f8\x87R.")


def _zero_itemsize_pickle() -> bytes:
    """An array of a zero-byte structured dtype with shape (10**15,): no data, 10**15 elements."""
    import numpy as np

    a = np.zeros(3, dtype=[])
    return pickle.dumps(a, protocol=4).replace(b"K\x03\x85", b"\x8a\x07" + (10 ** 15).to_bytes(7, "little") + b"\x85", 1)


# ---- result JSON (through `humact analyze RESULT.json`) -----------------------------------

def result_doc(num_frames: int = 3, tracks: int = 1) -> dict:
    return {"schema": "humact.result", "version": 1, "humact_version": "0.1.0", "backend": "test",
            "video": {"path": "v.mp4", "name": "v", "width": 64, "height": 48, "fps": 25.0, "num_frames": num_frames,
                      "frame_times": [i / 25 for i in range(num_frames)]},
            "keypoint_names": [], "part_names": [],
            "tracks": [{"track_id": t, "frames": [0, 1], "boxes": [[1, 1, 9, 9]] * 2, "box_scores": [0.9, 0.9],
                        "keypoints": [[[5, 5]] * 17] * 2, "keypoint_scores": [[0.5] * 17] * 2} for t in range(tracks)]}


def _analyze(d: Path, doc=None, raw: bytes | None = None) -> list:
    _write(d / "result.json", raw if raw is not None else json.dumps(doc).encode())
    return ["analyze", str(d / "result.json"), "--out", str(d / "out")]


def _huge_frames() -> bytes:
    doc = result_doc()
    doc["video"]["num_frames"] = 400_000
    doc["video"]["frame_times"] = [0.0] * 400_000
    doc["tracks"] = result_doc(tracks=1000)["tracks"]
    return json.dumps(doc, separators=(",", ":")).encode()


RESULT_CASES = [
    Case("result-json-asks-for-10GB", "result JSON readers (a 0.9 MB JSON asked for > 10 GB)", "error",
         lambda d: _analyze(d, raw=_huge_frames()), ("result.json", "num_frames"), None,
         "test_results_io.py::test_dense_arrays_beyond_the_limit_are_refused_before_allocating"),
    Case("result-json-is-a-list", "malformed result JSON prints a traceback", "error",
         lambda d: _analyze(d, raw=b"[]"), ("result.json",), None,
         "test_results_io.py::test_wrong_types_name_the_file_and_field"),
    Case("result-json-track-id-is-text", "malformed result JSON prints a traceback", "error",
         lambda d: _analyze(d, doc={**result_doc(), "tracks": [{**result_doc()["tracks"][0], "track_id": "a"}]}),
         ("result.json", "track_id"), None, "test_results_io.py::test_wrong_types_name_the_file_and_field"),
    Case("result-json-frame-times-too-short", "malformed result JSON prints a traceback", "error",
         lambda d: _analyze(d, doc={**result_doc(), "video": {**result_doc()["video"], "frame_times": [0.0]}}),
         ("result.json", "frame_times"), None, "test_results_io.py::test_wrong_types_name_the_file_and_field"),
    Case("result-json-negative-num-frames", '"expected non-negative integer" must name the file and the field',
         "error", lambda d: _analyze(d, doc={**result_doc(), "video": {**result_doc()["video"], "num_frames": -1}}),
         ("result.json", "num_frames"), None, "test_results_io.py::test_wrong_types_name_the_file_and_field"),
]

CASES = AVA_CASES + TPS_CASES + PICKLE_CASES + RESULT_CASES


# ---- running a checkout on every case -----------------------------------------------------------

_BOOT = """
import atexit, os, resource, sys
atexit.register(lambda: open(os.environ["BAD_INPUTS_RSS"], "w").write(
    str(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)))
from humact.cli import main
sys.argv[0] = "humact"
sys.exit(main())
"""


def _run_one(repo: Path, argv: list, timeout: float, rss_file: Path) -> dict:
    import os
    import resource
    import subprocess
    import time

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (12 << 30, 12 << 30))

    env = dict(os.environ, PYTHONPATH=str(repo), OMP_NUM_THREADS="1", BAD_INPUTS_RSS=str(rss_file))
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", _BOOT, *argv], cwd=repo, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=limit)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    dt = time.perf_counter() - t
    err_lines = [x for x in err.decode("utf-8", "replace").splitlines() if x.strip()]
    rss = int(rss_file.read_text()) / 1024 if rss_file.exists() else float("nan")
    return {"rc": proc.returncode, "stderr_lines": len(err_lines), "traceback": any("Traceback" in x for x in err_lines),
            "last": err_lines[-1] if err_lines else "", "stdout": out.decode("utf-8", "replace"), "seconds": dt,
            "rss_mb": rss}


def main() -> int:
    import argparse
    import tempfile

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1])
    ap.add_argument("--only", default="")
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    print("| case | exit | stderr lines | traceback | peak RSS MB | s | last stderr line |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for case in CASES:
        if args.only not in case.name:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            argv = case.build(Path(tmp) / "case")
            r = _run_one(args.repo, argv, args.timeout, Path(tmp) / "rss")
            last = r["last"].replace("|", "/")[:160]
            if r["rc"] == 0:
                line = next((x for x in r["stdout"].splitlines() if "mAP" in x or "Score" in x), "")
                last = (last + " // " + line)[:220]
            print(f"| {case.name} | {r['rc']} | {r['stderr_lines']} | {'yes' if r['traceback'] else 'no'} | "
                  f"{r['rss_mb']:.0f} | {r['seconds']:.1f} | {last} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
