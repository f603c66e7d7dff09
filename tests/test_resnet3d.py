"""ResNet3d family: SlowOnly (and its AVA detector), I3D with non-local blocks, frozen BN."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from conftest import shared_file
from mmaction2_parity import check_reproduces_mmaction2
from humact.video_models.ava import load_mmaction2_detector, slowonly_r50_ava
from humact.io.checkpoints import read_key_shapes, reference_weights
from humact.video_models.recognizer import (i3d_r50_recognizer, load_mmaction2_recognizer, slowonly_r50_recognizer,
                                            slowonly_r101_recognizer)
from humact.video_models.resnet3d import (FrozenBatchNorm3d, NonLocal3d, ResNet3d, freeze_batch_norm, i3d_r50,
                                          slowonly_r50)

torch.set_num_threads(2)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# Published parameter counts, Kinetics-400 heads (400 classes):
# open-mmlab/mmaction2 configs/recognition/slowonly/metafile.yml (commit 0dee6be0):
#   slowonly_r50_{4x16x1,8x8x1}_256e_kinetics400_rgb  Parameters: 32454096
#   slowonly_r101_8x8x1_196e_kinetics400_rgb           Parameters: 60359120
# open-mmlab/mmaction2 configs/recognition/i3d/metafile.yml (commit 0717b3e3):
#   i3d_r50_32x2x1_100e_8xb8_kinetics400_rgb           Parameters: 28043472
#   i3d_nl_{embedded_gaussian,dot_product}_r50_...     Parameters: 35397840
@pytest.mark.parametrize("build, published", [
    (lambda: slowonly_r50_recognizer(), 32_454_096),
    (lambda: slowonly_r101_recognizer(), 60_359_120),
    (lambda: i3d_r50_recognizer(), 28_043_472),
    (lambda: i3d_r50_recognizer(non_local=True), 35_397_840),
    (lambda: i3d_r50_recognizer(non_local=True, non_local_mode="dot_product"), 35_397_840),
], ids=["slowonly_r50", "slowonly_r101", "i3d_r50", "i3d_r50_nl_embedded_gaussian", "i3d_r50_nl_dot_product"])
def test_parameter_count_matches_mmaction2_model_zoo(build, published):
    assert n_params(build()) == published


def test_slowonly_keeps_time_and_divides_space_by_32():
    with torch.no_grad():
        (feat,) = slowonly_r50().eval()(torch.zeros(1, 3, 4, 64, 64))
    assert feat.shape == (1, 2048, 4, 2, 2)


def test_i3d_divides_time_by_8_with_conv1_pool1_and_pool2():
    with torch.no_grad():
        (feat,) = i3d_r50().eval()(torch.zeros(1, 3, 16, 64, 64))
    assert feat.shape == (1, 2048, 2, 2, 2)


def test_i3d_non_local_blocks_sit_where_mmaction2_puts_them():
    keys = {k.split(".non_local_block")[0] for k in i3d_r50(non_local=True).state_dict() if "non_local_block" in k}
    assert keys == {"layer2.1", "layer2.3", "layer3.1", "layer3.3", "layer3.5"}
    sd = i3d_r50(non_local=True).state_dict()
    # mmcv's NonLocal3d names: sub-sampled branches wrapped in a Sequential, BN after the output conv
    for k in ("g.0.conv.weight", "g.0.conv.bias", "phi.0.conv.weight", "theta.conv.weight",
              "conv_out.conv.weight", "conv_out.bn.running_var"):
        assert f"layer2.1.non_local_block.{k}" in sd
    assert "layer2.1.non_local_block.conv_out.conv.bias" not in sd


def test_non_local_block_is_residual_attention_over_all_positions():
    torch.manual_seed(0)
    block = NonLocal3d(8, sub_sample=False, use_scale=True, norm=False).eval()
    x = torch.randn(1, 8, 3, 4, 4)
    with torch.no_grad():
        n = x.shape[2] * 16
        theta = block.theta(x).reshape(4, n).T
        phi = block.phi(x).reshape(4, n)
        g = block.g(x).reshape(4, n).T
        att = (theta @ phi / 2.0).softmax(-1)          # scaled by sqrt(4 inner channels)
        want = x + block.conv_out((att @ g).T.reshape(1, 4, 3, 4, 4))
        assert torch.allclose(block(x), want, atol=1e-5)
        # a change in the last frame reaches the first frame's output
        x2 = x.clone()
        x2[:, :, -1] += 1.0
        assert not torch.allclose(block(x2)[:, :, 0], block(x)[:, :, 0])


def test_i3d_non_local_trains_forward_and_backward():
    torch.manual_seed(0)
    net = i3d_r50_recognizer(num_classes=3, non_local=True, dropout=0.0).train()
    loss = nn.functional.cross_entropy(net(torch.randn(2, 3, 8, 64, 64)), torch.tensor([0, 2]))
    loss.backward()
    nl = net.backbone.layer2[1].non_local_block
    assert nl.theta.conv.weight.grad.abs().sum() > 0
    assert all(p.grad is not None for p in net.parameters())


def test_slowonly_ava_detector_key_layout_is_mmaction2s():
    layouts = json.loads(shared_file("reference", "ava", "mmaction2_slowfast_ava_state_dict_keys.json").read_text())
    ours = {k: tuple(v.shape) for k, v in slowonly_r50_ava().state_dict().items()}
    assert ours == {k: tuple(s) for k, s in layouts["slowonly_r50_ava"]}


def test_ava_head_with_mlp_variant_loads_its_layout():
    layouts = json.loads(shared_file("reference", "ava", "mmaction2_slowfast_ava_state_dict_keys.json").read_text())
    head = {k: tuple(v.shape) for k, v in slowonly_r50_ava(mlp_head=True).state_dict().items() if "roi_head" in k}
    assert head == {k: tuple(s) for k, s in layouts["bbox_head_mlp_variant"]}


def test_slowonly_ava_detectorcheck_reproduces_mmaction2():
    name = "slowonly_r50_4x16_ava21"
    ref = torch.load(shared_file("reference", "mmaction2", f"{name}.pt"), weights_only=True)
    model = slowonly_r50_ava().eval()
    load_mmaction2_detector(model, reference_weights(read_key_shapes(
        shared_file("reference", "mmaction2", f"{name}_state_dict_keys.txt"))))
    assert ref["input_recipe"] == "torch.randn((1, 3, 4, 256, 320), generator=torch.Generator().manual_seed(123))"
    x = torch.randn((1, 3, 4, 256, 320), generator=torch.Generator().manual_seed(123))
    with torch.no_grad():
        (feat,) = model.forward_features(x)
        roi_feats = model.roi_head.bbox_roi_extractor((feat,), ref["rois"])
        logits = model.forward_head((feat,), ref["rois"])
    assert list(feat.shape) == ref["feat_shapes"][0]
    assert feat.double().sum().item() == pytest.approx(ref["feat_sums"][0], rel=1e-6)
    sub = ref["feat_sub"][0]
    assert (feat[..., ::4, ::4] - sub).abs().max() <= 1e-4 * sub.abs().max()
    assert (roi_feats - ref["roi_feats"]).abs().max() <= 1e-4 * ref["roi_feats"].abs().max()
    assert (logits - ref["logits"]).abs().max() <= 1e-4 * ref["logits"].abs().max()


def test_recognizer_loader_renames_fc_and_drops_preprocessor_buffers():
    model = slowonly_r50_recognizer(num_classes=5)
    sd = {("module." + k).replace("cls_head.fc_cls.", "cls_head.fc."): v.clone() for k, v in model.state_dict().items()}
    sd["module.data_preprocessor.mean"] = torch.zeros(3, 1, 1, 1)
    fresh = slowonly_r50_recognizer(num_classes=5)
    load_mmaction2_recognizer(fresh, {"state_dict": sd, "meta": {}})
    assert torch.equal(fresh.cls_head.fc_cls.weight, model.cls_head.fc_cls.weight)


def test_loader_names_the_unexpected_key():
    model = slowonly_r50_recognizer(num_classes=5)
    sd = dict(model.state_dict())
    sd["backbone.layer5.0.conv1.conv.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"unexpected keys \['backbone\.layer5\.0\.conv1\.conv\.weight'\]"):
        load_mmaction2_recognizer(model, sd)


# ---- frozen BatchNorm ------------------------------------------------------------------

def _tiny_resnet(**kw) -> ResNet3d:
    return ResNet3d(depth=50, base_channels=8, num_stages=2, stage_blocks=(1, 1), out_indices=(1,),
                    spatial_strides=(1, 2), temporal_strides=(1, 1), dilations=(1, 1), inflate=(1, 1), **kw)


def test_freeze_batch_norm_keeps_outputs_and_state_dict_keys():
    torch.manual_seed(0)
    net = _tiny_resnet()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    net.eval()
    x = torch.randn(1, 3, 2, 32, 32)
    with torch.no_grad():
        before = net(x)[0]
    keys = list(net.state_dict())
    frozen = freeze_batch_norm(net)
    assert not any(isinstance(m, nn.BatchNorm3d) for m in frozen.modules())
    assert list(frozen.state_dict()) == keys
    with torch.no_grad():
        assert torch.allclose(frozen.train()(x)[0], before, atol=1e-5)


def test_frozen_batch_norm_is_unchanged_by_a_training_step():
    torch.manual_seed(0)
    net = freeze_batch_norm(_tiny_resnet()).train()
    bn = next(m for m in net.modules() if isinstance(m, FrozenBatchNorm3d))
    before = {k: v.clone() for k, v in bn.state_dict().items()}
    opt = torch.optim.SGD([p for p in net.parameters() if p.requires_grad], lr=0.1)
    net(torch.randn(2, 3, 2, 32, 32))[0].square().mean().backward()
    opt.step()
    assert all(torch.equal(before[k], v) for k, v in bn.state_dict().items())
    assert not any(isinstance(p, nn.Parameter) and p is bn.weight for p in net.parameters())


def test_norm_eval_keeps_running_statistics_during_training():
    torch.manual_seed(0)
    net = _tiny_resnet(norm_eval=True, bn_frozen=True).train()
    bn = net.conv1.bn
    mean = bn.running_mean.clone()
    net(torch.randn(2, 3, 2, 32, 32) * 5 + 3)
    assert not bn.training and torch.equal(bn.running_mean, mean)
    assert not bn.weight.requires_grad and net.conv1.conv.weight.requires_grad


def test_without_norm_eval_training_updates_running_statistics():
    torch.manual_seed(0)
    net = _tiny_resnet().train()
    mean = net.conv1.bn.running_mean.clone()
    net(torch.randn(2, 3, 2, 32, 32) * 5 + 3)
    assert not torch.equal(net.conv1.bn.running_mean, mean)


def test_slowonly_fine_tunes_on_real_clips_and_the_loss_falls(tmp_path):
    """A small SlowOnly (base width 16) learns the three shared videos, labelled by file, in 12 SGD steps."""
    from humact.config import OptimConfig, RunConfig
    from humact.train.trainer import Trainer
    from humact.video_models.clips import ClipSpec, VideoClipDataset

    media = ("archery_320x240.avi", "ntu_hug_1080p.avi", "pool_cleaning_340x256.mp4")
    videos = [(shared_file("data", "media", name), label) for label, name in enumerate(media)]
    data = VideoClipDataset(videos, ClipSpec(4, 4), clips_per_video=4, short_side=48, crop_size=40, seed=0)
    torch.manual_seed(0)
    model = slowonly_r50_recognizer(num_classes=3, base_channels=16, dropout=0.0)
    optim = OptimConfig(epochs=4, batch_size=4, lr=0.01, weight_decay=1e-4, clip_grad=40.0)
    trainer = Trainer(model, data, optim, RunConfig(seed=0), out_dir=tmp_path, progress=False)
    history = trainer.fit(log=None)
    assert len(history) == 4 and trainer.iteration == 12
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    assert history[-1]["accuracy"] > history[0]["accuracy"]


@pytest.mark.parametrize("name", ["slowonly_r50_8x8", "i3d_r50", "i3d_r50_nl", "i3d_r50_nl_dot"])
def test_recognizer_reproduces_mmaction2_logits(name):
    check_reproduces_mmaction2(name)
