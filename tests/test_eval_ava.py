"""AVA frame-mAP: the official ActivityNet semantics, rule by rule, and parity with the oracle."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ava_oracle
from humact.eval.ava import (AvaDetections, AvaFormatError, LabelMap, average_precision, evaluate_ava_files,
                             read_ava_csv, read_exclusions, read_label_map, write_ava_detections,
                             write_label_map)
from conftest import shared_file

A = (0.0, 0.0, 0.5, 1.0)           # x1, y1, x2, y2
B = (0.5, 0.0, 1.0, 1.0)


def csv_text(rows):
    return "".join(",".join(str(v) for v in r) + "\n" for r in rows)


def row(video, ts, box, action, last):
    return (video, ts, *box, action, last)


@pytest.fixture
def files(tmp_path):
    """write(gt_rows, det_rows, ids=(1, 2), exclusions=None) -> paths."""

    def write(gt_rows, det_rows, ids=(1, 2), exclusions=None):
        (tmp_path / "gt.csv").write_text(csv_text(gt_rows))
        (tmp_path / "det.csv").write_text(csv_text(det_rows))
        write_label_map(tmp_path / "labels.pbtxt", LabelMap(list(ids), [f"action{i}" for i in ids]))
        ex = None
        if exclusions:
            ex = tmp_path / "ex.csv"
            ex.write_text(csv_text(exclusions))
        return tmp_path / "gt.csv", tmp_path / "det.csv", tmp_path / "labels.pbtxt", ex

    return write


def evaluate(paths, **kw):
    return evaluate_ava_files(*paths, **kw)


# ---- rules, hand-computed ---------------------------------------------------------------

def test_higher_scored_duplicate_written_later_is_the_true_positive(files):
    p = files([row("v", "0902", A, 1, 0)], [row("v", "0902", A, 1, 0.3), row("v", "0902", A, 1, 0.9)], ids=(1,))
    # ranked: 0.9 TP, 0.3 FP -> AP 1 (file order would give FP first and AP 0.5)
    assert evaluate(p).ap[1] == 1.0


def test_iou_one_third_is_a_false_positive(files):
    gt_box, det_box = (0.0, 0.0, 0.5, 1.0), (0.0, 0.0, 1.0, 0.5)   # intersection 1/4, union 3/4
    p = files([row("v", "0902", gt_box, 1, 0)],
              [row("v", "0902", det_box, 1, 0.9), row("v", "0902", gt_box, 1, 0.5)], ids=(1,))
    # ranked FP then TP: precision [0, 1/2] at recall [0, 1] -> AP 1/2
    assert evaluate(p).ap[1] == 0.5


def test_best_box_taken_is_a_false_positive_without_fallback(files):
    near = (0.0, 0.0, 0.5, 0.9)  # IoU 0.9 with A, 0 with B
    p = files([row("v", "0902", A, 1, 0), row("v", "0902", B, 1, 1)],
              [row("v", "0902", A, 1, 0.9), row("v", "0902", near, 1, 0.8)], ids=(1,))
    # the second detection's best box (A) is taken -> FP; B is never claimed
    assert evaluate(p).ap[1] == pytest.approx(0.5)


def test_equal_scores_on_a_keyframe_follow_the_official_heap_order(files):
    # Two class-1 rows with score 0.5: the hit on A and a miss on B. The official reader's
    # heap puts the smaller tuple (0.5, 1, y1, x1, ...) -- A's -- first in either file order;
    # argsort([.5, .5])[::-1] then ranks B's miss first: precision [0, 1/2] -> AP 1/2.
    for dets in ([row("v", "0902", B, 1, 0.5), row("v", "0902", A, 1, 0.5)],
                 [row("v", "0902", A, 1, 0.5), row("v", "0902", B, 1, 0.5)]):
        p = files([row("v", "0902", A, 1, 0)], dets, ids=(1,))
        assert evaluate(p).ap[1] == 0.5 == ava_oracle.evaluate(*p)[0][1]


def test_equal_iou_with_two_boxes_takes_the_first_in_official_ground_truth_order(files):
    g1, g2 = (0.0, 0.0, 0.75, 1.0), (0.25, 0.0, 1.0, 1.0)
    d = (0.125, 0.0, 0.875, 1.0)          # IoU 5/7 with both (dyadic coordinates: exactly equal)
    # ground truth is ordered by descending 8th column (person id): g1 (id 1) before g2 (id 0),
    # whatever the file order; d takes g1, so the exact hit on g1 below it is a false positive
    p = files([row("v", "0902", g2, 1, 0), row("v", "0902", g1, 1, 1)],
              [row("v", "0902", d, 1, 0.9), row("v", "0902", g1, 1, 0.8)], ids=(1,))
    assert evaluate(p).ap[1] == 0.5 == ava_oracle.evaluate(*p)[0][1]


def test_class_outside_the_label_map_is_ignored(files):
    p = files([row("v", "0902", A, 1, 0), row("v", "0902", B, 9, 0)],
              [row("v", "0902", A, 1, 0.9), row("v", "0902", B, 9, 0.95)], ids=(1, 2))
    r = evaluate(p)
    assert set(r.ap) == {1} and r.mAP == 1.0


def test_excluded_keyframe_is_dropped_from_both_files(files):
    p = files([row("v", "0902", A, 1, 0), row("v", "0903", A, 1, 0)],
              [row("v", "0902", A, 1, 0.5), row("v", "0903", B, 1, 0.9)], ids=(1,), exclusions=[("v", "903")])
    r = evaluate(p)
    assert r.num_gt[1] == 1 and r.ap[1] == 1.0


def test_detections_on_a_keyframe_without_ground_truth_are_false_positives_in_2019(files):
    p = files([row("v", "0902", A, 1, 0)], [row("v", "0902", A, 1, 0.5), row("v", "0950", A, 1, 0.9)], ids=(1,))
    assert evaluate(p).ap[1] == 0.5


def test_empty_keyframe_is_scored_and_others_ignored_in_head(files, tmp_path):
    gt = csv_text([row("v", "902", A, 1, 0)]) + "v,904\n"
    p = files([], [row("v", "902", A, 1, 0.5), row("v", "904", A, 1, 0.9), row("v", "950", A, 1, 0.95)], ids=(1,))
    (tmp_path / "gt.csv").write_text(gt)
    r = evaluate(p[:3], semantics="activitynet-head")
    # 904 (empty, in ground truth): FP ranked first; 950 (not in ground truth): ignored
    assert r.ap[1] == 0.5


def test_class_with_ground_truth_and_no_detection_has_ap_zero(files):
    p = files([row("v", "0902", A, 1, 0), row("v", "0902", A, 2, 0)], [row("v", "0902", A, 1, 0.9)])
    r = evaluate(p)
    assert r.ap == {1: 1.0, 2: 0.0} and r.mAP == 0.5


def test_class_without_ground_truth_is_left_out_of_the_mean(files):
    p = files([row("v", "0902", A, 1, 0)], [row("v", "0902", A, 1, 0.9), row("v", "0902", A, 2, 0.9)])
    r = evaluate(p)
    assert set(r.ap) == {1} and r.mAP == 1.0


def test_only_the_50_best_rows_of_a_keyframe_count_unless_uncapped(files):
    dets = [row("v", "0902", B, 2, 0.9 - i / 100) for i in range(50)] + [row("v", "0902", A, 1, 0.1)]
    p = files([row("v", "0902", A, 1, 0)], dets)
    assert evaluate(p).ap[1] == 0.0
    assert evaluate(p, cap=None).ap[1] == 1.0


def test_cap_through_equal_scores_evicts_as_the_official_heap(files):
    # 48 high rows, then a hit and a miss at 0.1, then one more high row: the heap is full
    # and evicts its smallest tuple, (0.1, 1, y1=0, x1=0, ...) -- the hit, though it came first
    dets = [row("v", "0902", B, 2, 0.9 - i / 1000) for i in range(48)]
    dets += [row("v", "0902", A, 1, 0.1), row("v", "0902", B, 1, 0.1), row("v", "0902", B, 2, 0.95)]
    p = files([row("v", "0902", A, 1, 0)], dets)
    assert evaluate(p).ap[1] == 0.0 == ava_oracle.evaluate(*p)[0][1]


def test_invalid_boxes_are_dropped(files):
    p = files([row("v", "0902", A, 1, 0)],
              [row("v", "0902", (0.5, 0.0, 0.5, 1.0), 1, 0.9), row("v", "0902", A, 1, 0.5)], ids=(1,))
    assert evaluate(p).ap[1] == 1.0


def test_timestamps_with_and_without_leading_zero_are_one_keyframe(files):
    p = files([row("v", "902", A, 1, 0)], [row("v", "0902", A, 1, 0.9)], ids=(1,))
    assert evaluate(p).ap[1] == 1.0


def test_average_precision_is_voc_all_point():
    # precision made non-increasing from the right: [1, 2/3, 3/4] -> [1, 3/4, 3/4]
    p = np.array([1.0, 0.5, 2 / 3, 0.75])
    r = np.array([0.25, 0.25, 0.5, 0.75])
    assert average_precision(p, r) == pytest.approx(0.25 * 1 + 0.25 * 0.75 + 0.25 * 0.75)


# ---- formats -------------------------------------------------------------------------------

def test_label_map_reads_both_pbtxt_styles(tmp_path):
    labels = LabelMap([1, 3], ["bend/bow (at the waist)", "crouch/kneel"])
    for style in ("item", "label"):
        write_label_map(tmp_path / f"{style}.pbtxt", labels, style=style)
        assert read_label_map(tmp_path / f"{style}.pbtxt") == labels


def test_wrong_column_count_names_file_and_line(tmp_path):
    (tmp_path / "d.csv").write_text("v,0902,0.1,0.1,0.5,0.5,1,0.5\nv,0902,0.1,0.1\n")
    with pytest.raises(AvaFormatError, match=r"d\.csv:2"):
        read_ava_csv(tmp_path / "d.csv", columns=(8,))


def test_unparsable_field_is_named(tmp_path):
    (tmp_path / "d.csv").write_text("v,0902,0.1,abc,0.5,0.5,1,0.5\n")
    with pytest.raises(AvaFormatError, match=r"d\.csv:1: field y1"):
        read_ava_csv(tmp_path / "d.csv", columns=(8,))


def test_fast_parser_equals_python_float(tmp_path):
    rng = np.random.default_rng(0)
    vals = [f"{x:.{d}f}" for x, d in zip(rng.uniform(-2, 2, 400), rng.integers(0, 12, 400))]
    vals += ["1e-3", "0.30000000000000004", "5.", ".5", "-0.0", "+0.25", "123456789012345678.5"]
    lines = [f"v{i % 3},{900 + i % 7},{v},0.1,0.9,0.9,{1 + i % 5},{v}\n" for i, v in enumerate(vals)]
    (tmp_path / "d.csv").write_text("".join(lines))
    t = read_ava_csv(tmp_path / "d.csv", columns=(8,))
    assert t.boxes[:, 0].tolist() == [float(v) for v in vals]
    assert t.score.tolist() == [float(v) for v in vals]
    assert [t.keys[k] for k in t.kf] == [(f"v{i % 3}", 900 + i % 7) for i in range(len(vals))]


def test_detections_round_trip_through_the_writer(tmp_path):
    d = AvaDetections(["a", "b"], [902, 1003], [[0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.9, 1.0]], [12, 17], [0.25, 1 / 3])
    write_ava_detections(tmp_path / "d.csv", d, decimals=3)
    assert (tmp_path / "d.csv").read_text().splitlines()[1] == "b,1003,0.500,0.500,0.900,1.000,17,0.333"
    t = read_ava_csv(tmp_path / "d.csv", columns=(8,))
    assert t.keys == [("a", 902), ("b", 1003)] and t.action.tolist() == [12, 17]


def test_detections_from_action_scores_cover_every_person_and_class(tmp_path):
    from humact.types import ActionScores
    scores = ActionScores(labels=("stand", "sit"), scores=np.array([[0.9, 0.1], [0.2, 0.7]]), track_ids=[3, 4])
    d = AvaDetections.from_action_scores("vid", 902, [[0, 0, 320, 240], [320, 0, 640, 480]], (640, 480),
                                         scores, class_ids=[12, 11])
    write_ava_detections(tmp_path / "d.csv", d)
    assert (tmp_path / "d.csv").read_text().splitlines() == [
        "vid,0902,0.000,0.000,0.500,0.500,12,0.9000", "vid,0902,0.000,0.000,0.500,0.500,11,0.1000",
        "vid,0902,0.500,0.000,1.000,1.000,12,0.2000", "vid,0902,0.500,0.000,1.000,1.000,11,0.7000"]


def test_exclusions_become_integer_keys(tmp_path):
    (tmp_path / "e.csv").write_text("v,0903\nw,1000\n")
    assert read_exclusions(tmp_path / "e.csv") == {("v", 903), ("w", 1000)}


BOM = b"\xef\xbb\xbf"


def _table(t):
    return [t.keys[k] for k in t.kf], t.boxes.tolist(), t.action.tolist(), t.score.tolist()


def test_utf8_bom_is_removed_and_reported(files):
    gt, det, labels, _ = files([row("v", "0902", A, 1, 0), row("w", "0902", B, 1, 0)],
                               [row("v", "0902", A, 1, 0.9), row("w", "0902", B, 1, 0.8)], ids=(1,))
    clean = evaluate_ava_files(gt, det, labels)
    for path in (gt, det):
        path.write_bytes(BOM + path.read_bytes())
        r = evaluate_ava_files(gt, det, labels)
        assert r.mAP == clean.mAP == 1.0        # the official reader, keeping the BOM in 'v', gives 0.5
        assert any(path.name in n and "byte-order mark" in n for n in r.notes)
    ex = gt.parent / "ex.csv"
    ex.write_bytes(BOM + b"v,0902\n")
    notes = []
    assert read_exclusions(ex, notes=notes) == {("v", 902)} and "ex.csv" in notes[0]


def test_label_map_bom_is_removed_and_reported(tmp_path):
    (tmp_path / "l.pbtxt").write_bytes(BOM + b'  name: "stand"\n  id: 1\n')
    notes = []
    assert read_label_map(tmp_path / "l.pbtxt", notes=notes) == LabelMap([1], ["stand"])
    assert "l.pbtxt" in notes[0]


@pytest.mark.parametrize("chunk", [None, 7, 40])
def test_cr_and_crlf_line_ends_read_as_universal_newlines(tmp_path, monkeypatch, chunk):
    if chunk:   # small chunks put CRLF pairs across chunk boundaries
        monkeypatch.setattr("humact.eval.ava._CHUNK", chunk)
    rows = [row(v, ts, A, a, s) for v, ts, a, s in (("v", "0902", 1, 0.5), ("v", "0903", 2, 0.25), ("w", "0902", 1, 1))]
    lf = csv_text(rows)
    (tmp_path / "lf.csv").write_text(lf)
    ref = _table(read_ava_csv(tmp_path / "lf.csv"))
    for name, text in (("cr", lf.replace("\n", "\r")), ("crlf", lf.replace("\n", "\r\n")),
                       ("mixed", lf.replace("\n", "\r", 1).replace("\n", "\r\n", 1)),
                       ("quoted_cr", '"v",0902,0,0,0.5,1,1,0.5\r' + lf.split("\n", 1)[1].replace("\n", "\r"))):
        (tmp_path / f"{name}.csv").write_bytes(text.encode())
        assert _table(read_ava_csv(tmp_path / f"{name}.csv")) == ref, name


def test_empty_detection_file_scores_zero_with_a_note(files):
    gt, det, labels, _ = files([row("v", "0902", A, 1, 0)], [], ids=(1,))
    r = evaluate_ava_files(gt, det, labels)
    assert r.mAP == 0.0 and any("det.csv" in n and "no detection rows" in n for n in r.notes)
    assert r.to_json()["notes"] == r.notes


def test_detections_matching_no_ground_truth_keyframe_are_noted(files):
    r = evaluate_ava_files(*files([row("v", "0902", A, 1, 0)], [row("x", "0902", A, 1, 0.9)], ids=(1,))[:3])
    assert r.mAP == 0.0 and any("none of its 1 keyframes" in n for n in r.notes)
    r = evaluate_ava_files(*files([row("v", "0902", A, 1, 0)], [row("v", "0902", A, 7, 0.9)], ids=(1,))[:3])
    assert any("none of its 1 rows is of a label-map class" in n for n in r.notes)


def test_clean_files_have_no_notes(files):
    assert evaluate_ava_files(*files([row("v", "0902", A, 1, 0)], [row("v", "0902", A, 1, 0.9)], ids=(1,))[:3]).notes == []


@pytest.mark.parametrize("gt_rows, exclusions, why", [
    ([], None, "the file is empty"),
    ([row("v", "0902", A, 9, 0)], None, "none of a label-map class"),
    ([row("v", "0902", A, 1, 0)], [("v", "0902")], "outside the excluded keyframes"),
])
def test_ground_truth_without_label_map_boxes_is_an_error(files, gt_rows, exclusions, why):
    p = files(gt_rows, [row("v", "0902", A, 1, 0.9)], ids=(1,), exclusions=exclusions)
    with pytest.raises(AvaFormatError, match=r"gt\.csv: .*" + why + r".*mAP is undefined"):
        evaluate_ava_files(*p)


def test_label_map_id_beyond_the_limit_is_refused_before_allocating(files, monkeypatch):
    import tracemalloc

    from humact.errors import LimitError
    gt, det, labels, _ = files([row("v", "0902", A, 1, 0)], [row("v", "0902", A, 1, 0.9)], ids=(1,))
    labels.write_text(labels.read_text() + 'item {\n  name: "huge"\n  id: 300000000\n}\n')
    tracemalloc.start()
    try:
        with pytest.raises(LimitError, match=r"labels\.pbtxt:\d+: field id: 300,000,000 .* HUMACT_LIMIT_MAX_CLASS_ID"):
            evaluate_ava_files(gt, det, labels)
        assert tracemalloc.get_traced_memory()[1] < 50e6
    finally:
        tracemalloc.stop()
    labels.write_text(labels.read_text().replace("300000000", "2000000"))
    monkeypatch.setenv("HUMACT_LIMIT_MAX_CLASS_ID", "3M")     # a user who needs more raises the limit
    assert evaluate_ava_files(gt, det, labels).mAP == 1.0
    labels.write_text(labels.read_text().replace("2000000", "9" * 5000))
    with pytest.raises(LimitError, match="5000 digits"):
        read_label_map(labels)


@pytest.mark.parametrize("content, where", [
    (b"v\xff,0902,0.1,0.1,0.5,0.5,1,0.5\n", r"d\.csv:2: fields video_id,timestamp: not UTF-8"),
    (b"v,0902,0.1,0.\xe9,0.5,0.5,1,0.5\n", r"d\.csv:2: field y1: not UTF-8"),
    (b"v,0902,0.1,0.1,0.5,0.5,1,0.5 \xff\n", r"d\.csv:2: not UTF-8"),       # the csv-module path
])
def test_bytes_that_are_not_utf8_name_file_line_and_field(tmp_path, content, where):
    (tmp_path / "d.csv").write_bytes(b"v,0902,0.1,0.1,0.5,0.5,1,0.5\n" + content)
    with pytest.raises(AvaFormatError, match=where):
        read_ava_csv(tmp_path / "d.csv", columns=(8,))
    (tmp_path / "l.pbtxt").write_bytes(b'item {\n  name: "st\xffand"\n  id: 1\n}\n')
    with pytest.raises(AvaFormatError, match=r"l\.pbtxt:2: not UTF-8"):
        read_label_map(tmp_path / "l.pbtxt")


def test_a_line_beyond_the_limit_is_refused(tmp_path, monkeypatch):
    from humact.errors import LimitError
    monkeypatch.setattr("humact.eval.ava._CHUNK", 1 << 16)
    (tmp_path / "d.csv").write_bytes(b"v,0902,0.1,0.1,0.5,0.5,1,0.5\n" + b"v" * (3 << 20))
    with pytest.raises(LimitError, match=r"d\.csv:2: field line length: .* HUMACT_LIMIT_MAX_CSV_LINE_BYTES"):
        read_ava_csv(tmp_path / "d.csv", columns=(8,))
    monkeypatch.setenv("HUMACT_LIMIT_MAX_CSV_LINE_BYTES", "100")
    (tmp_path / "e.csv").write_bytes(b"v,0902,0.1,0.1,0.5,0.5,1,0.5\n" + b"w" * 200 + b",0902,0.1,0.1,0.5,0.5,1,0.5\n")
    with pytest.raises(LimitError, match=r"e\.csv:2"):
        read_ava_csv(tmp_path / "e.csv", columns=(8,))


def test_quoted_field_over_a_line_end_is_refused(tmp_path):
    (tmp_path / "d.csv").write_bytes(b'v,0902,0.1,0.1,0.5,0.5,1,0.5\n"v\nw",0902,0.1,0.1,0.5,0.5,1,0.5\n')
    with pytest.raises(AvaFormatError, match=r"d\.csv:2: a quoted field runs over the end of the line"):
        read_ava_csv(tmp_path / "d.csv", columns=(8,))


def test_action_id_beyond_2_53_is_dropped_like_any_id_outside_the_label_map(files):
    clean = files([row("v", "0902", A, 1, 0)], [row("v", "0902", A, 1, 0.5), row("v", "0902", B, 999, 0.9)], ids=(1,))
    ref = evaluate_ava_files(*clean[:3])
    for huge in ("9" * 30, "-" + "9" * 17, "123456789012345678"):
        p = files([row("v", "0902", A, 1, 0)], [row("v", "0902", A, 1, 0.5), row("v", "0902", B, huge, 0.9)], ids=(1,))
        assert evaluate_ava_files(*p[:3]).ap == ref.ap
        ap, _ = ava_oracle.evaluate(*p[:3])
        assert ap == ref.ap
        assert read_ava_csv(p[1]).action.tolist() == [1, 0]


def test_proposals_are_bounded_arrays(tmp_path):
    import pickle

    from humact.errors import InputError
    from humact.eval.ava import read_proposals
    (tmp_path / "p.pkl").write_bytes(pickle.dumps({"v,0902": np.zeros((2, 5))}))
    assert read_proposals(tmp_path / "p.pkl")["v,0902"].shape == (2, 5)
    # one list shared 10 levels deep: a few hundred bytes, 10**10 numbers for np.asarray
    x = [0.0] * 10
    for _ in range(9):
        x = [x] * 10
    (tmp_path / "bomb.pkl").write_bytes(pickle.dumps({"v,0902": x}))
    with pytest.raises(InputError, match=r"bomb\.pkl: field entry 'v,0902'"):
        read_proposals(tmp_path / "bomb.pkl")
    (tmp_path / "bad.pkl").write_bytes(pickle.dumps({"v,0902": [[1, 2], [3]]}))
    with pytest.raises(AvaFormatError, match=r"bad\.pkl"):
        read_proposals(tmp_path / "bad.pkl")


def test_shared_format_samples_are_read(shared):
    s = shared / "reference/ava/format_samples"
    gt = read_ava_csv(s / "ava_sample.csv")
    assert gt.keys[0] == ("0f39OWEqJ24", 902) and len(gt) == len((s / "ava_sample.csv").read_text().splitlines())
    assert read_label_map(s / "action_list.txt").ids[:2] == [12, 17]
    assert ("0f39OWEqJ24", 903) in read_exclusions(s / "ava_excluded_timestamps_sample.csv")
    from humact.eval.ava import read_proposals
    props = read_proposals(s / "ava_proposals_sample.pkl")
    assert all(v.shape[1] == 5 for v in props.values())


# ---- properties and parity with the official algorithm --------------------------------

coord = st.integers(0, 4).map(lambda v: v / 4)
score = st.integers(0, 5).map(lambda v: v / 5)          # few values: many ties


@st.composite
def box(draw, valid=True):
    """Boxes on a coarse grid (many equal IoUs); with valid=False some have zero width."""
    x1, x2 = sorted((draw(coord), draw(coord)))
    y1, y2 = sorted((draw(coord), draw(coord)))
    return (x1, y1, x2 + 0.25 * (valid or draw(st.integers(0, 1))), y2 + 0.25)


@st.composite
def ava_files(draw, valid=True):
    keys = [("a", "0902"), ("a", "0903"), ("b", "0902")]
    gt = draw(st.lists(st.tuples(st.sampled_from(keys), box(valid), st.integers(1, 3), st.integers(0, 3)),
                       min_size=1, max_size=10))
    det = draw(st.lists(st.tuples(st.sampled_from(keys), box(valid), st.integers(1, 3), score), max_size=40))
    gt_rows = [(k[0], k[1], *b, a, p) for k, b, a, p in gt]
    det_rows = [(k[0], k[1], *b, a, s) for k, b, a, s in det]
    return gt_rows, det_rows


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(data=ava_files(valid=False), cap=st.sampled_from([50, 4, None]))
def test_equals_the_official_algorithm_with_many_ties(files, data, cap):
    p = files(*data, ids=(1, 2, 3))
    ours = evaluate(p, cap=cap)
    ap, m = ava_oracle.evaluate(*p, cap=cap)
    assert ours.ap == ap
    assert ours.mAP == m or (np.isnan(ours.mAP) and np.isnan(m))


@SETTINGS
@given(data=ava_files(valid=False), cap=st.sampled_from([50, 4, None]),
       empty=st.lists(st.sampled_from(["a,902.0", "b,0903", "c,902"]), max_size=2),
       spelling=st.sampled_from(["0902", "902.000000", "902.0000001"]))
def test_head_semantics_equal_the_official_algorithm(files, tmp_path, data, cap, empty, spelling):
    gt_rows, det_rows = data
    det_rows = [(r[0], spelling if r[1] == "0902" else r[1], *r[2:]) for r in det_rows]
    p = files(gt_rows, det_rows + [("c", "902", 0.0, 0.0, 0.5, 0.5, 1, 0.7)], ids=(1, 2, 3))
    with open(p[0], "a") as f:
        f.write("".join(e + "\n" for e in empty))
    ours = evaluate(p[:3], semantics="activitynet-head", cap=cap)
    ap, m = ava_oracle.evaluate(*p[:3], semantics="activitynet-head", cap=cap)
    assert ours.ap == ap
    assert ours.mAP == m or (np.isnan(ours.mAP) and np.isnan(m))


@SETTINGS
@given(data=ava_files())
def test_perfect_detections_give_one(files, data):
    # distinct boxes: two detections on one duplicated box both take its first copy (official rule)
    gt_rows = list(dict.fromkeys(r[:7] for r in data[0]))
    gt_rows = [(*r, 0) for r in gt_rows]
    dets = [(*r[:7], 0.9) for r in gt_rows]
    assert evaluate(files(gt_rows, dets, ids=(1, 2, 3))).mAP == 1.0


@SETTINGS
@given(data=ava_files())
def test_false_positive_below_every_true_positive_changes_nothing(files, data):
    # Distinct scores: among equal scores the official order (numpy's unstable argsort)
    # can change with the length of the array, so a new row may reorder old ties.
    gt_rows, det_rows = data
    det_rows = [(*r[:7], 0.1 + (i + 1) / 1000) for i, r in enumerate(det_rows)]   # all > 0.1
    before = evaluate(files(gt_rows, det_rows, ids=(1, 2, 3)), cap=None).ap
    fp = ("c", "0902", 0.0, 0.0, 1.0, 1.0, 1, 0.05)       # keyframe without ground truth
    after = evaluate(files(gt_rows, det_rows + [fp], ids=(1, 2, 3)), cap=None).ap
    assert after == before


@SETTINGS
@given(data=ava_files(), seed=st.integers(0, 1000))
def test_reordering_rows_without_ties_changes_nothing(files, data, seed):
    gt_rows, det_rows = data
    det_rows = [(*r[:7], (i + 1) / 1000) for i, r in enumerate(det_rows)]   # distinct scores
    before = evaluate(files(gt_rows, det_rows, ids=(1, 2, 3))).ap
    perm = np.random.default_rng(seed).permutation(len(det_rows))
    after = evaluate(files(gt_rows, [det_rows[i] for i in perm], ids=(1, 2, 3))).ap
    assert after == before


# ---- real ground truth ------------------------------------------------------------------------

def _real():
    ref = "reference/ava/"
    return (shared_file(ref + "ava_val_v2.1_first27163rows.csv"),
            shared_file(ref + "ava_action_list_v2.1_for_activitynet_2018.pbtxt"),
            shared_file(ref + "ava_val_excluded_timestamps_v2.1.csv"))


def test_real_ground_truth_as_detections_gives_one():
    gt, labels, ex = _real()
    r = evaluate_ava_files(gt, gt, labels, ex)
    assert r.mAP == 1.0 and len(r.ap) > 40


def test_real_ground_truth_with_perturbed_detections_equals_the_oracle(tmp_path):
    gt, labels, ex = _real()
    rng = np.random.default_rng(1)
    lines = gt.read_text().splitlines()[:6000]
    out = []
    for line in lines:
        f = line.split(",")
        b = np.clip(np.array(f[2:6], float) + rng.normal(0, 0.04, 4), 0, 1)
        for a in (int(f[6]), int(rng.integers(1, 81))):
            out.append(f"{f[0]},{f[1]},{b[0]:.3f},{b[1]:.3f},{b[2]:.3f},{b[3]:.3f},{a},{rng.integers(0, 50) / 50:.2f}")
    (tmp_path / "det.csv").write_text("\n".join(out) + "\n")
    ours = evaluate_ava_files(gt, tmp_path / "det.csv", labels, ex)
    ap, m = ava_oracle.evaluate(gt, tmp_path / "det.csv", labels, ex)
    assert ours.ap == ap and ours.mAP == m
