"""The Training page's pure helpers: table rows, curves, default run, recipe defaults."""

from __future__ import annotations

import math
import time

import pytest

from core import runs
from core.models import get_spec
from core.train_config import TrainConfig
from dashboard import training_widgets as widgets

METRICS = [
    {"epoch": 1, "loss": 1.8, "accuracy": 0.25, "val_loss": 1.7, "val_accuracy": 0.30, "lr": 1e-3, "epoch_time": 60.0},
    {"epoch": 2, "loss": 1.5, "accuracy": 0.40, "val_loss": 1.4, "val_accuracy": 0.45, "lr": 1e-3, "epoch_time": 62.0},
    {"epoch": 3, "loss": 1.3, "accuracy": 0.50, "val_loss": 1.45, "val_accuracy": 0.44, "lr": 1e-3, "epoch_time": 61.0},
]


def make_run(runs_dir, name, state, metrics=(), epochs=10, message="", created=None):
    run_dir = runs_dir / name
    run_dir.mkdir(parents=True)
    config = TrainConfig(data="/data/fer2013", model="mini_xception", epochs=epochs)
    runs.write_json_atomic(run_dir / "config.json", {"config": config.to_dict()})
    runs.write_status(run_dir, state, message)
    if metrics:
        runs.write_metrics(run_dir, list(metrics))
    if created is not None:
        import os

        os.utime(run_dir / "config.json", (created, created))
    return run_dir


def test_runs_table_shows_epochs_best_accuracy_and_time(tmp_path):
    make_run(tmp_path, "run-a", "finished", METRICS, epochs=3)
    table = widgets.runs_table(runs.list_runs(tmp_path))
    row = table.iloc[0]
    assert row["run"] == "run-a" and row["model"] == "mini_xception" and row["status"] == "finished"
    assert row["epochs"] == "3/3"
    assert row["best val accuracy"] == "45.00% (epoch 2)"
    assert row["training time"] == "3m 03s"


def test_runs_table_of_a_run_without_epochs_has_no_best(tmp_path):
    make_run(tmp_path, "run-b", "queued")
    row = widgets.runs_table(runs.list_runs(tmp_path)).iloc[0]
    assert row["epochs"] == "0/10" and row["best val accuracy"] == "—" and row["training time"] == "—"
    assert widgets.runs_table([]).empty


def test_default_run_prefers_the_newest_active_run(tmp_path):
    now = time.time()
    make_run(tmp_path, "old-running", "running", created=now - 100)
    make_run(tmp_path, "new-finished", "finished", METRICS, created=now)
    summaries = runs.list_runs(tmp_path)
    # A "running" run without a pid is trusted as running (it may live on another host).
    assert widgets.default_run(summaries).run_id == "old-running"
    assert widgets.default_run([s for s in summaries if not s.status.active]).run_id == "new-finished"
    assert widgets.default_run([]) is None


def test_curves_have_train_and_validation_loss_and_accuracy_plus_the_running_epoch():
    progress = {"epoch": 4, "epochs": 10, "batch": 50, "batches": 100, "loss": 1.2, "accuracy": 0.55}
    figure = widgets.training_curves_figure(METRICS, progress)
    names = [trace.name for trace in figure.data]
    assert names.count("train") == 2 and names.count("validation") == 2
    running = [trace for trace in figure.data if trace.name == widgets.RUNNING_EPOCH]
    assert [trace.x[0] for trace in running] == [3.5, 3.5]
    validation_accuracy = [t for t in figure.data if t.name == "validation" and t.yaxis == "y2"]
    assert list(validation_accuracy[0].y) == [30.0, 45.0, 44.0]  # percent


def test_recipe_fills_the_form_defaults():
    defaults = widgets.recipe_defaults(get_spec("face_cnn"))
    assert defaults["optimizer"] == "sgd" and defaults["batch_size"] == 128 and defaults["learning_rate"] == 0.01
    assert defaults["label_smoothing"] == TrainConfig.label_smoothing


def test_format_duration():
    assert widgets.format_duration(None) == "—"
    assert widgets.format_duration(9.6) == "10s"
    assert widgets.format_duration(250) == "4m 10s"
    assert widgets.format_duration(3 * 3600 + 300) == "3h 05m"


def test_readable_log_drops_tensorflow_chatter_but_keeps_progress_and_errors():
    lines = [
        "I0000 00:00:1795443202.453579   27774 port.cc:153] oneDNN custom operations are on.",
        "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
        "E0000 00:00:1795443220.067446   27774 cuda_platform.cc:52] failed call to cuInit",
        "\t [[{{node PyFunc}}]]",  # the second line of TF's "End of sequence" notice
        "epoch 1/5  loss 6.3325  acc 0.2272",
        "failed: ValueError: no Training split",
    ]
    assert widgets.readable_log(lines) == lines[4:]


def test_error_messages_with_paths_are_shown_literally():
    assert widgets.escape_markdown("<root>/train/<class>/*.jpg") == r"\<root\>\/train\/\<class\>\/\*\.jpg"


def test_curves_show_the_learning_rate_and_can_run_against_training_time():
    metrics = [{"epoch": e, "loss": 1.0 / e, "accuracy": 0.2 * e, "val_loss": 1.1 / e, "val_accuracy": 0.2 * e,
                "lr": 1e-3 / e, "epoch_time": 60.0 * e} for e in (1, 2, 3)]
    figure = widgets.learning_rate_figure(metrics)
    assert list(figure.data[0].y) == [1e-3, 5e-4, 1e-3 / 3] and figure.layout.yaxis.type == "log"
    assert list(widgets.learning_rate_figure(metrics, x_axis="time").data[0].x) == [1.0, 3.0, 6.0]
    # A rate that falls by more than a decade keeps plotly's own range.
    assert widgets.learning_rate_figure([{**row, "lr": 1e-3 / 10 ** row["epoch"]} for row in metrics]).layout.yaxis.range is None
    # A constant rate gets half a decade on each side (plotly's own range labelled a dozen minor ticks on top
    # of each other).
    constant = widgets.learning_rate_figure([{**row, "lr": 2e-4} for row in metrics])
    low, high = constant.layout.yaxis.range
    assert low == pytest.approx(math.log10(2e-4) - 0.5) and high == pytest.approx(math.log10(2e-4) + 0.5)
    # ... and one tick, its value (walk s12: "1e-3, 9e-4, 8e-4, 7e-4" crowded into each other); a rate that
    # changes within a decade gets its lowest and highest values.
    assert list(constant.layout.yaxis.tickvals) == [2e-4]
    assert list(figure.layout.yaxis.tickvals) == [1e-3 / 3, 1e-3]
    # Walk s21: a cosine run's first epochs (1e-3 to 9.755e-4) printed both labels one on the other, and a run
    # that fell past a decade had a label on every 2-9 multiple: one label then, and one per decade.
    barely = widgets.learning_rate_figure([{**row, "lr": 1e-3 - 1.2e-5 * row["epoch"]} for row in metrics])
    assert list(barely.layout.yaxis.tickvals) == [pytest.approx(1e-3 - 1.2e-5)]
    falling = widgets.learning_rate_figure([{**row, "lr": 1e-3 / 8 ** row["epoch"]} for row in metrics])
    assert falling.layout.yaxis.dtick == 1 and falling.layout.yaxis.tickvals is None
    assert [annotation.text for annotation in figure.layout.annotations] == ["Learning rate"]  # like Loss, Accuracy
    by_time = widgets.training_curves_figure(metrics, x_axis="time")
    assert list(by_time.data[0].x) == [1.0, 3.0, 6.0]  # minutes of training at the end of each epoch
    assert by_time.layout.xaxis.title.text == "training time (min)"


def test_run_menu_labels_name_the_model_once(tmp_path):
    """The tool's run ids already hold the model; repeating it cut the accuracy off the menu on a phone."""
    make_run(tmp_path, "20261206-070756-mini_xception-f1e7", "finished", METRICS, epochs=3)
    make_run(tmp_path, "my-run", "finished", METRICS, epochs=3)
    labels = {summary.run_id: widgets.describe_run(summary) for summary in runs.list_runs(tmp_path)}
    tool_id = "20261206-070756-mini_xception-f1e7"
    assert labels[tool_id] == f"{tool_id} · finished · best 45.00%"
    assert labels["my-run"] == "my-run · mini_xception · finished · best 45.00%"


def test_the_learning_rate_chart_lines_up_with_the_curves_beside_it():
    metrics = [{"epoch": e, "loss": 1.0 / e, "accuracy": 0.2 * e, "val_loss": 1.1 / e, "val_accuracy": 0.2 * e,
                "lr": 1e-3 / e, "epoch_time": 60.0 * e} for e in (1, 2, 3)]
    curves, rate = widgets.training_curves_figure(metrics), widgets.learning_rate_figure(metrics)
    assert curves.layout.height == rate.layout.height
    assert (curves.layout.margin.t, curves.layout.margin.b) == (rate.layout.margin.t, rate.layout.margin.b)
    # The legend sits in the top margin (container coordinates), not under the panels, where plotly made room
    # for it by shrinking the curves' plot area only (walk s15: 23 px lower than the learning rate's).
    legend = curves.layout.legend
    assert legend.yref == "container" and legend.y == 1 and legend.yanchor == "top"


def test_the_eta_counts_down_while_no_progress_is_written():
    # Walk s19: during validation progress.json is not rewritten, and the bar stood at "ETA 9s" for 20 s.
    from dashboard.training_widgets import remaining_text

    assert remaining_text({"eta_s": 95.0, "updated": 1000.0}, now=1000.0) == "1m 35s"
    assert remaining_text({"eta_s": 95.0, "updated": 1000.0}, now=1020.0) == "1m 15s"
    assert remaining_text({"eta_s": 9.0, "updated": 1000.0}, now=1020.0) == "any moment (past the estimate)"
    assert remaining_text({"eta_s": None, "updated": 1000.0}, now=1020.0) == "—"


def _progress_script(progress: dict) -> None:
    from dashboard.training_widgets import run_progress_ui

    run_progress_ui(progress)


def test_a_run_with_a_time_budget_is_measured_against_its_budget_not_its_epoch_bound(tmp_path):
    # Review s20: "Epoch 12/1000 · ETA 52m", the bar 1% full, 37% into an 85-minute budget; the table said 11/1000.
    from streamlit.testing.v1 import AppTest

    run_dir = tmp_path / "budget"
    run_dir.mkdir()
    config = TrainConfig(data="/data/fer2013", model="fer_vgg", epochs=1000, time_budget_min=85.0)
    runs.write_json_atomic(run_dir / "config.json", {"config": config.to_dict()})
    runs.write_status(run_dir, "running")
    runs.write_metrics(run_dir, METRICS)
    assert widgets.runs_table(runs.list_runs(tmp_path)).iloc[0]["epochs"] == "3 (85-minute budget)"

    def bars(progress):
        app = AppTest.from_function(_progress_script, args=(progress,), default_timeout=30).run()
        assert not app.exception
        return [(bar.value, bar.proto.text) for bar in app.get("progress")]

    progress = {"epoch": 12, "epochs": 1000, "batch": 68, "batches": 404, "eta_s": 3175.0, "updated": time.time(),
                "budget_s": 5100.0, "trained_s": 1899.0}
    (overall, text), _ = bars(progress)
    assert overall == 37  # percent: 1,899 of 5,100 s
    assert text.startswith("Epoch 12 · 31m 39s of the 85-minute budget (at most 1000 epochs) · ETA 52m")
    (overall, text), _ = bars({**progress, "budget_s": None, "trained_s": None, "epochs": 40})
    assert overall == 27 and text.startswith("Epoch 12/40 · ETA")  # no budget: as before (11.2 of 40 epochs)
