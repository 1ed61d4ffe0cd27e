"""Model zoo: a name -> builder registry behind one :func:`build` call.

Every builder is a Keras 3 functional factory ``(input_shape, num_classes,
**hyperparameters) -> keras.Model`` that starts with ``Rescaling(1/255)`` (the
model input is raw 0..255 gray, see ``core.preprocess``) and ends in a softmax.
No ``tf.*`` ops and no Lambda layers, so the same code runs on the TensorFlow
and JAX backends and loads in safe mode.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

from core.labels import IMAGE_SIZE, NUM_CLASSES

INPUT_SHAPE: tuple[int, int, int] = (IMAGE_SIZE, IMAGE_SIZE, 1)


@dataclass(frozen=True)
class ModelSpec:
    """A registered architecture.

    Attributes:
        name: Registry key.
        builder: The factory function.
        summary: One line for menus: origin and what it is.
        recipe: Training settings its origin used (CLI/form defaults).
    """

    name: str
    builder: Callable[..., Any]
    summary: str
    recipe: dict

    def hyperparameters(self) -> dict[str, Any]:
        """The builder's hyperparameters and their defaults, e.g. ``{"width": 32, ..., "crop": 0}``."""
        parameters = list(inspect.signature(self.builder).parameters.values())[2:]  # after input_shape, num_classes
        return {parameter.name: parameter.default for parameter in parameters
                if parameter.default is not inspect.Parameter.empty}


_REGISTRY: dict[str, ModelSpec] = {}


def register(name: str, summary: str, **recipe: Any) -> Callable:
    """Decorator adding a builder to the registry under ``name``."""

    def decorate(builder: Callable) -> Callable:
        _REGISTRY[name] = ModelSpec(name, builder, summary, dict(recipe))
        return builder

    return decorate


def list_models() -> list[ModelSpec]:
    """Return every registered model, default first."""
    return sorted(_REGISTRY.values(), key=lambda spec: (spec.name != DEFAULT_MODEL, spec.name))


def get_spec(name: str) -> ModelSpec:
    """Return the spec registered under ``name``.

    Raises:
        ValueError: For an unknown name; the message lists the known ones.
    """
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown model {name!r}; known models: {known}") from None


def build(name: str, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = NUM_CLASSES, **hyperparameters: Any):
    """Build a fresh, uncompiled model.

    Args:
        name: A registered model name (see :func:`list_models`).
        input_shape: ``(height, width, channels)`` of one input image.
        num_classes: Number of softmax outputs.
        **hyperparameters: Passed to the builder (``width``, ``dropout_rate`` ...).

    Raises:
        ValueError: Unknown model name, or a hyperparameter the builder does not take.
    """
    spec = get_spec(name)
    try:
        return spec.builder(input_shape, num_classes, **hyperparameters)
    except TypeError as error:
        raise ValueError(f"model {name!r} does not accept {sorted(hyperparameters)}: {error}") from None


def _input(input_shape: tuple[int, int, int], crop: int = 0):
    """The model's input and its rescaled tensor; with ``crop``, only the centre ``crop x crop`` window goes on.

    A centre crop inside the model (a ``Cropping2D`` layer) is the train-on-crops half of the published
    FER2013 VGG recipe without a second preprocessing path: the model still
    takes the whole 48x48 face, the training batches' random shifts move the
    face under the fixed window (a shift of up to ``(48 - crop) / 2`` pixels
    is a random crop), and at test time the window is the centre crop. The
    convolutions then see ``(crop / 48)**2`` of the pixels: 0.69x for 40.

    Raises:
        ValueError: ``crop`` is not 0 (off) or between 8 and the input's smaller side.
    """
    import keras

    inputs = keras.Input(shape=input_shape, name="face")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    crop = check_crop(crop, min(input_shape[0], input_shape[1]))
    if crop:
        # Cropping2D, not keras.layers.CenterCrop: CenterCrop is a preprocessing layer whose call defaults
        # to training=True, and Keras 3.15 passes that on to the layers after it when a model is called
        # without `training` (as model.export does): the ONNX export then normalised with batch statistics.
        (top, bottom), (left, right) = [((side - crop) // 2, side - crop - (side - crop) // 2)
                                        for side in input_shape[:2]]
        x = keras.layers.Cropping2D(((top, bottom), (left, right)), name="center_crop")(x)
    return inputs, x


def centre_crop_of(model: Any) -> tuple[int, int] | None:
    """``(height, width)`` of the centre window that a model's first cropping layer keeps (``fer_vgg`` with
    ``crop``: ``Cropping2D``; a ``CenterCrop`` also counts), or None when the network sees the whole input."""
    for layer in getattr(model, "layers", ()):
        kind = type(layer).__name__
        if kind == "CenterCrop":
            return int(layer.height), int(layer.width)
        if kind == "Cropping2D":
            (top, bottom), (left, right) = layer.cropping
            height, width = layer.input.shape[1:3]
            return int(height) - top - bottom, int(width) - left - right
    return None


def check_crop(crop: Any, side: int = IMAGE_SIZE) -> int:
    """``crop`` as an int if it is 0 (off) or a window between 8 and ``side - 1`` pixels.

    Raises:
        ValueError: Anything else.
    """
    if isinstance(crop, bool) or not isinstance(crop, (int, float)) or crop != int(crop) \
            or not (crop == 0 or 8 <= crop < side):
        raise ValueError(f"crop must be 0 (the whole face) or a whole number of pixels from 8 to {side - 1}, "
                         f"got {crop!r}")
    return int(crop)


FER_VGG_STAGES = 4


def check_convs(convs: Any) -> tuple[int, ...]:
    """``fer_vgg``'s ``convs`` as one count per stage: a whole number from 1 to 6, or a list of four of them.

    Raises:
        ValueError: Anything else.
    """
    def whole(value: Any) -> bool:
        return not isinstance(value, bool) and isinstance(value, (int, float)) and value == int(value) and 1 <= value <= 6

    if whole(convs):
        return (int(convs),) * FER_VGG_STAGES
    if isinstance(convs, (list, tuple)) and len(convs) == FER_VGG_STAGES and all(whole(value) for value in convs):
        return tuple(int(value) for value in convs)
    raise ValueError(f"convs must be a number of conv blocks per stage from 1 to 6, or a list of {FER_VGG_STAGES} "
                     f"such numbers (e.g. [3, 3, 3, 2]), got {convs!r}")


def _conv_bn_relu(x, filters: int, kernel_size: int = 3, padding: str = "same", regularizer=None, use_bn: bool = True):
    from keras import layers

    x = layers.Conv2D(filters, kernel_size, padding=padding, use_bias=not use_bn, kernel_regularizer=regularizer)(x)
    if use_bn:
        x = layers.BatchNormalization()(x)
    return layers.Activation("relu")(x)


def _softmax_head(x, num_classes: int):
    from keras import layers

    # float32 output keeps the softmax stable under mixed precision.
    return layers.Dense(num_classes, activation="softmax", dtype="float32", name="emotion")(x)


DEFAULT_MODEL = "fer_vgg"


@register(
    "fer_vgg",
    "FER Studio's network: 4-stage VGG (2 conv+BN per stage; --param convs=[3,3,3,2] gives the default bundled "
    "model's depth), flatten head; fast enough for CPU training",
    # The bundled model's recipe. 40 epochs: 18 gave 64.3% on PublicTest, 40 gave 68.0%.
    optimizer="adam", learning_rate=1e-3, batch_size=64, epochs=40, lr_schedule="cosine", label_smoothing=0.1,
)
def build_fer_vgg(input_shape, num_classes, width: int = 32, dropout_rate: float = 0.4, dense_units: int = 256,
                  crop: int = 0, convs: int | list = 2):
    """Four stages of two 3x3 conv+BN+ReLU, widths ``width * (1, 2, 4, 8)``; 48 -> 3x3 maps.

    ``crop``: train and predict on the centre ``crop x crop`` window of the
    face (40: the published recipe's crop size, 40 -> 2x2 maps); 0 = the whole face.
    ``convs``: conv+BN+ReLU blocks per stage, one number for all four or a list
    of four (``[3, 3, 3, 2]``); a deeper net can start from a trained shallower
    one (:mod:`core.grow`).
    """
    import keras
    from keras import layers

    per_stage = check_convs(convs)
    inputs, x = _input(input_shape, crop)
    for stage in range(4):
        for _ in range(per_stage[stage]):
            x = _conv_bn_relu(x, width * 2**stage)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(dropout_rate / 4 * (stage + 1) / 2)(x)
    x = layers.Flatten()(x)
    x = layers.Dense(dense_units, use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.Dropout(dropout_rate)(x)
    return keras.Model(inputs, _softmax_head(x, num_classes), name="fer_vgg")


@register(
    "article_cnn",
    "Seed A: the 2018 article's 13-conv VGG-like CNN (63.17% on the Kaggle private leaderboard)",
    optimizer="adam", learning_rate=1e-3, batch_size=64, epochs=100, lr_schedule="plateau",
    plateau_factor=0.9, plateau_patience=3, early_stopping_patience=6,
)
def build_article_cnn(input_shape, num_classes, dropout_rate: float = 0.5, l2: float = 0.01):
    """Conv64(valid, L2)-Conv64-BN-pool, 3x[Conv128-BN], 3x[Conv256-BN], 3x[Conv512-BN], dense 512-256-128-64."""
    import keras
    from keras import layers, regularizers

    inputs, x = _input(input_shape)
    x = layers.Conv2D(64, 3, activation="relu", kernel_regularizer=regularizers.L2(l2))(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Dropout(dropout_rate)(x)
    for filters in (128, 256, 512):
        for _ in range(3):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
            x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(dropout_rate)(x)
    x = layers.Flatten()(x)
    for units in (512, 256, 128, 64):
        x = layers.Dense(units, activation="relu")(x)
        x = layers.Dropout(dropout_rate)(x)
    return keras.Model(inputs, _softmax_head(x, num_classes), name="article_cnn")


@register(
    "notebook_cnn",
    "Seed B: the scikit-plot/plotly notebook CNN (5,810,183 params, 62.66%)",
    optimizer="adam", learning_rate=1e-4, batch_size=64, epochs=30, lr_schedule="constant",
    early_stopping_patience=5,
)
def build_notebook_cnn(input_shape, num_classes, dropout_rate: float = 0.25, l2: float = 0.01):
    """Conv32-Conv64-BN-pool, Conv128 5x5, 3x[Conv512 L2], dense 256-512 with BN."""
    import keras
    from keras import layers, regularizers

    inputs, x = _input(input_shape)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Dropout(dropout_rate)(x)
    x = layers.Conv2D(128, 5, padding="same", activation="relu")(x)
    x = layers.BatchNormalization()(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Dropout(dropout_rate)(x)
    for _ in range(3):
        x = layers.Conv2D(512, 3, padding="same", activation="relu", kernel_regularizer=regularizers.L2(l2))(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D()(x)
        x = layers.Dropout(dropout_rate)(x)
    x = layers.Flatten()(x)
    for units in (256, 512):
        x = layers.Dense(units, activation="relu")(x)
        x = layers.BatchNormalization()(x)
        x = layers.Dropout(dropout_rate)(x)
    return keras.Model(inputs, _softmax_head(x, num_classes), name="notebook_cnn")


# PyTorch's RReLU samples its negative slope from U(1/8, 1/3) while training and
# uses the mean at inference; Keras has no RReLU, so the fixed mean slope stands in.
_RRELU_SLOPE = (1 / 8 + 1 / 3) / 2


@register(
    "face_cnn",
    "Seed C: the PyTorch thesis FaceCNN (conv 64-128-256, head 4096-1024-256, RReLU)",
    optimizer="sgd", learning_rate=0.01, momentum=0.9, batch_size=128, epochs=100, lr_schedule="plateau",
)
def build_face_cnn(input_shape, num_classes, dropout_rate: float = 0.5):
    """Three Conv3x3-BN-RReLU-pool blocks, then Dropout .2, 9216->4096->1024->256->7."""
    import keras
    from keras import initializers, layers

    inputs, x = _input(input_shape)
    for filters in (64, 128, 256):
        x = layers.Conv2D(filters, 3, padding="same", kernel_initializer=initializers.RandomNormal(stddev=0.04))(x)
        x = layers.BatchNormalization()(x)
        x = layers.LeakyReLU(negative_slope=_RRELU_SLOPE)(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.2)(x)
    x = layers.Dense(4096)(x)
    x = layers.LeakyReLU(negative_slope=_RRELU_SLOPE)(x)
    x = layers.Dropout(dropout_rate)(x)
    x = layers.Dense(1024)(x)
    x = layers.LeakyReLU(negative_slope=_RRELU_SLOPE)(x)
    x = layers.Dense(256)(x)
    x = layers.LeakyReLU(negative_slope=_RRELU_SLOPE)(x)
    return keras.Model(inputs, _softmax_head(x, num_classes), name="face_cnn")


@register(
    "vgg_small",
    "Seed C: the thesis' small VGG, blocks (2x32, 3x64, 3x128), head 4096-4096",
    optimizer="sgd", learning_rate=0.01, momentum=0.9, batch_size=128, epochs=60, lr_schedule="constant",
)
def build_vgg_small(input_shape, num_classes, dropout_rate: float = 0.5, dense_units: int = 4096):
    """Conv3x3-ReLU blocks (2,32), (3,64), (3,128), each followed by MaxPool 2; 128*6*6 -> 4096 -> 4096 -> 7."""
    import keras
    from keras import layers

    inputs, x = _input(input_shape)
    for convs, filters in ((2, 32), (3, 64), (3, 128)):
        for _ in range(convs):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    for _ in range(2):
        x = layers.Dense(dense_units, activation="relu")(x)
        x = layers.Dropout(dropout_rate)(x)
    return keras.Model(inputs, _softmax_head(x, num_classes), name="vgg_small")


def _basic_block(x, filters: int, stride: int):
    from keras import layers

    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        shortcut = layers.Conv2D(filters, 1, strides=stride, use_bias=False)(x)
        shortcut = layers.BatchNormalization()(shortcut)
    x = layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Add()([x, shortcut])
    return layers.Activation("relu")(x)


@register(
    "resnet18",
    "Seed C: ResNet-18 style (7x7/2 stem, 4 stages of 2 basic blocks 64-512, GAP)",
    optimizer="sgd", learning_rate=0.01, momentum=0.9, batch_size=128, epochs=60, lr_schedule="constant",
)
def build_resnet18(input_shape, num_classes, stem_stride: int = 2):
    """The seed's ResNet-18; ``stem_stride=1`` drops the stem's and max-pool's downsampling for 48x48 detail."""
    import keras
    from keras import layers

    inputs, x = _input(input_shape)
    x = layers.Conv2D(64, 7, strides=stem_stride, padding="same", use_bias=False)(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.MaxPooling2D(3, strides=stem_stride, padding="same")(x)
    for stage, filters in enumerate((64, 128, 256, 512)):
        x = _basic_block(x, filters, stride=1 if stage == 0 else 2)
        x = _basic_block(x, filters, stride=1)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, _softmax_head(x, num_classes), name="resnet18")


@register(
    "mini_xception",
    "mini-Xception (Arriaga et al. 2017), the family behind the `fer` package, ~58k params; "
    "4x faster than fer_vgg, ahead of it in ~10-minute CPU runs, behind from ~20 minutes (bench_budget)",
    optimizer="adam", learning_rate=1e-3, batch_size=32, epochs=100, lr_schedule="plateau",
    plateau_factor=0.1, plateau_patience=12, early_stopping_patience=50,
)
def build_mini_xception(input_shape, num_classes, l2: float = 0.01):
    """Two 8-filter convs, four residual depthwise-separable modules (16-128), conv to classes, GAP, softmax."""
    import keras
    from keras import layers, regularizers

    reg = regularizers.L2(l2)
    inputs, x = _input(input_shape)
    for _ in range(2):
        x = layers.Conv2D(8, 3, use_bias=False, kernel_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
    for filters in (16, 32, 64, 128):
        # The strided 1x1 shortcut, as "take every other pixel, then a 1x1 conv": the
        # same function and weights, but oneDNN's strided 1x1 backward-weights kernel
        # writes out of bounds when it reads fewer than 16 channels (the first
        # shortcut reads 8) and crashed TensorFlow's CPU training mid-epoch.
        residual = layers.MaxPooling2D(1, strides=2, padding="same")(x)
        residual = layers.Conv2D(filters, 1, use_bias=False)(residual)
        residual = layers.BatchNormalization()(residual)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, depthwise_regularizer=reg, pointwise_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.Activation("relu")(x)
        x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False, depthwise_regularizer=reg, pointwise_regularizer=reg)(x)
        x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        x = layers.Add()([x, residual])
    x = layers.Conv2D(num_classes, 3, padding="same")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Activation("softmax", dtype="float32", name="emotion")(x)
    return keras.Model(inputs, outputs, name="mini_xception")
