"""The Training page, driven by AppTest over fake run folders (no real training)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from tests.dashboard.inert_markdown import shown_text

from core import runs
from core.dataset import FerDataset, LoadReport
from core.train_config import TrainConfig

PAGE = str(Path(__file__).resolve().parents[2] / "pages" / "training.py")
METRICS = [
    {"epoch": 1, "loss": 1.8, "accuracy": 0.25, "val_loss": 1.7, "val_accuracy": 0.30, "lr": 1e-3, "epoch_time": 60.0},
    {"epoch": 2, "loss": 1.5, "accuracy": 0.40, "val_loss": 1.4, "val_accuracy": 0.45, "lr": 1e-3, "epoch_time": 62.0},
]


def make_run(runs_dir: Path, name: str, state: str, metrics=(), message: str = "", pid=None, created=None) -> Path:
    run_dir = runs_dir / name
    run_dir.mkdir(parents=True)
    config = TrainConfig(data="/data/fer2013", model="mini_xception", epochs=5)
    runs.write_json_atomic(run_dir / "config.json", {"config": config.to_dict()})
    runs.write_status(run_dir, state, message, pid=pid)
    if metrics:
        runs.write_metrics(run_dir, list(metrics))
    if created is not None:
        os.utime(run_dir / "config.json", (created, created))
    return run_dir


def tiny_dataset() -> FerDataset:
    rng = np.random.default_rng(0)
    return FerDataset(
        images=rng.integers(0, 256, (28, 48, 48), dtype=np.uint8),
        labels=np.arange(28, dtype=np.int64) % 7,
        splits=np.array(["Training"] * 28),
        ids=np.array([f"Training_{i}.jpg" for i in range(28)]),
        report=LoadReport(source="/data/fer2013", kind="image-folders", loaded=28),
    )


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    folder = tmp_path / "runs"
    folder.mkdir()
    monkeypatch.setenv("FER_STUDIO_RUNS", str(folder))
    return folder


@pytest.fixture
def with_dataset(monkeypatch):
    monkeypatch.setattr("dashboard.data_source.get_dataset", tiny_dataset)
    # The real preview imports Keras (tens of seconds on a busy CPU); it has its own tests.
    monkeypatch.setattr("dashboard.augment_preview.render_augment_preview",
                        lambda face, config, n=16, seed=0: __import__("streamlit").caption("augmentation preview"))


@pytest.fixture
def without_dataset(monkeypatch):
    def no_dataset():
        import streamlit as st

        st.info("No FER2013 data yet.")
        return None

    monkeypatch.setattr("dashboard.data_source.get_dataset", no_dataset)


def run_page(open_form: bool | None = None) -> AppTest:
    app = AppTest.from_file(PAGE, default_timeout=60)
    if open_form is not None:
        app.session_state["train_new_run"] = open_form
    app.run()
    assert not app.exception, app.exception
    return app


def record_starts(monkeypatch) -> list[TrainConfig]:
    """Replace the job launcher: each config Start launches is recorded and its run folder prepared (nothing trains)."""
    from core.train import prepare_run

    started: list[TrainConfig] = []

    def start(config, runs_dir=None, data_roots=None):
        started.append(config)
        return prepare_run(config)

    monkeypatch.setattr("core.jobs.start_training_job", start)
    return started


def run_menu(app: AppTest):
    """The "Run" select box (its key changes with its labels, so it is found by its label)."""
    [menu] = [box for box in app.selectbox if box.label == "Run"]
    return menu


def plotly_charts(app: AppTest) -> list:
    return [element for element in app.main.get("plotly_chart")]


def test_finished_run_shows_its_curves_and_the_runs_table(runs_dir, with_dataset):
    make_run(runs_dir, "20250101-000000-mini_xception-aaaa", "finished", METRICS, message="2 epochs")
    app = run_page()
    assert len(plotly_charts(app)) == 2  # loss and accuracy, and the learning rate beside them
    assert run_menu(app).value == "20250101-000000-mini_xception-aaaa"
    table = app.dataframe[0].value
    assert table.loc[0, "best val accuracy"] == "45.00% (epoch 2)" and table.loc[0, "epochs"] == "2/5"


def test_a_damaged_metrics_file_draws_the_checkpoints_copy_and_says_so(runs_dir, with_dataset):
    # Probe s11: "finished · 2 epochs" above "No finished epoch yet", the intact copy unused, the file not named.
    run_dir = make_run(runs_dir, "20250101-000000-mini_xception-dddd", "finished", METRICS, message="2 epochs")
    folder = runs.checkpoint_folder(run_dir, 2)
    folder.mkdir(parents=True)
    (folder / "last.keras").write_bytes(b"")
    runs.write_json_atomic(folder / "state.json", {"epoch": 2})
    runs.write_metrics(folder, METRICS)
    runs.write_json_atomic(run_dir / "checkpoint.json", {"epoch": 2, "folder": folder.relative_to(run_dir).as_posix()})
    (run_dir / "metrics.csv").unlink()
    (run_dir / "metrics.csv").write_bytes(b"epoch,loss\nfoo,bar\n\x00\x01,,,\n")
    app = run_page()
    assert len(plotly_charts(app)) == 2
    assert any("dddd/metrics.csv is missing or cannot be read: these curves come from the copy" in shown_text(caption.value)
               for caption in app.caption)
    assert not any("No finished epoch yet" in caption.value for caption in app.caption)
    runs.write_metrics(folder, [])  # no copy either: a warning instead of "no finished epoch"
    (folder / "metrics.csv").write_text("damaged")
    app = run_page()
    assert any("2 committed epochs" in shown_text(w.value) and "dddd/metrics.csv" in shown_text(w.value) for w in app.warning)
    assert not any("No finished epoch yet" in caption.value for caption in app.caption)


def test_a_run_whose_files_were_changed_by_hand_says_what_was_left_out(runs_dir, with_dataset):
    # Walk s18: a metrics.csv row with an impossible accuracy vanished without a word; a truncated config.json
    # left the run as model "?" with no reason.
    run_dir = make_run(runs_dir, "20250101-000000-mini_xception-eeee", "finished", METRICS, message="2 epochs")
    with open(run_dir / "metrics.csv", "a") as metrics:
        metrics.write("3,1.2,0.5,1.3,0.5,0.001,61\nthree,1,1,1,1,1,1\n")
    app = run_page()
    [warning] = app.warning
    text = shown_text(warning.value)
    assert "eeee's files cannot be used as they are" in text
    assert "metrics.csv: line 5 left out: its epoch is 'three', not a number" in text
    assert len(plotly_charts(app)) == 2  # the rows that can be read are still drawn
    (run_dir / "config.json").write_text('{"config": {"model": "mini_xc')
    app = run_page()
    [warning] = app.warning
    assert "config.json cannot be read (not valid JSON: " in shown_text(warning.value)
    runs.write_json_atomic(run_dir / "config.json", {"config": TrainConfig(data="/d", model="mini_xception").to_dict()})
    runs.write_metrics(run_dir, METRICS)
    assert not run_page().warning


def test_failed_run_shows_its_message(runs_dir, with_dataset):
    make_run(runs_dir, "20250101-000000-mini_xception-bbbb", "failed", message="ValueError: no Training split")
    app = run_page()
    assert any("no Training split" in error.value for error in app.error)


def test_the_newest_active_run_is_selected_and_shows_progress(runs_dir, with_dataset):
    now = time.time()
    make_run(runs_dir, "old-running", "running", METRICS, pid=os.getpid(), created=now - 60)
    make_run(runs_dir, "new-finished", "finished", METRICS, created=now)
    runs.write_json_atomic(runs_dir / "old-running" / "progress.json", {
        "epoch": 3, "epochs": 5, "batch": 10, "batches": 40, "loss": 1.3, "accuracy": 0.5,
        "epoch_elapsed_s": 5.0, "eta_s": 95.0, "updated": time.time()})
    app = run_page()
    assert run_menu(app).value == "old-running"
    texts = [bar.proto.text for bar in app.main.get("progress")]
    # The ETA counts down from when progress.json was written (1m 35s then).
    assert any("Epoch 3/5" in text and re.search(r"ETA 1m 3[0-5]s", text) for text in texts), texts
    assert any("Batch 10/40" in text for text in texts)
    stop = app.button(key="stop_old-running")
    stop.click().run()
    assert (runs_dir / "old-running" / "stop").exists()


def test_no_runs_shows_an_info_message(runs_dir, with_dataset):
    app = run_page()
    assert any("No training runs yet" in info.value for info in app.info)
    assert not any(str(runs_dir) in info.value for info in app.info)  # no server path for the user
    assert not plotly_charts(app)


def test_without_a_dataset_runs_still_show_and_the_form_is_hidden(runs_dir, without_dataset):
    make_run(runs_dir, "20250101-000000-mini_xception-cccc", "finished", METRICS)
    app = run_page(open_form=True)
    assert any("Load a dataset to start a run" in info.value for info in app.info)
    assert not [b for b in app.button if b.label == "Start training"]
    assert len(plotly_charts(app)) == 2  # loss and accuracy, and the learning rate beside them


def test_start_with_an_invalid_value_shows_an_error(runs_dir, with_dataset, monkeypatch):
    started = []
    monkeypatch.setattr("core.jobs.start_training_job", lambda config, runs_dir=None, data_roots=None: started.append(config))
    app = run_page()  # no runs yet: the form is open
    app.number_input(key="train_fer_vgg_max_images").set_value(5)
    [start] = [b for b in app.button if b.label == "Start training"]
    start.click().run()
    assert any("must be at least 14" in error.value for error in app.error)
    assert not started


def test_start_launches_the_job_with_the_form_values_and_selects_the_run(runs_dir, with_dataset, monkeypatch):
    def fake_start(config, runs_dir_arg=None, data_roots=None):
        from core.train import prepare_run

        fake_start.config, fake_start.data_roots = config, data_roots
        return prepare_run(config)

    monkeypatch.setattr("core.jobs.start_training_job", fake_start)
    app = run_page()  # no runs yet: the form is open
    app.selectbox(key="train_model").set_value("face_cnn").run()
    assert app.selectbox(key="train_face_cnn_optimizer").value == "sgd"  # the model's recipe
    app.number_input(key="train_face_cnn_epochs").set_value(3)
    [start] = [b for b in app.button if b.label == "Start training"]
    start.click().run()
    assert not app.error
    config = fake_start.config
    assert (config.model, config.epochs, config.optimizer, config.data) == ("face_cnn", 3, "sgd", "/data/fer2013")
    from core.data_roots import data_roots

    assert fake_start.data_roots == data_roots()  # the worker will load inside the same roots
    [run_dir] = list(runs_dir.iterdir())
    assert run_menu(app).value == run_dir.name
    assert not [b for b in app.button if b.label == "Start training"]  # the form folded away
    # Walk s19: opened again, every field was back at its default; they keep what was started.
    app.session_state["train_new_run"] = True
    app.run()
    assert app.selectbox(key="train_model").value == "face_cnn"
    assert app.number_input(key="train_face_cnn_epochs").value == 3


def test_with_runs_the_form_starts_folded_and_the_dataset_is_not_loaded(runs_dir, monkeypatch):
    def must_not_load():
        raise AssertionError("the dataset was loaded while the form is folded")

    monkeypatch.setattr("dashboard.data_source.get_dataset", must_not_load)
    make_run(runs_dir, "run-a", "finished", METRICS)
    app = run_page()
    assert not [b for b in app.button if b.label == "Start training"]
    assert len(plotly_charts(app)) == 2  # loss and accuracy, and the learning rate beside them


def test_the_chosen_run_stays_selected_when_a_new_run_appears(runs_dir, with_dataset):
    now = time.time()
    make_run(runs_dir, "run-a", "finished", METRICS, created=now - 100)
    make_run(runs_dir, "run-b", "finished", METRICS, created=now - 50)
    app = run_page()
    assert run_menu(app).value == "run-b"
    run_menu(app).set_value("run-a").run()
    make_run(runs_dir, "run-c", "finished", METRICS, created=now)
    app.run()
    assert run_menu(app).value == "run-a"


def test_progress_left_over_from_before_a_resume_is_not_shown(runs_dir, with_dataset):
    run_dir = runs_dir / "resumed"
    run_dir.mkdir()
    runs.write_json_atomic(run_dir / "progress.json", {"epoch": 1, "epochs": 5, "batch": 13, "batches": 24,
                                                        "updated": time.time() - 60})
    make_run(runs_dir, "resumed-run", "running", METRICS, pid=os.getpid())
    (run_dir / "progress.json").rename(runs_dir / "resumed-run" / "progress.json")
    app = run_page()
    assert any("Waiting for the first batch" in caption.value for caption in app.caption)
    assert not app.main.get("progress")


def test_a_stopped_run_with_a_checkpoint_can_be_resumed(runs_dir, with_dataset, monkeypatch):
    resumed = []
    monkeypatch.setattr("core.jobs.resume_training_job", resumed.append)
    run_dir = make_run(runs_dir, "stopped-run", "stopped", METRICS, message="stopped by request after epoch 2")
    (run_dir / "last.keras").write_bytes(b"")
    app = run_page()
    assert any("stopped by request" in caption.value for caption in app.caption)
    assert not [b for b in app.button if b.label == "Stop"]
    app.button(key="resume_stopped-run").click().run()
    assert resumed == [run_dir]


def test_the_url_holds_the_run_id_and_a_link_to_a_run_opens_it(runs_dir, with_dataset):
    now = time.time()
    make_run(runs_dir, "run-a", "finished", METRICS, created=now - 100)
    make_run(runs_dir, "run-b", "finished", METRICS, created=now - 50)
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.query_params["run"] = "run-a"  # a shared link to the older run
    app.run()
    assert not app.exception and not app.warning
    assert run_menu(app).value == "run-a"
    run_menu(app).set_value("run-b").run()
    assert app.query_params["run"] == "run-b"  # the id, not the menu's label


def test_a_link_to_an_unknown_run_says_so(runs_dir, with_dataset):
    make_run(runs_dir, "run-a", "finished", METRICS)
    app = AppTest.from_file(PAGE, default_timeout=60)
    app.query_params["run"] = "run-a · mini_xception · finished · best 45.0%"  # an old-style link holding the label
    app.run()
    assert not app.exception
    [warning] = app.warning
    assert "“run-a · mini_xception" in shown_text(warning.value) and "showing `run-a` instead" in warning.value
    assert run_menu(app).value == "run-a" and app.query_params["run"] == "run-a"



def test_a_run_at_guessing_level_gets_a_warning_and_a_good_one_does_not(runs_dir, with_dataset):
    collapsed = [{**row, "val_accuracy": 0.0244} for row in METRICS]
    now = time.time()
    make_run(runs_dir, "good-run", "finished", METRICS, created=now - 10)
    make_run(runs_dir, "one-class-run", "finished", collapsed, created=now)
    app = run_page()
    [warning] = app.warning
    assert "2.44% is no better than always answering the most common class" in warning.value
    run_menu(app).set_value("good-run").run()
    assert not app.warning
    table = app.dataframe[0].value
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()


def field_labels(app: AppTest) -> set[str]:
    return {widget.label for kind in ("number_input", "checkbox", "selectbox") for widget in app.get(kind)}


def test_fields_of_other_optimizers_and_schedules_appear_only_when_chosen(runs_dir, with_dataset):
    app = run_page()  # no runs: the form is open; fer_vgg's recipe is Adam with cosine decay
    labels = field_labels(app)
    assert "Max training images (0 = all)" in labels and "Early stopping patience (0 = off)" in labels
    assert not labels & {"Momentum", "Nesterov momentum", "Weight decay", "Plateau factor", "Plateau patience (epochs)"}
    assert any("Estimated duration: about" in markdown.value for markdown in app.markdown)
    # The bundled model's recipe, as `python -m core train --model fer_vgg` gets it
    assert (app.number_input(key="train_fer_vgg_epochs").value, app.number_input(key="train_fer_vgg_label_smoothing").value) == (40, 0.1)
    app.selectbox(key="train_fer_vgg_optimizer").set_value("sgd").run()
    app.selectbox(key="train_fer_vgg_lr_schedule").set_value("plateau").run()
    labels = field_labels(app)
    assert {"Momentum", "Nesterov momentum", "Weight decay", "Plateau factor", "Plateau patience (epochs)"} <= labels


def test_choosing_publictest_for_validation_says_what_it_costs(runs_dir, with_dataset):
    # Walk s10: the form said "PrivateTest is never used" on a copy without PrivateTest, and nothing when
    # PublicTest, whose scores the app presents as held out, was chosen to pick checkpoints.
    app = run_page()
    assert any("PublicTest, and PrivateTest where your copy" in caption.value for caption in app.caption)
    assert not [warning for warning in app.warning if "selection number" in warning.value]
    app.radio(key="train_fer_vgg_validation").set_value("publictest").run()
    assert [warning for warning in app.warning if "selection number, no longer a held-out one" in warning.value]


def test_the_estimate_follows_the_epochs(runs_dir, with_dataset):
    app = run_page()
    app.number_input(key="train_fer_vgg_epochs").set_value(2).run()
    [estimate] = [m.value for m in app.markdown if "Estimated duration" in m.value]
    # The tiny dataset's 28 Training images less the validation slice, at least one face of each class (walk s18:
    # the form said 2,871 validation images where the run took 2,872, rounding the slice per class as the run does).
    assert ": 21 training images at 214 images/s, then 7 validation images at" in estimate


def test_the_estimate_uses_runs_with_the_crop_and_precision_of_the_form(runs_dir, with_dataset):
    for name, crop, seconds in (("whole", 0, 100.0), ("cropped", 40, 50.0)):  # 10 and 20 images/s
        run_dir = runs_dir / name
        run_dir.mkdir()
        config = TrainConfig(data="/data/fer2013", model="fer_vgg", epochs=2, precision="float32",
                             model_params={"crop": crop} if crop else {})
        runs.write_json_atomic(run_dir / "config.json", {"config": config.to_dict(), "resolved": {
            "train_images": 1000, "precision": "float32"}})
        runs.write_metrics(run_dir, [{"epoch": e, "epoch_time": t, "val_accuracy": 0.3} for e, t in ((1, 500.0), (2, seconds))])
        runs.write_status(run_dir, "finished")
    app = run_page(open_form=True)  # runs exist, so the form starts folded
    app.selectbox(key="train_fer_vgg_precision").set_value("float32").run()

    def estimate() -> str:
        [text] = [m.value for m in app.markdown if "Estimated duration" in m.value]
        return text

    assert "at 10 images/s" in estimate() and "same settings (whole face, float32)" in estimate()
    app.number_input(key="train_fer_vgg_epochs").set_value(100).run()  # 21 images an epoch: 2.1 s, 3m 30s in all
    assert "about 3m 30s** for 100 epochs" in estimate()
    app.number_input(key="train_fer_vgg_time_budget").set_value(1.0).run()
    assert "about 59s** for about 28 of the 100 epochs, in the time budget" in estimate()
    app.number_input(key="train_fer_vgg_crop").set_value(40).run()
    assert "at 20 images/s" in estimate() and "same settings (centre crop 40, float32)" in estimate()
    app.selectbox(key="train_fer_vgg_precision").set_value("bfloat16").run()
    assert "other settings than these (centre crop 40, mixed_bfloat16)" in estimate()


def test_the_form_sets_the_plateau_metric_and_the_precision(runs_dir, with_dataset, monkeypatch):
    started = record_starts(monkeypatch)
    app = run_page()
    assert not [box for box in app.selectbox if box.label == "Plateau on"]  # only with the plateau schedule
    app.selectbox(key="train_fer_vgg_lr_schedule").set_value("plateau").run()
    app.selectbox(key="train_fer_vgg_plateau_metric").set_value("val_accuracy").run()
    assert app.selectbox(key="train_fer_vgg_precision").value == "auto"
    app.selectbox(key="train_fer_vgg_precision").set_value("float32").run()
    [start] = [b for b in app.button if b.label == "Start training"]
    start.click().run()
    assert not app.error and not app.exception
    [config] = started
    assert (config.lr_schedule, config.plateau_metric, config.precision) == ("plateau", "val_accuracy", "float32")


def test_the_form_sets_a_time_budget(runs_dir, with_dataset, monkeypatch):
    started = record_starts(monkeypatch)
    app = run_page()
    budget = app.number_input(key="train_fer_vgg_time_budget")
    assert budget.value == 0.0  # off unless asked for
    assert not [c for c in app.caption if c.value.startswith("Time budget")]
    budget.set_value(38.0).run()
    assert [c for c in app.caption if c.value.startswith("Time budget: training stops within 38 minutes")]
    [start] = [b for b in app.button if b.label == "Start training"]
    start.click().run()
    assert not app.error and not app.exception
    [config] = started
    assert config.time_budget_min == 38.0 and "--time-budget 38.0" in __import__("core.train").train.command_line(config)


def test_the_form_sets_a_centre_crop_for_models_that_take_one(runs_dir, with_dataset, monkeypatch):
    started = record_starts(monkeypatch)
    app = run_page()
    app.selectbox(key="train_model").set_value("mini_xception").run()
    assert "Centre crop, pixels (0 = whole face)" not in field_labels(app)
    app.selectbox(key="train_model").set_value("fer_vgg").run()
    crop = app.number_input(key="train_fer_vgg_crop")
    assert crop.value == 0  # the whole face unless asked for
    crop.set_value(40).run()
    [start] = [b for b in app.button if b.label == "Start training"]
    start.click().run()
    assert not app.error and not app.exception
    [config] = started
    assert config.model_params == {"crop": 40} and "--param crop=40" in __import__("core.train").train.command_line(config)


def test_a_crop_the_model_cannot_take_shows_an_error_and_starts_nothing(runs_dir, with_dataset, monkeypatch):
    started = []
    monkeypatch.setattr("core.jobs.start_training_job", lambda config, runs_dir=None, data_roots=None: started.append(config))
    app = run_page()
    app.number_input(key="train_fer_vgg_crop").set_value(4).run()
    [start] = [b for b in app.button if b.label == "Start training"]
    start.click().run()
    assert not started
    assert [e for e in app.error if "crop must be 0" in e.value]


def _with_bundled_model_data(monkeypatch, name: str):
    """The tiny dataset under the content hash of bundled model ``name``'s data; Start records its config.

    Returns the model's path, its card and the list the started configs go to.
    """
    import dataclasses
    import json

    from core.predict import bundled_models

    [path] = [path for path in bundled_models() if path.stem == name]
    card = json.loads(path.with_suffix(".json").read_text())
    dataset = tiny_dataset()
    dataset = dataclasses.replace(dataset, report=dataclasses.replace(dataset.report, content_hash=card["data"]["content_hash"]))
    monkeypatch.setattr("dashboard.data_source.get_dataset", lambda: dataset)
    monkeypatch.setattr("dashboard.augment_preview.render_augment_preview",
                        lambda face, config, n=16, seed=0: __import__("streamlit").caption("augmentation preview"))
    started = record_starts(monkeypatch)
    return path, card, started


def test_the_form_distils_from_chosen_teachers_and_warns_when_they_saw_the_validation_slice(runs_dir, monkeypatch):
    second, card, started = _with_bundled_model_data(monkeypatch, "fer_studio_c")
    app = run_page()
    assert "Teacher weight" not in field_labels(app)  # no teacher unless chosen
    teachers = app.multiselect(key="train_fer_vgg_teachers")
    teachers.set_value(["bundled-fer_studio_c"]).run()
    warnings = [shown_text(w.value) for w in app.warning if "optimistic" in w.value]
    assert warnings and "its seed 4, this run's 0" in warnings[0] and "Seed 4 holds out" in warnings[0]
    app.number_input(key="train_fer_vgg_seed").set_value(card["config"]["seed"]).run()
    assert not [w for w in app.warning if "optimistic" in w.value]  # the teacher held out this very slice
    app.number_input(key="train_fer_vgg_distill_weight").set_value(0.6).run()
    app.selectbox(key="train_fer_vgg_teacher_tta").set_value("crop10").run()
    [start] = [b for b in app.button if b.label == "Start training"]
    start.click().run()
    assert not app.error and not app.exception
    [config] = started
    assert config.teachers == (str(second),) and config.distill_weight == 0.6 and config.teacher_tta == "crop10"
    assert f"--teacher {second}" in __import__("core.train").train.command_line(config)


def test_the_form_starts_from_a_chosen_model_and_says_when_it_cannot(runs_dir, monkeypatch):
    distilled, card, started = _with_bundled_model_data(monkeypatch, "fer_studio_distilled")
    app = run_page()
    start_from = app.selectbox(key="train_fer_vgg_init_from")
    assert start_from.value is None and "Random initial weights" in start_from.options
    start_from.set_value("bundled-fer_studio_distilled").run()
    warnings = [shown_text(w.value) for w in app.warning if "optimistic" in w.value and "distilled" in w.value]
    assert warnings, ([w.value for w in app.warning], [e.value for e in app.error], [x.value for x in app.exception])
    assert "its seed 4, this run's 0" in warnings[0]
    app.number_input(key="train_fer_vgg_seed").set_value(card["config"]["seed"]).run()
    assert not [w for w in app.warning if "optimistic" in w.value]
    # A 40-pixel crop changes the dense layer's weights: the form says so at once, and Start starts nothing.
    app.number_input(key="train_fer_vgg_crop").set_value(40).run()
    [error] = [shown_text(e.value) for e in app.error if "Cannot start from" in e.value]
    assert "crop=0 there, 40 here" in error
    [start] = [b for b in app.button if b.label == "Start training"]
    start.click().run()
    assert not started and [e for e in app.error if e.value.startswith("Cannot start:") and "crop" in e.value]
    app.number_input(key="train_fer_vgg_crop").set_value(0).run()
    assert not [e for e in app.error if "Cannot start" in e.value]
    app.number_input(key="train_fer_vgg_learning_rate").set_value(0.0003).run()
    [start] = [b for b in app.button if b.label == "Start training"]
    start.click().run()
    assert not app.error and not app.exception
    [config] = started
    assert config.init_from == str(distilled) and config.learning_rate == 0.0003
    assert f"--init-from {distilled}" in __import__("core.train").train.command_line(config)


def test_the_form_grows_a_deeper_fer_vgg_from_a_chosen_model(runs_dir, monkeypatch):
    distilled, card, started = _with_bundled_model_data(monkeypatch, "fer_studio_distilled")
    app = run_page()
    convs = app.selectbox(key="train_fer_vgg_convs")
    assert convs.value == 2 and convs.options == ["1", "2", "3, 3, 3, 2", "3", "4"]
    app.selectbox(key="train_fer_vgg_init_from").set_value("bundled-fer_studio_distilled").run()
    convs.set_value([3, 3, 3, 2]).run()
    assert not [e for e in app.error if "Cannot start" in e.value]  # deeper than the start: it grows
    convs.set_value(1).run()
    [error] = [shown_text(e.value) for e in app.error if "Cannot start from" in e.value]
    assert "convs=2 there, 1 here" in error
    app.selectbox(key="train_fer_vgg_convs").set_value([3, 3, 3, 2]).run()
    [start] = [b for b in app.button if b.label == "Start training"]
    start.click().run()
    assert not app.error and not app.exception
    [config] = started
    assert config.init_from == str(distilled) and config.model_params["convs"] == [3, 3, 3, 2]
    assert "--param convs=[3, 3, 3, 2]" in __import__("core.train").train.command_line(config) or \
        "--param 'convs=[3, 3, 3, 2]'" in __import__("core.train").train.command_line(config)


def test_the_form_turns_weight_averaging_on(runs_dir, with_dataset, monkeypatch):
    started = record_starts(monkeypatch)
    app = run_page()
    averaging = app.checkbox(key="train_fer_vgg_averaging")
    assert averaging.value is False
    assert not [n for n in app.number_input if n.key == "train_fer_vgg_average_from"]  # only with averaging on
    averaging.check().run()
    share = app.number_input(key="train_fer_vgg_average_from")
    assert share.value == 0.5
    share.set_value(0.7).run()
    [start] = [b for b in app.button if b.label == "Start training"]
    start.click().run()
    assert not app.error and not app.exception
    [config] = started
    assert config.average_from == pytest.approx(0.7)
    assert "--average-from 0.7" in __import__("core.train").train.command_line(config)


def test_a_run_with_a_weight_averaged_model_says_how_it_scored(runs_dir, with_dataset):
    run_dir = make_run(runs_dir, "20260101-000000-averaged", "finished", METRICS, message="2 epochs")
    (run_dir / "averaged.keras").write_bytes(b"model")  # only its presence is read here
    runs.write_json_atomic(run_dir / "averaged.json", {"epochs": [2, 2], "count": 1, "val_accuracy": 0.4712,
                                                       "ready_after_seconds": 250.4})
    app = run_page()
    [caption] = [c for c in app.caption if c.value.startswith("Weight-averaged model")]
    assert "epochs 2-2" in caption.value and "47.12%" in caption.value and "45.00%" in caption.value
    assert "ready after 4m 10s of training" in caption.value
    assert app.dataframe[0].value.loc[0, "best val accuracy"] == "45.00% (epoch 2); averaged 47.12%"


def test_without_a_dataset_or_runs_the_page_does_not_say_start_one_above(runs_dir, without_dataset):
    # Walk s8 bug 4: "Load a dataset to start a run." then "Start one above, or ... --model mini_xception --epochs 30".
    app = run_page()
    [message] = [info.value for info in app.info if "No training runs yet" in info.value]
    assert "above" not in message and "Load a dataset" in message


def test_the_terminal_hint_names_the_forms_default_model_epochs_and_data(runs_dir, with_dataset):
    app = run_page()
    model = next(box for box in app.selectbox if box.label == "Model").value
    epochs = next(number for number in app.number_input if number.label == "Epochs").value
    [message] = [info.value for info in app.info if "No training runs yet" in info.value]
    assert "Start one above" in message
    assert f"python -m core train --data /path/to/fer2013 --model {model} --epochs {epochs}`" in message


def test_the_estimate_adds_the_fixed_start_measured_on_earlier_runs(runs_dir, with_dataset):
    # Browser walk s8: a tiny run was estimated at about 5 s and took about 30.
    run_dir = runs_dir / "earlier"
    run_dir.mkdir()
    config = TrainConfig(data="/data/fer2013", model="fer_vgg", epochs=3, precision="float32")
    runs.write_json_atomic(run_dir / "config.json", {"config": config.to_dict(), "resolved": {
        "train_images": 1000, "precision": "float32", "startup_seconds": 20.0}})
    runs.write_metrics(run_dir, [{"epoch": e, "epoch_time": t, "val_accuracy": 0.3} for e, t in ((1, 110.0), (2, 100.0), (3, 100.0))])
    runs.write_status(run_dir, "finished")
    app = run_page(open_form=True)
    app.selectbox(key="train_fer_vgg_precision").set_value("float32").run()
    app.number_input(key="train_fer_vgg_epochs").set_value(2).run()  # 21 images at 10 images/s: 2.1 s an epoch
    [text] = [m.value for m in app.markdown if "Estimated duration" in m.value]
    # 4.2 s of epochs + 20 s to start + 10 s more for the first epoch
    assert "about 34s** for 2 epochs" in text and "plus about 30s to start, load the data and build the model" in text
    assert "the median of 1 run here" in text


def test_the_estimate_says_when_the_machine_is_busy_now(runs_dir, with_dataset, monkeypatch):
    # Walk s19: on a machine loaded by other work the estimate read 5 hours for a default run, with no word of why.
    monkeypatch.setattr("os.getloadavg", lambda: (0.1, 0.1, 0.1))
    app = run_page()
    assert not any("busy now" in caption.value for caption in app.caption)
    monkeypatch.setattr("os.getloadavg", lambda: (7.5, 7.0, 6.0))
    app.run()
    assert not app.exception
    [note] = [caption.value for caption in app.caption if "busy now" in caption.value]
    assert "load average 7.5 on" in note


def test_start_waits_while_as_many_runs_train_as_the_machine_allows(runs_dir, with_dataset, monkeypatch):
    # Review s20: Start never counted the runs training; now the form says so before Start is pressed.
    import os

    from core import jobs

    monkeypatch.setenv(jobs.WORKERS_VARIABLE, "1")
    app = run_page(open_form=True)
    [start] = [b for b in app.button if b.label == "Start training"]
    assert start.disabled is False and not [info for info in app.info if "trains at once" in info.value]
    busy = runs_dir / "20260101-000000-fer_vgg-aaaa"
    busy.mkdir(parents=True)
    runs.write_json_atomic(busy / "config.json", {"config": {"model": "fer_vgg", "epochs": 2}, "resolved": {}})
    runs.write_status(busy, "running", pid=os.getpid())
    app = run_page(open_form=True)
    [start] = [b for b in app.button if b.label == "Start training"]
    assert start.disabled is True
    [note] = [info.value for info in app.info if "trains at once" in info.value]
    assert "1 run is training" in note and "20260101-000000-fer_vgg-aaaa" in note and "FER_STUDIO_TRAIN_WORKERS" in note
