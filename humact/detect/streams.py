"""The extra streams of `humact detect` on an AVA detector: `--lfb`, `--arm-rois`, `--flow`, `--audio`.

Per keyframe (the detector's test clip, `keyframes.ava_clip_indices`, resized and normalised by
`rgb.prepare_clip`):

    person boxes (+ arm boxes from the track's COCO keypoints, --arm-rois)
      --backbone, RoIAlign (one pass for both)--> RoI features
      person RoIs --classify--> logits, or with --lfb: pooled into the feature bank (pass 1), then
        each RoI with its bank window through the FBO head (pass 2: no second backbone pass, the
        bank holds the short-term features in float32)
      arm RoIs --ArmHead--> arm scores, merged into their owner's scores for the merge classes
      --flow: the video's flow images (REL.flow/, `humact flow`'s format, extracted once and reused)
        at the same frames --flow SlowOnly detector--> scores averaged with the RGB ones
      --audio: the 1-s log-mel window at the keyframe --AudioCNN--> audible classes' scores mixed in
        (a video without an audio track: the stream is off, and the output says so)

Weights: the AVA detector's `--checkpoint` (with --lfb: an MMAction2 LFB checkpoint, e.g.
`slowonly-lfb-nl_..._ava21-rgb`), or `random` (seeded, untrained: for running, the output says so).
The arm head, flow detector and audio CNN take `--arm-checkpoint` (humact safetensors),
`--flow-checkpoint` (an MMAction2-layout AVA detector on 2-channel flow) and `--audio-checkpoint`
(humact safetensors); without one each runs with random weights, and the model name says so.
`report` holds the time per keyframe of each stream and the peak memory, for the command's note.
"""

from __future__ import annotations

import os
import re
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from humact.errors import CheckpointError, InputError, UsageError

__all__ = ["RANDOM", "StreamOptions", "StreamScorer", "load_stream_scorer"]

#: `--checkpoint` value that runs a detector with seeded random weights
RANDOM = "random"
LFB_MODELS = {"slowonly_r50_4x16_ava": "lfb_nl_slowonly_r50_ava", "slowfast_r50_4x16_ava": "lfb_slowfast_r50_ava"}


@dataclass
class StreamOptions:
    """Which extra streams run, and their settings (see the module docstring)."""

    lfb: bool = False
    lfb_fbo: str = "non_local"
    lfb_window: int | None = None        # None: a trained checkpoint's window, else 100
    lfb_max_per_second: int | None = None  # None: a trained checkpoint's, else 5
    arm_rois: bool = False
    arm_config: str | None = None
    arm_checkpoint: str | None = None
    flow: bool = False
    flow_method: str = "dis"
    flow_checkpoint: str | None = None
    audio: bool = False
    audio_checkpoint: str | None = None
    audio_weight: float = 0.5

    @property
    def any(self) -> bool:
        return self.lfb or self.arm_rois or self.flow or self.audio


def _random_init(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                fan_in = int(np.prod(p.shape[1:]))
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 / fan_in) ** 0.5)
            elif name.endswith("weight"):
                p.fill_(1.0)
            else:
                p.zero_()
    return model


def _load_ours(model: torch.nn.Module, path: str, what: str) -> torch.nn.Module:
    from humact.io.checkpoints import load_checkpoint, load_strict

    tensors, _ = load_checkpoint(path)
    return load_strict(model, tensors, f"{path} ({what})")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass
class StreamScorer:
    """An AVA detector with extra streams; `score_video` has `rgb.DetectorSet`'s signature plus the
    tracks (for arm boxes) and the output base path (for the bank and the flow images)."""

    model: torch.nn.Module
    spec: object
    name: str
    options: StreamOptions
    labels: tuple[str, ...]
    class_ids: np.ndarray
    sampling: str = "test"
    arm: object = None
    arm_config: object = None
    flow_model: torch.nn.Module | None = None
    audio_model: torch.nn.Module | None = None
    weights_note: str = ""
    report: list[str] = field(default_factory=list)
    #: `model` is an RGB + flow detector (`TwoStreamDetector`): it takes the flow clip itself
    two_stream: bool = False
    #: the flow extraction settings (a trained RGB + flow checkpoint's; else --flow-method's)
    flow_spec: object = None
    #: the frozen short-term detector whose features fill the bank (a trained LFB checkpoint's); None:
    #: the LFB detector's own short-term features
    bank_detector: object = None
    bank_fingerprint: dict = field(default_factory=dict)
    bank_dtype: str = "float32"
    lfb_window: int = 100
    lfb_max_per_second: int = 5

    @torch.no_grad()
    def score_video(self, video, meta, keyframes, boxes, *, progress: bool = False, desc: str = "",
                    tracks=None, track_rows: np.ndarray | None = None,
                    out_base: str | os.PathLike | None = None) -> tuple[np.ndarray, list[str]]:
        """(R, C) scores of every box (background dropped); `tracks` + `track_rows` (R,) (the box's row
        in `tracks`, -1 for none) give the arm boxes' keypoints; `out_base` + ".lfb" / ".flow" hold the
        bank and the flow images (default: beside the video)."""
        from humact.detect.keyframes import ava_clip_indices
        from humact.detect.rgb import prepare_clip
        from humact.progress import progress as bar
        from humact.video import read_frames
        from humact.video_models.arms import arm_boxes, merge_arm_scores

        o = self.options
        base = Path(out_base) if out_base is not None else Path(video).with_suffix("")
        times: dict[str, float] = {"rgb": 0.0, "lfb": 0.0, "arms": 0.0, "flow": 0.0, "audio": 0.0}
        self.report = []
        num_c = len(self.labels) + 1
        probs = np.zeros((len(boxes), num_c), np.float64)
        pending: dict[int, dict] = {}
        ks = [k for k in range(len(keyframes)) if boxes.on(k).size]
        flow_dir = None
        if o.flow:
            from humact.video_models.flow import FlowSpec, extract_flow

            t = time.perf_counter()
            flow_dir = Path(f"{base}.flow")
            r = extract_flow(video, flow_dir, self.flow_spec or FlowSpec(method=o.flow_method))
            times["flow_extract"] = time.perf_counter() - t
            how = "reused" if not r.computed else f"{r.computed} computed, {o.flow_method}"
            self.report.append(f"flow: {r.pairs} pairs in {flow_dir} ({how})")
        bank = vid = None
        if o.lfb:
            from humact.video_models.lfb import FeatureBank, pool_roi_features

            fbo = self.model.roi_head.shared_head.fbo
            channels = fbo.lt_feat_conv.in_channels if hasattr(fbo, "lt_feat_conv") else fbo.out_channels
            vid = re.sub(r"[^A-Za-z0-9_.,=+-]", "_", Path(video).stem) or "video"
            sha = __import__("hashlib").sha256(np.ascontiguousarray(boxes.boxes).tobytes()).hexdigest()[:16]
            made_by = self.bank_fingerprint or {"model": self.name}
            # float32: pass 2 reads the short-term features back; a bank detector's bank is stored as the
            # one the LFB detector trained on (its dtype, float16)
            bank = FeatureBank(f"{base}.lfb", channels=channels, dtype=self.bank_dtype,
                               fingerprint=made_by | {"sampling": self.sampling, "boxes": sha})
            todo = set(bank.todo(vid, keyframes.timestamps[ks].tolist()))
            writer = bank.writer(vid, keyframes.timestamps[ks].tolist())
        n_arms = 0
        audio_scores = None
        if o.audio:
            from humact.video_models.audio import AudioStream

            t = time.perf_counter()
            stream = AudioStream(video, self.audio_model, weights_note=self.weights_note_of("audio"))
            self.report.append(stream.message)
            if stream.available:
                audio_scores = stream.scores(keyframes.times[ks]).double().numpy()
            times["audio"] += time.perf_counter() - t
        t_start = time.perf_counter()
        with bar(total=len(ks), desc=f"{desc} keyframes", unit="keyframe", enabled=progress) as shown:
            for k in ks:
                rows = boxes.on(k)
                center = int(keyframes.frames[k])
                idx = ava_clip_indices(center, meta.num_frames, clip_len=self.spec.clip_len,
                                       frame_interval=self.spec.frame_interval, mode=self.sampling)
                ts = int(keyframes.timestamps[k])
                if bank is not None and ts not in todo and not o.arm_rois and not o.flow \
                        and self.bank_detector is None:
                    shown.update()
                    continue           # the bank has this second; nothing else needs the clip
                t = time.perf_counter()
                nested = times["arms"] + times["lfb"]
                bd = self.bank_detector
                bank_idx = idx if bd is None else ava_clip_indices(
                    center, meta.num_frames, clip_len=bd.spec.clip_len, frame_interval=bd.spec.frame_interval,
                    mode=self.sampling)
                need = sorted(set(idx.tolist()) | set(bank_idx.tolist()))
                frames = dict(read_frames(video, indices=need))
                missing = set(need) - set(frames)
                if missing:
                    raise InputError(f"{video}: frame {min(missing)} could not be decoded")
                clip = np.stack([frames[int(i)] for i in idx])
                arms = None
                person = boxes.boxes[rows]
                all_boxes = person
                if o.arm_rois:
                    ta = time.perf_counter()
                    kp, sc = self._keypoints(tracks, None if track_rows is None else track_rows[rows], center)
                    arms = arm_boxes(kp, sc, (meta.width, meta.height), threshold=self.arm_config.threshold,
                                     enlarge=self.arm_config.enlarge)
                    all_boxes = np.concatenate([person, arms.boxes]) if len(arms) else person
                    n_arms += len(arms)
                    times["arms"] += time.perf_counter() - ta
                x, rois = prepare_clip(clip, all_boxes, self.spec)
                if self.two_stream:       # RGB + flow in one detector: the flow clip at the same frames
                    from humact.video_models.flow import read_flow_clip

                    fx = read_flow_clip(flow_dir, idx, channels=2, size=tuple(x.shape[-2:]))[None]
                    pending[k] = {"rows": rows, "rgb": self.model.predict(x, fx, rois).double().numpy()}
                    times["rgb"] += time.perf_counter() - t
                    shown.update()
                    continue
                feats = self.model.forward_features(x)
                roi_feats = self.model.roi_features(feats, rois)
                p_feats, a_feats = roi_feats[:len(rows)], roi_feats[len(rows):]
                entry: dict = {"rows": rows}
                if bank is not None:
                    tl = time.perf_counter()
                    st = pool_roi_features(p_feats).flatten(1)                 # LFBInferHead's, float32
                    if bd is not None:
                        entry["st"] = st
                        if ts in todo:      # the bank detector's own clip and short side
                            bx, brois = prepare_clip(np.stack([frames[int(i)] for i in bank_idx]), person, bd.spec)
                            writer.add(ts, pool_roi_features(bd.roi_features(bx, brois)).flatten(1))
                    elif ts in todo:
                        writer.add(ts, st)
                    times["lfb"] += time.perf_counter() - tl
                else:
                    entry["rgb"] = torch.sigmoid(self.model.classify(p_feats)).double().numpy()
                if arms is not None and len(arms):
                    ta = time.perf_counter()
                    entry["arm"] = (torch.sigmoid(self.arm(a_feats)), arms.person)
                    times["arms"] += time.perf_counter() - ta
                times["rgb"] += time.perf_counter() - t - (times["arms"] + times["lfb"] - nested)
                if flow_dir is not None:
                    from humact.video_models.flow import read_flow_clip

                    tf = time.perf_counter()
                    fx = read_flow_clip(flow_dir, idx, channels=2, size=tuple(x.shape[-2:]))[None]
                    entry["flow"] = torch.sigmoid(self.flow_model(fx, rois[:len(rows)])).double().numpy()
                    times["flow"] += time.perf_counter() - tf
                pending[k] = entry
                shown.update()
        if bank is not None:
            writer.close()
            tl = time.perf_counter()
            for k in ks:
                rows = boxes.on(k)
                ts = int(keyframes.timestamps[k])
                st = pending.get(k, {}).get("st")
                held = bank.read(vid, ts)
                st = held if st is None else st
                if st is None or held is None or len(held) != len(rows):
                    raise InputError(f"{base}.lfb: second {ts}: the bank does not hold this keyframe's "
                                     f"{len(rows)} boxes; delete the folder to rebuild it")
                lt = bank.windows([(vid, ts)] * len(rows), window_size=self.lfb_window,
                                  max_per_second=self.lfb_max_per_second)
                logits = self.model.classify(st[:, :, None, None, None], lt)
                pending.setdefault(k, {"rows": rows})["rgb"] = torch.sigmoid(logits).double().numpy()
            times["lfb"] += time.perf_counter() - tl
            self.report.append(f"lfb: bank {bank.video_dir(vid)} ({len(bank.seconds(vid))} s; "
                               f"{'reused' if not todo else f'{len(todo)} s computed'}), window {self.lfb_window} s, "
                               f"fbo {self.model.roi_head.shared_head.fbo_type}"
                               + (f", filled by {self.bank_fingerprint['model']}" if bd is not None else ""))
        if o.arm_rois:
            self.report.append(f"arms: {n_arms} arm boxes on {len(ks)} keyframes ({len(boxes)} person boxes), "
                               f"{len(self.arm_config.merge_classes)} merged classes")
        audible = None
        if audio_scores is not None:
            from humact.video_models.audio import AUDIBLE_CLASSES, fuse_audio_scores

            audible = list(AUDIBLE_CLASSES)
        for j, k in enumerate(ks):
            e = pending[k]
            p = torch.from_numpy(e["rgb"])
            if "flow" in e:
                p = (p + torch.from_numpy(e["flow"])) / 2
            if "arm" in e:
                arm_p, owner = e["arm"]
                p = merge_arm_scores(p, arm_p.double(), owner, self.arm_config.candidates,
                                     self.arm_config.merge_classes, mode=self.arm_config.merge)
            if audible is not None:
                p = fuse_audio_scores(p, torch.from_numpy(audio_scores[j]), audible, weight=o.audio_weight)
            probs[e["rows"]] = p.numpy()
        n = max(len(ks), 1)
        wall = time.perf_counter() - t_start + times.get("flow_extract", 0.0) + times["audio"]
        on = {"rgb": True, "lfb": o.lfb, "arms": o.arm_rois, "flow": o.flow, "audio": o.audio}
        parts = ", ".join(f"{s} {times[s] / n:.2f}" for s in on if on[s])
        extract = f" + flow extraction {times['flow_extract']:.1f} s" if "flow_extract" in times else ""
        self.report.append(f"per keyframe: {wall / n:.2f} s over {len(ks)} keyframes ({parts} s){extract}; "
                           f"peak RSS {_peak_rss_mib():.0f} MiB; weights: {self.weights_note}")
        return probs[:, 1:].astype(np.float32), [""] * len(boxes)

    def weights_note_of(self, part: str) -> str:
        return "random weights" if f"{part}: random" in self.weights_note else "trained weights"

    @staticmethod
    def _keypoints(tracks, rows, frame: int):
        """COCO keypoints and scores at `frame` of the track rows (zeros: no track, no arm box)."""
        n = 0 if rows is None else len(rows)
        kp, sc = np.zeros((n, 17, 2), np.float32), np.zeros((n, 17), np.float32)
        if tracks is None or rows is None:
            return kp, sc
        for i, m in enumerate(rows):
            if 0 <= m < len(tracks.track_ids) and 0 <= frame < tracks.keypoints.shape[1]:
                kp[i], sc[i] = tracks.keypoints[m, frame], tracks.keypoint_scores[m, frame]
        return kp, sc


def load_stream_scorer(name: str, checkpoint: str, options: StreamOptions, *, label_map: str | None = None,
                       sampling: str = "test", tta: bool = False) -> StreamScorer:
    """The AVA detector `name` with `options`' streams (see the module docstring)."""
    from humact.deploy import fuse
    from humact.video_models.ava import DETECTORS, build_detector, detector_stream

    if tta:
        raise UsageError("--tta is not combined with --lfb / --arm-rois / --flow / --audio")
    if name not in DETECTORS:
        build_detector(name)                                   # the usage error naming the known ones
    spec = DETECTORS[name][2]
    kind = detector_stream(name)
    ours = checkpoint != RANDOM and str(checkpoint).endswith(".safetensors")
    if kind == "lfb" and not options.lfb or kind == "flow" and not options.flow:
        raise UsageError(f"--model {name}: this detector reads {'a feature bank' if kind == 'lfb' else 'flow'}; "
                         f"add --{kind}")
    if kind == "flow" and (options.lfb or options.arm_rois):
        raise UsageError(f"--model {name}: an RGB + flow detector runs with --flow (and --audio), not with "
                         "--lfb or --arm-rois")
    if ours and options.lfb and kind != "lfb":
        raise UsageError(f"--lfb with {checkpoint}: a `humact train` checkpoint with a feature bank is an LFB "
                         f"detector's (--model lfb_nl_slowonly_r50_4x16_ava, ...), not {name}'s")
    notes = []
    classes: dict = {}
    meta: dict = {}
    bank_detector, bank_fingerprint, bank_dtype = None, {}, "float32"
    window, per_second = 100, 5
    flow_spec = None
    if ours:
        from humact.detect.rgb import load_trained
        from humact.io.download import fetch

        model, spec, classes, meta = load_trained(name, fetch(checkpoint))
        label = name
    elif kind == "flow":
        if checkpoint != RANDOM:
            raise CheckpointError(f"--checkpoint {checkpoint}: {name} has no MMAction2 checkpoint; give the "
                                  "model.safetensors `humact train` wrote, or random")
        model, spec = build_detector(name)
        _random_init(model)
        label = name
    elif options.lfb:
        from humact.video_models import lfb as lfbm

        if kind == "lfb":
            model, spec = build_detector(name)
            label = name
        elif name in LFB_MODELS:
            model = getattr(lfbm, LFB_MODELS[name])(fbo=options.lfb_fbo)
            label = f"{LFB_MODELS[name]}({options.lfb_fbo})"
        else:
            raise UsageError(f"--lfb: the feature bank runs with {' or '.join(LFB_MODELS)} or an lfb_* detector, "
                             f"not {name}")
        if checkpoint == RANDOM:
            _random_init(model)
        else:
            from humact.io.download import fetch

            lfbm.load_mmaction2_lfb_detector(model, fetch(checkpoint))
    elif checkpoint == RANDOM:
        model, spec = build_detector(name)
        _random_init(model)
        label = name
    else:
        from humact.detect.rgb import load_detector

        d = load_detector(name, checkpoint, fast=False)
        model, spec, label = d.model, d.spec, name
    notes.append(f"detector: {'random (seed 0, untrained)' if checkpoint == RANDOM else checkpoint}")
    if "bank" in meta:
        from humact.detect.rgb import load_detector
        from humact.io.download import sha256_file

        b = meta["bank"]
        try:
            bank_ckpt, sha = str(b["checkpoint"]), str(b["checkpoint_sha256"])
            window, per_second = int(b["window"]), int(b["max_per_second"])
            bank_model = str(b["model"])
            bank_dtype = str(b["dtype"])
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(f"{checkpoint}.json: bank: {e!r}") from None
        if not Path(bank_ckpt).is_file():
            raise CheckpointError(f"{checkpoint}: its feature bank was filled by {bank_model} from {bank_ckpt}, "
                                  "which is not there any more: pass 1 needs that detector")
        if sha256_file(bank_ckpt) != sha:
            raise CheckpointError(f"{checkpoint}: {bank_ckpt} changed since training (sha256 differs): the bank "
                                  "detector must be the one the LFB detector was trained with")
        bank_detector = load_detector(bank_model, bank_ckpt)
        bank_fingerprint = {"model": bank_model, "checkpoint_sha256": sha}
        notes.append(f"bank: {bank_model} {bank_ckpt}")
    if "flow" in meta:
        from humact.video_models.flow import FlowSpec

        try:
            flow_spec = FlowSpec(**meta["flow"])
        except TypeError as e:
            raise CheckpointError(f"{checkpoint}.json: flow: {e}") from None
    window = options.lfb_window or window
    per_second = options.lfb_max_per_second or per_second
    model.eval()
    model = fuse(model)
    num_classes = int(model.num_classes if kind == "flow" else model.roi_head.bbox_head.fc_cls.out_features)
    arm = arm_config = flow_model = audio_model = None
    if options.arm_rois:
        from humact.video_models.arms import ArmHead, load_arm_config

        arm_config = load_arm_config(options.arm_config) if options.arm_config else load_arm_config()
        # the arm RoIs' features are the detector's own RoI features (the short-term ones with --lfb)
        head = model.roi_head
        c = head.shared_head.out_channels - head.shared_head.fbo.out_channels if options.lfb \
            else head.bbox_head.in_channels
        arm = ArmHead(in_channels=c, class_ids=arm_config.candidates)
        if options.arm_checkpoint:
            _load_ours(arm, options.arm_checkpoint, "arm head")
        else:
            _random_init(arm, 1)
        arm.eval()
        notes.append(f"arms: {options.arm_checkpoint or 'random (untrained)'}")
        label += "+arms"
    if options.flow and kind != "flow":
        from humact.video_models.flow import flow_slowonly_r50_ava

        flow_model = flow_slowonly_r50_ava(in_channels=2, num_classes=num_classes)
        if options.flow_checkpoint:
            from humact.io.checkpoints import load_foreign
            from humact.io.download import fetch

            load_foreign(flow_model, fetch(options.flow_checkpoint))
        else:
            _random_init(flow_model, 2)
        flow_model = fuse(flow_model.eval())
        notes.append(f"flow: {options.flow_checkpoint or 'random (untrained)'}")
        label += "+flow"
    if options.audio:
        from humact.video_models.audio import AudioCNN

        audio_model = AudioCNN()
        if options.audio_checkpoint:
            _load_ours(audio_model, options.audio_checkpoint, "audio CNN")
        else:
            _random_init(audio_model, 3)
        audio_model.eval()
        notes.append(f"audio: {options.audio_checkpoint or 'random (untrained)'}")
        label += "+audio"
    ids = np.arange(1, num_classes, dtype=np.int64)
    names_of = dict(classes)
    if label_map:
        from humact.eval.ava import read_label_map

        names_of = read_label_map(label_map).as_dict()
    labels = tuple(names_of.get(int(i), f"action {int(i)}") for i in ids)
    untrained = any("random" in n for n in notes)
    if untrained:
        label += " [untrained weights: scores are not meaningful]"
    return StreamScorer(model, spec, label, options, labels, ids, sampling=sampling, arm=arm, arm_config=arm_config,
                        flow_model=flow_model, audio_model=audio_model, weights_note="; ".join(notes),
                        two_stream=kind == "flow", flow_spec=flow_spec, bank_detector=bank_detector,
                        bank_fingerprint=bank_fingerprint, bank_dtype=bank_dtype, lfb_window=window,
                        lfb_max_per_second=per_second)
