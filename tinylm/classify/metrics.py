"""Classification metrics: accuracy, the confusion matrix, precision, recall, F1 (chapter 09).

For C classes, true labels y and predictions y_hat (N each), the confusion matrix

    M_ab = #{i : y_i = a, y_hat_i = b}          rows: the truth, columns: the prediction

holds everything else. For class c, with tp = M_cc, the column sum = predicted c, the row
sum = truly c (its support):

    accuracy    = sum_c M_cc / N
    precision_c = M_cc / sum_a M_ac            of the texts called c, the share that are c
    recall_c    = M_cc / sum_b M_cb            of the texts that are c, the share found
    F1_c        = 2 P_c R_c / (P_c + R_c)      their harmonic mean

A ratio with a zero denominator (a class never predicted, or absent) counts as 0, as in
scikit-learn's default. Macro averages are the plain means over classes, so a rare class
(747 spam among 5,574 messages) weighs as much as a common one; accuracy alone would
reward a classifier that calls everything ham 86.6 % of the time.
"""

from __future__ import annotations

import numpy


def _check_labels(y_true, y_pred, n_classes: int) -> tuple:
    y_true, y_pred = numpy.asarray(y_true), numpy.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1 or y_true.size == 0:
        raise ValueError(f"metrics: y_true {y_true.shape} and y_pred {y_pred.shape} must be "
                         "two non-empty 1-D arrays of the same length.")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= n_classes:
            raise ValueError(f"metrics: {name} must hold integer class ids in "
                             f"[0, {n_classes}).")
    return y_true, y_pred


def accuracy(y_true, y_pred) -> float:
    """The fraction of predictions equal to the truth."""
    y_true, y_pred = numpy.asarray(y_true), numpy.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(f"accuracy: y_true {y_true.shape} and y_pred {y_pred.shape} must be "
                         "non-empty and of the same shape.")
    return float((y_true == y_pred).mean())


def confusion_matrix(y_true, y_pred, n_classes: int) -> numpy.ndarray:
    """M [C, C] int64: M[a, b] counts examples of class a predicted as b."""
    y_true, y_pred = _check_labels(y_true, y_pred, n_classes)
    flat = numpy.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes).astype(numpy.int64)


def _ratio(numerator, denominator):
    """numerator / denominator, 0 where the denominator is 0."""
    out = numpy.zeros(numerator.shape, dtype=numpy.float64)
    numpy.divide(numerator, denominator, out=out, where=denominator != 0)
    return out


def precision_recall_f1(M: numpy.ndarray) -> tuple:
    """From a confusion matrix [C, C]: (precision [C], recall [C], F1 [C], support [C])."""
    tp = numpy.diag(M).astype(numpy.float64)
    precision = _ratio(tp, M.sum(axis=0))
    recall = _ratio(tp, M.sum(axis=1))
    f1 = _ratio(2.0 * precision * recall, precision + recall)
    return precision, recall, f1, M.sum(axis=1)


def classification_metrics(y_true, y_pred, label_names) -> dict:
    """Every figure above as plain JSON-able data: accuracy, macro precision/recall/F1, the
    confusion matrix (nested lists) and a per-class entry for each name."""
    M = confusion_matrix(y_true, y_pred, len(label_names))
    precision, recall, f1, support = precision_recall_f1(M)
    return {
        "accuracy": float(numpy.trace(M) / M.sum()),
        "macro_precision": float(precision.mean()),
        "macro_recall": float(recall.mean()),
        "macro_f1": float(f1.mean()),
        "confusion_matrix": M.tolist(),
        "per_class": {name: {"precision": float(precision[c]), "recall": float(recall[c]),
                             "f1": float(f1[c]), "support": int(support[c])}
                      for c, name in enumerate(label_names)},
    }


def format_metrics(metrics: dict) -> str:
    """A ``classification_metrics`` dict as a text table: one row per class, the macro
    averages, the accuracy, then the confusion matrix."""
    names = list(metrics["per_class"])
    width = max(12, *(len(n) + 2 for n in names))
    lines = [f"{'':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for name, row in metrics["per_class"].items():
        lines.append(f"{name:<{width}}{row['precision']:>10.4f}{row['recall']:>10.4f}"
                     f"{row['f1']:>10.4f}{row['support']:>10d}")
    total = sum(row["support"] for row in metrics["per_class"].values())
    lines.append(f"{'macro avg':<{width}}{metrics['macro_precision']:>10.4f}"
                 f"{metrics['macro_recall']:>10.4f}{metrics['macro_f1']:>10.4f}{total:>10d}")
    lines.append(f"{'accuracy':<{width}}{metrics['accuracy']:>30.4f}{total:>10d}")
    lines.append("")
    corner = "true \\ pred"
    lines.append(f"{corner:<{width}}" + "".join(f"{n:>10}" for n in names))
    for name, row in zip(names, metrics["confusion_matrix"]):
        lines.append(f"{name:<{width}}" + "".join(f"{v:>10d}" for v in row))
    return "\n".join(lines)
