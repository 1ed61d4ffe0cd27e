"""Labels of the model menu (Evaluation and Predict pages)."""

import json

from dashboard.model_menu import bundled_label, bundled_scores_caption


def _card(path, **accuracy):
    keys = {"none": "PublicTest", "flip": "PublicTest + flip TTA", "crop10": "PublicTest + ten-crop TTA"}
    path.with_suffix(".json").write_text(json.dumps({"evaluation": {
        keys[mode]: {"n": 3589, "accuracy": value} for mode, value in accuracy.items()}}))


def test_a_bundled_label_shows_the_cards_held_out_scores(tmp_path):
    model = tmp_path / "fer_studio_default.keras"
    assert bundled_label(model) == "fer_studio_default · bundled"  # no card: the file name alone
    _card(model, none=0.6796, flip=0.6796, crop10=0.686)
    assert bundled_label(model) == "fer_studio_default · test 67.96%, ten-crop 68.60% · bundled"
    # Ten-crop is named only where it beats the single pass, so the label never points at a slower, worse mode.
    _card(model, none=0.6904, crop10=0.6857)
    assert bundled_label(model) == "fer_studio_default · test 69.04% · bundled"
    _card(model, flip=0.70)  # no single-pass score: nothing to compare with
    assert bundled_label(model) == "fer_studio_default · bundled"


def test_the_caption_under_the_menu_writes_out_every_score_of_the_card(tmp_path):
    model = tmp_path / "fer_studio_swa.keras"
    assert bundled_scores_caption(model) is None
    _card(model, none=0.6904, flip=0.6996, crop10=0.7035)
    assert bundled_scores_caption(model) == "PublicTest (held out): 69.04% single pass · 69.96% flip · 70.35% ten-crop"
