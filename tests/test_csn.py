"""Channel-separated networks: ir-/ip-CSN bottlenecks at MMAction2's published sizes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from mmaction2_parity import check_reproduces_mmaction2
from humact.video_models.csn import CSN_BN_EPS, ipcsn, ircsn
from humact.video_models.recognizer import csn_recognizer

torch.set_num_threads(2)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_ir_csn_152_parameter_count_matches_mmaction2():
    # open-mmlab/mmaction2 configs/recognition/csn/metafile.yml (commit cb5ea0c5):
    #   ircsn_ig65m_pretrained_r152_32x2x1_58e_kinetics400_rgb  Parameters: 29703568
    assert n_params(csn_recognizer(depth=152, bottleneck_mode="ir")) == 29_703_568


@pytest.mark.parametrize("depth, mode, published_m", [(152, "ip", 33.02), (50, "ir", 13.13)])
def test_parameter_count_matches_mmaction2_readme_to_its_rounding(depth, mode, published_m):
    # open-mmlab/mmaction2 configs/recognition/csn/README.md (1.x): "ResNet152 (IP) ... 33.02M",
    # "ResNet50 (IR+BNFrozen) ... 13.13M"; the README rounds to 10k parameters.
    assert round(n_params(csn_recognizer(depth=depth, bottleneck_mode=mode)) / 1e6, 2) == published_m


def test_ir_block_is_one_depthwise_3x3x3_conv():
    block = ircsn(depth=50).layer2[0]
    (dw,) = block.conv2
    assert dw.conv.kernel_size == (3, 3, 3) and dw.conv.groups == dw.conv.in_channels == 128
    assert dw.conv.stride == (2, 2, 2)        # res3 strides 2 in time and space


def test_ip_block_adds_a_1x1x1_conv_with_bn_before_the_depthwise_conv():
    pw, dw = ipcsn(depth=50).layer1[0].conv2
    assert pw.conv.kernel_size == (1, 1, 1) and pw.conv.groups == 1 and pw.bn is not None and pw.act is None
    assert dw.conv.groups == 64


def test_uses_caffe2_batch_norm_epsilon():
    assert {m.eps for m in ircsn(depth=50).modules() if isinstance(m, nn.BatchNorm3d)} == {CSN_BN_EPS}


def test_divides_time_by_8_and_space_by_32():
    with torch.no_grad():
        (feat,) = ircsn(depth=50).eval()(torch.zeros(1, 3, 16, 64, 64))
    assert feat.shape == (1, 2048, 2, 2, 2)


def test_ip_csn_trains_forward_and_backward():
    torch.manual_seed(0)
    net = csn_recognizer(depth=50, bottleneck_mode="ip", num_classes=3, dropout=0.0).train()
    loss = nn.functional.cross_entropy(net(torch.randn(2, 3, 8, 32, 32)), torch.tensor([0, 2]))
    loss.backward()
    assert net.backbone.layer1[0].conv2[0].conv.weight.grad.abs().sum() > 0


def test_frozen_bn_fine_tuning_keeps_bn_fixed_and_trains_convs():
    torch.manual_seed(0)
    net = csn_recognizer(depth=50, num_classes=3, dropout=0.0, norm_eval=True, bn_frozen=True).train()
    bn = net.backbone.layer1[0].conv2[0].bn
    stats = bn.running_var.clone()
    net(torch.randn(2, 3, 8, 32, 32) * 3).sum().backward()
    assert torch.equal(bn.running_var, stats) and bn.weight.grad is None
    assert net.backbone.layer1[0].conv2[0].conv.weight.grad is not None


@pytest.mark.parametrize("name", ["ircsn_r50", "ipcsn_r50"])
def test_reproduces_mmaction2_logits(name):
    check_reproduces_mmaction2(name)
