"""Audio stream: PyAV decode to 16 kHz mono, keyframe windows, log-mel, the VGG-style CNN, score fusion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from humact.errors import InputError
from humact.video_models.audio import (AUDIBLE_CLASSES, AudioCNN, AudioStream, AudioTrack, fuse_audio_scores,
                                       keyframe_windows, log_mel, mel_filterbank, read_audio)


def _video_with_tone(path, *, freq=1000.0, seconds=2.0, rate=44100, audio=True):
    import av

    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg4", rate=10)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("pcm_s16le", rate=rate) if audio else None
        if a is not None:
            a.layout = "stereo"
        for i in range(int(seconds * 10)):
            fr = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            fr.pts = i
            for p in v.encode(fr):
                c.mux(p)
        if a is not None:
            t = np.arange(int(rate * seconds)) / rate
            s = (0.5 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16)
            frame = av.AudioFrame.from_ndarray(np.stack([s, s]).T.reshape(1, -1).copy(), format="s16",
                                               layout="stereo")
            frame.sample_rate, frame.pts = rate, 0
            for p in a.encode(frame):
                c.mux(p)
            for p in a.encode(None):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
    return path


def _hz_to_mel(f):
    return 1127.0 * np.log(1.0 + f / 700.0)


def test_decodes_to_16k_mono_and_windows_follow_the_keyframes(tmp_path):
    track = read_audio(_video_with_tone(tmp_path / "tone.mkv", freq=440.0))
    assert track.rate == 16000 and abs(track.duration - 2.0) < 0.01
    # the resampled tone is still 440 Hz
    spec = np.abs(np.fft.rfft(track.samples[4000:20000]))
    assert abs(np.argmax(spec) * 16000 / 16000 - 440) <= 1
    track = AudioTrack(np.arange(32000, dtype=np.float32), 16000, start_s=0.5)
    w = keyframe_windows(track, [1.0, 0.6, 2.4])
    assert w.shape == (3, 16000)
    assert w[0, 0] == 0 and w[0, 8000] == 8000              # [0.5, 1.5) s -> samples 0 .. 15999 of the track
    assert (w[1, :6401] == 0).all() and w[1, 6401] == 1     # [0.1, 1.1) s: starts 0.4 s before the track
    assert w[2, 9599] == 31999 and (w[2, 9600:] == 0).all()     # [1.9, 2.9) s: runs past its end (2.5 s)


def test_no_audio_track_turns_the_stream_off(tmp_path):
    video = _video_with_tone(tmp_path / "silent.mkv", audio=False)
    assert read_audio(video) is None
    stream = AudioStream(video, AudioCNN())
    assert not stream.available and stream.scores([0.5]) is None
    assert "no audio track: the audio stream is off" in stream.message
    with pytest.raises(InputError, match="nothing.mkv"):
        read_audio(tmp_path / "nothing.mkv")


def test_mel_filterbank_is_htk_triangles_between_125_and_7500_hz():
    fb = mel_filterbank()
    assert fb.shape == (257, 64)
    freqs = np.linspace(0, 8000, 257)
    edges = np.linspace(_hz_to_mel(125.0), _hz_to_mel(7500.0), 66)
    for m in (0, 20, 63):
        peak = freqs[int(fb[:, m].argmax())]
        assert abs(_hz_to_mel(peak) - edges[m + 1]) <= (edges[1] - edges[0])  # peak at the band's centre
        assert fb[:, m].max() <= 1.0
        assert (fb[freqs < 700.0 * (np.exp(edges[m] / 1127.0) - 1.0) - 1e-6, m] == 0).all()
    assert fb[0].sum() == 0 and fb[freqs > 7500.0].sum() == 0


def test_log_mel_of_a_tone_peaks_in_its_band():
    t = torch.arange(16000) / 16000.0
    wave = torch.stack([torch.sin(2 * torch.pi * 1000.0 * t), torch.zeros(16000)])
    lm = log_mel(wave)
    assert lm.shape == (2, 1, 98, 64)
    band = int(lm[0, 0].mean(0).argmax())
    centres = 700.0 * (np.exp(np.linspace(_hz_to_mel(125.0), _hz_to_mel(7500.0), 66)[1:-1] / 1127.0) - 1.0)
    assert abs(centres[band] - 1000.0) < (centres[band + 1] - centres[band])
    assert torch.allclose(lm[1], torch.full_like(lm[1], float(np.log(0.01))))     # silence: log(offset)


def test_cnn_forward_backward_and_stream_scores(tmp_path):
    model = AudioCNN()
    x = log_mel(torch.randn(3, 16000))
    out = model(x)
    assert out.shape == (3, len(AUDIBLE_CLASSES))
    out.sum().backward()
    assert model.features[0].weight.grad.abs().sum() > 0
    stream = AudioStream(_video_with_tone(tmp_path / "tone.mkv"), AudioCNN())
    s = stream.scores([0.5, 1.5])
    assert stream.available and "random weights" in stream.message
    assert s.shape == (2, 5) and ((s > 0) & (s < 1)).all()


def test_fusion_changes_only_the_audible_columns():
    person = torch.rand(2, 81)
    audio = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    fused = fuse_audio_scores(person, audio, AUDIBLE_CLASSES, weight=0.25)
    cols = list(AUDIBLE_CLASSES)
    others = [c for c in range(81) if c not in cols]
    assert torch.equal(fused[:, others], person[:, others])
    assert torch.allclose(fused[:, cols], 0.75 * person[:, cols] + 0.25 * audio)
    with pytest.raises(ValueError):
        fuse_audio_scores(person, audio, cols, weight=2.0)
