"""Shared check: a humact recognizer reproduces MMAction2 1.2.0's own logits.

tests/data/mmaction2_recognizers.json holds, per zoo name, the logits MMAction2's modules gave
for the README's deterministic weights (`reference_weights`) and a seeded input, plus the
sha256 of the key layout MMAction2 loaded strictly (made by benchmarks/make_mmaction2_references.py).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch


def mmaction2_reference(name: str):
    """tests/data/mmaction2_recognizers.json: MMAction2 1.2.0's own logits for `name` (see its 'about')."""
    data = json.loads((Path(__file__).parent / "data" / "mmaction2_recognizers.json").read_text())
    return data["models"][name]


def check_reproduces_mmaction2(name: str) -> None:
    """Build zoo model `name` with the reference weights; assert layout and logits match MMAction2's."""
    from humact import zoo
    from humact.io.checkpoints import reference_weights

    ref = mmaction2_reference(name)
    model = zoo.get(name).build(num_classes=400).eval()
    sd = reference_weights((k, v.shape) for k, v in model.state_dict().items())
    for k in sd:   # the reference scaled the non-local attention down (see the JSON)
        if "non_local_block" in k and (".theta." in k or ".phi." in k):
            sd[k] = sd[k] * ref.get("theta_phi_scale", 1.0)
    layout = "".join(f"{k}\t{list(v.shape)}\n" for k, v in sorted(sd.items()))
    # MMAction2 loaded exactly this layout strictly when the reference was made
    assert len(sd) == ref["num_keys"] and hashlib.sha256(layout.encode()).hexdigest() == ref["layout_sha256"]
    model.load_state_dict(sd, strict=True)
    x = torch.randn(ref["input_shape"], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(x)[0]
    want = torch.tensor(ref["logits"])
    assert (logits - want).abs().max() <= 1e-4 * want.abs().max()
