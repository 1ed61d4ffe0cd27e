"""Temporal smoothing of one face's emotion over the frames of a stream (webcam, video).

A label that flips every frame is unreadable on a live video; the PyTorch
thesis shows the most frequent label of the last 10 frames instead. Three
modes, each applied per tracked face:

* ``none``: the frame's own top emotion;
* ``vote``: the most frequent top emotion of the last ``window`` frames
  (:class:`MajorityVote`; ``window=10`` is the thesis' rule);
* ``ema``: the top emotion of an exponential moving average of the
  probabilities, with ``alpha = 2 / (window + 1)`` (the usual "span"
  convention, so both modes look back about ``window`` frames).
"""

from __future__ import annotations

from collections import Counter, deque

import numpy as np

from core.labels import CLASS_NAMES

SMOOTHING_MODES: tuple[str, ...] = ("vote", "ema", "none")
SMOOTHING_LABELS: dict[str, str] = {
    "vote": "Vote: most frequent of the last N frames",
    "ema": "EMA: moving average of the probabilities",
    "none": "None: every frame on its own",
}
DEFAULT_SMOOTHING: str = "vote"
DEFAULT_WINDOW: int = 10


class MajorityVote:
    """Smooth a stream of labels (webcam, video): the most frequent of the last ``window``.

    Ties go to the most recent of the tied labels, so the shown label does not
    flicker between two equally frequent ones.
    """

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        self.window = window
        self._labels: deque[str] = deque(maxlen=window)

    def update(self, label: str) -> str:
        """Add the newest label and return the current majority."""
        self._labels.append(label)
        return self.current()

    def current(self) -> str | None:
        """The majority label, or ``None`` before the first update."""
        if not self._labels:
            return None
        counts = Counter(self._labels)
        best = max(counts.values())
        return next(label for label in reversed(self._labels) if counts[label] == best)

    def support(self) -> tuple[int, int]:
        """``(votes for the current label, frames in the window so far)``; ``(0, 0)`` before the first update."""
        label = self.current()
        return (sum(1 for seen in self._labels if seen == label), len(self._labels)) if label is not None else (0, 0)

    def reset(self) -> None:
        self._labels.clear()


class EmotionSmoother:
    """One face's smoothed emotion: feed each frame's probabilities, read the label to show.

    Args:
        mode: ``none``, ``vote`` or ``ema`` (:data:`SMOOTHING_MODES`).
        window: Frames the smoothing looks back (vote window; EMA span).

    Raises:
        ValueError: Unknown mode or a window below 1.
    """

    def __init__(self, mode: str = DEFAULT_SMOOTHING, window: int = DEFAULT_WINDOW) -> None:
        self.mode = normalize_smoothing(mode)
        if int(window) < 1:
            raise ValueError(f"the smoothing window must be at least 1 frame, got {window}")
        self.window = int(window)
        self.alpha = 2.0 / (self.window + 1.0)
        self._vote = MajorityVote(self.window)
        self._average: np.ndarray | None = None

    def update(self, probabilities: np.ndarray) -> str:
        """Add a frame's ``(7,)`` probabilities (FER2013 order) and return the emotion to show."""
        probabilities = np.asarray(probabilities, dtype=np.float64).reshape(-1)
        if probabilities.shape != (len(CLASS_NAMES),):
            raise ValueError(f"expected {len(CLASS_NAMES)} probabilities, got shape {probabilities.shape}")
        label = CLASS_NAMES[int(np.argmax(probabilities))]
        if self.mode == "vote":
            return self._vote.update(label)
        if self.mode == "ema":
            if self._average is None:
                self._average = probabilities.copy()
            else:
                self._average = self.alpha * probabilities + (1.0 - self.alpha) * self._average
            return CLASS_NAMES[int(np.argmax(self._average))]
        return label

    def support_text(self, probabilities: np.ndarray, label: str) -> str:
        """What backs ``label``, the emotion :meth:`update` just returned, in the mode's own terms: ``7/10`` (its
        votes among the last frames), the moving average's probability of it (``ema``), or the frame's own.

        A vote winner drawn with this frame's probability of it read "surprise 13%" on a frame the model called
        fear 52% (walk s21): the number must say why that label is shown.
        """
        if self.mode == "vote":
            votes, frames = self._vote.support()
            return f"{votes}/{frames}"
        values = self._average if self.mode == "ema" and self._average is not None else np.asarray(probabilities)
        return f"{float(values[CLASS_NAMES.index(label)]):.0%}"

    @property
    def average(self) -> np.ndarray | None:
        """The EMA of the probabilities so far (``ema`` mode), else ``None``."""
        return None if self._average is None else self._average.copy()


def normalize_smoothing(mode: str) -> str:
    """Check a smoothing mode name.

    Raises:
        ValueError: For an unknown mode; the message lists the known ones.
    """
    key = str(mode).strip().lower()
    if key not in SMOOTHING_MODES:
        raise ValueError(f"unknown smoothing {mode!r}; choose one of: {', '.join(SMOOTHING_MODES)}")
    return key
