"""`humact gesture`: the sliding window per hand track, the HaGRID checkpoint's download and loading,
the command on a shared video, and the live path on a served stream.

Unit tests use a stub model; the checkpoint tests need `../shared` (PYSKL's demo/hagrid.pth is
there), the video and stream tests also the hand model files (`humact setup`).
"""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import torch

from humact.cli import main
from humact.skeleton.gesture import (
    HAGRID_CLASSES,
    HAGRID_NAME,
    GestureRecognizer,
    download_gesture_checkpoint,
    find_gesture_checkpoint,
    load_hagrid,
    window_input,
)
from humact.types import HandDetections
from conftest import shared_file


class _Recorder(torch.nn.Module):
    """Stands in for the gesture model: records its inputs, answers class = window's first x * 10."""

    def __init__(self):
        super().__init__()
        self.inputs = []

    def predict(self, x):
        self.inputs.append(x.clone())
        p = torch.full((x.shape[0], len(HAGRID_CLASSES)), 1e-3)
        for i in range(x.shape[0]):
            p[i, int(x[i, 0, 0, 0, 0, 0] * 10) % len(HAGRID_CLASSES)] = 1.0
        return p / p.sum(1, keepdim=True)


def _hand(frame: int, tid: int, x: float) -> HandDetections:
    kp = np.zeros((1, 21, 3), np.float32)
    kp[0, :, 0] = x * 640
    kp[0, :, 1] = np.linspace(100, 200, 21)
    return HandDetections(frame=[frame], xyxy=[[0, 0, 1, 1]], score=[1.0], handedness=[0.5], keypoints=kp,
                          world=np.zeros((1, 21, 3)), track_id=[tid])


def test_the_window_is_the_tracks_last_ten_frames_normalised_by_the_frame_size():
    model = _Recorder()
    rec = GestureRecognizer(model, every=1)
    for f in range(12):
        out = rec.update(_hand(f, 7, 0.01 * f), f, f / 30, 640, 480)
        assert len(out) == 1 and out[0].track_id == 7 and out[0].window == min(f + 1, 10)
    x = model.inputs[-1]
    assert x.shape == (1, 1, 1, 10, 21, 2)
    np.testing.assert_allclose(x[0, 0, 0, :, 0, 0].numpy(), 0.01 * np.arange(2, 12), rtol=1e-5)
    np.testing.assert_allclose(x[0, 0, 0, 0, :, 1].numpy(), np.linspace(100, 200, 21) / 480, rtol=1e-5)
    assert out[0].top[0][0] == HAGRID_CLASSES[int(0.02 * 10)] and len(out[0].top) == 5


def test_a_short_window_is_looped_and_a_gap_starts_the_window_again():
    model = _Recorder()
    rec = GestureRecognizer(model, every=1)
    rec.update(_hand(0, 1, 0.1), 0, 0.0, 640, 480)
    rec.update(_hand(1, 1, 0.2), 1, 0.0, 640, 480)
    loop = model.inputs[-1][0, 0, 0, :, 0, 0].numpy()
    assert sorted(set(np.round(loop, 4))) == [0.1, 0.2] and len(loop) == 10   # 2 frames looped to 10
    out = rec.update(_hand(3, 1, 0.3), 3, 0.1, 640, 480)                      # frame 2 missing
    assert out[0].window == 1


def test_predictions_come_every_n_frames_for_every_hand_in_one_batch():
    model = _Recorder()
    rec = GestureRecognizer(model, every=2)
    made = []
    for f in range(6):
        both = HandDetections.merge([_hand(f, 0, 0.1), _hand(f, 1, 0.5)])
        made.append(len(rec.update(both, f, 0.0, 640, 480)))
    assert made == [2, 0, 2, 0, 2, 0]
    assert all(x.shape[0] == 2 for x in model.inputs)


def test_the_window_input_is_pyskls_test_pipeline_on_the_reference_clips():
    ref = torch.load(shared_file("reference", "pyskl", "stgcnpp_hagrid.pt"), weights_only=True)
    for name in ("synthetic_palm_10f", "synthetic_palm_6f"):
        raw = ref["raw_keypoint"][name].numpy()[0]
        row = ref["input_names"].index(name)
        np.testing.assert_array_equal(window_input(raw), ref["input"][row:row + 1].numpy())


def test_the_shipped_class_names_are_the_checkpoints():
    ref = torch.load(shared_file("reference", "pyskl", "stgcnpp_hagrid.pt"), weights_only=True)
    assert list(HAGRID_CLASSES) == list(ref["class_names"])


def test_the_checkpoint_downloads_from_a_file_url_verified_and_loads_strictly(tmp_path):
    src = shared_file("models", "pyskl_hagrid_stgcnpp.pth")
    logs = []
    path = download_gesture_checkpoint(tmp_path / "m", url=src.as_uri(), log=logs.append)
    assert path == tmp_path / "m" / HAGRID_NAME and path.read_bytes() == src.read_bytes()
    assert find_gesture_checkpoint(model_dir=tmp_path / "m") == path
    model = load_hagrid(path)
    ref = torch.load(shared_file("reference", "pyskl", "stgcnpp_hagrid.pt"), weights_only=True)
    torch.set_num_threads(1)
    with torch.no_grad():
        assert (model.predict(ref["input"][:1, None]) - ref["prob"][:1]).abs().max() < 1e-5


def test_a_download_with_the_wrong_bytes_is_refused_and_leaves_nothing(tmp_path):
    from humact.io.download import DownloadError

    bad = tmp_path / "hagrid.pth"
    bad.write_bytes(b"not the checkpoint")
    with pytest.raises(DownloadError, match="sha256"):
        download_gesture_checkpoint(tmp_path / "m", url=bad.as_uri(), log=lambda s: None)
    assert not (tmp_path / "m" / HAGRID_NAME).exists()


def test_setup_gestures_fetches_the_model_through_the_command(tmp_path, monkeypatch, capsys):
    from humact.perception import model_files as mf

    src = shared_file("models", "pyskl_hagrid_stgcnpp.pth")
    monkeypatch.setattr(mf, "setup_models", lambda *a, **k: {})
    assert main(["setup", "--model-dir", str(tmp_path), "--gestures", "--gestures-url", src.as_uri()]) == 0
    assert (tmp_path / HAGRID_NAME).read_bytes() == src.read_bytes()


def test_a_missing_or_foreign_model_is_one_line_and_exit_code_2(tmp_path, capsys):
    assert main(["gesture", str(tmp_path), "--model", str(tmp_path / "none.pth")]) == 2
    assert "--model: no such file" in capsys.readouterr().err
    other = tmp_path / "other.pth"
    torch.save({"w": torch.zeros(2)}, other)
    assert main(["gesture", str(tmp_path), "--model", str(other), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "other.pth" in err[0] and "missing keys" in err[0]


def test_gesture_needs_exactly_one_source(capsys):
    assert main(["gesture"]) == 2
    assert main(["gesture", "x.mp4", "--camera", "0"]) == 2
    assert "either VIDEO_OR_FOLDER" in capsys.readouterr().err


# --- real models on real video ------------------------------------------------------------------

def _need_hand_models():
    from humact.perception.model_files import HAND_FILES, ModelFilesMissing, find_models

    try:
        find_models(files=HAND_FILES)
    except ModelFilesMissing as e:
        pytest.skip(str(e))


@pytest.mark.slow
def test_gesture_on_the_arm_wrestling_clip_writes_hands_gestures_and_the_video(tmp_path, capsys):
    _need_hand_models()
    video = shared_file("data", "media", "armwrestling_340x256.mp4")
    model = shared_file("models", "pyskl_hagrid_stgcnpp.pth")
    assert main(["gesture", str(video), "--out", str(tmp_path), "--model", str(model), "--max-frames", "40",
                 "--no-progress"]) == 0
    doc = json.loads((tmp_path / "armwrestling_340x256.mp4.gestures.json").read_text())
    assert doc["schema"] == "humact.gestures" and doc["version"] == 1 and len(doc["labels"]) == 40
    assert doc["video"]["frames_decoded"] == 40 and len(doc["keypoint_names"]) == 21
    assert doc["hands"] and len(doc["hands"][0]["keypoints"][0]) == 21
    assert len(doc["gestures"]) >= 15 and all(g["top"][0]["label"] in HAGRID_CLASSES for g in doc["gestures"])
    from humact.video import probe

    assert probe(tmp_path / "armwrestling_340x256.mp4.gestures.mp4").num_frames == 40
    # a second run finds the outputs and skips the input
    assert main(["gesture", str(video), "--out", str(tmp_path), "--model", str(model), "--no-progress"]) == 0
    assert "already done" in capsys.readouterr().out


@pytest.mark.slow
def test_the_live_path_consumes_a_served_stream_as_it_arrives_with_a_bounded_queue(tmp_path):
    """The arm-wrestling clip re-encoded as MPEG-TS and sent over HTTP across 3 s, like a broadcast."""
    _need_hand_models()
    from test_live import _paced

    from humact.gestures import GestureOptions, gesture_live
    from humact.video import LiveStats, VideoWriter, read_frames

    src = shared_file("data", "media", "armwrestling_340x256.mp4")
    model = shared_file("models", "pyskl_hagrid_stgcnpp.pth")
    ts = tmp_path / "live.ts"
    with VideoWriter(ts, width=340, height=256, fps=28.0) as w:
        for i, rgb in read_frames(src, stop=60):
            w.write(rgb, i / 28.0)
    server, url, handler = _paced(ts.read_bytes(), seconds=3.0)
    stats = LiveStats()
    seen = []
    try:
        gesture_live(url, tmp_path / "out", GestureOptions(model=model, progress=False), queue_size=3,
                     drop=False, stats=stats, on_frame=lambda i, t, rgb, hands, status: seen.append(
                         (time.monotonic(), i, len(hands), status)))
    finally:
        server.shutdown()
    assert [i for _, i, _, _ in seen] == list(range(60))
    assert seen[0][0] < handler.finished_at - 1.0       # frames were processed while the stream was sent
    assert stats.max_depth <= 3 and stats.dropped == 0
    assert sum(n > 0 for _, _, n, _ in seen) >= 40 and seen[-1][3].endswith("fps")
    outs = list((tmp_path / "out").glob("*.gestures.json"))
    assert len(outs) == 1
    doc = json.loads(outs[0].read_text())
    assert doc["video"]["frames_decoded"] == 60 and doc["gestures"] and not doc["partial"]
