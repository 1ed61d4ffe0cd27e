"""Small pieces of the Compare page's widgets that the page tests do not pin down."""

from __future__ import annotations

import json

from core.compare import ComparedModel
from core.evaluate import recorded_results
from dashboard.compare_widgets import compare_curves_figure, epochs_text, settings_table
from dashboard.compare_widgets import test_accuracy_text as accuracy_text


def test_the_recorded_accuracy_lists_every_mode_of_each_test_split(tmp_path):
    (tmp_path / "evaluation.json").write_text(json.dumps({
        "PublicTest": {"accuracy": 0.7035, "tta": "crop10", "modes": {
            "crop10": {"accuracy": 0.7035, "tta": "crop10"}, "none": {"accuracy": 0.6924, "tta": "none"}}},
        "Training": {"accuracy": 0.9, "tta": "none"},  # not a test split: not listed
        "PrivateTest": {"accuracy": 0.6601, "tta": True}}))
    assert accuracy_text(recorded_results(tmp_path)) == "PublicTest 69.24% single, 70.35% ten-crop · PrivateTest 66.01% flip"
    assert accuracy_text(recorded_results(tmp_path / "never-evaluated")) == "—"


def entry(**changes) -> ComparedModel:
    fields = dict(model_id="r", name="r", kind="run", architecture="fer_vgg", model_path=None, epochs_done=33,
                  epochs_planned=1000, best_val_accuracy=0.7, best_at="epoch 3", training_seconds=60.0, state="finished")
    return ComparedModel(**{**fields, **changes})


def test_a_time_budget_run_says_so_instead_of_its_upper_bound_of_epochs():
    assert epochs_text(entry(config={"time_budget_min": 80.0})) == "33 (80-minute budget)"
    assert epochs_text(entry(epochs_done=3, epochs_planned=40)) == "3/40"


def test_settings_name_teachers_by_file_and_show_only_what_differs():
    table = settings_table({
        "a": {"model": "fer_vgg", "teachers": ["models/fer_studio_c.keras", "models/fer_studio_distilled.keras"]},
        "b": {"model": "fer_vgg"}}).set_index("setting")
    assert list(table.index) == ["teachers"]
    assert table.loc["teachers", "a"] == "fer_studio_c.keras, fer_studio_distilled.keras"
    assert table.loc["teachers", "b"] == "—"


def test_model_parameters_name_the_default_another_model_changes():
    # Walk s21: "width 32, convs 3, 3, 3, 2" beside "width 32" hid fer_studio_c's two convolutions per stage.
    table = settings_table({
        "swa": {"model": "fer_vgg", "model_params": {"width": 32, "convs": [3, 3, 3, 2]}},
        "c": {"model": "fer_vgg", "model_params": {"width": 32}}}).set_index("setting")
    assert table.loc["model parameters", "swa"] == "width 32, convs 3, 3, 3, 2"
    assert table.loc["model parameters", "c"] == "width 32, convs 2"
    same = settings_table({"a": {"model": "fer_vgg", "model_params": {"width": 32}}, "b": {"model": "fer_vgg"}})
    assert same.empty  # the default, said or not, is no difference


def test_teacher_settings_of_a_run_without_teachers_read_as_none():
    # Walk s12: a run without teachers read "teachers' test-time augmentation: flip (2 views)" (the form's default).
    table = settings_table({
        "swa": {"model": "fer_vgg", "teachers": ["models/fer_studio_c.keras"], "teacher_tta": "crop10", "distill_weight": 0.5},
        "run": {"model": "fer_vgg", "teachers": [], "teacher_tta": "flip", "distill_weight": 0.5}}).set_index("setting")
    assert table.loc["teachers' test-time augmentation", "run"] == "—"
    assert table.loc["distillation weight", "run"] == "—" and table.loc["distillation weight", "swa"] == "0.5"
    assert table.loc["teachers' test-time augmentation", "swa"] != "—"


def test_a_card_curve_with_validation_accuracy_only_draws_no_empty_series():
    figure = compare_curves_figure({
        "run": [{"epoch": 1, "accuracy": 0.5, "val_accuracy": 0.4, "loss": 1.2, "val_loss": 1.4}],
        "fer_studio_swa (bundled)": [{"epoch": 1, "val_accuracy": 0.7}, {"epoch": 2, "val_accuracy": 0.71}]})
    names = [trace.name for trace in figure.data]
    assert names.count("fer_studio_swa (bundled) · validation") == 1
    assert not any(name.startswith("fer_studio_swa (bundled) · train") for name in names)
    assert len([name for name in names if name.startswith("run ·")]) == 4  # accuracy and loss, validation and train
    assert all(trace.showlegend for trace in figure.data if trace.name.startswith("fer_studio_swa"))


def test_with_bundled_models_only_there_is_no_empty_loss_panel():
    figure = compare_curves_figure({"fer_studio_c (bundled)": [{"epoch": 1, "val_accuracy": 0.7}]})
    assert [annotation.text for annotation in figure.layout.annotations] == ["Accuracy"]
    both = compare_curves_figure({"run": [{"epoch": 1, "val_accuracy": 0.4, "val_loss": 1.4}]})
    assert [annotation.text for annotation in both.layout.annotations] == ["Accuracy", "Loss"]


def test_a_starting_model_is_named_by_its_file_and_the_teachers_mode_in_words():
    table = settings_table({"a": {"init_from": "/home/me/models/start.keras", "teachers": ["t.keras"], "teacher_tta": "crop10"},
                            "b": {}}).set_index("setting")
    assert table.loc["started from", "a"] == "start.keras"
    assert table.loc["teachers' test-time augmentation", "a"] != "crop10"


def test_each_panel_steps_its_epoch_ticks_by_its_own_runs():
    """A 33-epoch card (accuracy only) beside a 3-epoch run: the loss panel spans 3 epochs and ticks each one."""
    run = [{"epoch": epoch, "accuracy": 0.5, "val_accuracy": 0.4, "loss": 1.2, "val_loss": 1.4} for epoch in (1, 2, 3)]
    card = [{"epoch": epoch, "val_accuracy": 0.7} for epoch in range(1, 34)]
    figure = compare_curves_figure({"run": run, "fer_studio_swa (bundled)": card})
    assert figure.layout.xaxis.dtick == 6  # accuracy: 1, 7, ..., 31
    assert figure.layout.xaxis2.dtick == 1  # loss: 1, 2, 3 (a shared step of 4 left the panel with one tick)


def test_a_model_that_started_from_and_learned_from_its_earlier_self_says_so():
    config = {"init_from": "/x/models/fer_studio_swa.keras", "teachers": ["/x/models/fer_studio_c.keras",
                                                                         "/x/models/fer_studio_swa.keras"]}
    table = settings_table({"fer_studio_swa (bundled)": config, "run": {}}).set_index("setting")
    assert table.loc["started from", "fer_studio_swa (bundled)"] == "fer_studio_swa.keras (earlier)"
    assert table.loc["teachers", "fer_studio_swa (bundled)"] == "fer_studio_c.keras, fer_studio_swa.keras (earlier)"


def test_settings_changed_by_hand_into_objects_are_shown_not_raised():
    # Probe s22: a hand-edited "teacher_tta": {"x": 1} raised TypeError (unhashable dict) on the Compare page.
    table = settings_table({
        "edited": {"model": "fer_vgg", "teachers": ["t.keras"], "teacher_tta": {"x": 1}},
        "run": {"model": "fer_vgg", "teachers": ["t.keras"], "teacher_tta": "crop10"}}).set_index("setting")
    assert table.loc["teachers' test-time augmentation", "edited"] == "x 1"
