import numpy as np
import pytest

from core import models
from core.labels import NUM_CLASSES


@pytest.mark.parametrize("name", [spec.name for spec in models.list_models()])
def test_every_model_builds_and_trains_one_step(name):
    import keras

    model = models.build(name)
    assert model.input_shape == (None, 48, 48, 1)
    assert model.output_shape == (None, NUM_CLASSES)
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in model.layers)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(4, 48, 48, 1)).astype("float32")
    y = keras.utils.to_categorical(np.arange(4) % NUM_CLASSES, NUM_CLASSES)
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    probabilities = model(x, training=False)
    assert np.allclose(np.asarray(probabilities).sum(axis=1), 1.0, atol=1e-4)


def test_seed_models_match_their_published_sizes():
    assert models.build("notebook_cnn").count_params() == 5_810_183
    assert 50_000 < models.build("mini_xception").count_params() < 65_000


def test_unknown_model_lists_known_names():
    with pytest.raises(ValueError, match="known models: .*mini_xception"):
        models.build("resnet1000")


def test_bad_hyperparameter_is_a_value_error():
    with pytest.raises(ValueError, match="does not accept"):
        models.build("fer_vgg", depth=99)


def test_default_model_listed_first():
    assert models.list_models()[0].name == models.DEFAULT_MODEL
