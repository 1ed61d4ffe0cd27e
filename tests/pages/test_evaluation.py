"""The Evaluation page, driven by AppTest over fake finished runs with a tiny oracle model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.inert_markdown import shown_text

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "evaluation.py")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("core.predict.default_model_path", lambda: None)


@pytest.fixture
def with_dataset(monkeypatch, oracle_dataset_factory):
    # Every 4th label disagrees with its face: the oracle model is 75% right.
    dataset = oracle_dataset_factory({"Training": 8, "PublicTest": 40, "PrivateTest": 20}, wrong_every=4)
    monkeypatch.setattr("dashboard.data_source.get_dataset", lambda: dataset)
    return dataset


def run_page(app: AppTest | None = None) -> AppTest:
    app = app or AppTest.from_file(PAGE, default_timeout=60)
    app.run()
    assert not app.exception, app.exception
    return app


def metric_values(app: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}


def test_finished_run_renders_every_section(fake_runs_dir, with_dataset):
    app = run_page()
    metrics = metric_values(app)
    assert list(metrics) == ["Accuracy", "Macro-F1", "Images"]
    assert metrics["Accuracy"] == "75.00%" and metrics["Images"] == "40" and 0 < float(metrics["Macro-F1"]) < 1
    headers = [header.value for header in app.subheader]
    assert headers == ["Confusion matrix", "Per-class accuracy", "Classification report", "ROC and precision-recall curves",
                       "Predictions"]
    assert len(app.get("plotly_chart")) == 2  # confusion heatmap, per-class bars
    report = app.table[0].value
    assert list(report["class"][:7]) == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert report["support"].iloc[-1] == "40" and report["class"].iloc[-2] == "macro avg (present classes)"
    assert all(len(value.split(".")[1]) == 3 for value in report["precision"])
    assert len(app.get("image")) == 4  # two scikit-plot figures, the cell images and the gallery
    assert not app.error
    # The confusion cell defaults to the most common mistake; its images are listed.
    assert any("predicted" in markdown.value and "images of true" in markdown.value for markdown in app.markdown)


def test_switching_split_tta_and_views_keeps_working(fake_runs_dir, with_dataset):
    app = run_page()
    app.selectbox(key="eval_split").set_value("PrivateTest")
    app.selectbox(key="eval_tta").set_value("flip")
    app.toggle(key="eval_cm_normalize").set_value(True)
    app.toggle(key="eval_gallery_errors").set_value(False)
    app.selectbox(key="eval_cm_true").set_value("happy")
    app = run_page(app)
    assert metric_values(app)["Images"] == "20"
    assert metric_values(app)["Accuracy"] == "75.00%"
    runs = sorted(fake_runs_dir.iterdir())
    cached = {path.name.split("-")[0] for run in runs for path in (run / "predictions").glob("*.npz")}
    assert "PrivateTest" in cached
    app.selectbox(key="eval_tta").set_value("crop10")
    app = run_page(app)
    assert not app.exception and metric_values(app)["Images"] == "20"
    assert any("tta-crop10" in path.name for run in runs for path in (run / "predictions").glob("*.npz"))


def test_broken_model_file_is_an_error_not_a_traceback(fake_runs_dir, with_dataset):
    for run in fake_runs_dir.iterdir():
        (run / "best.keras").write_bytes(b"this is not a keras file")
    app = run_page()
    assert app.error and "Cannot evaluate" in app.error[0].value
    # Every run's checkpoint is a best.keras: the message names the run too (probe s18).
    assert any(f"Cannot evaluate `{run.name}/best.keras`" in app.error[0].value for run in fake_runs_dir.iterdir())
    assert not app.metric


def test_no_model_explains_how_to_get_one(tmp_path, monkeypatch, with_dataset):
    monkeypatch.setenv("FER_STUDIO_RUNS", str(tmp_path / "no_runs"))
    app = run_page()
    assert "No model yet" in app.info[0].value


def test_no_dataset_shows_the_data_source_message(fake_runs_dir, monkeypatch):
    def no_dataset():
        import streamlit as st

        st.info("No FER2013 data yet.")

    monkeypatch.setattr("dashboard.data_source.get_dataset", no_dataset)
    app = run_page()
    assert [info.value for info in app.info] == ["No FER2013 data yet."]


def test_a_click_on_a_heatmap_cell_is_read_from_its_marker():
    from types import SimpleNamespace

    from dashboard.evaluation_widgets import clicked_cell, confusion_figure

    figure = confusion_figure(np.eye(7, dtype=int) * 3)
    assert [trace.type for trace in figure.data] == ["heatmap", "scatter"]  # heatmaps send no selection events
    event = SimpleNamespace(selection=SimpleNamespace(points=[{"x": "sad", "y": "happy", "curve_number": 1}]))
    assert clicked_cell(event) == (3, 4)  # (true happy, predicted sad)
    assert clicked_cell(SimpleNamespace(selection=SimpleNamespace(points=[]))) is None
    assert clicked_cell(None) is None
    # Walk s21: "1 images (1.8% of disgust)"; one noun per count.
    hover = figure.data[1].customdata
    assert list(hover[0]) == ["3 images", "100.0"] and list(hover[1]) == ["0 images", "0.0"]
    assert list(confusion_figure(np.eye(7, dtype=int)).data[1].customdata[0]) == ["1 image", "100.0"]


def test_a_cancelled_evaluation_waits_for_evaluate_again(fake_runs_dir, with_dataset):
    from dashboard.model_menu import model_menu

    model = next(iter(model_menu().values()))[1]  # the model the page opens with
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.session_state["eval_cancelled"] = f"{model}|PublicTest|none"  # what the Cancel button records
    app.run()
    assert not app.exception
    assert any("was cancelled" in info.value for info in app.info)
    assert not app.metric and not app.get("progress")  # nothing evaluated behind the user's back
    app.button(key="eval_again").click().run()
    assert not app.exception
    assert metric_values(app)["Accuracy"] == "75.00%"
    assert not app.get("progress") and not [b for b in app.button if b.label == "Cancel"]  # gone once done


def test_the_row_normalised_view_and_the_chosen_cell_are_kept_in_the_url(fake_runs_dir, with_dataset):
    # Walk s8: a reload or a shared link lost the row-normalised view and the clicked confusion-matrix cell.
    app = run_page()
    assert not {"normalised", "true", "predicted"} & set(app.query_params)  # the defaults stay out of the URL
    app.toggle(key="eval_cm_normalize").set_value(True)
    app.selectbox(key="eval_cm_true").set_value("happy")
    app.selectbox(key="eval_cm_predicted").set_value("surprise")
    app = run_page(app)
    assert (app.query_params["normalised"], app.query_params["true"], app.query_params["predicted"]) == (
        "True", "happy", "surprise")

    linked = AppTest.from_file(PAGE, default_timeout=60)
    linked.query_params.update({"normalised": "True", "true": "happy", "predicted": "surprise"})
    linked.run()  # not run_page(linked): an AppTest that has not run yet is falsy
    assert not linked.exception, linked.exception
    assert not linked.warning and not linked.error
    assert linked.toggle(key="eval_cm_normalize").value is True
    assert (linked.selectbox(key="eval_cm_true").value, linked.selectbox(key="eval_cm_predicted").value) == (
        "happy", "surprise")
    assert any("images of true **happy** predicted **surprise**" in markdown.value for markdown in linked.markdown)
    # Review s20: the chart marked the last clicked cell, not the one the select boxes chose and the gallery showed.
    assert _marked_cells(linked) == [3 * 7 + 5]  # happy -> surprise
    linked.selectbox(key="eval_cm_predicted").set_value("sad").run()
    assert _marked_cells(linked) == [3 * 7 + 4]


def _marked_cells(app) -> list[int]:
    """The cells the confusion chart draws selected (the scatter trace's selectedpoints)."""
    import json

    (chart,) = [chart for chart in app.get("plotly_chart") if "confusion" in chart.proto.id or "eval_cm" in chart.proto.id]
    figure = json.loads(chart.proto.spec)
    return [trace for trace in figure["data"] if trace["type"] == "scatter"][0]["selectedpoints"]


def test_a_link_with_an_unknown_class_shows_the_default_cell_with_a_note(fake_runs_dir, with_dataset):
    linked = AppTest.from_file(PAGE, default_timeout=60)
    linked.query_params.update({"true": "contempt"})
    linked.run()
    assert not linked.exception, linked.exception
    assert any("“contempt”" in shown_text(warning.value) for warning in linked.warning)
    assert linked.selectbox(key="eval_cm_true").value in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def scored_split():
    from core.evaluate import score_predictions

    generator = np.random.default_rng(0)
    labels = np.repeat(np.arange(7), 30)
    probabilities = generator.random((len(labels), 7)).astype("float32")
    probabilities[np.arange(len(labels)), labels] += generator.random(len(labels)) * 1.5
    return score_predictions("PublicTest", labels, probabilities / probabilities.sum(axis=1, keepdims=True))


def test_per_class_accuracy_labels_stay_clear_of_the_overall_line_at_any_width():
    # Walk s8: "overall 67.96%" sat on the "70%" bar label and the dashed line ran through "65%"; on a phone, unreadable.
    from dashboard.evaluation_widgets import per_class_accuracy_figure

    result = scored_split()
    figure = per_class_accuracy_figure(result)
    assert not figure.data[0].text  # no scores above the bars, where the overall line runs
    assert [tick.split("<br>")[1] for tick in figure.layout.xaxis.ticktext] == [
        f"<b>{value:.0%}</b>" for value in result.recall]  # each score under its class name
    (label,) = figure.layout.annotations
    assert f"overall {result.accuracy:.2%}" in label.text
    assert (label.yref, label.y, label.yanchor) == ("paper", 1, "bottom")  # in the top margin, above every bar
    assert figure.layout.margin.t >= 30


def test_roc_and_precision_recall_legends_are_big_enough_for_a_phone():
    # Walk s8: the legends, scaled with their image to a 390 px screen, were about 5 px high.
    import matplotlib.pyplot as plt

    from dashboard.evaluation_widgets import curve_figures

    figures = curve_figures(scored_split())
    try:
        for figure in figures:
            width_inches = figure.get_size_inches()[0]
            legend = figure.axes[0].get_legend()
            texts = [text.get_text() for text in legend.get_texts()]
            # Drawn about 360 px wide on a phone: points * (360 / width) / 72 pixels per letter.
            assert all(text.get_fontsize() * 360 / width_inches / 72 >= 11 for text in legend.get_texts())
            assert "angry AUC" in texts[0] or "angry AP" in texts[0]
            assert all("area =" not in text for text in texts)
            # Walk s10: "Avg. precision=0.7727" beside "micro-average AP 0.77" said the same twice.
            assert not [text for text in texts if text.startswith("Avg. precision")]
            assert sum(text.startswith("micro-average") for text in texts) == 1
    finally:
        for figure in figures:
            plt.close(figure)
