"""RGBPoseConv3D: RGB and pose pathways with bidirectional laterals, PYSKL's layout, two heads."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from humact.skeleton.posec3d import posec3d_slowonly_r50_model
from humact.video_models.resnet3d import slowonly_r50
from humact.video_models.rgbposeconv3d import RGBPoseConv3D, load_pyskl_rgbpose, rgbposeconv3d

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return rgbposeconv3d(num_classes=60).eval()


def small_inputs(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    # RGB 8 frames at 4x the heatmaps' resolution; heatmaps 4x more frames (speed_ratio 4)
    return torch.randn(1, 3, 8, 64, 64, generator=g), torch.rand(1, 17, 32, 16, 16, generator=g)


def test_outputs_rgb_and_pose_features_at_the_same_resolution(model):
    imgs, heat = small_inputs()
    with torch.no_grad():
        rgb, pose = model.forward_features(imgs, heat)
    assert rgb.shape == (1, 2048, 8, 2, 2) and pose.shape == (1, 512, 32, 2, 2)


def test_lateral_layout_follows_pyskl_config(model):
    # PYSKL configs/rgbpose_conv3d/rgbpose_conv3d.py: speed_ratio 4, channel_ratio 4, fusion_kernel 7,
    # rgb lateral_infl 1 on stages (0, 0, 1, 1); pose lateral_inv with lateral_infl 16 on stages (0, 1, 1).
    sd = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sd["backbone.rgb_path.layer2_lateral.conv.weight"] == (128, 128, 7, 1, 1)
    assert sd["backbone.rgb_path.layer3_lateral.conv.weight"] == (256, 256, 7, 1, 1)
    assert sd["backbone.pose_path.layer1_lateral.conv.weight"] == (512, 32, 7, 1, 1)    # ConvTranspose3d
    assert sd["backbone.pose_path.layer2_lateral.conv.weight"] == (1024, 64, 7, 1, 1)
    assert sd["backbone.pose_path.layer2_lateral.bn.running_var"] == (64,)
    assert "backbone.rgb_path.conv1_lateral.conv.weight" not in sd
    assert "backbone.rgb_path.layer2_lateral.conv.bias" not in sd
    assert sd["cls_head.fc_rgb.weight"] == (60, 2048) and sd["cls_head.fc_pose.weight"] == (60, 512)


def test_pathways_are_slowonly_and_posec3d_plus_lateral_input_channels(model):
    sd = model.state_dict()
    widened = {"layer3.0.conv1.conv.weight": 128, "layer3.0.downsample.conv.weight": 128,
               "layer4.0.conv1.conv.weight": 256, "layer4.0.downsample.conv.weight": 256}
    for k, v in slowonly_r50().state_dict().items():
        ours = sd[f"backbone.rgb_path.{k}"].shape
        want = list(v.shape)
        if k in widened:
            want[1] += widened[k]
        assert list(ours) == want, k
    widened = {"layer2.0.conv1.conv.weight": 32, "layer2.0.downsample.conv.weight": 32,
               "layer3.0.conv1.conv.weight": 64, "layer3.0.downsample.conv.weight": 64}
    for k, v in posec3d_slowonly_r50_model().backbone.state_dict().items():
        want = list(v.shape)
        if k in widened:
            want[1] += widened[k]
        assert list(sd[f"backbone.pose_path.{k}"].shape) == want, k
    lateral_keys = {k for k in sd if "lateral" in k}
    assert len(sd) == len(slowonly_r50().state_dict()) + len(posec3d_slowonly_r50_model().state_dict()) \
        - 2 + 4 + len(lateral_keys)   # -2: PoseC3D's fc_cls; +4: fc_rgb and fc_pose


def test_each_stream_sees_the_other_through_the_laterals(model):
    imgs, heat = small_inputs()
    with torch.no_grad():
        rgb, pose = model.forward_features(imgs, heat)
        rgb2, _ = model.forward_features(imgs, heat + 0.5)
        _, pose2 = model.forward_features(imgs + 1.0, heat)
    assert not torch.allclose(rgb, rgb2) and not torch.allclose(pose, pose2)


def test_drop_path_one_cuts_both_laterals_in_training():
    torch.manual_seed(0)
    net = RGBPoseConv3D(rgb_drop_path=1.0, pose_drop_path=1.0)
    net.train()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm3d):
            m.eval()                      # keep batch statistics out of the comparison
    imgs, heat = small_inputs()
    with torch.no_grad():
        rgb, pose = net(imgs, heat)
        rgb2, pose2 = net(imgs + 1.0, heat + 0.5)
        assert not torch.allclose(rgb, rgb2)
        assert torch.allclose(rgb, net(imgs, heat + 0.5)[0]) and torch.allclose(pose, net(imgs + 1.0, heat)[1])


def test_rgb_detach_stops_rgb_loss_gradients_reaching_the_pose_pathway():
    torch.manual_seed(0)
    net = RGBPoseConv3D(rgb_detach=True)
    imgs, heat = small_inputs()
    rgb, _ = net(imgs, heat)
    rgb.mean().backward()
    assert net.pose_path.conv1.conv.weight.grad is None
    assert net.rgb_path.layer2_lateral.conv.weight.grad.abs().sum() > 0


def test_trains_both_heads_forward_and_backward():
    torch.manual_seed(0)
    net = rgbposeconv3d(num_classes=5, dropout=0.0).train()
    imgs, heat = small_inputs()
    out = net(imgs.repeat(2, 1, 1, 1, 1), heat.repeat(2, 1, 1, 1, 1))
    y = torch.tensor([1, 4])
    loss = nn.functional.cross_entropy(out["rgb"], y) + nn.functional.cross_entropy(out["pose"], y)
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())


def test_predict_fuses_stream_probabilities_one_to_one(model):
    imgs, heat = small_inputs()
    scores = model.predict(imgs[:, None].repeat(1, 2, 1, 1, 1, 1), heat[:, None].repeat(1, 2, 1, 1, 1, 1))
    assert torch.allclose(scores["fused"], scores["rgb"] + scores["pose"])
    assert torch.allclose(scores["rgb"].sum(-1), torch.ones(1))


def test_loader_accepts_a_wrapped_checkpoint_and_names_missing_keys(model):
    sd = {"module." + k: v for k, v in model.state_dict().items()}
    sd["module.data_preprocessor.preprocessors.imgs.mean"] = torch.zeros(3)
    load_pyskl_rgbpose(rgbposeconv3d(num_classes=60), {"state_dict": sd})
    del sd["module.backbone.pose_path.layer1_lateral.bn.weight"]
    with pytest.raises(ValueError, match=r"missing keys \['backbone\.pose_path\.layer1_lateral\.bn\.weight'\]"):
        load_pyskl_rgbpose(rgbposeconv3d(num_classes=60), {"state_dict": sd})


def test_key_layout_and_outputs_match_mmaction2s_port_of_pyskl():
    """tests/data/rgbposeconv3d_mmaction2.json: MMAction2 1.2.0's RGBPoseConv3D (PYSKL's code) run on
    crc32-recipe weights; we load its exact key layout strictly and reproduce its features and logits."""
    import json
    from pathlib import Path

    from humact.io.checkpoints import reference_weights

    ref = json.loads((Path(__file__).parent / "data" / "rgbposeconv3d_mmaction2.json").read_text())
    net = rgbposeconv3d(num_classes=60).eval()
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == \
        {k: tuple(s) for k, s in ref["state_dict_keys"]}
    load_pyskl_rgbpose(net, reference_weights(ref["state_dict_keys"]))
    g = torch.Generator().manual_seed(ref["input_recipe"]["generator_seed"])
    imgs, heat = torch.randn(1, 3, 8, 64, 64, generator=g), torch.rand(1, 17, 32, 16, 16, generator=g)
    with torch.no_grad():
        feats = net.forward_features(imgs, heat)
        out = net.forward_head(feats)
    assert [list(f.shape) for f in feats] == ref["feat_shapes"]
    for f, s in zip(feats, ref["feat_sums"]):
        assert f.double().sum().item() == pytest.approx(s, rel=1e-5)
    for head in ("rgb", "pose"):
        want = torch.tensor(ref[f"logits_{head}"])
        assert (out[head][0] - want).abs().max() <= 1e-4 * want.abs().max()
