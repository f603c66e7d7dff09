"""Training defaults read from the data: what `humact train --data D` does with no other flags.

`from_data(cfg, train)` fills every field the user (file, flags) and the model's recipe left unset
with a value derived from the training split, and returns what it chose, which `train_model` prints
at the start and saves in the config of the checkpoint (so a run is reproducible from its config):

- `max_persons`: the most persons present in one sample (a person is present when any of its joints is
  non-zero), capped at `MAX_PERSONS_DEFAULT`; samples with more are reported, never silently cut to one.
- `batch_size`: 16, or the number of training samples when there are fewer.
- `normalize`: 2D joints in frame pixels (samples with an `img_shape`: `humact extract` data, PYSKL
  pickles) get PYSKL's PreNormalize2D ("pre2d"); 2D joints in other units get "body" (centre and
  scale by the torso), so a model also reads tracks of another resolution.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from humact.config import TrainConfig
from humact.skeleton.datasets import SkeletonDataset

__all__ = ["from_data", "persons_present", "MAX_PERSONS_DEFAULT"]

#: The most persons a default keeps per sample (PYSKL's NTU configs keep 2; interactions need 2,
#: group scenes more, at a cost linear in M).
MAX_PERSONS_DEFAULT = 4


def persons_present(data: SkeletonDataset) -> np.ndarray:
    """(N,) number of persons with any non-zero joint in each sample."""
    return np.array([int(np.any(s.keypoint != 0, axis=(1, 2, 3)).sum()) for s in data.samples], np.int64)


def from_data(cfg: TrainConfig, train: SkeletonDataset) -> tuple[TrainConfig, dict[str, Any], list[str]]:
    """(config with the data's defaults for the fields not given, {field: value} chosen, notes to print)."""
    given = cfg.given
    chosen: dict[str, Any] = {}
    notes: list[str] = []
    if "max_persons" not in given:
        present = persons_present(train)
        most = int(present.max()) if len(present) else 1
        chosen["max_persons"] = max(1, min(most, MAX_PERSONS_DEFAULT))
        if most > MAX_PERSONS_DEFAULT:
            over = int((present > MAX_PERSONS_DEFAULT).sum())
            notes.append(f"{over} training samples have more than {MAX_PERSONS_DEFAULT} persons (up to {most}); "
                         f"the first {MAX_PERSONS_DEFAULT} are kept (set --max-persons to keep more)")
    elif train.samples:
        present = persons_present(train)
        cut = int((present > cfg.input.max_persons).sum())
        if cut:
            notes.append(f"{cut} training samples have more than --max-persons {cfg.input.max_persons} persons; "
                         f"the extra persons are dropped")
    if "batch_size" not in given and len(train) < cfg.optim.batch_size:
        chosen["batch_size"] = max(1, len(train))
    if "normalize" not in given and train.dims == 2:
        pixels = bool(train.samples) and all(s.img_shape is not None for s in train.samples)
        chosen["normalize"] = "pre2d" if pixels else "body"
    changed = {k: v for k, v in chosen.items() if _current(cfg, k) != v}
    return (cfg.replace(changed, "data defaults") if changed else cfg), changed, notes


def _current(cfg: TrainConfig, name: str) -> Any:
    from humact.config import leaf_fields

    section, f, _ = leaf_fields()[name]
    return getattr(getattr(cfg, section), f.name)
