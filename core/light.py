"""The light predictor: classify faces with an exported ONNX model, without TensorFlow or Keras.

This module imports only numpy, OpenCV (through ``core.preprocess``),
Pillow (through ``core.images``, for photos) and onnxruntime, so it runs
in a venv made from ``requirements-predict.txt`` (about a tenth of the full
install). An ONNX export from ``python -m core export --format onnx`` comes
with a card, ``<file>.onnx.json``, listing its class names in output order;
:func:`load_onnx_model` reads them from the card (or, without a card, from
the ONNX file's own metadata) and returns a :class:`core.model_io.LoadedModel`
whose ``model`` answers the two Keras calls the prediction path makes
(``predict_on_batch``, ``predict``). Everything downstream is the project's
one path: ``core.predict.predict_image`` (Haar detection, FER2013 framing,
``prepare_face``), test-time augmentation, and the reordering of the model's
columns into FER2013 order by the card's class names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from core.model_io import LoadedModel, check_card_input, check_class_names

ONNX_SUFFIX = ".onnx"
# The detector the light install can run (MTCNN needs TensorFlow).
LIGHT_DETECTOR = "haar"
# Key of the class names in the ONNX file's metadata_props (written by core.export).
ONNX_META_KEY = "fer_studio"


def card_path_for(artifact: str | os.PathLike) -> Path:
    """The card that travels with an exported artifact: ``<artifact>.json`` beside it."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def is_onnx_path(path: str | os.PathLike) -> bool:
    """True for a path that names an ONNX file (by its ``.onnx`` suffix)."""
    return Path(path).suffix.lower() == ONNX_SUFFIX


class OnnxClassifier:
    """An onnxruntime session that answers like a Keras classifier for ``core.model_io``.

    Args:
        path: The ``.onnx`` file.
        threads: onnxruntime intra-op threads (``0``: onnxruntime's default, one per core).

    Raises:
        ValueError: If onnxruntime cannot load the file, or the model does not
            take one ``(N, H, W, 1)`` image batch and return one ``(N, K)`` matrix.
    """

    def __init__(self, path: str | os.PathLike, threads: int = 0) -> None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        # A model's warnings (e.g. unused initialisers) are not the user's problem.
        options.log_severity_level = 3
        try:
            self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ValueError(f"onnxruntime cannot load {Path(path).name}: {error}") from error
        inputs, outputs = self.session.get_inputs(), self.session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1 or len(inputs[0].shape) != 4 or len(outputs[0].shape) != 2:
            raise ValueError(f"{Path(path).name} is not a face classifier: expected one (N, 48, 48, 1) input and one "
                             f"(N, classes) output, got inputs {[i.shape for i in inputs]} and outputs {[o.shape for o in outputs]}")
        self.input_name = inputs[0].name
        self.input_shape = tuple(None if not isinstance(d, int) else d for d in inputs[0].shape)
        self.output_shape = tuple(None if not isinstance(d, int) else d for d in outputs[0].shape)
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def predict_on_batch(self, x: np.ndarray) -> np.ndarray:
        """``(N, H, W, 1)`` float32 (0..255) to ``(N, K)`` float32 probabilities."""
        return self.session.run(None, {self.input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]

    def predict(self, x: np.ndarray, batch_size: int = 256, verbose: int = 0) -> np.ndarray:
        """Like :meth:`predict_on_batch`, in batches of ``batch_size``."""
        del verbose  # Keras' signature; nothing is printed
        parts = [self.predict_on_batch(x[start:start + batch_size]) for start in range(0, len(x), batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.output_shape[-1] or 0), np.float32)


def read_card(artifact: str | os.PathLike) -> dict | None:
    """The card beside ``artifact`` as a dict, or ``None`` when there is none.

    Raises:
        ValueError: If the card exists but is not valid JSON.
    """
    path = card_path_for(artifact)
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"the card {path.name} is not valid JSON ({error}); export the model again") from None


def load_onnx_model(path: str | os.PathLike, threads: int = 0) -> LoadedModel:
    """Load an exported ONNX model with its class names, for ``core.predict`` and ``core.model_io``.

    Class names come from the card ``<path>.json`` beside the file; without a
    card, from the ``fer_studio`` entry of the ONNX metadata that
    ``core.export`` writes.

    Args:
        path: An ``.onnx`` file.
        threads: onnxruntime intra-op threads (``0``: one per core).

    Returns:
        A :class:`~core.model_io.LoadedModel` whose ``model`` is an :class:`OnnxClassifier`
        and whose ``meta`` is the card (``{}`` without one).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: Not an ONNX model, no class names found, or as many
            class names as the model has outputs.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    card = read_card(path)
    card_name = card_path_for(path).name
    if card is not None and not isinstance(card, dict):
        raise ValueError(f"the card {card_name} is not a JSON object (it is {type(card).__name__}); "
                         "export the model again")
    classifier = OnnxClassifier(path, threads=threads)
    if card is not None and card.get("class_names"):
        # The same checks as a .keras card's (probe s22: seven outputs all named happy gave happy 1.000, unknown
        # names gave seven zeros labelled angry, and both exited 0).
        class_names = check_class_names(card["class_names"], f"the card {card_name}")
    elif ONNX_META_KEY in classifier.metadata:
        try:
            inside = json.loads(classifier.metadata[ONNX_META_KEY])
        except (TypeError, ValueError):
            inside = None
        if not isinstance(inside, dict) or "class_names" not in inside:
            raise ValueError(f"{path.name} has no card ({card_name}) and its own {ONNX_META_KEY!r} entry holds no "
                             "class names: export it again with `python -m core export --format onnx`")
        class_names = check_class_names(inside["class_names"], path.name)
    else:
        raise ValueError(f"{path.name} has no card ({card_name}) and no class names inside: export it "
                         "with `python -m core export --format onnx`, which writes both")
    if card is not None:  # its window is used whether or not it names the classes (review s22)
        check_card_input(card, f"the card {card_name}")
    outputs = classifier.output_shape[-1]
    if outputs is not None and len(class_names) != outputs:
        raise ValueError(f"the card of {path.name} lists {len(class_names)} class names for {outputs} outputs")
    return LoadedModel(model=classifier, class_names=class_names, meta=card or {}, path=str(path))


def load_predictor(paths: Sequence[str | os.PathLike]) -> Any:
    """Load models for prediction: ``.onnx`` files through onnxruntime, others as ``.keras``.

    One path gives a :class:`~core.model_io.LoadedModel`; several give a
    ``core.ensemble.Ensemble`` averaging them. Keras is imported only when a
    ``.keras`` file is among the paths.

    Raises:
        ValueError, FileNotFoundError: As :func:`load_onnx_model` and
            ``core.ensemble.load_models``.
    """
    unique = list(dict.fromkeys(str(path) for path in paths))
    if not any(is_onnx_path(path) for path in unique):
        from core.ensemble import load_models

        return load_models(unique)
    from core.ensemble import make_ensemble
    from core.model_io import load_model

    loaded = [load_onnx_model(path) if is_onnx_path(path) else load_model(path) for path in unique]
    return loaded[0] if len(loaded) == 1 else make_ensemble(loaded)


def keras_available() -> bool:
    """True when Keras can be imported here (a ``.keras`` model needs it; the light install has none)."""
    import importlib.util

    try:
        return importlib.util.find_spec("keras") is not None
    except (ImportError, ValueError):
        return False


def tensorflow_available() -> bool:
    """True when TensorFlow can be imported here (the MTCNN detector needs it)."""
    import importlib.util

    try:
        return importlib.util.find_spec("tensorflow") is not None
    except (ImportError, ValueError):
        return False
