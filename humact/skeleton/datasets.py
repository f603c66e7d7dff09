"""Skeleton action datasets: PYSKL annotation pickles, NW-UCLA, JHMDB-14 and `humact extract` folders.

Every loader returns a `SkeletonDataset`: a list of `SkeletonSample`s (one video each, PYSKL's
`keypoint` layout `(M, T, V, C)`) plus the class names and the joint layout name, so the trainer
never sees a loose dict. `SkeletonClips` turns a dataset into network inputs `(clips, M, T, V, C')`
with the temporal sampling, normalisation, augmentation and joint/bone/motion features of a recipe.

Sources and their conventions:
- PYSKL annotation pickle: `{"split": {name: [frame_dir, ...]}, "annotations": [{"frame_dir", "label",
  "keypoint" (M, T, V, C), "keypoint_score" (M, T, V) optional, "total_frames", "img_shape"}]}`.
- NW-UCLA (`all_sqe/*.json`, Kinect v1, 20 joints, metres): cross-view protocol, train = v01 + v02,
  test = v03; labels 0..9 for actions a01 a02 a03 a04 a05 a06 a08 a09 a11 a12.
- JHMDB-14 (`GT_{train,test}_{split}.pkl`, `{"pose": [T x 15 x 2], "label": [name]}`): 2D ground-truth
  joints, already normalised and centred by the dataset's authors.
- A folder of `humact extract` outputs: one PYSKL-format pickle per video (`keypoint` (M, T, 17, 2),
  `keypoint_score` (M, T, 17)); the class is the name of the sub-folder the pickle is in, or its
  `label` field when the pickles lie flat in the folder.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from humact.skeleton.recipe import InputConfig
from humact.errors import InputError
from humact.io.safe_pickle import safe_load
from humact.skeleton.graph import Layout, get_layout, infer_layout
from humact.skeleton.pipelines import normalize_skeleton

__all__ = [
    "SkeletonSample", "SkeletonDataset", "load_pyskl", "load_nw_ucla", "load_jhmdb", "load_extract_folder",
    "load_dataset", "detect_dataset", "DATASET_KINDS", "NW_UCLA_ACTIONS", "NW_UCLA_CLASSES", "KINECT20_NAMES",
    "JHMDB15_NAMES", "JHMDB14_CLASSES", "coco17_to_jhmdb15", "prepare_keypoints",
    "SkeletonClips", "Recipe", "layout_flip_index", "HeatmapClips", "to_pixel_frame", "layout_limbs",
    "HEATMAP_CANVAS",
]

# ------------------------------------------------------------------------------------------ layouts

#: Kinect v1 joints, in NW-UCLA's order (y up, metres).
KINECT20_NAMES: tuple[str, ...] = (
    "hip_center", "spine", "shoulder_center", "head",
    "left_shoulder", "left_elbow", "left_wrist", "left_hand",
    "right_shoulder", "right_elbow", "right_wrist", "right_hand",
    "left_hip", "left_knee", "left_ankle", "left_foot",
    "right_hip", "right_knee", "right_ankle", "right_foot",
)

#: JHMDB's 15 puppet joints, in the order of the GT pickles.
JHMDB15_NAMES: tuple[str, ...] = (
    "neck", "belly", "face", "right_shoulder", "left_shoulder", "right_hip", "left_hip",
    "right_elbow", "left_elbow", "right_knee", "left_knee", "right_wrist", "left_wrist",
    "right_ankle", "left_ankle",
)


NW_UCLA_ACTIONS: tuple[str, ...] = ("a01", "a02", "a03", "a04", "a05", "a06", "a08", "a09", "a11", "a12")
NW_UCLA_CLASSES: tuple[str, ...] = (
    "pick up with one hand", "pick up with two hands", "drop trash", "walk around", "sit down",
    "stand up", "donning", "doffing", "throw", "carry",
)
JHMDB14_CLASSES: tuple[str, ...] = (
    "catch", "clap", "golf", "jump", "pick", "pour", "pullup", "push", "run", "sit", "stand", "throw",
    "walk", "wave",
)

def layout_flip_index(layout: str) -> tuple[int, ...]:
    """Left/right flip permutation of a `humact.skeleton.graph` layout."""
    from humact.skeleton.graph import get_layout

    return get_layout(layout).flip_index


# ------------------------------------------------------------------------------------------ samples


@dataclass
class SkeletonSample:
    """One video's skeletons.

    Attributes:
        keypoint: (M, T, V, C) float32 joint coordinates (pixels, metres or the dataset's
            normalised units), M persons, T frames, V joints, C = 2 or 3.
        label: class index into `SkeletonDataset.classes`, -1 when unknown.
        name: the video's identifier (PYSKL's `frame_dir`).
        keypoint_score: (M, T, V) float32 confidence, or None for ground-truth skeletons.
        img_shape: (h, w) of the frame 2D pixel keypoints live in, or None when unknown or
            the coordinates are not pixels (JHMDB's normalised ground truth).
        video: the video file the keypoints were extracted from (PYSKL's `filename`), or None;
            RGB+pose models (`humact.skeleton.rgbpose`) decode their frames from it.
    """

    keypoint: np.ndarray
    label: int
    name: str
    keypoint_score: np.ndarray | None = None
    img_shape: tuple[int, int] | None = None
    video: str | None = None

    def __post_init__(self) -> None:
        self.keypoint = np.asarray(self.keypoint, np.float32)
        if self.keypoint.ndim != 4 or self.keypoint.shape[-1] not in (2, 3):
            raise InputError(f"{self.name}: keypoint: expected (M, T, V, 2|3), got {self.keypoint.shape}")
        if self.keypoint_score is not None:
            self.keypoint_score = np.asarray(self.keypoint_score, np.float32)
            if self.keypoint_score.shape != self.keypoint.shape[:3]:
                raise InputError(f"{self.name}: keypoint_score: expected {self.keypoint.shape[:3]}, "
                                 f"got {self.keypoint_score.shape}")
        if self.img_shape is not None:
            self.img_shape = (int(self.img_shape[0]), int(self.img_shape[1]))

    @property
    def num_frames(self) -> int:
        return self.keypoint.shape[1]


@dataclass
class SkeletonDataset:
    """A list of skeleton samples with their class names and joint layout (a built-in layout's name,
    or a `humact.skeleton.graph.Layout` for a custom one)."""

    samples: list[SkeletonSample]
    classes: tuple[str, ...]
    layout: str | Layout
    source: str = ""

    @property
    def layout_name(self) -> str:
        return self.layout if isinstance(self.layout, str) else self.layout.name

    def check_layout(self) -> None:
        """InputError naming `--layout` when the samples' joints or dimensions do not fit the layout."""
        lay = get_layout(self.layout)
        where = self.source or "data"
        joints = {s.keypoint.shape[2] for s in self.samples}
        if joints and joints != {lay.num_node}:
            raise InputError(f"{where}: keypoint: the samples have {sorted(joints)} joints, layout {lay.name!r} has "
                             f"{lay.num_node} (pass --layout: a built-in name or a layout file, docs/custom_dataset.md)")
        if self.samples and lay.dims is not None and self.dims != lay.dims:
            raise InputError(f"{where}: keypoint: {self.dims}D coordinates, but layout {lay.name!r} is for "
                             f"{lay.dims}D joints (pass --layout for this data)")

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def labels(self) -> np.ndarray:
        """(N,) int64 class index of every sample."""
        return np.array([s.label for s in self.samples], np.int64)

    @property
    def dims(self) -> int:
        """Coordinate dimensions of the samples (2 or 3), read from the data itself: the last axis
        of `keypoint` (the confidence, when there is one, is `keypoint_score`, not a coordinate)."""
        found = {s.keypoint.shape[-1] for s in self.samples}
        if len(found) > 1:
            raise InputError(f"{self.source or 'dataset'}: keypoint: samples mix 2D and 3D coordinates")
        return found.pop() if found else 2

    @property
    def has_scores(self) -> bool:
        """Whether the samples carry keypoint confidences (`keypoint_score`)."""
        return bool(self.samples) and all(s.keypoint_score is not None for s in self.samples)

    def subset(self, index) -> "SkeletonDataset":  # noqa: D102
        return SkeletonDataset([self.samples[i] for i in np.asarray(index)], self.classes, self.layout, self.source)

    def split_validation(self, fraction: float, seed: int = 0) -> tuple["SkeletonDataset", "SkeletonDataset"]:
        """Hold out `fraction` of every class (stratified, seeded) as a validation slice.

        Returns (train, val). Recipe choices are made on `val`, never on a test split.
        """
        rng = np.random.default_rng(seed)
        labels = self.labels
        val = []
        for c in np.unique(labels):
            idx = np.flatnonzero(labels == c)
            rng.shuffle(idx)
            val.extend(idx[: int(round(fraction * len(idx)))].tolist())
        val_mask = np.zeros(len(self), bool)
        val_mask[val] = True
        return self.subset(np.flatnonzero(~val_mask)), self.subset(np.flatnonzero(val_mask))


# ------------------------------------------------------------------------------------------ loaders


def load_pyskl(path: str | os.PathLike, split: str, *, classes: tuple[str, ...] | None = None,
               layout: str | Layout | None = None) -> SkeletonDataset:
    """Read one split of a PYSKL annotation pickle (`split` + `annotations`), safely.

    Args:
        path: the pickle.
        split: a key of its `split` dict (e.g. "xsub_train").
        classes: class names for the integer labels; default the pickle's own `classes` list when it
            has one (humact writes it; PYSKL ignores extra keys), else "0", "1", ... up to the largest
            label of ANY split (so a split lacking the top class still has every class).
        layout: joint layout; default the built-in one of the keypoints' joint count and dims
            (`humact.skeleton.graph.infer_layout`), else an error asking for `--layout`.
    """
    path = Path(path)
    data = safe_load(path)
    if not isinstance(data, dict) or "split" not in data or "annotations" not in data:
        raise InputError(f"{path}: expected a dict with 'split' and 'annotations' (PYSKL annotation format)")
    if not isinstance(data["split"], dict) or not isinstance(data["annotations"], list):
        raise InputError(f"{path}: split: expected a dict of name lists and annotations a list")
    if split not in data["split"]:
        raise InputError(f"{path}: split: no split {split!r}; the file has {sorted(map(str, data['split']))}")
    wanted = set(map(str, data["split"][split]))
    samples = []
    top = -1
    for i, anno in enumerate(data["annotations"]):
        if not isinstance(anno, dict):
            raise InputError(f"{path}: annotations[{i}]: expected a dict, got {type(anno).__name__}")
        name = str(anno.get("frame_dir", i))
        for key in ("keypoint", "label"):
            if key not in anno:
                raise InputError(f"{path}: annotations[{i}] ({name}): missing field {key!r}")
        try:
            label = int(anno["label"])
        except (TypeError, ValueError):
            raise InputError(f"{path}: annotations[{i}] ({name}): label: expected an integer, "
                             f"got {anno['label']!r}") from None
        top = max(top, label)
        if name not in wanted:
            continue
        samples.append(SkeletonSample(anno["keypoint"], label, name, anno.get("keypoint_score"), _img_shape(anno),
                                      _filename(anno, path)))
    if classes is None and isinstance(data.get("classes"), (list, tuple)):
        classes = tuple(str(c) for c in data["classes"])
    if classes is None:
        classes = tuple(str(i) for i in range(top + 1))
    bad = [s.name for s in samples if not 0 <= s.label < len(classes)]
    if bad:
        raise InputError(f"{path}: label of {bad[0]!r} is outside the {len(classes)} classes")
    if layout is None:
        if samples:
            s0 = samples[0].keypoint
            layout = infer_layout(s0.shape[2], s0.shape[3], str(path))
        else:
            layout = "coco"
    out = SkeletonDataset(samples, tuple(classes), layout, str(path))
    out.check_layout()
    return out


def _img_shape(anno: dict) -> tuple[int, int] | None:
    """A PYSKL annotation's (h, w) `img_shape`, None when absent (or not a pair)."""
    shape = anno.get("img_shape")
    if shape is None or len(shape) != 2:
        return None
    return int(shape[0]), int(shape[1])


def _filename(anno: dict, source: str | os.PathLike) -> str | None:
    """A PYSKL annotation's `filename` (the video it was made from), None when absent."""
    name = anno.get("filename")
    if name is None:
        return None
    if not isinstance(name, (str, os.PathLike)):
        raise InputError(f"{source}: filename: expected the path of a video, got {type(name).__name__}")
    return os.fspath(name)


def _extracted_video(pkl: Path, anno: dict) -> str | None:
    """The video of a `humact extract` pickle: its `filename`, else `video.path` of the JSON result written
    beside it (`REL.json` next to `REL.pkl`: outputs of humact before `filename` was recorded)."""
    name = _filename(anno, pkl)
    if name is not None:
        return name
    beside = pkl.with_suffix(".json")
    if not beside.is_file():
        return None
    from humact.io.limits import read_json

    doc = read_json(beside)
    path = doc.get("video", {}).get("path") if isinstance(doc, dict) and isinstance(doc.get("video"), dict) else None
    return path if isinstance(path, str) else None


_UCLA_NAME = re.compile(r"a(\d\d)_s(\d\d)_e(\d\d)_v(\d\d)")


def load_nw_ucla(root: str | os.PathLike, split: str) -> SkeletonDataset:
    """NW-UCLA cross-view: split "train" = views v01 + v02 (1020), "test" = view v03 (464).

    A split may also name views, e.g. "v01" or "v01+v02": training on v01 and validating on
    v02 is a cross-view validation that never touches the test view v03.
    `root` is the folder holding `all_sqe/`. Keypoints are (1, T, 20, 3) metres, Kinect-20 order.
    """
    root = Path(root)
    views = {"train": ("01", "02"), "test": ("03",)}
    if split not in views:
        named = split.split("+")
        if not all(re.fullmatch(r"v0[123]", v) for v in named):
            raise InputError(f"NW-UCLA split: expected 'train', 'test' or views such as 'v01+v02', "
                             f"got {split!r}")
        views[split] = tuple(v[1:] for v in named)
    folder = root / "all_sqe"
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: NW-UCLA folder of *.json skeletons not found")
    samples = []
    for f in sorted(folder.glob("*.json")):
        m = _UCLA_NAME.fullmatch(f.stem)
        if m is None or m.group(4) not in views[split]:
            continue
        with open(f) as fh:
            rec = json.load(fh)
        sk = np.asarray(rec["skeletons"], np.float32)
        if sk.ndim != 3 or sk.shape[1:] != (20, 3):
            raise InputError(f"{f}: skeletons: expected (T, 20, 3), got {sk.shape}")
        samples.append(SkeletonSample(sk[None], NW_UCLA_ACTIONS.index("a" + m.group(1)), f.stem))
    return SkeletonDataset(samples, NW_UCLA_CLASSES, "kinect20", str(root))


def load_jhmdb(root: str | os.PathLike, split: str, fold: int = 1) -> SkeletonDataset:
    """JHMDB-14 ground-truth 2D joints, `GT_{split}_{fold}.pkl`, keypoints (1, T, 15, 2)."""
    if split not in ("train", "test"):
        raise InputError(f"JHMDB split: expected 'train' or 'test', got {split!r}")
    path = Path(root) / f"GT_{split}_{fold}.pkl"
    data = safe_load(path)
    if not isinstance(data, dict) or "pose" not in data or "label" not in data:
        raise InputError(f"{path}: expected a dict with 'pose' and 'label'")
    samples = []
    for i, (pose, name) in enumerate(zip(data["pose"], data["label"])):
        pose = np.asarray(pose, np.float32)
        if pose.ndim != 3 or pose.shape[1:] != (15, 2):
            raise InputError(f"{path}: pose[{i}]: expected (T, 15, 2), got {pose.shape}")
        if name not in JHMDB14_CLASSES:
            raise InputError(f"{path}: label[{i}]: unknown class {name!r}")
        samples.append(SkeletonSample(pose[None], JHMDB14_CLASSES.index(name), f"{name}_{i:03d}"))
    return SkeletonDataset(samples, JHMDB14_CLASSES, "jhmdb15", str(path))


def load_extract_folder(root: str | os.PathLike, *, classes: tuple[str, ...] | None = None) -> SkeletonDataset:
    """A folder of `humact extract` pickles (one video each, PYSKL's per-video format).

    The class of a pickle is the sub-folder of `root` it lies in (`root/<class>/<video>.pkl`, as
    `humact extract --label-from-folder` on `videos/<class>/*.mp4` writes), else its `label` field
    (a class name, or an int indexing the class list). The class list is `classes`, else
    `root/labels.json` (written by `humact extract --label-from-folder`), else the sorted names.
    Videos with no person keep their (0, T, 17, 2) keypoints.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"{root}: not a folder of `humact extract` outputs")
    files = sorted(root.rglob("*.pkl"))
    if not files:
        raise InputError(f"{root}: no *.pkl files (run `humact extract` on the labelled videos first)")
    if classes is None and (root / "labels.json").is_file():
        with open(root / "labels.json") as f:
            listed = json.load(f)
        if not isinstance(listed, list) or not all(isinstance(c, str) for c in listed):
            raise InputError(f"{root / 'labels.json'}: expected a list of class names")
        classes = tuple(listed)
    raw = []
    for f in files:
        anno = safe_load(f)
        if not isinstance(anno, dict) or "keypoint" not in anno:
            raise InputError(f"{f}: expected a PYSKL per-video dict with a 'keypoint' field")
        label = anno.get("label")
        if f.parent != root:
            label = f.parent.relative_to(root).parts[0]
        elif label is None or (isinstance(label, (int, np.integer)) and label < 0):
            raise InputError(f"{f}: no class: put it in a sub-folder named after its class or set 'label'")
        raw.append((f, anno, label))
    if classes is None:
        if any(isinstance(lab, (int, np.integer)) for _, _, lab in raw):
            raise InputError(f"{root}: integer labels need the class names (labels.json or classes=...)")
        classes = tuple(sorted({str(lab) for _, _, lab in raw}))
    samples = []
    for f, anno, label in raw:
        if isinstance(label, (int, np.integer)):
            if not 0 <= label < len(classes):
                raise InputError(f"{f}: label: {label} outside the {len(classes)} classes")
            idx = int(label)
        elif str(label) in classes:
            idx = classes.index(str(label))
        else:
            raise InputError(f"{f}: label: class {label!r} is not in the class list {list(classes)}")
        samples.append(SkeletonSample(anno["keypoint"], idx, str(anno.get("frame_dir", f.stem)),
                                      anno.get("keypoint_score"), _img_shape(anno), _extracted_video(f, anno)))
    return SkeletonDataset(samples, tuple(classes), "coco", str(root))


DATASET_KINDS: tuple[str, ...] = ("nw-ucla", "jhmdb", "pyskl", "extract")


def detect_dataset(path: str | os.PathLike) -> str:
    """The data kind of `path`: a PYSKL annotation pickle, a folder of NW-UCLA (`all_sqe/`), of JHMDB
    GT pickles (`GT_train_1.pkl`, ...), or of `humact extract` pickles; InputError asking for
    `--dataset` otherwise."""
    path = Path(path)
    if path.is_file() and path.suffix == ".pkl":
        return "pyskl"
    if path.is_dir():
        if (path / "all_sqe").is_dir():
            return "nw-ucla"
        if any(path.glob("GT_train_*.pkl")):
            return "jhmdb"
        if next(path.rglob("*.pkl"), None) is not None:
            return "extract"
    raise InputError(f"{path}: cannot tell what data this is (a PYSKL .pkl, an NW-UCLA folder with all_sqe/, "
                     f"a JHMDB folder with GT_train_1.pkl, or a folder of `humact extract` outputs); "
                     f"pass --dataset {'|'.join(DATASET_KINDS)}")


def load_dataset(kind: str, path: str | os.PathLike, split: str, *, fold: int = 1,
                 classes: tuple[str, ...] | None = None, layout: str | Layout | None = None) -> SkeletonDataset:
    """Load by kind: "auto" (`detect_dataset`), "nw-ucla", "jhmdb", "pyskl" (needs `split`) or "extract"
    (a folder; split ignored). `layout` overrides the data's own (checked against the joints)."""
    if kind == "auto":
        kind = detect_dataset(path)
    if kind == "nw-ucla":
        data = load_nw_ucla(path, split)
    elif kind == "jhmdb":
        data = load_jhmdb(path, split, fold)
    elif kind == "pyskl":
        data = load_pyskl(path, split, classes=classes, layout=layout)
    elif kind == "extract":
        data = load_extract_folder(path, classes=classes)
    else:
        raise InputError(f"dataset: unknown kind {kind!r}, expected auto, {', '.join(DATASET_KINDS)}")
    if layout is not None:
        data.layout = layout
        data.check_layout()
    return data


# ------------------------------------------------------------------------------------------ COCO -> JHMDB


def coco17_to_jhmdb15(keypoint: np.ndarray, score: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Derive JHMDB's 15 puppet joints from COCO-17 keypoints.

    neck = mid-shoulders; belly = midway between the neck and the mid-hips (JHMDB's puppet
    puts it on the torso's centre line); face = the nose; the limb joints map one to one.
    A derived joint's score is the minimum of the scores it is built from.

    Args:
        keypoint: (..., 17, 2) pixels.
        score: (..., 17) confidences, or None (all 1).
    Returns:
        ((..., 15, 2) joints, (..., 15) scores).
    """
    kp = np.asarray(keypoint, np.float32)
    sc = np.ones(kp.shape[:-1], np.float32) if score is None else np.asarray(score, np.float32)
    neck = (kp[..., 5, :] + kp[..., 6, :]) / 2
    hips = (kp[..., 11, :] + kp[..., 12, :]) / 2
    belly = (neck + hips) / 2
    # right/left pairs in JHMDB order: shoulder, hip, elbow, knee, wrist, ankle (COCO: right = even index)
    limbs = [6, 5, 12, 11, 8, 7, 14, 13, 10, 9, 16, 15]
    out = np.concatenate([neck[..., None, :], belly[..., None, :], kp[..., 0:1, :], kp[..., limbs, :]], axis=-2)
    s_neck = np.minimum(sc[..., 5], sc[..., 6])
    s_belly = np.minimum(s_neck, np.minimum(sc[..., 11], sc[..., 12]))
    out_s = np.concatenate([s_neck[..., None], s_belly[..., None], sc[..., 0:1], sc[..., limbs]], axis=-1)
    return out, out_s


# ------------------------------------------------------------------------------------------ clips


#: The input settings (clip length, stream, augmentation, normalisation, heatmaps, test clips) are
#: `humact.skeleton.recipe.InputConfig`; the data pipelines read them under this name.
Recipe = InputConfig


def prepare_keypoints(sample: SkeletonSample, layout: str, normalize: str) -> np.ndarray:
    """A whole sample as the GCN pipeline's input: (M, T, V, C) float32, the confidence merged as the
    last channel of 2D joints (PYSKL's 2D input), then `normalize_skeleton`."""
    kp = sample.keypoint.astype(np.float32)
    if sample.keypoint_score is not None and kp.shape[-1] == 2:
        kp = np.concatenate([kp, sample.keypoint_score[..., None].astype(np.float32)], axis=-1)
    return normalize_skeleton(kp, layout, normalize, sample.img_shape)


class SkeletonClips:
    """A torch-style dataset of GCN inputs `(clips, M, T, V, C)` float32 and labels.

    Each clip is `humact.skeleton.pipelines.skeleton_pipeline` (temporal crop, stretch sampling,
    rotation, scale, flip, view rotation, min-max, persons, stream) on the sample's normalised
    sequence. Training (`train=True`): one clip per item, its random steps drawn from a generator
    seeded by (seed, epoch, index), so an epoch is reproducible whatever the number of workers.
    Testing: `num_clips` clips, the first with every random step off (segment centres), the others
    drawn like training clips from a generator seeded with (255, index) (PYSKL's fixed test seed):
    test-time augmentation with the training recipe.

    Coordinates are 2D or 3D as the data is (`SkeletonDataset.dims`), never by layout name; 2D
    joints with confidences get the score as channel 2, which the bone and motion streams average.
    """

    def __init__(self, data: SkeletonDataset, recipe: Recipe, *, train: bool, num_clips: int = 1, seed: int = 0):
        self.data, self.recipe, self.train, self.num_clips, self.seed = data, recipe, train, num_clips, seed
        self.epoch = 0
        self.dims = data.dims
        self.score = self.dims == 2 and data.has_scores
        self._prepared = [prepare_keypoints(s, data.layout, recipe.normalize) for s in data.samples]

    def __len__(self) -> int:
        return len(self.data)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _clip(self, kp: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        from humact.skeleton.pipelines import PoseSample, skeleton_pipeline

        r = self.recipe
        pipe = skeleton_pipeline(layout=self.data.layout, clip_len=r.clip_len, stream=r.stream,
                                 max_persons=r.max_persons, dims=self.dims, score_channel=self.score,
                                 rotate=r.rotate, scale=r.scale, flip=r.flip, crop=r.crop,
                                 view_rotate=r.view_rotate, minmax=r.minmax, rng=rng)
        return pipe(PoseSample(kp)).keypoint

    def __getitem__(self, i: int):
        import torch

        kp = self._prepared[i]
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, i])
            clips = [self._clip(kp, rng)]
        else:
            rng = np.random.default_rng([255, i])
            clips = [self._clip(kp, None)] + [self._clip(kp, rng) for _ in range(self.num_clips - 1)]
        return torch.from_numpy(np.stack(clips)), int(self.data.samples[i].label)


# ------------------------------------------------------------------------------------------ heatmaps

#: Side of the canvas (pixels) that coordinates in other units are drawn into for heatmaps.
HEATMAP_CANVAS = 256


def layout_limbs(layout: str) -> tuple[tuple[tuple[int, int], ...], tuple[int, ...], tuple[int, ...]]:
    """(limbs, left limbs, right limbs) for limb heatmaps of a layout.

    COCO: PYSKL's PoseConv3D limb list (`pipelines.POSEC3D_COCO_LIMBS`). Other layouts: their
    graph edges, a limb being left (right) when its mirror image is another limb and it holds
    a left (right) joint.
    """
    from humact.skeleton import pipelines
    from humact.skeleton.graph import get_layout

    if get_layout(layout).name == "coco":
        return pipelines.POSEC3D_COCO_LIMBS, pipelines.POSEC3D_LEFT_LIMB, pipelines.POSEC3D_RIGHT_LIMB
    lay = get_layout(layout)
    limbs = tuple(lay.inward)
    mirror = lay.flip_index
    index = {frozenset(e): i for i, e in enumerate(limbs)}
    left, right = [], []
    for i, (a, b) in enumerate(limbs):
        j = index.get(frozenset((mirror[a], mirror[b])))
        if j is not None and j != i and (a in lay.left or b in lay.left):
            left.append(i)
            right.append(j)
    return limbs, tuple(left), tuple(right)


def to_pixel_frame(sample: SkeletonSample, max_persons: int) -> tuple[np.ndarray, np.ndarray | None, tuple[int, int]]:
    """2D keypoints in pixels of a frame, for heatmaps: (keypoint (M', T, V, 2), score, (h, w)).

    Samples with an `img_shape` are pixels already and are kept as they are. Others (JHMDB's
    normalised ground truth, annotations without `img_shape`) are shifted and scaled so their
    joints span `HEATMAP_CANVAS` pixels: PoseConv3D's pipeline crops to the joints' box and
    resizes it anyway (PoseCompact, Resize), so only the shape of the poses matters. A joint
    whose x and y are both 0 is missing (PYSKL's convention) and stays at 0. At most
    `max_persons` persons are kept.
    """
    kp = sample.keypoint[:max_persons]
    score = None if sample.keypoint_score is None else sample.keypoint_score[:max_persons]
    if kp.shape[-1] != 2:
        raise InputError(f"{sample.name}: keypoint: heatmaps are drawn from 2D keypoints (M, T, V, 2), "
                         f"got {kp.shape} (3D data)")
    if sample.img_shape is not None:
        return kp, score, sample.img_shape
    present = np.any(kp != 0, axis=-1)
    if not present.any():
        return kp, score, (HEATMAP_CANVAS, HEATMAP_CANVAS)
    pts = kp[present]
    lo, hi = pts.min(0), pts.max(0)
    factor = (HEATMAP_CANVAS - 2 * 8) / max(float((hi - lo).max()), 1e-6)
    out = np.zeros_like(kp)
    out[present] = (pts - lo) * np.float32(factor) + np.float32(8)  # 8 px margin: nothing lands on 0
    w, h = np.ceil((hi - lo) * factor).astype(int) + 2 * 8
    return out, score, (int(h), int(w))


class HeatmapClips:
    """A torch-style dataset of PoseConv3D inputs: heatmap volumes `(views, K, T, H, W)` and labels.

    Made on the fly from 2D keypoints by PYSKL's PoseConv3D recipe
    (`humact.skeleton.pipelines.posec3d_pipeline`) after `to_pixel_frame`. K is the layout's
    joints (`recipe.heatmap` "keypoint") or limbs ("limb", `layout_limbs`).

    Training (`train=True`): one view, `(1, K, clip_len, heatmap_size, heatmap_size)`: random
    uniform sampling, random resized crop and a flip with probability `recipe.flip`, from a
    generator seeded by (seed, epoch, index). Testing: `2 * num_clips` views of side
    `heatmap_test_size`, the `num_clips` clips of PYSKL's fixed-seed test sampling and then
    their mirror images (left/right channels swapped: PYSKL's `double=True`), whose softmax
    probabilities are averaged (`PoseConv3D.predict`).

    Raises ValueError naming the field when the data is not 2D (NW-UCLA's 3D joints).
    """

    def __init__(self, data: SkeletonDataset, recipe: Recipe, *, train: bool, num_clips: int = 1, seed: int = 0):
        from humact.skeleton.graph import get_layout

        if recipe.heatmap not in ("keypoint", "limb"):
            raise InputError(f"heatmap: expected 'keypoint' or 'limb', got {recipe.heatmap!r}")
        for s in data.samples:
            if s.keypoint.shape[-1] != 2:
                raise InputError(f"{data.source or data.layout}: keypoint: PoseConv3D draws heatmaps from 2D "
                                 f"keypoints (M, T, V, 2); sample {s.name!r} has {s.keypoint.shape} "
                                 f"({s.keypoint.shape[-1]}D coordinates)")
        self.data, self.recipe, self.train, self.num_clips, self.seed = data, recipe, train, num_clips, seed
        self.epoch = 0
        lay = get_layout(data.layout)
        limbs, left_limb, right_limb = layout_limbs(data.layout)
        self.num_channels = len(limbs) if recipe.heatmap == "limb" else lay.num_node
        self._pipeline_kw = dict(clip_len=recipe.clip_len, size=recipe.heatmap_size,
                                 test_size=recipe.heatmap_test_size, with_limb=recipe.heatmap == "limb",
                                 flip_ratio=recipe.flip, left_kp=tuple(lay.left), right_kp=tuple(lay.right),
                                 skeletons=limbs, left_limb=left_limb, right_limb=right_limb)
        self._prepared = [to_pixel_frame(s, recipe.max_persons) for s in data.samples]

    def __len__(self) -> int:
        return len(self.data)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, i: int):
        import torch

        from humact.skeleton.pipelines import PoseSample, posec3d_pipeline

        kp, score, shape = self._prepared[i]
        label = int(self.data.samples[i].label)
        sample = PoseSample(kp, score, shape, label=label, test_mode=not self.train, name=self.data.samples[i].name)
        if self.train:
            rng = np.random.RandomState([self.seed, self.epoch, i])
            pipeline = posec3d_pipeline(train=True, num_clips=1, rng=rng, **self._pipeline_kw)
        else:
            pipeline = posec3d_pipeline(train=False, num_clips=self.num_clips, double=True, **self._pipeline_kw)
        return torch.from_numpy(pipeline(sample).imgs), label
