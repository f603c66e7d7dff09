"""AVA-format training data for the AVA detectors: keyframes, boxes, multi-hot labels and their clips.

    ground-truth CSV (video_id,timestamp,x1,y1,x2,y2,action_id,person_id; boxes in [0, 1])
      --read_ava_keyframes (+ exclusions, label map, proposals pickle)--> AVAKeyframe per keyframe
    videos (VIDEO_ID.mp4, ...) or AVA frame folders (VIDEO_ID/img_00001.jpg at 30 fps)
      --open_sources--> FrameSource per video (keyframe -> frame index, decoding only the clip's frames)
    AVADetectionDataset[i] -> (clip (3, T, h, w) normalised, boxes (R, 4) in clip pixels,
                               labels (R, num_classes) float: column 0 background, then action ids)
    AVADetectionDataset.collate -> ((clips (N, 3, T, h, w), rois (R, 5) [batch index, x1, y1, x2, y2]),
                                    labels (R, num_classes))

Training items follow MMAction2's AVA training path: `SampleAVAFrames` (the test window plus a random
offset in [-interval / 2, interval / 2) per frame), `RandomRescale` (short side uniform in
`scale`), `RandomCrop` (boxes shifted and clipped), `Flip` (p = `flip`), then the assignment of
`MaxIoUAssignerAVA` (ground truth added as proposals; a proposal with IoU >= `pos_iou` to a
ground-truth box takes that box's labels) and `RandomSampler` (at most `max_rois` positives). What
MMAction2 samples as negatives never reaches its loss (`humact.video_models.ava.ava_loss`), so they
are only sampled with `negatives=True`, marked background (target column 0 = 1), and then trained
as all-zero targets. Randomness is seeded by (seed, epoch, index): a resumed run sees the same items.

Any model mapping (clips, rois) to (R, num_classes) logits trains on these items with
`humact.train.trainer.Trainer` (its loss `ava_loss`, or the model's own `loss`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from humact.errors import InputError
from humact.video_models.ava import AVASpec

__all__ = ["AVAKeyframe", "read_ava_keyframes", "FrameSource", "open_sources", "AVADetectionDataset",
           "assign_labels", "flow_folders", "VIDEO_SUFFIXES"]

VIDEO_SUFFIXES = (".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg")
#: MMAction2's `num_max_proposals`
MAX_PROPOSALS = 1000


@dataclass
class AVAKeyframe:
    """One annotated keyframe: `boxes` (G, 4) normalised ground-truth person boxes (unique), `labels`
    (G, num_classes) float32 multi-hot (column = action id; column 0, background, never set),
    `proposals` (P, 4) normalised person proposals (after the score rule; may be empty)."""

    video_id: str
    timestamp: int
    boxes: np.ndarray
    labels: np.ndarray
    proposals: np.ndarray

    @property
    def key(self) -> str:
        return f"{self.video_id},{self.timestamp:04d}"


def _proposals_for(table: dict, video: str, ts: int, threshold: float) -> np.ndarray | None:
    """MMAction2's AVADataset rule: proposals scoring >= min(threshold, best score), the first 1000."""
    arr = table.get((video, ts))
    if arr is None:
        return None
    if arr.shape[1] == 5 and len(arr):
        thr = min(threshold, float(arr[:, 4].max()))
        arr = arr[arr[:, 4] >= thr]
    return np.asarray(arr[:MAX_PROPOSALS, :4], np.float64)


def read_ava_keyframes(csv: str | os.PathLike, *, num_classes: int = 81, exclusions: str | None = None,
                       label_ids: Sequence[int] | None = None, proposals: str | None = None,
                       det_threshold: float = 0.9, field: str = "data.path") -> list[AVAKeyframe]:
    """The keyframes of an AVA ground-truth CSV, in file order, each box's rows merged into one
    multi-hot label row (MMAction2's `parse_img_record`: identical box coordinates are one person).

    `label_ids` keeps only those classes (a label map's); `exclusions` drops keyframes; `proposals`
    (a pickle) adds each keyframe's proposals (a keyframe it lacks gets none, where MMAction2 would
    give the whole frame: here the ground-truth boxes stand in). An action id >= `num_classes` is an
    InputError naming the file."""
    from humact.eval.ava import read_ava_csv, read_exclusions, read_proposals

    drop = read_exclusions(exclusions) if exclusions else None
    table = read_ava_csv(csv, class_whitelist=set(label_ids) if label_ids else None, drop_keys=drop)
    if not len(table):
        raise InputError(f"{csv}: no ground-truth boxes" + (" of the label map's classes" if label_ids else "")
                         + f" (field {field})")
    if int(table.action.max()) >= num_classes or int(table.action.min()) < 1:
        bad = int(table.action.max()) if int(table.action.max()) >= num_classes else int(table.action.min())
        raise InputError(f"{csv}: action id {bad} outside 1..{num_classes - 1} (field {field})")
    props: dict = {}
    if proposals:
        for k, arr in read_proposals(proposals).items():
            vid, _, ts = k.rpartition(",")
            try:
                props[(vid, int(float(ts)))] = arr
            except ValueError:
                raise InputError(f"{proposals}: key {k!r}: timestamp {ts!r} is not a number") from None
    order = np.argsort(table.kf, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(table.kf[order]) != 0])
    out = []
    for s, e in zip(starts, np.r_[starts[1:], len(order)]):
        rows = order[s:e]
        video, ts = table.keys[int(table.kf[rows[0]])]
        uniq, inv = np.unique(table.boxes[rows], axis=0, return_inverse=True)
        first = np.array([np.flatnonzero(inv.ravel() == u)[0] for u in range(len(uniq))])
        keep_order = np.argsort(first)                       # persons in order of first appearance
        labels = np.zeros((len(uniq), num_classes), np.float32)
        labels[inv.ravel(), table.action[rows]] = 1.0
        p = _proposals_for(props, video, int(ts), det_threshold)
        out.append(AVAKeyframe(str(video), int(ts), uniq[keep_order], labels[keep_order],
                               p if p is not None else np.zeros((0, 4))))
    return out


class FrameSource:
    """The frames of one video: a video file (decoded with `humact.video.read_frames`, only the frames
    asked for) or an AVA frame folder (`img_%05d.jpg`, frame index i in file i + 1, at `fps`)."""

    def __init__(self, path: str | os.PathLike, *, fps: float = 30.0) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            files = sorted(self.path.glob("img_*.jpg"))
            if not files or not (self.path / "img_00001.jpg").is_file():
                raise InputError(f"{self.path}: an AVA frame folder needs img_00001.jpg, img_00002.jpg, ... "
                                 f"(field data.ava_videos)")
            from PIL import Image

            self.folder = True
            self.num_frames = len(files)
            with Image.open(files[0]) as im:
                self.width, self.height = im.size
            self.fps = float(fps)
            self.frame_times = np.arange(self.num_frames) / self.fps
        else:
            from humact.video import probe

            self.folder = False
            meta = probe(self.path)
            self.meta = meta
            self.num_frames, self.width, self.height = meta.num_frames, meta.width, meta.height
            self.fps = meta.fps
            self.frame_times = np.asarray(meta.frame_times, np.float64) - float(meta.frame_times[0])

    def keyframe_index(self, timestamp: int, timestamp_start: int, source: str = "") -> int:
        """The frame shown at second `timestamp - timestamp_start` (frame folders: fps x seconds, as
        MMAction2's SampleAVAFrames); InputError when it lies outside the video."""
        t = float(timestamp - timestamp_start)
        last = self.frame_times[-1] + 1.0 / max(self.fps, 1e-6)
        if t < 0 or t > last:
            raise InputError(f"{source}: keyframe {timestamp} is at {t:.2f} s, outside {self.path} "
                             f"({last:.2f} s; is data.ava_timestamp_start = {timestamp_start} right?)")
        if self.folder:
            return int(min(round(self.fps * t), self.num_frames - 1))
        return int(np.argmin(np.abs(self.frame_times - t)))

    def read(self, indices: np.ndarray) -> np.ndarray:
        """(T, H, W, 3) uint8 RGB frames at `indices` (repeats allowed)."""
        want = sorted(set(int(i) for i in indices))
        if self.folder:
            from PIL import Image

            frames = {}
            for i in want:
                f = self.path / f"img_{i + 1:05d}.jpg"
                try:
                    with Image.open(f) as im:
                        frames[i] = np.asarray(im.convert("RGB"))
                except OSError as e:
                    raise InputError(f"{f}: cannot read the frame ({e})") from None
        else:
            from humact.video import read_frames

            frames = dict(read_frames(self.path, indices=want))
            missing = set(want) - set(frames)
            if missing:
                raise InputError(f"{self.path}: frame {min(missing)} could not be decoded")
        shapes = {frames[i].shape for i in want}
        if not shapes:
            return np.zeros((0, self.height, self.width, 3), np.uint8)
        if len(shapes) != 1:
            raise InputError(f"{self.path}: frames of different sizes {sorted(shapes)}")
        return np.stack([frames[int(i)] for i in indices])


    def iter_frames(self, start: int = 0):
        """(index, RGB frame) from frame `start` to the end, in order (flow extraction's input)."""
        if not self.folder:
            from humact.video import read_frames

            yield from read_frames(self.path, start=start)
            return
        for i in range(int(start), self.num_frames):
            yield i, self.read(np.array([i]))[0]


def flow_folders(sources: dict[str, "FrameSource"], root: str | os.PathLike, spec=None, *,
                 log=None) -> dict[str, Path]:
    """Each video's flow folder under `root`, as `humact flow --out ROOT` names it (`NAME.flow`, NAME the
    video file's or frame folder's name), extracted there first where it is missing or was made with
    other settings (`humact.video_models.flow.extract_flow`: resumable, a finished folder is reused)."""
    from humact.video_models.flow import FlowSpec, extract_flow

    spec = spec or FlowSpec()
    out = {}
    for vid, src in sorted(sources.items()):
        folder = Path(root) / f"{src.path.name}.flow"
        r = extract_flow(src.path, folder, spec, frames=(src.num_frames, src.iter_frames))
        if log and r.computed:
            log(f"flow: {vid}: {r.computed} of {r.pairs} pairs computed ({spec.method}) -> {folder}")
        out[vid] = folder
    return out


def open_sources(root: str | os.PathLike, video_ids: Sequence[str], *, fps: float = 30.0) -> dict[str, FrameSource]:
    """A FrameSource per video id: `root/ID/` (frame folder) or `root/ID.<video suffix>`."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: not a folder of videos or frame folders (field data.ava_videos)")
    out = {}
    for vid in sorted(set(video_ids)):
        if (root / vid).is_dir():
            out[vid] = FrameSource(root / vid, fps=fps)
            continue
        files = [root / f"{vid}{s}" for s in VIDEO_SUFFIXES if (root / f"{vid}{s}").is_file()]
        if not files:
            raise InputError(f"{root}: no video or frame folder for video id {vid!r} (expected {vid}/img_00001.jpg "
                             f"or {vid}.mp4, .mkv, ...; field data.ava_videos)")
        out[vid] = FrameSource(files[0], fps=fps)
    return out


def assign_labels(candidates: np.ndarray, gt_boxes: np.ndarray, gt_labels: np.ndarray, pos_iou: float
                  ) -> np.ndarray:
    """MMAction2's `MaxIoUAssignerAVA` (pos = neg = min_pos IoU threshold `pos_iou`): (P,) index of the
    ground-truth box each candidate box takes its labels from, -1 for a negative. A candidate is
    positive when its best IoU reaches `pos_iou`; each ground-truth box also claims the candidates of
    its own best IoU (ties included) when that reaches `pos_iou`."""
    from humact.detect.keyframes import box_iou

    if not len(candidates):
        return np.zeros(0, np.int64)
    iou = box_iou(candidates, gt_boxes)                          # (P, G)
    best = iou.argmax(axis=1)
    out = np.where(iou.max(axis=1) >= pos_iou, best, -1).astype(np.int64)
    gt_best = iou.max(axis=0)
    for j in range(len(gt_boxes)):
        if gt_best[j] >= pos_iou:
            out[iou[:, j] == gt_best[j]] = j
    return out


class AVADetectionDataset:
    """Items (clip, boxes, labels) of AVA keyframes for training or testing (module docstring).

    Args:
        keyframes: from `read_ava_keyframes`.
        sources: video id -> FrameSource (`open_sources`).
        spec: the detector's AVASpec (clip_len, frame_interval, mean / std).
        train: the random training path; else the test window at `test_scale`, the ground-truth boxes
            (labels included) of each keyframe.
        scale: (min, max) training short side; crop: training crop side (0 = none); flip: probability.
        pos_iou, max_rois, negatives: the assignment and sampling (module docstring).
        timestamp_start: the second of each video's first frame in the CSV's timestamps.
        bank: a `humact.video_models.lfb.FeatureBank` holding the videos' keyframe seconds (pass 1): each
            item then carries its keyframe's window (`lfb_window` s, `lfb_max_per_second` features per
            second; in training a random subset of a fuller second, seeded as the item), and `collate`
            gives every RoI its keyframe's window: ((clips, rois, lt (R, L, C)), labels), the
            `LFBDetector`'s input (MMAction2's FBOHead samples the bank per RoI the same way).
        flow: video id -> flow folder (`flow_folders`): each item carries the flow images at the clip's
            frames, resized, cropped and flipped with the RGB frames (a flip inverts flow_x, as MMAction2's
            Flip), `(2, T, h, w)` normalised; `collate` gives ((clips, flows, rois), labels), the
            `TwoStreamDetector`'s input.
        test_boxes: test mode's boxes, "gt" or "proposals" (a keyframe without proposals: its
            ground-truth boxes); proposals carry all-zero labels.
    """

    def __init__(self, keyframes: list[AVAKeyframe], sources: dict[str, FrameSource], spec: AVASpec, *,
                 train: bool = True, scale: tuple[int, int] = (256, 320), crop: int = 256, flip: float = 0.5,
                 test_scale: int = 256, pos_iou: float = 0.9, max_rois: int = 32, negatives: bool = False,
                 timestamp_start: int = 900, seed: int = 0, source: str = "", bank=None, lfb_window: int = 60,
                 lfb_max_per_second: int = 5, flow: dict[str, Path] | None = None,
                 test_boxes: str = "gt") -> None:
        if bank is not None and flow is not None:
            raise ValueError("AVADetectionDataset: a feature bank or flow, not both")
        if test_boxes not in ("gt", "proposals"):
            raise ValueError(f"AVADetectionDataset test_boxes: 'gt' or 'proposals', got {test_boxes!r}")
        self.bank, self.lfb_window, self.lfb_max_per_second = bank, int(lfb_window), int(lfb_max_per_second)
        self.flow, self.test_boxes = flow, test_boxes
        self.keyframes, self.sources, self.spec = list(keyframes), sources, spec
        self.train, self.scale, self.crop, self.flip = train, tuple(scale), int(crop), float(flip)
        self.test_scale, self.pos_iou, self.max_rois, self.negatives = test_scale, pos_iou, max_rois, negatives
        self.timestamp_start, self.seed, self.epoch = timestamp_start, seed, 0
        self.centers = [sources[k.video_id].keyframe_index(k.timestamp, timestamp_start, source)
                        for k in self.keyframes]

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.keyframes)

    def clip_indices(self, i: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """Frame indices of item i's clip: SampleAVAFrames' window, with its random offsets in training."""
        from humact.detect.keyframes import ava_clip_indices

        src = self.sources[self.keyframes[i].video_id]
        idx = ava_clip_indices(self.centers[i], src.num_frames, clip_len=self.spec.clip_len,
                               frame_interval=self.spec.frame_interval)
        if rng is not None:
            fi = self.spec.frame_interval
            start = self.centers[i] - (self.spec.clip_len // 2) * fi
            idx = start + np.arange(self.spec.clip_len) * fi + rng.integers(-fi // 2, (fi + 1) // 2,
                                                                             size=self.spec.clip_len)
            idx = np.clip(idx, 0, src.num_frames - 1)
        return idx.astype(np.int64)

    def frames(self, i: int) -> tuple[np.ndarray, AVAKeyframe]:
        """The test-window frames (T, H, W, 3) of item i and its keyframe (for `humact detect`'s path)."""
        k = self.keyframes[i]
        return self.sources[k.video_id].read(self.clip_indices(i)), k

    @property
    def stream(self) -> str:
        """"lfb", "flow" or "" (what the items carry besides the clip)."""
        return "lfb" if self.bank is not None else "flow" if self.flow is not None else ""

    def _window(self, k: AVAKeyframe, rng: np.random.Generator | None) -> torch.Tensor:
        g = torch.Generator().manual_seed(int(rng.integers(2 ** 62))) if rng is not None else None
        return self.bank.window(k.video_id, k.timestamp, window_size=self.lfb_window,
                                max_per_second=self.lfb_max_per_second, generator=g)

    def __getitem__(self, i: int):
        """(clip, boxes, labels), plus the stream's part (the bank window (L, C) or the flow clip) when
        there is one."""
        from humact.detect.rgb import flip_clip, resize_clip

        k = self.keyframes[i]
        rng = np.random.default_rng((self.seed, self.epoch, i)) if self.train else None
        idx = self.clip_indices(i, rng)
        frames = self.sources[k.video_id].read(idx)
        h, w = frames.shape[1:3]
        if self.flow is not None:       # one geometry for both: flow planes ride along as channels 3, 4
            from humact.video_models.flow import read_flow_images

            frames = np.concatenate([frames, read_flow_images(self.flow[k.video_id], idx, size=(h, w))], axis=-1)
        px = np.array([w, h, w, h], np.float32)
        gt = k.boxes.astype(np.float32) * px
        extra = None
        if not self.train:
            labels = k.labels
            if self.test_boxes == "proposals" and len(k.proposals):
                gt = k.proposals.astype(np.float32) * px
                labels = np.zeros((len(gt), k.labels.shape[1]), np.float32)
            frames, boxes = resize_clip(frames, gt, self.test_scale)
            x, extra = self._split(frames, False, k, None)
            out = (x, torch.from_numpy(boxes), torch.from_numpy(labels))
            return out if extra is None else out + (extra,)
        # RandomRescale, RandomCrop, Flip move ground truth and proposals alike
        boxes = np.concatenate([gt, k.proposals.astype(np.float32) * px])   # add_gt_as_proposals: gt first
        short = int(rng.integers(self.scale[0], self.scale[1] + 1))
        frames, boxes = resize_clip(frames, boxes, short)
        if self.crop:
            hh, ww = frames.shape[1:3]
            y0 = int(rng.integers(0, hh - self.crop + 1))
            x0 = int(rng.integers(0, ww - self.crop + 1))
            frames = frames[:, y0:y0 + self.crop, x0:x0 + self.crop]
            boxes = boxes - np.array([x0, y0, x0, y0], np.float32)
            boxes = np.clip(boxes, 0, self.crop - 1)
        flipped = bool(rng.random() < self.flip)
        if flipped:
            frames, boxes = flip_clip(frames, boxes)
        g = len(gt)
        assigned = assign_labels(boxes, boxes[:g], k.labels, self.pos_iou)
        pos = np.flatnonzero(assigned >= 0)
        if len(pos) > self.max_rois:
            pos = np.sort(rng.choice(pos, self.max_rois, replace=False))
        chosen, labels = [pos], [k.labels[assigned[pos]]]
        if self.negatives and len(pos) < self.max_rois:
            neg = np.flatnonzero(assigned < 0)
            if len(neg) > self.max_rois - len(pos):
                neg = np.sort(rng.choice(neg, self.max_rois - len(pos), replace=False))
            background = np.zeros((len(neg), k.labels.shape[1]), np.float32)
            background[:, 0] = 1.0
            chosen.append(neg), labels.append(background)
        rows = np.concatenate(chosen)
        x, extra = self._split(frames, flipped, k, rng)
        out = (x, torch.from_numpy(np.ascontiguousarray(boxes[rows], np.float32)),
               torch.from_numpy(np.concatenate(labels).astype(np.float32)))
        return out if extra is None else out + (extra,)

    def _split(self, frames: np.ndarray, flipped: bool, k: AVAKeyframe, rng):
        """Frames after the geometry -> the normalised RGB clip and the stream's part (or None)."""
        from humact.video_models.clips import normalize

        if self.flow is not None:
            from humact.video_models.flow import normalize_flow

            flow = frames[..., 3:]
            if flipped:                # MMAction2's Flip on flow: x flow images inverted (255 - v)
                flow = np.concatenate([255 - flow[..., :1], flow[..., 1:]], axis=-1)
            return normalize(np.ascontiguousarray(frames[..., :3]), self.spec.mean, self.spec.std), \
                normalize_flow(flow)
        x = normalize(np.ascontiguousarray(frames), self.spec.mean, self.spec.std)
        return x, (self._window(k, rng) if self.bank is not None else None)

    @staticmethod
    def collate(items):
        """Items -> ((clips (N, 3, T, h, w), rois (R, 5) with the batch index first), labels (R, C)); with
        flow ((clips, flows (N, 2, T, h, w), rois), labels); with a bank ((clips, rois, lt (R, L, C)),
        labels), each RoI with its keyframe's window."""
        clips = torch.stack([it[0] for it in items])
        rois = torch.cat([torch.cat([torch.full((len(it[1]), 1), float(n)), it[1]], dim=1)
                          for n, it in enumerate(items)])
        labels = torch.cat([it[2] for it in items])
        if len(items[0]) == 3:
            return (clips, rois), labels
        extra = [it[3] for it in items]
        if extra[0].dim() == 4:                                   # flow clips (2, T, h, w)
            return (clips, torch.stack(extra), rois), labels
        lt = torch.cat([e[None].expand(len(it[1]), -1, -1) for e, it in zip(extra, items)])
        return (clips, rois, lt), labels
