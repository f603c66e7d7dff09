"""One training run from a config: data, inputs, model, trainer, final checkpoint and the test.

    TrainConfig --load_splits--> train / validation / test SkeletonDatasets
                --input_clips--> SkeletonClips or HeatmapClips (by the model's humact.zoo input kind)
                --build_model--> the network   --Trainer.fit--> model.safetensors + model.json
                --test_checkpoint (humact.train.evaluate)--> metrics.json, confusion.png, scores.npy

`humact train` is this module's `train_model` behind the flags. AVA detectors (zoo input kind "ava")
take `humact.train.ava.train_ava` instead: AVA-format data, boxes and multi-label targets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

from humact.config import TrainConfig
from humact.errors import ConfigError, InputError
from humact.skeleton.datasets import SkeletonDataset, load_dataset
from humact.train.trainer import TrainResult

__all__ = ["load_splits", "describe", "make_validator", "train_model", "TrainResult"]


def load_splits(cfg: TrainConfig) -> tuple[SkeletonDataset, SkeletonDataset | None, SkeletonDataset | None]:
    """(train, validation or None, test or None) datasets of a config; InputError naming the field."""
    d = cfg.data
    if not d.path:
        raise ConfigError("data.path: no data path given (--data or 'path' in the config's [data] table)")
    if not Path(d.path).exists():
        raise InputError(f"{d.path}: data path not found (field data.path)")
    from humact.skeleton.datasets import detect_dataset
    from humact.skeleton.graph import resolve_layout

    kind = detect_dataset(d.path) if d.dataset == "auto" else d.dataset
    classes = tuple(d.classes) or None
    layout = resolve_layout(d.layout) if d.layout else None
    train = load_dataset(kind, d.path, d.train_split, fold=d.fold, classes=classes, layout=layout)
    test = None
    if kind != "extract" and d.test_split:
        test = load_dataset(kind, d.path, d.test_split, fold=d.fold, classes=classes or train.classes,
                            layout=layout or train.layout)
    val = None
    if d.val_fraction > 0:
        train, val = train.split_validation(d.val_fraction, seed=cfg.run.seed)
    if not len(train):
        raise InputError(f"{d.path}: no training samples in split {d.train_split!r} (field data.train_split)")
    return train, val, test


def describe(data: SkeletonDataset) -> str:
    """'433 samples, 14 classes, layout jhmdb15, 2D joints without scores, 1 person'."""
    from humact.train.defaults import persons_present

    most = int(persons_present(data).max()) if len(data) else 0
    kind = f"{data.dims}D joints " + ("with scores" if data.has_scores else "without scores")
    return (f"{len(data)} samples, {len(data.classes)} classes, layout {data.layout_name}, {kind}, "
            f"up to {most} {'person' if most == 1 else 'persons'}")


def make_validator(cfg: TrainConfig, val: SkeletonDataset | None) -> Callable | None:
    """None without a validation slice, else model -> {"top1", "loss"} on one test clip per sample."""
    if val is None or not len(val):
        return None
    import numpy as np

    from humact.eval.recognition import topk_accuracy
    from humact.recognize.skeleton import input_clips, predict_dataset

    val_clips = input_clips(cfg.model.name, val, cfg.input, train=False, num_clips=1)
    labels = val.labels

    def validate(model):
        probs = predict_dataset(model, val_clips)
        loss = float(-np.log(np.maximum(probs[np.arange(len(labels)), labels], 1e-12)).mean())
        return {"top1": topk_accuracy(probs, labels, 1), "loss": loss, "n": int(len(labels))}

    return validate


def train_model(cfg: TrainConfig, *, resume: bool = True, test: bool = True, progress: bool = True,
                log: Callable[[str], None] | None = print) -> TrainResult:
    """Train the model `cfg` describes, save `model.safetensors` + `.json` in `cfg.run.out`, and test
    it on the test split when there is one (and `test`).

    Under torchrun (`humact.scale.ddp`) every process runs this same function: it joins the process
    group, trains its share of each batch, and rank 0 alone logs and writes; the test is shared out
    and gathered. Every model kind goes through this one path."""
    from humact.scale import ddp

    if cfg.run.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("run.device: 'cuda' asked for, but torch sees no CUDA device here")
    with ddp.session(cfg.run.device, cfg.run.dist_timeout) as world:
        if not world.main:
            log, progress = None, False
        return _train(cfg, world, resume=resume, test=test, progress=progress, log=log)


def _train(cfg: TrainConfig, world, *, resume: bool, test: bool, progress: bool,
           log: Callable[[str], None] | None) -> TrainResult:
    from humact.recognize.skeleton import build_model, in_channels_of, input_clips, input_shape
    from humact.train.trainer import Trainer

    from humact.train.defaults import from_data
    from humact import zoo

    if zoo.get(cfg.model.name).input == "ava":
        from humact.train.ava import train_ava

        return train_ava(cfg, world, resume=resume, test=test, progress=progress, log=log)
    torch.set_num_threads(cfg.run.num_threads)
    if cfg.data.dataset == "auto" and cfg.data.path and Path(cfg.data.path).exists():
        from humact.skeleton.datasets import detect_dataset

        cfg = cfg.replace({"dataset": detect_dataset(cfg.data.path)}, "data")
    train, val, test_set = load_splits(cfg)
    cfg, chosen, notes = from_data(cfg, train)
    if log:
        log(f"data: {describe(train)}" + ("; from the data: " + ", ".join(f"{k} {v}" for k, v in chosen.items())
                                          if chosen else ""))
        for note in notes:
            log(f"note: {note}")
    if len(train) < cfg.optim.batch_size:
        raise InputError(f"{cfg.data.path}: {len(train)} training samples, fewer than optim.batch_size "
                         f"{cfg.optim.batch_size}")
    clips = input_clips(cfg.model.name, train, cfg.input, train=True, seed=cfg.run.seed)
    in_channels = in_channels_of(clips)
    torch.manual_seed(cfg.run.seed)
    model = build_model(cfg, num_classes=len(train.classes), layout=train.layout, in_channels=in_channels)
    if cfg.run.device == "cuda":
        model = model.to(torch.device("cuda", world.local_rank))
    from humact.skeleton.graph import LAYOUTS, get_layout, layout_to_dict

    meta = {"config": cfg.to_dict(), "classes": list(train.classes), "layout": train.layout_name,
            "in_channels": in_channels, "train_source": train.source, "num_train": len(train),
            "pixel_coordinates": all(s.img_shape is not None for s in train.samples), "from_data": chosen}
    if train.layout_name not in LAYOUTS:  # a custom layout travels inside the checkpoint
        meta["layout_def"] = layout_to_dict(get_layout(train.layout))
    out = Path(cfg.run.out)
    trainer = Trainer(model, clips, cfg.optim, cfg.run, meta=meta, validate=make_validator(cfg, val),
                      progress=progress)
    if log:
        log(f"train: {len(train)} samples, {len(train.classes)} classes, layout {train.layout_name}, "
            f"{cfg.model.name} input {input_shape(clips)} -> {out}")
    history = trainer.fit_and_save(cfg, out, resume=resume, log=log)
    result = TrainResult(out, out / "model.safetensors", history, notes=notes)
    if test and test_set is not None:
        from humact.train.evaluate import test_checkpoint

        result.metrics = test_checkpoint(out / "model.safetensors", test_set, out, num_clips=cfg.input.test_clips)
    return result
