"""Grad-CAM: which parts of a 48x48 face made the model choose its emotion.

The map is HiResCAM (Draelos & Carin 2020), the Grad-CAM variant that
multiplies the last convolutional feature map by the gradient of the class
probability element by element (instead of by each channel's mean gradient),
sums over channels, keeps the positive part and upsamples to 48x48. For a
Flatten + Dense head like ``fer_vgg``'s, channel-mean weights cancel out and
plain Grad-CAM came out all zero on the bundled model; HiResCAM shows where
the evidence is, and equals Grad-CAM up to scale for global-pooling heads.

Gradients come from TensorFlow's ``GradientTape``: Keras 3 has no
backend-neutral gradient call, and FER Studio runs on the TensorFlow backend.
On another backend :func:`grad_cam` raises ``ValueError`` and everything else
(prediction included) keeps working. This is the only module of ``core`` that
uses TensorFlow directly.
"""

from __future__ import annotations

import weakref
from typing import Any

import cv2
import numpy as np

from core.labels import CLASS_NAMES, class_index
from core.model_io import LoadedModel
from core.preprocess import to_model_input

# Layers whose 4-D output is not a feature map worth explaining: inputs,
# in-model preprocessing and augmentation, pooling and dropout (which only
# repeat the conv features before them).
_SKIPPED_LAYER_TYPES = ("InputLayer", "Rescaling", "Normalization", "Resizing", "Pooling", "Dropout", "Random", "GaussianNoise", "GaussianDropout", "CenterCrop", "Cropping")

_grad_functions: "weakref.WeakKeyDictionary[Any, tuple[str, Any]]" = weakref.WeakKeyDictionary()


def find_last_conv_layer(model: Any) -> str:
    """Name of the last layer with a spatial ``(N, H, W, C)`` output (H, W >= 2) before the head.

    Pooling, dropout and preprocessing layers are passed over, so for a
    conv -> BN -> ReLU -> pool block this is the ReLU.

    Raises:
        ValueError: If the model has no such layer (a dense-only model).
    """
    for layer in reversed(model.layers):
        if any(skipped in type(layer).__name__ for skipped in _SKIPPED_LAYER_TYPES):
            continue
        shape = getattr(layer, "output", None)
        shape = getattr(shape, "shape", None)
        if shape is not None and len(shape) == 4 and (shape[1] or 0) >= 2 and (shape[2] or 0) >= 2:
            return layer.name
    raise ValueError(f"model {model.name!r} has no convolutional feature map to explain with Grad-CAM")


def grad_cam(loaded: LoadedModel, faces: np.ndarray, class_indices: np.ndarray | list[int] | None = None, *, layer_name: str | None = None) -> np.ndarray:
    """Grad-CAM heatmaps for a stack of faces.

    Args:
        loaded: A model from ``core.model_io.load_model``.
        faces: ``(N, 48, 48)`` (or one ``(48, 48)``) uint8 faces, the model's input.
        class_indices: FER2013 class index to explain per face; ``None``
            explains each face's predicted class.
        layer_name: Feature map to use; default :func:`find_last_conv_layer`.

    Returns:
        ``(N, 48, 48)`` float32 in [0, 1] (``(48, 48)`` for one face); each map
        is scaled so its maximum is 1. An all-zero map means no region
        raised the class's probability.

    Raises:
        ValueError: Wrong face shape, a class the model does not output, no
            conv layer, or a Keras backend other than TensorFlow.
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        raise ValueError(f"Grad-CAM needs the TensorFlow Keras backend; this process uses {keras.backend.backend()!r}")
    import tensorflow as tf

    members = getattr(loaded, "members", None)
    if members is not None:  # an ensemble: the mean of its members' maps for the ensemble's own class
        if class_indices is None:
            from core.model_io import predict_probabilities

            stack = np.asarray(faces)[None] if np.ndim(faces) == 2 else np.asarray(faces)
            class_indices = np.argmax(predict_probabilities(loaded, stack), axis=1)
            class_indices = class_indices[0] if np.ndim(faces) == 2 else class_indices
        maps = np.mean([grad_cam(member, faces, class_indices, layer_name=layer_name) for member in members], axis=0)
        return _normalize(maps) if maps.ndim == 2 else np.stack([_normalize(cam) for cam in maps])

    single = np.ndim(faces) == 2
    x = to_model_input(faces)
    size = x.shape[1:3]
    if class_indices is None:
        outputs = np.full(len(x), -1, np.int32)  # -1: the predicted class
    else:
        outputs = np.array([_output_index(loaded, int(index)) for index in np.atleast_1d(class_indices)], np.int32)
        if len(outputs) != len(x):
            raise ValueError(f"{len(outputs)} class indices for {len(x)} faces")
    compute = _grad_cam_function(loaded.model, layer_name)
    maps = compute(tf.constant(x), tf.constant(outputs)).numpy().astype(np.float32)
    top, left, height, width = _seen_window(loaded.model, size)
    heatmaps = np.zeros((len(maps), size[0], size[1]), np.float32)
    for heatmap, cam in zip(heatmaps, maps):
        heatmap[top:top + height, left:left + width] = cv2.resize(cam, (width, height), interpolation=cv2.INTER_LINEAR)
    heatmaps = np.stack([_normalize(heatmap) for heatmap in heatmaps])
    return heatmaps[0] if single else heatmaps


def _seen_window(model: Any, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the input the feature maps cover: the centre window of a
    cropping layer in the model (``fer_vgg`` with ``crop``), else the whole face.

    The map is placed over that window, and the border the model never sees stays 0.
    """
    from core.models import centre_crop_of

    height, width = size
    window = centre_crop_of(model)
    if window is None:
        return 0, 0, height, width
    crop_height, crop_width = min(window[0], height), min(window[1], width)
    return (height - crop_height) // 2, (width - crop_width) // 2, crop_height, crop_width


def overlay_heatmap(face: np.ndarray, heatmap: np.ndarray, *, alpha: float = 0.45, size: int = 192) -> np.ndarray:
    """Blend a Grad-CAM map over a face for display.

    Args:
        face: ``(48, 48)`` uint8 gray face.
        heatmap: ``(48, 48)`` float in [0, 1].
        alpha: Weight of the colour map (0 shows only the face).
        size: Output side in pixels (nearest-neighbour enlargement of the face).

    Returns:
        ``(size, size, 3)`` uint8 RGB; red = strong evidence, blue = none (JET colour map).
    """
    face_rgb = cv2.cvtColor(np.asarray(face, dtype=np.uint8), cv2.COLOR_GRAY2RGB)
    face_rgb = cv2.resize(face_rgb, (size, size), interpolation=cv2.INTER_NEAREST)
    heat = np.clip(np.asarray(heatmap, dtype=np.float32), 0.0, 1.0)
    heat = cv2.resize((heat * 255).astype(np.uint8), (size, size), interpolation=cv2.INTER_LINEAR)
    colored = cv2.cvtColor(cv2.applyColorMap(heat, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(colored, alpha, face_rgb, 1.0 - alpha, 0.0)


def _grad_cam_function(model: Any, layer_name: str | None) -> Any:
    """A compiled ``(x, output_indices) -> (N, h, w) Grad-CAM maps``, built once per model and layer.

    It runs as a ``tf.function`` graph, not eagerly: besides being faster,
    TensorFlow 2.21's eager oneDNN kernel for the input gradient of a 1x1
    stride-2 convolution (mini-Xception's and ResNet's shortcuts) corrupts the
    heap and aborts the process; the graph kernel is fine.
    """
    import keras
    import tensorflow as tf

    name = layer_name or find_last_conv_layer(model)
    cached = _grad_functions.get(model)
    if cached is not None and cached[0] == name:
        return cached[1]
    try:
        layer = model.get_layer(name)
    except ValueError:
        raise ValueError(f"model {model.name!r} has no layer {name!r}") from None
    grad_model = keras.Model(model.inputs, [layer.output, model.outputs[0]])

    @tf.function(reduce_retracing=True)
    def compute(x, outputs):
        with tf.GradientTape() as tape:
            features, probabilities = grad_model(x, training=False)
            predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            chosen = tf.gather(probabilities, tf.where(outputs < 0, predicted, outputs), axis=1, batch_dims=1)
        gradients = tape.gradient(chosen, features)
        return tf.nn.relu(tf.reduce_sum(gradients * features, axis=-1))

    _grad_functions[model] = (name, compute)
    return compute


def _output_index(loaded: LoadedModel, fer_index: int) -> int:
    """Model output column of FER2013 class ``fer_index``."""
    if not 0 <= fer_index < len(CLASS_NAMES):
        raise ValueError(f"class index {fer_index} is not a FER2013 class (0..{len(CLASS_NAMES) - 1})")
    for column, name in enumerate(loaded.class_names):
        if class_index(name) == fer_index:
            return column
    raise ValueError(f"the model has no output for {CLASS_NAMES[fer_index]!r}")


def _normalize(cam: np.ndarray) -> np.ndarray:
    peak = float(cam.max())
    return (cam / peak).astype(np.float32) if peak > 0 else np.zeros_like(cam, dtype=np.float32)
