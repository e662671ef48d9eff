"""Metrics against small examples computed by hand (no scikit-learn)."""

from __future__ import annotations

import numpy as np
import pytest

from streamline.fusion.metrics import classification_report, expected_calibration_error, roc_auc_ovr

CLASSES3 = ("a", "b", "c")


def test_three_class_example_by_hand() -> None:
    # true:  a a a b b c
    # pred:  a a b b c c
    y = np.array([0, 0, 0, 1, 1, 2])
    probs = np.array(
        [
            [0.8, 0.1, 0.1],
            [0.6, 0.3, 0.1],
            [0.3, 0.6, 0.1],
            [0.2, 0.7, 0.1],
            [0.1, 0.4, 0.5],
            [0.1, 0.2, 0.7],
        ]
    )
    r = classification_report(y, probs, classes=CLASSES3)
    assert r["n"] == 6
    assert r["accuracy"] == pytest.approx(4 / 6)
    assert r["confusion"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]
    # a: P 2/2, R 2/3 -> F1 0.8; b: P 1/2, R 1/2 -> 0.5; c: P 1/2, R 1 -> 2/3
    pc = r["per_class"]
    assert pc["a"]["precision"] == pytest.approx(1.0) and pc["a"]["recall"] == pytest.approx(2 / 3)
    assert pc["a"]["f1"] == pytest.approx(0.8)
    assert pc["b"]["f1"] == pytest.approx(0.5)
    assert pc["c"]["f1"] == pytest.approx(2 / 3)
    assert r["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert r["weighted_f1"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * 2 / 3) / 6)
    # AUC of class c: positive score 0.7 against negatives 0.1 0.1 0.1 0.1 0.5 -> all below: 1.0
    assert pc["c"]["roc_auc"] == pytest.approx(1.0)
    # class a: positives 0.8 0.6 0.3; negatives 0.2 0.1 0.1 -> every pair ordered: 1.0
    assert pc["a"]["roc_auc"] == pytest.approx(1.0)
    # class b: positives 0.7, 0.4; negatives 0.1 0.3 0.6 0.2 -> 0.7 beats 4, 0.4 beats 3 of 4 -> 7/8
    assert pc["b"]["roc_auc"] == pytest.approx(7 / 8)
    assert r["roc_auc"] == pytest.approx((1 + 7 / 8 + 1) / 3)


def test_auc_ties_count_half() -> None:
    y = np.array([0, 1, 0, 1])
    probs = np.array([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1], [0.2, 0.8]])
    auc, per = roc_auc_ovr(y, probs)
    # class 1 scores: positives 0.5, 0.8; negatives 0.5, 0.1: pairs (0.5,0.5)=0.5 (0.5,0.1)=1 (0.8,.)=1,1 -> 3.5/4
    assert per[1] == pytest.approx(3.5 / 4)
    assert per[0] == pytest.approx(3.5 / 4)
    assert auc == pytest.approx(3.5 / 4)


def test_auc_undefined_for_a_class_without_negatives() -> None:
    auc, per = roc_auc_ovr(np.array([0, 0]), np.array([[0.6, 0.4], [0.7, 0.3]]))
    assert per == [None, None] and auc is None


def test_ece_by_hand() -> None:
    # confidences 0.9 (right), 0.9 (wrong), 0.6 (right), 0.6 (right); 10 bins
    # bin (0.8, 0.9]: acc 0.5, conf 0.9 -> |0.4| * 2/4; bin (0.5, 0.6]: acc 1, conf 0.6 -> 0.4 * 2/4
    y = np.array([0, 0, 1, 1])
    probs = np.array([[0.9, 0.1], [0.1, 0.9], [0.4, 0.6], [0.4, 0.6]])
    assert expected_calibration_error(y, probs, n_bins=10) == pytest.approx(0.4)


def test_perfect_and_empty_classes() -> None:
    y = np.array([0, 1])
    probs = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    r = classification_report(y, probs, classes=CLASSES3)
    assert r["accuracy"] == 1.0 and r["macro_f1"] == 1.0  # class c neither true nor predicted: left out
    assert r["per_class"]["c"]["support"] == 0 and r["per_class"]["c"]["f1"] == 0.0
    assert r["ece"] == pytest.approx(0.0)


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shape"):
        classification_report(np.array([0, 1]), np.ones((3, 3)) / 3, classes=CLASSES3)
