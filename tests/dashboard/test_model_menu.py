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
    # Only the single pass: with ten-crop too, the closed menu and its open list cut the label (walk s10).
    assert bundled_label(model) == "fer_studio_default · test 67.96% · bundled"
    _card(model, flip=0.70)  # no single-pass score
    assert bundled_label(model) == "fer_studio_default · bundled"


def test_the_caption_under_the_menu_writes_out_every_score_of_the_card(tmp_path):
    model = tmp_path / "fer_studio_swa.keras"
    assert bundled_scores_caption(model) is None
    _card(model, none=0.6904, flip=0.6996, crop10=0.7035)
    assert bundled_scores_caption(model) == "PublicTest (held out): 69.04% single pass · 69.96% flip · 70.35% ten-crop"


def _two_pages() -> None:
    import streamlit as st

    from dashboard.model_menu import ensemble_select_ui, model_select_ui

    page = st.session_state.get("page", "predict")
    path = model_select_ui(f"{page}_model")  # each page has its own widget keys, as Predict, Video and Live do
    ensemble_select_ui(f"{page}_ensemble", path)
    st.markdown(f"{page}: {path}")


def test_a_model_chosen_on_one_page_is_the_choice_on_the_next(tmp_path, monkeypatch):
    # Walk s10: fer_studio_c chosen on Predict; Live, Video and Evaluation showed fer_studio_swa again.
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "runs"))
    app = AppTest.from_function(_two_pages, default_timeout=60).run()
    assert app.selectbox(key="predict_model").value == "bundled"
    app.selectbox(key="predict_model").set_value("bundled-fer_studio_c").run()
    app.multiselect(key="predict_ensemble").set_value(["bundled-fer_studio_distilled"]).run()
    app.session_state["page"] = "live"
    app.run()  # the Predict widgets are not drawn: Streamlit forgets their state
    assert not app.exception
    assert app.selectbox(key="live_model").value == "bundled-fer_studio_c"
    assert app.multiselect(key="live_ensemble").value == ["bundled-fer_studio_distilled"]
    assert app.markdown[-1].value.endswith("fer_studio_c.keras")
    app.selectbox(key="live_model").set_value("bundled").run()
    app.session_state["page"] = "predict"
    app.run()
    assert app.selectbox(key="predict_model").value == "bundled"
    # The chosen model leaves the ensemble menu; what is left of the shared ensemble stays.
    assert app.multiselect(key="predict_ensemble").value == ["bundled-fer_studio_distilled"]


def test_a_run_at_guessing_level_chosen_anywhere_gets_a_warning_in_the_sidebar(tmp_path, monkeypatch, tiny_model_path):
    # Walk s19: a 2-epoch run at 25% picked on Evaluation became Predict's and Video's model; only Evaluation warned.
    from streamlit.testing.v1 import AppTest

    from core import runs

    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "runs"))
    for run_id, accuracy in (("20260101-000000-fer_vgg-aaaa", 0.2545), ("20260101-000001-fer_vgg-bbbb", 0.61)):
        run_dir = tmp_path / "runs" / run_id
        run_dir.mkdir(parents=True)
        runs.write_json_atomic(run_dir / "config.json", {"config": {"model": "fer_vgg", "epochs": 2}, "resolved": {}})
        runs.write_status(run_dir, "finished")
        runs.write_metrics(run_dir, [{"epoch": 1, "loss": 1.8, "accuracy": 0.25, "val_accuracy": accuracy, "lr": 1e-3}])
        (run_dir / "best.keras").write_bytes(tiny_model_path.read_bytes())
    app = AppTest.from_function(_two_pages, default_timeout=60).run()
    assert not app.warning  # a bundled model
    app.selectbox(key="predict_model").set_value("20260101-000000-fer_vgg-aaaa").run()
    (warning,) = app.warning
    assert warning.value.startswith("This model is not yet usable. Best validation accuracy 25.45% is no better")
    app.selectbox(key="predict_model").set_value("20260101-000001-fer_vgg-bbbb").run()
    assert not app.exception and not app.warning


def test_an_ensemble_member_chosen_as_the_model_leaves_the_ensemble_with_a_note(tmp_path, monkeypatch):
    # Walk s19: fer_studio_c, averaged with the model on Predict, was chosen on Live; back on Predict it had left the
    # ensemble without a word.
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.inert_markdown import shown_text

    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "runs"))
    app = AppTest.from_function(_two_pages, default_timeout=60).run()
    app.multiselect(key="predict_ensemble").set_value(["bundled-fer_studio_c", "bundled-fer_studio_distilled"]).run()
    assert not app.caption or not any("left this list" in caption.value for caption in app.caption)
    app.session_state["page"] = "live"
    app.run()
    app.selectbox(key="live_model").set_value("bundled-fer_studio_c").run()
    assert app.multiselect(key="live_ensemble").value == ["bundled-fer_studio_distilled"]
    notes = [shown_text(caption.value) for caption in app.caption if "left this list" in caption.value]
    assert notes == ["fer_studio_c left this list: it is the model chosen above now (each model is counted once)."]
    app.session_state["page"] = "predict"
    app.run()
    assert not app.exception
    assert app.selectbox(key="predict_model").value == "bundled-fer_studio_c"
    assert app.multiselect(key="predict_ensemble").value == ["bundled-fer_studio_distilled"]
    assert any("left this list" in caption.value for caption in app.caption)  # still said on the next page
    app.selectbox(key="predict_model").set_value("bundled").run()
    assert not any("left this list" in caption.value for caption in app.caption)  # another model: the note goes
    # On one page: a member chosen above leaves the list there too.
    app.selectbox(key="predict_model").set_value("bundled-fer_studio_distilled").run()
    assert app.multiselect(key="predict_ensemble").value == []
    assert any(shown_text(caption.value).startswith("fer_studio_distilled left this list") for caption in app.caption)
