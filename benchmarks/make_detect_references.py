"""Regenerate tests/data/detect_mmaction2.json: MMAction2's own AVA test path on a real video.

    .venv/bin/python benchmarks/make_detect_references.py

In the MMAction2 1.2.0 environment `video_backbones.py` sets up (sharing our torch), a worker runs,
for fixed person boxes on keyframes of `../shared/data/media/armwrestling_340x256.mp4`:

- frames decoded with OpenCV as MMAction2's demo does (`cv2.VideoCapture`), turned to RGB as its
  test pipeline's `RawFrameDecode` gives them (the demo itself normalises the BGR frames with the
  RGB mean / std: a demo quirk humact does not copy);
- MMAction2's transforms `SampleAVAFrames(test_mode=True)`, `Resize(scale=(-1, S))` (frames and
  proposals), `Flip(flip_ratio=1)` for the flipped views, `FormatShape('NCTHW', collapse=True)`,
  and its `ActionDataPreprocessor(mean, std)`;
- MMAction2's backbone (`ResNet3dSlowOnly` / `ResNet3dSlowFast`), `SingleRoIExtractor3D`
  (with and without `with_global`) and `BBoxHeadAVA`, weights from the crc32 recipe of
  `humact.io.checkpoints.reference_weights` for every key (loaded strictly by MMAction2).

mmcv-lite has no compiled `mmcv.ops`, so the extractor's RoIAlign op is humact's pure-torch
`roi_align`, whose equality with mmcv's exact CPU kernel is checked separately against
`../shared/reference/mmaction2/*.pt` (`tests/test_slowfast.py`, `tests/test_resnet3d.py`); mmdet
is not installed, and only the name `SamplingResult` (a type hint of BBoxHeadAVA) is stubbed.
The file stores the frame indices, rois, input sums and logits; `tests/test_detect_rgb.py` checks
that `humact.detect.rgb` gives the same from the video file.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import video_backbones as vb  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
VIDEO = ROOT.parent / "shared" / "data" / "media" / "armwrestling_340x256.mp4"

#: keyframe timestamps (s) and fixed boxes (original pixels) shared by every model
KEYFRAMES = [2, 5]
BOXES = [[0.0, 20.0, 200.0, 256.0], [140.0, 0.0, 340.0, 256.0], [120.5, 30.25, 160.0, 110.0]]
TTA = [(224, False), (224, True), (256, False), (256, True), (320, False), (320, True)]

_SLOW = dict(type="ResNet3dSlowOnly", depth=50, pretrained=None, pretrained2d=False, lateral=False, num_stages=4,
             conv1_kernel=(1, 7, 7), conv1_stride_t=1, pool1_stride_t=1, spatial_strides=(1, 2, 2, 1))


def _slowfast(rate: int) -> dict:
    return dict(type="ResNet3dSlowFast", pretrained=None, resample_rate=rate, speed_ratio=rate, channel_ratio=8,
                slow_pathway=dict(type="resnet3d", depth=50, pretrained=None, lateral=True, conv1_kernel=(1, 7, 7),
                                  dilations=(1, 1, 1, 1), conv1_stride_t=1, pool1_stride_t=1, inflate=(0, 0, 1, 1),
                                  spatial_strides=(1, 2, 2, 1)),
                fast_pathway=dict(type="resnet3d", depth=50, pretrained=None, lateral=False, base_channels=8,
                                  conv1_kernel=(5, 7, 7), conv1_stride_t=1, pool1_stride_t=1,
                                  spatial_strides=(1, 2, 2, 1)))


#: humact detector name -> MMAction2 backbone, head in_channels, with_global, sampling, views
MODELS = {
    "slowonly_r50_4x16_ava": dict(backbone=_SLOW, in_channels=2048, with_global=False, clip=(4, 16), views=TTA),
    "slowonly_r50_4x16_context_ava": dict(backbone=_SLOW, in_channels=4096, with_global=True, clip=(4, 16),
                                          views=[(256, False)]),
    "slowfast_r50_4x16_ava": dict(backbone=_slowfast(8), in_channels=2304, with_global=False, clip=(32, 2),
                                  views=[(256, False)]),
    "slowfast_r50_4x16_context_ava": dict(backbone=_slowfast(8), in_channels=4608, with_global=True, clip=(32, 2),
                                          views=[(256, False)]),
    "slowfast_r50_8x8_ava": dict(backbone=_slowfast(4), in_channels=2304, with_global=False, clip=(32, 2),
                                 views=[(256, False)]),
}

#: worker setup shared with benchmarks/detect.py: stubs, MMAction2 imports, the video's RGB frames
PRELUDE = vb.MMACTION_STUB + r'''
import json, sys, types
import numpy as np, torch
from torch import nn
job = json.loads(open(sys.argv[1]).read())
sys.path.insert(0, job["repo"])
for name in ("mmdet", "mmdet.models", "mmdet.models.task_modules", "mmdet.models.task_modules.samplers"):
    m = types.ModuleType(name); m.__path__ = []; sys.modules[name] = m
sys.modules["mmdet.models.task_modules.samplers"].SamplingResult = object
from humact.video_models.roi import roi_align
class RoIAlign(nn.Module):   # stand-in for mmcv.ops.RoIAlign (mmcv-lite has no compiled ops)
    def __init__(self, output_size, spatial_scale, sampling_ratio=0, pool_mode="avg", aligned=True):
        super().__init__(); assert pool_mode == "avg"
        self.args = (output_size, spatial_scale, sampling_ratio, aligned)
    def forward(self, x, rois):
        o, s, r, a = self.args
        return roi_align(x, rois, o, spatial_scale=s, sampling_ratio=r, aligned=a)
ops = types.ModuleType("mmcv.ops"); ops.RoIAlign = RoIAlign; ops.RoIPool = None; sys.modules["mmcv.ops"] = ops
import cv2
from mmaction.utils import register_all_modules
from mmaction.registry import MODELS
register_all_modules()
from mmaction.datasets.transforms import SampleAVAFrames, Resize, Flip, FormatShape
from mmaction.models.data_preprocessors import ActionDataPreprocessor
from mmaction.models.roi_heads.roi_extractors import SingleRoIExtractor3D
from mmaction.models.roi_heads.bbox_heads import BBoxHeadAVA
torch.set_num_threads(2)
cap = cv2.VideoCapture(job["video"]); fps = cap.get(cv2.CAP_PROP_FPS); frames = []
while True:
    ok, f = cap.read()
    if not ok: break
    frames.append(np.ascontiguousarray(f[:, :, ::-1]))     # RGB, as RawFrameDecode
h, w = frames[0].shape[:2]
def tup(d):
    return {k: (tuple(v) if isinstance(v, list) else tup(v) if isinstance(v, dict) else v) for k, v in d.items()}
'''

WORKER = PRELUDE + r'''
out = {"fps": fps, "num_frames": len(frames), "models": {}}
for name, m in job["models"].items():
    backbone = MODELS.build(tup(m["backbone"]))
    extractor = SingleRoIExtractor3D(roi_layer_type="RoIAlign", output_size=8, with_temporal_pool=True,
                                     with_global=m["with_global"])
    head = BBoxHeadAVA(background_class=True, in_channels=m["in_channels"], num_classes=81, multilabel=True,
                       dropout_ratio=0.5)
    sd = torch.load(m["weights"], weights_only=True)
    backbone.load_state_dict({k[9:]: v for k, v in sd.items() if k.startswith("backbone.")}, strict=True)
    head.load_state_dict({k[len("roi_head.bbox_head."):]: v for k, v in sd.items()
                          if k.startswith("roi_head.bbox_head.")}, strict=True)
    assert all(k.startswith(("backbone.", "roi_head.bbox_head.")) for k in sd)
    backbone.eval(); head.eval(); extractor.eval()
    pre = ActionDataPreprocessor(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], format_shape="NCTHW")
    res_m = []
    for ts in job["keyframes"]:
        for short, flip in m["views"]:
            r = dict(fps=int(round(fps)), timestamp=ts, timestamp_start=0, total_frames=len(frames), start_index=0,
                     modality="RGB")
            r = SampleAVAFrames(clip_len=m["clip"][0], frame_interval=m["clip"][1], test_mode=True).transform(r)
            r["imgs"] = [frames[i].copy() for i in r["frame_inds"]]
            # AVADataset always gives gt_bboxes with the proposals; Resize and Flip move proposals only then
            r.update(img_shape=(h, w), original_shape=(h, w), proposals=np.array(job["boxes"], np.float32),
                     gt_bboxes=np.array(job["boxes"], np.float32))
            r = Resize(scale=(-1, short)).transform(r)
            if flip:
                r = Flip(flip_ratio=1.0).transform(r)
            r = FormatShape(input_format="NCTHW", collapse=True).transform(r)
            x = pre({"inputs": [torch.from_numpy(np.ascontiguousarray(r["imgs"]))], "data_samples": None})["inputs"]
            props = torch.from_numpy(np.asarray(r["proposals"], np.float32))
            rois = torch.cat([torch.zeros(len(props), 1), props], dim=1)
            with torch.no_grad():
                feats = backbone(x)
                roi_feats, _ = extractor(feats, rois)
                logits = head(roi_feats)
            res_m.append({"timestamp": ts, "short_side": short, "flip": flip,
                          "frame_inds": [int(i) for i in r["frame_inds"]], "input_shape": list(x.shape),
                          "input_sum": float(x.double().sum()), "input_abs_sum": float(x.double().abs().sum()),
                          "rois": rois.tolist(), "logits": logits.tolist()})
    print(name, "done", flush=True)
    out["models"][name] = res_m
open(job["output"], "w").write(json.dumps(out))
'''


def main() -> None:
    from humact.video_models.ava import build_detector
    from humact.io.checkpoints import reference_weights

    torch.set_num_threads(2)
    vb.setup_env()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        job = {"repo": str(ROOT), "video": str(VIDEO), "keyframes": KEYFRAMES, "boxes": BOXES, "models": {},
               "output": str(tmp / "out.json")}
        for name, m in MODELS.items():
            model, spec = build_detector(name)
            assert spec.clip_len, spec.frame_interval == m["clip"]
            sd = reference_weights((k, v.shape) for k, v in model.state_dict().items())
            torch.save(sd, tmp / f"{name}.pt")
            job["models"][name] = dict(m, weights=str(tmp / f"{name}.pt"))
        (tmp / "job.json").write_text(json.dumps(job))
        p = subprocess.run([str(vb.PY), "-c", WORKER, str(tmp / "job.json")], text=True)
        if p.returncode:
            raise SystemExit("MMAction2 worker failed")
        out = json.loads((tmp / "out.json").read_text())
    out["about"] = ("MMAction2 1.2.0's AVA test path (SampleAVAFrames test mode, Resize (-1, S) of frames and "
                    "proposals, Flip, FormatShape, ActionDataPreprocessor, backbone, SingleRoIExtractor3D, "
                    "BBoxHeadAVA) on ../shared/data/media/armwrestling_340x256.mp4 decoded by OpenCV, frames as "
                    "RGB, with fixed boxes and the crc32 reference_weights recipe; RoIAlign op: humact's "
                    "roi_align (mmcv-lite has no compiled ops). Made by benchmarks/make_detect_references.py.")
    out["boxes"] = BOXES
    out["keyframes"] = KEYFRAMES
    (DATA / "detect_mmaction2.json").write_text(json.dumps(out, separators=(",", ":")))
    print("wrote", DATA / "detect_mmaction2.json")


if __name__ == "__main__":
    main()
