"""Channel-Separated Networks (Tran et al., ICCV 2019), MMAction2's `ResNet3dCSN` layout.

A 3D ResNet whose 3x3x3 convolutions are depthwise (groups = channels):
- ir-CSN ("interaction-reduced"): the bottleneck's 3x3x3 conv is simply depthwise;
- ip-CSN ("interaction-preserved"): a 1x1x1 conv + BN (no activation) precedes the
  depthwise 3x3x3 conv, keeping channel interactions.

Other choices as in MMAction2 / VMZ: conv1 (3, 7, 7), pool1 stride 1 in time,
temporal stride 2 in res3..res5, no pool2, BatchNorm eps 1e-3 (the Caffe2 models'
value), all blocks inflated '3x3x3'. Input (N, 3, 32, 224, 224) -> (N, 2048, 4, 7, 7).

The seeds fine-tuned ip/ir-CSN-152 with frozen BN (`norm_eval=True, bn_frozen=True`),
which MMAction2 also uses for its IG65M-pretrained models.

Keys: `conv2.0.conv/bn` (ir) or `conv2.0.conv/bn` + `conv2.1.conv/bn` (ip) in each block.
"""

from __future__ import annotations

from torch import nn

from humact.video_models.resnet3d import Bottleneck3d, ConvBNAct, ResNet3d

__all__ = ["CSNBottleneck3d", "ResNet3dCSN", "ircsn", "ipcsn"]

#: Caffe2's BatchNorm epsilon, which the VMZ-converted CSN checkpoints were trained with.
CSN_BN_EPS = 1e-3


class CSNBottleneck3d(Bottleneck3d):
    """`Bottleneck3d` whose conv2 is depthwise ('ir'), or 1x1x1 + depthwise ('ip')."""

    def __init__(self, inplanes: int, planes: int, *, bottleneck_mode: str = "ir", **kw) -> None:
        super().__init__(inplanes, planes, **kw)
        if bottleneck_mode not in ("ir", "ip"):
            raise ValueError(f"CSNBottleneck3d bottleneck_mode: expected 'ir' or 'ip', got {bottleneck_mode!r}")
        conv = self.conv2.conv
        depthwise = ConvBNAct(planes, planes, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                              dilation=conv.dilation, groups=planes)
        layers = [depthwise]
        if bottleneck_mode == "ip":
            layers.insert(0, ConvBNAct(planes, planes, 1, act=False))
        self.conv2 = nn.Sequential(*layers)


class ResNet3dCSN(ResNet3d):
    """ir-/ip-CSN backbone, depth 50, 101 or 152. (N, 3, T, H, W) -> tuple of (N, 2048, T/8, H/32, W/32)."""

    def __init__(self, *, depth: int = 152, bottleneck_mode: str = "ir", temporal_strides=(1, 2, 2, 2),
                 conv1_kernel=(3, 7, 7), with_pool2: bool = False, **kw) -> None:
        super().__init__(depth=depth, temporal_strides=temporal_strides, conv1_kernel=conv1_kernel,
                         conv1_stride_t=1, pool1_stride_t=1, with_pool2=with_pool2, inflate_style="3x3x3",
                         block=CSNBottleneck3d, block_kw={"bottleneck_mode": bottleneck_mode}, **kw)
        self.bottleneck_mode = bottleneck_mode
        for m in self.modules():
            if isinstance(m, nn.BatchNorm3d):
                m.eps = CSN_BN_EPS


def ircsn(*, depth: int = 152, **kw) -> ResNet3dCSN:
    """ir-CSN-{50,101,152}: depthwise 3x3x3 bottlenecks."""
    return ResNet3dCSN(depth=depth, bottleneck_mode="ir", **kw)


def ipcsn(*, depth: int = 152, **kw) -> ResNet3dCSN:
    """ip-CSN-{50,101,152}: 1x1x1 then depthwise 3x3x3 bottlenecks."""
    return ResNet3dCSN(depth=depth, bottleneck_mode="ip", **kw)
