"""Data augmentation for training: one config, two engines, one batch feed for ``fit``.

:class:`AugmentConfig` speaks the vocabulary of Keras' legacy
``ImageDataGenerator`` (IDG), the class the tutorial seeds use: shift
fractions, horizontal flip, zoom range, rotation in degrees and a
multiplicative brightness range. Two engines apply it:

- ``"idg"`` (default): the legacy ``ImageDataGenerator`` itself, so a user
  gets exactly what the seeds did. It is NumPy/SciPy code, so it also works
  under ``KERAS_BACKEND=jax``.
- ``"layers"``: Keras preprocessing layers (``RandomFlip``,
  ``RandomTranslation``, ``RandomZoom``, ``RandomRotation`` and a
  multiplicative brightness layer) with the same ranges and IDG's
  ``fill_mode="nearest"``. Backend-agnostic; run compiled, it is the fast path.
- ``"none"``: no augmentation.

The trainer calls :func:`make_training_batches` and hands
``batches.data`` to ``model.fit``; the augmentation never becomes part of the
saved model. :func:`augment_batch` augments uint8 faces for the preview and
for tests.

Keras and TensorFlow are imported inside functions so importing this module
stays fast.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable

import numpy as np

ENGINES: tuple[str, ...] = ("idg", "layers", "none")

# Inclusive (low, high) bounds of every numeric field. Shifts and zoom stay well
# below 1 so that IDG reads them as fractions (>= 1 would mean pixels) and the
# zoom factor 1 - zoom stays positive.
_RANGES: dict[str, tuple[float, float]] = {
    "width_shift": (0.0, 0.5),
    "height_shift": (0.0, 0.5),
    "zoom": (0.0, 0.5),
    "rotation": (0.0, 180.0),
    "brightness": (0.0, 0.9),
    "erasing": (0.0, 1.0),
}

# Random erasing (Zhong et al., 2017): the erased rectangle covers this share
# of the face and has this aspect ratio (height / width), drawn log-uniformly.
ERASING_AREA = (0.02, 0.33)
ERASING_ASPECT = (0.3, 3.3)


@dataclass(frozen=True)
class AugmentConfig:
    """How training images are randomly transformed, in ImageDataGenerator terms.

    Like scikit-learn estimators, the constructor only stores values;
    :meth:`validate` checks them and every function that does work calls it.

    Attributes:
        engine: ``"idg"`` (legacy ImageDataGenerator, the default), ``"layers"``
            (Keras preprocessing layers, the fast path) or ``"none"``.
        width_shift: Largest horizontal shift as a fraction of the width
            (IDG ``width_shift_range``), in [0, 0.5].
        height_shift: Largest vertical shift as a fraction of the height
            (IDG ``height_shift_range``), in [0, 0.5].
        horizontal_flip: Mirror left-right with probability 1/2.
        zoom: Scale each axis by a factor in ``[1 - zoom, 1 + zoom]`` (IDG
            ``zoom_range``; above 1 zooms out), in [0, 0.5].
        rotation: Largest rotation in degrees (IDG ``rotation_range``), in [0, 180].
        brightness: 0 for off, else multiply pixels by a factor in
            ``[1 - brightness, 1 + brightness]`` (IDG ``brightness_range``), in [0, 0.9].
        erasing: Probability, in [0, 1], that a face gets a random rectangle
            (2-33% of its area, aspect 0.3-3.3) filled with random gray noise
            after the other transformations (random erasing, Zhong et al.
            2017, part of the published FER2013 VGG recipe). Both engines.
    """

    engine: str = "idg"
    width_shift: float = 0.1
    height_shift: float = 0.1
    horizontal_flip: bool = True
    zoom: float = 0.1
    rotation: float = 10.0
    brightness: float = 0.0
    erasing: float = 0.0

    def validate(self) -> None:
        """Check every field.

        Raises:
            ValueError: Naming the first bad field, its value and what is allowed.
        """
        if self.engine not in ENGINES:
            raise ValueError(
                f"AugmentConfig.engine must be one of {', '.join(map(repr, ENGINES))}; "
                f"got {self.engine!r}"
            )
        if not isinstance(self.horizontal_flip, (bool, np.bool_)):
            raise ValueError(
                f"AugmentConfig.horizontal_flip must be true or false; got {self.horizontal_flip!r}"
            )
        for name, (low, high) in _RANGES.items():
            value = getattr(self, name)
            is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
                value, (bool, np.bool_)
            )
            if not is_number or not (low <= value <= high):  # NaN fails the comparison too
                raise ValueError(
                    f"AugmentConfig.{name} must be a number in [{low:g}, {high:g}]; got {value!r}"
                )

    @property
    def is_identity(self) -> bool:
        """True when this config leaves every image unchanged."""
        return self.engine == "none" or (
            not self.horizontal_flip
            and self.width_shift == 0
            and self.height_shift == 0
            and self.zoom == 0
            and self.rotation == 0
            and self.brightness == 0
            and self.erasing == 0
        )

    def to_dict(self) -> dict:
        """Return a JSON-serialisable dict (plain str, float and bool values)."""
        data = asdict(self)
        for name in _RANGES:
            data[name] = float(data[name])
        data["horizontal_flip"] = bool(data["horizontal_flip"])
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "AugmentConfig":
        """Build a config from :meth:`to_dict` output (e.g. a run's ``config.json``).

        Missing keys take their defaults, so configs saved by older versions load.

        Raises:
            ValueError: For an unknown key (the message lists the known ones) or
                a value out of range (see :meth:`validate`).
        """
        if not isinstance(data, dict):
            raise ValueError(f"an augmentation config must be a dict; got {type(data).__name__}")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(
                f"unknown augmentation setting(s) {', '.join(map(repr, unknown))}; "
                f"known settings are {', '.join(known)}"
            )
        values = dict(data)
        for name in _RANGES:
            value = values.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                values[name] = float(value)
        config = cls(**values)
        config.validate()
        return config


AUGMENT_PRESETS: dict[str, AugmentConfig] = {
    "none": AugmentConfig(
        engine="none",
        width_shift=0.0,
        height_shift=0.0,
        horizontal_flip=False,
        zoom=0.0,
        rotation=0.0,
    ),
    # The scikit-plot/plotly notebook seed: shifts 0.1, flip, zoom 0.2.
    "seed_notebook": AugmentConfig(
        engine="idg", width_shift=0.1, height_shift=0.1, horizontal_flip=True, zoom=0.2, rotation=0.0
    ),
    "default": AugmentConfig(),
    # Same transformations as "default", run by the Keras layers.
    "fast": AugmentConfig(engine="layers"),
}


@dataclass(frozen=True)
class TrainingBatches:
    """Shuffled, augmented training batches ready for ``model.fit``.

    Use::

        batches = make_training_batches(x_train, y_train, config, batch_size=64, seed=0)
        model.fit(batches.data, epochs=epochs, steps_per_epoch=batches.steps_per_epoch,
                  validation_data=(x_val, y_val), class_weight=class_weight)

    Class weights go to ``fit`` (Keras turns them into per-sample weights for
    a PyDataset) *or* to :func:`make_training_batches`, never both: Keras
    refuses ``class_weight`` when batches already carry sample weights. Do not
    pass ``y`` or ``batch_size`` to ``fit``. Pass ``shuffle=False``: the
    samples are already reshuffled every epoch, and ``fit``'s batch-order
    shuffle draws from Python's global ``random``, whose state depends on
    everything the process did before (building a model draws from it), so a
    resumed run would see its batches in another order.
    ``steps_per_epoch`` equals ``len(batches.data)``; passing it is optional.

    The batches of epoch ``e`` (0-based) are a pure function of ``(seed, e)``:
    the order comes from ``default_rng([seed, e])`` and the augmentation of
    batch ``i`` from a key derived from ``(seed, e, i)``, whatever the process
    did before. So a run resumed at epoch ``e`` (``start_epoch=e``) trains on
    exactly the batches an uninterrupted run would have, instead of replaying
    epoch 1's images, transformations and order.

    Attributes:
        data: A ``keras.utils.PyDataset``; item ``i`` is ``(x, y)`` or, when
            class weights were given, ``(x, y, sample_weight)``. ``x`` is float32
            ``(B, 48, 48, 1)`` in 0..255 (the model rescales); ``y`` is int64
            ``(B,)`` for sparse labels or float32 ``(B, classes)`` for one-hot
            labels; ``sample_weight`` is float32 ``(B,)``. The sample order is
            reshuffled at every epoch end; the last batch may be smaller.
            ``data.epoch`` is the 0-based epoch the next batches belong to.
        steps_per_epoch: Batches per epoch, ``ceil(N / batch_size)``.
        batch_size: Images per full batch.
        engine: The engine that augments (``"idg"``, ``"layers"`` or ``"none"``).
        weighted: True when each batch carries sample weights.
    """

    data: Any
    steps_per_epoch: int
    batch_size: int
    engine: str
    weighted: bool


def make_image_data_generator(config: AugmentConfig) -> Any:
    """Build the legacy Keras ``ImageDataGenerator`` for a config.

    It is the class ``tensorflow.keras.preprocessing.image.ImageDataGenerator``
    re-exports (``keras.preprocessing.image`` no longer has it in Keras 3),
    imported from its Keras home so that it works without TensorFlow, e.g.
    under ``KERAS_BACKEND=jax``; TensorFlow's re-export is the fallback.
    Pixels stay in 0..255 (no ``rescale``); ``fill_mode`` is IDG's ``"nearest"``.

    Keras 3's copy of the class moves images vertically for
    ``width_shift_range`` and sideways for ``height_shift_range`` (its
    ``apply_affine_transform`` swaps the axes that ``get_random_transform``
    assumed; tf.keras 2 did not). When the installed class does that, the two
    ranges are passed swapped, so ``config.width_shift`` always moves faces
    sideways as the seeds' ``width_shift_range`` did.

    Raises:
        ValueError: If the config is invalid.
    """
    config.validate()
    generator_class = _image_data_generator_class()
    width_shift, height_shift = config.width_shift, config.height_shift
    if _idg_swaps_shift_axes():
        width_shift, height_shift = height_shift, width_shift
    return generator_class(
        width_shift_range=width_shift,
        height_shift_range=height_shift,
        horizontal_flip=config.horizontal_flip,
        zoom_range=config.zoom,
        rotation_range=config.rotation,
        brightness_range=(
            [1.0 - config.brightness, 1.0 + config.brightness] if config.brightness > 0 else None
        ),
        fill_mode="nearest",
    )


def make_augmentation_layers(config: AugmentConfig, seed: int | None = None) -> Any:
    """Build a ``keras.Sequential`` applying the config's transformations.

    Same ranges as :func:`make_image_data_generator`, bilinear interpolation and
    ``fill_mode="nearest"`` like IDG; each axis zooms independently like IDG.
    Brightness is multiplicative and clipped to 0..255 like IDG, by the
    registered layer ``fer_studio>RandomBrightnessScale`` (Keras'
    ``RandomBrightness`` adds an offset instead). No Lambda layers and no
    backend-specific ops, so it runs under any Keras backend. The layers act
    only when called with ``training=True``. Unlike IDG, each transformation
    resamples the image separately, which blurs slightly more.

    Args:
        config: The augmentation settings (the engine field is ignored).
        seed: Makes the random draws reproducible; each layer gets its own seed.

    Returns:
        A ``keras.Sequential`` mapping float ``(N, 48, 48, 1)`` images in 0..255
        to images of the same shape and range (an ``Identity`` layer if the
        config changes nothing).

    Raises:
        ValueError: If the config is invalid.
    """
    config.validate()
    import keras

    def layer_seed(offset: int) -> int | None:
        return None if seed is None else int(seed) + offset

    layers: list = []
    if config.horizontal_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=layer_seed(0)))
    if config.width_shift or config.height_shift:
        layers.append(
            keras.layers.RandomTranslation(
                height_factor=(-config.height_shift, config.height_shift),
                width_factor=(-config.width_shift, config.width_shift),
                fill_mode="nearest",
                interpolation="bilinear",
                seed=layer_seed(1),
            )
        )
    if config.zoom:
        layers.append(
            keras.layers.RandomZoom(
                height_factor=(-config.zoom, config.zoom),
                width_factor=(-config.zoom, config.zoom),
                fill_mode="nearest",
                interpolation="bilinear",
                seed=layer_seed(2),
            )
        )
    if config.rotation:
        fraction = config.rotation / 360.0
        layers.append(
            keras.layers.RandomRotation(
                factor=(-fraction, fraction),
                fill_mode="nearest",
                interpolation="bilinear",
                seed=layer_seed(3),
            )
        )
    if config.brightness:
        layers.append(_brightness_layer_class()(factor=config.brightness, seed=layer_seed(4)))
    if not layers:
        layers.append(keras.layers.Identity())
    return keras.Sequential(layers, name="augmentation")


def augment_batch(images: np.ndarray, config: AugmentConfig, seed: int | None = None) -> np.ndarray:
    """Augment a stack of faces with the configured engine.

    Deterministic for a given seed. The IDG engine draws from NumPy's global
    random state; this function restores that state afterwards.

    Args:
        images: ``(N, 48, 48)`` uint8 faces (any ``(N, H, W)`` works).
        config: The augmentation settings.
        seed: Random seed; ``None`` gives different results on each call.

    Returns:
        A new ``(N, H, W)`` uint8 array; with engine ``"none"`` an unchanged copy.

    Raises:
        ValueError: If ``images`` is not ``(N, H, W)`` or the config is invalid.
    """
    config.validate()
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"expected faces of shape (N, H, W), got {images.shape}")
    if config.engine == "none" or len(images) == 0:
        return np.array(images, dtype=np.uint8, copy=True)
    x = images.astype(np.float32)[..., None]
    if config.engine == "idg":
        augmented = _augment_with_idg(make_image_data_generator(config), x, seed)
    else:
        import keras

        layers = make_augmentation_layers(config, seed=seed)
        augmented = keras.ops.convert_to_numpy(layers(x, training=True))
    if config.erasing:
        augmented = erase_random_rectangles(np.array(augmented, dtype=np.float32), config.erasing, np.random.default_rng(seed))
    return _to_uint8(augmented[..., 0])


def erase_random_rectangles(batch: np.ndarray, probability: float, rng: np.random.Generator) -> np.ndarray:
    """Random erasing: fill one random rectangle of each face with noise, with probability ``probability``.

    Args:
        batch: Float ``(B, H, W, 1)`` (or ``(B, H, W)``) faces in 0..255; changed in place.
        probability: Chance that a face is erased, in [0, 1].
        rng: The random source (seed it for reproducible batches).

    Returns:
        ``batch``. A rectangle covers :data:`ERASING_AREA` of the face with an
        aspect ratio in :data:`ERASING_ASPECT` (log-uniform), like the paper;
        a draw that does not fit is tried again, up to 10 times.
    """
    height, width = batch.shape[1:3]
    for index in np.flatnonzero(rng.random(len(batch)) < probability):
        face = batch[index]  # a view: writes land in the batch
        for _ in range(10):
            area = rng.uniform(*ERASING_AREA) * height * width
            aspect = math.exp(rng.uniform(math.log(ERASING_ASPECT[0]), math.log(ERASING_ASPECT[1])))
            rows, cols = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if 0 < rows < height and 0 < cols < width:
                top, left = rng.integers(0, height - rows + 1), rng.integers(0, width - cols + 1)
                face[top:top + rows, left:left + cols] = rng.uniform(0.0, 255.0, face[top:top + rows, left:left + cols].shape)
                break
    return batch


def make_training_batches(
    images: np.ndarray,
    labels: np.ndarray,
    config: AugmentConfig,
    batch_size: int,
    seed: int,
    class_weight: dict[int, float] | None = None,
    start_epoch: int = 0,
) -> TrainingBatches:
    """Make the shuffled, augmented batches that ``model.fit`` trains on.

    Every engine feeds one ``keras.utils.PyDataset`` with one worker (Keras'
    TF backend still prepares batches on a background thread while the model
    trains; 2 worker threads or processes measured slower on 2 cores):

    - ``"idg"``: each image goes through ``ImageDataGenerator.random_transform``
      as ``ImageDataGenerator.flow`` does, with NumPy's global random state
      seeded per batch from ``(seed, epoch, batch)`` and restored afterwards.
      (``flow`` itself seeds from a count of the batches it has served since
      it was made, so a resumed run would replay epoch 1's transformations.)
    - ``"layers"``: :func:`make_augmentation_layers` applied to each NumPy
      batch through a compiled function (``tf.function`` or ``jax.jit``,
      chosen by Keras), its seed state set per batch from ``(seed, epoch,
      batch)``, so the saved model holds no augmentation.
    - ``"none"``: shuffled, unchanged batches.

    Measured on the 2-core development machine (``bench/bench_augment.py``):
    the layers make batches 1.6-3x faster than IDG, but inside ``model.fit``
    on a real CNN both cost little because the training step dominates
    (IDG 0.92-1.01x, layers 0.72-1.01x the speed without augmentation, under
    varying machine load). The layers placed inside the model itself (not
    done here: the saved model would then carry them) were never slower.

    See :class:`TrainingBatches` for how to pass the result to ``fit``.

    Args:
        images: ``(N, 48, 48)`` uint8 training faces.
        labels: ``(N,)`` integer class indices (batches carry int64 sparse
            labels) or ``(N, classes)`` one-hot rows (batches carry float32 rows).
        config: The augmentation settings.
        batch_size: Images per batch, at least 1.
        seed: Seeds the shuffling and the augmentation.
        class_weight: Optional weight per class index; when given every batch
            carries per-sample weights and ``fit`` must not get ``class_weight``
            too. Passing ``class_weight`` to ``fit`` instead works the same.
        start_epoch: The 0-based epoch the first batches belong to: a run
            resumed after ``k`` finished epochs passes ``k``.

    Returns:
        A :class:`TrainingBatches`.

    Raises:
        ValueError: For mismatched or empty inputs, a bad batch size, a config
            out of range, or class weights missing a class present in ``labels``.
    """
    config.validate()
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim != 3:
        raise ValueError(f"expected training faces of shape (N, H, W), got {images.shape}")
    if labels.ndim not in (1, 2) or len(labels) != len(images):
        raise ValueError(
            f"expected one label per face, (N,) class indices or (N, classes) one-hot: "
            f"{len(images)} faces but labels of shape {labels.shape}"
        )
    if len(images) == 0:
        raise ValueError("there are no training images; load a dataset with a training split first")
    if labels.ndim == 1 and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"(N,) labels must be integer class indices, got dtype {labels.dtype}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if isinstance(start_epoch, bool) or not isinstance(start_epoch, (int, np.integer)) or start_epoch < 0:
        raise ValueError(f"start_epoch must be an integer >= 0, got {start_epoch!r}")
    batch_size = int(batch_size)
    labels = labels.astype(np.int64) if labels.ndim == 1 else labels.astype(np.float32)
    sample_weight = None if class_weight is None else _sample_weights(labels, class_weight)
    steps = math.ceil(len(images) / batch_size)

    if config.engine == "idg":
        augment = _idg_augmenter(config)
    else:
        augment = None if config.engine == "none" else _compiled_augmenter(config, seed)
    if augment is not None and config.erasing:
        augment = _with_erasing(augment, config.erasing)
    data = _shuffled_batches_class()(images, labels, batch_size, seed, augment, sample_weight, int(start_epoch))
    return TrainingBatches(
        data=data,
        steps_per_epoch=steps,
        batch_size=batch_size,
        engine=config.engine,
        weighted=sample_weight is not None,
    )


def _to_uint8(images: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(images), 0, 255).astype(np.uint8)


def _augment_with_idg(generator: Any, x: np.ndarray, seed: int | None) -> np.ndarray:
    """Run IDG on float ``(N, H, W, 1)`` images without leaking its global reseeding."""
    saved_state = np.random.get_state()
    try:
        if seed is not None:
            np.random.seed(int(seed) % 2**32)
        return np.stack([generator.random_transform(image) for image in x])
    finally:
        if seed is not None:
            np.random.set_state(saved_state)


def _sample_weights(labels: np.ndarray, class_weight: dict[int, float]) -> np.ndarray:
    if labels.ndim == 2:  # one-hot: weigh by the labelled class, as Keras does
        labels = np.argmax(labels, axis=1)
    present = sorted(int(c) for c in np.unique(labels))
    missing = [c for c in present if c not in class_weight]
    if missing:
        raise ValueError(
            f"class_weight has no weight for class(es) {missing} present in the labels; "
            "give a weight for every class index"
        )
    bad = {c: w for c, w in class_weight.items() if not (np.isfinite(w) and w >= 0)}
    if bad:
        raise ValueError(f"class weights must be finite and >= 0; got {bad}")
    table = np.zeros(max(present) + 1, dtype=np.float32)
    for index in present:
        table[index] = float(class_weight[index])
    return table[labels]


@functools.cache
def _image_data_generator_class() -> type:
    try:
        from keras.src.legacy.preprocessing.image import ImageDataGenerator
    except ImportError:  # a Keras that moved its legacy code; TensorFlow still re-exports it
        from tensorflow.keras.preprocessing.image import ImageDataGenerator
    return ImageDataGenerator


@functools.cache
def _idg_swaps_shift_axes() -> bool:
    """Probe whether the installed IDG's ``width_shift_range`` moves rows instead of columns."""
    probe = np.zeros((16, 16, 1), np.float32)
    probe[7:9, 7:9] = 255.0
    generator = _image_data_generator_class()(width_shift_range=0.25)
    saved_state = np.random.get_state()
    try:
        for seed in range(10):  # a draw that rounds to no shift at all is unlikely but possible
            moved = np.argwhere(generator.random_transform(probe, seed=seed)[..., 0] > 127).mean(axis=0) - 7.5
            if np.abs(moved).max() >= 1:
                return bool(abs(moved[0]) > abs(moved[1]))
        return False
    finally:
        np.random.set_state(saved_state)


@functools.cache
def _brightness_layer_class() -> type:
    """Define (once) and register the multiplicative brightness layer."""
    import keras

    @keras.saving.register_keras_serializable(package="fer_studio")
    class RandomBrightnessScale(keras.layers.Layer):
        """Multiply each image by a factor drawn from ``[1 - factor, 1 + factor]``, clip to 0..255.

        The brightness change of IDG's ``brightness_range`` (PIL's
        ``ImageEnhance.Brightness``) on 0..255 images; active only in training.
        """

        def __init__(self, factor: float, seed: int | None = None, **kwargs):
            super().__init__(**kwargs)
            self.factor = float(factor)
            self.seed = seed
            self.seed_generator = keras.random.SeedGenerator(seed)
            self.supports_masking = True

        def call(self, images, training=True):
            if not training:
                return images
            images = keras.ops.convert_to_tensor(images, dtype=self.compute_dtype)
            shape = (keras.ops.shape(images)[0], 1, 1, 1)
            scale = keras.random.uniform(
                shape,
                minval=1.0 - self.factor,
                maxval=1.0 + self.factor,
                dtype=self.compute_dtype,
                seed=self.seed_generator,
            )
            return keras.ops.clip(images * scale, 0.0, 255.0)

        def compute_output_shape(self, input_shape):
            return input_shape

        def get_config(self):
            return {**super().get_config(), "factor": self.factor, "seed": self.seed}

    return RandomBrightnessScale


def batch_key(seed: int, epoch: int, index: int) -> int:
    """A 31-bit seed for batch ``index`` of (0-based) ``epoch``, from the run's ``seed`` alone."""
    return int(np.random.SeedSequence([int(seed) % 2**32, int(epoch), int(index)]).generate_state(1)[0] >> 1)


def _idg_augmenter(config: AugmentConfig) -> Callable[[np.ndarray, int], np.ndarray]:
    """Return a thread-safe ``augment(batch, key)`` running IDG's transforms seeded by ``key``."""
    generator = make_image_data_generator(config)
    lock = threading.Lock()  # NumPy's global state is shared; batches must not race on it

    def augment(batch: np.ndarray, key: int) -> np.ndarray:
        with lock:
            return _augment_with_idg(generator, batch, key).astype(np.float32, copy=False)

    return augment


def _with_erasing(augment: Callable[[np.ndarray, int], np.ndarray], probability: float) -> Callable[[np.ndarray, int], np.ndarray]:
    """``augment`` followed by :func:`erase_random_rectangles`, seeded by the same batch key."""

    def augment_and_erase(batch: np.ndarray, key: int) -> np.ndarray:
        augmented = np.array(augment(batch, key), dtype=np.float32)  # a copy: never erase the caller's images
        return erase_random_rectangles(augmented, probability, np.random.default_rng([key, 1]))

    return augment_and_erase


def _compiled_augmenter(config: AugmentConfig, seed: int) -> Callable[[np.ndarray, int], np.ndarray]:
    """Return a thread-safe ``augment(batch, key)`` for float ``(B, 48, 48, 1)`` NumPy batches.

    The layers sit in a tiny model whose ``call`` always trains, so
    ``predict_on_batch`` runs them compiled by the active backend. Before each
    batch every layer's seed state is set to ``(its seed, key)``, so a batch's
    transformations depend on its key only, not on how many batches came before.
    """
    import keras

    layers = make_augmentation_layers(config, seed=seed)

    class _AlwaysTraining(keras.Model):
        def __init__(self, augmentation, **kwargs):
            super().__init__(**kwargs)
            self.augmentation = augmentation

        def call(self, inputs, training=None):
            return self.augmentation(inputs, training=True)

    model = _AlwaysTraining(layers, name="augmenter")
    generators = [generator for layer in layers.layers for generator in getattr(layer, "_seed_generators", [])]
    base_seeds = [int(keras.ops.convert_to_numpy(generator.state)[0]) for generator in generators]
    lock = threading.Lock()  # the seed state is shared; keep batches from racing on it

    def augment(batch: np.ndarray, key: int) -> np.ndarray:
        with lock:
            for generator, base in zip(generators, base_seeds):
                generator.state.assign(np.array([base, key], dtype=generator.state.dtype))
            augmented = np.asarray(model.predict_on_batch(batch), dtype=np.float32)
        # Interpolation may overshoot by float rounding; keep the documented 0..255.
        return np.clip(augmented, 0.0, 255.0, out=augmented)

    return augment


@functools.cache
def _shuffled_batches_class() -> type:
    """Define (once) the PyDataset used by the ``"layers"`` and ``"none"`` engines."""
    import keras

    class ShuffledBatches(keras.utils.PyDataset):
        """Batches of ``(x, y[, sample_weight])``, reshuffled at every epoch end.

        Batch ``i`` of epoch ``e`` depends on ``(seed, e, i)`` only.
        """

        def __init__(self, images, labels, batch_size, seed, augment, sample_weight, start_epoch=0):
            super().__init__()
            self.images = images
            self.labels = labels
            self.batch_size = batch_size
            self.seed = int(seed)
            self.augment = augment
            self.sample_weight = sample_weight
            self.epoch = int(start_epoch)
            self.order = self._permutation()

        def _permutation(self) -> np.ndarray:
            rng = np.random.default_rng([self.seed % 2**32, self.epoch])
            return rng.permutation(len(self.images))

        def __len__(self) -> int:
            return math.ceil(len(self.images) / self.batch_size)

        def __getitem__(self, index: int):
            if not 0 <= index < len(self):
                raise IndexError(f"batch {index} out of range for {len(self)} batches")
            rows = self.order[index * self.batch_size : (index + 1) * self.batch_size]
            x = self.images[rows].astype(np.float32)[..., None]
            if self.augment is not None:
                x = self.augment(x, batch_key(self.seed, self.epoch, index))
            if self.sample_weight is None:
                return x, self.labels[rows]
            return x, self.labels[rows], self.sample_weight[rows]

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = self._permutation()

    return ShuffledBatches

