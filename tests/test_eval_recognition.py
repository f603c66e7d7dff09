"""Recognition metrics: top-k accuracy, mean class accuracy, confusion matrix."""

import numpy as np
import pytest

from humact.eval.recognition import confusion_matrix, mean_class_accuracy, topk_accuracy

SCORES = np.array([
    [0.1, 0.7, 0.2],   # true 1: top-1 hit
    [0.5, 0.3, 0.2],   # true 1: top-2 hit only
    [0.2, 0.3, 0.5],   # true 0: miss even in top-2
    [0.6, 0.1, 0.3],   # true 0: top-1 hit
])
LABELS = np.array([1, 1, 0, 0])


def test_top1_accuracy_counts_samples_whose_best_class_is_true():
    assert topk_accuracy(SCORES, LABELS, 1) == pytest.approx(2 / 4)


def test_top2_accuracy_also_counts_second_best_hits():
    assert topk_accuracy(SCORES, LABELS, 2) == pytest.approx(3 / 4)


def test_topk_with_k_at_least_num_classes_is_one():
    assert topk_accuracy(SCORES, LABELS, 3) == 1.0
    assert topk_accuracy(SCORES, LABELS, 10) == 1.0


def test_topk_tie_goes_to_lower_class_index():
    scores = np.array([[0.5, 0.5, 0.0]])
    assert topk_accuracy(scores, np.array([0]), 1) == 1.0
    assert topk_accuracy(scores, np.array([1]), 1) == 0.0


def test_mean_class_accuracy_averages_per_class_recall():
    # class 0: 3 samples, 3 right; class 1: 1 sample, wrong -> (1 + 0) / 2, not 3/4
    scores = np.array([[1, 0], [1, 0], [1, 0], [1, 0]], float)
    labels = np.array([0, 0, 0, 1])
    assert topk_accuracy(scores, labels, 1) == pytest.approx(0.75)
    assert mean_class_accuracy(scores, labels) == pytest.approx(0.5)


def test_mean_class_accuracy_ignores_classes_without_samples():
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]])
    assert mean_class_accuracy(scores, np.array([0, 0])) == pytest.approx(0.5)


def test_confusion_matrix_rows_are_true_classes():
    cm = confusion_matrix(np.array([1, 0, 2, 0]), np.array([1, 1, 0, 0]), 3)
    expected = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(cm, expected)
    assert cm.dtype == np.int64


def test_confusion_matrix_diagonal_sum_matches_top1():
    rng = np.random.default_rng(0)
    scores = rng.random((50, 7))
    labels = rng.integers(0, 7, 50)
    cm = confusion_matrix(scores.argmax(1), labels, 7)
    assert cm.sum() == 50
    assert np.trace(cm) / 50 == pytest.approx(topk_accuracy(scores, labels, 1))


def test_labels_out_of_range_are_rejected_naming_the_field():
    with pytest.raises(ValueError, match="labels"):
        topk_accuracy(SCORES, np.array([0, 1, 2, 3]), 1)
    with pytest.raises(ValueError, match="pred"):
        confusion_matrix(np.array([5]), np.array([0]), 3)


def test_mismatched_shapes_are_rejected():
    with pytest.raises(ValueError, match="labels"):
        topk_accuracy(SCORES, LABELS[:3], 1)
