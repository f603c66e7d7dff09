"""Actor-context relations: MMAction2's ACRNHead at parity, the actor-target non-local relation."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from humact.errors import CheckpointError
from humact.io.checkpoints import load_foreign, reference_weights
from humact.video_models.acrn import (ACRNHead, ActorContextRelation, load_plain_detector,
                                      slowfast_acrn_r50_ava, slowfast_relation_r50_ava)
from humact.video_models.roi import RoIExtractor3D

REF = json.loads((Path(__file__).parent / "data" / "avaparts_mmaction2.json").read_text())


def _layout_sha(sd) -> str:
    return hashlib.sha256("".join(f"{k}\t{list(v.shape)}\n" for k, v in sorted(sd.items())).encode()).hexdigest()


def test_acrn_head_reproduces_mmaction2():
    head = ACRNHead(in_channels=32, out_channels=16).eval()
    head.load_state_dict(reference_weights((k, v.shape) for k, v in head.state_dict().items()), strict=True)
    g = torch.Generator().manual_seed(5)
    torch.randn(4, 64, 1, 4, 4, generator=g)                 # the FBO input drawn first (see the recipe)
    x, feat = torch.randn(3, 16, 1, 4, 4, generator=g), torch.randn(2, 16, 1, 5, 5, generator=g)
    with torch.no_grad():
        out = head(x, feat, torch.tensor(REF["acrn_rois"]))
    want = torch.tensor(REF["acrn"])
    assert out.shape == want.shape == (3, 16, 1, 5, 5)
    assert (out - want).abs().max() <= 1e-4 * want.abs().max()


@pytest.mark.filterwarnings("ignore:for .*copying from a non-meta")
def test_slowfast_acrn_layout_is_mmaction2s_and_loads_strictly():
    ref = REF["layouts"]["slowfast_acrn_r50_ava"]
    with torch.device("meta"):                               # shapes only: no 70 M-parameter initialisation
        model = slowfast_acrn_r50_ava()
    sd = model.state_dict()
    assert len(sd) == ref["num_keys"] and _layout_sha(sd) == ref["sha256"]
    w = {k: torch.empty(v.shape) for k, v in sd.items()}
    load_foreign(model, {"state_dict": w})
    w.pop("roi_head.shared_head.conv2.bn.running_var")
    with pytest.raises(CheckpointError, match="conv2.bn.running_var"):
        load_foreign(model, w)


def test_context_map_is_what_the_roi_extractor_pools():
    slow, fast = torch.randn(1, 6, 2, 8, 8), torch.randn(1, 2, 8, 8, 8)
    rois = torch.tensor([[0, 8.0, 8.0, 100.0, 90.0]])
    ext = RoIExtractor3D(output_size=4, spatial_scale=1 / 16)
    ctx = ext.pooled_map((slow, fast))
    assert ctx.shape == (1, 8, 1, 8, 8)
    assert torch.allclose(ext(ctx, rois), ext((slow, fast), rois), atol=1e-6)


@pytest.mark.slow
def test_acrn_detector_forward_backward():
    torch.manual_seed(0)
    model = slowfast_acrn_r50_ava(num_classes=4)
    clip = torch.randn(1, 3, 8, 32, 32)
    rois = torch.tensor([[0, 2.0, 2.0, 20.0, 30.0], [0, 10.0, 0.0, 31.0, 25.0]])
    out = model(clip, rois)
    assert out.shape == (2, 4)
    out.sum().backward()
    assert model.roi_head.shared_head.conv1.conv.weight.grad.abs().sum() > 0


def test_relation_attends_only_outside_the_box():
    rel = ActorContextRelation(4, latent_channels=4, spatial_scale=1.0).eval()
    torch.nn.init.normal_(rel.out.weight)
    feat = torch.zeros(1, 4, 1, 4, 4)
    x = torch.randn(1, 4, 1, 2, 2)
    inside = torch.tensor([[0, 0.0, 0.0, 1.9, 1.9]])          # cells (0, 0), (0, 1), (1, 0), (1, 1)
    mask = rel.outside_mask(inside, 4, 4).reshape(4, 4)
    assert not mask[:2, :2].any() and mask.sum() == 12
    base = rel(x, feat, inside)
    feat2 = feat.clone()
    feat2[..., :2, :2] = 5.0                                  # change only what the box covers
    assert torch.allclose(rel(x, feat2, inside), base)
    feat3 = feat.clone()
    feat3[..., 3, 3] = 5.0                                    # change one cell outside
    assert not torch.allclose(rel(x, feat3, inside), base)
    everything = torch.tensor([[0, 0.0, 0.0, 4.0, 4.0]])      # no outside: nothing added, no NaN
    assert torch.equal(rel(x, feat3, everything), x)


def test_relation_starts_as_the_identity_and_trains():
    rel = ActorContextRelation(8, latent_channels=4, spatial_scale=1 / 4)
    x, feat = torch.randn(2, 8, 1, 3, 3), torch.randn(1, 8, 1, 6, 6, requires_grad=True)
    rois = torch.tensor([[0, 0.0, 0.0, 8.0, 8.0], [0, 4.0, 4.0, 20.0, 24.0]])
    assert torch.equal(rel(x, feat, rois), x)                 # zero-initialised output projection
    rel(x, feat, rois).sum().backward()
    assert rel.out.weight.grad.abs().sum() > 0


@pytest.mark.slow
def test_relation_detector_takes_a_plain_slowfast_ava_checkpoint():
    from humact.video_models.ava import slowfast_r50_ava

    plain = slowfast_r50_ava()
    model = slowfast_relation_r50_ava()
    sd = reference_weights((k, v.shape) for k, v in plain.state_dict().items())
    load_plain_detector(model, sd)
    assert torch.equal(model.roi_head.bbox_head.fc_cls.weight, sd["roi_head.bbox_head.fc_cls.weight"])
    plain.load_state_dict(sd)
    plain.eval()
    model.eval()
    clip, rois = torch.randn(1, 3, 8, 32, 32), torch.tensor([[0, 2.0, 2.0, 20.0, 30.0]])
    with torch.no_grad():    # the untrained relation adds nothing: same scores as the plain detector
        assert torch.allclose(model(clip, rois), plain(clip, rois), atol=1e-5)


@pytest.mark.slow
def test_context_detector_steps_and_fused_twin():
    from humact.deploy import fuse
    from humact.video_models.acrn import ContextDetector

    torch.manual_seed(3)
    model = slowfast_relation_r50_ava(num_classes=3, latent_channels=8).eval()
    torch.nn.init.normal_(model.roi_head.relation.out.weight, std=0.1)   # a relation that does something
    clip, rois = torch.randn(1, 3, 8, 32, 32), torch.tensor([[0, 2.0, 2.0, 20.0, 30.0]])
    with torch.no_grad():
        feats = model.forward_features(clip)
        steps = model.classify(model.roi_features(feats, rois))
        plain = model.roi_head.bbox_head(model.roi_head.bbox_roi_extractor(feats, rois))
        assert torch.allclose(steps, model(clip, rois)) and not torch.allclose(steps, plain)
        fast = fuse(model)
        assert type(fast) is ContextDetector and torch.allclose(fast(clip, rois), steps, atol=1e-4)
