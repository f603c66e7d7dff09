"""Training configuration: one dataclass, from a JSON/TOML file and/or command-line flags.

A config file holds any subset of `TrainConfig`'s fields (flat keys); flags given on the
command line override the file; everything else keeps its default. The full resolved config
is saved next to every checkpoint, so a model can always be rebuilt and re-tested.

Example (TOML):

    dataset = "nw-ucla"
    data = "../shared/data/skeleton/nw_ucla"
    model = "stgcnpp"
    stream = "j"
    epochs = 40
    out = "runs/ucla_j"
"""

from __future__ import annotations

import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

__all__ = ["TrainConfig", "load_config", "config_from", "default_config", "MODELS", "MODEL_DEFAULTS"]

#: The models `humact train` builds: the GCNs on skeleton sequences, PoseConv3D on heatmap volumes.
MODELS: tuple[str, ...] = ("stgcnpp", "stgcn", "posec3d")

#: Defaults that differ by model, applied under whatever the file and the flags set. PoseConv3D's
#: are PYSKL's posec3d recipe (configs/posec3d/slowonly_r50_ntu60_xsub/joint.py): 48 frames,
#: flip 0.5, dropout 0.5, SGD without Nesterov, weight decay 3e-4, gradient clipping at 40,
#: width 32, and lr 0.4 for batch 256 scaled linearly to the default batch of 16.
MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "posec3d": dict(clip_len=48, flip=0.5, dropout=0.5, nesterov=False, lr=0.4 * 16 / 256,
                    weight_decay=3e-4, clip_grad=40.0, base_channels=32),
}


@dataclass
class TrainConfig:
    """Everything a skeleton training run depends on.

    Data:
        dataset: "nw-ucla", "jhmdb", "pyskl" (annotation pickle) or "extract" (folder of
            `humact extract` outputs).
        data: path of the data (folder or pickle).
        train_split, test_split: split names ("train"/"test" for nw-ucla and jhmdb; a key of
            the pickle's `split` for pyskl; ignored for extract).
        fold: JHMDB split number (1, 2, 3).
        classes: class names when the data has only integer labels (pyskl).
        val_fraction: fraction of each training class held out for validation (0 = none).
    Input recipe (see `humact.skeleton.datasets.Recipe`):
        clip_len, stream, max_persons, rotate, scale, flip, crop, normalize, view_rotate, minmax;
        for PoseConv3D (`HeatmapClips`, PYSKL's posec3d recipe) clip_len, max_persons, flip and
        heatmap ("keypoint" or "limb"), heatmap_size (training crops, PYSKL 56),
        heatmap_test_size (test views, PYSKL 64).
    Model:
        model: "stgcnpp", "stgcn" or "posec3d" (PoseConv3D SlowOnly-R50 on heatmaps of 2D keypoints);
        layout: joint layout (default: the dataset's);
        base_channels: width of the first stage (PYSKL: 64 for the GCNs, 32 for PoseConv3D);
        dropout: before the classifier.
        PYSKL's PoseConv3D recipe (configs/posec3d/slowonly_r50_*) differs from the GCNs':
        with model "posec3d" the defaults become `MODEL_DEFAULTS["posec3d"]` (clip_len 48,
        flip 0.5, dropout 0.5, SGD without Nesterov, lr 0.4 for batch 256 scaled to batch 16,
        weight_decay 3e-4, clip_grad 40, base_channels 32). PYSKL trains 24 epochs over the
        training set repeated 10 times.
    Optimisation (PYSKL / CTR-GCN vocabulary):
        epochs, batch_size, lr, momentum, nesterov, weight_decay,
        schedule: "cosine" (to min_lr) or "multistep" (x gamma at each epoch in milestones),
        warmup_iters: linear warm-up from lr * warmup_ratio over this many iterations,
        clip_grad: max gradient L2 norm (0 = off), label_smoothing.
    Run:
        seed, num_threads (torch intra-op threads), num_workers (data loader processes),
        precision (fp32, bf16 mixed precision, or fp16 on CUDA),
        test_clips (clips averaged at test time), out (output folder), save_every (epochs).
    """

    dataset: str = "nw-ucla"
    data: str = ""
    train_split: str = "train"
    test_split: str = "test"
    fold: int = 1
    classes: list[str] = field(default_factory=list)
    val_fraction: float = 0.0

    clip_len: int = 52
    stream: str = "j"
    max_persons: int = 1
    rotate: float = 0.0
    scale: float = 0.0
    flip: float = 0.0
    crop: float = 1.0
    normalize: str = "none"
    view_rotate: float = 0.0
    minmax: bool = False
    heatmap: str = "keypoint"
    heatmap_size: int = 56
    heatmap_test_size: int = 64

    model: str = "stgcnpp"
    layout: str = ""
    base_channels: int = 64
    dropout: float = 0.0

    epochs: int = 16
    batch_size: int = 16
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    milestones: list[int] = field(default_factory=list)
    gamma: float = 0.1
    min_lr: float = 0.0
    warmup_iters: int = 0
    warmup_ratio: float = 0.1
    clip_grad: float = 0.0
    label_smoothing: float = 0.0

    seed: int = 0
    num_threads: int = 2
    num_workers: int = 0
    precision: str = "fp32"
    test_clips: int = 10
    out: str = "runs/train"
    save_every: int = 1

    def __post_init__(self) -> None:
        self.validate()

    def validate(self, source: str = "config") -> None:
        """Raise ValueError naming `source` and the field for an impossible value."""
        checks = [
            ("model", self.model in MODELS, "one of " + ", ".join(MODELS)),
            ("heatmap", self.heatmap in ("keypoint", "limb"), "'keypoint' or 'limb'"),
            ("heatmap_size", self.heatmap_size >= 8, "at least 8"),
            ("heatmap_test_size", self.heatmap_test_size >= 8, "at least 8"),
            ("schedule", self.schedule in ("cosine", "multistep"), "'cosine' or 'multistep'"),
            ("stream", self.stream in ("j", "b", "jm", "bm"), "one of j, b, jm, bm"),
            ("epochs", self.epochs >= 1, "at least 1"),
            ("batch_size", self.batch_size >= 1, "at least 1"),
            ("lr", self.lr > 0, "positive"),
            ("clip_len", self.clip_len >= 1, "at least 1"),
            ("test_clips", self.test_clips >= 1, "at least 1"),
            ("val_fraction", 0 <= self.val_fraction < 1, "in [0, 1)"),
            ("warmup_iters", self.warmup_iters >= 0, "non-negative"),
            ("crop", 0 < self.crop <= 1, "in (0, 1]"),
        ]
        for name, ok, want in checks:
            if not ok:
                raise ValueError(f"{source}: {name}: expected {want}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def save(self, path: str | os.PathLike) -> None:
        from humact.io.atomic import atomic_write

        with atomic_write(path) as f:
            json.dump(self.to_dict(), f, indent=2)


def _coerce(source: str, name: str, value: Any, default: Any) -> Any:
    """Check a file's value against the field's default type (ints are fine for floats)."""
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif isinstance(default, str):
        ok = isinstance(value, str)
    else:  # lists
        ok = isinstance(value, list)
    if not ok:
        raise ValueError(f"{source}: {name}: expected {type(default).__name__}, got {value!r}")
    return value


def default_config(model: str = "stgcnpp") -> TrainConfig:
    """The defaults for `model`: `TrainConfig`'s, with that model's `MODEL_DEFAULTS` over them."""
    cfg = TrainConfig()
    cfg.__dict__.update(MODEL_DEFAULTS.get(model, {}), model=model)
    return cfg


def config_from(values: dict[str, Any], source: str = "config", base: TrainConfig | None = None) -> TrainConfig:
    """A `TrainConfig` from `base` with `values` applied.

    `base` defaults to `default_config` of the model `values` names (else ST-GCN++).
    Raises ValueError naming `source` and the key for unknown keys and wrong types.
    """
    if base is None:
        model = values.get("model", TrainConfig.model)
        base = default_config(model) if model in MODELS else TrainConfig()
    known = {f.name: f for f in fields(TrainConfig)}
    kw = base.to_dict()
    for name, value in values.items():
        if name not in known:
            raise ValueError(f"{source}: unknown field {name!r}; known: {', '.join(sorted(known))}")
        kw[name] = _coerce(source, name, value, kw[name])
    cfg = TrainConfig.__new__(TrainConfig)
    cfg.__dict__.update(kw)
    cfg.validate(source)
    return cfg


def load_config(path: str | os.PathLike, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a .json or .toml config file, then apply `overrides` (e.g. command-line flags)."""
    path = Path(path)
    if path.suffix == ".toml":
        with open(path, "rb") as f:
            try:
                values = tomllib.load(f)
            except tomllib.TOMLDecodeError as e:
                raise ValueError(f"{path}: not valid TOML ({e})") from e
    elif path.suffix == ".json":
        with open(path) as f:
            try:
                values = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: not valid JSON ({e})") from e
    else:
        raise ValueError(f"{path}: config file must end in .json or .toml")
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a table of fields at the top level")
    model = (overrides or {}).get("model") or values.get("model") or TrainConfig.model
    cfg = config_from(values, str(path), default_config(model) if model in MODELS else None)
    if overrides:
        cfg = config_from(overrides, "command line", cfg)
    return cfg
