"""Temporal smoothing of tracked keypoints: the One-Euro filter (Casiez, Roussel, Vogel, CHI 2012).

A low-pass filter whose cut-off frequency rises with the signal's speed:

    alpha(fc) = 1 / (1 + tau / Te),   tau = 1 / (2 pi fc),   Te = 1 / fps
    dx_hat    = alpha(d_cutoff) * (x - x_prev_hat) * fps + (1 - alpha(d_cutoff)) * dx_hat_prev
    fc        = min_cutoff + beta * |dx_hat|
    x_hat     = alpha(fc) * x + (1 - alpha(fc)) * x_prev_hat

Still joints (|dx| small) are filtered at `min_cutoff` Hz and lose their jitter; fast ones
raise the cut-off and follow with little lag. Speeds are in pixels / second, normalised
by the person's box height so that one `beta` works for near and far people (ours; the
paper filters one signal of fixed units). A keypoint restarts its filter after a frame
where it was not seen (score below the threshold or the person absent), so a filtered
position never drags across a gap.

`docs/tracking.md` reports the measured effect on the shared videos (jitter and lag).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from humact.types import PoseTracks

__all__ = ["one_euro", "smooth_tracks", "METHODS"]

METHODS = ("one-euro",)


def _alpha(cutoff: np.ndarray | float, fps: float) -> np.ndarray:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, np.float64))
    return 1.0 / (1.0 + tau * fps)


def one_euro(x: np.ndarray, valid: np.ndarray, *, fps: float, min_cutoff: float = 1.0, beta: float = 1.0,
             d_cutoff: float = 1.0, scale: np.ndarray | None = None) -> np.ndarray:
    """One-Euro filter along axis 0 of `x`, independently for every other element.

    Args:
        x: (T, ...) signal, e.g. (T, 17, 2) pixels.
        valid: bool, x's shape or its leading part (e.g. (T, 17) for x (T, 17, 2)); where
            False the output is x unchanged and the filter restarts afterwards.
        fps: samples per second.
        min_cutoff: cut-off in Hz at zero speed.
        beta: cut-off increase per unit of (scaled) speed.
        d_cutoff: cut-off in Hz of the speed estimate.
        scale: (T,) or broadcastable: speeds are divided by this (e.g. the box height in
            pixels) before `beta` applies; None = 1.

    Returns:
        The filtered signal, same shape and dtype as `x`.
    """
    if fps <= 0:
        raise ValueError(f"fps: expected > 0, got {fps}")
    x = np.asarray(x)
    xf = x.astype(np.float64)
    valid = np.broadcast_to(np.asarray(valid, bool).reshape(valid.shape + (1,) * (x.ndim - np.ndim(valid))),
                            x.shape)
    out = xf.copy()
    n = len(x)
    if n == 0:
        return x.copy()
    if scale is None:
        sc = np.ones((n,) + (1,) * (x.ndim - 1))
    else:
        sc = np.asarray(scale, np.float64).reshape((n,) + (1,) * (x.ndim - 1))
        sc = np.maximum(sc, 1e-6)
    a_d = _alpha(d_cutoff, fps)
    prev = xf[0].copy()
    dprev = np.zeros_like(prev)
    live = valid[0].copy()
    for t in range(1, n):
        v = valid[t]
        cont = v & live                       # filter continues where both frames are seen
        dx = (xf[t] - prev) * fps / sc[t]
        dhat = a_d * dx + (1 - a_d) * dprev
        cutoff = min_cutoff + beta * np.abs(dhat)
        a = _alpha(cutoff, fps)
        filt = a * xf[t] + (1 - a) * prev
        out[t] = np.where(cont, filt, xf[t])
        prev = np.where(v, out[t], prev)
        dprev = np.where(cont, dhat, 0.0)
        live = v
    return out.astype(x.dtype)


def smooth_tracks(tracks: PoseTracks, *, method: str = "one-euro", fps: float, min_cutoff: float = 1.0,
                  beta: float = 5.0, keypoint_threshold: float = 0.3) -> PoseTracks:
    """`tracks` with each person's keypoints filtered over time (`one_euro`).

    A keypoint is filtered where the person is valid and its score is at least
    `keypoint_threshold`; elsewhere it is left as it was. Boxes, scores and everything
    else are unchanged.
    """
    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    kp = tracks.keypoints.copy()
    for m in range(tracks.num_persons):
        seen = tracks.valid[m][:, None] & (tracks.keypoint_scores[m] >= keypoint_threshold)
        height = np.where(tracks.valid[m], tracks.boxes[m, :, 3] - tracks.boxes[m, :, 1], 1.0)
        kp[m] = one_euro(tracks.keypoints[m], seen, fps=fps, min_cutoff=min_cutoff, beta=beta,
                         scale=height)
    return dataclasses.replace(tracks, keypoints=kp)
