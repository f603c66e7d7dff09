"""`humact.predict.predict_clips`: the one multi-view test-time average every recognizer's `predict` is."""

from __future__ import annotations

import pytest
import torch

from humact.predict import average_clips, predict_clips


def linear(x: torch.Tensor) -> torch.Tensor:
    """A 'model' whose logits are a fixed linear map of the flattened view: (B, ...) -> (B, 3)."""
    w = torch.arange(x[0].numel() * 3, dtype=torch.float32).reshape(-1, 3) / 100
    return x.flatten(1) @ w


def test_the_views_of_each_sample_are_averaged_as_softmax_probabilities():
    x = torch.randn(2, 4, 5, generator=torch.Generator().manual_seed(0))
    want = torch.stack([linear(x[i]).softmax(-1).mean(0) for i in range(2)])
    torch.testing.assert_close(predict_clips(linear, x), want)


def test_score_mode_averages_the_logits():
    x = torch.randn(3, 2, 5, generator=torch.Generator().manual_seed(1))
    want = torch.stack([linear(x[i]).mean(0) for i in range(3)])
    torch.testing.assert_close(predict_clips(linear, x, mode="score"), want)


def test_chunked_views_give_the_same_scores_as_one_pass():
    x = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(2))
    calls = []

    def model(v):
        calls.append(v.shape[0])
        return linear(v)

    one = predict_clips(model, x)
    chunked = predict_clips(model, x, batch_size=4)
    assert calls == [15, 4, 4, 4, 3]
    torch.testing.assert_close(chunked, one)


def test_a_model_with_two_inputs_and_two_heads_gets_each_head_averaged():
    a = torch.randn(2, 3, 4, generator=torch.Generator().manual_seed(3))
    b = torch.randn(2, 3, 6, generator=torch.Generator().manual_seed(4))
    scores = predict_clips(lambda u, v: {"u": linear(u), "v": linear(v)}, a, b)
    torch.testing.assert_close(scores["u"], predict_clips(linear, a))
    torch.testing.assert_close(scores["v"], predict_clips(linear, b))


def test_inputs_of_the_wrong_layout_are_refused_naming_it():
    with pytest.raises(ValueError, match=r"expected \(N, clips, M, T, V, C\), got shape \(2, 17, 3\)"):
        predict_clips(linear, torch.zeros(2, 17, 3), layout="(N, clips, M, T, V, C)")
    with pytest.raises(ValueError, match="same N and views"):
        predict_clips(lambda u, v: linear(u), torch.zeros(2, 3, 4), torch.zeros(2, 2, 4))


def test_average_clips_refuses_an_unknown_mode():
    with pytest.raises(ValueError, match="'prob', 'score' or 'none'"):
        average_clips(torch.zeros(2, 3), 2, "max")
