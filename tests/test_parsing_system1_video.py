"""System 1 with RGB video recognisers (the system's CSN with frozen BN): training, loading, fusion."""

import json

import numpy as np
import pytest
import torch

from conftest import shared_file

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]



def _frames(state):
    return {"img_00001.json": {"humans": [{"box": [0, 0, 9, 9], "parts": {
        "head": {"box": [0, 0, 1, 1], "verb": state}, "left_hand": {"box": [0, 0, 1, 1], "verb": "hold"}}}]}}


def test_csn_heads_train_with_frozen_bn_and_predict(tmp_path):
    from humact.parsing.dataset import TpsDataset, TpsVideo
    from humact.parsing.system1 import HEADS, System1, train_system1_video
    from humact.types import PoseTracks

    a = shared_file("data", "media", "archery_320x240.avi")
    b = shared_file("data", "media", "pool_cleaning_340x256.mp4")
    ds = TpsDataset([TpsVideo("a", "archery", _frames("nod"), a), TpsVideo("b", "cleaning", _frames("none"), b)],
                    ("archery", "cleaning"))
    done = train_system1_video(ds, tmp_path, model="ircsn_r50", epochs=1, batch_size=2, clip_len=4,
                               frame_interval=2, short_side=64, crop_size=64, log=None)
    assert set(done) == set(HEADS) and all(set(v) == {"rgb"} for v in done.values())
    meta = json.loads((tmp_path / "head" / "rgb" / "model.json").read_text())
    assert meta["classes"] == ["archery_Head_nod", "cleaning_Head_none"] and meta["spec"]["clip_len"] == 4
    # frozen BN: the saved BN statistics are the initial ones (mean 0, var 1) after training
    from safetensors.torch import load_file

    sd = load_file(str(tmp_path / "head" / "rgb" / "model.safetensors"))
    means = [v for k, v in sd.items() if k.endswith("running_mean")]
    assert means and all(torch.count_nonzero(m) == 0 for m in means)
    assert all(torch.all(v == 1) for k, v in sd.items() if k.endswith("bn.weight"))
    s1 = System1.load(tmp_path)
    rec = s1.heads["action"][0][0]
    assert rec.spec.clip_len == 4 and rec.spec.crop_size == 64 and rec.labels == ("archery", "cleaning")
    out = s1.predict(PoseTracks.empty(10), (240, 320), a)
    direct = rec.classify(a, progress=False).scores
    np.testing.assert_allclose([out["action_scores"][c] for c in rec.labels], direct, rtol=1e-6)
    assert out["action"] in ("archery", "cleaning") and out["states"]["head"] in ("nod", "none")
    assert out["states"]["hand"] == "hold"
