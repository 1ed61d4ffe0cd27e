"""Precision and multi-device settings, for the TensorFlow and JAX backends."""

from __future__ import annotations

import contextlib
import json
import os
from typing import Iterator


def accelerator_count() -> int:
    """Number of GPUs the active Keras backend can use."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return len(tf.config.list_physical_devices("GPU"))
    if backend == "jax":
        import jax

        return sum(device.platform == "gpu" for device in jax.devices())
    return 0


def configure_precision(precision: str) -> str:
    """Set Keras' global dtype policy; return the policy name.

    ``auto`` uses ``mixed_float16`` when a GPU is present (faster, half the
    memory) and ``float32`` on CPU, where float16 math is slower.
    """
    import keras

    policy = "float32"
    if precision == "mixed" or (precision == "auto" and accelerator_count() > 0):
        policy = "mixed_float16"
    keras.mixed_precision.set_global_policy(policy)
    return policy


@contextlib.contextmanager
def distribution_scope(strategy: str) -> Iterator[None]:
    """Build and compile the model inside this scope.

    Args:
        strategy: ``none``; ``auto`` (all local GPUs when there are several);
            ``mirrored`` (``tf.distribute.MirroredStrategy`` over the local GPUs,
            or Keras' ``DataParallel`` on JAX); ``multiworker``
            (``tf.distribute.MultiWorkerMirroredStrategy``, cluster from ``TF_CONFIG``).

    Raises:
        ValueError: ``multiworker`` without ``TF_CONFIG`` or on a non-TF backend.
    """
    import keras

    backend = keras.backend.backend()
    wants_mirror = strategy == "mirrored" or (strategy == "auto" and accelerator_count() > 1)
    if strategy == "multiworker":
        if backend != "tensorflow":
            raise ValueError("strategy 'multiworker' needs KERAS_BACKEND=tensorflow")
        if "TF_CONFIG" not in os.environ:
            raise ValueError("strategy 'multiworker' needs TF_CONFIG describing the cluster, e.g. "
                             + json.dumps({"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}))
        import tensorflow as tf

        with tf.distribute.MultiWorkerMirroredStrategy().scope():
            yield
    elif wants_mirror and backend == "tensorflow":
        import tensorflow as tf

        with tf.distribute.MirroredStrategy().scope():
            yield
    elif wants_mirror and backend == "jax":
        keras.distribution.set_distribution(keras.distribution.DataParallel())
        yield
    else:
        yield
