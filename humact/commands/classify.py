"""`humact classify VIDEO --model NAME --checkpoint PATH`: video-level action recognition with an RGB 3D CNN.

Samples the model's test clips (e.g. 10 clips of 8 x 8 frames for SlowOnly), decodes
only the frames those clips use, builds the test views (short side 256, three crops
or a centre crop), averages the clip probabilities and prints the top-5 actions.

The checkpoint is an MMAction2 / PYSKL `.pth` (`backbone.*`, `cls_head.*`; loaded with
`weights_only=True`) or a `.safetensors` written by humact's trainer; it must match the
named architecture exactly. Class names come from `--labels` (one per line, in class
order), else from the safetensors' JSON (`classes`), else they are numbered.
"""

from __future__ import annotations

import argparse

HELP = "classify the action in a video with a 3D CNN (SlowOnly, SlowFast, I3D, CSN)"


def add_parser(subparsers) -> None:
    from humact.video_models.zoo import MODELS

    p = subparsers.add_parser("classify", help=HELP, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", metavar="VIDEO", help="the video file")
    p.add_argument("--model", required=True, choices=sorted(MODELS), metavar="NAME",
                   help="architecture: " + ", ".join(sorted(MODELS)))
    p.add_argument("--checkpoint", metavar="PATH",
                   help="MMAction2 .pth or humact .safetensors weights for that architecture (required)")
    p.add_argument("--labels", metavar="FILE", help="class names, one per line")
    p.add_argument("--clips", type=int, help="number of test clips (default: the model's, usually 10)")
    p.add_argument("--top", type=int, default=5, help="how many actions to print (default: %(default)s)")
    p.add_argument("--json", metavar="OUT", help="also write the scores to this JSON file")
    p.add_argument("--threads", type=int, default=2, help="CPU threads (default: %(default)s)")
    p.set_defaults(func=run)


def _read_weights(path, user_error):
    """(state dict, meta) from a .pth/.pt (MMAction2) or .safetensors (+ .json) checkpoint."""
    from pathlib import Path

    import torch

    path = Path(path)
    if not path.is_file():
        raise user_error(f"{path}: checkpoint not found")
    if path.suffix == ".safetensors":
        from humact.io.checkpoints import load_checkpoint

        return load_checkpoint(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for foreign / corrupt files
        raise user_error(f"{path}: not a PyTorch checkpoint loadable with weights_only=True ({e})") from e
    return ckpt, {}


def run(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    import numpy as np
    import torch
    from tqdm import tqdm

    from humact.cli import UserError
    from humact.io.atomic import atomic_write
    from humact.video import VideoError, probe, read_frames
    from humact.video_models import zoo
    from humact.video_models.clips import clip_views, sample_frames
    from humact.video_models.recognizer import checkpoint_filter_fn, load_mmaction2_recognizer

    if not args.checkpoint:
        raise UserError(f"--checkpoint is required: {args.model} has no built-in weights, and random weights "
                        "would only pretend to classify (give an MMAction2 .pth or a humact .safetensors)")
    torch.set_num_threads(args.threads)
    entry = zoo.get(args.model)
    spec = entry.spec
    num_clips = args.clips or spec.num_clips
    if num_clips < 1:
        raise UserError(f"--clips must be >= 1, got {num_clips}")

    state_dict, meta = _read_weights(args.checkpoint, UserError)
    sd = checkpoint_filter_fn(state_dict)
    # MMAction2 1.x may store the normalisation it was trained with; it wins over the config default.
    raw = state_dict.get("state_dict", state_dict)
    mean, std = (raw.get(k, raw.get("module." + k)) for k in ("data_preprocessor.mean", "data_preprocessor.std"))
    if mean is not None and std is not None and mean.numel() == 3 and std.numel() == 3:
        import dataclasses

        spec = dataclasses.replace(spec, mean=tuple(mean.flatten().tolist()), std=tuple(std.flatten().tolist()))
    if "cls_head.fc_cls.weight" not in sd:
        raise UserError(f"{args.checkpoint}: no 'cls_head.fc_cls.weight' (not a recognizer checkpoint?)")
    num_classes = int(sd["cls_head.fc_cls.weight"].shape[0])
    model = entry.build(num_classes=num_classes)
    try:
        load_mmaction2_recognizer(model, {k: v for k, v in sd.items()})
    except ValueError as e:
        raise UserError(f"{args.checkpoint}: does not fit --model {args.model}: {e}") from e
    from humact.deploy import fuse

    model = fuse(model.eval())

    if args.labels:
        labels = [line.strip() for line in Path(args.labels).read_text().splitlines() if line.strip()]
        if len(labels) != num_classes:
            raise UserError(f"{args.labels}: {len(labels)} labels, but the checkpoint has {num_classes} classes")
    elif isinstance(meta.get("classes"), list) and len(meta["classes"]) == num_classes:
        labels = [str(c) for c in meta["classes"]]
    else:
        labels = [f"class {i}" for i in range(num_classes)]

    try:
        video = probe(args.video)
        clips = sample_frames(video.num_frames, clip_len=spec.clip_len, frame_interval=spec.frame_interval,
                              num_clips=num_clips, test_mode=True)
        frames = dict(read_frames(args.video, indices=np.unique(clips)))
    except VideoError as e:
        raise UserError(str(e)) from e

    probs = []
    with torch.no_grad():
        for clip in tqdm(clips, desc="clips", unit="clip", leave=False):
            views = clip_views(frames, clip[None], spec)
            probs.append(model(views).softmax(-1).mean(0))
    score = torch.stack(probs).mean(0)
    top = torch.topk(score, min(args.top, num_classes))
    print(f"{args.video}: {args.model}, {num_clips} clips x {spec.views_per_clip} views, "
          f"{len(frames)} of {video.num_frames} frames decoded")
    for rank, (p, i) in enumerate(zip(top.values.tolist(), top.indices.tolist()), 1):
        print(f"{rank}. {labels[i]}  {p:.4f}")
    if args.json:
        out = {"video": str(args.video), "model": args.model, "checkpoint": str(args.checkpoint),
               "num_clips": num_clips, "top": [{"label": labels[i], "index": i, "score": p}
                                              for p, i in zip(top.values.tolist(), top.indices.tolist())],
               "scores": score.tolist(), "labels": labels}
        with atomic_write(args.json) as f:
            json.dump(out, f, indent=1)
    return 0
