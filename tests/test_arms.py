"""Arm-region RoIs from COCO keypoints, the arm head, score merging, the class config."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from humact.errors import ConfigError
from humact.video_models.arms import (ArmConfig, ArmDetector, ArmRois, arm_boxes, load_arm_config,
                                      merge_arm_scores, select_arm_classes)

from humact.video_models.arms import DEFAULT_ARM_CONFIG as CONFIG


def _person(shoulder, elbow, wrist, side="left", score=0.9):
    kp, sc = np.zeros((17, 2)), np.full(17, 0.9)
    s, e, w = (5, 7, 9) if side == "left" else (6, 8, 10)
    kp[s], kp[e], kp[w] = shoulder, elbow, wrist
    other = (6, 8, 10) if side == "left" else (5, 7, 9)
    sc[list(other)] = 0.0
    sc[[e, w]] = score
    return kp, sc


def test_arm_box_spans_shoulder_elbow_wrist_enlarged():
    kp, sc = _person((100, 50), (120, 90), (160, 100))
    arms = arm_boxes(kp[None], sc[None], (320, 240), enlarge=0.25)
    assert len(arms) == 1 and arms.person.tolist() == [0] and arms.side.tolist() == [0]
    pad = 0.25 * 60                                                  # longer side of the joints' box: 60 px
    assert np.allclose(arms.boxes[0], [100 - pad, 50 - pad, 160 + pad, 100 + pad])
    assert arms.rois(2).tolist() == [[2.0, 100 - pad, 50 - pad, 160 + pad, 100 + pad]]


def test_only_confident_elbow_and_wrist_inside_the_image_make_a_box():
    kp, sc = _person((100, 50), (120, 90), (160, 100), score=0.2)
    assert len(arm_boxes(kp[None], sc[None], (320, 240))) == 0       # not confident
    kp, sc = _person((100, 50), (120, 90), (330, 100))
    assert len(arm_boxes(kp[None], sc[None], (320, 240))) == 0       # wrist outside the image
    kp, sc = _person((100, 50), (120, 90), (160, 100))
    sc[5] = 0.0                                                      # shoulder unsure: elbow-wrist only
    box = arm_boxes(kp[None], sc[None], (320, 240), enlarge=0.0, min_size=0.0).boxes[0]
    assert np.allclose(box, [120, 90, 160, 100])
    kp2, sc2 = _person((300, 50), (310, 200), (315, 235), side="right")
    arms = arm_boxes(np.stack([kp, kp2]), np.stack([sc, sc2]), (320, 240))
    assert arms.person.tolist() == [0, 1] and arms.side.tolist() == [0, 1]
    assert arms.boxes[1, 2] <= 320 and arms.boxes[1, 3] <= 240      # clipped to the image


def test_merge_takes_each_persons_best_arm_for_the_merged_classes_only():
    person = torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.5, 0.5], [0.4, 0.4, 0.4]])
    arm = torch.tensor([[0.9, 0.0], [0.6, 0.7], [0.1, 0.95]])        # head columns = classes (1, 2)
    out = merge_arm_scores(person, arm, [0, 0, 1], (1, 2), (2,), mode="max")
    assert torch.allclose(out[:, 2], torch.tensor([0.7, 0.95, 0.4]))  # person 2 has no arm: unchanged
    assert torch.equal(out[:, :2], person[:, :2])
    mean = merge_arm_scores(person, arm, [0, 0, 1], (1, 2), (1, 2), mode="mean")
    assert torch.allclose(mean[0, 1:], torch.tensor([(0.2 + 0.9) / 2, (0.3 + 0.7) / 2]))
    assert torch.equal(merge_arm_scores(person, arm[:0], [], (1, 2), (2,)), person)


def test_shipped_config_loads_and_bad_ones_name_the_field(tmp_path):
    cfg = load_arm_config(CONFIG)
    assert len(cfg.candidates) == 32 and set(cfg.merge_classes) <= set(cfg.candidates)
    assert {24, 34, 64}.issubset(cfg.candidates)                     # cut, hit (an object), fight/hit (a person)
    bad = tmp_path / "bad.toml"
    bad.write_text("[arm_rois]\ncandidates = [24]\nmerge_classes = [34]\n")
    with pytest.raises(ConfigError, match=r"bad.toml: field arm_rois.merge_classes"):
        load_arm_config(bad)
    bad.write_text("[arm_rois]\ncandidates = [24, 99]\nmerge_classes = []\n")
    with pytest.raises(ConfigError, match=r"field arm_rois.candidates"):
        load_arm_config(bad)
    bad.write_text("[arm_rois]\ncandidates = [24]\nmerge_classes = []\nthreshold = 3\n")
    with pytest.raises(ConfigError, match=r"field arm_rois.threshold"):
        load_arm_config(bad)


def test_selection_keeps_the_classes_the_merge_improves():
    assert select_arm_classes({24: 0.1, 34: 0.3, 64: 0.2}, {24: 0.2, 34: 0.25, 64: 0.2}, [24, 34, 64, 68]) == [24]


def test_arm_detector_forward_backward_and_predict():
    from humact.video_models.ava import slowonly_r50_ava

    torch.manual_seed(0)
    cfg = ArmConfig(candidates=(24, 34, 64), merge_classes=(24, 64))
    model = ArmDetector(slowonly_r50_ava(num_classes=81), cfg)
    clip = torch.randn(1, 3, 2, 64, 64)
    persons = torch.tensor([[0, 0.0, 0.0, 40.0, 63.0], [0, 30.0, 0.0, 63.0, 63.0]])
    arms = ArmRois(np.array([[10, 20, 30, 40], [35, 10, 60, 30]], np.float32), np.array([0, 1]), np.array([0, 1]))
    p, a = model(clip, persons, arms.rois())
    assert p.shape == (2, 81) and a.shape == (2, 3)
    (p.sum() + a.sum()).backward()
    assert model.arm_head.bbox_head.fc_cls.weight.grad.abs().sum() > 0
    model.eval()
    merged = model.predict(clip, persons, arms)
    plain = model.detector.predict(clip, persons)
    assert torch.equal(merged[:, [1, 2, 34]], plain[:, [1, 2, 34]])   # 34 is a candidate but not merged
    assert (merged[:, [24, 64]] >= plain[:, [24, 64]]).all()
