"""`humact.deploy.fuse`: the fused (BN-folded, channels-last) ResNet3d / SlowFast / PoseConv3D twins give the
source's outputs, and every model gets the twin (or fallback) its table promises."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from humact.deploy import fuse
from humact.deploy.resnet3d import FusedConv3d, FusedRecognizer3D, FusedResNet3d, FusedSlowFast, fuse_backbone
from humact.skeleton.posec3d import load_pyskl_checkpoint, posec3d_slowonly_r50_model
from humact.video_models.resnet3d import ResNet3d, freeze_batch_norm
from conftest import shared_file

torch.set_num_threads(1)


def randomise_batch_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial BN statistics and affine parameters, so that a mis-folded BN shows."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.5)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return model


def small_posec3d():
    torch.manual_seed(0)
    model = posec3d_slowonly_r50_model(num_classes=7, base_channels=8)
    return randomise_batch_norms(model).eval()


def twin(model: nn.Module) -> FusedRecognizer3D:
    """``fuse(model)``, which must be the 3D twin (the model itself would pass any parity test)."""
    fused = fuse(model)
    assert isinstance(fused, FusedRecognizer3D) and isinstance(fused.backbone, (FusedResNet3d, FusedSlowFast))
    return fused


def test_fused_posec3d_equals_source_on_random_input():
    model = small_posec3d()
    x = torch.rand(2, 17, 8, 24, 24, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        feat, logits = model.forward_features(x), model(x)
    fused = twin(model)
    assert isinstance(fused.backbone, FusedResNet3d)
    feat_f = fused.forward_features(x)
    assert feat_f.shape == feat.shape == (2, 128, 4, 3, 3)
    assert (feat_f - feat).abs().max() <= 1e-5 * feat.abs().max()
    assert (fused(x) - logits).abs().max() <= 1e-5


def test_fused_posec3d_predict_averages_clips_like_the_source():
    model = small_posec3d()
    x = torch.rand(2, 3, 17, 8, 24, 24, generator=torch.Generator().manual_seed(2))
    assert (twin(model).predict(x) - model.predict(x)).abs().max() <= 1e-6


def test_posec3d_runs_pointwise_spatial_and_temporal_kernels():
    kinds = {m.kind for m in twin(small_posec3d()).modules() if isinstance(m, FusedConv3d)}
    assert kinds == {"pointwise", "spatial", "temporal"}


def test_fused_i3d_style_backbone_equals_source():
    # A 5x7x7 stem with temporal stride (the general conv3d path), pool2, 3x3x3 inflation,
    # caffe-style strides and frozen BNs: the other ResNet3d variants the twin accepts.
    torch.manual_seed(3)
    bb = ResNet3d(depth=50, stage_blocks=(2, 1), num_stages=2, base_channels=8, out_indices=(0, 1),
                  conv1_kernel=(5, 7, 7), conv1_stride_t=2, pool1_stride_t=2, with_pool2=True,
                  inflate=(1, 1), inflate_style="3x3x3", style="caffe", spatial_strides=(1, 2),
                  temporal_strides=(1, 2))
    bb = freeze_batch_norm(randomise_batch_norms(bb, seed=4)).eval()
    x = torch.rand(1, 3, 16, 32, 32, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        ref = bb(x)
    fused = fuse_backbone(bb)
    assert any(m.kind == "general" for m in fused.modules() if isinstance(m, FusedConv3d))
    out = fused(x)
    assert len(out) == len(ref) == 2
    for a, b in zip(out, ref):
        assert a.shape == b.shape
        assert (a - b).abs().max() <= 1e-5 * b.abs().max()


def test_fuse_refuses_a_model_in_training_mode():
    model = small_posec3d().train()
    with pytest.raises(ValueError, match="eval"):
        fuse(model)


def test_fuse_refuses_non_local_blocks():
    bb = ResNet3d(depth=50, stage_blocks=(1,), num_stages=1, base_channels=8, out_indices=(0,),
                  non_local=(1,)).eval()
    with pytest.raises(ValueError, match="non-local"):
        fuse_backbone(bb)


def test_fused_posec3d_reproduces_pyskl_reference():
    ref = torch.load(shared_file("reference", "pyskl", "posec3d_slowonly_r50_ntu60.pt"), weights_only=True)
    model = posec3d_slowonly_r50_model(num_classes=60).eval()
    load_pyskl_checkpoint(model, ref)
    fused = twin(model)
    feat = fused.forward_features(ref["input"])
    # Features reach ~107; as for the unfused model, compare relative to the largest magnitude.
    assert (feat - ref["feat"]).abs().max() <= 1e-5 * ref["feat"].abs().max()
    assert (fused.forward_head(feat) - ref["logits"]).abs().max() <= 1e-5
    assert (fused.predict(ref["input"]) - ref["prob"]).abs().max() <= 1e-5


def test_fused_slowfast_equals_source_on_both_pathways():
    from humact.video_models.slowfast import slowfast_r50

    torch.manual_seed(0)
    model = randomise_batch_norms(slowfast_r50()).eval()
    x = torch.randn(1, 3, 16, 48, 48, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        ref, out = model(x), fuse_backbone(model)(x)
    for r, o in zip(ref, out):
        assert r.shape == o.shape
        assert (r - o).abs().max() <= 1e-5 * r.abs().max()


def test_fuse_gives_slowfast_its_twin_and_runs_csn_channels_last_with_the_same_logits():
    from humact import zoo

    x = torch.randn(1, 3, 32, 48, 48, generator=torch.Generator().manual_seed(3))
    for name, fused_type in (("slowfast_r50_4x16", FusedSlowFast), ("ircsn_r50", None)):
        torch.manual_seed(0)
        model = zoo.get(name).build(num_classes=5)
        randomise_batch_norms(model).eval()
        with torch.no_grad():
            ref = model(x)
            fused = fuse(model)
            out = fused(x)
        if fused_type is not None:
            assert isinstance(fused, FusedRecognizer3D) and isinstance(fused.backbone, fused_type)
            assert fused is not model and not model.channels_last   # the source is left as it was
        else:
            assert fused is model and model.channels_last  # CSN has no twin: it runs channels-last instead
        assert (ref - out).abs().max() <= 1e-5 * ref.abs().max()


def test_fuse_runs_a_recognizer_with_non_local_blocks_channels_last_with_the_same_logits():
    from humact.video_models.heads import I3DHead
    from humact.video_models.recognizer import Recognizer3D

    torch.manual_seed(0)
    bb = ResNet3d(depth=50, stage_blocks=(1, 2), num_stages=2, base_channels=8, out_indices=(1,),
                  non_local=(0, (0, 1)))
    model = randomise_batch_norms(Recognizer3D(bb, I3DHead(in_channels=bb.feat_dim, num_classes=3))).eval()
    x = torch.randn(1, 3, 4, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        ref = model(x)
        fused = fuse(model)
        out = fused(x)
    assert fused is model and model.channels_last
    assert (ref - out).abs().max() <= 1e-5 * ref.abs().max()


def test_fuse_leaves_the_source_model_and_its_parameters_unchanged():
    model = small_posec3d()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fused = twin(model)
    assert fused.backbone is not model.backbone and fused.cls_head is not model.cls_head
    assert not any(p.requires_grad for p in fused.parameters())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert fuse(fused) is fused   # a twin is its own twin


def test_fuse_gives_an_ava_detector_the_twin_of_its_backbone():
    from humact.video_models.ava import AVADetector, slowonly_r50_ava

    torch.manual_seed(0)
    model = randomise_batch_norms(slowonly_r50_ava(base_channels=8)).eval()
    x = torch.randn(2, 3, 4, 64, 64, generator=torch.Generator().manual_seed(6))
    rois = torch.tensor([[0, 4.0, 8.0, 40.0, 60.0], [1, 10.0, 0.0, 63.0, 30.0], [1, 0.0, 0.0, 64.0, 64.0]])
    with torch.no_grad():
        ref = model.predict(x, rois)
    fused = fuse(model)
    assert isinstance(fused, AVADetector) and isinstance(fused.backbone, FusedResNet3d)
    assert (fused.predict(x, rois) - ref).abs().max() <= 1e-5


def test_fuse_returns_a_model_without_a_twin_as_it_is():
    from humact.video_models.rgbposeconv3d import rgbposeconv3d

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).eval()
    assert fuse(model) is model
    rgbpose = rgbposeconv3d(num_classes=3).eval()
    assert fuse(rgbpose) is rgbpose


def test_a_subclassed_backbone_is_not_rewritten_by_the_twin_of_its_base_class():
    from humact.video_models.heads import I3DHead
    from humact.video_models.recognizer import Recognizer3D

    class Doubled(ResNet3d):   # a subclass that changes what the network computes
        def forward(self, x):
            return tuple(2 * y for y in super().forward(x))

    torch.manual_seed(0)
    bb = Doubled(depth=50, stage_blocks=(1,), num_stages=1, base_channels=8, out_indices=(0,))
    model = Recognizer3D(bb, I3DHead(in_channels=bb.feat_dim, num_classes=3)).eval()
    x = torch.randn(1, 3, 4, 16, 16, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        ref = model(x)
        fused = fuse(model)
        out = fused(x)
    assert fused is model   # no twin: the model itself, channels-last
    assert (ref - out).abs().max() <= 1e-5 * ref.abs().max()


def test_a_registered_twin_is_used_for_its_model_and_backbone_class_only():
    from humact.deploy import register_twin
    from humact.deploy.common import _TWINS

    class Backbone(nn.Module):
        pass

    class Special(Backbone):
        pass

    class Model(nn.Module):
        def __init__(self, backbone):
            super().__init__()
            self.backbone = backbone

    special_twin = nn.Identity()
    register_twin(Model, lambda m: special_twin, backbone=Special)
    try:
        assert fuse(Model(Special()).eval()) is special_twin
        plain = Model(Backbone()).eval()
        assert fuse(plain) is plain
    finally:
        del _TWINS[Model]
