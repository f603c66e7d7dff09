"""SlowFast: two pathways with lateral connections, MMAction2's layout and outputs."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from conftest import shared_file
from mmaction2_parity import check_reproduces_mmaction2
from humact.video_models.ava import load_mmaction2_detector, slowfast_r50_ava
from humact.io.checkpoints import read_key_shapes, reference_weights
from humact.video_models.recognizer import slowfast_recognizer
from humact.video_models.slowfast import ResNet3dSlowFast

torch.set_num_threads(2)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# open-mmlab/mmaction2 configs/recognition/slowfast/metafile.yml (commit 09f41cb4), Kinetics-400 heads:
#   slowfast_r50_4x16x1_256e_kinetics400_rgb   Parameters: 34479288
#   slowfast_r50_8x8x1_256e_kinetics400_rgb    Parameters: 34565560  (fusion kernel 7)
#   slowfast_r101_8x8x1_256e_kinetics400_rgb   Parameters: 62912312
#   slowfast_r101_r50_4x16x1_256e_kinetics400_rgb  Parameters: 62384312  (slow R101, fast R50)
@pytest.mark.parametrize("kw, published", [
    (dict(sampling="4x16"), 34_479_288),
    (dict(sampling="8x8"), 34_565_560),
    (dict(sampling="8x8", depth=101), 62_912_312),
    (dict(sampling="4x16", depth=101, fast_depth=50), 62_384_312),
], ids=["r50_4x16", "r50_8x8", "r101_8x8", "r101_r50_4x16"])
def test_parameter_count_matches_mmaction2_model_zoo(kw, published):
    assert n_params(slowfast_recognizer(**kw)) == published


def test_pathways_see_every_tau_th_and_every_tau_over_alpha_th_frame():
    net = ResNet3dSlowFast(resample_rate=8, speed_ratio=8).eval()
    with torch.no_grad():
        slow, fast = net(torch.zeros(1, 3, 16, 64, 64))
    assert slow.shape == (1, 2048, 2, 2, 2)
    assert fast.shape == (1, 256, 16, 2, 2)


def test_slow_path_sees_only_the_frames_it_samples():
    torch.manual_seed(0)
    net = ResNet3dSlowFast(resample_rate=8, speed_ratio=8).eval()
    net.slow_path.conv1_lateral.conv.weight.data.zero_()
    for name in net.lateral_connections:
        getattr(net.slow_path, name).conv.weight.data.zero_()
    x = torch.randn(1, 3, 16, 32, 32)
    x2 = x.clone()
    x2[:, :, 3] += 10.0           # frame 3 is not one of the slow path's frames 0 and 8
    with torch.no_grad():
        assert torch.equal(net(x)[0], net(x2)[0])
        assert not torch.equal(net(x)[1], net(x2)[1])


def test_lateral_connections_carry_fast_path_information_to_the_slow_path():
    torch.manual_seed(0)
    net = ResNet3dSlowFast(resample_rate=8, speed_ratio=8).eval()
    x = torch.randn(1, 3, 16, 32, 32)
    x2 = x.clone()
    x2[:, :, 3] += 10.0
    with torch.no_grad():
        assert not torch.allclose(net(x)[0], net(x2)[0])


def test_trains_forward_and_backward():
    torch.manual_seed(0)
    net = slowfast_recognizer(num_classes=4, dropout=0.0).train()
    loss = nn.functional.cross_entropy(net(torch.randn(2, 3, 8, 32, 32)), torch.tensor([1, 3]))
    loss.backward()
    assert net.backbone.slow_path.layer1_lateral.conv.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.parameters())


def test_ava_detector_key_layout_is_mmaction2s():
    layouts = json.loads(shared_file("reference", "ava", "mmaction2_slowfast_ava_state_dict_keys.json").read_text())
    ours = {k: tuple(v.shape) for k, v in slowfast_r50_ava().state_dict().items()}
    assert ours == {k: tuple(s) for k, s in layouts["slowfast_r50_ava"]}


def test_ava_detectorcheck_reproduces_mmaction2():
    name = "slowfast_r50_4x16_ava21"
    ref = torch.load(shared_file("reference", "mmaction2", f"{name}.pt"), weights_only=True)
    model = slowfast_r50_ava().eval()
    load_mmaction2_detector(model, reference_weights(read_key_shapes(
        shared_file("reference", "mmaction2", f"{name}_state_dict_keys.txt"))))
    assert ref["input_recipe"] == "torch.randn((1, 3, 32, 256, 320), generator=torch.Generator().manual_seed(123))"
    x = torch.randn((1, 3, 32, 256, 320), generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        feats = model.forward_features(x)
        roi_feats = model.roi_head.bbox_roi_extractor(feats, ref["rois"])
        logits = model.forward_head(feats, ref["rois"])
    assert [list(f.shape) for f in feats] == ref["feat_shapes"]
    for f, s, sub in zip(feats, ref["feat_sums"], ref["feat_sub"]):
        assert f.double().sum().item() == pytest.approx(s, rel=1e-6)
        assert (f[..., ::4, ::4] - sub).abs().max() <= 1e-4 * sub.abs().max()
    assert (roi_feats - ref["roi_feats"]).abs().max() <= 1e-4 * ref["roi_feats"].abs().max()
    assert (logits - ref["logits"]).abs().max() <= 1e-4 * ref["logits"].abs().max()


def test_rejects_resample_rate_not_divisible_by_speed_ratio():
    with pytest.raises(ValueError, match="resample_rate 6 must be a multiple of speed_ratio 4"):
        ResNet3dSlowFast(resample_rate=6, speed_ratio=4)


def test_classification_head_reads_fast_features_first_as_mmaction2():
    # MMAction2's SlowFastHead concatenates (fast, slow): a checkpoint's fc_cls columns are [fast 256 | slow 2048].
    net = slowfast_recognizer(num_classes=1, dropout=0.0).eval()
    with torch.no_grad():
        net.cls_head.fc_cls.weight.zero_()
        net.cls_head.fc_cls.bias.zero_()
        net.cls_head.fc_cls.weight[0, :256] = 1.0
        slow, fast = torch.rand(1, 2048, 1, 1, 1), torch.rand(1, 256, 4, 1, 1)
        assert torch.allclose(net.forward_head((slow, fast)), fast.mean(dim=(2, 3, 4)).sum(1, keepdim=True))


def test_recognizer_reproduces_mmaction2_logits():
    check_reproduces_mmaction2("slowfast_r50_4x16")
