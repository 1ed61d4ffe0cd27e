"""Keep TensorFlow's C++ start-up chatter off the command line's stderr.

TensorFlow 2.21 prints its oneDNN and CUDA notices (``I0000 ... port.cc:153]
oneDNN custom operations are on ...``, ``cudart_stub.cc ... Could not find
cuda drivers``) through absl before absl's log is initialised, so
``TF_CPP_MIN_LOG_LEVEL`` does not silence them, and they are written straight
to file descriptor 2 (Python's ``sys.stderr`` never sees them). The only way to
drop them is to point descriptor 2 elsewhere while ``tensorflow`` is imported,
then write back every line that is not such a notice, so that a real import
problem still reaches the user.
"""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import re
import sys
import tempfile
from collections.abc import Iterator

# The start-up notices, and nothing else: real warnings and errors pass through.
STARTUP_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    r"|[IWE]\d{4} [\d:.]+\s+\d+ (port\.cc|cudart_stub\.cc|cuda_\w+\.cc|cpu_feature_guard\.cc|gpu_device\.cc)"
    r"|To enable the following instructions: .* rebuild TensorFlow with the appropriate compiler flags"
    r"|[IWE]\d{4} [\d:.]+\s+\d+ \S+\] (Unable to register cu(DNN|FFT|BLAS) factory|Could not find cuda drivers)"
    r"|.*computation placer already registered"
    r"|.*TF-TRT Warning: Could not find TensorRT"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU\.)"
)


def drop_startup_noise(text: str) -> str:
    """``text`` without the lines that are TensorFlow start-up notices (line endings kept)."""
    return "".join(line for line in text.splitlines(keepends=True) if not STARTUP_NOISE.match(line))


@contextlib.contextmanager
def filtered_stderr() -> Iterator[None]:
    """Capture file descriptor 2 for the ``with`` body, then write back what is not start-up noise."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no usable descriptor 2 (embedded interpreters): nothing to filter
        yield
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            kept = drop_startup_noise(capture.read().decode("utf-8", errors="replace"))
            if kept:
                sys.stderr.write(kept)
                sys.stderr.flush()


class _QuietTensorFlowFinder(importlib.abc.MetaPathFinder):
    """Wraps the first import of ``tensorflow`` in :func:`filtered_stderr`; removes itself once it has run.

    It stays in place until TensorFlow is really imported: ``importlib.util.find_spec("tensorflow")``, which
    asks whether TensorFlow is installed (``core.light``), also calls it, and removing it then left the import
    that followed unfiltered (``python -m core predict`` printed the notices; walk s12).
    """

    def __init__(self) -> None:
        self._finding = False

    def find_spec(self, name, path=None, target=None):  # noqa: D102 - importlib protocol
        if name != "tensorflow" or self._finding:
            return None
        self._finding = True  # the lookup below asks the finders again, this one included
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self._finding = False
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module
        finder = self

        def quiet_exec_module(module) -> None:
            with contextlib.suppress(ValueError):
                sys.meta_path.remove(finder)
            with filtered_stderr():
                exec_module(module)
                try:  # looking for GPUs is what prints "failed call to cuInit" on a CPU machine: do it now
                    module.config.list_physical_devices("GPU")
                except (AttributeError, RuntimeError):
                    pass

        spec.loader.exec_module = quiet_exec_module
        return spec


def _drop_retracing_notice(record: logging.LogRecord) -> bool:
    """Drop TensorFlow's "N out of the last N calls ... triggered tf.function retracing" paragraph.

    Each member of an ensemble traces its predict step for a new number of faces (1 face, then 3): an
    expected trace per model, not the loop-built function the notice warns of, yet three models printed two
    long paragraphs on every ``predict`` (review s21).
    """
    return "triggered tf.function retracing" not in record.getMessage()


def install_quiet_tensorflow_import() -> None:
    """Make the next ``import tensorflow`` (direct, or through Keras) drop its start-up notices.

    Also sets ``TF_CPP_MIN_LOG_LEVEL=2`` unless the user chose a level, for the
    C++ info lines TensorFlow logs after start-up, and drops the retracing notice
    (:func:`_drop_retracing_notice`). The import hook is not installed when
    TensorFlow is already imported.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    tensorflow_log = logging.getLogger("tensorflow")
    if _drop_retracing_notice not in tensorflow_log.filters:
        tensorflow_log.addFilter(_drop_retracing_notice)
    if "tensorflow" in sys.modules or any(isinstance(finder, _QuietTensorFlowFinder) for finder in sys.meta_path):
        return
    sys.meta_path.insert(0, _QuietTensorFlowFinder())
