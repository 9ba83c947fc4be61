"""Classification metrics on numpy arrays (or Tensors): accuracy and the confusion matrix."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Tensor
from ..functional import positive_int


def _array(values: Any) -> np.ndarray:
    return values.data if isinstance(values, Tensor) else np.asarray(values)


def _class_indices(values: np.ndarray, name: str, op: str) -> np.ndarray:
    if values.ndim != 1 or values.dtype.kind not in "iu":
        raise ValueError(f"{op}: {name} must be a 1-D array of integer class indices, "
                         f"got a {values.dtype} array of shape {values.shape}")
    return values


def predictions(logits_or_preds: Any) -> np.ndarray:
    """(N, classes) scores -> (N,) argmax classes; (N,) integer classes are returned as they are."""
    values = _array(logits_or_preds)
    if values.ndim == 2:
        return values.argmax(axis=1)
    return _class_indices(values, "predictions", "predictions")


def accuracy(logits_or_preds: Any, targets: Any) -> float:
    """Fraction of samples whose predicted class equals the target, in [0, 1].

    `logits_or_preds` is either (N, classes) scores (the argmax is the prediction) or (N,) classes;
    `targets` is (N,) integer classes.
    """
    preds = predictions(logits_or_preds)
    targets = _class_indices(_array(targets), "targets", "accuracy")
    if preds.shape != targets.shape or len(targets) == 0:
        raise ValueError(f"accuracy: need one prediction per target and at least one sample, got "
                         f"{preds.shape[0]} predictions for {targets.shape[0]} targets")
    return float(np.count_nonzero(preds == targets)) / len(targets)


def confusion_matrix(preds: Any, targets: Any, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) int64 counts: entry [t, p] is how many samples of true class t were
    predicted as p (rows = true class, columns = predicted class, as in scikit-learn)."""
    preds = _class_indices(_array(preds), "preds", "confusion_matrix")
    targets = _class_indices(_array(targets), "targets", "confusion_matrix")
    if preds.shape != targets.shape:
        raise ValueError(f"confusion_matrix: preds has shape {preds.shape} but targets has shape {targets.shape}")
    num_classes = positive_int(num_classes, "num_classes", "confusion_matrix")
    for name, values in (("preds", preds), ("targets", targets)):
        if len(values) and (values.min() < 0 or values.max() >= num_classes):
            bad = values[(values < 0) | (values >= num_classes)]
            raise ValueError(f"confusion_matrix: {name} must be in [0, {num_classes}), got {bad[:5].tolist()}")
    # Each (true, predicted) pair gets its own bin of a flat histogram.
    flat = np.bincount(targets.astype(np.int64) * num_classes + preds, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)
