"""Grad-CAM: heatmaps have the face's shape, lie in [0, 1] and point at the evidence."""

from __future__ import annotations

import numpy as np
import pytest

from core.explain import find_last_conv_layer, grad_cam, overlay_heatmap
from core.labels import CLASS_NAMES
from core.model_io import LoadedModel


@pytest.fixture(scope="module")
def brightness_model() -> LoadedModel:
    """Conv (all-ones kernels) -> ReLU -> GAP -> softmax where only 'happy' grows with brightness.

    Its 'happy' evidence is exactly where the face is bright, so Grad-CAM must
    light up there.
    """
    import keras

    inputs = keras.Input((48, 48, 1))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3, padding="same", kernel_initializer="ones", bias_initializer="zeros", name="features")(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    weights = np.zeros((4, 7), np.float32)
    weights[:, CLASS_NAMES.index("happy")] = 1.0
    outputs = keras.layers.Dense(7, activation="softmax")(x)
    model = keras.Model(inputs, outputs)
    model.layers[-1].set_weights([weights, np.zeros(7, np.float32)])
    return LoadedModel(model=model, class_names=CLASS_NAMES)


def test_last_conv_layer_skips_pooling_and_head(brightness_model, tiny_loaded_model):
    name = find_last_conv_layer(brightness_model.model)
    assert type(brightness_model.model.get_layer(name)).__name__ == "Activation"  # the ReLU, not the pooling after it
    layer = tiny_loaded_model.model.get_layer(find_last_conv_layer(tiny_loaded_model.model))
    assert len(layer.output.shape) == 4


def test_heatmap_points_at_the_bright_patch(brightness_model):
    face = np.zeros((48, 48), np.uint8)
    face[30:42, 6:18] = 255
    heatmap = grad_cam(brightness_model, face)
    assert heatmap.shape == (48, 48) and heatmap.dtype == np.float32
    assert heatmap.min() >= 0.0 and heatmap.max() == pytest.approx(1.0)
    row, col = np.unravel_index(np.argmax(heatmap), heatmap.shape)
    assert 28 <= row <= 43 and 4 <= col <= 19
    assert heatmap[:20, 28:].max() < 0.05


def test_heatmaps_for_a_real_architecture(tiny_loaded_model):
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, size=(3, 48, 48), dtype=np.uint8)
    heatmaps = grad_cam(tiny_loaded_model, faces)
    assert heatmaps.shape == (3, 48, 48)
    assert np.all((heatmaps >= 0) & (heatmaps <= 1))
    assert heatmaps.max() > 0  # an untrained model still depends on its input
    chosen = grad_cam(tiny_loaded_model, faces, [3, 3, 3])
    assert chosen.shape == (3, 48, 48)


def test_bad_class_index_is_a_value_error(tiny_loaded_model):
    with pytest.raises(ValueError, match="not a FER2013 class"):
        grad_cam(tiny_loaded_model, np.zeros((1, 48, 48), np.uint8), [9])
    with pytest.raises(ValueError, match="2 class indices for 1 faces"):
        grad_cam(tiny_loaded_model, np.zeros((1, 48, 48), np.uint8), [1, 2])


def test_overlay_is_an_enlarged_rgb_image():
    face = np.tile(np.arange(48, dtype=np.uint8) * 5, (48, 1))
    heatmap = np.zeros((48, 48), np.float32)
    heatmap[:24] = 1.0
    overlay = overlay_heatmap(face, heatmap, size=96)
    assert overlay.shape == (96, 96, 3) and overlay.dtype == np.uint8
    # Strong evidence is drawn red, none blue (JET colour map).
    top, bottom = overlay[:40].reshape(-1, 3).mean(0), overlay[56:].reshape(-1, 3).mean(0)
    assert top[0] > top[2] and bottom[2] > bottom[0]


def test_bundled_model_gets_a_non_blank_map_on_the_astronaut():
    from pathlib import Path

    from skimage import data

    from core.explain import grad_cam
    from core.model_io import load_model
    from core.predict import predict_image

    bundled = load_model(Path(__file__).resolve().parents[2] / "models" / "fer_studio_fast.keras")
    prediction = predict_image(data.astronaut(), bundled)
    heatmap = grad_cam(bundled, np.stack([face.face for face in prediction.faces]))
    assert heatmap.max() == 1.0  # the flatten head made channel-mean Grad-CAM all zero
    assert 0.01 < (heatmap > 0.5).mean() < 0.6


def test_crop_model_heatmap_covers_only_the_window_it_sees():
    from core.labels import CLASS_NAMES as NAMES
    from core.models import build

    model = build("fer_vgg", width=4, dense_units=8, crop=32)
    faces = np.random.default_rng(1).integers(0, 256, size=(2, 48, 48), dtype=np.uint8)
    heatmaps = grad_cam(LoadedModel(model=model, class_names=NAMES), faces)
    assert heatmaps.shape == (2, 48, 48) and heatmaps.max() > 0
    border = np.ones((48, 48), bool)
    border[8:40, 8:40] = False
    assert heatmaps[:, border].max() == 0  # the 8-pixel border is never seen by the network
