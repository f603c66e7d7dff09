"""Memory and time of the long-term feature bank for one long video: humact's streamed bank vs a bank held
whole in RAM (what MMAction2's `LFB` does with `device='cpu'`: `torch.load` of the whole pickle).

    .venv/bin/python benchmarks/lfb_bank.py [--minutes 15] [--persons 5] [--channels 2048] [--window 100]

Writes a synthetic bank (`persons` features of `channels` float16 per second), then reads every
keyframe's window (`window` seconds, `max_per_second` = persons) both ways, in two fresh
processes, and prints each one's peak RSS above its start (from /proc/self/status VmHWM) and
milliseconds per window. Never asserts.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

WORKER = r'''
import json, sys, time, torch
from pathlib import Path
from humact.video_models.lfb import FeatureBank

def status(key="VmHWM"):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024
hwm = status
job = json.loads(sys.argv[1])
base = hwm()
seconds = job["seconds"]
t = time.perf_counter()
if job["mode"] == "streamed":
    bank = FeatureBank(job["root"], channels=job["channels"])
    for s in range(seconds):
        bank.window("long", s, window_size=job["window"], max_per_second=job["persons"])
else:
    whole = torch.load(job["pkl"], weights_only=True)["long"]
    for s in range(seconds):
        out = torch.zeros(job["window"], job["persons"], job["channels"])
        start = s - job["window"] // 2
        for i, sec in enumerate(range(start, start + job["window"])):
            if sec in whole:
                out[i, :len(whole[sec])] = whole[sec]
dt = time.perf_counter() - t
print(json.dumps({"peak_rss_mb": (hwm() - base) / 2 ** 20, "ms_per_window": 1000 * dt / seconds,
                  **{k: status(k) / 2 ** 20 for k in ("RssAnon", "RssFile", "RssShmem")}}))
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--minutes", type=float, default=15)
    ap.add_argument("--persons", type=int, default=5)
    ap.add_argument("--channels", type=int, default=2048)
    ap.add_argument("--window", type=int, default=100)
    args = ap.parse_args()

    import torch

    from humact.video_models.lfb import FeatureBank, build_bank

    seconds = int(args.minutes * 60)
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        bank = FeatureBank(d / "bank", channels=args.channels)
        g = torch.Generator().manual_seed(0)
        feats = {s: torch.randn(args.persons, args.channels, generator=g).half() for s in range(seconds)}
        build_bank(bank, "long", range(seconds), feats.__getitem__)
        torch.save({"long": feats}, d / "lfb.pkl")
        del feats
        size = sum(p.stat().st_size for p in (d / "bank" / "long").iterdir())
        print(f"bank: {seconds} s x {args.persons} persons x {args.channels} float16 = {size / 2 ** 20:.1f} MiB on "
              f"disk in {len(list((d / 'bank' / 'long').glob('shard_*')))} shards; window {args.window} s")
        for mode in ("streamed", "whole"):
            job = dict(mode=mode, root=str(d / "bank"), pkl=str(d / "lfb.pkl"), seconds=seconds,
                       channels=args.channels, persons=args.persons, window=args.window)
            p = subprocess.run([sys.executable, "-c", WORKER, json.dumps(job)], capture_output=True, text=True)
            if p.returncode:
                raise SystemExit(p.stderr[-2000:])
            r = json.loads(p.stdout.strip().splitlines()[-1])
            print(f"{mode:9s} peak RSS +{r['peak_rss_mb']:.1f} MiB, {r['ms_per_window']:.2f} ms per window "
                  f"(at the end: anonymous {r['RssAnon']:.0f} MiB, file-backed {r['RssFile']:.0f} MiB)")


if __name__ == "__main__":
    main()
