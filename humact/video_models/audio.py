"""Audio stream for AVA detection: 1-s log-mel windows at the keyframes, a small VGG-style CNN, score fusion.

    AudioTrack (16 kHz mono float32, from PyAV)  read_audio(video)   (None: no audio track)
      -> (K, 16000) windows centred on the K keyframe times         keyframe_windows
      -> (K, 1, 98, 64) log-mel spectrograms                          log_mel
      -> AudioCNN -> (K, num_classes) per-second logits
      -> fuse_audio_scores: the person scores of each keyframe's audible classes mixed with
         that second's audio score (the same for every person of the frame)

Decoding and resampling are PyAV's (`av.AudioResampler` to mono `flt` at 16 kHz), so every
container and codec FFmpeg reads works. Log-mel is VGGish's recipe, in torch: 25-ms periodic
Hann windows every 10 ms, a 512-point FFT magnitude, 64 HTK-mel bands from 125 to 7500 Hz,
`log(mel + 0.01)`. librosa is not needed for that (it would bring numba and llvmlite for one
filter bank). `AudioCNN` is VGG-style (as the AVA challenge's audio stream): four blocks of two
3x3 conv + BN + ReLU and a 2x2 max pool (32, 64, 128, 256 channels), a global average, one
linear layer. It runs with random weights until trained: say so in outputs.

`AUDIBLE_CLASSES` are the AVA classes that can be heard (talk to, listen to, sing to,
listen (e.g. to music), play musical instrument; AVA ids = the detectors' columns). A video
without an audio track gives `read_audio(...) is None` and `AudioStream.message` says the
stream is off; detection runs without it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from humact.errors import InputError
from humact.io.limits import MAX_ARRAY_ELEMENTS, check_limit

__all__ = ["SAMPLE_RATE", "AUDIBLE_CLASSES", "AudioTrack", "read_audio", "keyframe_windows", "mel_filterbank",
           "log_mel", "AudioCNN", "fuse_audio_scores", "AudioStream"]

SAMPLE_RATE = 16000
#: AVA action ids (= detector columns) of the classes one can hear
AUDIBLE_CLASSES: dict[int, str] = {37: "listen (e.g., to music)", 41: "play musical instrument",
                                   74: "listen to (a person)", 77: "sing to (e.g., self, a person, a group)",
                                   79: "talk to (e.g., self, a person, a group)"}


@dataclass
class AudioTrack:
    """Mono audio: `samples` (n,) float32 in [-1, 1] at `rate` Hz, the first at `start_s` seconds
    of the container's clock (the video frames' clock)."""

    samples: np.ndarray
    rate: int
    start_s: float

    @property
    def duration(self) -> float:
        return len(self.samples) / self.rate


def read_audio(path: str | os.PathLike, *, rate: int = SAMPLE_RATE) -> AudioTrack | None:
    """The first audio stream of `path`, decoded and resampled to `rate` Hz mono; None without one."""
    import av

    path = os.fspath(path)
    try:
        container = av.open(path)
    except (av.error.FFmpegError, OSError) as e:
        raise InputError(f"{path}: cannot open for audio ({e})") from None
    with container:
        if not container.streams.audio:
            return None
        stream = container.streams.audio[0]
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        if stream.duration is not None and stream.time_base is not None:
            check_limit(int(float(stream.duration * stream.time_base) * rate), MAX_ARRAY_ELEMENTS, source=path,
                        field="audio samples")
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        chunks, n = [], 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    a = out.to_ndarray().reshape(-1)
                    n += a.size
                    check_limit(n, MAX_ARRAY_ELEMENTS, source=path, field="audio samples")
                    chunks.append(a)
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as e:
            if not chunks:
                raise InputError(f"{path}: the audio stream cannot be decoded ({e})") from None
    samples = np.concatenate(chunks).astype(np.float32) if chunks else np.zeros(0, np.float32)
    return AudioTrack(samples, rate, start)


def keyframe_windows(track: AudioTrack, times_s, *, window_s: float = 1.0) -> torch.Tensor:
    """(K, window) samples centred on each time (seconds, the video's clock), zeros outside the track."""
    n = int(round(window_s * track.rate))
    out = np.zeros((len(times_s), n), np.float32)
    for i, t in enumerate(times_s):
        a = int(round((float(t) - track.start_s - window_s / 2) * track.rate))
        lo, hi = max(a, 0), min(a + n, len(track.samples))
        if hi > lo:
            out[i, lo - a:hi - a] = track.samples[lo:hi]
    return torch.from_numpy(out)


def _hz_to_mel(f):
    return 1127.0 * np.log(1.0 + np.asarray(f, np.float64) / 700.0)       # HTK, as VGGish


def mel_filterbank(*, n_fft: int = 512, rate: int = SAMPLE_RATE, n_mels: int = 64, fmin: float = 125.0,
                   fmax: float = 7500.0) -> torch.Tensor:
    """(n_fft // 2 + 1, n_mels) triangular HTK-mel weights (VGGish's `spectrogram_to_mel_matrix`;
    the DC bin gets no weight)."""
    bins = n_fft // 2 + 1
    mel_f = _hz_to_mel(np.linspace(0.0, rate / 2, bins))
    edges = np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2)
    w = np.zeros((bins, n_mels))
    for m in range(n_mels):
        lo, c, hi = edges[m:m + 3]
        w[:, m] = np.maximum(0.0, np.minimum((mel_f - lo) / (c - lo), (hi - mel_f) / (hi - c)))
    w[0] = 0.0
    return torch.from_numpy(w.astype(np.float32))


_FB_CACHE: dict[tuple, torch.Tensor] = {}


def log_mel(wave: torch.Tensor, *, rate: int = SAMPLE_RATE, win_s: float = 0.025, hop_s: float = 0.010,
            n_mels: int = 64, offset: float = 0.01) -> torch.Tensor:
    """(K, samples) -> (K, 1, frames, n_mels) log-mel (VGGish: frames = 1 + (samples - win) // hop)."""
    win, hop = int(round(win_s * rate)), int(round(hop_s * rate))
    n_fft = 2 ** math.ceil(math.log2(win))
    key = (n_fft, rate, n_mels)
    if key not in _FB_CACHE:
        _FB_CACHE[key] = mel_filterbank(n_fft=n_fft, rate=rate, n_mels=n_mels)
    frames = wave.unfold(-1, win, hop)                                      # (K, frames, win)
    window = torch.hann_window(win, periodic=True, dtype=wave.dtype)
    mag = torch.fft.rfft(frames * window, n=n_fft).abs()                    # (K, frames, bins)
    mel = mag @ _FB_CACHE[key].to(wave.dtype)
    return torch.log(mel + offset).unsqueeze(1)


class AudioCNN(nn.Module):
    """VGG-style 2D CNN: (K, 1, frames, mels) log-mel -> (K, num_classes) logits."""

    def __init__(self, *, num_classes: int = len(AUDIBLE_CLASSES), widths=(32, 64, 128, 256), dropout: float = 0.3):
        super().__init__()
        layers, c_in = [], 1
        for c in widths:
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True),
                       nn.MaxPool2d(2, ceil_mode=True)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x).mean(dim=(2, 3))))


def fuse_audio_scores(person_scores: torch.Tensor, audio_scores: torch.Tensor, class_ids, *,
                      weight: float = 0.5) -> torch.Tensor:
    """Mix one keyframe's (R, C) person scores with that second's (len(class_ids),) audio scores:
    column `class_ids[j]` becomes (1 - weight) * person + weight * audio[j]; other columns are kept."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"fuse_audio_scores weight: expected 0..1, got {weight}")
    out = person_scores.clone()
    cols = torch.as_tensor(list(class_ids), dtype=torch.long)
    out[:, cols] = (1.0 - weight) * person_scores[:, cols] + weight * audio_scores.to(out.dtype)[None]
    return out


class AudioStream:
    """The audio stream of one video: `scores(times_s)` -> (K, classes) sigmoid scores, or None when the
    video has no audio track (then `message` says the stream is off)."""

    def __init__(self, path: str | os.PathLike, model: AudioCNN, *, class_ids=tuple(AUDIBLE_CLASSES),
                 weights_note: str = "random weights") -> None:
        self.path = os.fspath(path)
        self.model = model.eval()
        self.class_ids = tuple(class_ids)
        self.track = read_audio(path)
        self.message = (f"{self.path}: no audio track: the audio stream is off" if self.track is None
                        else f"audio: {self.track.duration:.1f} s at {self.track.rate} Hz, AudioCNN ({weights_note})")

    @property
    def available(self) -> bool:
        return self.track is not None

    @torch.no_grad()
    def scores(self, times_s) -> torch.Tensor | None:
        if self.track is None:
            return None
        return self.model(log_mel(keyframe_windows(self.track, times_s))).sigmoid()
