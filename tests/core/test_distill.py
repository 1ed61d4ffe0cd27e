"""Knowledge distillation (core.distill) and runs with teachers (core.train, the CLI)."""

import json
import shlex

import numpy as np
import pytest

from core import distill, runs
from core.labels import CLASS_NAMES, NUM_CLASSES
from core.train import prepare_run, run_training
from core.train_config import TrainConfig
from tests.core.test_train import tiny_config, train_csv, write_fer_csv  # noqa: F401 (fixture)

DATA_HASH = "d" * 64


def oracle_face(label: int, number: int = 0) -> np.ndarray:
    face = np.zeros((48, 48), np.uint8)
    face[label, 0] = face[label, 47] = 200
    face[47, 20 + number % 8] = 1 + number
    return face


def test_soften_keeps_rows_as_probabilities_and_flattens_with_temperature():
    p = np.array([[0.7, 0.2, 0.1, 0, 0, 0, 0], [0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.4]])
    assert np.allclose(distill.soften(p, 1.0), p, atol=1e-6)
    flat = distill.soften(p, 3.0)
    assert np.allclose(flat.sum(axis=1), 1, atol=1e-6)
    entropy = lambda q: -(q * np.log(np.clip(q, 1e-12, None))).sum(axis=1)  # noqa: E731
    assert (entropy(flat) > entropy(p)).all()
    assert (flat.argmax(axis=1) == p.argmax(axis=1)).all()
    sharp = distill.soften(p, 0.5)
    assert sharp[0, 0] > p[0, 0]


def test_blend_targets_mixes_label_and_teacher():
    labels = np.array([0, 3])
    teacher = np.zeros((2, NUM_CLASSES), np.float32)
    teacher[0, 2] = 1.0  # the teacher disagrees with the first label
    teacher[1, 3] = 1.0
    targets = distill.blend_targets(labels, teacher, 0.3)
    assert targets.dtype == np.float32 and np.allclose(targets.sum(axis=1), 1)
    assert targets[0, 0] == pytest.approx(0.7) and targets[0, 2] == pytest.approx(0.3)
    assert targets[1, 3] == pytest.approx(1.0)
    # weight 1: the labels are ignored
    assert distill.blend_targets(labels, teacher, 1.0)[0].argmax() == 2
    with pytest.raises(ValueError, match=r"\(2, 7\)"):
        distill.blend_targets(labels, teacher[:1], 0.5)


@pytest.mark.parametrize("teacher, student, clean, why", [
    ({"validation": "split", "seed": 4, "val_fraction": 0.1}, {"seed": 4}, True, "same validation slice"),
    ({"validation": "split", "seed": 0, "val_fraction": 0.1}, {"seed": 4}, False, "its seed 0, this run's 4"),
    ({"validation": "split", "seed": 4, "val_fraction": 0.2}, {"seed": 4}, False, "most of this run's validation"),
    ({"validation": "publictest", "seed": 4, "val_fraction": 0.1}, {"seed": 4}, False, "on PublicTest"),
    ({"validation": "split", "seed": 0, "val_fraction": 0.1}, {"seed": 0, "validation": "publictest"}, True, "validates on PublicTest"),
])
def test_validation_verdict_names_teachers_that_saw_the_validation_faces(teacher, student, clean, why):
    config = TrainConfig(data="fer.csv", **student)
    verdict = distill.validation_verdict({"config": teacher, "data_hash": DATA_HASH}, config, DATA_HASH)
    assert verdict[0] is clean and why in verdict[1]
    assert distill.validation_verdict({"config": teacher, "data_hash": "e" * 64}, TrainConfig(data="x", seed=4), DATA_HASH)[0] is False
    assert distill.validation_verdict(None, config, DATA_HASH) == (False, "its training data is unknown (no card)")


def model_meta_card(path):
    from core.model_io import read_model_meta

    return read_model_meta(path).get("card")


def test_teacher_training_reads_a_bundled_card_and_a_run_checkpoint(tmp_path, oracle_model_factory):
    from pathlib import Path

    bundled = Path(__file__).resolve().parents[2] / "models" / "fer_studio_c.keras"
    card = json.loads(bundled.with_suffix(".json").read_text())
    trained = distill.teacher_training(bundled)
    assert trained["config"]["seed"] == card["config"]["seed"]
    assert trained["data_hash"] == card["data"]["content_hash"]
    # fer_studio_fast was renamed from fer_studio_default with its card: the file still names the old card inside.
    fast = bundled.with_name("fer_studio_fast.keras")
    assert model_meta_card(fast) == "fer_studio_default.json"
    assert distill.teacher_training(fast)["config"]["seed"] == json.loads(fast.with_suffix(".json").read_text())["config"]["seed"]

    # A run's checkpoint carries its config; the data hash comes from its run folder.
    from core import model_io

    run = tmp_path / "run"
    run.mkdir()
    model = model_io.load_model(oracle_model_factory(tmp_path / "oracle.keras")).model
    model_io.save_model(model, run / "best.keras", CLASS_NAMES, {"config": {"seed": 7, "validation": "split", "val_fraction": 0.1}})
    (run / "config.json").write_text(json.dumps({"resolved": {"data_hash": DATA_HASH}}))
    trained = distill.teacher_training(run / "best.keras")
    assert trained == {"config": {"seed": 7, "validation": "split", "val_fraction": 0.1}, "data_hash": DATA_HASH}
    assert distill.validation_verdict(trained, TrainConfig(data="x", seed=7), DATA_HASH)[0] is True
    # A model saved outside the studio has no record of its data.
    assert distill.teacher_training(tmp_path / "oracle.keras") is None


def test_prepare_targets_reorders_the_teachers_classes_and_reuses_them_on_resume(tmp_path, oracle_model_factory, monkeypatch):
    reversed_names = tuple(reversed(CLASS_NAMES))
    teacher = oracle_model_factory(tmp_path / "reversed.keras", output_names=reversed_names)
    labels = np.array([0, 1, 3, 6, 5])
    faces = np.stack([oracle_face(label, i) for i, label in enumerate(labels)])
    config = TrainConfig(data="x", teachers=(str(teacher),), distill_weight=0.5, teacher_tta="flip").validate()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    lines = []
    targets, record = distill.prepare_targets(config, faces, labels, run_dir, DATA_HASH, lines.append)
    # The oracle is right on every face, once its reversed outputs are put in FER2013's order.
    assert (targets.argmax(axis=1) == labels).all() and targets.max(axis=1).min() > 0.99
    assert record["teacher_train_agreement"] == 1.0 and record["tta"] == "flip" and record["weight"] == 0.5
    assert record["validation_clean"] is False and "unknown" in record["teachers"][0]["why"]
    assert isinstance(record["teacher_seconds"], float) and record["teacher_seconds"] >= 0
    assert any("optimistic" in line for line in lines)
    assert (run_dir / distill.TARGETS_FILE).is_file()

    # A resume reads them back without loading the teachers ...
    import core.model_io

    monkeypatch.setattr(core.model_io, "load_model", lambda path: pytest.fail("teachers loaded again"))
    again, again_record = distill.prepare_targets(config, faces, labels, run_dir, DATA_HASH, lines.append)
    assert np.allclose(again, targets, atol=1e-3)
    assert again_record["teacher_seconds"] == record["teacher_seconds"]  # the time it took when it was computed
    monkeypatch.undo()
    # ... but not when the teacher file or the faces changed.
    other = oracle_model_factory(tmp_path / "plain.keras")
    changed = TrainConfig(data="x", teachers=(str(other),), distill_weight=1.0).validate()
    calls = []
    real = core.model_io.load_model
    monkeypatch.setattr(core.model_io, "load_model", lambda path: calls.append(path) or real(path))
    distill.prepare_targets(changed, faces, labels, run_dir, DATA_HASH, lines.append)
    distill.prepare_targets(changed, faces[:3], labels[:3], run_dir, DATA_HASH, lines.append)
    assert len(calls) == 2


def test_a_new_run_reads_the_predictions_of_a_teacher_an_earlier_run_made(tmp_path, oracle_model_factory, monkeypatch):
    import core.model_io

    first = oracle_model_factory(tmp_path / "first.keras", output_names=tuple(reversed(CLASS_NAMES)))
    second = oracle_model_factory(tmp_path / "second.keras")
    labels = np.array([0, 1, 3, 6, 5, 2])
    faces = np.stack([oracle_face(label, i) for i, label in enumerate(labels)])
    runs_root = tmp_path / "runs"

    def prepare(run_name, teachers, root=runs_root):
        run_dir = root / run_name
        run_dir.mkdir(parents=True)
        config = TrainConfig(data="x", teachers=tuple(map(str, teachers)), teacher_tta="crop10").validate()
        return distill.prepare_targets(config, faces, labels, run_dir, DATA_HASH, lines.append)

    lines, calls = [], []
    real = core.model_io.load_model
    monkeypatch.setattr(core.model_io, "load_model", lambda path: calls.append(path) or real(path))
    prepare("a", [first])
    assert calls == [str(first)] and len(list((runs_root / distill.TEACHER_CACHE).glob("*.npz"))) == 1
    # The next run with the first teacher and another (the first listed twice) predicts with the other only.
    calls.clear()
    targets, record = prepare("b", [first, second, first])
    assert calls == [str(second)] and record["teachers_reused"] == 1
    assert any("1 more read from .teacher_cache" in line for line in lines)
    # The same targets as a run that predicted both itself.
    fresh, fresh_record = prepare("c", [second, first], root=tmp_path / "elsewhere")
    assert fresh_record["teachers_reused"] == 0 and np.allclose(targets, fresh, atol=1e-3)
    # All cached: nothing loaded. A damaged cache entry is predicted again, never trusted.
    calls.clear()
    _, record = prepare("d", [second, first])
    assert calls == [] and record["teachers_reused"] == 2
    for entry in (runs_root / distill.TEACHER_CACHE).glob("*.npz"):
        entry.write_bytes(b"not an npz")
    again, record = prepare("e", [first, second])
    assert sorted(calls) == sorted([str(first), str(second)]) and record["teachers_reused"] == 0
    assert np.allclose(again, targets, atol=1e-3)


def test_a_teacher_with_other_classes_is_refused_naming_it(tmp_path, oracle_model_factory):
    from core import model_io

    names = ("angry", "happy", "sad")
    model = model_io.load_model(oracle_model_factory(tmp_path / "seven.keras")).model
    import keras

    three = keras.Model(model.input, keras.layers.Dense(3, activation="softmax")(model.output))
    path = model_io.save_model(three, tmp_path / "three.keras", class_names=names)
    config = TrainConfig(data="x", teachers=(str(path),)).validate()
    (tmp_path / "run").mkdir()
    with pytest.raises(ValueError, match="three.keras"):
        distill.prepare_targets(config, np.zeros((2, 48, 48), np.uint8), np.array([0, 1]), tmp_path / "run", None, print)


def test_a_teacher_of_another_input_size_is_refused_naming_it(tmp_path):
    import keras

    from core import model_io

    inputs = keras.Input((40, 40, 1))
    small = keras.Model(inputs, keras.layers.Dense(NUM_CLASSES, activation="softmax")(keras.layers.Flatten()(inputs)))
    path = model_io.save_model(small, tmp_path / "forty.keras", class_names=CLASS_NAMES)
    config = TrainConfig(data="x", teachers=(str(path),)).validate()
    (tmp_path / "run").mkdir()
    with pytest.raises(ValueError, match="forty.keras takes"):
        distill.prepare_targets(config, np.zeros((2, 48, 48), np.uint8), np.array([0, 1]), tmp_path / "run", None, print)


@pytest.mark.parametrize("overrides, message", [
    ({"teachers": ("no/such/model.keras",)}, "not a model file"),
    ({"distill_weight": 0.0}, "distill_weight"),
    ({"distill_weight": 1.5}, "distill_weight"),
    ({"distill_temperature": 0.0}, "distill_temperature"),
    ({"teacher_tta": "crop5"}, "teacher_tta"),
])
def test_invalid_distillation_settings_name_the_field(tmp_path, oracle_model_factory, overrides, message):
    teacher = oracle_model_factory(tmp_path / "t.keras")
    values = {"teachers": (str(teacher),), **overrides}
    with pytest.raises(ValueError, match=message):
        TrainConfig(data="x", **values).validate()
    # Without teachers the other settings are not used, and not checked.
    assert TrainConfig(data="x", distill_weight=0.0).validate()


def test_a_run_with_a_teacher_trains_on_its_targets_and_records_it(tmp_path, train_csv, oracle_model_factory):  # noqa: F811
    from core.__main__ import build_parser
    from core.commands.train import config_from_args
    from core.train import command_line

    teacher = oracle_model_factory(tmp_path / "teacher.keras")
    config = tiny_config(train_csv, epochs=1, teachers=(str(teacher),), distill_weight=0.7, teacher_tta="crop10")
    line = command_line(config)
    assert f"--teacher {teacher}" in line and "--distill-weight 0.7" in line and "--teacher-tta crop10" in line
    assert config_from_args(build_parser().parse_args(shlex.split(line)[3:])) == config
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert "--teacher" not in command_line(tiny_config(train_csv))

    run_dir = prepare_run(config, tmp_path / "runs")
    lines = []
    status = run_training(run_dir, echo=lines.append)
    assert status.state == "finished", status.message
    record = runs.read_config(run_dir)["resolved"]["distillation"]
    assert record["teachers"][0]["path"] == str(teacher) and len(record["teachers"][0]["sha256"]) == 64
    assert record["weight"] == 0.7 and record["tta"] == "crop10" and record["validation_clean"] is False
    assert any(line.startswith("teachers: predicting") for line in lines)
    assert (run_dir / distill.TARGETS_FILE).is_file()
    # The bundled card says what the model was distilled from, and whether its validation was clean.
    from core.bundle import bundle_run

    card = bundle_run(run_dir, str(train_csv), name="student", out_dir=tmp_path / "models")
    assert card["distillation"] == record
