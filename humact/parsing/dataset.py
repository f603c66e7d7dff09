"""Kinetics-TPS data: the official release layout and the TPS folders humact writes.

Two layouts are read into one `TpsDataset` (a list of `TpsVideo`s):

1. The official release (DeeperAction 2021, Kinetics-TPS README)::

       ROOT/train_videos/<class>/<video>.mp4          the videos (test_videos/ likewise)
       ROOT/train_frames/<class>/<video>/img_%05d.jpg  optional frame folders (mmaction2's
                                                      build_rawframes, index from 1); also
                                                      rawframes/ or frames/ in place of train_frames/
       ROOT/train_annotations/<class>/<video>/[<video>/]img_00001.json
                                                      one file per annotated frame: {"humans": [...]}
                                                      in gt_part_result's human layout
       ROOT/train_annotations/<class>/<video>.json     or one file per video: {"img_00001.json": {...}}
       ROOT/list/body_part.txt, part_stat.txt          the 10 parts and 74 states, one a line
       ROOT/list/{train,val,test}.txt (or ROOT/{split}.txt, ROOT/list/{split}_list.txt,
            ROOT/list/video_{split}_flist.csv)         optional split lists: one video a line,
                                                      "video", "class/video[.mp4]" or "video,frames"

   A split named by a list takes the listed videos from wherever their annotations are
   (so `val` can be a list of held-out training videos); without a list, `train` is
   `train_annotations/` and `test` is `test_videos/` (no annotations: actions from the
   class folders).

2. A TPS folder (what `humact eval tps` reads, and what tests and `humact parse` write)::

       ROOT/gt_vid_result.json     {video: action}
       ROOT/gt_part_result.json    {video: {"img_00001.json": {"humans": [...]}}}
       ROOT/videos/<video>.<ext>   (or ROOT/<video>.<ext>, or frames/<video>/ img_%05d.jpg)

Frame keys are `img_%05d.json` with the frame index from 1 (`frame_key` / `frame_index`
convert to and from humact's 0-based indices). Every annotation is checked with
`humact.eval.tps.check_tps_files` (a `TpsFormatError` names the file, video, frame, human,
part and field) and bounded (`humact.io.limits`) before it is used.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from humact.errors import InputError
from humact.eval.tps import TpsFormatError, check_tps_files, read_tps_dir
from humact.io.limits import MAX_FRAMES, check_limit, read_json
from humact.keypoints import PART_NAMES

__all__ = ["TpsVideo", "TpsDataset", "read_tps", "frame_key", "frame_index", "FRAME_KEY"]

VIDEO_EXTS = (".mp4", ".avi", ".mkv", ".webm", ".mov")
FRAME_KEY = re.compile(r"^img_(\d{1,9})\.json$")


def frame_key(index: int) -> str:
    """'img_00001.json' for humact's frame index 0 (the release numbers frames from 1)."""
    return f"img_{index + 1:05d}.json"


def frame_index(key: str, source: str = "") -> int:
    """The 0-based frame index of a frame key 'img_00001.json' (InputError naming `source` otherwise)."""
    m = FRAME_KEY.match(key)
    if not m or int(m.group(1)) < 1:
        raise TpsFormatError(f"{source}: frame {key!r}: expected a frame name img_00001.json (numbered from 1)")
    return int(m.group(1)) - 1


@dataclass
class TpsVideo:
    """One Kinetics-TPS video.

    Attributes:
        name: the video's id (the key of gt_vid_result.json).
        action: its action class, "" when unknown.
        frames: {frame key: {"humans": [{"box", "parts": {part: {"box", "verb"}}}]}}: the
            gt_part_result layout of this video (empty for a test video).
        video: the video file, or None.
        frames_dir: a folder of img_%05d.jpg frames, or None.
        split: the split it was read for.
    """

    name: str
    action: str
    frames: dict = field(default_factory=dict)
    video: Path | None = None
    frames_dir: Path | None = None
    split: str = ""

    @property
    def media(self) -> Path | None:
        return self.video if self.video is not None else self.frames_dir

    def frame_indices(self) -> list[int]:
        """The annotated frames' 0-based indices, sorted."""
        return sorted(frame_index(k, self.name) for k in self.frames)


@dataclass
class TpsDataset:
    """Kinetics-TPS videos with the vocabulary they use.

    Attributes:
        videos: the videos, in list (or name) order.
        actions: action classes (sorted; from the videos).
        parts: the part names (body_part.txt, else humact's `PART_NAMES`).
        states: the part-state vocabulary (part_stat.txt, else every state the annotations use, sorted).
        source: where it was read from.
    """

    videos: list[TpsVideo]
    actions: tuple[str, ...]
    parts: tuple[str, ...] = PART_NAMES
    states: tuple[str, ...] = ()
    source: str = ""

    def __len__(self) -> int:
        return len(self.videos)

    def gt_files(self) -> tuple[dict, dict]:
        """(gt_vid_result, gt_part_result) contents of these videos, for `humact.eval.tps.evaluate_tps`."""
        return ({v.name: v.action for v in self.videos}, {v.name: v.frames for v in self.videos})

    def subset(self, names) -> "TpsDataset":
        keep = set(names)
        return TpsDataset([v for v in self.videos if v.name in keep], self.actions, self.parts, self.states,
                          self.source)


def _read_lines(path: Path) -> list[str]:
    from humact.io.limits import MAX_JSON_BYTES, check_file_size

    check_file_size(path, MAX_JSON_BYTES)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text ({e.reason})") from None
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _vocab(path: Path) -> tuple[str, ...]:
    """Names of a body_part.txt / part_stat.txt: one a line; 'id name' or 'name' (the name is the last field)."""
    out = []
    for line in _read_lines(path):
        name = re.split(r"[\s,]+", line)[-1]
        out.append(name)
    return tuple(out)


def _list_names(path: Path) -> list[str]:
    """Video names of a split list: 'video', 'class/video[.ext]', 'video,frames' or 'video frames'."""
    names = []
    for i, line in enumerate(_read_lines(path)):
        first = re.split(r"[\s,]+", line)[0]
        name = Path(first).name
        for ext in VIDEO_EXTS:
            if name.lower().endswith(ext):
                name = name[: -len(ext)]
        if i == 0 and name.lower() in ("video", "name", "video_name", "vid"):
            continue   # a CSV header
        names.append(name)
    return names


def _find_list(root: Path, split: str) -> Path | None:
    for p in (root / "list" / f"{split}.txt", root / f"{split}.txt", root / "list" / f"{split}_list.txt",
              root / "list" / f"video_{split}_flist.csv"):
        if p.is_file():
            return p
    return None


def _read_frame_file(path: Path) -> dict:
    data = read_json(path, error=TpsFormatError)
    if not isinstance(data, dict):
        raise TpsFormatError(f"{path}: expected a JSON object {{'humans': [...]}}, got {type(data).__name__}")
    return data


def _annotation_of(path: Path, name: str, action: str) -> dict:
    """{frame key: {"humans": ...}} of one video's annotation, checked: a per-video JSON or a folder of
    per-frame JSONs (possibly nested once more in a folder of the video's name, as the release is);
    a problem names the file."""
    if path.is_file():
        data = _read_frame_file(path)
        _check({name: action}, {name: data}, str(path), str(path))
        return data
    folder = path
    inner = folder / folder.name
    if inner.is_dir():
        folder = inner
    frames = {}
    files = sorted(p for p in folder.iterdir() if p.is_file() and FRAME_KEY.match(p.name))
    check_limit(len(files), MAX_FRAMES, source=str(folder), field="frames")
    for p in files:
        data = _read_frame_file(p)
        # Keep only what the score reads (humans with box and parts); other fields are the release's own.
        frame = {"humans": data["humans"]} if "humans" in data else data
        _check({name: action}, {name: {p.name: frame}}, str(p), str(p))
        frames[p.name] = frame
    return frames


def _media_for(root: Path, split_dirs: list[str], action: str, name: str) -> tuple[Path | None, Path | None]:
    video = frames = None
    for split in split_dirs:
        for base in (root / f"{split}_videos" / action, root / f"{split}_videos", root / "videos" / action,
                     root / "videos", root):
            for ext in VIDEO_EXTS:
                p = base / f"{name}{ext}"
                if p.is_file():
                    video = video or p
        for base in (root / f"{split}_frames" / action, root / f"{split}_frames", root / "rawframes" / action,
                     root / "rawframes", root / "frames" / action, root / "frames"):
            p = base / name
            if p.is_dir():
                frames = frames or p
    return video, frames


def _check(vid: dict, part: dict, vid_source: str, part_source: str) -> None:
    """The evaluator's own check of the ground-truth layout, and frame keys img_%05d.json."""
    check_tps_files(vid, part, {}, {}, sources=(vid_source, part_source, "-", "-"))
    for name, frames in part.items():
        for k in frames:
            frame_index(k, f"{part_source}: video {name!r}")


def _finish(videos: list[TpsVideo], root: Path, source: str) -> TpsDataset:
    parts = _vocab(root / "list" / "body_part.txt") if (root / "list" / "body_part.txt").is_file() else PART_NAMES
    if (root / "list" / "part_stat.txt").is_file():
        states = _vocab(root / "list" / "part_stat.txt")
    else:
        found: Counter = Counter()
        for v in videos:
            for frame in v.frames.values():
                for h in frame["humans"]:
                    found.update(p["verb"] for p in h["parts"].values())
        states = tuple(sorted(found))
    actions = tuple(sorted({v.action for v in videos if v.action}))
    return TpsDataset(videos, actions, tuple(parts), tuple(states), source)


def read_tps(root: str | os.PathLike, split: str = "train") -> TpsDataset:
    """The videos of `split` under `root`, in either layout of the module docstring.

    Raises:
        InputError / TpsFormatError: nothing to read, or an annotation that does not follow the
            format (the message names the file and field).
    """
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: no such Kinetics-TPS folder (field --data)")
    if (root / "gt_vid_result.json").is_file() and (root / "gt_part_result.json").is_file():
        vid, part = read_tps_dir(root, "gt")
        _check(vid, part, str(root / "gt_vid_result.json"), str(root / "gt_part_result.json"))
        listed = _find_list(root, split)
        names = _list_names(listed) if listed else list(vid)
        videos = []
        for name in names:
            if name not in vid:
                raise InputError(f"{listed or root}: video {name!r} is not in {root / 'gt_vid_result.json'}")
            action = vid[name]
            video, frames = _media_for(root, [split], action if isinstance(action, str) else "", name)
            videos.append(TpsVideo(name, action, part.get(name, {}), video, frames, split))
        missing = [v.name for v in videos if v.name not in part]
        if missing:
            raise TpsFormatError(f"{root / 'gt_part_result.json'}: video {missing[0]!r} of gt_vid_result.json "
                                 f"is missing")
        return _finish(videos, root, str(root))

    # The release layout: annotation folders by class, then by video.
    ann_roots = sorted(p for p in root.glob("*_annotations") if p.is_dir())
    annotated: dict[str, tuple[str, Path, str]] = {}
    for ann in ann_roots:
        which = ann.name[: -len("_annotations")]
        for cls in sorted(p for p in ann.iterdir() if p.is_dir()):
            for entry in sorted(cls.iterdir()):
                name = entry.stem if entry.is_file() and entry.suffix == ".json" else entry.name
                if entry.is_dir() or entry.suffix == ".json":
                    annotated.setdefault(name, (cls.name, entry, which))
    listed = _find_list(root, split)
    if listed is not None:
        names = _list_names(listed)
    elif any(which == split for _, _, which in annotated.values()):
        names = [n for n, (_, _, which) in annotated.items() if which == split]
    else:
        names = []
    videos = []
    for name in names:
        if name in annotated:
            action, entry, which = annotated[name]
            frames = _annotation_of(entry, name, action)
            video, fdir = _media_for(root, [which, split], action, name)
        else:
            action, video, fdir, frames = _unannotated(root, split, name)
            if video is None and fdir is None:
                raise InputError(f"{listed}: video {name!r} has neither annotations nor a video under {root}")
        videos.append(TpsVideo(name, action, frames, video, fdir, split))
    if listed is None and not videos:
        # A split with videos and no annotations (the release's test set): actions from the class folders.
        vdir = root / f"{split}_videos"
        if vdir.is_dir():
            for cls in sorted(p for p in vdir.iterdir() if p.is_dir()):
                for p in sorted(cls.iterdir()):
                    if p.suffix.lower() in VIDEO_EXTS:
                        videos.append(TpsVideo(p.stem, cls.name, {}, p, None, split))
    if not videos:
        raise InputError(f"{listed or root}: no Kinetics-TPS videos for split {split!r} (expected gt_vid_result.json + "
                         f"gt_part_result.json, {split}_annotations/<class>/<video>/, a list/{split}.txt or "
                         f"{split}_videos/<class>/)")
    return _finish(videos, root, str(root))


def _unannotated(root: Path, split: str, name: str):
    for base in (root / f"{split}_videos", root / "test_videos", root / "train_videos"):
        if base.is_dir():
            for cls in sorted(p for p in base.iterdir() if p.is_dir()):
                for ext in VIDEO_EXTS:
                    if (cls / f"{name}{ext}").is_file():
                        return cls.name, cls / f"{name}{ext}", None, {}
    return "", None, None, {}
