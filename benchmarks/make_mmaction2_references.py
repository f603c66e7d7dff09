"""Regenerate tests/data/mmaction2_recognizers.json and tests/data/rgbposeconv3d_mmaction2.json.

    .venv/bin/python benchmarks/make_mmaction2_references.py

Runs MMAction2 1.2.0's own modules (in the environment `video_backbones.py` sets up) on
weights made by `humact.video_models.checkpoint.reference_weights` for every key of our
state dicts, which MMAction2 loads strictly, and stores its outputs. The tests then check
that our models reproduce them without needing MMAction2.
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

RGBPOSE_WORKER = vb.MMACTION_STUB + r'''
import sys, types, torch
from mmaction.utils import register_all_modules
from mmaction.registry import MODELS
register_all_modules()
bb = MODELS.build(dict(type="RGBPoseConv3D", speed_ratio=4, channel_ratio=4,
    rgb_pathway=dict(num_stages=4, lateral=True, lateral_infl=1, lateral_activate=[0, 0, 1, 1], fusion_kernel=7,
                     base_channels=64, conv1_kernel=(1, 7, 7), inflate=(0, 0, 1, 1), with_pool2=False),
    pose_pathway=dict(num_stages=3, stage_blocks=(4, 6, 3), lateral=True, lateral_inv=True, lateral_infl=16,
                      lateral_activate=(0, 1, 1), fusion_kernel=7, in_channels=17, base_channels=32, out_indices=(2,),
                      conv1_kernel=(1, 7, 7), conv1_stride_s=1, conv1_stride_t=1, pool1_stride_s=1, pool1_stride_t=1,
                      inflate=(0, 1, 1), spatial_strides=(2, 2, 2), temporal_strides=(1, 1, 1), dilations=(1, 1, 1),
                      with_pool2=False)))
head = MODELS.build(dict(type="RGBPoseHead", num_classes=60, in_channels=[2048, 512]))
sd = torch.load(sys.argv[1], weights_only=True)
bb.load_state_dict({k[9:]: v for k, v in sd.items() if k.startswith("backbone.")}, strict=True)
head.load_state_dict({k[9:]: v for k, v in sd.items() if k.startswith("cls_head.")}, strict=True)
bb.eval(); head.eval()
x = torch.load(sys.argv[2], weights_only=True)
with torch.no_grad():
    f = bb(x["imgs"], x["heat"]); out = head(f)
keys = [["backbone." + k, list(v.shape)] for k, v in bb.state_dict().items()]
keys += [["cls_head." + k, list(v.shape)] for k, v in head.state_dict().items()]
torch.save({"keys": keys, "rgb": f[0], "pose": f[1], "lrgb": out["rgb"], "lpose": out["pose"]}, sys.argv[3])
'''


def recognizers(tmp: Path) -> None:
    from humact import zoo
    from humact.io.checkpoints import reference_weights

    out = {"about": "Logits of MMAction2 1.2.0's own modules (backbone + head, configs below) with the crc32 "
                    "reference_weights recipe for every key of our state dict (which MMAction2 loaded strictly), "
                    "on torch.randn(input_shape, generator=torch.Generator().manual_seed(0)); CPU, torch 2.13. "
                    "Made by benchmarks/make_mmaction2_references.py.", "models": {}}
    i3d = dict(vb.MODELS["i3d_r50_nl"])
    i3d["backbone"] = {k: v for k, v in i3d["backbone"].items() if k not in ("non_local", "non_local_cfg")}
    for name, shape, cfg in [("ircsn_r50", (1, 3, 8, 64, 64), vb.MODELS["ircsn_r50"]),
                             ("ipcsn_r50", (1, 3, 8, 64, 64), vb.MODELS["ipcsn_r50"]),
                             ("i3d_r50", (1, 3, 16, 64, 64), i3d),
                             ("slowonly_r50_8x8", (1, 3, 8, 64, 64), vb.MODELS["slowonly_r50_8x8"]),
                             ("slowfast_r50_4x16", (1, 3, 32, 64, 64), vb.MODELS["slowfast_r50_4x16"]),
                             ("i3d_r50_nl", (1, 3, 16, 64, 64), vb.MODELS["i3d_r50_nl"]),
                             ("i3d_r50_nl_dot", (1, 3, 16, 64, 64), vb.MODELS["i3d_r50_nl_dot"])]:
        model = zoo.get(name).build(num_classes=400)
        sd = reference_weights((k, v.shape) for k, v in model.state_dict().items())
        # Non-local blocks: the recipe's activations (~1e4) would saturate the attention softmax, so
        # theta and phi are scaled down (recorded in the file) to keep the comparison well-conditioned.
        scale = 1e-3 if "_nl" in name else 1.0
        for k in sd:
            if "non_local_block" in k and (".theta." in k or ".phi." in k):
                sd[k] = sd[k] * scale
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0))
        torch.save(sd, tmp / "w.pt")
        torch.save(x, tmp / "x.pt")
        job = dict(threads=2, repeats=1, backbone=cfg["backbone"], head=cfg["head"], weights=str(tmp / "w.pt"),
                   input=str(tmp / "x.pt"), output=str(tmp / "y.pt"))
        p = subprocess.run([str(vb.PY), "-c", vb.WORKER, json.dumps(job)], input="run\n", capture_output=True,
                           text=True)
        if p.returncode:
            raise SystemExit(f"MMAction2 failed on {name}:\n{p.stderr[-3000:]}")
        layout = "".join(f"{k}\t{list(v.shape)}\n" for k, v in sorted(sd.items()))
        out["models"][name] = {"input_shape": list(shape), "num_keys": len(sd), "theta_phi_scale": scale,
                               "layout_sha256": hashlib.sha256(layout.encode()).hexdigest(),
                               "mmaction2_config": {"backbone": cfg["backbone"], "head": cfg["head"]},
                               "logits": torch.load(tmp / "y.pt", weights_only=True)[0].tolist()}
        print(name, "done", flush=True)
    (DATA / "mmaction2_recognizers.json").write_text(json.dumps(out, separators=(",", ":")))


def rgbpose(tmp: Path) -> None:
    from humact.io.checkpoints import reference_weights
    from humact.video_models.rgbposeconv3d import rgbposeconv3d

    sd = reference_weights((k, v.shape) for k, v in rgbposeconv3d(num_classes=60).state_dict().items())
    g = torch.Generator().manual_seed(7)
    x = {"imgs": torch.randn(1, 3, 8, 64, 64, generator=g), "heat": torch.rand(1, 17, 32, 16, 16, generator=g)}
    torch.save(sd, tmp / "w.pt")
    torch.save(x, tmp / "x.pt")
    p = subprocess.run([str(vb.PY), "-c", RGBPOSE_WORKER, str(tmp / "w.pt"), str(tmp / "x.pt"), str(tmp / "y.pt")],
                       capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"MMAction2 failed on RGBPoseConv3D:\n{p.stderr[-3000:]}")
    ref = torch.load(tmp / "y.pt", weights_only=True)
    out = {"about": "Outputs of MMAction2 1.2.0's RGBPoseConv3D + RGBPoseHead (the port of PYSKL's code; "
                    "configs/skeleton/posec3d/rgbpose_conv3d/rgbpose_conv3d.py model, 60 classes), CPU, torch 2.13, "
                    "made by benchmarks/make_mmaction2_references.py. Weights: the reference_weights recipe of "
                    "humact.video_models.checkpoint (crc32-seeded per key), for every key below.",
           "input_recipe": {"generator_seed": 7, "imgs": "torch.randn(1, 3, 8, 64, 64, generator=g)",
                            "heatmaps": "torch.rand(1, 17, 32, 16, 16, generator=g)"},
           "state_dict_keys": ref["keys"],
           "feat_sums": [ref["rgb"].double().sum().item(), ref["pose"].double().sum().item()],
           "feat_shapes": [list(ref["rgb"].shape), list(ref["pose"].shape)],
           "logits_rgb": ref["lrgb"][0].tolist(), "logits_pose": ref["lpose"][0].tolist()}
    (DATA / "rgbposeconv3d_mmaction2.json").write_text(json.dumps(out, separators=(",", ":")))
    print("rgbposeconv3d done")


if __name__ == "__main__":
    torch.set_num_threads(2)
    vb.setup_env()
    with tempfile.TemporaryDirectory() as d:
        recognizers(Path(d))
        rgbpose(Path(d))
