"""`humact detect --lfb / --arm-rois / --flow / --audio`: the extra streams wired into the detect pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from humact.cli import main
from humact.perception import pipeline
from humact.types import Detections

W, H, FPS, N = 96, 72, 10, 20


def _video_with_audio(path, audio=True):
    import av

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (H + 20, W + 20, 3), dtype=np.uint8)
    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg4", rate=FPS)
        v.width, v.height, v.pix_fmt = W, H, "yuv420p"
        a = c.add_stream("pcm_s16le", rate=16000) if audio else None
        if a is not None:
            a.layout = "mono"
        for i in range(N):
            fr = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[i // 2:i // 2 + H, :W]), format="rgb24")
            fr.pts = i
            for p in v.encode(fr):
                c.mux(p)
        if a is not None:
            t = np.arange(16000 * N // FPS) / 16000
            s = (0.3 * np.sin(2 * np.pi * 300 * t) * 32767).astype(np.int16)[None]
            af = av.AudioFrame.from_ndarray(s, format="s16", layout="mono")
            af.sample_rate, af.pts = 16000, 0
            for p in a.encode(af):
                c.mux(p)
            for p in a.encode(None):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    return path


class OnePerson:
    """One person on every frame, left arm raised: elbow and wrist confident and inside the frame."""

    name = "scripted"

    def reset(self) -> None:
        pass

    def __call__(self, frame, t):
        kp = np.array([[48, 8], [46, 6], [50, 6], [44, 8], [52, 8], [40, 20], [56, 20], [30, 30], [64, 34],
                       [24, 16], [70, 44], [42, 44], [54, 44], [42, 56], [54, 56], [42, 68], [54, 68]], np.float32)
        return Detections(frame=np.array([t]), xyxy=np.array([[20, 2, 76, 70]], np.float32),
                          score=np.array([0.95], np.float32), keypoints=kp[None],
                          keypoint_scores=np.full((1, 17), 0.9, np.float32), track_id=np.array([-1]))


@pytest.fixture
def scripted(monkeypatch):
    monkeypatch.setattr(pipeline, "make_backend", lambda config: OnePerson())


@pytest.mark.slow
def test_all_four_streams_run_end_to_end_and_say_their_weights_are_untrained(tmp_path, capsys, scripted):
    (tmp_path / "in").mkdir()
    _video_with_audio(tmp_path / "in" / "clip.mkv")
    out = tmp_path / "out"
    args = ["detect", str(tmp_path / "in"), "--out", str(out), "--model", "slowonly_r50_4x16_ava",
            "--checkpoint", "random", "--lfb", "--lfb-window", "10", "--arm-rois", "--flow", "--audio",
            "--threshold", "0", "--no-progress", "--no-video", "--no-timeline", "--threads", "2"]
    assert main(args) == 0, capsys.readouterr()
    text = capsys.readouterr().out
    assert "untrained weights" in text and "per keyframe:" in text and "peak RSS" in text
    assert "audio: 2.0 s at 16000 Hz" in text and "arms: 4 arm boxes on 2 keyframes" in text   # both arms
    rows = (out / "clip.mkv.ava.csv").read_text().splitlines()
    assert len(rows) == 2 * 80                                     # 2 keyframes x 1 person x 80 classes
    assert (out / "clip.mkv.flow" / "flow_x_00019.jpg").is_file()
    assert (out / "clip.mkv.lfb" / "clip" / "bank.json").is_file()
    # a re-run of this input reuses the bank and the flow images
    (out / "clip.mkv.json").unlink()
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "flow: 19 pairs" in text and text.count("reused") == 2
    assert (out / "clip.mkv.ava.csv").read_text().splitlines() == rows


@pytest.mark.slow
def test_a_video_without_audio_runs_with_the_audio_stream_off(tmp_path, capsys, scripted):
    video = _video_with_audio(tmp_path / "silent.mkv", audio=False)
    assert main(["detect", str(video), "--out", str(tmp_path / "o"), "--model", "slowonly_r50_4x16_ava",
                 "--checkpoint", "random", "--audio", "--no-progress", "--no-video", "--no-timeline"]) == 0
    assert "no audio track: the audio stream is off" in capsys.readouterr().out


def test_stream_usage_errors_are_one_line(tmp_path, capsys):
    video = tmp_path / "v.mkv"
    video.write_bytes(b"")
    cases = [(["--lfb"], "need an AVA detector"),
             (["--model", "slowfast_r50_8x8_ava", "--checkpoint", "random", "--lfb"], "feature bank runs with"),
             (["--model", "slowonly_r50_4x16_ava", "--checkpoint", "random", "--flow", "--tta"], "--tta is not combined")]
    for extra, msg in cases:
        assert main(["detect", str(video), "--out", str(tmp_path / "o"), *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and msg in err[0], err
