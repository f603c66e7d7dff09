"""`humact train`, `humact test` and `humact analyze` end to end on tiny synthetic data."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from humact.cli import main

TINY = ["--epochs", "1", "--batch-size", "4", "--clip-len", "8", "--base-channels", "8", "--num-threads", "1",
        "--test-clips", "2", "--normalize", "body", "--quiet"]


def _person(kind: str, rng, t=20):
    """COCO-17 pixel keypoints (1, T, 17, 2) of a standing person waving or squatting."""
    base = np.array([[50, 10], [48, 8], [52, 8], [46, 9], [54, 9], [42, 25], [58, 25], [38, 40], [62, 40],
                     [36, 55], [64, 55], [45, 60], [55, 60], [45, 80], [55, 80], [45, 100], [55, 100]], np.float32)
    kp = np.repeat(base[None], t, 0)
    phase = np.sin(np.linspace(0, 4 * np.pi, t) + rng.uniform(0, 3))
    if kind == "wave":
        kp[:, 10, 1] -= 40 + 10 * phase  # right wrist up and waving
        kp[:, 10, 0] += 8 * phase
    else:
        kp[:, :13, 1] += 15 * (1 + phase[:, None])  # upper body goes down and up
    return (kp + rng.normal(0, 0.5, kp.shape)).astype(np.float32)[None] * 3 + 100


@pytest.fixture(scope="module")
def extract_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("extract")
    rng = np.random.default_rng(0)
    for kind in ("squat", "wave"):
        (root / kind).mkdir()
        for i in range(6):
            kp = _person(kind, rng)
            anno = {"frame_dir": f"{kind}{i}", "label": -1, "img_shape": (480, 640), "original_shape": (480, 640),
                    "total_frames": kp.shape[1], "keypoint": kp, "keypoint_score": np.full(kp.shape[:3], 0.9, np.float32)}
            with open(root / kind / f"{kind}{i}.pkl", "wb") as f:
                pickle.dump(anno, f)
    return root


@pytest.fixture(scope="module")
def trained(extract_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    rc = main(["train", "--dataset", "extract", "--data", str(extract_folder), "--out", str(out), *TINY])
    assert rc == 0
    return out


def test_train_writes_a_safetensors_model_with_its_config_and_class_names(trained):
    meta = json.loads((trained / "model.json").read_text())
    assert meta["classes"] == ["squat", "wave"]
    assert meta["layout"] == "coco" and meta["in_channels"] == 3
    assert meta["config"]["optim"]["epochs"] == 1 and meta["epochs_trained"] == 1
    assert (trained / "model.safetensors").stat().st_size > 0
    assert (trained / "last.safetensors").is_file()


def test_test_writes_metrics_confusion_matrix_and_scores(trained, extract_folder, tmp_path):
    rc = main(["test", str(trained / "model.safetensors"), "--dataset", "extract", "--data", str(extract_folder),
               "--clips", "3", "--threads", "1", "--out", str(tmp_path)])
    assert rc == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"top1", "top5", "mean_class_accuracy"} <= set(metrics)
    assert metrics["num_samples"] == 12 and metrics["num_clips"] == 3
    assert metrics["top5"] == 1.0  # two classes: both are in the top 5
    assert (tmp_path / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    scores = np.load(tmp_path / "scores.npy")
    assert scores.shape == (12, 2)
    np.testing.assert_allclose(scores.sum(1), 1, atol=1e-5)


def test_config_file_is_read_and_flags_override_it(extract_folder, tmp_path):
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'dataset = "extract"\ndata = "{extract_folder}"\nepochs = 5\nclip_len = 8\n'
                   'base_channels = 8\nbatch_size = 4\nnum_threads = 1\nnormalize = "body"\n')
    rc = main(["train", "--config", str(cfg), "--epochs", "1", "--out", str(tmp_path / "o"), "--quiet"])
    assert rc == 0
    meta = json.loads((tmp_path / "o" / "model.json").read_text())
    assert meta["config"]["optim"]["epochs"] == 1 and meta["config"]["input"]["clip_len"] == 8


def test_rerunning_a_finished_training_resumes_instead_of_starting_over(extract_folder, trained, capsys):
    rc = main(["train", "--dataset", "extract", "--data", str(extract_folder), "--out", str(trained), *TINY])
    assert rc == 0
    assert "resumed" in capsys.readouterr().out


def test_train_with_a_missing_data_path_exits_2_naming_it(tmp_path, capsys):
    rc = main(["train", "--dataset", "jhmdb", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "nope" in capsys.readouterr().err


def test_train_config_with_an_unknown_field_exits_2_naming_file_and_field(tmp_path, capsys):
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps({"epoch": 3}))
    assert main(["train", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "bad.json" in err and "'epoch'" in err


def test_fuse_weighs_each_model_by_its_stream_whatever_the_order(trained, extract_folder, tmp_path):
    bone = tmp_path / "bone"
    assert main(["train", "--dataset", "extract", "--data", str(extract_folder), "--out", str(bone),
                 "--stream", "b", *TINY]) == 0
    runs = []
    for i, model in enumerate([bone, trained, trained]):  # a bone model, then two joint "seeds"
        out = tmp_path / f"s{i}"
        assert main(["test", str(model / "model.safetensors"), "--dataset", "extract", "--data",
                     str(extract_folder), "--clips", "1", "--threads", "1", "--out", str(out)]) == 0
        runs.append(out / "scores.npy")
    fused = tmp_path / "fused"
    assert main(["test", "--fuse", *map(str, runs), "--dataset", "extract", "--data", str(extract_folder),
                 "--out", str(fused)]) == 0
    metrics = json.loads((fused / "metrics.json").read_text())
    assert metrics["weights"] == [0.6, 0.3, 0.3]  # CTR-GCN's 0.6 for b, and 0.6 shared by the two j
    expected = 0.6 * np.load(runs[0]) + 0.6 * np.load(runs[1])
    np.testing.assert_allclose(np.load(fused / "scores.npy"), expected / expected.sum(1, keepdims=True), atol=1e-6)


def test_fuse_of_a_file_without_its_model_exits_2_naming_the_file(trained, extract_folder, tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["test", str(trained / "model.safetensors"), "--dataset", "extract", "--data", str(extract_folder),
                 "--clips", "1", "--threads", "1", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    metrics["checkpoint"] = str(tmp_path / "gone.safetensors")
    (out / "metrics.json").write_text(json.dumps(metrics))
    assert main(["test", "--fuse", str(out / "scores.npy"), "--out", str(tmp_path / "f")]) == 2
    err = capsys.readouterr().err
    assert "metrics.json" in err and "'checkpoint'" in err


def _result_json(path, rng):
    from humact.io.results import write_result_json
    from humact.types import PoseTracks, VideoMeta, VideoResult

    t = 20
    kp = np.concatenate([_person("wave", rng), _person("squat", rng)])
    valid = np.ones((2, t), bool)
    valid[1, 5:] = False  # the second person is seen on 5 frames only
    kp[1, 5:] = 0
    tracks = PoseTracks(track_ids=np.array([3, 7]), keypoints=kp, keypoint_scores=np.full((2, t, 17), 0.9) * valid[..., None],
                        boxes=np.zeros((2, t, 4)), box_scores=valid.astype(np.float32), valid=valid)
    meta = VideoMeta(str(path.with_suffix(".mp4")), 640, 480, 30.0, t, np.arange(t) / 30.0)
    write_result_json(VideoResult(meta=meta, tracks=tracks), path)


def test_analyze_writes_top_actions_for_each_long_enough_track(trained, tmp_path, capsys):
    src = tmp_path / "clip.json"
    _result_json(src, np.random.default_rng(1))
    out = tmp_path / "out"
    rc = main(["analyze", str(src), "--model", str(trained / "model.safetensors"), "--no-video",
               "--threads", "1", "--out", str(out)])
    assert rc == 0
    doc = json.loads((out / "clip.mp4.json").read_text())
    assert doc["actions"]["labels"] == ["squat", "wave"]
    first, second = doc["tracks"]
    assert [a["label"] for a in first["actions"]] in (["squat", "wave"], ["wave", "squat"])
    assert sum(a["score"] for a in first["actions"]) == pytest.approx(1.0, abs=1e-3)
    # 5 frames < --min-frames 8: no actions at all (not the first classes at score 0), and why.
    assert second["actions"] == [] and "5 frames, fewer than the 8 needed" in second["no_actions"]
    assert "no actions (seen on 5 frames" in capsys.readouterr().out


def test_analyze_with_a_missing_video_exits_2_naming_it(tmp_path, capsys):
    assert main(["analyze", str(tmp_path / "missing.mp4"), "--out", str(tmp_path)]) == 2
    assert "missing.mp4" in capsys.readouterr().err


def _jhmdb_checkpoint(path):
    import torch

    from humact.config import config_from_dict
    from humact.io.checkpoints import save_checkpoint
    from humact.recognize.skeleton import build_model

    cfg = config_from_dict(dict(dataset="jhmdb", clip_len=8, base_channels=8, normalize="body", test_clips=2))
    torch.manual_seed(0)
    model = build_model(cfg, num_classes=14, layout="jhmdb15", in_channels=2)
    with torch.no_grad():  # non-trivial BatchNorm statistics, so the input's scale would show
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
    from humact.skeleton.datasets import JHMDB14_CLASSES

    save_checkpoint(path, model.state_dict(), {"config": cfg.to_dict(), "classes": list(JHMDB14_CLASSES),
                                               "layout": "jhmdb15", "in_channels": 2})
    return path


def test_per_track_recognition_ignores_where_the_person_is_and_the_video_resolution(tmp_path):
    from humact.recognize.skeleton import Recognizer
    from humact.types import PoseTracks

    rec = Recognizer.from_checkpoint(_jhmdb_checkpoint(tmp_path / "m.safetensors"))
    kp = _person("wave", np.random.default_rng(0))
    t = kp.shape[1]

    def tracks(k):
        return PoseTracks(track_ids=np.array([0]), keypoints=k, keypoint_scores=np.ones((1, t, 17)),
                          boxes=np.zeros((1, t, 4)), box_scores=np.ones((1, t)), valid=np.ones((1, t), bool))

    a = rec.recognize_tracks(tracks(kp))
    b = rec.recognize_tracks(tracks(kp * 2.5 + np.float32([400, 90])))
    assert a.scores.shape == (1, 14) and a.labels[0] == "catch"
    np.testing.assert_allclose(a.scores.sum(), 1, atol=1e-5)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)


def test_the_shipped_default_model_loads_strictly_with_the_14_jhmdb_classes():
    from humact.skeleton.datasets import JHMDB14_CLASSES
    from humact.recognize.skeleton import DEFAULT_MODEL, Recognizer

    rec = Recognizer.from_checkpoint(DEFAULT_MODEL)  # load_state_dict(strict=True)
    assert rec.classes == JHMDB14_CLASSES
    assert rec.layout == "jhmdb15" and rec.recipe.normalize == "body"
    assert DEFAULT_MODEL.stat().st_size < 5_000_000


def test_a_loaded_gcn_predicts_through_its_fused_twin_with_the_same_probabilities():
    import torch

    from humact.recognize.skeleton import DEFAULT_MODEL, Recognizer
    from humact.deploy.stgcn import FusedRecognizerGCN

    rec = Recognizer.from_checkpoint(DEFAULT_MODEL)
    assert isinstance(rec.inference_model, FusedRecognizerGCN)
    x = torch.randn(2, 3, 1, 32, 15, 2, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.allclose(rec.model.predict(x), rec.inference_model.predict(x), atol=1e-6)


@pytest.mark.parametrize("model", ["aagcn", "msg3d", "ctrgcn", "dgstgcn"])
def test_every_gcn_of_the_zoo_trains_and_tests_through_the_cli(model, extract_folder, tmp_path):
    out = tmp_path / model
    assert main(["train", "--dataset", "extract", "--data", str(extract_folder), "--out", str(out), "--model", model,
                 *TINY]) == 0
    meta = json.loads((out / "model.json").read_text())
    assert meta["config"]["model"]["name"] == model
    assert main(["test", str(out / "model.safetensors"), "--dataset", "extract", "--data", str(extract_folder),
                 "--clips", "1", "--threads", "1", "--out", str(tmp_path / "t")]) == 0
    assert json.loads((tmp_path / "t" / "metrics.json").read_text())["model"] == model


def test_zero_clips_is_a_one_line_usage_error_not_the_default(trained, capsys):
    assert main(["test", str(trained / "model.safetensors"), "--clips", "0", "--out", "x"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--clips" in err and "expected an integer >= 1, got 0" in err


def test_frames_with_a_box_but_no_keypoint_are_not_posed_frames(tmp_path):
    """A detector's box-only rows (keypoint scores 0) give the skeleton model nothing: a track with
    fewer posed frames than --min-frames gets no actions, and box-only frames are cut out."""
    from humact.recognize.skeleton import Recognizer
    from humact.types import PoseTracks

    rec = Recognizer.from_checkpoint(_jhmdb_checkpoint(tmp_path / "m.safetensors"))
    kp = _person("wave", np.random.default_rng(0))
    t = kp.shape[1]
    ks = np.ones((1, t, 17), np.float32)
    ks[0, 5:] = 0.0                                  # seen on every frame, posed on 5

    def tracks(k, s):
        return PoseTracks(track_ids=np.array([0]), keypoints=k, keypoint_scores=s,
                          boxes=np.zeros((1, t, 4)), box_scores=np.ones((1, t)), valid=np.ones((1, t), bool))

    out = rec.recognize_tracks(tracks(kp, ks), min_frames=8)
    assert "seen on 5 frames, fewer than the 8 needed" in out.reasons[0] and not out.scores.any()
    # Box-only frames inserted between posed frames change nothing: they are cut out first.
    ks2 = np.ones((1, t + 4, 17), np.float32)
    ks2[0, 10:14] = 0.0
    kp2 = np.concatenate([kp[:, :10], np.zeros((1, 4, 17, 2), np.float32), kp[:, 10:]], axis=1)
    t2 = t + 4
    with_gap = PoseTracks(track_ids=np.array([0]), keypoints=kp2, keypoint_scores=ks2, boxes=np.zeros((1, t2, 4)),
                          box_scores=np.ones((1, t2)), valid=np.ones((1, t2), bool))
    np.testing.assert_allclose(rec.recognize_tracks(with_gap).scores, rec.recognize_tracks(tracks(kp, np.ones((1, t, 17)))).scores,
                               atol=1e-6)
