"""Long-term feature bank (Wu et al. 2019, "Long-Term Feature Banks for Detailed Video Understanding").

Two passes over a video:

1. for every keyframe second, each person's short-term RoI feature (the detector's RoI
   features pooled as MMAction2's `LFBInferHead` does: temporal average, spatial max ->
   `(persons, C)`) goes into a `FeatureBank` on disk (`lfb_infer_features`, `build_bank`);
2. for each keyframe the window of the bank around it (`FeatureBank.window`: `window_size`
   seconds, `window_size // 2` before the keyframe, at most `max_per_second` features each,
   zero-padded; MMAction2's `LFB.sample_long_term_features`) is fused with the short-term
   RoI feature by a feature bank operator (`FBOHead`: `non_local`, `avg` or `max`) before
   the classifier (`LFBDetector`).

The bank on disk (`FeatureBank`): `ROOT/VIDEO/bank.json` (format, channels, dtype, the
shard length, a fingerprint of what made the features, the complete shards) and
`ROOT/VIDEO/shard_KKKKK.safetensors`, one per `shard_seconds` seconds (key = the second,
value = `(n, C)` features, float16 by default as MMAction2 stores them). No pickle. Writing
holds one shard in memory; reading keeps at most `cache_shards` shards (an LRU), so a
15-minute video's bank is never all in RAM. A shard is written atomically and listed in
`bank.json` only once complete, so an interrupted pass 1 resumes at its first missing
shard and a re-run with the same fingerprint computes nothing (`FeatureBank.todo`).
MMAction2's own banks (`lfb_train.pkl`: `{video: {second: (n, C) tensor or list}}`) are
imported with `import_mmaction2_bank` (read with `torch.load(weights_only=True)`).

Models (MMAction2 key layout, `roi_head.shared_head.fbo.*`): `FBOHead` with `FBONonLocal`
(two stacked non-local layers between the short-term feature and the bank, each with a
LayerNorm and dropout), `FBOAvg`, `FBOMax`. `LFBDetector` = backbone + `LFBRoIHead`
(RoI extractor, `FBOHead`, `BBoxHeadAVA` on C + C_fbo channels):

- `lfb_nl_slowonly_r50_ava()`: MMAction2's
  `slowonly-lfb-nl_kinetics400-pretrained-r50_8xb12-4x16x1-20e_ava21-rgb` (short-term 2048,
  bank 2048, latent 512, classifier on 2560); `fbo="avg"` / `"max"` give the
  `slowonly-lfb-avg/max` configs (classifier on 4096);
- `lfb_slowfast_r50_ava()`: SlowFast-R50 4x16 + LFB as one model (the AVA system's
  combination): short-term and bank features are SlowFast's 2304 channels.

The window size does not change any weight shape (it is only the number of keys the
non-local attention sees), so the AVA system's 100-s window (+-50 s, the default here)
and MMAction2's 60-s one load the same checkpoints. One divergence from MMAction2: when a
second holds more than `max_per_second` features, MMAction2 samples them with
`torch.randperm` even at test time; here the first ones in stored order (highest
detection score first when `build_bank` is given scores) are kept unless a `generator`
is passed (training). With at most `max_per_second` features per second both give the
same output: every operator is invariant to the order of the bank's features.
"""

from __future__ import annotations

import json
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Mapping

import torch
from torch import nn

from humact.errors import CheckpointError, InputError, UsageError, one_line
from humact.io.atomic import atomic_path, atomic_write
from humact.io.checkpoints import load_foreign, mmaction_filter
from humact.io.limits import MAX_ARRAY_ELEMENTS, MAX_PERSONS, check_limit, read_json
from humact.video_models.ava import AVADetector
from humact.video_models.heads import BBoxHeadAVA
from humact.video_models.resnet3d import ConvBNAct, slowonly_r50
from humact.video_models.roi import RoIExtractor3D
from humact.video_models.slowfast import ResNet3dSlowFast

__all__ = ["FeatureBank", "BankWriter", "lfb_infer_features", "pool_roi_features", "build_bank", "import_mmaction2_bank",
           "NonLocalLayer", "FBONonLocal", "FBOAvg", "FBOMax", "FBOHead", "LFBRoIHead", "LFBDetector",
           "lfb_nl_slowonly_r50_ava", "lfb_slowfast_r50_ava", "load_mmaction2_lfb_detector", "BANK_FORMAT"]

BANK_FORMAT = "humact.lfb v1"
_DTYPES = {"float16": torch.float16, "float32": torch.float32}
_VIDEO_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.,=+-]{0,199}$")


# ------------------------------------------------------------------------------------------ the bank


def _check_video_id(video: str) -> str:
    if not isinstance(video, str) or not _VIDEO_ID.match(video) or ".." in video:
        raise UsageError(f"feature bank: video id {video!r} must be 1-200 characters of letters, digits and "
                         "_ . , = + - (not starting with .; AVA ids such as -5KQ66BBWC4 start with -): it names a folder")
    return video


class FeatureBank:
    """Per-person RoI features of whole videos on disk, keyed by video and second (see the module doc).

    Args:
        root: folder holding one sub-folder per video (created on the first write).
        channels: C of every stored feature.
        dtype: "float16" (MMAction2's `use_half_precision`, the default) or "float32".
        shard_seconds: seconds per shard file; a reader holds `cache_shards` of them at most.
        fingerprint: what made the features (model, checkpoint, sampling): a bank made with a
            different fingerprint is not reused but rebuilt.
    """

    def __init__(self, root: str | os.PathLike, *, channels: int, dtype: str = "float16", shard_seconds: int = 60,
                 cache_shards: int = 4, fingerprint: Mapping | None = None) -> None:
        if dtype not in _DTYPES:
            raise UsageError(f"feature bank dtype: expected one of {sorted(_DTYPES)}, got {dtype!r}")
        if channels < 1 or shard_seconds < 1 or cache_shards < 1:
            raise UsageError("feature bank: channels, shard_seconds and cache_shards must be >= 1")
        self.root = Path(root)
        self.channels = int(channels)
        self.dtype = dtype
        self.shard_seconds = int(shard_seconds)
        self.cache_shards = int(cache_shards)
        self.fingerprint = dict(fingerprint or {})
        self._cache: OrderedDict[tuple[str, int], dict[int, torch.Tensor]] = OrderedDict()
        #: shards read from disk so far (tests and memory accounting)
        self.shard_reads = 0

    # -- layout
    def video_dir(self, video: str) -> Path:
        return self.root / _check_video_id(video)

    def shard_path(self, video: str, shard: int) -> Path:
        return self.video_dir(video) / f"shard_{shard:05d}.safetensors"

    def shard_of(self, second: int) -> int:
        return int(second) // self.shard_seconds

    def _manifest_path(self, video: str) -> Path:
        return self.video_dir(video) / "bank.json"

    def _header(self) -> dict:
        return {"format": BANK_FORMAT, "channels": self.channels, "dtype": self.dtype,
                "shard_seconds": self.shard_seconds, "fingerprint": self.fingerprint}

    def manifest(self, video: str) -> dict | None:
        """The video's `bank.json` if it exists and was made with this bank's settings, else None."""
        path = self._manifest_path(video)
        if not path.is_file():
            return None
        data = read_json(path)
        if not isinstance(data, dict) or data.get("format") != BANK_FORMAT:
            raise InputError(f"{path}: field format: not a {BANK_FORMAT!r} feature bank manifest")
        if any(data.get(k) != v for k, v in self._header().items()):
            return None
        shards = data.get("shards")
        if not isinstance(shards, dict) or not all(isinstance(v, list) for v in shards.values()):
            raise InputError(f"{path}: field shards: expected an object of shard index -> list of seconds")
        return data

    def _write_manifest(self, video: str, shards: Mapping[int, list[int]], complete: bool) -> None:
        data = self._header() | {"complete": complete,
                                 "shards": {str(k): sorted(int(s) for s in v) for k, v in sorted(shards.items())}}
        with atomic_write(self._manifest_path(video)) as f:
            json.dump(data, f)

    def _shards(self, video: str) -> dict[int, list[int]]:
        data = self.manifest(video)
        if data is None:
            return {}
        try:
            return {int(k): [int(s) for s in v] for k, v in data["shards"].items()}
        except (TypeError, ValueError):
            raise InputError(f"{self._manifest_path(video)}: field shards: shard indices and seconds must be "
                             "integers") from None

    def is_complete(self, video: str) -> bool:
        """Whether pass 1 finished for `video` with this bank's settings and fingerprint."""
        data = self.manifest(video)
        return bool(data and data.get("complete"))

    def seconds(self, video: str) -> list[int]:
        """Every second with stored features (sorted)."""
        return sorted(s for v in self._shards(video).values() for s in v)

    def todo(self, video: str, seconds: Iterable[int]) -> list[int]:
        """The seconds of `seconds` pass 1 still has to compute: those in shards not yet written
        (all of them for a bank made with other settings, none for a complete one)."""
        done = self._shards(video)
        return sorted({int(s) for s in seconds if self.shard_of(s) not in done})

    def writer(self, video: str, seconds: Iterable[int] | None = None) -> "BankWriter":
        """A writer for `video`; `seconds` (all the keyframe seconds of the video) lets it mark the
        bank complete when the last shard is written. Features must come in increasing seconds."""
        return BankWriter(self, video, None if seconds is None else sorted({int(s) for s in seconds}))

    # -- reading
    def _load_shard(self, video: str, shard: int) -> dict[int, torch.Tensor]:
        key = (video, shard)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        from safetensors import SafetensorError
        from safetensors.torch import load as load_bytes

        path = self.shard_path(video, shard)
        if shard not in self._shards(video):
            feats: dict[int, torch.Tensor] = {}
        else:
            try:
                # read, not mmap: an evicted shard's memory is freed at once (a mapping's pages were
                # seen to stay resident, growing the process with the video)
                raw = load_bytes(path.read_bytes())
            except (SafetensorError, OSError, ValueError, RuntimeError) as e:
                raise InputError(f"{path}: not a readable safetensors feature-bank shard ({one_line(e)})") from None
            feats = {}
            for k, v in raw.items():
                if not k.isdigit() or self.shard_of(int(k)) != shard:
                    raise InputError(f"{path}: key {k!r}: expected a second of shard {shard}")
                if v.dim() != 2 or v.shape[1] != self.channels or v.dtype != _DTYPES[self.dtype]:
                    raise InputError(f"{path}: key {k!r}: expected ({'n'}, {self.channels}) {self.dtype}, got "
                                     f"{tuple(v.shape)} {str(v.dtype).replace('torch.', '')}")
                feats[int(k)] = v
            self.shard_reads += 1
        self._cache[key] = feats
        while len(self._cache) > self.cache_shards:
            self._cache.popitem(last=False)
        return feats

    def read(self, video: str, second: int) -> torch.Tensor | None:
        """The `(n, C)` features stored for `second` (the bank's dtype), or None."""
        return self._load_shard(video, self.shard_of(second)).get(int(second))

    def window(self, video: str, second: int, *, window_size: int = 100, max_per_second: int = 5,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """MMAction2's `LFB.sample_long_term_features`: `(window_size * max_per_second, C)` float32.

        Seconds `second - window_size // 2` .. `+ window_size - 1`; each contributes up to
        `max_per_second` features (the first stored, or a random subset with `generator`),
        the rest of its slots zeros.
        """
        k = int(max_per_second)
        out = torch.zeros(window_size, k, self.channels)
        start = int(second) - window_size // 2
        for i, sec in enumerate(range(start, start + window_size)):
            feat = self.read(video, sec)
            if feat is None or feat.shape[0] == 0:
                continue
            if feat.shape[0] > k:
                idx = torch.randperm(feat.shape[0], generator=generator)[:k] if generator is not None \
                    else torch.arange(k)
                feat = feat[idx]
            out[i, :feat.shape[0]] = feat.float()
        return out.reshape(-1, self.channels)

    def windows(self, keys: Iterable[tuple[str, int]], **kw) -> torch.Tensor:
        """Stacked `window` for (video, second) keys: `(R, window_size * max_per_second, C)`."""
        return torch.stack([self.window(v, s, **kw) for v, s in keys])


class BankWriter:
    """Adds one second's `(n, C)` features at a time; writes each shard when the next begins.

    Use as a context manager: leaving it normally writes the last shard and the manifest.
    """

    def __init__(self, bank: FeatureBank, video: str, all_seconds: list[int] | None) -> None:
        self.bank = bank
        self.video = _check_video_id(video)
        self.all_seconds = all_seconds
        self._done = bank._shards(video)
        self._shard: int | None = None
        self._buffer: dict[int, torch.Tensor] = {}
        self._last = None

    def __enter__(self) -> "BankWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()

    def add(self, second: int, features: torch.Tensor) -> None:
        second = int(second)
        if self._last is not None and second <= self._last:
            raise ValueError(f"BankWriter.add: seconds must increase ({second} after {self._last})")
        features = torch.as_tensor(features).detach()
        if features.dim() == 1:
            features = features[None]
        if features.dim() != 2 or features.shape[1] != self.bank.channels:
            raise ValueError(f"BankWriter.add: expected (n, {self.bank.channels}) features, got {tuple(features.shape)}")
        check_limit(features.shape[0], MAX_PERSONS, source=f"feature bank {self.video}", field=f"second {second}")
        shard = self.bank.shard_of(second)
        if self._shard is not None and shard != self._shard:
            self._flush()
        self._shard = shard
        self._last = second
        self._buffer[second] = features.to("cpu", _DTYPES[self.bank.dtype]).contiguous().clone()

    def _flush(self) -> None:
        from safetensors.torch import save_file

        if self._shard is None:
            return
        with atomic_path(self.bank.shard_path(self.video, self._shard)) as tmp:
            save_file({str(s): f for s, f in self._buffer.items()}, str(tmp))
        self._done[self._shard] = sorted(self._buffer)
        self.bank._cache.pop((self.video, self._shard), None)
        self._buffer, self._shard = {}, None
        self.bank._write_manifest(self.video, self._done, complete=False)

    def close(self) -> None:
        """Write the pending shard and the manifest (complete once every shard of `seconds` is written)."""
        self._flush()
        complete = self.all_seconds is not None and all(self.bank.shard_of(s) in self._done
                                                         for s in self.all_seconds)
        self.bank._write_manifest(self.video, self._done, complete=complete)


def lfb_infer_features(detector: nn.Module, clip: torch.Tensor, rois: torch.Tensor, *,
                       temporal_pool: str = "avg", spatial_pool: str = "max") -> torch.Tensor:
    """MMAction2's `LFBInferHead`: the detector's RoI features pooled to `(R, C)` for the bank.

    `detector` is any AVA detector of humact (`AVADetector`, `LFBDetector`): its backbone and
    `roi_head.bbox_roi_extractor` are used; clip (N, 3, T, H, W), rois (R, 5).
    """
    x = detector.roi_head.bbox_roi_extractor(detector.forward_features(clip), rois)     # (R, C, T', h, w)
    return pool_roi_features(x, temporal_pool, spatial_pool).flatten(1)


def pool_roi_features(x: torch.Tensor, temporal_pool: str = "avg", spatial_pool: str = "max") -> torch.Tensor:
    """(R, C, T, h, w) RoI features -> (R, C, 1, 1, 1): the pooling of MMAction2's `LFBInferHead` and of
    `FBOHead`'s short-term side (temporal average, spatial max by default)."""
    x = x.mean(2, keepdim=True) if temporal_pool == "avg" else x.amax(2, keepdim=True)
    return x.mean((3, 4), keepdim=True) if spatial_pool == "avg" else x.amax((3, 4), keepdim=True)


def build_bank(bank: FeatureBank, video: str, seconds: Iterable[int], features_at) -> int:
    """Pass 1 for one video: `features_at(second) -> (n, C)` for every second the bank still lacks.

    `seconds` are all the keyframe seconds of the video. Returns how many seconds were
    computed (0 when a complete bank with the same fingerprint exists: the re-run reuses it).
    """
    seconds = sorted({int(s) for s in seconds})
    todo = bank.todo(video, seconds)
    with bank.writer(video, seconds) as w:
        for s in todo:
            w.add(s, features_at(s))
    return len(todo)


def import_mmaction2_bank(path: str | os.PathLike, bank: FeatureBank) -> list[str]:
    """Write MMAction2's `lfb_{mode}.pkl` (`{video: {second: tensor (n, C) or [tensor (C,)]}}`) into
    `bank`, video by video. Read with `torch.load(weights_only=True)`; returns the video ids."""
    name = str(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - torch raises many types for foreign files
        raise CheckpointError(f"{name}: not an MMAction2 feature bank loadable with weights_only=True "
                              f"({one_line(e)[:300]})") from None
    if not isinstance(data, Mapping):
        raise InputError(f"{name}: expected a dict video -> {{second: features}}, got {type(data).__name__}")
    videos = []
    for video, per_sec in data.items():
        if not isinstance(per_sec, Mapping):
            raise InputError(f"{name}: video {video!r}: expected a dict second -> features")
        secs = []
        for sec, feat in per_sec.items():
            if isinstance(feat, (list, tuple)):
                feat = torch.stack(list(feat)) if feat else torch.zeros(0, bank.channels)
            if not isinstance(feat, torch.Tensor) or not isinstance(sec, int):
                raise InputError(f"{name}: video {video!r} second {sec!r}: expected an int second and tensors")
            check_limit(feat.numel(), MAX_ARRAY_ELEMENTS, source=name, field=f"{video}.{sec}")
            secs.append((sec, feat.reshape(-1, feat.shape[-1]) if feat.numel() else feat))
        secs.sort(key=lambda t: t[0])
        with bank.writer(str(video), [s for s, _ in secs]) as w:
            for sec, feat in secs:
                w.add(sec, feat)
        videos.append(str(video))
    return videos


# ------------------------------------------------------------------------------------------ operators


class NonLocalLayer(nn.Module):
    """MMAction2's `NonLocalLayer` of `FBONonLocal`: short-term (N, C, S, 1, 1) attends to the bank
    (N, C, L, 1, 1). theta / phi / g are 1x1x1 convolutions (`st_feat_conv`, `lt_feat_conv`,
    `global_conv`), softmax over the L bank features (scaled by 1/sqrt(latent)), then LayerNorm over
    (latent, S, 1, 1) and ReLU (`pre_activate`) before `out_conv`, dropout last."""

    def __init__(self, st_feat_channels: int, lt_feat_channels: int, latent_channels: int, *, num_st_feat: int = 1,
                 use_scale: bool = True, pre_activate: bool = True, pre_activate_with_ln: bool = True,
                 dropout: float = 0.2) -> None:
        super().__init__()
        self.latent_channels = latent_channels
        self.use_scale = use_scale
        self.pre_activate = pre_activate
        self.pre_activate_with_ln = pre_activate_with_ln
        self.st_feat_conv = ConvBNAct(st_feat_channels, latent_channels, 1, norm=False, act=False)
        self.lt_feat_conv = ConvBNAct(lt_feat_channels, latent_channels, 1, norm=False, act=False)
        self.global_conv = ConvBNAct(lt_feat_channels, latent_channels, 1, norm=False, act=False)
        self.ln = nn.LayerNorm([latent_channels if pre_activate else st_feat_channels, num_st_feat, 1, 1])
        self.relu = nn.ReLU()
        self.out_conv = ConvBNAct(latent_channels, st_feat_channels, 1, norm=False, act=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, st_feat: torch.Tensor, lt_feat: torch.Tensor) -> torch.Tensor:
        n, c = st_feat.shape[0], self.latent_channels
        theta = self.st_feat_conv(st_feat).reshape(n, c, -1)               # (N, c, S)
        phi = self.lt_feat_conv(lt_feat).reshape(n, c, -1)                 # (N, c, L)
        g = self.global_conv(lt_feat).reshape(n, c, -1)                    # (N, c, L)
        att = torch.matmul(theta.transpose(1, 2), phi)                     # (N, S, L)
        if self.use_scale:
            att = att / c ** 0.5
        att = att.softmax(dim=-1)
        out = torch.matmul(g, att.transpose(1, 2)).reshape(n, c, -1, 1, 1)  # (N, c, S, 1, 1)
        if self.pre_activate:
            if self.pre_activate_with_ln:
                out = self.ln(out)
            out = self.relu(out)
        out = self.out_conv(out)
        if not self.pre_activate:
            out = self.ln(out)
        return self.dropout(out)


class FBONonLocal(nn.Module):
    """MMAction2's `FBONonLocal`: project both to `latent_channels` (`st_feat_conv`, `lt_feat_conv`,
    plain Conv3d with dropout), then `num_non_local_layers` residual `NonLocalLayer`s
    (`non_local_layer_1`, ...). (N, C_st, 1, 1, 1), (N, C_lt, L, 1, 1) -> (N, latent, 1, 1, 1)."""

    def __init__(self, *, st_feat_channels: int = 2048, lt_feat_channels: int = 2048, latent_channels: int = 512,
                 num_st_feat: int = 1, num_non_local_layers: int = 2, st_feat_dropout_ratio: float = 0.2,
                 lt_feat_dropout_ratio: float = 0.2, pre_activate: bool = True) -> None:
        super().__init__()
        if num_non_local_layers < 1:
            raise ValueError("FBONonLocal: at least one non-local layer is needed")
        self.out_channels = latent_channels
        self.pre_activate = pre_activate
        self.st_feat_conv = nn.Conv3d(st_feat_channels, latent_channels, kernel_size=1)
        self.lt_feat_conv = nn.Conv3d(lt_feat_channels, latent_channels, kernel_size=1)
        self.st_feat_dropout = nn.Dropout(st_feat_dropout_ratio) if st_feat_dropout_ratio > 0 else nn.Identity()
        self.lt_feat_dropout = nn.Dropout(lt_feat_dropout_ratio) if lt_feat_dropout_ratio > 0 else nn.Identity()
        self.relu = nn.ReLU()
        self.num_non_local_layers = num_non_local_layers
        for i in range(num_non_local_layers):
            self.add_module(f"non_local_layer_{i + 1}",
                            NonLocalLayer(latent_channels, latent_channels, latent_channels, num_st_feat=num_st_feat,
                                          pre_activate=pre_activate))

    def forward(self, st_feat: torch.Tensor, lt_feat: torch.Tensor) -> torch.Tensor:
        st = self.st_feat_dropout(self.st_feat_conv(st_feat))
        lt = self.lt_feat_dropout(self.lt_feat_conv(lt_feat))
        for i in range(self.num_non_local_layers):
            st = st + getattr(self, f"non_local_layer_{i + 1}")(st, lt)
            if not self.pre_activate:
                st = self.relu(st)
        return st


class FBOAvg(nn.Module):
    """MMAction2's `FBOAvg`: the bank's average, (N, C_lt, L, 1, 1) -> (N, C_lt, 1, 1, 1)."""

    def __init__(self, *, lt_feat_channels: int = 2048, **_) -> None:
        super().__init__()
        self.out_channels = lt_feat_channels

    def forward(self, st_feat: torch.Tensor, lt_feat: torch.Tensor) -> torch.Tensor:
        return lt_feat.mean(dim=2, keepdim=True)


class FBOMax(FBOAvg):
    """MMAction2's `FBOMax`: the bank's maximum per channel (zero padding included, as upstream)."""

    def forward(self, st_feat: torch.Tensor, lt_feat: torch.Tensor) -> torch.Tensor:
        return lt_feat.amax(dim=2, keepdim=True)


FBO_TYPES = {"non_local": FBONonLocal, "avg": FBOAvg, "max": FBOMax}


class FBOHead(nn.Module):
    """MMAction2's `FBOHead` (the AVA RoI head's `shared_head`).

    forward(x (R, C_st, T, h, w) RoI features, lt_feat (R, L, C_lt) bank windows) ->
    (R, C_st + C_fbo, 1, 1, 1): the short-term feature (temporal `temporal_pool`, spatial
    `spatial_pool`) concatenated with the operator's output. Keys: `fbo.*`.
    """

    def __init__(self, *, fbo: str = "non_local", temporal_pool: str = "avg", spatial_pool: str = "max",
                 **fbo_cfg) -> None:
        super().__init__()
        if fbo not in FBO_TYPES:
            raise ValueError(f"FBOHead fbo: expected one of {sorted(FBO_TYPES)}, got {fbo!r}")
        if temporal_pool not in ("avg", "max") or spatial_pool not in ("avg", "max"):
            raise ValueError("FBOHead temporal_pool / spatial_pool: expected 'avg' or 'max'")
        self.fbo_type = fbo
        self.temporal_pool = temporal_pool
        self.spatial_pool = spatial_pool
        self.fbo = FBO_TYPES[fbo](**fbo_cfg)
        self.out_channels = fbo_cfg.get("st_feat_channels", 2048) + self.fbo.out_channels

    def forward(self, x: torch.Tensor, lt_feat: torch.Tensor) -> torch.Tensor:
        st = pool_roi_features(x, self.temporal_pool, self.spatial_pool)
        if lt_feat.dim() != 3 or lt_feat.shape[0] != x.shape[0]:
            raise ValueError(f"FBOHead: expected bank windows (R={x.shape[0]}, L, C), got {tuple(lt_feat.shape)}")
        lt = lt_feat.to(st.dtype).transpose(1, 2)[..., None, None]       # (R, C_lt, L, 1, 1)
        return torch.cat([st, self.fbo(st, lt)], dim=1)


class LFBRoIHead(nn.Module):
    """RoI extractor + `FBOHead` (`shared_head`) + `BBoxHeadAVA` (MMAction2's AVARoIHead attribute names)."""

    def __init__(self, *, st_channels: int, lt_channels: int | None = None, fbo: str = "non_local",
                 latent_channels: int = 512, num_non_local_layers: int = 2, num_classes: int = 81,
                 dropout: float = 0.5, fbo_dropout: float = 0.2, output_size: int = 8,
                 spatial_scale: float = 1 / 16) -> None:
        super().__init__()
        lt_channels = lt_channels or st_channels
        self.bbox_roi_extractor = RoIExtractor3D(output_size=output_size, spatial_scale=spatial_scale,
                                                 sampling_ratio=0, aligned=True, temporal_pool="avg")
        self.shared_head = FBOHead(fbo=fbo, st_feat_channels=st_channels, lt_feat_channels=lt_channels,
                                   latent_channels=latent_channels, num_non_local_layers=num_non_local_layers,
                                   st_feat_dropout_ratio=fbo_dropout, lt_feat_dropout_ratio=fbo_dropout)
        self.bbox_head = BBoxHeadAVA(in_channels=self.shared_head.out_channels, num_classes=num_classes,
                                     dropout=dropout)

    def forward(self, feats, rois: torch.Tensor, lt_feat: torch.Tensor) -> torch.Tensor:
        return self.bbox_head(self.shared_head(self.bbox_roi_extractor(feats, rois), lt_feat))


class LFBDetector(AVADetector):
    """Backbone + `LFBRoIHead`. `forward(clip, rois, lt_feat)` -> (R, num_classes) logits, where
    lt_feat (R, L, C_lt) holds each RoI's bank window (`FeatureBank.windows`).

    In steps: `roi_features(feats, rois)` (R, C, 1, 8, 8) short-term RoI features (what pass 1
    pools into the bank), then `classify(roi_feats, lt_feat)` (the FBO head, then the box head)."""

    def roi_features(self, feats, rois: torch.Tensor) -> torch.Tensor:
        return self.roi_head.bbox_roi_extractor(feats, rois)

    def classify(self, roi_feats: torch.Tensor, lt_feat: torch.Tensor | None = None) -> torch.Tensor:
        if lt_feat is None:
            raise ValueError("LFBDetector.classify: the long-term features (bank windows) are needed")
        return self.roi_head.bbox_head(self.roi_head.shared_head(roi_feats, lt_feat))

    def forward_head(self, feats, rois: torch.Tensor, lt_feat: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.classify(self.roi_features(feats, rois), lt_feat)

    def forward(self, x: torch.Tensor, rois: torch.Tensor, lt_feat: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.forward_head(self.forward_features(x), rois, lt_feat)

    @torch.no_grad()
    def predict(self, x: torch.Tensor, rois: torch.Tensor, lt_feat: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self.forward(x, rois, lt_feat).sigmoid()


def lfb_nl_slowonly_r50_ava(*, fbo: str = "non_local", num_classes: int = 81, dropout: float = 0.5,
                            latent_channels: int = 512, lt_channels: int | None = None,
                            **backbone_kw) -> LFBDetector:
    """MMAction2's `slowonly-lfb-{nl,avg,max}_kinetics400-pretrained-r50_8xb12-4x16x1-20e_ava21-rgb`:
    SlowOnly-R50 (stride 16), input (N, 3, 4, H, W); bank features of 2048 channels."""
    backbone = slowonly_r50(spatial_strides=(1, 2, 2, 1), **backbone_kw)
    return LFBDetector(backbone, LFBRoIHead(st_channels=backbone.feat_dim, lt_channels=lt_channels, fbo=fbo,
                                            num_classes=num_classes, dropout=dropout,
                                            latent_channels=latent_channels))


def lfb_slowfast_r50_ava(*, fbo: str = "non_local", num_classes: int = 81, dropout: float = 0.5,
                         latent_channels: int = 512, lt_channels: int | None = None, resample_rate: int = 8,
                         speed_ratio: int = 8,
                         channel_ratio: int = 8, **backbone_kw) -> LFBDetector:
    """SlowFast-R50 4x16 AVA detector + LFB in one model: (N, 3, 32, H, W); short-term and bank
    features are SlowFast's 2304 channels (slow 2048 + fast 256)."""
    backbone = ResNet3dSlowFast(depth=50, resample_rate=resample_rate, speed_ratio=speed_ratio,
                                channel_ratio=channel_ratio, spatial_strides=(1, 2, 2, 1), **backbone_kw)
    return LFBDetector(backbone, LFBRoIHead(st_channels=sum(backbone.feat_dims), lt_channels=lt_channels, fbo=fbo,
                                            num_classes=num_classes, dropout=dropout,
                                            latent_channels=latent_channels))


def load_mmaction2_lfb_detector(model: LFBDetector, checkpoint) -> LFBDetector:
    """Load an MMAction2 LFB detector checkpoint (path or dict) strictly; `data_preprocessor.*` is dropped."""
    return load_foreign(model, checkpoint, mmaction_filter)

