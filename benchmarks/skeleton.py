"""Skeleton model speed: humact's ST-GCN++ (and PoseConv3D) vs MMAction2's port, same run.

Forward time (eval, no grad, ``torch.set_num_threads(1)``) at batch 1 and 16 of

- ST-GCN++ (COCO-17, 2 persons x 100 frames): humact's inference twin (``humact.deploy.fuse``)
  vs MMAction2 1.2's ``STGCN`` + ``GCNHead``;
- PoseConv3D SlowOnly-R50 (17 x 48 x 56 x 56): humact's inference twin (``humact.deploy.fuse``)
  vs MMAction2's ``ResNet3dSlowOnly`` + ``I3DHead`` (batch 16
  only with ``--posec3d-b16``: ~30 s a pass);
- the rest of PYSKL's GCN zoo (COCO-17, 2 persons x 100 frames, 60 classes): AAGCN vs
  MMAction2 1.2's ``AAGCN``; MS-G3D, CTR-GCN and DG-STGCN are timed alone (MMAction2 1.2's
  wheel ships no port of them, its ``projects/`` are not packaged, and PYSKL is not on PyPI).
  ``--fold-bound`` measures what folding BN into the neighbouring convolutions could save:
  the share of one pass's operator time spent in BatchNorm (torch.profiler, steady under
  load) and the time of a copy with every BatchNorm replaced by the identity (outputs
  change, only the time is read; noisy on a busy machine).

Both models get the same weights (PYSKL's reference checkpoints from
``shared/reference/pyskl`` when present, else a seeded random initialisation) and the
benchmark prints the max |difference| of their logits, so "faster" is "same outputs,
faster". Timings alternate ours / reference, repetition by repetition, so machine load
hits both alike; the figure to read is the median of the per-pair ratios (``ours/ref``).
PYSKL's own figures on this kind of machine (``results.json``, for orientation): ST-GCN++
batch 1 0.101 s, PoseConv3D batch 1 0.79 s.

The reference needs ``mmaction2`` + ``mmengine`` + ``mmcv-lite`` from PyPI. They live in a
separate virtual environment, ``~/.cache/humact-bench/gcn-venv`` (or ``$HUMACT_BENCH_VENV``),
created on the first run (pip, ``--no-deps``: torch and numpy come from humact's own environment through a ``.pth``
file, so both sides run the same torch). The benchmark re-runs itself inside it. When it
cannot be set up, it times humact alone and prints PYSKL's figures instead.

    .venv/bin/python benchmarks/skeleton.py [--reps 7] [--posec3d-b16] [--no-posec3d] [--no-stgcnpp]
        [--no-zoo | --zoo aagcn,msg3d,ctrgcn,dgstgcn] [--fold-bound]
"""

from __future__ import annotations

import argparse
import json
import os
import site
import subprocess
import sys
import time
import types
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HUMACT_SHARED", REPO.parent / "shared"))
BENCH_DIR = Path.home() / ".cache" / "humact-bench"
VENV = Path(os.environ.get("HUMACT_BENCH_VENV", BENCH_DIR / "gcn-venv"))
PIP_PACKAGES = ["mmaction2==1.2.0", "mmengine==0.10.7", "mmcv-lite==2.1.0", "addict", "yapf", "termcolor",
                "rich", "markdown-it-py", "mdurl", "pygments", "pyyaml", "einops", "packaging",
                "importlib_metadata==6.8.0", "zipp", "platformdirs", "tomli"]
PYSKL_FIGURES = {"stgcnpp_b1": 0.101, "posec3d_b1": 0.79}


# ---------------------------------------------------------------- environment

def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_reference_env() -> Path | None:
    """The benchmark venv's python with MMAction2 importable, or None (with the reason printed)."""
    py = venv_python()
    probe = [str(py), __file__, "--probe"]
    if py.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return py
    print(f"setting up MMAction2 in {VENV} (pip, once) ...", flush=True)
    try:
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(VENV)], check=True)
            subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "--version"],
                           check=True, capture_output=True)
        purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                 check=True, capture_output=True, text=True).stdout.strip()
        # humact's torch / numpy / humact itself, after the venv's own packages.
        Path(purelib, "zz_humact_main.pth").write_text(site.getsitepackages()[0] + "\n")
        subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
                        *PIP_PACKAGES], check=True)
    except (subprocess.CalledProcessError, OSError) as err:
        print(f"could not set up MMAction2: {err}")
        return None
    if subprocess.run(probe, capture_output=True).returncode != 0:
        print("MMAction2 installed but does not import; see: " + " ".join(probe))
        return None
    return py


def import_mmaction():
    """MMAction2's model classes. Its 1.2.0 wheel lacks ``localizers/drn``; stub it."""
    for name in ("mmaction.models.localizers.drn", "mmaction.models.localizers.drn.drn"):
        mod = types.ModuleType(name)
        mod.DRN = None
        sys.modules.setdefault(name, mod)
    import warnings

    warnings.filterwarnings("ignore")
    from mmaction.models.backbones import STGCN, ResNet3dSlowOnly
    from mmaction.models.heads import GCNHead, I3DHead

    return STGCN, GCNHead, ResNet3dSlowOnly, I3DHead


def import_mmaction_aagcn():
    import_mmaction()
    from mmaction.models.backbones import AAGCN

    return AAGCN


# ---------------------------------------------------------------- models

def load_weights(name: str, ours):
    import torch

    path = SHARED / "reference" / "pyskl" / f"{name}.pt"
    if path.is_file():
        return torch.load(path, weights_only=True)["state_dict"], str(path)
    torch.manual_seed(0)
    return ours.state_dict(), "seeded random initialisation"


def stgcnpp_pair(with_ref: bool):
    import torch

    from humact.deploy import fuse
    from humact.skeleton.stgcn import load_pyskl_checkpoint, stgcnpp

    model = stgcnpp(num_classes=60, layout="coco").eval()
    sd, source = load_weights("stgcnpp_ntu60_hrnet", model)
    load_pyskl_checkpoint(model, sd)
    ours = fuse(model)
    ref = None
    if with_ref:
        STGCN, GCNHead, _, _ = import_mmaction()
        bb = STGCN(graph_cfg=dict(layout="coco", mode="spatial"), gcn_adaptive="init",
                   gcn_with_res=True, tcn_type="mstcn")
        head = GCNHead(num_classes=60, in_channels=256)
        bb.load_state_dict({k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")})
        head.load_state_dict({"fc.weight": sd["cls_head.fc_cls.weight"], "fc.bias": sd["cls_head.fc_cls.bias"]})
        bb.eval(), head.eval()
        ref = lambda x: head(bb(x))
    make = lambda n: torch.randn(n, 2, 100, 17, 3, generator=torch.Generator().manual_seed(n))
    return ours, ref, make, source


def posec3d_pair(with_ref: bool):
    import torch

    from humact.skeleton.posec3d import load_pyskl_checkpoint, posec3d_slowonly_r50_model
    from humact.deploy import fuse

    model = posec3d_slowonly_r50_model(num_classes=60).eval()
    sd, source = load_weights("posec3d_slowonly_r50_ntu60", model)
    load_pyskl_checkpoint(model, sd)
    ours = fuse(model)
    ref = None
    if with_ref:
        _, _, ResNet3dSlowOnly, I3DHead = import_mmaction()
        bb = ResNet3dSlowOnly(depth=50, pretrained=None, in_channels=17, base_channels=32, num_stages=3,
                              out_indices=(2,), stage_blocks=(4, 6, 3), conv1_stride_s=1, pool1_stride_s=1,
                              inflate=(0, 1, 1), spatial_strides=(2, 2, 2), temporal_strides=(1, 1, 2),
                              dilations=(1, 1, 1))
        head = I3DHead(in_channels=512, num_classes=60, dropout_ratio=0.5)
        bb.load_state_dict({k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")})
        head.load_state_dict({k[len("cls_head."):]: v for k, v in sd.items() if k.startswith("cls_head.")})
        bb.eval(), head.eval()
        ref = lambda x: head(bb(x))
    make = lambda n: torch.rand(n, 17, 48, 56, 56, generator=torch.Generator().manual_seed(n))
    return ours, ref, make, source


ZOO = ("aagcn", "msg3d", "ctrgcn", "dgstgcn")
#: Why a zoo model is timed alone.
ZOO_NO_REFERENCE = "no reference: MMAction2 1.2's wheel has no port, PYSKL is not on PyPI"


def zoo_pair(name: str, with_ref: bool):
    """humact's model of the zoo (eval) on PYSKL's reference weights; MMAction2's AAGCN on the same."""
    import importlib

    import torch

    module = importlib.import_module(f"humact.skeleton.{name}")
    model = getattr(module, name)(num_classes=60, layout="coco").eval()
    sd, source = load_weights(f"{name}_ntu60_hrnet", model)
    module.load_pyskl_checkpoint(model, sd)
    ref = None
    if with_ref and name == "aagcn":
        STGCN, GCNHead, _, _ = import_mmaction()
        bb = import_mmaction_aagcn()(graph_cfg=dict(layout="coco", mode="spatial"))
        head = GCNHead(num_classes=60, in_channels=256)
        bb.load_state_dict({k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")})
        head.load_state_dict({"fc.weight": sd["cls_head.fc_cls.weight"], "fc.bias": sd["cls_head.fc_cls.bias"]})
        bb.eval(), head.eval()
        ref = lambda x: head(bb(x))
    make = lambda n: torch.randn(n, 2, 100, 17, 3, generator=torch.Generator().manual_seed(n))
    return model, ref, make, source


def without_batchnorm(model):
    """A copy of ``model`` with every BatchNorm replaced by the identity: a lower bound on the
    time of any BN-folded twin (folding leaves the convolutions as they are and removes the BNs)."""
    import copy

    import torch

    twin = copy.deepcopy(model)
    for parent in list(twin.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.modules.batchnorm._BatchNorm):
                setattr(parent, child_name, torch.nn.Identity())
    return twin.eval()


def batchnorm_share(model, x) -> float:
    """The fraction of one forward pass's operator self-time spent in BatchNorm (torch.profiler):
    what folding BN removes, measured inside one pass, so machine load moves it little."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with torch.inference_mode():
        model(x)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            model(x)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    return sum(e.self_cpu_time_total for e in events if "batch_norm" in e.key) / total


# ---------------------------------------------------------------- timing

def time_pair(ours, ref, x, reps: int) -> dict:
    import numpy as np
    import torch

    with torch.inference_mode():
        out_ours = ours(x)
        diff = None if ref is None else float((out_ours - ref(x)).abs().max())
        t_ours, t_ref = [], []
        for _ in range(reps):  # alternate, so that load changes hit both sides
            t = time.perf_counter()
            ours(x)
            t_ours.append(time.perf_counter() - t)
            if ref is not None:
                t = time.perf_counter()
                ref(x)
                t_ref.append(time.perf_counter() - t)
    row = {"ours_median_s": float(np.median(t_ours)), "ours_min_s": float(np.min(t_ours)), "max_abs_diff": diff}
    if t_ref:
        row.update(ref_median_s=float(np.median(t_ref)), ref_min_s=float(np.min(t_ref)),
                   ratio_median=float(np.median(t_ours) / np.median(t_ref)),
                   ratio_pair_median=float(np.median(np.array(t_ours) / np.array(t_ref))), pairs=len(t_ref),
                   ratio_min=float(np.min(t_ours) / np.min(t_ref)))
    return row


def run(args, with_ref: bool) -> dict:
    import torch

    torch.set_num_threads(1)
    results = {}
    jobs = [] if args.no_stgcnpp else [("stgcnpp", stgcnpp_pair, (1, 16), args.reps)]
    if not args.no_posec3d:
        jobs.append(("posec3d", posec3d_pair, (1, 16) if args.posec3d_b16 else (1,), max(3, args.reps // 2)))
    for name, pair, batches, reps in jobs:
        ours, ref, make, source = pair(with_ref)
        print(f"{name}: weights from {source}", flush=True)
        for b in batches:
            row = time_pair(ours, ref, make(b), reps if b == 1 else max(3, reps // 2))
            results[f"{name}_b{b}"] = row
            line = f"  batch {b:2d}: ours {row['ours_median_s']:.3f} s (min {row['ours_min_s']:.3f})"
            if "ref_median_s" in row:
                line += (f" | MMAction2 {row['ref_median_s']:.3f} s (min {row['ref_min_s']:.3f})"
                         f" | ours/ref {row['ratio_pair_median']:.2f} (median of {row['pairs']} pair ratios;"
                         f" min/min {row['ratio_min']:.2f})"
                         f" | max |logit diff| {row['max_abs_diff']:.1e}")
            elif f"{name}_b{b}" in PYSKL_FIGURES:
                pyskl = PYSKL_FIGURES[f"{name}_b{b}"]
                line += f" | PYSKL's figure {pyskl:.3f} s | ours/PYSKL {row['ours_median_s'] / pyskl:.2f}"
            print(line, flush=True)
    for name in args.zoo:
        run_zoo_model(name, args, with_ref, results)
    return results


def run_zoo_model(name: str, args, with_ref: bool, results: dict) -> None:
    model, ref, make, source = zoo_pair(name, with_ref)
    print(f"{name}: weights from {source}" + ("" if ref is not None or name == "aagcn" else f" ({ZOO_NO_REFERENCE})"),
          flush=True)
    for b in (1, 16):
        reps = args.reps if b == 1 else max(3, args.reps // 2)
        x = make(b)
        row = time_pair(model, ref, x, reps)
        line = f"  batch {b:2d}: ours {row['ours_median_s']:.3f} s (min {row['ours_min_s']:.3f})"
        if "ref_median_s" in row:
            line += (f" | MMAction2 {row['ref_median_s']:.3f} s (min {row['ref_min_s']:.3f})"
                     f" | ours/ref {row['ratio_pair_median']:.2f} (median of {row['pairs']} pair ratios;"
                     f" min/min {row['ratio_min']:.2f}) | max |logit diff| {row['max_abs_diff']:.1e}")
        if args.fold_bound:
            bound = time_pair(without_batchnorm(model), model, x, reps)
            # min/min: the least-disturbed pass of each, the steadiest figure on a busy machine.
            share = batchnorm_share(model, x)
            row.update(no_bn_min_s=bound["ours_min_s"], no_bn_over_ours_min=bound["ratio_min"],
                       no_bn_over_ours_pairs=bound["ratio_pair_median"], bn_time_share=share)
            line += (f" | BN {share:.1%} of the operator time (profiler) | without any BN"
                     f" {bound['ours_min_s']:.3f} s (min): {1 - bound['ratio_min']:.0%} saved (min/min;"
                     f" median pair ratio {1 - bound['ratio_pair_median']:.0%})")
        results[f"{name}_b{b}"] = row
        print(line, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--posec3d-b16", action="store_true", help="also PoseConv3D at batch 16 (slow)")
    ap.add_argument("--no-posec3d", action="store_true")
    ap.add_argument("--no-stgcnpp", action="store_true")
    ap.add_argument("--zoo", default=",".join(ZOO),
                    help=f"comma-separated zoo models to time (default: all of {','.join(ZOO)})")
    ap.add_argument("--no-zoo", action="store_true", help="skip the zoo models")
    ap.add_argument("--fold-bound", action="store_true",
                    help="also time each zoo model without its BatchNorms (the most BN folding can save)")
    ap.add_argument("--no-reference", action="store_true", help="time humact only, compare to PYSKL's figures")
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    zoo = [] if args.no_zoo else [z for z in args.zoo.split(",") if z]
    unknown = sorted(set(zoo) - set(ZOO))
    if unknown:
        ap.error(f"--zoo: unknown model(s) {unknown}; known: {list(ZOO)}")
    args.zoo = zoo
    if args.probe:
        import_mmaction()
        return
    if args.inner or args.no_reference:
        print(json.dumps(run(args, with_ref=args.inner)))
        return
    py = ensure_reference_env()
    if py is None:
        print("falling back to PYSKL's figures from results.json (MMAction2 not available)")
        print(json.dumps(run(args, with_ref=False)))
        return
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [str(py), __file__, "--inner", "--reps", str(args.reps)]
    cmd += ["--posec3d-b16"] if args.posec3d_b16 else []
    cmd += ["--no-posec3d"] if args.no_posec3d else []
    cmd += ["--no-stgcnpp"] if args.no_stgcnpp else []
    cmd += ["--zoo", ",".join(args.zoo)] if args.zoo else ["--no-zoo"]
    cmd += ["--fold-bound"] if args.fold_bound else []
    sys.exit(subprocess.run(cmd, env=env).returncode)


if __name__ == "__main__":
    main()
