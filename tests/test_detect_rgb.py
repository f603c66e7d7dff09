"""`humact detect` with MMAction2's AVA detectors: the whole test path equals MMAction2's, TTA, fusion,
loading from a path or a URL.

tests/data/detect_mmaction2.json holds MMAction2 1.2.0's own outputs (frame sampling, resize of frames
and proposals, flip, normalisation, backbone, RoI extractor with and without `with_global`, head) on
the shared arm-wrestling video with fixed boxes and the crc32 reference weights (made by
benchmarks/make_detect_references.py, which says what ran in MMAction2 and what did not).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import shared_file
from humact.detect.keyframes import ava_clip_indices
from humact.detect.rgb import fuse_logits, load_detector, load_detectors, prepare_clip, rescale_size
from humact.errors import CheckpointError
from humact.video_models.ava import DETECTORS, build_detector
from humact.io.checkpoints import reference_weights

REF = json.loads((Path(__file__).parent / "data" / "detect_mmaction2.json").read_text())


def _checkpoint(name: str, tmp_path: Path) -> Path:
    model, _ = build_detector(name)
    path = tmp_path / f"{name}.pth"
    torch.save({"state_dict": reference_weights((k, v.shape) for k, v in model.state_dict().items()),
                "meta": {"note": "reference weights"}}, path)
    return path


def _frames(indices):
    from humact.video import read_frames

    video = shared_file("data", "media", "armwrestling_340x256.mp4")
    got = dict(read_frames(video, indices=sorted(set(indices))))
    return np.stack([got[int(i)] for i in indices])


def _check(name: str, tmp_path: Path, views=None) -> None:
    det = load_detector(name, _checkpoint(name, tmp_path))     # the fused twin, as `humact detect` runs
    assert REF["num_frames"] == 280 and REF["fps"] == 28.0
    for ref in REF["models"][name]:
        if views is not None and (ref["short_side"], ref["flip"]) not in views:
            continue
        center = int(round(ref["timestamp"] * REF["fps"]))
        idx = ava_clip_indices(center, REF["num_frames"], clip_len=det.spec.clip_len,
                               frame_interval=det.spec.frame_interval)
        assert idx.tolist() == ref["frame_inds"]
        frames = _frames(idx)
        x, rois = prepare_clip(frames, np.array(REF["boxes"]), det.spec, short_side=ref["short_side"],
                               flip=ref["flip"])
        assert list(x.shape) == ref["input_shape"]
        assert x.double().sum().item() == pytest.approx(ref["input_sum"], rel=1e-6, abs=1e-2)
        assert x.double().abs().sum().item() == pytest.approx(ref["input_abs_sum"], rel=1e-7)
        assert torch.allclose(rois, torch.tensor(ref["rois"]), atol=1e-4)
        logits = det.logits(frames, np.array(REF["boxes"]), short_side=ref["short_side"], flip=ref["flip"])
        want = torch.tensor(ref["logits"])
        assert (logits - want).abs().max() <= 1e-4 * want.abs().max(), (name, ref["short_side"], ref["flip"])


def test_slowonly_whole_path_equals_mmaction2(tmp_path):
    _check("slowonly_r50_4x16_ava", tmp_path, views=[(256, False)])


@pytest.mark.slow
def test_slowonly_tta_views_equal_mmaction2_resize_and_flip(tmp_path):
    _check("slowonly_r50_4x16_ava", tmp_path)


def test_slowonly_context_with_global_equals_mmaction2(tmp_path):
    _check("slowonly_r50_4x16_context_ava", tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["slowfast_r50_4x16_ava", "slowfast_r50_4x16_context_ava", "slowfast_r50_8x8_ava"])
def test_slowfast_whole_path_equals_mmaction2(name, tmp_path):
    _check(name, tmp_path)


def test_context_checkpoint_layout_doubles_the_head_input_only():
    plain = {k: tuple(v.shape) for k, v in build_detector("slowfast_r50_4x16_ava")[0].state_dict().items()}
    ctx = {k: tuple(v.shape) for k, v in build_detector("slowfast_r50_4x16_context_ava")[0].state_dict().items()}
    assert plain.keys() == ctx.keys()
    diff = {k for k in plain if plain[k] != ctx[k]}
    assert diff == {"roi_head.bbox_head.fc_cls.weight"} and ctx["roi_head.bbox_head.fc_cls.weight"] == (81, 4608)


def test_a_plain_checkpoint_does_not_load_into_the_context_model(tmp_path):
    with pytest.raises(CheckpointError, match="shape mismatch.*fc_cls.weight.*context_ava"):
        load_detector("slowonly_r50_4x16_context_ava", _checkpoint("slowonly_r50_4x16_ava", tmp_path))


def test_loads_from_a_file_url_into_the_download_cache(tmp_path, monkeypatch):
    path = _checkpoint("slowonly_r50_4x16_ava", tmp_path)
    monkeypatch.setenv("HUMACT_CACHE_DIR", str(tmp_path / "cache"))
    det = load_detector("slowonly_r50_4x16_ava", path.as_uri())
    assert (tmp_path / "cache" / path.name).is_file() and det.num_classes == 81


def test_normalisation_comes_from_the_checkpoint_when_it_has_it(tmp_path):
    model, _ = build_detector("slowonly_r50_4x16_ava")
    sd = reference_weights((k, v.shape) for k, v in model.state_dict().items())
    sd["data_preprocessor.mean"] = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1, 1)
    sd["data_preprocessor.std"] = torch.tensor([4.0, 5.0, 6.0]).view(3, 1, 1, 1)
    torch.save(sd, tmp_path / "c.pth")
    det = load_detector("slowonly_r50_4x16_ava", tmp_path / "c.pth")
    assert det.spec.mean == (1.0, 2.0, 3.0) and det.spec.std == (4.0, 5.0, 6.0)


def test_rescale_follows_mmcv_rounding_and_boxes_follow_resize_and_flip():
    assert rescale_size(340, 256, 256) == (340, 256)
    assert rescale_size(1920, 1080, 256) == (455, 256)    # 455.11 -> 455
    assert rescale_size(341, 256, 224) == (298, 224)      # 298.375 -> 298
    frames = np.zeros((4, 100, 200, 3), np.uint8)
    spec = DETECTORS["slowonly_r50_4x16_ava"][2]
    x, rois = prepare_clip(frames, np.array([[10.0, 20.0, 50.0, 60.0]]), spec, short_side=200, flip=True)
    assert x.shape == (1, 3, 4, 200, 400)
    assert rois.tolist() == [[0.0, 400 - 100.0, 40.0, 400 - 20.0, 120.0]]


def test_clip_windows_of_the_test_pipeline_and_the_demo_differ_by_one_interval():
    assert ava_clip_indices(100, 300, clip_len=4, frame_interval=16).tolist() == [68, 84, 100, 116]
    assert ava_clip_indices(100, 300, clip_len=4, frame_interval=16, mode="demo").tolist() == [84, 100, 116, 132]
    assert ava_clip_indices(5, 300, clip_len=4, frame_interval=16).tolist() == [0, 0, 5, 21]   # clamped


def test_fusion_rules():
    z = np.array([[[0.0, 2.0]], [[2.0, -4.0]], [[4.0, 0.0]], [[-6.0, 1.0]]])      # 4 models, 1 box, 2 classes
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    assert np.allclose(fuse_logits(z, "mean"), sig(z).mean(0))
    assert np.allclose(fuse_logits(z, "mean_logit"), sig(z.mean(0)))
    # k = 4 // 2 = 2 largest logits per box and class: (4, 2) -> 3 and (2, 1) -> 1.5
    assert np.allclose(fuse_logits(z, "topk_logit"), sig(np.array([[3.0, 1.5]])))
    assert np.allclose(fuse_logits(z[:1], "topk_logit"), sig(z[0]))               # k >= 1


def test_fused_detectors_score_every_box_and_name_classes_from_the_label_map(tmp_path):
    ck = _checkpoint("slowonly_r50_4x16_ava", tmp_path)
    lm = tmp_path / "map.pbtxt"
    lm.write_text('item {\n  name: "stand"\n  id: 12\n}\n')
    ds = load_detectors(["slowonly_r50_4x16_ava", "slowonly_r50_4x16_ava"], [ck, ck], label_map=lm,
                        fusion="mean_logit")
    assert len(ds.labels) == 80 and ds.labels[11] == "stand" and ds.labels[0] == "action 1"
    frames = np.random.default_rng(0).integers(0, 255, (70, 64, 80, 3), dtype=np.uint8)
    boxes = np.array([[0, 0, 40, 64], [30, 10, 80, 60]], np.float32)
    one = ds.detectors[0].probabilities(frames[[18, 34, 50, 66]], boxes)[:, 1:]
    got = ds.keyframe_scores(lambda idx: frames[idx], 50, 70, boxes)
    assert got.shape == (2, 80) and np.allclose(got, one, rtol=1e-6, atol=1e-9)   # two equal models fuse to one
