"""Start a deeper ``fer_vgg`` from a trained shallower one without losing what it learned.

A trained ``fer_vgg`` (``convs=2``: two conv+BN+ReLU blocks per stage) stops
improving once its weights have converged; more capacity is the next step,
and training a deeper net from scratch on a CPU throws hours of training away.
:func:`grow_fer_vgg` copies every trained layer into a net with more blocks per
stage and starts each new block as the identity (Net2DeeperNet, Chen et al.
2016): its 3x3 kernel passes each channel through its centre tap, and its
batch normalisation undoes itself (``gamma = sqrt(moving_var + eps)``,
``beta = moving_mean``). The grown model therefore predicts exactly what the
source predicts in inference, and training starts where the source stopped.

In training mode batch normalisation uses each batch's statistics, so a new
block is the identity only when the batch statistics match its moving ones.
They are set to the mean and variance of the block's input, a ReLU of the
previous batch normalisation's output, whose training-mode distribution is
close to ``N(beta, gamma**2)`` per channel: the rectified-Gaussian moments of
that need no data.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["grow_fer_vgg", "stage_convs"]


def _weighted_layers(model: Any) -> list[Any]:
    kinds = ("Conv2D", "BatchNormalization", "Dense")
    return [layer for layer in model.layers if type(layer).__name__ in kinds]


def _stages(model: Any) -> tuple[list[list[tuple[Any, Any]]], list[Any]]:
    """``fer_vgg``'s (conv, batch-norm) pairs grouped by stage in order, and its layers after the convolutions.

    Raises:
        ValueError: The model is not built like ``fer_vgg`` (a conv not followed by a batch normalisation).
    """
    if model.name != "fer_vgg":
        raise ValueError(f"{model.name} is not built like fer_vgg: only fer_vgg grows deeper")
    layers = _weighted_layers(model)
    stages: list[list[tuple[Any, Any]]] = []
    last_side = None
    index = 0
    while index < len(layers) and type(layers[index]).__name__ == "Conv2D":
        conv = layers[index]
        norm = layers[index + 1] if index + 1 < len(layers) else None
        if norm is None or type(norm).__name__ != "BatchNormalization" or conv.use_bias:
            raise ValueError(f"{model.name} is not built like fer_vgg: {conv.name} is not a bias-free conv followed "
                             "by a batch normalisation")
        side = conv.output.shape[1]
        if side != last_side:
            stages.append([])
            last_side = side
        stages[-1].append((conv, norm))
        index += 2
    return stages, layers[index:]


def stage_convs(model: Any) -> tuple[int, ...]:
    """How many conv blocks each stage of a ``fer_vgg``-built model has, e.g. ``(2, 2, 2, 2)``."""
    return tuple(len(stage) for stage in _stages(model)[0])


def _relu_gaussian_moments(mean: np.ndarray, std: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of ``relu(z)`` for ``z ~ N(mean, std**2)``, per channel."""
    std = np.maximum(np.abs(std), 1e-6)
    a = mean / std
    pdf = np.exp(-0.5 * a * a) / math.sqrt(2 * math.pi)
    cdf = 0.5 * (1.0 + np.vectorize(math.erf)(a / math.sqrt(2.0)))
    first = mean * cdf + std * pdf
    second = (mean * mean + std * std) * cdf + mean * std * pdf
    return first, np.maximum(second - first * first, 0.0)


def _identity_block(conv: Any, norm: Any, previous_norm: Any) -> None:
    """Set ``conv`` and ``norm`` so that conv -> BN -> ReLU passes the (non-negative) input through unchanged."""
    kernel_shape = tuple(conv.kernel.shape)
    height, width, channels_in, channels_out = kernel_shape
    if channels_in != channels_out or height % 2 == 0 or width % 2 == 0:
        raise ValueError(f"cannot start {conv.name} ({kernel_shape}) as the identity")
    kernel = np.zeros(kernel_shape, dtype=np.float32)
    kernel[height // 2, width // 2] = np.eye(channels_in, dtype=np.float32)
    conv.set_weights([kernel])
    gamma, beta = (np.asarray(w, dtype=np.float64) for w in previous_norm.get_weights()[:2])
    mean, variance = _relu_gaussian_moments(beta, gamma)
    epsilon = float(norm.epsilon)
    norm.set_weights([np.sqrt(variance + epsilon).astype(np.float32), mean.astype(np.float32),
                      mean.astype(np.float32), variance.astype(np.float32)])


def grow_fer_vgg(source: Any, target: Any) -> dict:
    """Fill ``target`` (a ``fer_vgg`` with at least as many blocks per stage) from the trained ``source``.

    Each stage's first blocks take the source's weights in order; the blocks
    beyond them start as the identity (module docstring). The head is copied.

    Returns:
        ``{"convs_from": [...], "convs_to": [...]}``: blocks per stage before and after.

    Raises:
        ValueError: The two are not both ``fer_vgg`` nets with the same widths, head and
            number of stages, or the target has fewer blocks in some stage.
    """
    source_stages, source_head = _stages(source)
    target_stages, target_head = _stages(target)
    before = [len(stage) for stage in source_stages]
    after = [len(stage) for stage in target_stages]
    if len(before) != len(after) or any(b > a for b, a in zip(before, after)):
        raise ValueError(f"cannot grow {before} conv blocks per stage into {after}: the target needs as many "
                         "stages and at least as many blocks in each")
    for source_stage, target_stage in zip(source_stages, target_stages):
        for (source_conv, source_norm), (target_conv, target_norm) in zip(source_stage, target_stage):
            for source_layer, target_layer in ((source_conv, target_conv), (source_norm, target_norm)):
                _copy(source_layer, target_layer)
        previous_norm = source_stage[-1][1]
        for target_conv, target_norm in target_stage[len(source_stage):]:
            _identity_block(target_conv, target_norm, previous_norm)
    if len(source_head) != len(target_head):
        raise ValueError(f"the heads differ: {len(source_head)} weighted layers after the convolutions there, "
                         f"{len(target_head)} here")
    for source_layer, target_layer in zip(source_head, target_head):
        _copy(source_layer, target_layer)
    return {"convs_from": before, "convs_to": after}


def _copy(source_layer: Any, target_layer: Any) -> None:
    weights = source_layer.get_weights()
    want = [tuple(w.shape) for w in target_layer.get_weights()]
    got = [tuple(w.shape) for w in weights]
    if want != got:
        raise ValueError(f"{source_layer.name} {got} does not fit {target_layer.name} {want}: the widths or the "
                         "head differ; only the number of blocks per stage may")
    target_layer.set_weights(weights)
