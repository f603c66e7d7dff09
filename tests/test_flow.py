"""Optical flow: denseflow's 8-bit format, resumable extraction, `humact flow`, flow clips, RGB + flow detectors."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from humact.cli import main
from humact.errors import UsageError
from humact.io.checkpoints import reference_weights
from humact.video import VideoWriter
from humact.video_models.flow import (FlowSpec, TwoStreamDetector, expand_flow_conv1, extract_flow,
                                      flow_image_path, flow_indices, flow_slowonly_r50_ava, flow_to_images,
                                      read_flow_clip, tvl1_available)

REF = json.loads((Path(__file__).parent / "data" / "avaparts_mmaction2.json").read_text())
W, H, DX, DY = 128, 96, 3, -2


def _moving_texture(path: Path, n: int = 5) -> Path:
    """A smooth random texture moving (DX, DY) pixels per frame."""
    import cv2

    rng = np.random.default_rng(0)
    big = cv2.GaussianBlur(rng.integers(0, 256, (H + 40, W + 40)).astype(np.float32), (0, 0), 2.0)
    big = cv2.normalize(big, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    with VideoWriter(path, width=W, height=H, fps=10, crf=12) as w:
        for i in range(n):
            x0, y0 = 20 - DX * i, 20 - DY * i          # content moves by +DX, +DY
            w.write(np.repeat(big[y0:y0 + H, x0:x0 + W, None], 3, axis=2))
    return path


def test_eight_bit_mapping_is_denseflows():
    flow = np.array([[[-25.0, 20.0], [0.0, -20.0], [10.0, 0.1]]], np.float32)   # (1, 3, 2)
    x, y = flow_to_images(flow)
    # round(255 * (v + 20) / 40), clipped at +-20
    assert x.tolist() == [[0, 128, 191]] and y.tolist() == [[255, 0, 128]]
    _, _, uv = flow_to_images(np.array([[[4.0, -4.0], [20.0, 20.0]]], np.float32), uv=True)
    assert uv.tolist() == [[round(255 * 16 / 40), 255]]                         # sign(uv) sqrt|uv| = -4, 20


def test_extraction_measures_the_motion_and_resumes(tmp_path):
    video = _moving_texture(tmp_path / "move.mp4")
    out = tmp_path / "move.flow"
    r = extract_flow(video, out, FlowSpec(method="dis"))
    assert r.pairs == r.computed == 4
    import cv2

    x = cv2.imread(str(flow_image_path(out, "x", 2)), 0)[16:-16, 16:-16].astype(float)
    y = cv2.imread(str(flow_image_path(out, "y", 2)), 0)[16:-16, 16:-16].astype(float)
    # decoded back to pixels: v = u8 * 40 / 255 - 20
    assert abs(np.median(x) * 40 / 255 - 20 - DX) < 0.5 and abs(np.median(y) * 40 / 255 - 20 - DY) < 0.5
    assert extract_flow(video, out, FlowSpec(method="dis")).computed == 0        # finished: reused
    for k in ("x", "y"):                                                        # an interrupted run
        flow_image_path(out, k, 4).unlink()
    flow_image_path(out, "y", 3).unlink()
    (out / "flow.json").unlink()
    assert extract_flow(video, out, FlowSpec(method="dis")).computed == 2
    redo = extract_flow(video, out, FlowSpec(method="farneback", uv=True))      # other settings: redone
    assert redo.computed == 4 and flow_image_path(out, "uv", 4).is_file()


def test_flow_clip_is_normalised_as_mmaction2_and_indexed_by_frame(tmp_path):
    video = _moving_texture(tmp_path / "move.mp4", n=4)
    out = tmp_path / "f"
    extract_flow(video, out, FlowSpec(uv=True))
    assert flow_indices([0, 1, 2, 3], 3) == [1, 2, 3, 3]
    clip = read_flow_clip(out, [0, 2, 3], channels=3, size=(48, 64))
    assert clip.shape == (3, 3, 48, 64) and clip.abs().max() <= 1.0
    import cv2

    raw = cv2.imread(str(flow_image_path(out, "x", 3)), 0).astype(np.float32)
    two = read_flow_clip(out, [2])
    assert torch.allclose(two[0, 0], torch.from_numpy((raw - 128) / 128))


def test_tvl1_without_contrib_is_a_one_line_usage_error(tmp_path):
    if tvl1_available():
        pytest.skip("OpenCV contrib is installed here")
    video = _moving_texture(tmp_path / "move.mp4", n=2)
    with pytest.raises(UsageError, match="opencv-contrib-python-headless replaces opencv-python-headless"):
        extract_flow(video, tmp_path / "o", FlowSpec(method="tvl1"))
    assert not (tmp_path / "o").exists()


def test_flow_command_writes_a_folder_per_video_and_reuses_it(tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    _moving_texture(src / "a.mp4", n=3)
    _moving_texture(src / "b.mp4", n=2)
    assert main(["flow", str(src), "--out", str(tmp_path / "out")]) == 0
    assert flow_image_path(tmp_path / "out" / "a.mp4.flow", "y", 2).is_file()
    assert flow_image_path(tmp_path / "out" / "b.mp4.flow", "x", 1).is_file()
    assert main(["flow", str(src), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.count("reused") == 2
    assert main(["flow", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.mp4" in err[0]


# ------------------------------------------------------------------------------------------ models


def test_flow_backbone_takes_mmaction2s_flow_slowonly_layout():
    from humact.video_models.recognizer import slowonly_r50_recognizer

    ref = REF["layouts"]["slowonly_r50_flow"]
    with torch.device("meta"):
        sd = slowonly_r50_recognizer(num_classes=400, in_channels=2).state_dict()
    listing = "".join(f"{k}\t{list(v.shape)}\n" for k, v in sorted(sd.items()))
    assert len(sd) == ref["num_keys"] and hashlib.sha256(listing.encode()).hexdigest() == ref["sha256"]
    with torch.device("meta"):
        det = flow_slowonly_r50_ava(in_channels=2)
    assert det.backbone.conv1.conv.weight.shape == (64, 2, 1, 7, 7)


def test_expanded_uv_channel_keeps_the_outputs():
    w = torch.randn(4, 2, 1, 3, 3)
    x = torch.randn(1, 2, 1, 8, 8)
    w3 = expand_flow_conv1(w)
    x3 = torch.cat([x, torch.randn(1, 1, 1, 8, 8)], 1)
    assert torch.allclose(torch.nn.functional.conv3d(x3, w3), torch.nn.functional.conv3d(x, w), atol=1e-6)


@pytest.mark.parametrize("fusion", ["concat", "add", "score"])
def test_two_stream_detector_forward_backward(fusion):
    torch.manual_seed(0)
    model = TwoStreamDetector(fusion=fusion, num_classes=4, flow_channels=3)
    rgb, flow = torch.randn(1, 3, 2, 32, 32), torch.randn(1, 3, 4, 32, 32)
    rois = torch.tensor([[0, 2.0, 2.0, 20.0, 30.0]])
    out = model(rgb, flow, rois)
    loss = (out["rgb"].sum() + out["flow"].sum()) if fusion == "score" else out.sum()
    loss.backward()
    flow_bb = model.flow.backbone if fusion == "score" else model.flow_backbone
    assert flow_bb.conv1.conv.weight.grad.abs().sum() > 0
    model.eval()
    p = model.predict(rgb, flow, rois)
    assert p.shape == (1, 4) and ((p > 0) & (p < 1)).all()
    if fusion == "concat":
        assert model.roi_head.bbox_head.fc_cls.in_features == 4096


@pytest.mark.filterwarnings("ignore:for .*copying from a non-meta")
def test_streams_load_mmaction2_checkpoints_strictly():
    from humact.errors import CheckpointError
    from humact.video_models.recognizer import slowonly_r50_recognizer

    with torch.device("meta"):
        model = TwoStreamDetector(fusion="concat", flow_channels=3)
        flow_rec = slowonly_r50_recognizer(num_classes=400, in_channels=2)
    ck = {k: torch.zeros(v.shape) for k, v in flow_rec.state_dict().items()}     # the Kinetics flow layout
    model.load_stream("flow", {"state_dict": ck})                                # 2 -> 3 channels, strict
    del ck["backbone.layer3.0.conv1.conv.weight"]
    with pytest.raises(CheckpointError, match="layer3.0.conv1"):
        model.load_stream("flow", ck)
    score = TwoStreamDetector(fusion="score")
    ava = reference_weights((k, v.shape) for k, v in score.rgb.state_dict().items())
    score.load_stream("rgb", ava, backbone_only=False)
    assert torch.equal(score.rgb.roi_head.bbox_head.fc_cls.weight, ava["roi_head.bbox_head.fc_cls.weight"])


def test_the_command_lists_the_library_methods():
    from humact.commands import flow as cmd
    from humact.video_models import flow as lib

    assert cmd.FLOW_METHODS == lib.FLOW_METHODS
