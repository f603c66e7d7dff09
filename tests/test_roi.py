"""RoIAlign (mmcv semantics, pure PyTorch) and the 3D RoI extractor."""

from __future__ import annotations

import math

import pytest
import torch

from humact.video_models.roi import RoIExtractor3D, roi_align


def _mmcv_roi_align_loops(feat, roi, out_size, scale, sampling_ratio, aligned):
    """A literal, loop-by-loop transcription of mmcv's CPU RoIAlign (avg) for one RoI and one channel."""
    h, w = feat.shape
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (float(v) * scale - offset for v in roi[1:])
    rw, rh = x2 - x1, y2 - y1
    if not aligned:
        rw, rh = max(rw, 1.0), max(rh, 1.0)
    bh, bw = rh / out_size, rw / out_size
    gh = sampling_ratio if sampling_ratio > 0 else math.ceil(rh / out_size)
    gw = sampling_ratio if sampling_ratio > 0 else math.ceil(rw / out_size)
    count = max(gh * gw, 1)
    out = torch.zeros(out_size, out_size, dtype=torch.float64)
    for ph in range(out_size):
        for pw in range(out_size):
            acc = 0.0
            for iy in range(gh):
                y = y1 + ph * bh + (iy + 0.5) * bh / gh
                for ix in range(gw):
                    x = x1 + pw * bw + (ix + 0.5) * bw / gw
                    if y < -1.0 or y > h or x < -1.0 or x > w:
                        continue
                    yy, xx = max(y, 0.0), max(x, 0.0)
                    yl, xl = int(yy), int(xx)
                    if yl >= h - 1:
                        yh = yl = h - 1
                        yy = float(yl)
                    else:
                        yh = yl + 1
                    if xl >= w - 1:
                        xh = xl = w - 1
                        xx = float(xl)
                    else:
                        xh = xl + 1
                    ly, lx = yy - yl, xx - xl
                    acc += ((1 - ly) * (1 - lx) * feat[yl, xl] + (1 - ly) * lx * feat[yl, xh]
                            + ly * (1 - lx) * feat[yh, xl] + ly * lx * feat[yh, xh])
            out[ph, pw] = acc / count
    return out


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("sampling_ratio", [0, 2])
def test_matches_a_loop_transcription_of_mmcv_kernel(aligned, sampling_ratio):
    g = torch.Generator().manual_seed(0)
    feat = torch.randn(1, 2, 9, 11, generator=g, dtype=torch.float64)
    # inside, partly outside, touching the border, tiny, and degenerate boxes (input pixels, scale 1/4)
    rois = torch.tensor([[0, 3.0, 5.0, 30.0, 22.0], [0, -10.0, -6.0, 12.0, 40.0], [0, 20.0, 10.0, 44.0, 36.0],
                         [0, 8.2, 9.7, 9.1, 10.3], [0, 5.0, 5.0, 5.0, 5.0]], dtype=torch.float64)
    ours = roi_align(feat, rois, 3, spatial_scale=0.25, sampling_ratio=sampling_ratio, aligned=aligned)
    for r in range(len(rois)):
        for c in range(2):
            want = _mmcv_roi_align_loops(feat[0, c], rois[r], 3, 0.25, sampling_ratio, aligned)
            assert torch.allclose(ours[r, c], want, atol=1e-6), (r, c)


def test_aligned_boxes_sample_pixel_centres_of_a_linear_ramp():
    # f(y, x) = x is reproduced exactly by bilinear sampling, so each bin returns its centre's x
    # in pixel-centre coordinates: x1 - 0.5 + (q + 0.5) * bin_width.
    feat = torch.arange(16, dtype=torch.float64).repeat(16, 1)[None, None]
    out = roi_align(feat, torch.tensor([[0, 2.0, 2.0, 10.0, 10.0]], dtype=torch.float64), 4,
                    spatial_scale=1.0, aligned=True)
    assert torch.allclose(out[0, 0, 0], torch.tensor([2.5, 4.5, 6.5, 8.5], dtype=torch.float64))
    unaligned = roi_align(feat, torch.tensor([[0, 2.0, 2.0, 10.0, 10.0]], dtype=torch.float64), 4,
                          spatial_scale=1.0, aligned=False)
    assert torch.allclose(unaligned[0, 0, 0], torch.tensor([3.0, 5.0, 7.0, 9.0], dtype=torch.float64))


def test_box_entirely_outside_the_map_pools_zeros():
    feat = torch.ones(1, 3, 8, 8)
    out = roi_align(feat, torch.tensor([[0, 200.0, 200.0, 260.0, 260.0]]), 2, spatial_scale=1 / 16)
    assert out.shape == (1, 3, 2, 2) and torch.count_nonzero(out) == 0


def test_uses_the_batch_index_column():
    feat = torch.stack([torch.zeros(1, 8, 8), torch.ones(1, 8, 8)])
    out = roi_align(feat, torch.tensor([[1, 0.0, 0.0, 64.0, 64.0], [0, 0.0, 0.0, 64.0, 64.0]]), 2,
                    spatial_scale=1 / 8)
    assert torch.all(out[0] == 1) and torch.all(out[1] == 0)


def test_rejects_a_batch_index_outside_the_batch():
    with pytest.raises(ValueError, match=r"rois\[0\]: batch index 3"):
        roi_align(torch.zeros(1, 1, 4, 4), torch.tensor([[3, 0.0, 0.0, 4.0, 4.0]]), 2, spatial_scale=1.0)


def test_gradient_matches_finite_differences():
    feat = torch.randn(1, 1, 5, 6, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 1.3, 0.7, 14.2, 17.9]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: roi_align(f, rois, 2, spatial_scale=0.33), (feat,))


def test_extractor_averages_time_then_pools_each_box():
    g = torch.Generator().manual_seed(1)
    feat = torch.randn(1, 4, 3, 8, 8, generator=g)
    rois = torch.tensor([[0, 8.0, 8.0, 100.0, 90.0]])
    out = RoIExtractor3D(output_size=4, spatial_scale=1 / 16)(feat, rois)
    assert out.shape == (1, 4, 1, 4, 4)
    want = roi_align(feat.mean(2), rois, 4, spatial_scale=1 / 16)
    assert torch.allclose(out[:, :, 0], want, atol=1e-6)


def test_extractor_concatenates_pathways_of_different_lengths():
    slow, fast = torch.randn(1, 6, 2, 8, 8), torch.randn(1, 2, 8, 8, 8)
    rois = torch.tensor([[0, 0.0, 0.0, 128.0, 128.0]])
    out = RoIExtractor3D(output_size=2, spatial_scale=1 / 16)((slow, fast), rois)
    assert out.shape == (1, 8, 1, 2, 2)
    only_fast = RoIExtractor3D(output_size=2, spatial_scale=1 / 16)(fast, rois)
    assert torch.allclose(out[:, 6:], only_fast, atol=1e-6)
