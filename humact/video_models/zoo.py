"""Named RGB recognizers: which builder, which clip sampling, which test views.

`humact classify --model NAME` looks a name up here. The sampling and views are
MMAction2's test settings for the corresponding Kinetics-400 checkpoints; the class
count is read from the checkpoint itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from humact.video_models.clips import ClipSpec
from humact.video_models.recognizer import (csn_recognizer, i3d_r50_recognizer, slowfast_recognizer,
                                            slowonly_r50_recognizer, slowonly_r101_recognizer)

__all__ = ["ZooEntry", "MODELS", "get"]


@dataclass(frozen=True)
class ZooEntry:
    """A named model: `build(num_classes=...)` and its test-time `ClipSpec`."""

    build: Callable[..., nn.Module]
    spec: ClipSpec
    description: str


MODELS: dict[str, ZooEntry] = {
    "slowonly_r50_4x16": ZooEntry(lambda **kw: slowonly_r50_recognizer(**kw), ClipSpec(4, 16, 10),
                                  "SlowOnly-R50, 4 frames every 16, 10 clips x 3 crops"),
    "slowonly_r50_8x8": ZooEntry(lambda **kw: slowonly_r50_recognizer(**kw), ClipSpec(8, 8, 10),
                                 "SlowOnly-R50, 8 frames every 8, 10 clips x 3 crops"),
    "slowonly_r101_8x8": ZooEntry(lambda **kw: slowonly_r101_recognizer(**kw), ClipSpec(8, 8, 10),
                                  "SlowOnly-R101, 8 frames every 8, 10 clips x 3 crops"),
    "slowfast_r50_4x16": ZooEntry(lambda **kw: slowfast_recognizer(sampling="4x16", **kw), ClipSpec(32, 2, 10),
                                  "SlowFast-R50 4x16 (32 frames every 2, alpha 8), 10 clips x 3 crops"),
    "slowfast_r50_8x8": ZooEntry(lambda **kw: slowfast_recognizer(sampling="8x8", **kw), ClipSpec(32, 2, 10),
                                 "SlowFast-R50 8x8 (32 frames every 2, alpha 4), 10 clips x 3 crops"),
    "slowfast_r101_8x8": ZooEntry(lambda **kw: slowfast_recognizer(sampling="8x8", depth=101, **kw),
                                  ClipSpec(32, 2, 10), "SlowFast-R101 8x8, 10 clips x 3 crops"),
    "slowfast_r101_r50_4x16": ZooEntry(lambda **kw: slowfast_recognizer(sampling="4x16", depth=101, fast_depth=50,
                                                                      **kw),
                                       ClipSpec(32, 2, 10), "SlowFast R101 slow / R50 fast 4x16, 10 clips x 3 crops"),
    "i3d_r50": ZooEntry(lambda **kw: i3d_r50_recognizer(**kw), ClipSpec(32, 2, 10),
                        "I3D-R50, 32 frames every 2, 10 clips x 3 crops"),
    "i3d_r50_nl": ZooEntry(lambda **kw: i3d_r50_recognizer(non_local=True, **kw), ClipSpec(32, 2, 10),
                           "I3D-R50 with embedded-gaussian non-local blocks, 10 clips x 3 crops"),
    "i3d_r50_nl_dot": ZooEntry(lambda **kw: i3d_r50_recognizer(non_local=True, non_local_mode="dot_product", **kw),
                               ClipSpec(32, 2, 10), "I3D-R50 with dot-product non-local blocks"),
    "ircsn_r152": ZooEntry(lambda **kw: csn_recognizer(depth=152, bottleneck_mode="ir", **kw),
                           ClipSpec(32, 2, 10, crop="center", crop_size=224),
                           "ir-CSN-152, 32 frames every 2, 10 clips x centre crop 224"),
    "ipcsn_r152": ZooEntry(lambda **kw: csn_recognizer(depth=152, bottleneck_mode="ip", **kw),
                           ClipSpec(32, 2, 10, crop="center", crop_size=224),
                           "ip-CSN-152, 32 frames every 2, 10 clips x centre crop 224"),
    "ircsn_r50": ZooEntry(lambda **kw: csn_recognizer(depth=50, bottleneck_mode="ir", **kw),
                          ClipSpec(32, 2, 10, crop="center", crop_size=224),
                          "ir-CSN-50, 32 frames every 2, 10 clips x centre crop 224"),
    "ipcsn_r50": ZooEntry(lambda **kw: csn_recognizer(depth=50, bottleneck_mode="ip", **kw),
                          ClipSpec(32, 2, 10, crop="center", crop_size=224),
                          "ip-CSN-50, 32 frames every 2, 10 clips x centre crop 224"),
}


def get(name: str) -> ZooEntry:
    """The entry for `name`; ValueError listing the known names otherwise."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")
    return MODELS[name]
