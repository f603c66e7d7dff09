"""Training defaults read from the data: what `humact train --data D` does with no other flags.

`from_data(cfg, train)` fills every field that the user (file, flags) and the model's recipe left
unset with a value derived from the training split, and returns what it chose; `train_model` prints
it at the start and saves it in the checkpoint's config, so a run is reproducible from its config.
The recipe part is the GCN recipe validated on the two benchmark datasets of each kind (PYSKL's
ST-GCN++ training with the augmentations that cross-view / held-out validation chose:
docs/nw_ucla.md, configs/), keyed by what the data is:

| field | rule |
| --- | --- |
| `max_persons` | the most persons present in one sample (any non-zero joint), at most `MAX_PERSONS_DEFAULT`; samples with more are reported, never silently cut to one |
| `batch_size` | 16, or the number of training samples when fewer |
| `clip_len` | the 75th percentile of the sequence lengths, rounded up to a multiple of 4, within [16, 100] (PYSKL: 100 for NTU's long sequences) |
| `epochs` | about `TARGET_ITERATIONS` optimisation steps: `ceil(TARGET_ITERATIONS / steps per epoch)`, within [16, 150] |
| `warmup_iters` | 5 epochs' steps, at most 10 % of the run |
| `base_channels` | 32 below `SMALL_DATA` samples (width 64 did no better on NW-UCLA's validation), PYSKL's 64 above |
| `normalize` | 2D in frame pixels (`img_shape`: extract data, PYSKL pickles): "pre2d" (PYSKL's PreNormalize2D); 2D in other units: "body"; 3D: "ucla" (origin at the first frame's centre joint, shared by all persons) |
| augmentation | 2D: flip 0.5, rotation 0.15 rad, scale 0.1, temporal crop 0.8 (the JHMDB-14 recipe); 3D: view rotation +-60 degrees about x and y and per-axis min-max (CTR-GCN's NW-UCLA feeder, chosen over rotation 0.3 by cross-view validation) |
| `weight_decay` | 2D: 5e-4 (PYSKL); 3D: 1e-4 (the NW-UCLA recipe) |

Heatmap models (PoseConv3D) keep PYSKL's posec3d recipe (`humact.zoo`) and take only `max_persons`,
`batch_size` and `epochs` from the data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from humact.config import TrainConfig, leaf_fields
from humact.skeleton.datasets import SkeletonDataset

__all__ = ["from_data", "persons_present", "clip_len_for", "epochs_for", "joint_order_notes", "MAX_PERSONS_DEFAULT",
           "TARGET_ITERATIONS", "SMALL_DATA"]

#: The most persons a default keeps per sample (PYSKL's NTU configs keep 2; interactions need 2,
#: group scenes more, at a cost linear in M).
MAX_PERSONS_DEFAULT = 4
#: Optimisation steps a default run aims at (NW-UCLA's validated 60 epochs are ~3,800 steps).
TARGET_ITERATIONS = 3600
#: Below this many training samples the GCN default width is 32 instead of 64.
SMALL_DATA = 10_000

_RECIPE_2D = dict(flip=0.5, rotate=0.15, scale=0.1, crop=0.8, weight_decay=5e-4)
_RECIPE_3D = dict(view_rotate=1.047, minmax=True, weight_decay=1e-4)


def persons_present(data: SkeletonDataset) -> np.ndarray:
    """(N,) number of persons with any non-zero joint in each sample."""
    return np.array([int(np.any(s.keypoint != 0, axis=(1, 2, 3)).sum()) for s in data.samples], np.int64)


def clip_len_for(data: SkeletonDataset) -> int:
    """The 75th percentile of the lengths, rounded up to a multiple of 4, within [16, 100]."""
    lengths = np.array([s.num_frames for s in data.samples])
    if not len(lengths):
        return 52
    p75 = float(np.percentile(lengths, 75))
    return int(min(100, max(16, 4 * math.ceil(p75 / 4))))


def epochs_for(num_samples: int, batch_size: int) -> int:
    """About `TARGET_ITERATIONS` steps, within [16, 150] epochs."""
    steps = max(1, num_samples // max(batch_size, 1))
    return int(min(150, max(16, math.ceil(TARGET_ITERATIONS / steps))))


def joint_order_notes(data: SkeletonDataset, *, tolerance: float = 0.35) -> list[str]:
    """Warnings when 3D joints do not look like the layout's skeleton (a wrong joint order with the right
    joint count trains a wrong graph without any error).

    Two checks on the layout's bones (`bone_pairs`), over frames where both joints are present: a
    bone and its mirror image (left/right) should have about the same length (median ratio within
    `tolerance`), and a bone should keep its length over time (median relative spread under 0.5).
    """
    from humact.skeleton.graph import get_layout

    if data.dims != 3 or not data.samples:
        return []
    lay = get_layout(data.layout)
    pairs = [(a, b) for a, b in lay.bone_pairs if a != b]
    if not pairs:
        return []
    kp = np.concatenate([s.keypoint.reshape(-1, s.keypoint.shape[2], 3) for s in data.samples[:500]])
    present = np.any(kp != 0, axis=-1)
    med, spread = {}, {}
    for a, b in pairs:
        ok = present[:, a] & present[:, b]
        if ok.sum() < 10:
            continue
        length = np.linalg.norm(kp[ok, a] - kp[ok, b], axis=-1)
        m = float(np.median(length))
        med[(a, b)] = m
        spread[(a, b)] = float(np.median(np.abs(length - m)) / m) if m > 0 else 0.0
    notes = []
    mirror = lay.flip_index
    parent = dict(pairs)
    bad = []
    for (a, b), m in med.items():
        ma = mirror[a]
        if ma == a or ma not in parent or (ma, parent[ma]) not in med or a > ma:
            continue
        mm = med[(ma, parent[ma])]
        if min(m, mm) <= 0 or max(m, mm) / min(m, mm) > 1 + tolerance:
            bad.append(f"{a}-{b} {m:.3g} vs {ma}-{parent[ma]} {mm:.3g}")
    if bad and len(bad) >= max(1, len(med) // 6):
        notes.append(f"layout {lay.name!r}: mirrored bones differ in length ({'; '.join(bad[:3])}): the joint order "
                     f"may not be this layout's (docs/custom_dataset.md lists each layout's joint order)")
    loose = [k for k, v in spread.items() if v > 0.5]
    if loose and len(loose) >= max(1, len(med) // 4):
        notes.append(f"layout {lay.name!r}: {len(loose)} of {len(med)} bones change length by more than half over "
                     f"time (e.g. {loose[0][0]}-{loose[0][1]}): the joint order may not be this layout's")
    return notes


def _current(cfg: TrainConfig, name: str) -> Any:
    section, f, _ = leaf_fields()[name]
    return getattr(getattr(cfg, section), f.name)


def from_data(cfg: TrainConfig, train: SkeletonDataset) -> tuple[TrainConfig, dict[str, Any], list[str]]:
    """(config with the data's defaults for the fields not given, {field: value} that changed, notes)."""
    from humact import zoo

    given = cfg.given
    want: dict[str, Any] = {}
    notes: list[str] = []
    skeleton = zoo.get(cfg.model.name).input == "skeleton"
    dims = train.dims

    def default(name: str, value: Any) -> None:
        if name not in given:
            want[name] = value

    present = persons_present(train)
    most = int(present.max()) if len(present) else 1
    default("max_persons", max(1, min(most, MAX_PERSONS_DEFAULT)))
    keep = want.get("max_persons", cfg.input.max_persons)
    if most > keep:
        notes.append(f"{int((present > keep).sum())} training samples have more than {keep} persons (up to {most}); "
                     f"the first {keep} are kept (set --max-persons to keep more)")
    default("batch_size", min(16, max(1, len(train))))
    batch = want.get("batch_size", cfg.optim.batch_size)
    default("epochs", epochs_for(len(train), batch))
    epochs = want.get("epochs", cfg.optim.epochs)
    steps = max(1, len(train) // batch)
    default("warmup_iters", min(5 * steps, (epochs * steps) // 10))
    if skeleton:
        default("clip_len", clip_len_for(train))
        if len(train) < SMALL_DATA:
            default("base_channels", 32)
        if dims == 2:
            pixels = bool(train.samples) and all(s.img_shape is not None for s in train.samples)
            default("normalize", "pre2d" if pixels else "body")
            for k, v in _RECIPE_2D.items():
                default(k, v)
        else:
            default("normalize", "ucla")
            for k, v in _RECIPE_3D.items():
                default(k, v)
    notes += joint_order_notes(train)
    if dims == 2 and cfg.input.view_rotate > 0 and "view_rotate" in given:
        notes.append("view_rotate rotates 3D joints; this data is 2D, so it does nothing here")
    changed = {k: v for k, v in want.items() if _current(cfg, k) != v}
    return (cfg.replace(changed, "data defaults") if changed else cfg), changed, notes
