import json

import pytest

from core.__main__ import main
from core.bundle import bundle_run
from core.model_io import load_model
from core.train import prepare_run, run_training

from tests.core.test_train import tiny_config, write_fer_csv


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    data = write_fer_csv(folder / "fer2013.csv", per_class=6, usages=("Training", "PublicTest", "PrivateTest"))
    run_dir = prepare_run(tiny_config(data, average_from=0.5), folder / "runs")  # also averages epoch 2
    assert run_training(run_dir, echo=lambda line: None).state == "finished"
    return run_dir, data


def test_bundle_writes_model_and_card_with_held_out_scores(tmp_path, finished_run):
    run_dir, data = finished_run
    card = bundle_run(run_dir, str(data), name="tiny", out_dir=tmp_path)
    saved = json.loads((tmp_path / "tiny.json").read_text())
    assert saved == json.loads(json.dumps(card))
    assert card["command"].startswith("python -m core train --data ")
    assert card["class_names"][0] == "angry" and card["data"]["content_hash"]
    assert set(card["evaluation"]) == {f"{split}{suffix}" for split in ("PublicTest", "PrivateTest")
                                       for suffix in ("", " + flip TTA", " + ten-crop TTA")}
    assert card["evaluation"]["PublicTest"]["n"] == 42
    assert len(card["accuracy_vs_training_time"]) == 2
    assert "distillation" not in card  # trained on the labels alone
    assert card["checkpoint"]["kind"] == "best" and card["checkpoint"]["epoch"] == card["training"]["best_epoch"]
    loaded = load_model(tmp_path / "tiny.keras")
    assert loaded.class_names == tuple(card["class_names"])
    assert card["size_bytes"] < (run_dir / "last.keras").stat().st_size  # no optimizer state


def test_bundle_refuses_runs_that_selected_on_publictest(tmp_path, finished_run):
    run_dir, data = finished_run
    config = json.loads((run_dir / "config.json").read_text())
    config["config"]["validation"] = "publictest"
    (run_dir / "config.json").write_text(json.dumps(config))
    try:
        with pytest.raises(ValueError, match="PublicTest cannot be reported"):
            bundle_run(run_dir, str(data), name="tiny", out_dir=tmp_path)
        assert main(["bundle", "--run", str(tmp_path / "missing"), "--data", str(data)]) == 2
    finally:
        config["config"]["validation"] = "split"
        (run_dir / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("name", ["../../etc/evil", "sub/model", "..", ".hidden", "model.keras", "", "a" * 81])
def test_bundle_refuses_a_name_that_is_not_a_plain_file_stem(tmp_path, finished_run, name):
    # Before: --name ../../etc/evil wrote /etc/evil.keras and /etc/evil.json.
    run_dir, data = finished_run
    out = tmp_path / "models"
    with pytest.raises(ValueError, match="a bundle name is a plain file stem"):
        bundle_run(run_dir, str(data), name=name, out_dir=out)
    assert not out.exists() or not any(out.iterdir())


def test_bundle_reports_the_ensemble_with_another_model_through_the_cli(tmp_path, finished_run, tiny_model_path, capsys):
    run_dir, data = finished_run
    code = main(["bundle", "--run", str(run_dir), "--data", str(data), "--name", "second", "--out", str(tmp_path),
                 "--ensemble-with", str(tiny_model_path)])
    assert code == 0
    printed = json.loads(capsys.readouterr().out)
    card = json.loads((tmp_path / "second.json").read_text())
    assert card["ensemble"]["members"] == ["second.keras", "tiny.keras"] and printed["ensemble"] == card["ensemble"]
    assert set(card["ensemble"]["evaluation"]) == set(card["evaluation"])
    # The ensemble's numbers are its own: the untrained tiny model drags the average away from the run's.
    import numpy as np

    from core.data import load_fer2013
    from core.ensemble import load_models
    from core.model_io import predict_probabilities

    public = load_fer2013(str(data)).subset("PublicTest")
    averaged = predict_probabilities(load_models([tmp_path / "second.keras", tiny_model_path]), public.images)
    expected = float(np.mean(averaged.argmax(axis=1) == public.labels))
    assert card["ensemble"]["evaluation"]["PublicTest"]["accuracy"] == round(expected, 4)


def test_bundle_refuses_a_run_whose_config_cannot_be_read(tmp_path, finished_run):
    # Probe s11: config.json `[]` gave a card of nulls (architecture, config, data source) and exit 0.
    run_dir, data = finished_run
    saved = (run_dir / "config.json").read_text()
    try:
        (run_dir / "config.json").write_text("[]")
        with pytest.raises(ValueError, match="config.json is missing, unreadable or not a run's"):
            bundle_run(run_dir, str(data), name="nulls", out_dir=tmp_path)
        assert not (tmp_path / "nulls.json").exists()
    finally:
        (run_dir / "config.json").write_text(saved)


def test_bundle_reads_a_damaged_runs_history_from_its_checkpoint_and_never_writes_nan(tmp_path, finished_run):
    # Probe s18: with the top-level metrics.csv and state.json emptied (their checkpoint's copies intact), the card
    # said "epochs": 0 and "best_val_accuracy": NaN, which is not JSON (Node's JSON.parse fails on it), exit 0.
    import shutil

    def strict(text: str):
        return json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in a card"))

    source, data = finished_run
    run_dir = tmp_path / source.name
    shutil.copytree(source, run_dir)
    for name in ("metrics.csv", "state.json"):
        (run_dir / name).unlink()  # the top-level copies are links to the checkpoint's: replaced, not truncated
        (run_dir / name).write_text("")
    card = bundle_run(run_dir, str(data), name="damaged", out_dir=tmp_path / "out")
    saved = strict((tmp_path / "out" / "damaged.json").read_text())
    assert saved["training"]["epochs"] == 2 and len(saved["accuracy_vs_training_time"]) == 2
    assert saved["training"]["best_epoch"] in (1, 2) and 0 <= saved["training"]["best_val_accuracy"] <= 1
    assert card["checkpoint"]["val_accuracy"] == saved["training"]["best_val_accuracy"]
    shutil.rmtree(run_dir / "checkpoints")
    (run_dir / "checkpoint.json").unlink(missing_ok=True)
    with pytest.raises(ValueError, match="state.json is missing or damaged, and no checkpoint of the run says"):
        bundle_run(run_dir, str(data), name="nothing", out_dir=tmp_path / "out")
    assert not (tmp_path / "out" / "nothing.json").exists()


def test_bundle_never_replaces_a_model_unless_told_to(tmp_path, finished_run, capsys):
    # Probe s11: a bare `bundle --run R --data D` replaced the shipped default model, exit 0, not a word.
    run_dir, data = finished_run
    args = ["bundle", "--run", str(run_dir), "--data", str(data), "--name", "mine", "--out", str(tmp_path)]
    assert main(args) == 0
    (tmp_path / "mine.keras").write_bytes(b"the user's own model")
    capsys.readouterr()
    assert main(args) == 2
    message = capsys.readouterr().err
    assert "mine.keras exists" in message and "--overwrite" in message
    assert (tmp_path / "mine.keras").read_bytes() == b"the user's own model"
    assert main([*args, "--overwrite"]) == 0
    assert load_model(tmp_path / "mine.keras").class_names == load_model(run_dir / "best.keras").class_names


def test_a_bundle_that_fails_leaves_the_model_and_card_that_were_there(tmp_path, finished_run, capsys, monkeypatch):
    # Probe s19: with --overwrite, a typo in --ensemble-with (or a model over 10 MB) failed the bundle after the
    # run's model had replaced NAME.keras, under the old card that still described the replaced model.
    run_dir, data = finished_run
    (tmp_path / "mine.keras").write_bytes(b"the shipped model")
    (tmp_path / "mine.json").write_text('{"evaluation": "of the shipped model"}')
    args = ["bundle", "--run", str(run_dir), "--data", str(data), "--name", "mine", "--out", str(tmp_path), "--overwrite"]
    assert main([*args, "--ensemble-with", str(tmp_path / "other.keras.typo")]) == 2
    assert "no model file at" in capsys.readouterr().err
    import core.bundle

    monkeypatch.setattr(core.bundle, "MAX_BUNDLE_BYTES", 1000)
    assert main(args) == 2
    assert "over the 10 MB limit for a bundled model; nothing was written to" in capsys.readouterr().err
    assert (tmp_path / "mine.keras").read_bytes() == b"the shipped model"
    assert (tmp_path / "mine.json").read_text() == '{"evaluation": "of the shipped model"}'
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mine.json", "mine.keras"]  # no staging left
    monkeypatch.undo()
    assert main(args) == 0 and json.loads((tmp_path / "mine.json").read_text())["file"] == "mine.keras"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["mine.json", "mine.keras"]


def test_bundle_exports_the_weight_averaged_model_when_asked(tmp_path, finished_run, capsys):
    run_dir, data = finished_run
    assert main(["bundle", "--run", str(run_dir), "--data", str(data), "--name", "averaged", "--out", str(tmp_path),
                 "--checkpoint", "averaged", "--notes", "started from the earlier averaged.keras"]) == 0
    card = json.loads((tmp_path / "averaged.json").read_text())
    assert card["notes"] == "started from the earlier averaged.keras"
    record = json.loads((run_dir / "averaged.json").read_text())
    assert card["checkpoint"]["kind"] == "averaged" and card["checkpoint"]["epochs"] == record["epochs"] == [2, 2]
    assert card["checkpoint"]["val_accuracy"] == record["val_accuracy"]
    # Which faces the batch-norm statistics were measured on travels with the model.
    assert card["checkpoint"]["batch_norm_images"] == record["batch_norm_images"] > 0
    assert card["checkpoint"]["batch_norm_augmented"] == record["batch_norm_augmented"]
    assert f"recomputed on {record['batch_norm_images']} training faces" in card["checkpoint"]["rule"]
    exported = load_model(tmp_path / "averaged.keras").model.get_weights()
    for got, want in zip(exported, load_model(run_dir / "averaged.keras").model.get_weights()):
        assert (got == want).all()
    (run_dir / "averaged.keras").rename(run_dir / "kept.keras")
    try:
        with pytest.raises(FileNotFoundError, match="--average-from"):
            bundle_run(run_dir, str(data), name="none", out_dir=tmp_path, checkpoint="averaged")
    finally:
        (run_dir / "kept.keras").rename(run_dir / "averaged.keras")


def test_card_scores_reads_the_held_out_accuracy_by_mode_and_skips_what_it_cannot_read(tmp_path):
    from core.bundle import card_scores

    model = tmp_path / "m.keras"
    assert card_scores(model) == {}  # no card
    card = model.with_suffix(".json")
    card.write_text("{not json")
    assert card_scores(model) == {}
    card.write_text(json.dumps(["a", "list"]))
    assert card_scores(model) == {}
    card.write_text(json.dumps({"evaluation": {"PublicTest": {"accuracy": 0.6796},
                                               "PublicTest + flip TTA": {"accuracy": True},  # not a number
                                               "PublicTest + ten-crop TTA": {"accuracy": 68.6}}}))  # not a fraction
    assert card_scores(model) == {"none": 0.6796}
    card.write_text(json.dumps({"evaluation": {"PublicTest": {"accuracy": 0.6771},
                                               "PublicTest + ten-crop TTA": {"accuracy": 0.7024}}}))
    assert card_scores(model) == {"none": 0.6771, "crop10": 0.7024}
    assert card_scores(model, split="PrivateTest") == {}


def test_every_bundled_card_gives_its_three_scores():
    from core.bundle import MODELS_DIR, card_scores

    for model in sorted(MODELS_DIR.glob("*.keras")):
        assert set(card_scores(model)) == {"none", "flip", "crop10"}, model.name


def test_bundle_can_store_the_weights_in_float16_and_scores_the_file_that_ships(tmp_path, finished_run, capsys):
    run_dir, data = finished_run
    args = ["bundle", "--run", str(run_dir), "--data", str(data), "--out", str(tmp_path)]
    assert main([*args, "--name", "full"]) == 0
    capsys.readouterr()
    assert main([*args, "--name", "half", "--weights", "float16"]) == 0
    printed = json.loads(capsys.readouterr().out)
    full, half = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("full", "half"))
    assert "storage" not in full and printed["storage"] == half["storage"]
    storage = half["storage"]
    assert storage["weights"] == "float16" and storage["compared_faces"] == 84  # PublicTest and PrivateTest
    assert storage["float16_values"] > 0 and storage["float32_values"] > 0
    assert 0 < storage["max_probability_difference"] < 1e-3 and storage["same_top_class"] >= 0.95
    assert half["size_bytes"] == (tmp_path / "half.keras").stat().st_size < full["size_bytes"]
    assert set(half["evaluation"]) == set(full["evaluation"])
    loaded = load_model(tmp_path / "half.keras")
    assert all(weight.dtype == "float32" for weight in loaded.model.weights)
    with pytest.raises(ValueError, match="weights must be one of float32, float16"):
        bundle_run(run_dir, str(data), name="other", out_dir=tmp_path, weights="int8")


def test_bundle_into_a_folder_it_cannot_write_names_that_folder_before_scoring(tmp_path, finished_run, monkeypatch):
    """Review s21: a read-only --out gave "<out>/.mine-bundle-fer-tmp-xxxx: Read-only file system (... point
    FER_STUDIO_RUNS or FER_STUDIO_CACHE at another folder)", after the whole scoring."""
    import core.bundle as bundle_module

    run_dir, data = finished_run
    loaded = []

    def refuse(folder, label):
        raise OSError(30, "Read-only file system", str(folder / f".{label}-fer-tmp-abcdefgh"))

    monkeypatch.setattr(bundle_module, "temporary_folder", refuse)
    monkeypatch.setattr("core.data.load_fer2013", lambda *a, **k: loaded.append(1))
    with pytest.raises(ValueError) as refused:
        bundle_run(run_dir, str(data), name="mine", out_dir=tmp_path / "ro")
    assert str(refused.value) == f"cannot write to {tmp_path / 'ro'}: Read-only file system; choose another --out folder"
    assert loaded == []  # refused before the dataset was loaded
