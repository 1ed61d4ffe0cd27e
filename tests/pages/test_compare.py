"""The Compare-runs page, driven by AppTest over fake run folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.inert_markdown import shown_text

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "compare.py")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def with_dataset(monkeypatch, oracle_dataset_factory):
    dataset = oracle_dataset_factory({"PublicTest": 21, "PrivateTest": 14}, wrong_every=3)
    monkeypatch.setattr("dashboard.data_source.get_dataset", lambda: dataset)
    return dataset


def run_page() -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.run()
    assert not app.exception, app.exception
    return app


def test_two_runs_are_tabled_plotted_and_their_confusion_matrices_shown(fake_runs_dir, with_dataset):
    first = sorted(fake_runs_dir.iterdir())[0]
    (first / "evaluation.json").write_text(json.dumps({"PrivateTest": {"accuracy": 0.6543, "macro_f1": 0.6, "n": 3589, "tta": True}}))
    app = run_page()
    table = app.dataframe[0].value
    runs_only = table[table["status"] != "bundled"]
    assert len(runs_only) == 2 and list(table["status"][:2]) != ["bundled"] * 2  # the runs first, then the bundled models
    assert set(runs_only["network"]) == {"mini_xception", "fer_vgg"}
    assert set(runs_only["epochs"]) == {"3/3"}
    row = table.set_index("model").loc[first.name]
    # A pre-ten-crop summary (tta True), next to the PublicTest single pass the page has just evaluated.
    assert row["recorded test accuracy"] == "PrivateTest 65.43% flip · PublicTest 66.67% single"
    assert row["best val accuracy"] == "55.00% (epoch 3)"
    assert "note" not in table.columns  # no row has a note: the column would only take room
    # Only the settings that differ: the model and the learning rate (both use Adam, batch 64, IDG).
    settings = app.table[0].value.set_index("setting")
    assert list(settings.index) == ["model", "learning rate"]
    assert settings.loc["learning rate", first.name] == "0.001"
    charts = app.get("plotly_chart")
    assert len(charts) == 3  # curves + two confusion matrices
    # Each matrix's accuracy says how it was measured, so it cannot be mistaken for the table's ten-crop figure.
    captions = [caption.value for caption in app.caption]
    assert sum("on PublicTest (single pass): accuracy 66.67%" in caption for caption in captions) == 2
    # Evaluating on the page records the test accuracy of both runs.
    assert all("PublicTest" in json.loads((run / "evaluation.json").read_text()) for run in fake_runs_dir.iterdir())


def test_choosing_no_runs_and_another_split(fake_runs_dir, with_dataset):
    app = run_page()
    app.multiselect(key="compare_runs").set_value([])
    app.selectbox(key="compare_split").set_value("PrivateTest")
    app.run()
    assert not app.exception
    assert any("Pick runs with at least one finished epoch" in caption.value for caption in app.caption)
    assert len(app.get("plotly_chart")) == 2


def test_with_no_runs_the_bundled_models_are_compared(tmp_path, monkeypatch, with_dataset):
    # Walk s10: Compare listed runs only, so a first-time user (no runs) had nothing to compare.
    from core.bundle import card_scores
    from core.predict import bundled_models
    from dashboard.compare_widgets import test_accuracy_text

    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "empty"))
    app = run_page()
    assert "No training runs yet" in app.info[0].value
    table = app.dataframe[0].value.set_index("model")
    bundled = bundled_models()
    assert list(table.index) == [f"{path.stem} (bundled)" for path in bundled]
    assert "status" not in table.columns  # every row is bundled, and its name says so
    default = bundled[0]
    # The card's held-out scores, every mode, and its validation accuracy with where it comes from.
    assert table.loc[f"{default.stem} (bundled)", "recorded test accuracy"] == test_accuracy_text(
        {"PublicTest": card_scores(default)})
    assert "PublicTest" in table.loc[f"{default.stem} (bundled)", "recorded test accuracy"]
    assert table.loc[f"{default.stem} (bundled)", "best val accuracy"] != "—"
    # The first two are chosen: their settings, their validation curves (no training curve on a card) and two
    # confusion matrices on the data.
    assert app.multiselect(key="compare_runs").value == [f"bundled-{path.stem}" for path in bundled[:2]]
    assert not app.table[0].value.empty
    charts = app.get("plotly_chart")
    assert len(charts) == 3
    assert sum("on PublicTest (single pass): accuracy" in caption.value for caption in app.caption) == 2
    assert any("validation accuracy only" in caption.value for caption in app.caption)


def test_nothing_to_compare_says_how_to_start(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "empty"))
    monkeypatch.setattr("core.predict.bundled_models", lambda: [])
    app = run_page()
    assert "No training runs yet" in app.info[0].value
    assert not app.dataframe


def test_the_runs_split_and_mode_are_in_the_url_and_a_link_restores_them(fake_runs_dir, with_dataset):
    first, second = sorted(path.name for path in fake_runs_dir.iterdir())
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.query_params.update({"runs": f"{second},gone-run", "split": "PrivateTest", "tta": "flip", "first": second,
                             "second": first})
    app.run()
    assert not app.exception
    assert app.multiselect(key="compare_runs").value == [second]
    assert any("“gone-run”" in shown_text(warning.value) for warning in app.warning)
    assert app.selectbox(key="compare_split").value == "PrivateTest" and app.selectbox(key="compare_tta").value == "flip"
    assert app.selectbox(key="compare_first").value == second
    assert any("on PrivateTest (flip TTA)" in caption.value for caption in app.caption)
    app.selectbox(key="compare_tta").set_value("none").run()
    assert "tta" not in app.query_params and app.query_params["split"] == "PrivateTest"


def test_a_one_class_model_is_called_out(fake_runs_dir, monkeypatch, oracle_dataset_factory):
    from core import runs

    dataset = oracle_dataset_factory({"PublicTest": 21}, wrong_every=3)
    dataset.images[:] = dataset.images[0]  # every face the same: the oracle predicts one class for all of them
    monkeypatch.setattr("dashboard.data_source.get_dataset", lambda: dataset)
    run = sorted(fake_runs_dir.iterdir())[0]
    runs.write_metrics(run, [{**row, "val_accuracy": 0.02} for row in runs.read_metrics(run)])
    app = run_page()
    table = app.dataframe[0].value.set_index("model")
    assert table.loc[run.name, "note"].startswith("at guessing level")
    assert len([w for w in app.warning if "for 100% of the images" in w.value]) == 2


def test_the_chosen_runs_ensemble_is_scored_next_to_its_members(fake_runs_dir, with_dataset, oracle_model_factory):
    from core.evaluate import evaluate_ensemble
    from core.labels import CLASS_NAMES
    from dashboard.training_widgets import format_accuracy

    first, second = sorted(fake_runs_dir.iterdir())
    oracle_model_factory(second / "best.keras", saved_names=CLASS_NAMES[1:] + CLASS_NAMES[:1])  # a wrong member
    app = run_page()
    [start] = [button for button in app.button if button.label.startswith("Score the ensemble of these 2 models")]
    start.click().run()
    assert not app.exception and not app.error
    table = app.dataframe[-1].value
    assert sorted(table["model"][:2]) == [first.name, second.name]  # in the menu's order, newest first
    assert table["model"].iloc[-1] == "ensemble of 2 (mean probability)"
    expected = evaluate_ensemble([first / "best.keras", second / "best.keras"], with_dataset, splits=["PublicTest"])
    assert table["accuracy"].iloc[-1] == format_accuracy(expected["PublicTest"].accuracy)
    assert any("against its best member" in caption.value for caption in app.caption)


def test_the_table_agrees_with_the_captions_and_measures_every_row_one_way(fake_runs_dir, with_dataset):
    # Walk s8 bug 3: "—" in the table while the captions below gave the accuracy, and flip next to ten-crop figures.
    first, second = sorted(fake_runs_dir.iterdir())
    (first / "evaluation.json").write_text(json.dumps({"PublicTest": {"accuracy": 0.7012, "n": 21, "tta": "crop10"}}))
    app = run_page()
    assert not app.error
    table = app.dataframe[0].value.set_index("model")
    captions = [shown_text(caption.value) for caption in app.caption if "on PublicTest (single pass): accuracy" in caption.value]
    assert len(captions) == 2
    for run in (first, second):
        [caption] = [caption for caption in captions if caption.startswith(f"{run.name} on ")]
        measured = table.loc[run.name, "PublicTest accuracy · single pass"]
        assert measured.endswith("%") and f"accuracy {measured}," in caption
    # Another mode: the column follows it; runs not evaluated that way say so instead of showing another mode's figure.
    for box in ("compare_first", "compare_second"):  # only the second run is evaluated with flip
        app.selectbox(key=box).set_value(second.name)
    app.selectbox(key="compare_tta").set_value("flip").run()
    assert not app.exception
    table = app.dataframe[0].value.set_index("model")
    assert "PublicTest accuracy · single pass" not in table.columns
    assert table.loc[second.name, "PublicTest accuracy · flip TTA"].endswith("%")
    assert table.loc[first.name, "PublicTest accuracy · flip TTA"] == "not measured on this data yet"


def test_the_confusion_matrices_show_the_chosen_models_and_follow_the_choice_until_picked_by_hand(
        fake_runs_dir, with_dataset):
    # Walk s12: with a run and a bundled model chosen, the matrices showed two other runs (the menu's first two).
    older, newer = sorted(path.name for path in fake_runs_dir.iterdir())  # the menu lists the newer first
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.query_params.update({"runs": f"{older},{newer}"})
    app.run()
    assert not app.exception
    assert (app.selectbox(key="compare_first").value, app.selectbox(key="compare_second").value) == (older, newer)
    assert "first" not in app.query_params  # the default stays out of the link
    app.multiselect(key="compare_runs").set_value([newer, older]).run()
    assert (app.selectbox(key="compare_first").value, app.selectbox(key="compare_second").value) == (newer, older)
    app.selectbox(key="compare_second").set_value(newer).run()  # picked by hand: it stays
    app.multiselect(key="compare_runs").set_value([older, newer]).run()
    assert not app.exception
    assert (app.selectbox(key="compare_first").value, app.selectbox(key="compare_second").value) == (older, newer)
    app.multiselect(key="compare_runs").set_value([newer]).run()
    assert app.selectbox(key="compare_second").value == newer


def test_scoring_the_ensemble_fills_the_table_for_members_outside_the_confusion_pair(fake_runs_dir, with_dataset):
    # Walk s12: a member evaluated only by the ensemble still read "—" in the table until a reload.
    import shutil

    from dashboard.compare_widgets import measured_column

    older, newer = sorted(fake_runs_dir.iterdir())
    third = fake_runs_dir / "20250103-120000-mini_xception-ab2d"
    shutil.copytree(older, third)
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.query_params.update({"runs": f"{older.name},{newer.name},{third.name}"})
    app.run()
    column = measured_column("PublicTest", "none")

    def measured(run) -> str:
        return app.dataframe[0].value.set_index("model").loc[run.name, column]

    assert measured(third) == "not measured on this data yet" and measured(older) != "not measured on this data yet"
    [start] = [button for button in app.button if button.label.startswith("Score the ensemble of these 3 models")]
    start.click().run()
    assert not app.exception and not app.error
    assert measured(third) == measured(older) != "not measured on this data yet"


def test_a_chosen_run_without_a_saved_model_is_named_where_it_cannot_take_part(fake_runs_dir, with_dataset):
    """Walk s15: two picks, one without best.keras; the ensemble said "pick two or more" and the table read "—"."""
    first, second = sorted(fake_runs_dir.iterdir())
    (first / "best.keras").unlink()
    app = run_page()
    assert not app.exception
    assert sorted(app.multiselect(key="compare_runs").value) == sorted([first.name, second.name])
    table = app.dataframe[0].value.set_index("model")
    assert table.loc[first.name, "PublicTest accuracy · single pass"] == "no saved model"
    [caption] = [shown_text(caption.value) for caption in app.caption if "score their ensemble" in caption.value]
    assert caption.endswith(f"No saved model (best.keras): {first.name}.")


def test_the_default_choice_of_runs_is_written_to_the_url(fake_runs_dir, with_dataset):
    # Review s20: the default (the newest runs) stayed out of the URL, so a link showed other runs once a new one
    # started; Training writes ?run= always for the same reason.
    app = AppTest.from_file(PAGE, default_timeout=60).run()
    assert not app.exception
    chosen = app.multiselect(key="compare_runs").value
    assert len(chosen) >= 2 and app.query_params["runs"] == ",".join(chosen)
