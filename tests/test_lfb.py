"""Long-term feature bank: the bank on disk (streamed, resumable, reused), MMAction2's FBO heads at parity."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from humact.errors import CheckpointError, InputError, UsageError
from humact.io.checkpoints import reference_weights
from humact.video_models.lfb import (FBOHead, FeatureBank, LFBDetector, build_bank, import_mmaction2_bank,
                                     lfb_infer_features, lfb_nl_slowonly_r50_ava, lfb_slowfast_r50_ava,
                                     load_mmaction2_lfb_detector)

REF = json.loads((Path(__file__).parent / "data" / "avaparts_mmaction2.json").read_text())


def _layout_sha(sd) -> str:
    return hashlib.sha256("".join(f"{k}\t{list(v.shape)}\n" for k, v in sorted(sd.items())).encode()).hexdigest()


def _reference_bank(tmp_path, **kw) -> FeatureBank:
    """The bank of the MMAction2 reference (benchmarks/make_lfb_references.py: seed 7, plan order)."""
    c = REF["fbo_small"]["channels"]
    bank = FeatureBank(tmp_path / "bank", channels=c, shard_seconds=4, **kw)
    g = torch.Generator().manual_seed(7)
    for video, items in REF["bank_plan"].items():
        with bank.writer(video, [s for s, _ in items]) as w:
            for s, n in items:
                w.add(s, torch.randn(n, c, generator=g).half())
    return bank


# ------------------------------------------------------------------------------------------ the bank


def test_window_follows_mmaction2s_sampling(tmp_path):
    bank = FeatureBank(tmp_path, channels=3, dtype="float32", shard_seconds=7)
    with bank.writer("v", [8, 10, 11, 30]) as w:
        w.add(8, torch.full((2, 3), 8.0))
        w.add(10, torch.full((4, 3), 10.0))   # more than max_per_second: the first 3 are kept
        w.add(11, torch.full((1, 3), 11.0))
        w.add(30, torch.full((1, 3), 30.0))
    assert bank.is_complete("v") and bank.seconds("v") == [8, 10, 11, 30]
    win = bank.window("v", 10, window_size=6, max_per_second=3).reshape(6, 3, 3)   # seconds 7..12
    assert torch.equal(win[1, :2], torch.full((2, 3), 8.0)) and not win[1, 2].any()
    assert torch.equal(win[3], torch.full((3, 3), 10.0))
    assert torch.equal(win[4, 0], torch.full((3,), 11.0)) and not win[4, 1:].any()
    assert not win[[0, 2, 5]].any()
    # odd window: start = t - window // 2
    assert bank.window("v", 30, window_size=5, max_per_second=1).reshape(5, 3)[2, 0] == 30.0
    g = torch.Generator().manual_seed(0)
    assert bank.window("v", 10, window_size=1, max_per_second=2, generator=g).shape == (2, 3)


def test_a_long_videos_bank_streams_through_a_bounded_cache(tmp_path):
    bank = FeatureBank(tmp_path, channels=8, shard_seconds=60, cache_shards=3)
    seconds = range(900)                                            # a 15-minute video at 1 Hz
    assert build_bank(bank, "long", seconds, lambda s: torch.full((2, 8), float(s))) == 900
    assert len(list((tmp_path / "long").glob("shard_*.safetensors"))) == 15
    bank = FeatureBank(tmp_path, channels=8, shard_seconds=60, cache_shards=3)
    for s in seconds:                                               # every keyframe's +-50 s window, in order
        win = bank.window("long", s, window_size=100, max_per_second=2)
        assert len(bank._cache) <= 3
        assert win.reshape(100, 2, 8)[50, 0, 0] == s
    assert bank.shard_reads == 15                                   # each shard read once: it streams


def test_rerun_reuses_the_bank_and_an_interrupted_one_resumes(tmp_path):
    calls = []

    def feats(s):
        calls.append(s)
        if s == 130 and len(calls) < 200:
            raise KeyboardInterrupt
        return torch.ones(1, 4) * s

    bank = FeatureBank(tmp_path, channels=4, shard_seconds=50, fingerprint={"model": "a"})
    with pytest.raises(KeyboardInterrupt):
        build_bank(bank, "v", range(200), feats)
    assert not bank.is_complete("v") and bank.seconds("v") == list(range(100))   # shards 0, 1 were written
    assert bank.todo("v", range(200)) == list(range(100, 200))
    calls.clear()
    calls.extend([0] * 200)                                          # no interruption this time
    assert build_bank(bank, "v", range(200), feats) == 100 and bank.is_complete("v")
    assert build_bank(bank, "v", range(200), feats) == 0             # re-run: reused
    other = FeatureBank(tmp_path, channels=4, shard_seconds=50, fingerprint={"model": "b"})
    assert other.todo("v", range(200)) == list(range(200))          # made by another model: rebuilt
    assert torch.equal(bank.read("v", 150), torch.full((1, 4), 150.0).half())


def test_bad_shards_and_ids_are_one_line_errors(tmp_path):
    bank = FeatureBank(tmp_path, channels=4)
    build_bank(bank, "v", [1], lambda s: torch.ones(2, 4))
    (tmp_path / "v" / "shard_00000.safetensors").write_bytes(b"garbage")
    with pytest.raises(InputError, match="shard_00000.safetensors: not a readable safetensors"):
        FeatureBank(tmp_path, channels=4).read("v", 1)
    (tmp_path / "v" / "bank.json").write_text('{"format": "other"}')
    with pytest.raises(InputError, match="bank.json: field format"):
        FeatureBank(tmp_path, channels=4).read("v", 1)
    with pytest.raises(UsageError, match="video id"):
        bank.video_dir("../escape")
    with pytest.raises(UsageError, match="video id"):
        bank.video_dir(".hidden")
    assert bank.video_dir("-5KQ66BBWC4").name == "-5KQ66BBWC4"  # real AVA ids may start with '-'
    with pytest.raises(ValueError, match="seconds must increase"):
        with bank.writer("w") as w:
            w.add(3, torch.ones(1, 4))
            w.add(2, torch.ones(1, 4))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_imports_mmaction2s_bank_pickle(tmp_path):
    pkl = tmp_path / "lfb_val.pkl"
    torch.save({"vid1": {902: [torch.ones(4), torch.zeros(4)], 901: torch.ones(1, 4)}}, pkl)
    bank = FeatureBank(tmp_path / "bank", channels=4)
    assert import_mmaction2_bank(pkl, bank) == ["vid1"]
    assert bank.seconds("vid1") == [901, 902] and bank.read("vid1", 902).shape == (2, 4)
    (tmp_path / "bad.pkl").write_bytes(b"\x80\x04junk")
    with pytest.raises(CheckpointError, match="bad.pkl"):
        import_mmaction2_bank(tmp_path / "bad.pkl", bank)


# ------------------------------------------------------------------------------------------ operators


@pytest.mark.parametrize("fbo", ["non_local", "avg", "max"])
def test_fbo_head_reproduces_mmaction2_given_the_same_bank(tmp_path, fbo):
    s = REF["fbo_small"]
    bank = _reference_bank(tmp_path)
    lt = bank.windows([tuple(k) for k in REF["roi_keys"]], window_size=s["window_size"],
                      max_per_second=s["max_per_second"])
    head = FBOHead(fbo=fbo, st_feat_channels=s["channels"], lt_feat_channels=s["channels"],
                   latent_channels=s["latent"], num_non_local_layers=s["layers"]).eval()
    if fbo == "non_local":
        head.load_state_dict(reference_weights((k, v.shape) for k, v in head.state_dict().items()), strict=True)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(s["rois"], s["channels"], 1, 4, 4, generator=g)
    with torch.no_grad():
        out = head(x, lt).flatten(1)
    want = torch.tensor(REF["fbo"][fbo])
    assert out.shape == want.shape
    assert (out - want).abs().max() <= 1e-4 * want.abs().max()
    if fbo == "non_local":     # a wrong window (one second off) is caught
        lt_off = bank.windows([(v, t + 1) for v, t in REF["roi_keys"]], window_size=s["window_size"],
                              max_per_second=s["max_per_second"])
        with torch.no_grad():
            assert (head(x, lt_off).flatten(1) - want).abs().max() > 1e-3 * want.abs().max()   # 10x the tolerance


@pytest.mark.parametrize("fbo", ["non_local", "avg", "max"])
def test_lfb_detector_layout_is_mmaction2s(fbo):
    ref = REF["layouts"][f"lfb_{fbo}_slowonly_r50_ava"]
    sd = lfb_nl_slowonly_r50_ava(fbo=fbo).state_dict()
    assert len(sd) == ref["num_keys"] and _layout_sha(sd) == ref["sha256"]


def test_mmaction2_lfb_checkpoint_loads_strictly_and_a_wrong_one_is_refused(tmp_path):
    model = lfb_nl_slowonly_r50_ava()
    sd = reference_weights((k, v.shape) for k, v in model.state_dict().items())
    ckpt = {"state_dict": dict(sd) | {"data_preprocessor.mean": torch.zeros(3, 1, 1, 1)}, "meta": {}}
    torch.save(ckpt, tmp_path / "lfb.pth")
    load_mmaction2_lfb_detector(model, tmp_path / "lfb.pth")
    assert torch.equal(model.roi_head.shared_head.fbo.non_local_layer_2.ln.weight,
                       sd["roi_head.shared_head.fbo.non_local_layer_2.ln.weight"])
    del sd["roi_head.shared_head.fbo.non_local_layer_1.global_conv.conv.bias"]
    with pytest.raises(CheckpointError, match="missing keys.*global_conv"):
        load_mmaction2_lfb_detector(model, sd)
    with pytest.raises(CheckpointError, match="shape mismatch"):   # the avg head's 4096-wide classifier
        load_mmaction2_lfb_detector(lfb_nl_slowonly_r50_ava(fbo="avg"),
                                    reference_weights((k, v.shape) for k, v in model.state_dict().items()))


def test_lfb_detector_forward_backward_and_bank_features(tmp_path):
    torch.manual_seed(0)
    model = lfb_nl_slowonly_r50_ava(num_classes=5, latent_channels=32)
    clip = torch.randn(1, 3, 2, 32, 32)
    rois = torch.tensor([[0, 2.0, 2.0, 20.0, 30.0], [0, 10.0, 0.0, 31.0, 25.0]])
    model.eval()
    with torch.no_grad():
        st = lfb_infer_features(model, clip, rois)                       # pass 1: (R, 2048)
    assert st.shape == (2, 2048)
    bank = FeatureBank(tmp_path, channels=2048)
    build_bank(bank, "clip", [3, 4], lambda s: st)
    lt = bank.windows([("clip", 4), ("clip", 4)], window_size=10, max_per_second=5)
    assert lt.shape == (2, 50, 2048)
    with torch.no_grad():
        # the FBO head's identity half is exactly the bank's short-term feature
        fbo_in = model.roi_head.bbox_roi_extractor(model.forward_features(clip), rois)
        assert torch.allclose(model.roi_head.shared_head(fbo_in, lt)[:, :2048].flatten(1), st, atol=1e-6)
    model.train()
    logits = model(clip, rois, lt)
    assert logits.shape == (2, 5)
    logits.sum().backward()
    assert model.roi_head.shared_head.fbo.non_local_layer_1.global_conv.conv.weight.grad.abs().sum() > 0
    assert model.backbone.conv1.conv.weight.grad.abs().sum() > 0


def test_fused_lfb_detector_gives_the_same_scores():
    from humact.deploy import fuse

    torch.manual_seed(1)
    model = lfb_nl_slowonly_r50_ava(num_classes=4, latent_channels=16).eval()
    clip, rois = torch.randn(1, 3, 2, 32, 32), torch.tensor([[0, 2.0, 2.0, 20.0, 30.0]])
    lt = torch.randn(1, 30, 2048)
    fast = fuse(model)
    assert type(fast) is LFBDetector and fast.backbone is not model.backbone
    assert torch.allclose(fast.predict(clip, rois, lt), model.predict(clip, rois, lt), atol=1e-5)


@pytest.mark.slow
def test_slowfast_lfb_forward_backward():
    model = lfb_slowfast_r50_ava(num_classes=3, latent_channels=16)
    assert model.roi_head.bbox_head.fc_cls.in_features == 2304 + 16
    clip, rois = torch.randn(1, 3, 32, 64, 64), torch.tensor([[0, 0.0, 0.0, 63.0, 63.0]])
    out = model(clip, rois, torch.randn(1, 20, 2304))
    out.sum().backward()
    assert out.shape == (1, 3) and model.backbone.fast_path.conv1.conv.weight.grad is not None
