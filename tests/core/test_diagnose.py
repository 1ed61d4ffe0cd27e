"""A model that predicts one class, or scores at guessing level, is recognised."""

import numpy as np
import pytest

from core.diagnose import dominant_prediction, guessing_level_warning, one_class_warning


def test_one_class_for_almost_every_image_is_named():
    predictions = np.array([1] * 95 + [3] * 5)
    assert dominant_prediction(predictions) == (1, 0.95)
    assert "**disgust** for 95% of the images" in one_class_warning(predictions)


def test_a_model_that_spreads_its_predictions_gets_no_warning():
    assert one_class_warning(np.arange(700) % 7) is None


def test_guessing_level_is_the_share_of_the_most_common_class():
    assert "2.44% is no better" in guessing_level_warning(0.0244)
    assert guessing_level_warning(0.26) is not None  # happy is 25.1% of FER2013 Training
    assert guessing_level_warning(0.45) is None and guessing_level_warning(None) is None
    assert "of FER2013's Training images" in guessing_level_warning(0.26)  # an older run: the assumption is said


def test_guessing_level_is_measured_on_the_runs_own_validation_data():
    # Probe s11: a class-balanced run was told "happy, 25% of FER2013" where always one class scores 14.3%.
    balanced = [6] * 7
    assert guessing_level_warning(0.20, balanced) is None  # well above 1/7
    warning = guessing_level_warning(0.1429, balanced)
    assert "(angry, 14% of this run's validation images)" in warning
    assert "sad, 50%" in guessing_level_warning(0.5, [1, 1, 1, 1, 10, 3, 3])
    for unusable in ([0] * 7, [1, 2, 3], ["6"] * 7, "x"):  # FER2013's shares instead
        assert "of FER2013's Training images" in guessing_level_warning(0.2, unusable)


@pytest.mark.parametrize("predictions", [np.array([], np.int64), np.array([0, 7])], ids=["empty", "out-of-range"])
def test_bad_predictions_raise_value_error(predictions):
    with pytest.raises(ValueError):
        dominant_prediction(predictions)
