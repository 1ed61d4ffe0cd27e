import json
import os

import numpy as np
import pytest

from core import evaluate, model_io
from core.labels import CLASS_NAMES


def test_scores_follow_the_confusion_matrix_and_keep_absent_classes():
    labels = np.array([0, 0, 3, 3, 3, 6])
    probabilities = np.eye(7, dtype=np.float32)[[0, 3, 3, 3, 6, 6]]
    result = evaluate.score_predictions("all", labels, probabilities)
    assert result.confusion.sum() == result.n == 6
    assert result.accuracy == pytest.approx(np.trace(result.confusion) / 6) == pytest.approx(4 / 6)
    assert result.confusion[0].tolist() == [1, 0, 0, 1, 0, 0, 0]  # row = true angry
    assert len(result.precision) == len(result.support) == 7
    assert result.support[CLASS_NAMES.index("disgust")] == 0
    assert result.per_class()["disgust"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # Macro-F1 is over the three classes present, not diluted by four absent ones.
    assert result.macro_f1 == pytest.approx(np.mean([result.f1[0], result.f1[3], result.f1[6]]))
    summary = result.to_dict()
    json.dumps(summary)
    assert "probabilities" not in summary and summary["confusion_matrix"][3] == [0, 0, 0, 2, 0, 0, 1]


def test_model_saved_with_another_class_order_is_evaluated_correctly(tmp_path, oracle_model_factory, oracle_dataset_factory):
    dataset = oracle_dataset_factory({"PublicTest": 40})
    reversed_names = tuple(reversed(CLASS_NAMES))
    right = oracle_model_factory(tmp_path / "reversed.keras", reversed_names)
    result = evaluate.evaluate_model(model_io.load_model(right), dataset)["PublicTest"]
    assert result.accuracy == 1.0
    assert np.array_equal(result.confusion, np.diag(result.support))
    # The same weights labelled in FER order are wrong: the names really are used.
    mislabeled = oracle_model_factory(tmp_path / "mislabeled.keras", reversed_names, saved_names=CLASS_NAMES)
    assert evaluate.evaluate_model(mislabeled, dataset)["PublicTest"].accuracy < 0.5


def test_public_and_private_test_are_reported_apart_and_training_skipped(tmp_path, oracle_model_factory, oracle_dataset_factory):
    dataset = oracle_dataset_factory({"Training": 10, "PublicTest": 12, "PrivateTest": 9})
    path = oracle_model_factory(tmp_path / "m.keras")
    results = evaluate.evaluate_model(path, dataset, use_cache=False)
    assert list(results) == ["PublicTest", "PrivateTest"]
    assert results["PublicTest"].n == 12 and results["PrivateTest"].n == 9
    assert list(results["PrivateTest"].ids) == list(dataset.subset("PrivateTest").ids)
    only_training = evaluate.evaluate_model(path, dataset, splits=["Training"], use_cache=False)
    assert list(only_training) == ["Training"]
    with pytest.raises(ValueError, match="present: Training, PublicTest, PrivateTest"):
        evaluate.evaluate_model(path, dataset, splits=["test"])
    with pytest.raises(ValueError, match="--split Training"):
        evaluate.evaluate_model(path, oracle_dataset_factory({"Training": 5}))


def test_predictions_are_cached_and_invalidated_by_a_new_model_file(tmp_path, monkeypatch, oracle_model_factory, oracle_dataset_factory):
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    calls = []
    real_predict = model_io.predict_probabilities

    def counting_predict(loaded, faces, **kwargs):
        calls.append(kwargs.get("tta"))
        return real_predict(loaded, faces, **kwargs)

    monkeypatch.setattr(model_io, "predict_probabilities", counting_predict)
    loads = []
    real_load = model_io.load_model
    monkeypatch.setattr(model_io, "load_model", lambda path: loads.append(path) or real_load(path))
    dataset = oracle_dataset_factory({"PublicTest": 20})
    path = oracle_model_factory(tmp_path / "m.keras")

    first = evaluate.evaluate_model(path, dataset)["PublicTest"]
    second = evaluate.evaluate_model(path, dataset)["PublicTest"]
    assert len(calls) == 1 and len(loads) == 1  # the hit neither loads nor predicts
    assert np.array_equal(first.probabilities, second.probabilities)
    cached = list((tmp_path / "cache" / "predictions").rglob("*.npz"))
    assert len(cached) == 1 and cached[0].name.startswith("PublicTest-") and cached[0].name.endswith("-tta-none.npz")

    evaluate.evaluate_model(path, dataset, tta=True)
    evaluate.evaluate_model(path, dataset, tta="crop10")
    evaluate.evaluate_model(path, dataset, tta="flip")
    assert calls == ["none", "flip", "crop10"]  # each TTA mode is its own cache entry; True is "flip"

    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    evaluate.evaluate_model(path, dataset)
    assert calls == ["none", "flip", "crop10", "none"]

    cached[0].write_bytes(b"not an npz")
    assert evaluate.evaluate_model(path, dataset)["PublicTest"].accuracy == 1.0
    assert len(calls) == 5


def _view_sensitive_model(path):
    """A small random network whose outputs change clearly with the view (an untrained mini-Xception's are all
    within 1e-4 of 1/7)."""
    import keras

    keras.utils.set_random_seed(1)
    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 5, strides=4, activation="relu")(x)
    x = keras.layers.Flatten()(keras.layers.AveragePooling2D(2)(x))
    outputs = keras.layers.Dense(7, activation="softmax", kernel_initializer=keras.initializers.RandomNormal(stddev=2.0))(x)
    return model_io.export_model(keras.Model(inputs, outputs), path, meta={"model": "random"})


def test_a_larger_mode_starts_from_a_smaller_modes_cached_views(tmp_path, monkeypatch, oracle_dataset_factory):
    # The modes nest (flip = the face + its mirror; ten-crop = those + 8 corner views): after a cached single
    # pass, flip predicts only the mirror images, and ten-crop after flip only the corners, to the same result.
    monkeypatch.setenv("FER_STUDIO_CACHE", str(tmp_path / "cache"))
    model_path = _view_sensitive_model(tmp_path / "random.keras")
    dataset = oracle_dataset_factory({"PublicTest": 40}, seed=3)
    dataset.images[:] = np.random.default_rng(3).integers(0, 256, dataset.images.shape)  # faces with a left and right
    fresh = {mode: evaluate.evaluate_model(model_path, dataset, tta=mode, use_cache=False)["PublicTest"]
             for mode in ("none", "flip", "crop10")}
    for smaller, larger in (("none", "flip"), ("flip", "crop10")):  # the views differ
        assert np.abs(fresh[smaller].probabilities - fresh[larger].probabilities).max() > 0.01
    calls = []
    real_predict = model_io.predict_probabilities

    def counting_predict(loaded, faces, **kwargs):
        calls.append((kwargs.get("tta"), kwargs.get("first_view", 0), len(faces)))
        return real_predict(loaded, faces, **kwargs)

    monkeypatch.setattr(model_io, "predict_probabilities", counting_predict)
    for mode in ("none", "flip", "crop10"):
        result = evaluate.evaluate_model(model_path, dataset, tta=mode)["PublicTest"]
        np.testing.assert_allclose(result.probabilities, fresh[mode].probabilities, atol=1e-6)
        assert result.accuracy == fresh[mode].accuracy
    assert calls == [("none", 0, 40), ("flip", 1, 40), ("crop10", 2, 40)]

    # Ten-crop with only the single pass cached predicts the other nine views; then everything is cached.
    for entry in (tmp_path / "cache").rglob("*-tta-[fc]*.npz"):
        entry.unlink()
    calls.clear()
    ten_crop = evaluate.evaluate_model(model_path, dataset, tta="crop10")["PublicTest"]
    np.testing.assert_allclose(ten_crop.probabilities, fresh["crop10"].probabilities, atol=1e-6)
    evaluate.evaluate_model(model_path, dataset, tta="crop10")
    assert calls == [("crop10", 1, 40)]
    loaded = model_io.load_model(model_path)
    with pytest.raises(ValueError, match="flip has 2 views; cannot start at view 2"):
        real_predict(loaded, dataset.images[:2], tta="flip", first_view=2)


def test_run_model_caches_next_to_the_run_and_writes_a_summary(tmp_path, oracle_model_factory, oracle_dataset_factory):
    run_dir = tmp_path / "runs" / "20250101-000000-oracle-abcd"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"config": {"model": "oracle"}}))
    path = oracle_model_factory(run_dir / "best.keras")
    dataset = oracle_dataset_factory({"PublicTest": 15, "PrivateTest": 8})
    evaluate.evaluate_model(path, dataset, splits=["PublicTest"])
    evaluate.evaluate_model(path, dataset, splits=["PrivateTest"], tta=True)
    assert sorted(p.name.split("-")[0] for p in (run_dir / "predictions").glob("*.npz")) == ["PrivateTest", "PublicTest"]
    summary = evaluate.read_evaluation(run_dir)
    assert summary["PublicTest"]["accuracy"] == 1.0 and summary["PublicTest"]["n"] == 15
    assert summary["PrivateTest"]["tta"] == "flip" and summary["PrivateTest"]["data_hash"] == "oracle-0-23"


def test_the_summary_keeps_each_mode_until_the_data_changes(tmp_path, oracle_model_factory, oracle_dataset_factory):
    # Session 9: a ten-crop evaluation replaced the single pass recorded before it in evaluation.json.
    run_dir = tmp_path / "runs" / "20250101-000000-oracle-abcd"
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({"config": {"model": "oracle"}}))
    (run_dir / "evaluation.json").write_text(json.dumps({  # as written before modes were kept
        "PublicTest": {"accuracy": 0.5, "n": 12, "tta": True, "data_hash": "oracle-0-12"}}))
    path = oracle_model_factory(run_dir / "best.keras")
    dataset = oracle_dataset_factory({"PublicTest": 12}, wrong_every=4)
    ten_crop = evaluate.evaluate_model(path, dataset, tta="crop10")["PublicTest"].accuracy
    evaluate.evaluate_model(path, dataset)
    assert evaluate.recorded_results(run_dir) == {"PublicTest": {"none": 0.75, "flip": 0.5, "crop10": ten_crop}}
    summary = evaluate.read_evaluation(run_dir)["PublicTest"]
    assert summary["tta"] == "none" and summary["accuracy"] == 0.75  # the latest stays at the top level
    other = oracle_dataset_factory({"PublicTest": 12}, wrong_every=3, seed=1)  # another copy of the split
    evaluate.evaluate_model(path, other, tta="flip")
    assert evaluate.recorded_results(run_dir) == {"PublicTest": {"flip": 8 / 12}}


def test_a_damaged_summary_gives_what_still_parses(tmp_path):
    (tmp_path / "evaluation.json").write_text(json.dumps({
        "PublicTest": {"modes": {"none": {"accuracy": "high", "tta": "none"}, "crop10": {"accuracy": 0.7, "tta": "crop10"},
                                 "flip": {"accuracy": 2.5, "tta": "flip"}}},
        "PrivateTest": {"accuracy": 0.6, "tta": "sideways"}, "notes": "hand-written"}))
    assert evaluate.recorded_results(tmp_path) == {"PublicTest": {"crop10": 0.7}}


def test_missing_or_broken_model_file_raises_clear_errors(tmp_path, oracle_dataset_factory):
    dataset = oracle_dataset_factory({"PublicTest": 3})
    with pytest.raises(FileNotFoundError):
        evaluate.evaluate_model(tmp_path / "missing.keras", dataset)
    broken = tmp_path / "broken.keras"
    broken.write_text("not a model")
    with pytest.raises(ValueError, match="not a Keras model"):
        evaluate.evaluate_model(broken, dataset)


def test_photos_are_cropped_to_their_largest_face_or_used_whole(tmp_path, three_face_photo):
    import cv2

    photo, boxes = three_face_photo
    (tmp_path / "photos" / "happiness").mkdir(parents=True)
    (tmp_path / "photos" / "sad").mkdir()
    (tmp_path / "photos" / "contempt").mkdir()
    cv2.imwrite(str(tmp_path / "photos" / "happiness" / "group.jpg"), cv2.cvtColor(photo, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(tmp_path / "photos" / "sad" / "wall.png"), np.full((200, 300), 128, np.uint8))
    (tmp_path / "photos" / "sad" / "broken.jpg").write_bytes(b"not an image")
    dataset, without_face = evaluate.load_labeled_photos(tmp_path / "photos", detector="haar")
    assert dataset.images.shape == (2, 48, 48) and dataset.split_names == ["all"]
    assert list(dataset.ids) == ["happiness/group.jpg", "sad/wall.png"]
    assert [CLASS_NAMES[label] for label in dataset.labels] == ["happy", "sad"]
    assert without_face == ("sad/wall.png",)
    assert [record.where for record in dataset.report.skipped] == ["sad/broken.jpg"]
    assert dataset.report.ignored_folders == ("contempt",)
    # The crop is the biggest face, framed like FER2013 (about its box), not the whole photo.
    from core.preprocess import prepare_face

    x, y, w, h = boxes[0]
    center_x, center_y, half = x + w // 2, y + h // 2, w // 2
    expected = prepare_face(photo[center_y - half:center_y + half, center_x - half:center_x + half])
    assert np.abs(dataset.images[0].astype(int) - expected.astype(int)).mean() < 20
    assert np.abs(dataset.images[0].astype(int) - prepare_face(photo).astype(int)).mean() > 40


@pytest.mark.slow
def test_public_test_of_the_shared_data_has_the_documented_supports(shared_fer2013, tiny_loaded_model):
    result = evaluate.evaluate_model(tiny_loaded_model, shared_fer2013, use_cache=False)["PublicTest"]
    assert result.n == 3589 and result.confusion.sum() == 3589
    # ../shared/fer2013/README.md: PublicTest images per class, FER2013 order.
    assert result.support == (467, 56, 496, 895, 653, 415, 607)
    assert result.accuracy == pytest.approx(np.trace(result.confusion) / 3589)


def test_progress_is_reported_in_chunks_and_raising_from_it_cancels(tmp_path, monkeypatch, oracle_model_factory,
                                                                     oracle_dataset_factory):
    from core import evaluate

    monkeypatch.setattr(evaluate, "PROGRESS_CHUNK", 8)
    model = oracle_model_factory(tmp_path / "oracle.keras")
    dataset = oracle_dataset_factory({"PublicTest": 20})
    reports = []
    evaluate.evaluate_model(model, dataset, splits=["PublicTest"], progress=lambda done, total: reports.append((done, total)))
    assert reports == [(0, 20), (8, 20), (16, 20), (20, 20)]

    class Cancelled(Exception):
        pass

    def cancel(done, total):
        if done:
            raise Cancelled

    other = oracle_model_factory(tmp_path / "other.keras")
    with pytest.raises(Cancelled):
        evaluate.evaluate_model(other, dataset, splits=["PublicTest"], tta="flip", progress=cancel)
    seen = []  # nothing was cached for the cancelled evaluation: it predicts again, reporting progress
    evaluate.evaluate_model(other, dataset, splits=["PublicTest"], tta="flip", progress=lambda d, t: seen.append(d))
    # Two views per image: chunks of half as many images, so the bar moves as often as a single pass's (walk s19:
    # ten-crop stood still for 20 s per chunk).
    assert seen == [0, 4, 8, 12, 16, 20]
    assert [evaluate.progress_chunk(mode) for mode in ("none", "flip", "crop10")] == [8, 4, 1]
    monkeypatch.setattr(evaluate, "PROGRESS_CHUNK", 512)
    # Ten-crop after a cached flip predicts 8 more views per image.
    assert [evaluate.progress_chunk("crop10"), evaluate.progress_chunk("crop10", first_view=2)] == [51, 64]
