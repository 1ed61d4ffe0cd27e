"""Small pieces of the evaluation widgets that the page tests do not pin down."""

from __future__ import annotations

import json

from dashboard.evaluation_widgets import test_accuracy_text as accuracy_text


def test_the_recorded_accuracy_lists_every_mode_of_each_test_split(tmp_path):
    (tmp_path / "evaluation.json").write_text(json.dumps({
        "PublicTest": {"accuracy": 0.7035, "tta": "crop10", "modes": {
            "crop10": {"accuracy": 0.7035, "tta": "crop10"}, "none": {"accuracy": 0.6924, "tta": "none"}}},
        "Training": {"accuracy": 0.9, "tta": "none"},  # not a test split: not listed
        "PrivateTest": {"accuracy": 0.6601, "tta": True}}))
    assert accuracy_text(tmp_path) == ("PublicTest 69.24% (single pass), 70.35% (ten-crop TTA) · "
                                       "PrivateTest 66.01% (flip TTA)")
    assert accuracy_text(tmp_path / "never-evaluated") == "—"
