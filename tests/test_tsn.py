"""TSN 2D ResNets: MMAction2's layout (R50/101/152) strictly, parity of the R50 TSN, the AVA detector on frames."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from humact.errors import CheckpointError
from humact.io.checkpoints import reference_weights
from humact.video_models.tsn import (load_mmaction2_tsn, tsn_ava, tsn_checkpoint_filter, tsn_r50_ava,
                                     tsn_r50_recognizer, tsn_recognizer)

REF = json.loads((Path(__file__).parent / "data" / "avaparts_mmaction2.json").read_text())


def _mm_shapes(model):
    """Our keys with MMAction2's 2D shapes (no temporal axis on backbone convolutions)."""
    return [(k, tuple(v.shape[:2] + v.shape[3:]) if v.dim() == 5 else tuple(v.shape))
            for k, v in model.state_dict().items()]


@pytest.mark.parametrize("depth", [50, 101, 152])
def test_layout_is_mmaction2s_2d_resnet(depth):
    ref = REF["layouts"][f"tsn_r{depth}"]
    shapes = _mm_shapes(tsn_recognizer(depth=depth))
    listing = "".join(f"{k}\t{list(s)}\n" for k, s in sorted(shapes))
    assert len(shapes) == ref["num_keys"] and hashlib.sha256(listing.encode()).hexdigest() == ref["sha256"]


def test_tsn_r50_reproduces_mmaction2():
    model = tsn_r50_recognizer(num_classes=10).eval()
    w = reference_weights(_mm_shapes(model))                 # MMAction2's 2D weights
    load_mmaction2_tsn(model, {"state_dict": w, "meta": {}})
    g = torch.Generator().manual_seed(5)
    for shape in ((4, 64, 1, 4, 4), (3, 16, 1, 4, 4), (2, 16, 1, 5, 5)):   # earlier draws of the recipe
        torch.randn(shape, generator=g)
    frames = torch.randn(3, 3, 64, 64, generator=g)          # 3 segments
    x = frames.permute(1, 0, 2, 3)[None]                     # (1, 3, T=3, H, W)
    with torch.no_grad():
        feat = model.backbone(x)[0]                          # (1, 2048, 3, 2, 2)
        logits = model(x)
    want_sum = torch.tensor(REF["tsn_feat_sum"], dtype=torch.float64)
    assert torch.allclose(feat[0].double().sum((0, 2, 3)), want_sum, rtol=1e-4)
    want_mean = torch.tensor(REF["tsn_feat_mean_first64"])
    got_mean = feat[0, :64].mean((2, 3)).T
    assert (got_mean - want_mean).abs().max() <= 1e-4 * want_mean.abs().max()
    want = torch.tensor(REF["tsn_logits"])
    assert (logits - want).abs().max() <= 1e-4 * want.abs().max()


def test_filter_only_adds_the_temporal_axis_and_wrong_layouts_are_refused():
    model = tsn_r50_recognizer(num_classes=10)
    w = reference_weights(_mm_shapes(model))
    out = tsn_checkpoint_filter(w)
    assert out["backbone.conv1.conv.weight"].shape == (64, 3, 1, 7, 7)
    assert torch.equal(out["backbone.layer2.0.conv2.conv.weight"][:, :, 0], w["backbone.layer2.0.conv2.conv.weight"])
    assert out["cls_head.fc_cls.weight"].shape == (10, 2048)
    with pytest.raises(CheckpointError, match="missing keys"):    # an R50 checkpoint into an R101
        load_mmaction2_tsn(tsn_recognizer(depth=101, num_classes=10), w)
    bad = dict(w)
    bad["backbone.layer1.0.conv2.conv.weight"] = bad["backbone.layer1.0.conv2.conv.weight"][:, :, :1, :1]
    with pytest.raises(CheckpointError, match="layer1.0.conv2"):
        load_mmaction2_tsn(model, bad)


def test_kinetics_tsn_backbone_loads_into_the_ava_detector():
    rec = tsn_r50_recognizer(num_classes=400)
    det = tsn_r50_ava(num_classes=81)
    w = reference_weights(_mm_shapes(rec))
    load_mmaction2_tsn(det, w, backbone_only=True)
    assert torch.equal(det.backbone.layer4[2].conv3.conv.weight[:, :, 0], w["backbone.layer4.2.conv3.conv.weight"])


def test_ava_detector_averages_frame_features_before_roi_pooling():
    torch.manual_seed(0)
    det = tsn_ava(num_classes=3, strides=(1, 2, 2, 1)).eval()
    assert det.roi_head.bbox_roi_extractor.roi_layer.spatial_scale == 1 / 16
    frames = torch.randn(1, 3, 4, 64, 64)
    rois = torch.tensor([[0, 4.0, 4.0, 40.0, 60.0]])
    with torch.no_grad():
        feats = det.forward_features(frames)[0]
        assert feats.shape == (1, 2048, 4, 4, 4)
        # each frame on its own = the per-frame 2D network
        one = det.forward_features(frames[:, :, 2:3])[0]
        assert torch.allclose(feats[:, :, 2:3], one, atol=1e-4)
        pooled = det.roi_head.bbox_roi_extractor(feats, rois)
        mean_first = det.roi_head.bbox_roi_extractor(feats.mean(2, keepdim=True), rois)
        assert torch.allclose(pooled, mean_first, atol=1e-5)
    det.train()
    out = det(frames, rois)
    out.sum().backward()
    assert out.shape == (1, 3) and det.backbone.conv1.conv.weight.grad.abs().sum() > 0


def test_fused_twin_of_the_tsn_detector_matches():
    from humact.deploy import fuse

    torch.manual_seed(2)
    det = tsn_r50_ava(num_classes=3).eval()
    frames, rois = torch.randn(1, 3, 2, 64, 64), torch.tensor([[0, 4.0, 4.0, 40.0, 60.0]])
    assert torch.allclose(fuse(det).predict(frames, rois), det.predict(frames, rois), atol=1e-5)
