"""Kinetics-TPS: the official task score, rule by rule."""

import json

import numpy as np
import pytest

from humact.eval.tps import (TpsFormatError, evaluate_tps, evaluate_tps_dirs, task_score, tps_humans_from_parts,
                             video_psc, write_tps_dir)

H1 = [0, 0, 99, 199]        # 100 x 200 px with the +1 convention
H2 = [300, 0, 399, 199]
HEAD = [10, 10, 29, 29]
MISS = [60, 60, 79, 79]     # no overlap with HEAD


def gt_human(box, parts):
    return {"box": box, "parts": {n: {"box": b, "verb": v} for n, (b, v) in parts.items()}}


def pred_human(box, parts):
    return {"box": box, "parts": {n: {"box": [p[0] for p in props], "verb": [p[1] for p in props]}
                                  for n, props in parts.items()}}


def frames(*humans_per_frame):
    return {f"img_{i + 1:05d}.json": {"humans": list(h)} for i, h in enumerate(humans_per_frame)}


def test_correct_part_and_state_gives_full_credit():
    gt = frames([gt_human(H1, {"head": (HEAD, "look")})])
    pred = frames([pred_human(H1, {"head": [(HEAD, "look")]})])
    assert video_psc(gt, pred) == 1.0


def test_two_proposals_one_right_give_half_credit():
    gt = frames([gt_human(H1, {"head": (HEAD, "look")})])
    pred = frames([pred_human(H1, {"head": [(HEAD, "talk"), (HEAD, "look")]})])
    assert video_psc(gt, pred) == 0.5


def test_wrong_state_or_far_box_gives_nothing():
    gt = frames([gt_human(H1, {"head": (HEAD, "look"), "hip": (HEAD, "sit")})])
    pred = frames([pred_human(H1, {"head": [(HEAD, "talk")], "hip": [(MISS, "sit")]})])
    assert video_psc(gt, pred) == 0.0


def test_part_missing_from_the_prediction_scores_zero():
    gt = frames([gt_human(H1, {"head": (HEAD, "look"), "hip": (HEAD, "sit")})])
    pred = frames([pred_human(H1, {"head": [(HEAD, "look")]})])
    assert video_psc(gt, pred) == 0.5


def test_part_iou_uses_plus_one_pixels_and_threshold_inclusive():
    # gt 20x20 px (+1), proposal shifted so that IoU is just above / below 0.3
    gt = frames([gt_human(H1, {"head": ([0, 0, 19, 19], "look")})])
    near = frames([pred_human(H1, {"head": [([9, 0, 28, 19], "look")]})])   # inter 11*20, union 580: 0.379
    far = frames([pred_human(H1, {"head": [([11, 0, 30, 19], "look")]})])   # inter 9*20, union 620: 0.290
    assert video_psc(gt, near) == 1.0 and video_psc(gt, far) == 0.0


def test_unmatched_second_human_scores_zero_for_its_parts():
    gt = frames([gt_human(H1, {"head": (HEAD, "look")}), gt_human(H2, {"head": ([310, 10, 329, 29], "look")})])
    pred = frames([pred_human(H1, {"head": [(HEAD, "look")]})])
    assert video_psc(gt, pred) == 0.5


def test_human_pairs_need_iou_above_half():
    gt = frames([gt_human(H1, {"head": (HEAD, "look")})])
    shifted = [50, 0, 149, 199]            # IoU 50/150 = 1/3 with H1: not a pair
    pred = frames([pred_human(shifted, {"head": [(HEAD, "look")]})])
    assert video_psc(gt, pred) == 0.0


def test_human_pair_at_exactly_half_iou_does_not_count():
    gt = frames([gt_human([0, 0, 9, 9], {"head": (HEAD, "look")})])            # 10 x 10 px
    pred = frames([pred_human([0, 0, 9, 4], {"head": [(HEAD, "look")]})])      # 10 x 5: IoU 0.5
    assert video_psc(gt, pred) == 0.0
    assert video_psc(gt, pred, human_thr=0.49) == 1.0


def test_part_at_exactly_the_part_threshold_counts():
    gt = frames([gt_human(H1, {"head": ([0, 0, 9, 9], "look")})])
    pred = frames([pred_human(H1, {"head": [([0, 0, 9, 2], "look")]})])        # IoU 30/100 = 0.3
    assert video_psc(gt, pred) == 1.0


def test_extra_predicted_humans_cost_nothing():
    gt = frames([gt_human(H1, {"head": (HEAD, "look")})])
    pred = frames([pred_human(H2, {}), pred_human(H1, {"head": [(HEAD, "look")]}), pred_human(H2, {})])
    assert video_psc(gt, pred) == 1.0


def test_hungarian_assignment_is_one_to_one():
    # one prediction between two people: only one of them can take it
    gt = frames([gt_human(H1, {"head": (HEAD, "look")}), gt_human([0, 0, 99, 189], {"head": (HEAD, "look")})])
    pred = frames([pred_human(H1, {"head": [(HEAD, "look")]})])
    assert video_psc(gt, pred) == 0.5


def test_missing_prediction_frame_scores_zero():
    gt = frames([gt_human(H1, {"head": (HEAD, "look")})], [gt_human(H1, {"head": (HEAD, "look")})])
    pred = frames([pred_human(H1, {"head": [(HEAD, "look")]})])
    assert video_psc(gt, pred) == 0.5


def test_frames_without_humans_or_parts_are_dropped():
    gt = frames([gt_human(H1, {"head": (HEAD, "look")})], [], [gt_human(H1, {})])
    pred = frames([pred_human(H1, {"head": [(HEAD, "look")]})], [], [pred_human(H1, {})])
    assert video_psc(gt, pred) == 1.0


def test_video_without_valid_frames_has_psc_one_but_wrong_class_is_not_counted():
    gt_part = {"a": frames([]), "b": frames([gt_human(H1, {"head": (HEAD, "look")})])}
    pred_part = {"a": frames([]), "b": frames([pred_human(H1, {"head": [(HEAD, "look")]})])}
    r = evaluate_tps({"a": "run", "b": "jump"}, gt_part, {"a": "walk", "b": "jump"}, pred_part)
    assert r.videos["a"] == {"psc": 1.0, "correct": False}
    assert r.acc_at[0] == 0.5 and r.score == pytest.approx(0.5 * 9999 / 10000)


def test_score_sums_acc_over_thresholds():
    # psc 0.25 and 1.0, both correct: acc = 1 up to t = 0.25, then 1/2
    score, acc = task_score(np.array([0.25, 1.0]), np.array([True, True]))
    assert score == pytest.approx((2500 * 1.0 + 7499 * 0.5) / 10000)
    assert acc.tolist()[:4] == [1.0, 1.0, 1.0, 0.5]


def test_missing_video_is_an_error_naming_it_or_zero():
    gt_part = {"a": frames([gt_human(H1, {"head": (HEAD, "look")})])}
    with pytest.raises(TpsFormatError, match="'a'"):
        evaluate_tps({"a": "run"}, gt_part, {}, {})
    r = evaluate_tps({"a": "run"}, gt_part, {}, {}, missing="zero")
    assert r.score == 0.0 and r.videos["a"]["psc"] == 0.0


def test_more_than_five_proposals_is_rejected():
    gt = frames([gt_human(H1, {"head": (HEAD, "look")})])
    pred = frames([pred_human(H1, {"head": [(HEAD, "look")] * 6})])
    with pytest.raises(TpsFormatError, match="5 proposals"):
        video_psc(gt, pred)


# ---- malformed files: one TpsFormatError naming file, video, frame and field ----------------

import bad_inputs  # noqa: E402
from humact.errors import LimitError  # noqa: E402


def _valid():
    return bad_inputs.tps_files()


def _gt_h(gp):
    return gp["v1"]["img_00001.json"]["humans"][0]


def _pred_h(pp):
    return pp["v1"]["img_00001.json"]["humans"][0]


MALFORMED = [
    ("gt human without box", lambda gv, gp, pv, pp: _gt_h(gp).pop("box"),
     r"gt_part_result\.json: video 'v1' frame 'img_00001\.json' human 0: missing field 'box'"),
    ("pred human without box", lambda gv, gp, pv, pp: _pred_h(pp).pop("box"),
     r"pred_part_result\.json: video 'v1' frame 'img_00001\.json' human 0: missing field 'box'"),
    ("frame is a list", lambda gv, gp, pv, pp: gp["v1"].update({"img_00001.json": []}),
     r"gt_part_result\.json: video 'v1' frame 'img_00001\.json': field frame: expected an object"),
    ("video is a list", lambda gv, gp, pv, pp: pp.update(v1=[]), r"pred_part_result\.json: video 'v1': field frames"),
    ("box of 3 numbers", lambda gv, gp, pv, pp: _gt_h(gp)["parts"]["head"].update(box=[1, 2, 3]),
     r"gt_part_result\.json: .* part 'head': field box: expected \[x1, y1, x2, y2\]"),
    ("box of text", lambda gv, gp, pv, pp: _pred_h(pp).update(box=["0", 0, 99, 199]), r"human 0: field box"),
    ("box of booleans", lambda gv, gp, pv, pp: _pred_h(pp).update(box=[True, 0, 99, 199]), r"human 0: field box"),
    ("box of 400 digits", lambda gv, gp, pv, pp: _pred_h(pp).update(box=[0, 0, 99, 10 ** 400]),
     r"human 0: field box: a number of 401 digits is over the limit .* HUMACT_LIMIT_MAX_COORDINATE"),
    ("NaN box", lambda gv, gp, pv, pp: _pred_h(pp).update(box=[0, 0, float("nan"), 199]),
     r"human 0: field box: expected finite numbers"),
    ("infinite part box", lambda gv, gp, pv, pp: _pred_h(pp)["parts"]["head"].update(box=[[0, 0, float("inf"), 1]]),
     r"part 'head': field box\[0\]: expected finite numbers"),
    ("proposal boxes and verbs differ", lambda gv, gp, pv, pp: _pred_h(pp)["parts"]["head"].update(verb=["a", "b"]),
     r"part 'head': fields box/verb: 1 boxes for 2 verbs"),
    ("humans is an object", lambda gv, gp, pv, pp: pp["v1"]["img_00001.json"].update(humans={"a": 1}),
     r"frame 'img_00001\.json': field humans: expected a list"),
    ("eleven predicted humans", lambda gv, gp, pv, pp: pp["v1"]["img_00001.json"].update(
        humans=[_pred_h(pp)] * 11), r"at most 10 predicted humans per frame, got 11"),
]


@pytest.mark.parametrize("what, mutate, message", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_files_name_file_video_frame_and_field(what, mutate, message):
    files = _valid()
    mutate(*files)
    with pytest.raises(TpsFormatError if "LIMIT" not in message else LimitError, match=message):
        evaluate_tps(*files)


WRONG_TYPES = [
    ("predicted action is a number", lambda gv, gp, pv, pp: pv.update(v1=7),
     r"pred_vid_result\.json: video 'v1': expected the predicted action as a string, got int 7"),
    ("ground-truth action is a list", lambda gv, gp, pv, pp: gv.update(v1=["run"]),
     r"gt_vid_result\.json: video 'v1': expected the action as a string"),
    ("ground-truth verb is a list", lambda gv, gp, pv, pp: _gt_h(gp)["parts"]["head"].update(verb=["look"]),
     r"gt_part_result\.json: .* part 'head': field verb: expected a string, got list"),
    ("predicted verb is a number", lambda gv, gp, pv, pp: _pred_h(pp)["parts"]["head"].update(verb=[3]),
     r"pred_part_result\.json: .* part 'head': field verb\[0\]: expected a string, got int"),
    ("predicted parts is a list", lambda gv, gp, pv, pp: _pred_h(pp).update(parts=[]),
     r"pred_part_result\.json: .* human 0: field parts: expected an object"),
    ("predicted frame without humans", lambda gv, gp, pv, pp: pp["v1"].update({"img_00001.json": {}}),
     r"pred_part_result\.json: video 'v1' frame 'img_00001\.json': missing field 'humans'"),
    ("predicted human without parts", lambda gv, gp, pv, pp: _pred_h(pp).pop("parts"),
     r"pred_part_result\.json: .* human 0: missing field 'parts'"),
    ("predicted part without verb", lambda gv, gp, pv, pp: _pred_h(pp)["parts"]["head"].pop("verb"),
     r"pred_part_result\.json: .* part 'head': missing field 'verb'"),
    ("ground-truth human without parts", lambda gv, gp, pv, pp: _gt_h(gp).pop("parts"),
     r"gt_part_result\.json: .* human 0: missing field 'parts'"),
]


@pytest.mark.parametrize("what, mutate, message", WRONG_TYPES, ids=[m[0] for m in WRONG_TYPES])
def test_wrong_types_are_refused_not_scored_zero(what, mutate, message):
    files = _valid()
    assert evaluate_tps(*files).videos["v1"]["psc"] == 0.5        # head right, hip wrong
    mutate(*files)
    with pytest.raises(TpsFormatError, match=message):
        evaluate_tps(*files)


def test_ground_truth_without_videos_names_the_file(tmp_path):
    gv, gp, pv, pp = _valid()
    write_tps_dir(tmp_path / "gt", "gt", {}, gp)
    write_tps_dir(tmp_path / "pred", "pred", pv, pp)
    with pytest.raises(TpsFormatError, match=r"gt[/\\]gt_vid_result\.json: no videos: nothing to score"):
        evaluate_tps_dirs(tmp_path / "gt", tmp_path / "pred")


def test_messages_name_the_files_by_their_paths(tmp_path):
    gv, gp, pv, pp = _valid()
    pv["v1"] = 7
    write_tps_dir(tmp_path / "gt", "gt", gv, gp)
    write_tps_dir(tmp_path / "pred", "pred", pv, pp)
    with pytest.raises(TpsFormatError, match=str(tmp_path / "pred" / "pred_vid_result.json").replace("\\", "\\\\")):
        evaluate_tps_dirs(tmp_path / "gt", tmp_path / "pred")


def test_json_nested_too_deeply_is_refused(tmp_path):
    gv, gp, pv, pp = _valid()
    write_tps_dir(tmp_path / "gt", "gt", gv, gp)
    write_tps_dir(tmp_path / "pred", "pred", pv, pp)
    (tmp_path / "pred" / "pred_part_result.json").write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(TpsFormatError, match=r"pred_part_result\.json: .*nested too deeply"):
        evaluate_tps_dirs(tmp_path / "gt", tmp_path / "pred")
    nan_box = json.dumps(pp).replace("[0, 0, 99, 199]", "[0, 0, NaN, 199]", 1)
    (tmp_path / "pred" / "pred_part_result.json").write_text(nan_box)
    with pytest.raises(TpsFormatError, match=r"pred_part_result\.json: video 'v1' frame 'img_00001\.json' human 0: "
                                             r"field box: expected finite numbers"):
        evaluate_tps_dirs(tmp_path / "gt", tmp_path / "pred")


def test_frame_with_too_many_humans_is_refused(monkeypatch):
    gv, gp, pv, pp = _valid()
    gp["v1"]["img_00001.json"]["humans"] += [{"box": [i, i, i + 50, i + 90], "parts": {}} for i in range(1000)]
    with pytest.raises(LimitError, match=r"gt_part_result\.json: video 'v1' frame 'img_00001\.json': field humans: "
                                         r"1,001 humans is over the limit of 1,000"):
        evaluate_tps(gv, gp, pv, pp)
    monkeypatch.setenv("HUMACT_LIMIT_MAX_HUMANS_PER_FRAME", "2000")
    assert evaluate_tps(gv, gp, pv, pp).videos["v1"]["psc"] == 0.5


def test_a_single_proposal_without_lists_is_still_accepted():
    gv, gp, pv, pp = _valid()
    _pred_h(pp)["parts"]["head"] = {"box": HEAD, "verb": "look"}
    assert evaluate_tps(gv, gp, pv, pp).videos["v1"]["psc"] == 0.5


def test_grid_covers_the_official_thresholds(tmp_path):
    gt_part = {"a": frames([gt_human(H1, {"head": (HEAD, "look")})])}
    pred_part = {"a": frames([pred_human([0, 0, 99, 150], {"head": [([10, 10, 29, 25], "look")]})])}
    write_tps_dir(tmp_path / "gt", "gt", {"a": "run"}, gt_part)
    write_tps_dir(tmp_path / "pred", "pred", {"a": "run"}, pred_part)
    r = evaluate_tps_dirs(tmp_path / "gt", tmp_path / "pred", grid=True)
    assert len(r.grid) == 25
    # human IoU 151/200 = 0.755, part IoU 16/20 = 0.8: credit up to thresholds 0.5 / 0.5
    assert r.grid[(0.5, 0.5)] == r.score > 0.99 and r.grid[(0.9, 0.3)] == 0.0 and r.grid[(0.5, 0.9)] == 0.0


def test_humans_from_typed_results_follow_the_prediction_layout():
    from humact.types import PartBoxes, PoseTracks
    m, t = 2, 1
    tracks = PoseTracks(track_ids=np.arange(m), keypoints=np.zeros((m, t, 17, 2)),
                        keypoint_scores=np.zeros((m, t, 17)), boxes=np.array([[H1], [H2]], np.float32),
                        box_scores=np.array([[0.5], [0.9]], np.float32), valid=np.ones((m, t), bool))
    valid = np.zeros((m, t, 10), bool)
    valid[0, 0, 0] = True
    parts = PartBoxes(boxes=np.tile(np.array(HEAD, np.float32), (m, t, 10, 1)), valid=valid)
    humans = tps_humans_from_parts(tracks, parts, 0, verbs={(0, parts.names[0]): ["look"]})
    assert humans[0]["box"] == H2 and humans[1]["parts"] == {parts.names[0]: {"box": [HEAD], "verb": ["look"]}}
    gt = frames([gt_human(H1, {parts.names[0]: (HEAD, "look")})])
    assert video_psc(gt, {"img_00001.json": {"humans": humans}}) == 1.0


# ---- parity with a literal re-statement of the official evaluation ------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import tps_oracle  # noqa: E402

grid = st.integers(0, 6).map(lambda v: v * 10)   # coarse pixel grid: many equal IoUs


@st.composite
def px_box(draw):
    x1, y1 = draw(grid), draw(grid)
    return [x1, y1, x1 + draw(grid), y1 + draw(grid)]


part_names = st.sampled_from(["head", "hip", "left_arm"])
states = st.sampled_from(["a", "b"])


@st.composite
def tps_case(draw):
    gt_vid, gt_part, pred_vid, pred_part = {}, {}, {}, {}
    for v in range(draw(st.integers(1, 3))):
        name = f"v{v}"
        gt_vid[name] = draw(st.sampled_from(["run", "jump"]))
        pred_vid[name] = draw(st.sampled_from(["run", "jump"]))
        gf, pf = {}, {}
        for f in range(draw(st.integers(0, 3))):
            fname = f"img_{f + 1:05d}.json"
            gf[fname] = {"humans": [
                {"box": draw(px_box()), "parts": {p: {"box": draw(px_box()), "verb": draw(states)}
                                                  for p in draw(st.sets(part_names, max_size=3))}}
                for _ in range(draw(st.integers(0, 3)))]}
            if draw(st.booleans()) or f == 0:
                pf[fname] = {"humans": [
                    {"box": draw(px_box()), "parts": {p: {"box": [draw(px_box()) for _ in range(k)],
                                                          "verb": [draw(states) for _ in range(k)]}
                                                      for p, k in draw(st.dictionaries(part_names, st.integers(0, 3)))
                                                      .items()}}
                    for _ in range(draw(st.integers(0, 4)))]}
        gt_part[name], pred_part[name] = gf, pf
    return gt_vid, gt_part, pred_vid, pred_part


@settings(max_examples=150, deadline=None)
@given(case=tps_case(), thr=st.sampled_from([(0.5, 0.3), (0.001, 0.001), (0.3, 0.5), (0.9, 0.99)]))
def test_equals_the_official_evaluation(case, thr):
    r = evaluate_tps(*case, human_thr=thr[0], part_thr=thr[1])
    score, psc = tps_oracle.score(*case, human_thr=thr[0], part_thr=thr[1])
    assert [v["psc"] for v in r.videos.values()] == psc
    assert r.score == score
