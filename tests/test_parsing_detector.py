"""The pose-guided part detector: dots, crops, targets, training step, decoding, checkpoint."""

import numpy as np
import pytest
import torch

from humact.parsing.detector import (JOINT_COLORS, DetectorConfig, PartDetector, assign, crop_transform, decode,
                                     detect_parts, detector_input, detector_loss, detector_step_loss, draw_dots,
                                     load_detector, save_detector, _collate)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_dots_add_the_joint_colour_where_visible():
    crop = np.full((64, 64, 3), 100, np.uint8)
    kp = np.zeros((17, 2))
    kp[0] = (10, 12)
    kp[5] = (40, 30)
    scores = np.zeros(17)
    scores[0] = 0.9
    scores[5] = 0.1            # below the threshold: not drawn
    out = draw_dots(crop, kp, scores, threshold=0.3, radius=2)
    np.testing.assert_array_equal(out[12, 10], np.clip(100 + JOINT_COLORS[0], 0, 255))
    assert (out[30, 40] == 100).all() and (out[0, 0] == 100).all()
    assert ((out != 100).any(-1)).sum() == 13          # a radius-2 filled disc
    assert len({tuple(c) for c in JOINT_COLORS.tolist()}) == 17
    cfg_on, cfg_off = DetectorConfig(size=64), DetectorConfig(size=64, dots=False)
    rgb = np.full((100, 100, 3), 100, np.uint8)
    box = (20, 20, 60, 60)
    kp_frame = np.full((17, 2), 40.0)
    sc = np.ones(17)
    on, tf = detector_input(rgb, box, kp_frame, sc, cfg_on)
    off, _ = detector_input(rgb, box, kp_frame, sc, cfg_off)
    assert on.shape == off.shape == (3, 64, 64)
    s, x0, y0 = tf
    cy = cx = int(round((40 - x0) * s))
    assert not np.allclose(on[:, cy, cx], off[:, cy, cx]) and np.allclose(on[:, 2, 2], off[:, 2, 2])


def test_crop_transform_square_around_the_box():
    s, x0, y0 = crop_transform((10, 20, 50, 100), 128, pad=0.1)
    side = 80 * 1.2
    assert np.isclose(s, 128 / side) and np.isclose(x0, 30 - side / 2) and np.isclose(y0, 60 - side / 2)


def test_assign_and_decode():
    boxes = torch.tensor([[[10.0, 10.0, 50.0, 70.0], [0.0, 0.0, 0.0, 0.0]]])
    valid = torch.tensor([[True, False]])
    pos = assign(boxes, valid, 8, 8, 16)
    assert not pos[0, 1].any()
    # centre (30, 40) -> cell (row 2, col 1); cells with centres inside the box and within 1.5 cells: rows 1-3, col 1-2
    assert pos[0, 0, 2, 1]
    assert pos[0, 0].nonzero().tolist() == [[1, 1], [1, 2], [2, 1], [2, 2], [3, 1], [3, 2]]
    # a box smaller than a cell still gets the cell holding its centre
    tiny = assign(torch.tensor([[[33.0, 33.0, 35.0, 35.0]]]), torch.tensor([[True]]), 8, 8, 16)
    assert tiny[0, 0].nonzero().tolist() == [[2, 2]]
    # decoding reads the top-1 location's distances
    scores = torch.full((1, 2, 8, 8), -5.0)
    scores[0, 0, 2, 1] = 3.0
    dists = torch.zeros(1, 2, 4, 8, 8)
    dists[0, 0, :, 2, 1] = torch.tensor([14.0, 30.0, 26.0, 30.0])   # centre (24, 40)
    b, c = decode(scores, dists, 16)
    torch.testing.assert_close(b[0, 0], torch.tensor([10.0, 10.0, 50.0, 70.0]))
    assert abs(c[0, 0].item() - torch.sigmoid(torch.tensor(3.0)).item()) < 1e-6


def test_training_step_lowers_the_loss_and_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    cfg = DetectorConfig(size=64, width=8, geometric_input=True)
    model = PartDetector(cfg)
    rng = np.random.default_rng(0)
    items = []
    for _ in range(4):
        x = rng.uniform(-0.5, 0.5, (cfg.in_channels, 64, 64)).astype(np.float32)
        b = np.tile(np.array([[8, 8, 30, 40]], np.float32), (10, 1))
        items.append((x, b, np.ones(10, bool)))
    batch = _collate(items)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    model.train()
    first = detector_step_loss(model, batch)
    for _ in range(15):
        opt.zero_grad()
        loss = detector_step_loss(model, batch)
        loss.backward()
        opt.step()
    assert loss.item() < first.item()
    assert all(p.grad is not None for p in model.parameters())
    model.eval()
    save_detector(model, tmp_path / "det.safetensors")
    again = load_detector(tmp_path / "det.safetensors")
    x = batch[0][:1]
    torch.testing.assert_close(model(x)[0], again(x)[0])
    assert again.cfg == cfg


def test_confident_negatives_without_positives_cost_nothing():
    scores = torch.full((1, 1, 4, 4), -20.0)
    dists = torch.full((1, 1, 4, 4 * 1, 4), 1.0).view(1, 1, 4, 4, 4)
    boxes = torch.zeros(1, 1, 4)
    loss = detector_loss(scores, dists, boxes, torch.tensor([[False]]))
    assert loss.item() < 1e-6     # no positives, confident negatives


def test_detect_parts_fallback_and_top10():
    from humact.types import PartBoxes, PoseTracks

    m = 12
    tracks = PoseTracks(track_ids=np.arange(m), keypoints=np.full((m, 1, 17, 2), 30, np.float32),
                        keypoint_scores=np.ones((m, 1, 17), np.float32),
                        boxes=np.tile(np.array([10, 10, 60, 90], np.float32), (m, 1, 1)),
                        box_scores=np.linspace(0.1, 0.9, m, dtype=np.float32)[:, None], valid=np.ones((m, 1), bool))
    geo = PartBoxes(np.tile(np.array([20, 20, 30, 30], np.float32), (m, 1, 10, 1)), np.ones((m, 1, 10), bool))
    model = PartDetector(DetectorConfig(size=64, width=8, threshold=2.0)).eval()   # nothing passes 2.0
    boxes, valid = detect_parts(model, np.zeros((100, 100, 3), np.uint8), tracks, geo, 0)
    np.testing.assert_array_equal(boxes, geo.boxes[:, 0])            # every part fell back
    model.cfg.threshold = 0.0
    boxes, valid = detect_parts(model, np.zeros((100, 100, 3), np.uint8), tracks, geo, 0)
    changed = (boxes != geo.boxes[:, 0]).any(axis=(1, 2))
    assert changed.sum() == 10 and not changed[:2].any()               # the 2 lowest-scored persons kept theirs
    assert (boxes[:, :, 0] >= 10).all() and (boxes[:, :, 3] <= 90).all()
