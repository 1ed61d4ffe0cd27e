import os
import subprocess
import sys

import pytest

from core import runs


def test_metrics_round_trip_and_atomic_files(tmp_path):
    rows = [{"epoch": 1, "loss": 1.5, "accuracy": 0.3, "val_loss": 1.4, "val_accuracy": 0.35, "lr": 0.001, "epoch_time": 12.0}]
    runs.write_metrics(tmp_path, rows)
    assert runs.read_metrics(tmp_path) == rows
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.csv"]  # no temporary files left


def test_truncated_metrics_file_is_read_without_crashing(tmp_path):
    (tmp_path / "metrics.csv").write_text("epoch,loss,accuracy\n1,1.5,0.3\n2,1.")
    rows = runs.read_metrics(tmp_path)
    assert rows[0]["epoch"] == 1


@pytest.mark.parametrize("state", ["queued", "running"])
def test_active_status_with_dead_worker_reads_as_failed(tmp_path, state):
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    runs.write_status(tmp_path, state, pid=process.pid)
    status = runs.read_status(tmp_path)
    assert status.state == "failed"
    assert "Resume" in status.message


def test_missing_garbage_or_unknown_status_is_failed_and_says_which(tmp_path):
    assert (runs.read_status(tmp_path).state, runs.read_status(tmp_path).message) == ("failed", "status.json is missing")
    (tmp_path / "status.json").write_text("{not json")
    assert runs.read_status(tmp_path).state == "failed"
    assert "unreadable" in runs.read_status(tmp_path).message
    (tmp_path / "status.json").write_text('{"state": "paused", "pid": 1}')
    status = runs.read_status(tmp_path)
    assert status.state == "failed"
    assert "unknown state 'paused'" in status.message and "finished" in status.message, status.message


def test_list_runs_summarises_best_epoch(tmp_path):
    run_dir = runs.new_run_dir("fer_vgg", tmp_path)
    runs.write_json_atomic(run_dir / "config.json", {"config": {"model": "fer_vgg", "epochs": 3}})
    runs.write_status(run_dir, "finished")
    runs.write_metrics(run_dir, [
        {"epoch": 1, "val_accuracy": 0.4, "epoch_time": 10},
        {"epoch": 2, "val_accuracy": 0.5, "epoch_time": 11},
        {"epoch": 3, "val_accuracy": 0.45, "epoch_time": 12},
    ])
    (tmp_path / "not-a-run").mkdir()
    [summary] = runs.list_runs(tmp_path)
    assert (summary.model, summary.best_epoch, summary.best_val_accuracy) == ("fer_vgg", 2, 0.5)
    assert summary.epochs_done == 3 and summary.training_seconds == 33
    assert summary.status.state == "finished"


def test_a_resumed_run_keeps_its_creation_time_and_place_in_the_list(tmp_path):
    # Walk s21: every start and Resume rewrites config.json, and the list took its file time for the creation.
    older, newer = runs.new_run_dir("fer_vgg", tmp_path), runs.new_run_dir("fer_vgg", tmp_path)
    runs.write_json_atomic(older / "config.json", {"config": {"model": "fer_vgg"}, "created": 1_700_000_000.0})
    runs.write_json_atomic(newer / "config.json", {"config": {"model": "fer_vgg"}, "created": 1_700_000_600.0})
    runs.write_json_atomic(older / "config.json", {**runs.read_config(older), "resolved": {"command": "resumed"}})
    listed = runs.list_runs(tmp_path)
    assert [summary.path for summary in listed] == [newer, older]
    assert listed[1].created == 1_700_000_000.0
    legacy = runs.new_run_dir("fer_vgg", tmp_path / "legacy")  # no recorded time: the file's
    runs.write_json_atomic(legacy / "config.json", {"config": {"model": "fer_vgg"}})
    assert runs.list_runs(tmp_path / "legacy")[0].created == (legacy / "config.json").stat().st_mtime


@pytest.mark.parametrize(("exit_code", "expected"), [
    (-11, "crashed (SIGSEGV"),
    (-9, "was killed (SIGKILL"),
    (-15, "stopped from outside (SIGTERM)"),
    (3, "exited with code 3"),
])
def test_worker_exit_is_recorded_with_its_cause(tmp_path, exit_code, expected):
    (tmp_path / "last.keras").write_bytes(b"checkpoint")  # one epoch had finished (a run of the old format)
    runs.write_json_atomic(tmp_path / "state.json", {"epoch": 1, "best_val_accuracy": 0.3, "best_epoch": 1})
    runs.write_status(tmp_path, "running", pid=12345)
    runs.record_worker_exit(tmp_path, 12345, exit_code)
    status = runs.read_status(tmp_path)
    assert status.state == "failed"
    assert expected in status.message and "Resume" in status.message


@pytest.mark.parametrize("state", ["finished", "failed", "stopped"])
def test_worker_exit_keeps_what_the_worker_recorded(tmp_path, state):
    runs.write_status(tmp_path, state, "its own words", pid=12345)
    runs.record_worker_exit(tmp_path, 12345, -11)
    assert (runs.read_status(tmp_path).state, runs.read_status(tmp_path).message) == (state, "its own words")


def test_worker_exit_leaves_a_resumed_run_alone(tmp_path):
    # The old worker's reaper can run after Resume started a new worker: its
    # news must not overwrite the new worker's status (this race failed a test).
    runs.write_status(tmp_path, "queued", "resuming", pid=os.getpid())
    runs.record_worker_exit(tmp_path, 12345, -9)
    assert runs.read_status(tmp_path).state == "queued"


def test_the_exit_code_of_a_real_segfault_reads_as_a_crash(tmp_path):
    # Popen reports a process ended by a signal as minus the signal, as jobs' reaper thread sees it.
    process = subprocess.Popen([sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)"])
    runs.write_status(tmp_path, "running", pid=process.pid)
    runs.record_worker_exit(tmp_path, process.pid, process.wait())
    assert "crashed (SIGSEGV" in runs.read_status(tmp_path).message


def test_worker_exit_before_the_first_epoch_does_not_offer_resume(tmp_path):
    runs.write_status(tmp_path, "running", pid=12345)
    runs.record_worker_exit(tmp_path, 12345, -11)
    message = runs.read_status(tmp_path).message
    assert "crashed (SIGSEGV" in message and "nothing to resume: start a new run" in message
    assert "Resume continues" not in message


def test_run_files_changed_by_hand_read_as_what_is_left_of_them(tmp_path):
    # Security probe s9 finding 6: a non-UTF-8 metrics.csv or a config.json of [1, 2] raised in list_runs and
    # took down Training, Compare, Evaluation and Predict; val_accuracy 2.5 was listed as "best 250.00%".
    from core import runs as runs_module

    def run(name: str, config: str, metrics: bytes, status: str = '{"state": "finished"}') -> None:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "config.json").write_text(config)
        (folder / "metrics.csv").write_bytes(metrics)
        (folder / "status.json").write_text(status)

    good = '{"config": {"model": "fer_vgg", "epochs": 3}, "resolved": {}}'
    run("a-binary", good, b"\x00\xff garbage\n1,2\n")
    run("b-list", "[1, 2]", b"epoch,val_accuracy\n1,0.5\n")
    run("c-shapes", '{"config": [1], "resolved": {}}', b"")
    run("d-values", good, b"epoch,loss,accuracy,val_loss,val_accuracy,lr,epoch_time\n"
                          b"1,nan,inf,-inf,2.5,nan,-3\n2,1.2,0.4,1.3,0.45,0.001,12\nx,1,1,1,1,1,1\n0.5,1,0.1,1,0.1,1,1\n")
    run("e-status", good, b"epoch,val_accuracy\n1,0.5\n", '{"state": "finished", "pid": "x", "updated": "y", "message": 5}')
    summaries = {summary.run_id: summary for summary in runs_module.list_runs(tmp_path)}
    assert set(summaries) == {"a-binary", "b-list", "c-shapes", "d-values", "e-status"}
    assert summaries["a-binary"].epochs_done == 0 and summaries["a-binary"].model == "fer_vgg"
    assert summaries["b-list"].model == "?" and runs_module.read_config(tmp_path / "b-list") == {}
    assert runs_module.read_config(tmp_path / "c-shapes") == {}
    values = summaries["d-values"]
    assert values.epochs_done == 2 and values.best_val_accuracy == 0.45 and values.best_epoch == 2
    first, second = runs_module.read_metrics(tmp_path / "d-values")
    assert first == {"epoch": 1, "loss": pytest.approx(float("nan"), nan_ok=True), "val_loss": float("-inf")}
    assert second["lr"] == 0.001 and second["epoch_time"] == 12.0
    assert values.training_seconds == 12.0
    status = summaries["e-status"].status
    assert status.state == "finished" and status.pid is None and status.updated == 0.0 and status.message == "5"


def test_what_the_lenient_readers_left_out_of_a_run_is_named(tmp_path):
    # Walk s18: a hand-edited metrics.csv lost rows without a word (the run menu and the status line disagreed),
    # and a truncated config.json left a run with model "?" and no reason given.
    from core import runs as runs_module

    (tmp_path / "config.json").write_text('{"config": {"model": "fer_vgg", "epo')
    (tmp_path / "metrics.csv").write_text("epoch,loss,accuracy,val_accuracy,lr\n1,1.5,0.3,0.35,0.001\n"
                                          "two,1.4,0.4,0.4,0.001\n3,1.3,1.7,0.45,0.001\n,1.2,0.5,0.5,0.001\n"
                                          "5,1.1,0.5,0.5,-1\n")
    config_problem, metrics_problem = runs_module.run_file_problems(tmp_path)
    assert config_problem.startswith("config.json cannot be read (not valid JSON: ") and "cannot be resumed" in config_problem
    assert metrics_problem == ("metrics.csv: line 3 left out: its epoch is 'two', not a number; "
                               "line 4 (epoch 3): accuracy 1.7 is outside [0, 1], shown as unknown; "
                               "line 5 left out: it has no epoch number; "
                               "line 6 (epoch 5): lr -1 is outside the values training writes, shown as unknown")
    assert [row["epoch"] for row in runs_module.read_metrics(tmp_path)] == [1, 3, 5]  # what the problems describe
    assert runs_module.run_file_problems(tmp_path, limit=1)[1].endswith("not a number; and 3 more")

    (tmp_path / "metrics.csv").write_bytes(b"N\xcdP?,\x00\x1a\n}gj\x1a\xff\xfe,1\n")  # probe s22: bytes quoted
    assert runs_module.run_file_problems(tmp_path)[1] == ("metrics.csv: the file holds binary data, not the CSV a "
                                                          "run writes: no epoch of it is shown")
    assert runs_module.read_metrics(tmp_path) == []

    (tmp_path / "config.json").write_text('{"config": [1]}')
    assert runs_module.run_file_problems(tmp_path)[0].startswith("config.json is not what a run writes")
    # Probe s22: settings of the wrong kind inside "config" (a TypeError on Compare, no word on Training).
    (tmp_path / "config.json").write_text('{"config": {"model": "fer_vgg", "teachers": ["t.keras", 3], '
                                          '"teacher_tta": {"x": 1}, "epochs": true, "learning_rate": 1, '
                                          '"time_budget_min": null}, "resolved": {}}')
    assert runs_module.run_file_problems(tmp_path)[0] == (
        "config.json: epochs is true or false where a run writes a whole number; teachers holds something other "
        "than model file names; teacher_tta is an object where a run writes text (changed by hand?): the run "
        "cannot be resumed, and its settings are shown as they are, until they are put right")
    # A run as training writes it has nothing to report; a folder without the files neither.
    (tmp_path / "config.json").write_text('{"config": {"model": "fer_vgg"}, "resolved": {}}')
    runs_module.write_metrics(tmp_path, [{"epoch": 1, "loss": 1.0, "accuracy": 0.3, "val_accuracy": 0.3, "lr": 0.001}])
    assert runs_module.run_file_problems(tmp_path) == []
    assert runs_module.run_file_problems(tmp_path / "missing") == []


def test_relative_folder_variables_name_the_folder_under_the_servers_current_folder_for_workers_too(tmp_path,
                                                                                                    monkeypatch):
    """Workers start in the repository's folder: a relative FER_STUDIO_RUNS handed on as it is named another one."""
    from core.cache import default_cache_dir
    from core.runs import child_environment, default_runs_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FER_STUDIO_RUNS", "my-runs")
    monkeypatch.setenv("FER_STUDIO_CACHE", "my-cache")
    assert default_runs_dir() == tmp_path / "my-runs" and default_cache_dir() == tmp_path / "my-cache"
    environment = child_environment(EXTRA="1")
    assert environment["FER_STUDIO_RUNS"] == str(tmp_path / "my-runs")
    assert environment["FER_STUDIO_CACHE"] == str(tmp_path / "my-cache")
    assert environment["EXTRA"] == "1" and environment["PATH"] == os.environ["PATH"]
    monkeypatch.delenv("FER_STUDIO_CACHE")
    assert "FER_STUDIO_CACHE" not in child_environment()  # unset stays unset: the worker takes the default
