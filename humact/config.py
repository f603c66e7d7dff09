"""Training configuration: nested dataclasses, one loader for every read.

    TrainConfig
      data:  DataConfig   what to train on: dataset kind, path, splits, classes, validation, layout
      input: InputConfig  how a sample becomes network input (the pipeline's settings)
      model: ModelConfig  which network (a name in `humact.zoo`), its width and dropout
      optim: OptimConfig  SGD, learning-rate schedule, clipping, label smoothing, precise BN
      run:   RunConfig    seed, threads, precision, device, distributed settings, output folder

Every field is declared once, here, with its help text and its allowed values (a `Literal` type or
bounds); the flags of `humact train` (`--lr`, `--clip-len`, `--no-nesterov`, ...), the validation of
files and flags, and the help text all come from these declarations.

Files are TOML or JSON, nested (`[optim]` then `lr = 0.1`) or flat (`lr = 0.1`, the format of every
config and `model.json` written before the sections existed, the shipped model's included: they still
load). Precedence: the model's defaults (`humact.zoo`: PoseConv3D gets PYSKL's posec3d recipe), then
the file, then the flags. `load_config`, `config_from_dict` and `read_saved_config` are the only ways a
config is read, so a saved config always comes back as a validated `TrainConfig`.

Example (TOML):

    [data]
    dataset = "nw-ucla"
    path = "../shared/data/skeleton/nw_ucla"
    [model]
    name = "stgcnpp"
    [optim]
    epochs = 40
    [run]
    out = "runs/ucla_j"

Why no library: tyro and jsonargparse would generate the flags, but they own the whole command line
(humact's subcommands are argparse) and print multi-line boxed errors, where humact promises one line
naming the file and the field; pydantic would validate, at the cost of a compiled dependency for ~50
scalar fields. The declarations below are plain dataclasses and `typing`, read by ~100 lines.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from humact.errors import ConfigError, one_line
from humact.fields import opt
from humact.skeleton.recipe import InputConfig

__all__ = ["TrainConfig", "DataConfig", "InputConfig", "ModelConfig", "OptimConfig", "RunConfig", "SECTIONS",
           "load_config", "config_from_dict", "read_saved_config", "default_config", "leaf_fields",
           "add_config_flags", "overrides_from_args"]


@dataclass
class DataConfig:
    """What to train on."""

    dataset: Literal["auto", "nw-ucla", "jhmdb", "pyskl", "extract", "ava"] = opt(
        "auto", "data kind: auto (told from the path; AVA detectors: ava), an NW-UCLA folder, JHMDB GT pickles, a "
                "PYSKL annotation pickle, a folder of `humact extract` outputs, or AVA-format data (ground-truth "
                "CSV + videos or frame folders)")
    path: str = opt("", "data path (folder or pickle; ava: the training ground-truth CSV)", flag="data")
    train_split: str = opt("train", "training split (nw-ucla/jhmdb: train/test or NW-UCLA views such as v01; "
                                    "pyskl: a key of the pickle's 'split'; ignored for extract)")
    test_split: str = opt("test", "test split, evaluated once at the end ('' = none)")
    fold: int = opt(1, "JHMDB split number", lo=1, hi=3)
    classes: list[str] = opt(factory=list, help="class names for integer labels (pyskl)")
    val_fraction: float = opt(0.1, "fraction of each training class held out for validation (stratified, "
                                   "seeded); the model kept is the best epoch on it (0 = none: the last epoch)",
                              lo=0.0, hi=1.0, hi_open=True)
    layout: str = opt("", "joint layout (default: the dataset's, or the built-in one of its joint count): coco, "
                          "nturgb+d, openpose, kinect20, jhmdb15, or a .toml / .json layout file")
    # AVA-format data (dataset "ava"; humact.detect.dataset). MMAction2's AVA recipe where it has one.
    ava_videos: str = opt("", "ava: folder of the videos (VIDEO_ID.mp4, .mkv, ...) or of AVA frame folders "
                              "(VIDEO_ID/img_00001.jpg, ... at ava_fps)")
    ava_proposals: str = opt("", "ava: training person proposals pickle {'video,timestamp': (n, 5)}: boxes with "
                                 "IoU >= ava_pos_iou to a ground-truth box train with its labels ('' = ground "
                                 "truth only)")
    ava_label_map: str = opt("", "ava: label map (pbtxt): the evaluated classes and their names ('' = the ids "
                                 "of the ground truth)")
    ava_exclusions: str = opt("", "ava: excluded keyframes CSV of the training ground truth")
    ava_val: str = opt("", "ava: ground-truth CSV evaluated after training with humact eval ava's frame-mAP "
                           "('' = none)")
    ava_val_proposals: str = opt("", "ava: person boxes of the evaluation (proposals pickle; '' = the "
                                     "ground-truth boxes of ava_val)")
    ava_val_exclusions: str = opt("", "ava: excluded keyframes CSV of ava_val")
    ava_timestamp_start: int = opt(900, "ava: the second of the video's first frame in the CSV timestamps "
                                        "(AVA's cut videos: 900; whole videos: 0)", lo=0, hi=10_000_000)
    ava_fps: float = opt(30.0, "ava: frame rate of frame folders (AVA's are extracted at 30)", lo=0.0, hi=1000.0,
                         lo_open=True)
    ava_det_threshold: float = opt(0.9, "ava: proposals scoring below are dropped (MMAction2's "
                                        "person_det_score_thr; a keyframe keeps its best one)", lo=0.0, hi=1.0)
    ava_scale: list[int] = opt(factory=lambda: [256, 320], help="ava: training short side, random in "
                                                                "[min, max] (MMAction2's RandomRescale)")
    ava_crop: int = opt(256, "ava: training random square crop side (0 = none)", lo=0, hi=4096)
    ava_test_scale: int = opt(256, "ava: evaluation short side", lo=16, hi=4096)
    ava_pos_iou: float = opt(0.9, "ava: IoU with a ground-truth box for a proposal to take its labels "
                                  "(MMAction2's MaxIoUAssignerAVA)", lo=0.0, hi=1.0, lo_open=True)
    ava_max_rois: int = opt(32, "ava: boxes trained per keyframe (MMAction2's RandomSampler num)", lo=1, hi=4096)
    ava_negatives: bool = opt(False, "ava: also train on proposals matching no ground truth, as background (all "
                                     "targets 0); MMAction2's BBoxHeadAVA loss leaves them out")
    # the LFB detectors' feature bank and the RGB + flow detectors' flow (humact.train.ava)
    ava_bank: str = opt("", "ava, LFB detectors: feature-bank folder (one sub-folder per video); pass 1 fills "
                            "it first with ava_bank_checkpoint's RoI features at every keyframe (reused when "
                            "complete with the same detector)")
    ava_bank_model: str = opt("slowonly_r50_4x16_ava", "ava, LFB detectors: the frozen short-term AVA detector "
                                                       "that fills the bank")
    ava_bank_checkpoint: str = opt("", "ava, LFB detectors: ava_bank_model's weights (a `humact train` "
                                       "model.safetensors or an MMAction2 AVA checkpoint)")
    ava_lfb_window: int = opt(60, "ava, LFB detectors: bank window in seconds around the keyframe (MMAction2's "
                                  "window_size)", lo=1, hi=10_000)
    ava_lfb_max_per_second: int = opt(5, "ava, LFB detectors: bank features per second of the window "
                                         "(MMAction2's max_num_sampled_feat)", lo=1, hi=100)
    ava_flow: str = opt("", "ava, RGB + flow detectors: folder of `humact flow --out` folders (NAME.flow/, NAME "
                            "the video file's or frame folder's name); a missing one is extracted there first")
    ava_flow_method: Literal["dis", "farneback", "tvl1"] = opt("dis", "ava, RGB + flow detectors: flow method "
                                                                      "when extracting")
    ava_flow_short_side: int = opt(0, "ava, RGB + flow detectors: short side of the extracted flow (0 = the "
                                      "video's size); `humact detect` extracts with the checkpoint's setting",
                                   lo=0, hi=4096)


@dataclass
class ModelConfig:
    """Which network."""

    name: str = opt("stgcnpp", "model (see `humact.zoo`)", flag="model")
    base_channels: int = opt(64, "width of the first stage (PYSKL: 64 for GCNs, 32 for PoseConv3D)", lo=1,
                             hi=1024)
    dropout: float = opt(0.0, "dropout before the classifier", lo=0.0, hi=1.0, hi_open=True)
    norm_eval: bool = opt(False, "3D CNN backbones (AVA detectors): BatchNorm layers stay in eval mode while "
                                 "training, their statistics frozen (MMAction2's norm_eval)")


@dataclass
class OptimConfig:
    """Optimisation, in PYSKL / CTR-GCN's vocabulary."""

    epochs: int = opt(16, "training epochs", lo=1, hi=100_000)
    batch_size: int = opt(16, "samples per iteration", lo=1, hi=65_536)
    lr: float = opt(0.1, "base learning rate", lo=0.0, hi=100.0, lo_open=True)
    momentum: float = opt(0.9, "SGD momentum", lo=0.0, hi=1.0, hi_open=True)
    nesterov: bool = opt(True, "Nesterov momentum")
    weight_decay: float = opt(5e-4, "L2 weight decay", lo=0.0, hi=1.0)
    schedule: Literal["cosine", "multistep"] = opt("cosine", "cosine annealing to min_lr, or x gamma at each "
                                                             "milestone epoch")
    milestones: list[int] = opt(factory=list, help="multistep: epochs after which lr is multiplied by gamma")
    gamma: float = opt(0.1, "multistep factor", lo=0.0, hi=1.0, lo_open=True)
    min_lr: float = opt(0.0, "cosine: final learning rate", lo=0.0)
    warmup_iters: int = opt(0, "linear warm-up iterations", lo=0, hi=10_000_000)
    warmup_epochs: float = opt(0.0, "linear warm-up in epochs (MMAction2's by-epoch LinearLR; when > 0 it "
                                    "replaces warmup_iters, converted with the iterations per epoch)",
                               lo=0.0, hi=100_000.0)
    warmup_ratio: float = opt(0.1, "warm-up starts at lr x this", lo=0.0, hi=1.0, lo_open=True)
    clip_grad: float = opt(0.0, "max gradient L2 norm (0 = off)", lo=0.0)
    label_smoothing: float = opt(0.0, "label smoothing of the cross-entropy", lo=0.0, hi=1.0, hi_open=True)
    precise_bn: int = opt(0, "after training, recompute BatchNorm statistics with the final weights over this "
                             "many training batches (PySlowFast's precise BN; 0 = off)", lo=0, hi=100_000)
    patience: int = opt(0, "with a validation split: stop after this many epochs without a better validation "
                           "accuracy (0 = train all epochs)", lo=0, hi=100_000)
    accumulate: int = opt(1, "gradient accumulation: each batch of batch_size runs as this many micro-batches "
                             "whose gradients add up before one step (same update, less memory; BatchNorm sees "
                             "the micro-batches)", lo=1, hi=65_536)


@dataclass
class RunConfig:
    """How the run executes and where it writes."""

    seed: int = opt(0, "random seed (data order, augmentation, initialisation)", lo=0, hi=2**32 - 1)
    num_threads: int = opt(1, "torch intra-op threads (1 is fastest for these small models on a busy machine: 'docs/custom_dataset.md')", lo=1, hi=512)
    num_workers: int = opt(0, "data loader processes", lo=0, hi=256)
    precision: Literal["fp32", "bf16", "fp16"] = opt("fp32", "fp32, bf16 mixed precision, or fp16 (CUDA only)")
    out: str = opt("runs/train", "output folder")
    save_every: int = opt(1, "write last.safetensors every N epochs", lo=1, hi=100_000)
    device: Literal["cpu", "cuda"] = opt("cpu", "where the model trains: cpu, or cuda (distributed: the GPU of "
                                                "each process's LOCAL_RANK)")
    sync_bn: bool = opt(False, "distributed runs: BatchNorm statistics over the whole batch of all processes "
                               "(torch's SyncBatchNorm; CUDA only)")
    dist_timeout: int = opt(1800, "distributed runs: seconds a process waits for the others before the job fails",
                            lo=10, hi=86_400)


#: The sections of a `TrainConfig`, in file and help order.
SECTIONS: dict[str, type] = {"data": DataConfig, "input": InputConfig, "model": ModelConfig,
                             "optim": OptimConfig, "run": RunConfig}


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved next to every checkpoint."""

    data: DataConfig = field(default_factory=DataConfig)
    input: InputConfig = field(default_factory=InputConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        self.validate()

    #: The flat names of the fields a file, a flag or the model's defaults set (`humact.train.defaults`
    #: fills the others from the data). Not a dataclass field: two configs with equal values are equal.
    given = frozenset()

    def replace(self, values: dict[str, Any], source: str = "data") -> "TrainConfig":
        """A copy with `values` (flat names) applied and validated; `given` unchanged."""
        out = _apply(self, values, source)
        out.given = self.given
        return out

    def validate(self, source: str = "config") -> None:
        """Raise ConfigError naming `source` and `section.field` for a value of the wrong type or range."""
        for section, cls in SECTIONS.items():
            part = getattr(self, section)
            if not isinstance(part, cls):
                raise ConfigError(f"{source}: {section}: expected a table of {cls.__name__} fields")
            hints = _hints(cls)
            for f in fields(cls):
                _check(source, f"{section}.{f.name}", getattr(part, f.name), hints[f.name], f.metadata)
        from humact import zoo

        if self.model.name not in zoo.trainable():
            raise ConfigError(f"{source}: model.name: expected one of {', '.join(zoo.trainable())}, "
                              f"got {self.model.name!r}")
        ava = zoo.MODELS[self.model.name].input == "ava"
        if ava and self.data.dataset not in ("auto", "ava"):
            raise ConfigError(f"{source}: data.dataset: {self.model.name} is an AVA detector and trains on "
                              f"dataset 'ava', got {self.data.dataset!r}")
        if not ava and self.data.dataset == "ava":
            raise ConfigError(f"{source}: data.dataset: 'ava' data trains AVA detectors (one of "
                              f"{', '.join(zoo.of_input('ava'))}), not {self.model.name!r}")
        if not ava and self.model.norm_eval:
            raise ConfigError(f"{source}: model.norm_eval: only the 3D CNN backbones of the AVA detectors have "
                              f"it, not {self.model.name!r}")
        if len(self.data.ava_scale) != 2 or not 16 <= self.data.ava_scale[0] <= self.data.ava_scale[1] <= 4096:
            raise ConfigError(f"{source}: data.ava_scale: expected [min, max] with 16 <= min <= max <= 4096, "
                              f"got {self.data.ava_scale}")
        if ava and 0 < self.data.ava_crop and self.data.ava_crop > self.data.ava_scale[0]:
            raise ConfigError(f"{source}: data.ava_crop: {self.data.ava_crop} is larger than the smallest "
                              f"training short side data.ava_scale[0] = {self.data.ava_scale[0]}")
        if self.optim.schedule == "multistep" and any(m < 1 for m in self.optim.milestones):
            raise ConfigError(f"{source}: optim.milestones: expected positive epochs, got {self.optim.milestones}")

    def to_dict(self) -> dict[str, Any]:
        """The nested, JSON-ready form (what `save` writes and `config_from_dict` reads)."""
        return dataclasses.asdict(self)

    def save(self, path: str | os.PathLike) -> None:
        from humact.io.atomic import atomic_write

        with atomic_write(path) as f:
            json.dump(self.to_dict(), f, indent=2)


# ------------------------------------------------------------------------------------------ fields


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def leaf_fields() -> dict[str, tuple[str, dataclasses.Field, Any]]:
    """Every leaf by its flat name (the flag name without dashes): (section, field, type hint)."""
    out = {}
    for section, cls in SECTIONS.items():
        hints = _hints(cls)
        for f in fields(cls):
            out[f.metadata.get("flag") or f.name] = (section, f, hints[f.name])
    return out


def _describe(hint: Any, meta: dict) -> str:
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(map(str, typing.get_args(hint)))
    if typing.get_origin(hint) is list:
        return f"a list of {typing.get_args(hint)[0].__name__}"
    kind = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}[hint]
    lo, hi = meta.get("lo"), meta.get("hi")
    if lo is not None and hi is not None:
        return f"{kind} in {'(' if meta['lo_open'] else '['}{lo:g}, {hi:g}{')' if meta['hi_open'] else ']'}"
    if lo is not None:
        return f"{kind} {'>' if meta['lo_open'] else '>='} {lo:g}"
    return kind


def _type_ok(value: Any, hint: Any) -> tuple[bool, Any]:
    """(ok, value coerced): ints are fine for floats; bools are not numbers."""
    if typing.get_origin(hint) is Literal:
        return value in typing.get_args(hint), value
    if typing.get_origin(hint) is list:
        item = typing.get_args(hint)[0]
        if not isinstance(value, (list, tuple)):
            return False, value
        checked = [_type_ok(v, item) for v in value]
        return all(ok for ok, _ in checked), [v for _, v in checked]
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return ok, float(value) if ok else value
    return isinstance(value, hint), value


def _check(source: str, name: str, value: Any, hint: Any, meta: dict) -> Any:
    ok, value = _type_ok(value, hint)
    if ok and isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = meta.get("lo"), meta.get("hi")
        if lo is not None and (value < lo or (meta["lo_open"] and value == lo)):
            ok = False
        if hi is not None and (value > hi or (meta["hi_open"] and value == hi)):
            ok = False
    if not ok:
        raise ConfigError(f"{source}: {name}: expected {_describe(hint, meta)}, got {value!r}")
    return value


# ------------------------------------------------------------------------------------------ reading


def default_config(model: str = "stgcnpp") -> TrainConfig:
    """The defaults for `model`: the fields' defaults with that model's `humact.zoo` defaults over them."""
    from humact import zoo

    values: dict[str, Any] = {"model": model}
    if model in zoo.MODELS:
        values.update(zoo.MODELS[model].train_defaults)
    return _apply(TrainConfig.__new__(TrainConfig), values, "defaults", fresh=True)


def _flatten(values: dict[str, Any], source: str) -> dict[str, Any]:
    """Nested (`{"optim": {"lr": ..}}`) or flat (`{"lr": ..}`) values -> flat names, checked for unknown keys.

    `data` and `model` are both a section and, in flat files, a field (the data path, the model name):
    a string means the field, a table the section.
    """
    leaves = leaf_fields()
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if key in SECTIONS and isinstance(value, dict):
            cls = SECTIONS[key]
            names = {f.name: (f.metadata.get("flag") or f.name) for f in fields(cls)}
            for sub, v in value.items():
                if sub not in names:
                    raise ConfigError(f"{source}: unknown field {key}.{sub}; known: {', '.join(sorted(names))}")
                flat[names[sub]] = v
        elif key in leaves:
            flat[key] = value
        else:
            raise ConfigError(f"{source}: unknown field {key!r}; known sections {', '.join(SECTIONS)} and "
                              f"fields {', '.join(sorted(leaves))}")
    return flat


def _apply(cfg: TrainConfig, flat: dict[str, Any], source: str, fresh: bool = False) -> TrainConfig:
    """A new TrainConfig: `cfg`'s values (or the field defaults when `fresh`) with `flat` applied, validated."""
    leaves = leaf_fields()
    parts = {}
    for section, cls in SECTIONS.items():
        parts[section] = cls() if fresh else dataclasses.replace(getattr(cfg, section))
    for name, value in flat.items():
        section, f, hint = leaves[name]
        value = _check(source, f"{section}.{f.name}", value, hint, f.metadata)
        setattr(parts[section], f.name, list(value) if isinstance(value, (list, tuple)) else value)
    out = TrainConfig.__new__(TrainConfig)
    for section in SECTIONS:
        setattr(out, section, parts[section])
    # Which fields a file, a flag or the model's defaults set: the data may fill in the others.
    out.given = frozenset(flat) | (frozenset() if fresh else cfg.given)
    out.validate(source)
    return out


def config_from_dict(values: dict[str, Any], source: str = "config", base: TrainConfig | None = None) -> TrainConfig:
    """A validated `TrainConfig` from nested or flat `values` over `base` (default: the defaults of the
    model `values` names, else ST-GCN++'s). Raises ConfigError naming `source` and the field."""
    if not isinstance(values, dict):
        raise ConfigError(f"{source}: expected a table of config fields, got {type(values).__name__}")
    flat = _flatten(values, source)
    if base is None:
        base = default_config(_model_name(flat.get("model", ModelConfig.name), source))
    return _apply(base, flat, source)


def _model_name(model: Any, source: str) -> str:
    """`model` if it names a trainable model, else ConfigError naming `source`."""
    from humact import zoo

    if not isinstance(model, str) or model not in zoo.trainable():
        raise ConfigError(f"{source}: model.name: expected one of {', '.join(zoo.trainable())}, got {model!r}")
    return model


def _read_file(path: Path) -> dict[str, Any]:
    if path.suffix not in (".toml", ".json"):
        raise ConfigError(f"{path}: config file must end in .json or .toml")
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file ({e.strerror})") from None
    if len(raw) > 4 << 20:
        raise ConfigError(f"{path}: {len(raw)} bytes is not a config file (limit 4 MB)")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    try:
        if path.suffix == ".toml":
            return tomllib.loads(text)
        if path.suffix == ".json":
            values = json.loads(text)
            if not isinstance(values, dict):
                raise ConfigError(f"{path}: expected a table of fields at the top level")
            return values
    except (ValueError, RecursionError) as e:  # TOMLDecodeError, JSONDecodeError, Python's int-digit limit
        raise ConfigError(f"{path}: not valid {path.suffix[1:].upper()} ({one_line(e)})") from None
    raise ConfigError(f"{path}: config file must end in .json or .toml")


def load_config(path: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """The config of a run: the model's defaults, then the file at `path` (.toml / .json, nested or flat),
    then `overrides` (flat names, e.g. the command line's flags)."""
    overrides = dict(overrides or {})
    values = _read_file(Path(path)) if path is not None else {}
    source = str(path) if path is not None else "command line"
    file_flat = _flatten(values, source)
    if "model" in overrides:
        model = _model_name(overrides["model"], "command line")
    else:
        model = _model_name(file_flat.get("model", ModelConfig.name), source)
    cfg = _apply(default_config(model), file_flat, source)
    return _apply(cfg, overrides, "command line") if overrides else cfg


def read_saved_config(meta: dict[str, Any], source: str) -> TrainConfig:
    """The `TrainConfig` of a checkpoint's JSON (`meta["config"]`), nested or flat (older checkpoints).

    Fields a checkpoint predates get their defaults; fields it has that humact no longer knows are
    an error naming the file.
    """
    if "config" not in meta:
        raise ConfigError(f"{source}: missing field 'config'")
    values = meta["config"]
    if isinstance(values, dict) and not any(k in SECTIONS and isinstance(v, dict) for k, v in values.items()):
        # Flat configs before v0.2 had a few fields that are now derived or renamed.
        values = {k: v for k, v in values.items() if k not in ("layout",) or v}
    return config_from_dict(values, source)


# ------------------------------------------------------------------------------------------ flags


def add_config_flags(parser) -> None:
    """One flag per leaf field (`--epochs`, `--lr`, `--no-nesterov`, ...), grouped by section, each with
    its help text, allowed values and default; parsed values default to None (= not given)."""
    import argparse

    leaves = leaf_fields()
    defaults = TrainConfig()
    groups = {s: parser.add_argument_group(f"{s} ({SECTIONS[s].__doc__.strip().rstrip('.')})") for s in SECTIONS}
    for name, (section, f, hint) in leaves.items():
        flag = "--" + name.replace("_", "-")
        default = getattr(getattr(defaults, section), f.name)
        allowed = "one of " + ", ".join(_trainable()) if name == "model" else _describe(hint, f.metadata)
        text = f"{f.metadata['help']}; {allowed} (default: {default!r})"
        group = groups[section]
        if hint is bool:
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, default=None,
                               help=text.replace("%", "%%"))
        elif typing.get_origin(hint) is list:
            group.add_argument(flag, dest=name, nargs="*", type=typing.get_args(hint)[0], default=None,
                               metavar=name.upper(), help=text.replace("%", "%%"))
        else:
            base = str if typing.get_origin(hint) is Literal else hint
            group.add_argument(flag, dest=name, type=base, default=None, metavar=name.upper(),
                               help=text.replace("%", "%%"))


def _trainable() -> tuple[str, ...]:
    from humact import zoo

    return zoo.trainable()


def overrides_from_args(args) -> dict[str, Any]:
    """The flat values of the config flags that were given on the command line."""
    return {name: getattr(args, name) for name in leaf_fields() if getattr(args, name, None) is not None}
