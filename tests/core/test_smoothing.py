"""Per-face temporal smoothing: the thesis' most-frequent-of-10 vote and the EMA."""

from collections import Counter

import numpy as np
import pytest

from core.labels import CLASS_NAMES
from core.smoothing import EmotionSmoother, MajorityVote, normalize_smoothing


def one_hot(label: str, weight: float = 0.9) -> np.ndarray:
    row = np.full(len(CLASS_NAMES), (1 - weight) / (len(CLASS_NAMES) - 1))
    row[CLASS_NAMES.index(label)] = weight
    return row


def test_vote_is_the_most_frequent_label_of_the_last_ten_frames():
    rng = np.random.default_rng(3)
    # A noisy stream: mostly happy, then mostly sad, with random other labels mixed in.
    stream = [("happy" if t < 60 else "sad") if rng.random() < 0.6 else str(rng.choice(CLASS_NAMES)) for t in range(120)]
    smoother = EmotionSmoother("vote", window=10)
    for t, label in enumerate(stream):
        shown = smoother.update(one_hot(label))
        window = stream[max(0, t - 9):t + 1]
        counts = Counter(window)
        best = max(counts.values())
        # The thesis' rule: a label with the highest count among the last 10 (ties: the newest of them).
        assert counts[shown] == best
        assert shown == next(name for name in reversed(window) if counts[name] == best)


def test_vote_holds_a_steady_label_through_single_frame_flickers():
    smoother = EmotionSmoother("vote", window=10)
    shown = [smoother.update(one_hot(label)) for label in ["happy"] * 8 + ["angry"] + ["happy"] * 3 + ["fear"]]
    assert shown[8] == "happy" and shown[-1] == "happy"
    assert EmotionSmoother("none").update(one_hot("angry")) == "angry"


def test_majority_vote_keeps_its_tie_rule_and_is_still_importable_from_predict():
    from core.predict import MajorityVote as FromPredict

    assert FromPredict is MajorityVote
    vote = MajorityVote(window=3)
    assert vote.current() is None
    assert [vote.update(label) for label in ("happy", "sad", "happy", "sad")] == ["happy", "sad", "happy", "sad"]


def test_ema_averages_probabilities_with_alpha_from_the_window():
    smoother = EmotionSmoother("ema", window=9)  # alpha = 2 / (9 + 1) = 0.2
    first = one_hot("happy", 0.7)
    assert smoother.update(first) == "happy"
    assert np.allclose(smoother.average, first)
    second = one_hot("sad", 0.9)
    assert smoother.update(second) == "happy"  # 0.8 * 0.7 + 0.2 * 0.05 > 0.8 * 0.05 + 0.2 * 0.9
    assert np.allclose(smoother.average, 0.2 * second + 0.8 * first)
    for _ in range(10):
        shown = smoother.update(second)
    assert shown == "sad"


@pytest.mark.parametrize("mode, window, message", [("median", 10, "unknown smoothing"), ("vote", 0, "at least 1")])
def test_bad_smoothing_settings_are_refused(mode, window, message):
    with pytest.raises(ValueError, match=message):
        EmotionSmoother(mode, window)


def test_smoothing_names_are_case_insensitive_and_probabilities_are_checked():
    assert normalize_smoothing(" EMA ") == "ema"
    with pytest.raises(ValueError, match="expected 7 probabilities"):
        EmotionSmoother("vote").update(np.ones(3))
