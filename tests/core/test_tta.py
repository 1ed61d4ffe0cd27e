import cv2
import numpy as np
import pytest

from core import model_io
from core.tta import TTA_MODES, VIEW_COUNTS, make_views, normalize_tta


def faces(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 48, 1)).astype(np.float32)


def test_mode_names_and_booleans():
    assert normalize_tta(True) == "flip" and normalize_tta(False) == "none" and normalize_tta(None) == "none"
    assert normalize_tta(" Crop10 ") == "crop10"
    with pytest.raises(ValueError, match="none, flip, crop10"):
        normalize_tta("five-crop")
    assert [len(make_views(faces(1), mode)) for mode in TTA_MODES] == [1, 2, 10]


def test_flip_views_are_the_face_and_its_mirror():
    x = faces(3)
    original, mirrored = make_views(x, "flip")
    assert np.array_equal(original, x) and np.array_equal(mirrored, x[:, :, ::-1])


def test_ten_crop_is_the_face_and_four_corner_crops_each_mirrored():
    x = faces(2)
    views = make_views(x, "crop10")
    assert len(views) == 10 and all(view.shape == x.shape and view.dtype == np.float32 for view in views)
    assert np.array_equal(views[0], x) and np.array_equal(views[1], x[:, :, ::-1])
    corners = [(0, 0), (0, 4), (4, 0), (4, 4)]
    for index, (top, left) in enumerate(corners, start=1):
        expected = cv2.resize(x[1, top:top + 44, left:left + 44, 0], (48, 48), interpolation=cv2.INTER_LINEAR)
        # Pixel values are 0..255; a many-channel resize rounds a little differently from a single one.
        np.testing.assert_allclose(views[2 * index][1, :, :, 0], expected, atol=1e-2)
        assert np.array_equal(views[2 * index + 1], views[2 * index][:, :, ::-1])
    # The top-left crop never sees the bottom-right corner: a mark there is cut away.
    marked = np.zeros((1, 48, 48, 1), np.float32)
    marked[0, 46:, 46:] = 255
    assert make_views(marked, "crop10")[2].max() == 0 and make_views(marked, "crop10")[8].max() > 0


def test_ten_crop_of_many_faces_matches_one_at_a_time():
    x = faces(600, seed=1)  # more than OpenCV's 512-channel limit per resize call
    together = make_views(x, "crop10")
    alone = make_views(x[550:551], "crop10")
    for view, single in zip(together, alone):
        np.testing.assert_allclose(view[550:551], single, atol=1e-2)  # pixel values 0..255; multi-channel resize rounds differently


@pytest.mark.parametrize("window", [None, (40, 40), (41, 43)])
def test_each_mode_begins_with_the_views_of_the_modes_before_it(window):
    # core.evaluate builds a mode's average from a smaller mode's cached one: the counts and the order must hold.
    x = np.random.default_rng(0).integers(0, 256, (3, 48, 48, 1)).astype(np.float32)
    views = {mode: make_views(x, mode, window=window) for mode in TTA_MODES}
    assert {mode: len(found) for mode, found in views.items()} == VIEW_COUNTS
    for smaller, larger in zip(TTA_MODES, TTA_MODES[1:]):
        for a, b in zip(views[smaller], views[larger]):
            assert np.array_equal(a, b), (smaller, larger)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match=r"\(N, H, W, 1\)"):
        make_views(np.zeros((2, 48, 48), np.float32), "flip")


def test_probabilities_are_the_mean_over_views_whichever_path(tiny_loaded_model):
    gray = faces(5, seed=2)[..., 0].astype(np.uint8)
    model = tiny_loaded_model.model
    expected = np.mean([model.predict_on_batch(view) for view in make_views(gray.astype(np.float32)[..., None], "crop10")], axis=0)
    one_call = model_io.predict_probabilities(tiny_loaded_model, gray, tta="crop10")  # 50 inputs: one batch
    per_view = model_io.predict_probabilities(tiny_loaded_model, gray, tta="crop10", batch_size=8)
    np.testing.assert_allclose(one_call, expected, atol=1e-5)
    np.testing.assert_allclose(per_view, expected, atol=1e-5)
    assert np.allclose(one_call.sum(axis=1), 1.0, atol=1e-5)
    flipped = model_io.predict_probabilities(tiny_loaded_model, gray, tta="flip")
    x = gray.astype(np.float32)[..., None]
    np.testing.assert_allclose(flipped, (model.predict_on_batch(x) + model.predict_on_batch(x[:, :, ::-1])) / 2, atol=1e-5)


@pytest.mark.parametrize("tta", TTA_MODES)
def test_no_faces_give_no_rows(tiny_loaded_model, tta):
    probabilities = model_io.predict_probabilities(tiny_loaded_model, np.zeros((0, 48, 48), np.uint8), tta=tta)
    assert probabilities.shape == (0, 7)


@pytest.mark.parametrize("window", [(40, 40), (41, 41)])
def test_ten_crop_for_a_centre_window_model_is_the_recipes_ten_crop(window):
    """What the model's centre window sees in each view: the centre and four corner crops of its size, each mirrored."""
    x = faces(2, seed=3)
    views = make_views(x, "crop10", window=window)
    assert len(views) == 10 and all(view.shape == x.shape and view.dtype == np.float32 for view in views)
    side = window[0]
    top = (48 - side) // 2

    def seen(view):
        return view[:, top:top + side, top:top + side]

    far = 48 - side
    expected = [x[:, top:top + side, top:top + side]] + [x[:, r:r + side, c:c + side] for r, c in
                                                         ((0, 0), (0, far), (far, 0), (far, far))]
    for index, crop in enumerate(expected):
        assert np.array_equal(seen(views[2 * index]), crop)
        assert np.array_equal(seen(views[2 * index + 1]), crop[:, :, ::-1])
    flipped = make_views(x, "flip", window=window)
    assert np.array_equal(seen(flipped[1]), expected[0][:, :, ::-1])
    assert np.array_equal(make_views(x, "crop10", window=(48, 48))[2], make_views(x, "crop10")[2])  # no window: as before


def test_predictions_of_a_crop_model_use_its_own_ten_crop():
    from core.models import build

    model = build("fer_vgg", width=4, dense_units=8, crop=40)
    loaded = model_io.LoadedModel(model=model, class_names=("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"))
    gray = faces(3, seed=4)[..., 0].astype(np.uint8)
    views = make_views(gray.astype(np.float32)[..., None], "crop10", window=(40, 40))
    expected = np.mean([np.asarray(model.predict_on_batch(view)) for view in views], axis=0)
    np.testing.assert_allclose(model_io.predict_probabilities(loaded, gray, tta="crop10"), expected, atol=1e-5)
