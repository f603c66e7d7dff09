"""Regenerate tests/data/avaparts_mmaction2.json: MMAction2's own LFB / ACRN / TSN modules, for parity tests.

    .venv/bin/python benchmarks/make_lfb_references.py

Runs MMAction2 1.2.0 in the environment `video_backbones.py` sets up (torch shared with
humact's venv, `--no-deps`). mmdet is not installed there, so the AVA detectors themselves
(mmdet's `FastRCNN`) are not built; their parts are, straight from MMAction2's module files:

- `FBOHead` (`fbo_cfg` types `non_local`, `avg`, `max`) with its real `LFB` reading a bank
  written as MMAction2's `lfb_train.pkl`, on small channel counts: outputs for 4 RoIs whose
  windows cover a full, a partial, a negative-second and an empty stretch of the bank;
- `ACRNHead` on small channels (output of the relation map);
- the 2D `ResNet` (depth 50) + `TSNHead` of MMAction2's TSN, 3 segments: logits;
- the key layouts (key -> shape, as `sha256` of the sorted listing and the key count) of the
  full-size models: `slowonly-lfb-nl/avg/max` (backbone `ResNet3dSlowOnly` + `FBOHead` +
  `BBoxHeadAVA`), `slowfast-acrn` 8x8 (`ResNet3dSlowFast` + `ACRNHead` + `BBoxHeadAVA`), TSN
  R50/101/152 (`ResNet` + `TSNHead`), SlowOnly-R50 flow (`in_channels=2`). `BBoxHeadAVA` needs
  mmdet to import; its two keys (`fc_cls.weight` (81, C), `fc_cls.bias` (81,)) are added from
  the config's `in_channels`.

Weights: `humact.io.checkpoints.reference_weights` for every key (MMAction2 loads them
strictly); inputs from seeded generators, recipes in the JSON. The tests rebuild both.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import video_backbones as vb  # noqa: E402

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
OUT = DATA / "avaparts_mmaction2.json"

#: the small FBO configuration of the parity check (recipes shared with tests/test_lfb.py through the JSON)
FBO_SMALL = dict(channels=64, latent=16, layers=2, window_size=10, max_per_second=3, rois=4)
BANK_PLAN = {  # video -> [(second, number of features)]; never more than max_per_second (upstream samples randomly)
    "vidA": [(895, 3), (896, 1), (898, 2), (899, 3), (900, 3), (901, 2), (904, 1), (905, 3), (907, 2), (912, 3)],
    "vidB": [(0, 2), (1, 3), (2, 1), (5, 2)],
}
ROI_KEYS = [("vidA", 900), ("vidA", 908), ("vidB", 2), ("vidA", 960)]

WORKER = vb.MMACTION_STUB + r'''
import json, sys, types, tempfile, os, hashlib
import torch
from mmaction.utils import register_all_modules
from mmaction.registry import MODELS
register_all_modules()
from mmaction.models.roi_heads.shared_heads.fbo_head import FBOHead
from mmaction.models.roi_heads.shared_heads.acrn_head import ACRNHead

job = json.loads(sys.argv[1])
inp = torch.load(job["inputs"], weights_only=True)
W = torch.load(job["weights"], weights_only=True)
out = {"keys": {}, "fbo": {}}
small = job["fbo_small"]

def tup(d):
    return {k: (tuple(v) if isinstance(v, list) else tup(v) if isinstance(v, dict) else v) for k, v in d.items()}

def keys_of(parts):
    return [[p + k, list(v.shape)] for p, mod in parts for k, v in mod.state_dict().items()]

d = tempfile.mkdtemp()
torch.save(inp["bank"], os.path.join(d, "lfb_train.pkl"))
lfb_cfg = dict(lfb_prefix_path=d, max_num_sampled_feat=small["max_per_second"], window_size=small["window_size"],
               lfb_channels=small["channels"], dataset_modes=("train",), device="cpu")
metas = [{"img_key": f"{v},{s:04d}"} for v, s in job["roi_keys"]]
rois = torch.cat([torch.arange(len(metas), dtype=torch.float32)[:, None], torch.zeros(len(metas), 4)], 1)
for t in ("non_local", "avg", "max"):
    head = FBOHead(lfb_cfg=lfb_cfg, fbo_cfg=dict(type=t, st_feat_channels=small["channels"],
                   lt_feat_channels=small["channels"], latent_channels=small["latent"], num_st_feat=1,
                   num_lt_feat=small["window_size"] * small["max_per_second"], num_non_local_layers=small["layers"],
                   st_feat_dropout_ratio=0.2, lt_feat_dropout_ratio=0.2, pre_activate=True))
    if t == "non_local":
        head.load_state_dict(W["fbo_small"], strict=True)
    head.eval()
    with torch.no_grad():
        y = head(inp["fbo_x"], rois, metas)
    out["fbo"][t] = y.flatten(1).tolist()

acrn = ACRNHead(in_channels=2 * inp["acrn_x"].shape[1], out_channels=inp["acrn_x"].shape[1])
acrn.load_state_dict(W["acrn_small"], strict=True)
acrn.eval()
with torch.no_grad():
    out["acrn"] = acrn(inp["acrn_x"], inp["acrn_feat"], inp["acrn_rois"]).tolist()

tsn_bb = MODELS.build(dict(type="ResNet", depth=50, pretrained=None, norm_eval=False))
tsn_head = MODELS.build(dict(type="TSNHead", num_classes=10, in_channels=2048, spatial_type="avg",
                             consensus=dict(type="AvgConsensus", dim=1), dropout_ratio=0.4))
tsn_bb.load_state_dict({k[9:]: v for k, v in W["tsn"].items() if k.startswith("backbone.")}, strict=True)
tsn_head.load_state_dict({k[9:]: v for k, v in W["tsn"].items() if k.startswith("cls_head.")}, strict=True)
tsn_bb.eval(); tsn_head.eval()
with torch.no_grad():
    f = tsn_bb(inp["tsn_x"])
    out["tsn_feat_mean"] = f.mean((2, 3))[:, :64].tolist()
    out["tsn_feat_sum"] = f.double().sum((1, 2, 3)).tolist()
    out["tsn_logits"] = tsn_head(f, num_segs=inp["tsn_x"].shape[0]).tolist()

slowonly_ava = dict(type="ResNet3dSlowOnly", depth=50, pretrained=None, pretrained2d=False, lateral=False,
                    num_stages=4, conv1_kernel=(1, 7, 7), conv1_stride_t=1, pool1_stride_t=1,
                    spatial_strides=(1, 2, 2, 1))
for t, cls_in in (("non_local", 2560), ("avg", 4096), ("max", 4096)):
    head = FBOHead(lfb_cfg=lfb_cfg, fbo_cfg=dict(type=t, st_feat_channels=2048, lt_feat_channels=2048,
                   latent_channels=512, num_st_feat=1, num_lt_feat=300, num_non_local_layers=2,
                   st_feat_dropout_ratio=0.2, lt_feat_dropout_ratio=0.2, pre_activate=True))
    ks = keys_of([("backbone.", MODELS.build(tup(slowonly_ava))), ("roi_head.shared_head.", head)])
    out["keys"][f"lfb_{t}_slowonly_r50_ava"] = ks + [["roi_head.bbox_head.fc_cls.weight", [81, cls_in]],
                                                    ["roi_head.bbox_head.fc_cls.bias", [81]]]
sf = dict(type="ResNet3dSlowFast", pretrained=None, resample_rate=4, speed_ratio=4, channel_ratio=8,
          slow_pathway=dict(type="resnet3d", depth=50, pretrained=None, lateral=True, fusion_kernel=7,
                            conv1_kernel=(1, 7, 7), dilations=(1, 1, 1, 1), conv1_stride_t=1, pool1_stride_t=1,
                            inflate=(0, 0, 1, 1), spatial_strides=(1, 2, 2, 1)),
          fast_pathway=dict(type="resnet3d", depth=50, pretrained=None, lateral=False, base_channels=8,
                            conv1_kernel=(5, 7, 7), conv1_stride_t=1, pool1_stride_t=1, spatial_strides=(1, 2, 2, 1)))
ks = keys_of([("backbone.", MODELS.build(tup(sf))), ("roi_head.shared_head.", ACRNHead(in_channels=4608, out_channels=2304))])
out["keys"]["slowfast_acrn_r50_ava"] = ks + [["roi_head.bbox_head.fc_cls.weight", [81, 2304]],
                                             ["roi_head.bbox_head.fc_cls.bias", [81]]]
for depth in (50, 101, 152):
    out["keys"][f"tsn_r{depth}"] = keys_of([
        ("backbone.", MODELS.build(dict(type="ResNet", depth=depth, pretrained=None))),
        ("cls_head.", MODELS.build(dict(type="TSNHead", num_classes=400, in_channels=2048)))])
out["keys"]["slowonly_r50_flow"] = keys_of([
    ("backbone.", MODELS.build(dict(type="ResNet3dSlowOnly", depth=50, pretrained=None, lateral=False, in_channels=2,
                                    conv1_kernel=(1, 7, 7), conv1_stride_t=1, pool1_stride_t=1, inflate=(0, 0, 1, 1),
                                    norm_eval=False))),
    ("cls_head.", MODELS.build(dict(type="I3DHead", in_channels=2048, num_classes=400)))])
torch.save(out, job["output"])
'''


def make_inputs() -> tuple[dict, dict]:
    """The seeded inputs (bank, RoI features, ACRN and TSN inputs) and the reference weights."""
    from humact.io.checkpoints import reference_weights
    from humact.video_models.acrn import ACRNHead
    from humact.video_models.lfb import FBOHead
    from humact.video_models.tsn import tsn_r50_recognizer

    s = FBO_SMALL
    bank = bank_from_plan(BANK_PLAN, s["channels"])
    g = torch.Generator().manual_seed(5)
    inputs = {"bank": bank, "fbo_x": torch.randn(s["rois"], s["channels"], 1, 4, 4, generator=g),
              "acrn_x": torch.randn(3, 16, 1, 4, 4, generator=g), "acrn_feat": torch.randn(2, 16, 1, 5, 5, generator=g),
              "acrn_rois": torch.tensor([[0, 0, 0, 30.0, 40.0], [1, 8, 8, 60, 60], [1, 0, 0, 10, 10]]),
              "tsn_x": torch.randn(3, 3, 64, 64, generator=g)}
    fbo = FBOHead(fbo="non_local", st_feat_channels=s["channels"], lt_feat_channels=s["channels"],
                  latent_channels=s["latent"], num_non_local_layers=s["layers"])
    acrn = ACRNHead(in_channels=32, out_channels=16)
    tsn = tsn_r50_recognizer(num_classes=10)
    weights = {"fbo_small": reference_weights((k, v.shape) for k, v in fbo.state_dict().items()),
               "acrn_small": reference_weights((k, v.shape) for k, v in acrn.state_dict().items()),
               # MMAction2's 2D shapes (our 5D convolution weights without their temporal axis)
               "tsn": reference_weights((k, v.shape[:2] + v.shape[3:] if v.dim() == 5 else v.shape)
                                        for k, v in tsn.state_dict().items())}
    return inputs, weights


def bank_from_plan(plan: dict, channels: int) -> dict:
    """{video: {second: (n, C) float16}} from a seeded generator (7), in plan order."""
    g = torch.Generator().manual_seed(7)
    return {v: {s: torch.randn(n, channels, generator=g).half() for s, n in items} for v, items in plan.items()}


def layout_sha(keys) -> str:
    return hashlib.sha256("".join(f"{k}\t{list(s)}\n" for k, s in sorted(keys)).encode()).hexdigest()


def main() -> None:
    torch.set_num_threads(2)
    vb.setup_env()
    inputs, weights = make_inputs()
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        torch.save(inputs, d / "in.pt")
        torch.save(weights, d / "w.pt")
        job = dict(inputs=str(d / "in.pt"), weights=str(d / "w.pt"), output=str(d / "out.pt"), fbo_small=FBO_SMALL,
                   roi_keys=ROI_KEYS)
        p = subprocess.run([str(vb.PY), "-c", WORKER, json.dumps(job)], capture_output=True, text=True)
        if p.returncode:
            raise SystemExit(f"MMAction2 failed:\n{p.stderr[-3000:]}")
        ref = torch.load(d / "out.pt", weights_only=True)
    out = {"about": "Outputs of MMAction2 1.2.0's own FBOHead (+ LFB reading lfb_train.pkl), ACRNHead and 2D "
                    "ResNet + TSNHead, and the key layouts of the full-size models, made by "
                    "benchmarks/make_lfb_references.py (see its docstring). CPU, torch 2.13, eval mode. Weights: "
                    "humact.io.checkpoints.reference_weights on every key; inputs: the recipes below.",
           "fbo_small": FBO_SMALL, "bank_plan": BANK_PLAN, "roi_keys": ROI_KEYS,
           "input_recipe": "g = torch.Generator().manual_seed(5); fbo_x = randn(4, 64, 1, 4, 4); acrn_x = randn(3, 16, 1, "
                           "4, 4); acrn_feat = randn(2, 16, 1, 5, 5); tsn_x = randn(3, 3, 64, 64) (segments, 3, H, W), "
                           "in that order from g; bank: generator seed 7, randn(n, 64).half() per (video, second) in "
                           "plan order",
           "acrn_rois": inputs["acrn_rois"].tolist(),
           "fbo": ref["fbo"], "acrn": ref["acrn"], "tsn_feat_mean_first64": ref["tsn_feat_mean"],
           "tsn_feat_sum": ref["tsn_feat_sum"], "tsn_logits": ref["tsn_logits"],
           "layouts": {name: {"num_keys": len(ks), "sha256": layout_sha(ks)} for name, ks in ref["keys"].items()},
           "head_keys": {name: [[k, s] for k, s in ks if not k.startswith("backbone.")]
                         for name, ks in ref["keys"].items()}}
    OUT.write_text(json.dumps(out, separators=(",", ":")))
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
