"""Inference twins: eval-only, faster copies of trained models with the same outputs.

One entry point, :func:`fuse` (like timm's ``reparameterize_model``): ``fast = fuse(model.eval())``
gives the twin of any model that has one, else the model itself. The twins live here, apart
from the models they copy: ``stgcn.py`` (ST-GCN / ST-GCN++), ``resnet3d.py`` (the ResNet3d
family: SlowOnly, I3D, PoseConv3D, SlowFast, and the recognizers and AVA detectors on them),
``common.py`` (BatchNorm folding and the table of twins, :func:`register_twin`).
"""

from __future__ import annotations

import torch
from torch import nn

from humact.deploy.common import Unfusable, bn_affine, fold_bn, register_twin, twin_builders
# The built-in twins, which register themselves with `register_twin` on import.
from humact.deploy import resnet3d, stgcn  # noqa: F401

__all__ = ["fuse", "register_twin", "twin_builders", "Unfusable", "bn_affine", "fold_bn"]


def fuse(model: nn.Module) -> nn.Module:
    """The eval-only inference twin of ``model`` when it has one, else ``model`` itself.

    Outputs equal the source's to float32 rounding (~1e-6 relative). Which models get what
    (the first row that matches):

    | model | ``fuse(model)`` |
    | --- | --- |
    | ``RecognizerGCN`` on an ``STGCN`` (ST-GCN, ST-GCN++) | ``FusedRecognizerGCN`` |
    | ``Recognizer3D`` on a ``ResNet3d`` with no non-local block (SlowOnly, I3D, PoseConv3D) | ``FusedRecognizer3D`` |
    | ``Recognizer3D`` on a ``ResNet3dSlowFast`` (SlowFast) | ``FusedRecognizer3D`` |
    | ``Recognizer3D`` on a CSN, a non-local I3D or any other backbone | the model itself, made channels-last in place |
    | ``AVADetector`` on a ``ResNet3d`` or ``ResNet3dSlowFast`` | a new ``AVADetector`` on the backbone's twin |
    | a twin (``FusedRecognizerGCN``, ``FusedRecognizer3D``) | itself |
    | anything else (``RGBPoseRecognizer``, a ``RecognizerGCN`` on another backbone) | the model itself, unchanged |

    ``FusedRecognizerGCN`` (``deploy/stgcn.py``): every BN folded, channel-major activations,
    sparse graph aggregation, ops recorded once per input shape and replayed (~0.5x
    MMAction2's time at batch 1). ``FusedRecognizer3D`` (``deploy/resnet3d.py``): a
    ``Recognizer3D`` on the backbone's twin (``FusedResNet3d`` / ``FusedSlowFast``: BN folded,
    channels-last, 1xkxk / kx1x1 / 1x1x1 kernels as 2D convolutions or matrix products) with a
    frozen copy of the head; the AVA twin likewise with a frozen copy of the RoI head.
    Channels-last (``to_channels_last``): oneDNN's convolutions run faster there, markedly
    CSN's depthwise ones.

    A twin holds copies of the weights (buffers; heads frozen), so later changes to the source
    do not reach it; it is not meant to be trained. A model with any module in training mode is
    refused with a ``ValueError`` (a programming error: call ``model.eval()`` first, so that
    BatchNorm uses its running statistics).

    The built-in twins rewrite exactly the classes named (a subclass may compute something
    else): a subclass of them gets the fallback of its base class, or a twin it registers.

    Extending: a model file registers its twin with ``register_twin(ModelClass, builder,
    backbone=BackboneClass)`` (``backbone`` optional), e.g. ``register_twin(RecognizerGCN,
    FusedAAGCN, backbone=AAGCN)`` for a new GCN backbone. The most specific entry is tried
    first (the model's class before its bases, then the backbone's class before its bases,
    then the entries without a backbone); a builder raises :class:`Unfusable` to pass a model
    it cannot rewrite on to the next entry. The built-in twins register themselves when this
    package is imported.
    """
    training = [name or type(model).__name__ for name, m in model.named_modules() if m.training]
    if training:
        raise ValueError(f"fuse: call model.eval() first ({type(model).__name__} has modules in training mode, "
                         f"e.g. {training[0]!r}; BatchNorm must use its running statistics)")
    with torch.no_grad():
        for builder in twin_builders(model):
            try:
                return builder(model)
            except Unfusable:
                continue
    return model
