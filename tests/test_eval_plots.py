"""Evaluation plots are written as real PNG images."""

import numpy as np
import pytest

from humact.eval.plots import plot_confusion_matrix, plot_per_class_ap, plot_pr_curves

PNG = b"\x89PNG\r\n\x1a\n"


def _png_size(path):
    data = path.read_bytes()
    assert data[:8] == PNG
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_confusion_matrix_png(tmp_path):
    cm = np.array([[5, 1, 0], [0, 3, 2], [0, 0, 0]])
    plot_confusion_matrix(cm, ["walk", "run", "jump"], tmp_path / "cm.png")
    w, h = _png_size(tmp_path / "cm.png")
    assert w > 100 and h > 100


def test_confusion_matrix_rejects_wrong_shape(tmp_path):
    with pytest.raises(ValueError, match="cm"):
        plot_confusion_matrix(np.zeros((2, 2)), ["a", "b", "c"], tmp_path / "cm.png")


def test_per_class_ap_png(tmp_path):
    plot_per_class_ap({1: 0.5, 3: 0.9, 4: 0.1}, {1: "bend", 3: "crouch", 4: "dance"}, tmp_path / "ap.png")
    assert _png_size(tmp_path / "ap.png")[0] > 100


def test_pr_curves_png(tmp_path):
    curves = {1: (np.array([1.0, 0.5, 0.67]), np.array([0.5, 0.5, 1.0]))}
    plot_pr_curves(curves, {1: "bend"}, tmp_path / "sub" / "pr.png", ap={1: 0.83})
    assert _png_size(tmp_path / "sub" / "pr.png")[0] > 100
