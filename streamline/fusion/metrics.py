"""Classification metrics in numpy (no scikit-learn): accuracy, F1, ROC-AUC, confusion, ECE.

Definitions:

* precision_c = TP / (TP + FP), recall_c = TP / (TP + FN), F1_c their harmonic
  mean; 0 where the denominator is 0 (scikit-learn's ``zero_division=0``).
* macro F1: the unweighted mean of F1_c over classes that occur in the labels
  or the predictions; weighted F1: mean of F1_c weighted by each class's count
  in the labels (the MELD papers' "weighted F1").
* ROC-AUC, one-vs-rest: for each class with both positives and negatives in
  the labels, the probability that a random positive scores above a random
  negative (ties count one half; the Mann-Whitney U statistic); ``roc_auc`` is
  the mean over those classes (macro), None when no class qualifies.
* ECE (expected calibration error, Naeini et al. 2015; Guo et al. 2017):
  predictions binned by confidence (max probability) into ``n_bins`` equal-width
  bins over [0, 1]; the count-weighted mean of |accuracy - mean confidence| per bin.
* confusion[i][j]: items of true class i predicted as class j.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .types import CLASSES

__all__ = ["classification_report", "roc_auc_ovr", "expected_calibration_error", "confusion_matrix", "format_report"]


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes, n_classes) int64 counts, rows true, columns predicted."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return cm


def _auc_binary(scores: np.ndarray, positive: np.ndarray) -> float:
    """Mann-Whitney AUC with average ranks for ties."""
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(len(s), dtype=np.float64)
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i : j + 1] = (i + j) / 2.0 + 1.0
        i = j + 1
    r = np.empty_like(ranks)
    r[order] = ranks
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    u = r[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def roc_auc_ovr(y_true: np.ndarray, probs: np.ndarray) -> tuple[float | None, list[float | None]]:
    """Macro one-vs-rest ROC-AUC and the per-class values (None for a class without both outcomes)."""
    y = np.asarray(y_true, np.int64)
    per: list[float | None] = []
    for c in range(probs.shape[1]):
        pos = y == c
        if pos.all() or not pos.any():
            per.append(None)
        else:
            per.append(_auc_binary(np.asarray(probs[:, c], np.float64), pos))
    valid = [a for a in per if a is not None]
    return (float(np.mean(valid)) if valid else None), per


def expected_calibration_error(y_true: np.ndarray, probs: np.ndarray, *, n_bins: int = 15) -> float:
    """ECE of the max-probability confidence (see the module docstring)."""
    y = np.asarray(y_true, np.int64)
    if len(y) == 0:
        return 0.0
    conf = probs.max(1)
    correct = (probs.argmax(1) == y).astype(np.float64)
    # bin b holds conf in (b/n, (b+1)/n]; conf == 0 goes to bin 0
    bins = np.clip(np.ceil(conf * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        sel = bins == b
        if sel.any():
            ece += sel.sum() / len(y) * abs(correct[sel].mean() - conf[sel].mean())
    return float(ece)


def classification_report(
    y_true: Sequence[int] | np.ndarray,
    probs: np.ndarray,
    *,
    classes: Sequence[str] = CLASSES,
    n_bins: int = 15,
) -> dict[str, Any]:
    """All metrics for class indices ``y_true`` (n,) and probabilities ``probs`` (n, k).

    Returns:
        JSON-ready dict: ``n``, ``accuracy``, ``macro_f1``, ``weighted_f1``, ``roc_auc``
        (macro OvR, None if undefined), ``ece``, ``confusion`` (k x k list, rows
        true), ``per_class`` (class -> precision, recall, f1, support, roc_auc),
        ``classes``.
    """
    y = np.asarray(y_true, np.int64)
    p = np.asarray(probs, np.float64)
    k = len(classes)
    if p.ndim != 2 or p.shape != (len(y), k):
        raise ValueError(f"probs must have shape ({len(y)}, {k}), got {p.shape}")
    pred = p.argmax(1) if len(y) else np.zeros(0, np.int64)
    cm = confusion_matrix(y, pred, k)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(1).astype(np.float64)
    predicted = cm.sum(0).astype(np.float64)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros(k), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    seen = (support > 0) | (predicted > 0)
    macro_f1 = float(f1[seen].mean()) if seen.any() else 0.0
    weighted_f1 = float((f1 * support).sum() / support.sum()) if support.sum() > 0 else 0.0
    auc, per_auc = roc_auc_ovr(y, p) if len(y) else (None, [None] * k)
    return {
        "n": int(len(y)),
        "accuracy": float((pred == y).mean()) if len(y) else 0.0,
        "macro_f1": macro_f1,
        "weighted_f1": weighted_f1,
        "roc_auc": auc,
        "ece": expected_calibration_error(y, p, n_bins=n_bins),
        "confusion": cm.tolist(),
        "per_class": {
            c: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
                "roc_auc": per_auc[i],
            }
            for i, c in enumerate(classes)
        },
        "classes": list(classes),
    }


def format_report(report: dict[str, Any], *, title: str = "") -> str:
    """A readable multi-line table of one :func:`classification_report` result."""
    lines = []
    if title:
        lines.append(title)
    auc = report["roc_auc"]
    lines.append(
        f"n={report['n']}  accuracy={report['accuracy']:.3f}  macro_f1={report['macro_f1']:.3f}  "
        f"weighted_f1={report['weighted_f1']:.3f}  roc_auc={'n/a' if auc is None else f'{auc:.3f}'}  ece={report['ece']:.3f}"
    )
    lines.append(f"  {'class':<10} {'prec':>6} {'recall':>6} {'f1':>6} {'n':>5}   confusion (rows true, cols predicted)")
    classes = report["classes"]
    header = " ".join(f"{c[:4]:>5}" for c in classes)
    lines.append(f"  {'':<10} {'':>6} {'':>6} {'':>6} {'':>5}   {header}")
    for i, c in enumerate(classes):
        pc = report["per_class"][c]
        row = " ".join(f"{v:>5d}" for v in report["confusion"][i])
        lines.append(f"  {c:<10} {pc['precision']:>6.3f} {pc['recall']:>6.3f} {pc['f1']:>6.3f} {pc['support']:>5d}   {row}")
    return "\n".join(lines)
