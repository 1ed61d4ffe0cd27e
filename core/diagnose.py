"""Spot a model that has not learned anything: one class for almost every image, or accuracy at guessing level.

A short or broken run often ends predicting a single class: its accuracy is
then that class's share of the split (25% for "happy" on FER2013, 1.5% for
"disgust"), which looks like a number but means nothing. These checks let
the Training, Evaluation and Compare pages say so.
"""

from __future__ import annotations

import numpy as np

from core.labels import CLASS_NAMES, NUM_CLASSES

# The most common class of FER2013, "happy": 7,215 of the 28,709 Training images (8,989 of 35,887 overall).
FER2013_MAJORITY_CLASS = "happy"
FER2013_MAJORITY_SHARE = 7215 / 28709
# A model whose top class covers at least this share of the images is called one-class.
ONE_CLASS_SHARE = 0.8
# Accuracy within this margin of always answering the most common class is "guessing level".
GUESSING_MARGIN = 0.02


def dominant_prediction(predictions: np.ndarray, num_classes: int = NUM_CLASSES) -> tuple[int, float]:
    """The class predicted most often and the share of images it is predicted for.

    Args:
        predictions: ``(n,)`` int predicted class indices (FER2013 order).
        num_classes: Number of classes.

    Returns:
        ``(class index, share in [0, 1])``.

    Raises:
        ValueError: If ``predictions`` is empty or holds an index outside ``0..num_classes-1``.
    """
    predictions = np.asarray(predictions).ravel()
    if predictions.size == 0:
        raise ValueError("no predictions: the split is empty")
    if predictions.min() < 0 or predictions.max() >= num_classes:
        raise ValueError(f"predicted classes must be in 0..{num_classes - 1}")
    counts = np.bincount(predictions.astype(np.int64), minlength=num_classes)
    top = int(counts.argmax())
    return top, float(counts[top] / predictions.size)


def one_class_warning(predictions: np.ndarray) -> str | None:
    """A sentence for a model that predicts one class for at least 80% of the images, else ``None``."""
    top, share = dominant_prediction(predictions)
    if share < ONE_CLASS_SHARE:
        return None
    return (f"This model predicts **{CLASS_NAMES[top]}** for {share:.0%} of the images: it has not learned to tell "
            "the emotions apart, and its accuracy is mostly that class's share of the split. Train it longer, "
            "with a lower learning rate, or check its data.")


def majority_baseline(class_counts) -> tuple[str, float] | None:
    """``(class name, share)`` of the most common class in ``class_counts`` (FER2013 order), or None if unusable.

    Args:
        class_counts: Images per class, as a run records for its validation
            data (``resolved.val_class_counts``); anything else gives None.
    """
    if not isinstance(class_counts, (list, tuple)) or len(class_counts) != NUM_CLASSES:
        return None
    if not all(isinstance(count, int) and not isinstance(count, bool) and count >= 0 for count in class_counts):
        return None
    total = sum(class_counts)
    if total == 0:
        return None
    top = max(range(NUM_CLASSES), key=lambda index: class_counts[index])
    return CLASS_NAMES[top], class_counts[top] / total


def guessing_level_warning(best_val_accuracy: float | None, class_counts=None) -> str | None:
    """A sentence when a run's best validation accuracy is no better than always answering the most common class.

    Args:
        best_val_accuracy: In ``[0, 1]``; ``None`` (no finished epoch) gives ``None``.
        class_counts: Images per class in the run's validation data (FER2013
            order), from its ``config.json``; without them (runs from before
            they were recorded) FER2013's own shares are assumed and said.
    """
    baseline = majority_baseline(class_counts)
    name, share, where = ((*baseline, "of this run's validation images") if baseline is not None
                          else (FER2013_MAJORITY_CLASS, FER2013_MAJORITY_SHARE, "of FER2013's Training images"))
    if best_val_accuracy is None or best_val_accuracy > share + GUESSING_MARGIN:
        return None
    return (f"Best validation accuracy {best_val_accuracy:.2%} is no better than always answering the most common "
            f"class ({name}, {share:.0%} {where}): the model most likely predicts one "
            "class for almost every image. Train it longer, with a lower learning rate, or check its data.")
