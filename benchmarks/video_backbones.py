"""Forward time of humact's video backbones against MMAction2's, same input, same threads, one run.

    .venv/bin/python benchmarks/video_backbones.py [--threads 2] [--repeats 3] [--models slowonly_r50_8x8,...]

For each model: the recognizer (backbone + head) with the same weights (MMAction2's
deterministic reference recipe, `humact.video_models.checkpoint.reference_weights`)
on the same normalised clip. MMAction2 runs in a separate environment that this
script sets up once in ~/.cache/humact-bench:

- `mmengine` and `mmcv-lite` 2.1 (mmaction2 1.2 refuses mmcv >= 2.2) from PyPI;
- `mmaction2` 1.2.0 from its PyPI *source* distribution: PyPI's 1.2.0 wheel is broken
  (it ships stale 0.5-era files importing `mmcv.cnn.constant_init`), and both omit
  `mmaction/models/localizers/drn`, which the worker stubs before importing;
- torch itself is shared with humact's venv (a .pth path entry), so both sides run
  the very same torch build and kernels.

Prints, per model: our median seconds, MMAction2's median seconds (measured in this
run), the ratio ours / MMAction2 (< 1 = faster), and the max abs difference of the
logits relative to their largest magnitude. Never asserts on time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(os.environ.get("HUMACT_BENCH_DIR", Path.home() / ".cache" / "humact-bench"))
VENV = BENCH_DIR / "venv"
PY = VENV / "bin" / "python"


def _i3d_r50_nl(mode: str) -> dict:
    """MMAction2's I3D-R50 with non-local blocks of the given pairwise `mode`."""
    return dict(
        ours="i3d_r50_nl" if mode == "embedded_gaussian" else "i3d_r50_nl_dot",
        backbone=dict(type="ResNet3d", depth=50, pretrained=None, pretrained2d=False, conv1_kernel=(5, 7, 7),
                      conv1_stride_t=2, pool1_stride_t=2, norm_eval=False, zero_init_residual=False,
                      inflate=((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0)),
                      non_local=((0, 0, 0), (0, 1, 0, 1), (0, 1, 0, 1, 0, 1), (0, 0, 0)),
                      non_local_cfg=dict(sub_sample=True, use_scale=False, mode=mode,
                                         norm_cfg=dict(type="BN3d", requires_grad=True))),
        head=dict(type="I3DHead", in_channels=2048, num_classes=400, spatial_type="avg", dropout_ratio=0.5),
        input=(1, 3, 32, 224, 224), weights="init")


#: name -> (humact builder kwargs, MMAction2 backbone config, MMAction2 head config, input shape)
MODELS = {
    "slowonly_r50_8x8": dict(
        ours="slowonly_r50_8x8",
        backbone=dict(type="ResNet3dSlowOnly", depth=50, pretrained=None, lateral=False, conv1_kernel=(1, 7, 7),
                      conv1_stride_t=1, pool1_stride_t=1, inflate=(0, 0, 1, 1), norm_eval=False),
        head=dict(type="I3DHead", in_channels=2048, num_classes=400, spatial_type="avg", dropout_ratio=0.5),
        input=(1, 3, 8, 224, 224)),
    "slowfast_r50_4x16": dict(
        ours="slowfast_r50_4x16",
        backbone=dict(type="ResNet3dSlowFast", pretrained=None, resample_rate=8, speed_ratio=8, channel_ratio=8,
                      slow_pathway=dict(type="resnet3d", depth=50, pretrained=None, lateral=True,
                                        conv1_kernel=(1, 7, 7), dilations=(1, 1, 1, 1), conv1_stride_t=1,
                                        pool1_stride_t=1, inflate=(0, 0, 1, 1)),
                      fast_pathway=dict(type="resnet3d", depth=50, pretrained=None, lateral=False,
                                        base_channels=8, conv1_kernel=(5, 7, 7), conv1_stride_t=1,
                                        pool1_stride_t=1)),
        head=dict(type="SlowFastHead", in_channels=2304, num_classes=400, spatial_type="avg", dropout_ratio=0.5),
        input=(1, 3, 32, 224, 224)),
    "ircsn_r50": dict(
        ours="ircsn_r50",
        backbone=dict(type="ResNet3dCSN", depth=50, pretrained=None, pretrained2d=False, with_pool2=False,
                      bottleneck_mode="ir", norm_eval=True, bn_frozen=True, zero_init_residual=False),
        head=dict(type="I3DHead", in_channels=2048, num_classes=400, spatial_type="avg", dropout_ratio=0.5),
        input=(1, 3, 32, 224, 224)),
    "ipcsn_r50": dict(
        ours="ipcsn_r50",
        backbone=dict(type="ResNet3dCSN", depth=50, pretrained=None, pretrained2d=False, with_pool2=False,
                      bottleneck_mode="ip", norm_eval=True, bn_frozen=True, zero_init_residual=False),
        head=dict(type="I3DHead", in_channels=2048, num_classes=400, spatial_type="avg", dropout_ratio=0.5),
        input=(1, 3, 32, 224, 224)),
    "i3d_r50_nl": _i3d_r50_nl("embedded_gaussian"),
    "i3d_r50_nl_dot": _i3d_r50_nl("dot_product"),
    "ircsn_r152": dict(
        ours="ircsn_r152",
        backbone=dict(type="ResNet3dCSN", depth=152, pretrained=None, pretrained2d=False, with_pool2=False,
                      bottleneck_mode="ir", norm_eval=True, bn_frozen=True, zero_init_residual=False),
        head=dict(type="I3DHead", in_channels=2048, num_classes=400, spatial_type="avg", dropout_ratio=0.5),
        input=(1, 3, 32, 224, 224)),
}

PIP_PACKAGES = ["mmengine==0.10.7", "mmcv-lite==2.1.0", "addict", "yapf", "platformdirs", "termcolor", "rich",
                "markdown-it-py", "mdurl", "pygments", "pyyaml", "einops", "importlib_metadata", "lazy_importer"]

#: Prepended to every MMAction2 worker script: MMAction2 1.2.0's wheel lacks `localizers/drn`, which
#: its registry imports; an empty stand-in lets `register_all_modules()` run.
MMACTION_STUB = r'''
import sys, types
for name in ("mmaction.models.localizers.drn", "mmaction.models.localizers.drn.drn"):
    m = types.ModuleType(name); m.__path__ = []; sys.modules[name] = m
sys.modules["mmaction.models.localizers.drn.drn"].DRN = type("DRN", (), {})
'''

WORKER = MMACTION_STUB + r'''
# Persistent MMAction2 worker: builds the model, then answers one timed forward per "run" line on stdin,
# so the caller can interleave MMAction2's runs with its own (fair under a fluctuating machine load).
import json, sys, time, types
import torch
from mmaction.utils import register_all_modules
from mmaction.registry import MODELS
register_all_modules()
job = json.loads(sys.argv[1])
torch.set_num_threads(job["threads"])
def tup(d):
    return {k: (tuple(v) if isinstance(v, list) else tup(v) if isinstance(v, dict) else v) for k, v in d.items()}
backbone, head = MODELS.build(tup(job["backbone"])), MODELS.build(tup(job["head"]))
sd = torch.load(job["weights"], weights_only=True)
backbone.load_state_dict({k[9:]: v for k, v in sd.items() if k.startswith("backbone.")}, strict=True)
head.load_state_dict({k[9:]: v for k, v in sd.items() if k.startswith("cls_head.")}, strict=True)
backbone.eval(); head.eval()
x = torch.load(job["input"], weights_only=True)
print("ready", flush=True)
with torch.no_grad():
    for line in sys.stdin:
        if line.strip() != "run":
            break
        t = time.perf_counter(); logits = head(backbone(x)); dt = time.perf_counter() - t
        torch.save(logits, job["output"])
        print(json.dumps({"seconds": dt}), flush=True)
'''


def setup_env(log=print) -> None:
    """Create the MMAction2 environment in BENCH_DIR once (idempotent)."""
    if PY.exists() and subprocess.run([str(PY), "-c", "import mmengine, mmcv, mmaction"],
                                      capture_output=True).returncode == 0:
        return
    log(f"setting up MMAction2 in {VENV} (once)")
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    site = next((VENV / "lib").glob("python*/site-packages"))
    ours = next((Path(sys.prefix) / "lib").glob("python*/site-packages"))
    (site / "humact_shared_torch.pth").write_text(f"{ours}\n")
    pip = [str(PY), "-m", "pip", "install", "-q", "--no-deps"]
    subprocess.run(pip + PIP_PACKAGES, check=True)
    sdist = BENCH_DIR / "sdist"
    subprocess.run([str(PY), "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:", "-d", str(sdist),
                    "mmaction2==1.2.0"], check=True)
    subprocess.run(pip + [str(next(sdist.glob("mmaction2-1.2.0*")))], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default="slowonly_r50_8x8,slowfast_r50_4x16,ircsn_r50")
    ap.add_argument("--layout", choices=("fused", "channels_last", "default"), default="fused",
                    help="how our model runs: 'fused' = humact.deploy.fuse(model) (what `humact "
                         "classify` runs: BN-folded twin where the backbone has one, else channels-last), "
                         "or plain modules in channels-last / default memory (MMAction2 always runs its "
                         "default, contiguous NCTHW)")
    args = ap.parse_args()

    import torch

    from humact import zoo
    from humact.deploy import fuse
    from humact.io.checkpoints import reference_weights

    torch.set_num_threads(args.threads)
    setup_env()
    print(f"torch {torch.__version__}, {args.threads} threads, humact layout {args.layout}, "
          f"median of {args.repeats} interleaved runs "
          "(after 1 warm-up each)")
    print(f"{'model':20s} {'input':22s} {'humact s':>9s} {'mmaction2 s':>12s} {'ratio':>6s} {'max|diff|/max':>14s}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in args.models.split(","):
            cfg = MODELS[name]
            model = zoo.get(cfg["ours"]).build(num_classes=400).eval()
            if cfg.get("weights") == "init":
                # The reference recipe's uncalibrated weights make activations ~1e4 at res4: the
                # non-local softmax saturates (and dot-product attention overflows), so any rounding
                # difference flips it. Seeded PyTorch initialisation keeps the comparison meaningful.
                torch.manual_seed(0)
                sd = zoo.get(cfg["ours"]).build(num_classes=400).state_dict()
            else:
                sd = reference_weights((k, v.shape) for k, v in model.state_dict().items())
            model.load_state_dict(sd, strict=True)
            if args.layout == "fused":
                model = fuse(model)     # what `humact classify` runs
            elif args.layout == "channels_last":
                model.to_channels_last()
            x = torch.randn(cfg["input"], generator=torch.Generator().manual_seed(0))
            torch.save(sd, tmp / "w.pt")
            torch.save(x, tmp / "x.pt")
            job = dict(threads=args.threads, repeats=args.repeats, backbone=cfg["backbone"], head=cfg["head"],
                       weights=str(tmp / "w.pt"), input=str(tmp / "x.pt"), output=str(tmp / "y.pt"))
            worker = subprocess.Popen([str(PY), "-c", WORKER, json.dumps(job)], stdin=subprocess.PIPE,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            if worker.stdout.readline().strip() != "ready":
                raise SystemExit(f"MMAction2 worker failed for {name}:\n{worker.stderr.read()[-3000:]}")

            def mm_once() -> float:
                worker.stdin.write("run\n")
                worker.stdin.flush()
                return json.loads(worker.stdout.readline())["seconds"]

            mine, theirs = [], []
            with torch.no_grad():
                for i in range(args.repeats + 1):       # round 0 is the warm-up of both
                    t_mm = mm_once()
                    t = time.perf_counter()
                    logits = model(x)
                    t_ours = time.perf_counter() - t
                    if i:
                        mine.append(t_ours)
                        theirs.append(t_mm)
            worker.stdin.close()
            worker.wait()
            ours, ref = statistics.median(mine), statistics.median(theirs)
            ref_logits = torch.load(tmp / "y.pt", weights_only=True)
            diff = ((logits - ref_logits).abs().max() / ref_logits.abs().max()).item()
            print(f"{name:20s} {str(tuple(cfg['input'])):22s} {ours:9.3f} {ref:12.3f} "
                  f"{ours / ref:6.2f} {diff:14.2e}", flush=True)


if __name__ == "__main__":
    main()
