"""How Predict's batch mode opens its uploads (the page tests drive the rest)."""

from __future__ import annotations

import inspect

import cv2
import numpy as np

from dashboard.predict_widgets import expand_uploads
from tests.core.test_predict import make_zip


def photo(value: int) -> bytes:
    # Noise, so that the photo does not compress (as real photos do not) and no ratio check is involved.
    pixels = np.random.default_rng(value).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return cv2.imencode(".png", pixels)[1].tobytes()


def test_a_batch_is_counted_first_and_its_zips_are_read_one_member_at_a_time():
    files = [("a.jpg", photo(0)), ("photos.zip", make_zip({"x.png": photo(1), "y.png": photo(2)})), ("bad.zip", b"PK no")]
    count, items = expand_uploads(files)
    assert count == 4
    assert inspect.isgenerator(items)  # nothing of the zips is inflated before it is predicted
    listed = list(items)
    assert [name for name, _ in listed] == ["a.jpg", "photos.zip/x.png", "photos.zip/y.png", "bad.zip"]
    assert listed[1][1] == photo(1) and listed[3][1].startswith("not a readable zip")


def test_the_zips_of_one_batch_share_one_size_limit():
    # Probe s11: the limit was per zip, so three zips held three times as much.
    members = {f"{i}.png": photo(i) for i in range(3)}
    size = sum(len(payload) for payload in members.values())
    files = [("first.zip", make_zip(members)), ("second.zip", make_zip(members)), ("third.zip", make_zip(members))]
    count, items = expand_uploads(files, max_total_bytes=2 * size)
    listed = list(items)
    assert count == 7  # 3 + 3 images, and the third zip as one refused row
    assert [name for name, _ in listed][-1] == "third.zip"
    assert "more than" in listed[-1][1] and "another batch" in listed[-1][1]
    assert all(isinstance(payload, bytes) for _, payload in listed[:-1])


def test_the_grad_cam_explains_the_class_each_face_is_labelled_with(three_face_photo, tiny_loaded_model, monkeypatch):
    # Review s20: with flip or ten-crop the label comes from the averaged views, but the map explained the single
    # pass's own top class (they differed on 12% of PublicTest's faces with ten-crop).
    import core.explain
    from core.labels import CLASS_NAMES
    from dashboard.predict_widgets import PredictSettings, _analyse_photo

    asked = []
    real = core.explain.grad_cam

    def recording(loaded, faces, class_indices=None, **options):
        asked.append(list(class_indices) if class_indices is not None else None)
        return real(loaded, faces, class_indices, **options)

    monkeypatch.setattr(core.explain, "grad_cam", recording)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(three_face_photo[0], cv2.COLOR_RGB2BGR))
    settings = PredictSettings("tiny.keras", "haar", 0.5, "crop10")
    result = _analyse_photo.__wrapped__(encoded.tobytes(), settings, (), True, tiny_loaded_model)
    assert result.prediction.faces and len(result.overlays) == len(result.prediction.faces)
    assert asked == [[CLASS_NAMES.index(face.label) for face in result.prediction.faces]]


def test_the_label_smoothing_ceiling_is_explained_for_models_trained_with_it(tiny_model_path):
    # Walk s21: every confident face read about 86%, which a newcomer takes for an unsure model.
    from pathlib import Path

    from dashboard.predict_widgets import smoothing_ceiling_note

    bundled = str(Path(__file__).resolve().parents[2] / "models" / "fer_studio_swa.keras")  # label smoothing 0.1
    note = smoothing_ceiling_note((bundled,))
    assert note.startswith("This model was trained with label smoothing 0.1") and "91%, not 100%" in note
    assert smoothing_ceiling_note((str(tiny_model_path),)) == ""  # no card, no run config: nothing is claimed
