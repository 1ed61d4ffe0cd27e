"""Precision and multi-device settings, for the TensorFlow and JAX backends."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
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


# JAX keeps compiled XLA programs here (under the FER Studio cache) unless JAX_COMPILATION_CACHE_DIR names a folder.
JAX_CACHE_FOLDER = "jax"


def use_jax_compilation_cache(cache_root: Path | None = None) -> Path | None:
    """Keep the JAX backend's compiled XLA programs on disk, so the next run in any process reuses them.

    Under JAX every new shape is compiled, down to each weight initializer:
    a tiny two-epoch run spends about 40 of its 60 s compiling, and the
    second run of the same model on the same machine takes 14 s instead of
    44 (measured on the 2-core CPU). The programs do not change what is
    computed. ``$JAX_COMPILATION_CACHE_DIR`` (read by JAX itself) wins over
    ``<cache_root>/jax``; with any other backend this does nothing. The
    folder grows by the programs of each new model and batch shape (about
    2 MB for a tiny run); JAX's own size cap needs the ``filelock`` package,
    which FER Studio does not install, so clearing the cache folder is the
    way to reclaim it.

    Args:
        cache_root: FER Studio's cache folder (``core.cache.default_cache_dir()`` when None).

    Returns:
        The folder in use, or None when the backend is not JAX.
    """
    import keras

    if keras.backend.backend() != "jax":
        return None
    import jax

    from core.cache import default_cache_dir

    folder = jax.config.jax_compilation_cache_dir
    if not folder:
        folder = str(Path(cache_root or default_cache_dir()) / JAX_CACHE_FOLDER)
        Path(folder).mkdir(parents=True, exist_ok=True)
        jax.config.update("jax_compilation_cache_dir", folder)
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        # JAX keeps only programs that took over a second to compile; most of the start-up is many short ones.
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    return Path(folder)


BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512_BF16 or AMX-BF16).

    Args:
        cpuinfo: Text of ``/proc/cpuinfo`` (read when None). On a system without
            it (macOS, Windows) the answer is False: bfloat16 would be emulated,
            which is much slower than float32.
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
                cpuinfo = handle.read()
        except OSError:
            return False
    flags: set[str] = set()
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    return any(flag in flags for flag in BF16_CPU_FLAGS)


def resolve_precision(precision: str, accelerators: int, native_bf16: bool) -> str:
    """Keras dtype policy for a requested precision.

    ``auto``: ``mixed_float16`` with a GPU; ``mixed_bfloat16`` on a CPU with
    native bfloat16 (1.28x faster than float32 through the training input
    pipeline on this project's AVX512_BF16 machine); ``float32`` elsewhere. ``mixed`` is ``mixed_float16``,
    ``bfloat16`` is ``mixed_bfloat16``, whatever the hardware.
    """
    if precision == "mixed":
        return "mixed_float16"
    if precision == "bfloat16":
        return "mixed_bfloat16"
    if precision == "auto":
        if accelerators > 0:
            return "mixed_float16"
        if native_bf16:
            return "mixed_bfloat16"
    return "float32"


def configure_precision(precision: str) -> str:
    """Set Keras' global dtype policy (see :func:`resolve_precision`); return the policy name."""
    import keras

    accelerators = accelerator_count()
    policy = resolve_precision(precision, accelerators, native_bf16=accelerators == 0 and cpu_has_native_bf16())
    keras.mixed_precision.set_global_policy(policy)
    return policy


@contextlib.contextmanager
def distribution_scope(strategy: str) -> Iterator[int]:
    """Build and compile the model inside this scope; it yields the number of replicas.

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

        chosen = tf.distribute.MultiWorkerMirroredStrategy()
        if chosen.extended._in_multi_worker_mode():
            _work_around_keras_multiworker()
        with chosen.scope():
            yield int(chosen.num_replicas_in_sync)
    elif wants_mirror and backend == "tensorflow":
        import tensorflow as tf

        chosen = tf.distribute.MirroredStrategy()
        with chosen.scope():
            yield int(chosen.num_replicas_in_sync)
    elif wants_mirror and backend == "jax":
        distribution = keras.distribution.DataParallel()
        keras.distribution.set_distribution(distribution)
        yield int(distribution.device_mesh.shape[0])
    else:
        yield 1


def multiworker_task(tf_config: str | None = None) -> tuple[int, int] | None:
    """``(index, workers)`` of this process in the ``TF_CONFIG`` cluster, or None without one.

    Worker 0 is the chief (there is no separate ``chief`` task in the clusters
    FER Studio starts): it alone writes the run folder the user sees.

    Raises:
        ValueError: ``TF_CONFIG`` that is not JSON or names no worker list.
    """
    text = os.environ.get("TF_CONFIG") if tf_config is None else tf_config
    if not text:
        return None
    try:
        config = json.loads(text)
        workers = list(config["cluster"]["worker"])
        index = int(config.get("task", {}).get("index", 0))
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"TF_CONFIG is not a cluster description ({error}); expected e.g. "
                         + json.dumps({"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}})) from error
    if not 0 <= index < len(workers):
        raise ValueError(f"TF_CONFIG's task index {index} is not one of its {len(workers)} workers")
    return index, len(workers)


_PATCHED_FOR_MULTIWORKER = False


def _work_around_keras_multiworker() -> None:
    """Make Keras 3.15's ``fit`` run under a MultiWorkerMirroredStrategy of two or more workers.

    Two bugs stop it (keras-team/keras#20585, open; a two-process test here hit both):
    before the first step ``fit`` averages the first batch over all workers
    only to learn its shapes, which fails eagerly on a distributed batch
    (``Attempt to convert a value (PerReplica ...)``); and every step averages
    the scalar loss and metrics with ``axis=0``, which a scalar does not have
    (``Invalid reduction dimension 0 for input with 0 dimensions``). The
    fixes: take the shapes from this worker's own part of the batch, and
    average scalars without an axis. Nothing changes for one worker or other
    strategies. Keras is pinned (requirements.txt), so these private hooks
    cannot move under us; the two-worker test in tests/core/test_distribute.py
    fails if a new Keras breaks them.
    """
    global _PATCHED_FOR_MULTIWORKER
    if _PATCHED_FOR_MULTIWORKER:
        return
    import tensorflow as tf
    from keras.src.backend.tensorflow import trainer as tf_trainer

    def local_part(value, strategy):
        if isinstance(value, tf.distribute.DistributedValues):
            return strategy.experimental_local_results(value)[0]
        return value

    def maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self._distribute_strategy is None:
            return
        if iterator is not None:
            for _, _, batches in iterator:
                data_batch = tf.nest.map_structure(lambda value: local_part(value, self.distribute_strategy), next(batches))
                break
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)

    original_reduce = tf_trainer.reduce_per_replica

    def reduce_per_replica(values, strategy, reduction):
        if reduction in ("auto", "mean") and tf_trainer._collective_all_reduce_multi_worker(strategy):
            def mean(value):
                if not (isinstance(value, tf.distribute.DistributedValues) or tf.is_tensor(value)):
                    return value
                scalar = len(local_part(value, strategy).shape) == 0
                return strategy.reduce("MEAN", value, axis=None if scalar else 0)

            return tf.nest.map_structure(mean, values)
        return original_reduce(values, strategy, reduction)

    tf_trainer.TensorFlowTrainer._maybe_symbolic_build = maybe_symbolic_build
    tf_trainer.reduce_per_replica = reduce_per_replica
    _PATCHED_FOR_MULTIWORKER = True


def validation_batch_size(val_images: int, replicas: int, preferred: int = 256) -> int:
    """Validation batch size that every replica of a mirrored run can digest.

    Keras 3.15 with TensorFlow 2.21 fails when the first validation batch
    cannot be split evenly over the replicas (``AddN ... must have the same
    size``: 7 images on 2 devices), and BatchNormalization fails on a replica
    that gets an empty share of the last batch (1 image on 2 devices). Later
    uneven batches are fine. So the size is a multiple of ``replicas`` (at most
    ``preferred``) that leaves no remainder or one of at least ``replicas``.
    """
    if replicas <= 1:
        return preferred
    size = max(min(preferred, val_images) // replicas * replicas, replicas)
    for candidate in range(size, replicas - 1, -replicas):
        remainder = val_images % candidate
        if remainder == 0 or remainder >= replicas:
            return candidate
    return size


def trim_for_replicas(images: int, batch_size: int, replicas: int, *, even: bool = False) -> int:
    """How many training images to use so the last batch gives every replica at least one.

    Drops the ``images % batch_size`` leftover only when it is smaller than
    ``replicas`` (fewer images than there are devices to split them over).
    With ``even`` (Keras' ``DataParallel`` on JAX, which shards every batch
    into equal parts) it keeps a multiple of ``replicas`` instead, so that with
    a batch size divisible by ``replicas`` every batch splits exactly.
    """
    if replicas <= 1:
        return images
    if even:
        return images - images % replicas
    remainder = images % batch_size
    return images - remainder if 0 < remainder < replicas else images


def needs_even_batches(replicas: int) -> bool:
    """True when every batch must split into ``replicas`` equal shards (JAX ``DataParallel``).

    ``jax.device_put`` refuses a batch of 13 on 2 devices; TensorFlow's
    ``MirroredStrategy`` splits unevenly and needs only :func:`trim_for_replicas`.
    """
    import keras

    return replicas > 1 and keras.backend.backend() == "jax"
