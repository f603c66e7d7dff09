"""Fusing AVA detectors whose boxes come from different proposals: IoU matching across models."""

from __future__ import annotations

import numpy as np
import pytest

from humact.detect.keyframes import KeyframeBoxes
from humact.detect.rgb import fuse_across_proposals, fuse_logits, match_boxes


def _kb(keyframe, boxes, scores, ids=None):
    n = len(boxes)
    return KeyframeBoxes(np.array(keyframe, np.int64), np.array(boxes, np.float32).reshape(-1, 4),
                         np.array(ids if ids is not None else [-1] * n, np.int64), np.array(scores, np.float32))


def test_match_is_greedy_by_box_score_at_iou_half():
    a = np.array([[0, 0, 10, 10], [100, 100, 110, 110]], np.float32)
    # b[0] overlaps a[0] at IoU 0.81, b[1] overlaps a[0] at 0.5 exactly, b[2] is nowhere near
    b = np.array([[0, 0, 9, 9], [0, 0, 10, 5], [50, 50, 60, 60]], np.float32)
    groups = match_boxes([a, b], [np.array([0.9, 0.5]), np.array([0.8, 0.95, 0.7])])
    # b[1] (0.95) opens first and takes a[0] (IoU 0.5 >= 0.5, though b[0] overlaps a[0] more); then b[0]
    # (0.8, a[0] taken), b[2] (0.7), a[1] (0.5) open groups of one
    assert groups.tolist() == [[0, 1], [-1, 0], [-1, 2], [1, -1]]


def test_match_needs_iou_half():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 4.9]], np.float32)                   # IoU 0.49
    assert match_boxes([a, b], [np.array([0.9]), np.array([0.9])]).tolist() == [[0, -1], [-1, 0]]


def test_one_box_per_model_per_group_and_best_iou_wins():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[0, 0, 10, 6], [0, 0, 10, 9]], np.float32)      # IoU 0.6 and 0.9 with a[0]
    groups = match_boxes([a, b], [np.array([0.99]), np.array([0.9, 0.1])])
    assert groups.tolist() == [[0, 1], [-1, 0]]


@pytest.mark.parametrize("method", ["mean", "mean_logit", "topk_logit"])
def test_fused_scores_matched_and_unmatched(method):
    m1 = _kb([0, 0, 1], [[0, 0, 10, 10], [20, 0, 30, 10], [0, 0, 10, 10]], [0.9, 0.8, 0.9], ids=[1, 2, 1])
    m2 = _kb([0, 1], [[0, 0, 10, 9.5], [40, 40, 50, 50]], [0.95, 0.7])
    p1 = np.array([[0.9, 0.1], [0.6, 0.4], [0.2, 0.3]])
    p2 = np.array([[0.5, 0.3], [0.7, 0.7]])
    boxes, scores = fuse_across_proposals([m1, m2], [p1, p2], method)
    assert boxes.keyframe.tolist() == [0, 0, 1, 1]
    # keyframe 0: m2's box (score 0.95) opens the group with m1's person 1; m1's person 2 alone
    assert np.allclose(boxes.boxes[0], [0, 0, 10, 9.5]) and boxes.track_ids[0] == -1
    logit = lambda p: np.log(p) - np.log1p(-p)  # noqa: E731
    assert np.allclose(scores[0], fuse_logits(np.stack([logit(p1[0]), logit(p2[0])])[:, None], method)[0])
    assert np.allclose(scores[1], p1[1])                 # unmatched: its own model's scores
    assert boxes.track_ids[1] == 2
    # keyframe 1: nothing overlaps, both boxes kept with their own scores
    assert np.allclose(scores[2], p1[2]) and np.allclose(scores[3], p2[1])


def test_command_refuses_box_files_that_do_not_pair_with_models(tmp_path, capsys):
    from humact.cli import main

    video = tmp_path / "v.mp4"
    video.write_bytes(b"")
    rc = main(["detect", str(video), "--out", str(tmp_path / "o"), "--model", "slowonly_r50_4x16_ava",
               "--checkpoint", "a.pth", "--model", "slowfast_r50_4x16_ava", "--checkpoint", "b.pth",
               "--boxes", "a.csv", "--boxes", "b.csv", "--boxes", "c.csv"])
    assert rc == 2 and "--boxes: 3 box files for 2 model(s)" in capsys.readouterr().err
