"""Saving and loading models with their class names, and batched inference.

A saved model is a native ``.keras`` zip. FER Studio appends one extra member,
``fer_studio.json``, holding the class names in output order and free-form
metadata (model name, preprocessing, training config); Keras ignores unknown
members, so the file stays a plain Keras model. Loading uses safe mode.
"""

from __future__ import annotations

import json
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.files import give_ordinary_mode, temporary_file, temporary_folder
from core.labels import CLASS_NAMES, IMAGE_SIZE
from core.preprocess import to_model_input

META_MEMBER = "fer_studio.json"
PREPROCESSING = {
    "input": f"{IMAGE_SIZE}x{IMAGE_SIZE} grayscale uint8 face, raw 0..255 (core.preprocess.prepare_face)",
    "normalisation": "inside the model: Rescaling(1/255)",
}


@dataclass(frozen=True)
class LoadedModel:
    """A Keras model with the class names of its outputs.

    Attributes:
        model: The ``keras.Model``.
        class_names: Output ``i`` is ``class_names[i]``.
        meta: Everything else stored in ``fer_studio.json``.
        path: Where it was loaded from.
    """

    model: Any
    class_names: tuple[str, ...]
    meta: dict = field(default_factory=dict)
    path: str = ""


def save_model(model: Any, path: str | os.PathLike, class_names: tuple[str, ...] = CLASS_NAMES, meta: dict | None = None) -> Path:
    """Save ``model`` atomically as ``.keras`` with its class names.

    The file is written next to its destination and renamed into place, so a
    reader (or a killed writer) never sees a half-written model.

    Raises:
        ValueError: If the path does not end in ``.keras`` or the number of
            class names differs from the model's outputs.
    """
    path = Path(path)
    if path.suffix != ".keras":
        raise ValueError(f"model files must end in .keras, got {path.name}")
    outputs = int(model.output_shape[-1])
    if len(class_names) != outputs:
        raise ValueError(f"{len(class_names)} class names for a model with {outputs} outputs")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = str(temporary_file(path.parent, path.stem, ".keras"))
    try:
        model.save(tmp_name, overwrite=True)
        payload = {"class_names": list(class_names), "preprocessing": PREPROCESSING, **(meta or {})}
        with zipfile.ZipFile(tmp_name, "a") as archive:
            archive.writestr(META_MEMBER, json.dumps(payload, indent=2, default=str))
        give_ordinary_mode(tmp_name)
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path


def read_model_meta(path: str | os.PathLike) -> dict:
    """Read ``fer_studio.json`` from a ``.keras`` file without loading Keras.

    Returns ``{"class_names": CLASS_NAMES}`` for a plain Keras file that has none
    (a model saved outside FER Studio is assumed to use FER2013's order).
    The class names are checked (see :func:`check_class_names`).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not a ``.keras`` zip, its ``fer_studio.json`` is
            not a JSON object, has no ``class_names``, or names classes that
            are not FER2013's (unknown or repeated); the message names the file.
    """
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a model file inside it, e.g. {path / 'best.keras'}")
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    if not zipfile.is_zipfile(path):
        hint = ""
        if path.suffix.lower() == ".onnx":
            hint = "; an .onnx export runs with `python -m core predict` only (docs/export.md), the other commands need the .keras file"
        elif path.suffix.lower() in (".h5", ".hdf5"):
            hint = "; legacy .h5 files are not loaded: open it with Keras and save it as .keras (with core.model_io.save_model for its class names)"
        with path.open("rb") as handle:
            if handle.read(4) == b"PK\x03\x04" and not hint:  # a zip's start without its end: cut short
                raise ValueError(f"{path.name} is a damaged or truncated .keras file (it starts as a zip archive "
                                 "but its end is missing): copy or download it again")
        raise ValueError(f"{path.name} is not a Keras model: expected a .keras file (a zip archive){hint}")
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "config.json" not in names:
                raise ValueError(f"{path.name} is a zip but not a Keras model (no config.json inside)")
            if path.suffix.lower() != ".keras":
                # Keras reads the archive by its name: a model.h5 or a name without extension read as "damaged"
                # or as Keras' long SavedModel advice (probe s19).
                raise ValueError(f"{path.name} is a .keras model under another name, and Keras reads it only as a "
                                 f".keras file: rename it to {path.stem}.keras")
            if META_MEMBER not in names:
                return {"class_names": list(CLASS_NAMES)}
            info = archive.getinfo(META_MEMBER)
            if info.file_size > 1024**2:  # a card is a few hundred bytes
                raise ValueError(f"the model card {META_MEMBER} inside {path.name} declares {info.file_size:,} bytes; "
                                 "a FER Studio card is under 1 MiB: this is not a model saved by FER Studio")
            from core.zips import read_member

            raw = read_member(archive, info)  # bounded: the declared size may lie
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        raise ValueError(f"{path.name} is a damaged .keras archive ({error})") from None
    try:
        meta = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"the model card {META_MEMBER} inside {path.name} is not valid JSON ({error}); "
                         "save the model again with core.model_io.save_model") from None
    if not isinstance(meta, dict):
        raise ValueError(f"the model card {META_MEMBER} inside {path.name} is not a JSON object "
                         f"(it is {type(meta).__name__}); save the model again with core.model_io.save_model")
    if "class_names" not in meta:
        raise ValueError(f"the model card {META_MEMBER} inside {path.name} has no class_names: FER Studio cannot tell "
                         "which output is which emotion; save the model with its class names (core.model_io.save_model)")
    meta["class_names"] = list(check_class_names(meta["class_names"], path.name))
    check_card_input(meta, f"the model card {META_MEMBER} inside {path.name}")
    return meta


def check_card_input(card: dict, source: str) -> None:
    """Check the ``input`` entry of a model card: ``centre_crop``, when given, is the ``[height, width]`` window
    the model looks at (:func:`model_window`), each a whole number from 8 to 47 pixels.

    A window the card gets wrong changes every view of ten-crop without a word (probe s22: ``[-5, 0]`` turned
    happy 0.87 into fear 0.33), so a card that does not say one plainly is refused.

    Raises:
        ValueError: Naming ``source`` and the entry.
    """
    entry = card.get("input")
    if entry is None:
        return
    if not isinstance(entry, dict):
        raise ValueError(f"{source}: its input entry must be a JSON object, got {entry!r}; export the model again")
    window = entry.get("centre_crop")
    if window is None:
        return

    def whole(value: Any) -> bool:  # the range first: int() of an infinity or NaN raises (review s22)
        return (not isinstance(value, bool) and isinstance(value, (int, float)) and 8 <= value < IMAGE_SIZE
                and value == int(value))

    if not (isinstance(window, (list, tuple)) and len(window) == 2 and all(whole(side) for side in window)):
        raise ValueError(f"{source}: input.centre_crop must be [height, width] in whole pixels from 8 to "
                         f"{IMAGE_SIZE - 1}, got {window!r}; export the model again")


def check_class_names(class_names: Any, source: str = "model") -> tuple[str, ...]:
    """Check that ``class_names`` are FER2013 classes, each at most once; return them as a tuple.

    Names are matched as :func:`core.labels.class_index` does (case,
    whitespace and synonyms such as ``happiness``). A model may list them in
    any order: :func:`predict_probabilities` reorders its outputs into
    FER2013's order. A model that knows only some of the seven classes is
    accepted; the others get probability 0.

    Raises:
        ValueError: Naming ``source`` and the names that are not strings,
            unknown, or repeated.
    """
    from core.labels import class_index

    if not isinstance(class_names, (list, tuple)) or not class_names:
        raise ValueError(f"{source}: class_names must be a non-empty list of class names, got {class_names!r}")
    if not all(isinstance(name, str) for name in class_names):
        raise ValueError(f"{source}: class_names must be strings, got {class_names!r}")
    unknown = [name for name in class_names if class_index(name) is None]
    if unknown:
        raise ValueError(f"{source} has classes that are not FER2013's ({', '.join(map(str, unknown))}; "
                         f"known: {', '.join(CLASS_NAMES)}); FER Studio cannot use this model")
    indices = [class_index(name) for name in class_names]
    repeated = sorted({CLASS_NAMES[i] for i in indices if indices.count(i) > 1}, key=CLASS_NAMES.index)
    if repeated:
        raise ValueError(f"{source} names more than one output with the same class (repeated: {', '.join(repeated)}; "
                         f"its class names: {', '.join(class_names)}); each class may name one output only")
    return tuple(class_names)


def check_face_input(model: Any, source: str = "model") -> None:
    """Refuse a model that does not take FER Studio's faces: one ``(batch, 48, 48, 1)`` grayscale input.

    Every face, in training, evaluation and prediction alike, comes out of the one
    preprocessing path as 48x48 gray pixels, so a model built for colour or another
    size would fail on every image; this says so once, when the model is loaded.

    Raises:
        ValueError: Naming ``source`` and the input it has (or that it was saved unbuilt).
    """
    face_shape = (IMAGE_SIZE, IMAGE_SIZE, 1)
    try:
        shape = model.input_shape
        model.output_shape  # noqa: B018 -- an unbuilt model raises here too
    except (AttributeError, ValueError) as error:
        raise ValueError(f"{source} was saved before it was built, so it has no input or output shape ({error}); "
                         f"build it on {face_shape} inputs (e.g. keras.Input(shape={face_shape})) and save it again") from None
    if not isinstance(shape, tuple) or len(shape) != 4 or tuple(shape[1:]) != face_shape:
        raise ValueError(f"{source} takes inputs of shape {shape}; FER Studio gives every model 48x48 grayscale faces, "
                         f"(batch, {', '.join(map(str, face_shape))}): train or rebuild the model for that input")


def check_probability_outputs(model: Any, source: str = "model") -> None:
    """Refuse a model whose outputs are not class probabilities.

    Probes the model with a black and a random face: every output must lie in
    [0, 1] and each row must sum to 1, as a softmax gives (within 1e-3, or
    2e-2 for a model whose last layer computes in 16-bit floats).

    Raises:
        ValueError: Naming ``source``, what came out and the last layer's activation.
    """
    shape = tuple(model.input_shape[1:]) if isinstance(model.input_shape, tuple) else None
    if not shape or any(dim is None for dim in shape) or len(model.output_shape) != 2:
        raise ValueError(f"{source} takes {model.input_shape} and returns {model.output_shape}; "
                         f"FER Studio needs one image input and one (batch, classes) output")
    probe = np.stack([np.zeros(shape, np.float32), np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)])
    import keras

    outputs = np.asarray(keras.ops.convert_to_numpy(model(probe, training=False)), dtype=np.float64)
    sums = outputs.sum(axis=1)
    last = model.layers[-1]
    tolerance = 2e-2 if str(getattr(last, "compute_dtype", "float32")) in ("float16", "bfloat16") else 1e-3
    if np.all(np.isfinite(outputs)) and outputs.min() >= -1e-4 and outputs.max() <= 1 + 1e-4 \
            and np.allclose(sums, 1.0, atol=tolerance):
        return
    activation = getattr(getattr(last, "activation", None), "__name__", None) or type(last).__name__
    raise ValueError(f"{source} does not output probabilities: on a test face its outputs range from "
                     f"{np.nanmin(outputs):.4g} to {np.nanmax(outputs):.4g} and sum to {np.nansum(outputs[0]):.4g} "
                     f"(last layer {last.name!r}, activation {activation}); FER Studio needs a softmax output layer")


MAX_CONFIG_BYTES = 16 * 1024**2  # a .keras file's config.json (the bundled models' are about 35 KB)


def foreign_code(path: str | os.PathLike, registered: frozenset[str] = frozenset()) -> str | None:
    """The first object a ``.keras`` file's ``config.json`` takes from outside Keras (``"os.system"``), or None.

    Keras rebuilds every ``{"module": ..., "class_name": ..., "config": ...}``
    of the config from that module; safe mode refuses Lambda layers, but an
    activation or initializer may still name any importable function (an
    ``os.system`` activation used to reach Keras and come back as 3 KB of
    its deserialisation error). Standard layers only name ``keras`` modules.
    An archive without a readable config.json is left to Keras' own error.
    ``registered`` holds the names of objects registered with Keras (their
    ``registered_name``), which are allowed.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            info = archive.getinfo("config.json")
            if info.file_size > MAX_CONFIG_BYTES:
                return f"a config.json of {info.file_size:,} bytes"
            from core.zips import read_member

            config = json.loads(read_member(archive, info).decode("utf-8"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile, RuntimeError, NotImplementedError):
        return None
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            module = item.get("module")
            if (isinstance(module, str) and module != "keras" and not module.startswith("keras.")
                    and item.get("registered_name") not in registered):
                target = item.get("config") if isinstance(item.get("config"), str) else item.get("class_name")
                return f"{module}.{target}" if isinstance(target, str) else module
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _keras_reason(error: Exception, limit: int = 300) -> str:
    """The innermost reason in a Keras loading error, without the configs it quotes, at most ``limit`` characters."""
    text = str(error).rsplit("Exception encountered:", 1)[-1].strip()
    text = text.split("Full object config:", 1)[0].split("config=", 1)[0].strip()
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_model(path: str | os.PathLike, compile: bool = False) -> LoadedModel:
    """Load a ``.keras`` model in safe mode with its class names.

    A model that does not fit is refused: class names that are not FER2013's
    (see :func:`check_class_names`; another order is fine and reordered),
    as many names as outputs, and outputs that are probabilities
    (:func:`check_probability_outputs`).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If the file is not a loadable Keras model or does not fit
            (the message names the file and what is wrong).
    """
    meta = read_model_meta(path)
    name = Path(path).name
    import keras

    # Objects registered with Keras in this process (keras.saving.register_keras_serializable) are Keras' to load.
    foreign = foreign_code(path, registered=frozenset(keras.saving.get_custom_objects()))
    if foreign is not None:
        raise ValueError(f"{name} refers to code outside Keras ({foreign}), which FER Studio never loads: "
                         "a model file must not be able to run code; rebuild the model with standard Keras layers")

    try:
        model = keras.models.load_model(path, compile=compile, safe_mode=True)
    except Exception as error:  # Keras raises many types for a damaged archive.
        if "safe_mode" in str(error):
            # Keras' own advice (turn safe mode off) is not something FER Studio offers: such a file can run code.
            raise ValueError(f"{name} holds Python code (a Lambda layer or similar), which FER Studio never loads: "
                             "a model file must not be able to run code; rebuild the model with standard layers") from None
        if isinstance(error, (json.JSONDecodeError, UnicodeDecodeError, OSError, EOFError, zipfile.BadZipFile)):
            # A part inside the archive cut short or garbled (probe s18: raw h5py and JSON messages).
            raise ValueError(f"{name} is a damaged .keras file: a part inside it cannot be read "
                             f"({type(error).__name__}: {_keras_reason(error, 160)}); copy or download it again"
                             ) from error
        raise ValueError(f"could not load model {name}: {type(error).__name__}: {_keras_reason(error)}") from error
    class_names = tuple(meta.pop("class_names"))
    check_face_input(model, name)
    if not isinstance(model.output_shape, tuple):  # several outputs (a list of shapes): probe s19 read "None outputs"
        raise ValueError(f"{name} has {len(model.outputs)} outputs; FER Studio needs one (batch, classes) output "
                         "of class probabilities")
    outputs = model.output_shape[-1]
    if outputs is None or len(class_names) != int(outputs):
        with zipfile.ZipFile(path) as archive:
            has_card = META_MEMBER in archive.namelist()
        listed = (f"its card lists {len(class_names)} class names" if has_card else
                  f"it has no FER Studio card, so FER2013's {len(class_names)} classes were assumed")
        raise ValueError(f"{name} has {outputs} outputs but {listed} ({', '.join(class_names)}); "
                         "FER Studio cannot tell which output is which emotion")
    if not compile:
        model = as_float32(model)
    check_probability_outputs(model, name)
    return LoadedModel(model=model, class_names=class_names, meta=meta, path=str(path))


def as_float32(model: Any) -> Any:
    """``model`` computing in float32: a copy with the same weights if it was trained in mixed precision.

    A model trained under ``mixed_bfloat16`` or ``mixed_float16`` keeps that
    policy in its saved layers, so it would also predict in 16-bit: slowly on
    a CPU without native bfloat16, and in a form exporters may not handle.
    Its weights are float32 already, so the copy predicts the same classes
    with float32 arithmetic. A float32 model is returned as it is.
    """
    import keras

    if all(not layer.dtype_policy.name.startswith("mixed") for layer in model.layers):
        return model

    def float32_layer(layer):
        config = layer.get_config()
        if "dtype" in config:
            config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    clone = keras.models.clone_model(model, clone_function=float32_layer)
    clone.set_weights(model.get_weights())
    return clone


def export_model(model: Any, path: str | os.PathLike, class_names: tuple[str, ...] = CLASS_NAMES, meta: dict | None = None) -> Path:
    """Save an inference-only float32 copy (no optimizer state, see :func:`as_float32`): what gets shipped or bundled."""
    import keras

    clone = as_float32(model)
    if clone is model:
        clone = keras.models.clone_model(model)
        clone.set_weights(model.get_weights())
    return save_model(clone, path, class_names, meta)


WEIGHTS_MEMBER = "model.weights.h5"
# Arrays smaller than this stay float32 when a model is stored in float16: the biases and batch-norm statistics,
# a few kilobytes in all, where a variance of 1e-5 would lose most of its digits in float16 (smallest normal 6e-5).
FLOAT16_MIN_ARRAY = 1024


def store_weights_as_float16(path: str | os.PathLike) -> dict:
    """Rewrite a ``.keras`` file in place so that its large float32 arrays (kernels) are stored as float16.

    The file halves (a 1.8 M-parameter ``fer_vgg``: 7.2 to 3.7 MB) and still
    loads as the float32 model it was: Keras casts each stored array to its
    variable's dtype when it loads the weights, so the model computes in
    float32 with weights rounded to float16's 11 significant bits (a relative
    error under 0.05%). Arrays under :data:`FLOAT16_MIN_ARRAY` values and every
    other member of the zip are copied unchanged. The new file replaces the old
    one atomically.

    Returns:
        ``{"arrays": halved arrays, "values": their values, "kept_float32": values left in float32}``.

    Raises:
        ValueError: If the file is not a ``.keras`` zip with Keras' weights member, or a stored value is beyond
            float16's range (65,504).
    """
    import h5py

    path = Path(path)
    counts = {"arrays": 0, "values": 0, "kept_float32": 0}
    try:
        source = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path.name} is not a .keras file: {error}") from error
    tmp_name, work = str(temporary_file(path.parent, path.stem, ".keras")), temporary_folder(path.parent, f"{path.stem}-h5")
    try:
        with source:
            if WEIGHTS_MEMBER not in source.namelist():
                raise ValueError(f"{path.name} has no {WEIGHTS_MEMBER}: not a Keras 3 .keras file")
            original, halved = Path(work) / "in.h5", Path(work) / "out.h5"
            original.write_bytes(source.read(WEIGHTS_MEMBER))

            with h5py.File(original, "r") as read, h5py.File(halved, "w") as write:
                def copy_attributes(source_object, target_object) -> None:
                    for key, value in source_object.attrs.items():
                        target_object.attrs[key] = value

                def copy(name: str, item) -> None:
                    if isinstance(item, h5py.Dataset):
                        data = item[()]
                        if isinstance(data, np.ndarray) and data.dtype == np.float32 and data.size >= FLOAT16_MIN_ARRAY:
                            if np.abs(data).max(initial=0.0) > np.finfo(np.float16).max:
                                raise ValueError(f"{path.name}: {name} holds values beyond float16's range")
                            data = data.astype(np.float16)
                            counts["arrays"] += 1
                            counts["values"] += int(data.size)
                        elif isinstance(data, np.ndarray) and data.dtype == np.float32:
                            counts["kept_float32"] += int(data.size)
                        copy_attributes(item, write.create_dataset(name, data=data))
                    else:
                        copy_attributes(item, write.require_group(name))

                copy_attributes(read, write)
                read.visititems(copy)
            with zipfile.ZipFile(tmp_name, "w") as target:
                for info in source.infolist():
                    data = halved.read_bytes() if info.filename == WEIGHTS_MEMBER else source.read(info.filename)
                    target.writestr(info, data)
        give_ordinary_mode(tmp_name)
        os.replace(tmp_name, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return counts


def predict_probabilities(
    loaded: LoadedModel,
    faces: np.ndarray,
    *,
    tta: str | bool = "none",
    batch_size: int = 256,
    first_view: int = 0,
) -> np.ndarray:
    """Class probabilities for a stack of faces, columns in FER2013 order.

    Args:
        loaded: A model from :func:`load_model`, or a ``core.ensemble.Ensemble``
            (its members' probabilities, each in FER2013 order, averaged).
        faces: ``(N, 48, 48)`` uint8 faces from ``core.preprocess.prepare_face``.
        tta: Test-time augmentation, a mode of ``core.tta.TTA_MODES``
            (``none``, ``flip``, ``crop10``); the views' probabilities are averaged.
        batch_size: Inference batch size.
        first_view: Average only the mode's views from this one on (``0``: all
            of them). The modes nest (``core.tta.VIEW_COUNTS``), so the views
            after a smaller mode's are what that mode's average lacks.

    Returns:
        ``(N, 7)`` float32; row ``i`` sums to 1; column ``j`` is ``CLASS_NAMES[j]``
        whatever order the model was trained with. A class the model does not
        know gets probability 0.

    Raises:
        ValueError: If ``faces`` is not ``(N, H, W)`` of the model's input size,
            ``tta`` is not a known mode, or ``first_view`` leaves no view.
    """
    from core.tta import VIEW_COUNTS, make_views, normalize_tta

    mode = normalize_tta(tta)
    if not 0 <= first_view < VIEW_COUNTS[mode]:
        raise ValueError(f"{mode} has {VIEW_COUNTS[mode]} views; cannot start at view {first_view}")
    members = getattr(loaded, "members", None)
    if members is not None:  # a core.ensemble.Ensemble: the mean of its members' FER-ordered outputs
        return np.mean([predict_probabilities(member, faces, tta=mode, batch_size=batch_size, first_view=first_view)
                        for member in members], axis=0).astype(np.float32)
    x = to_model_input(faces)
    expected = tuple(loaded.model.input_shape[1:3])
    if x.shape[1:3] != expected:
        raise ValueError(f"faces are {x.shape[1:3]}, the model expects {expected}")
    views = make_views(x, mode, window=model_window(loaded))[first_view:]
    if len(views) * len(x) <= batch_size:
        # All views of a few faces go through the model together: one call.
        stacked = _predict(loaded.model, np.concatenate(views), batch_size)
        probabilities = stacked.reshape(len(views), len(x), stacked.shape[-1]).mean(axis=0)
    else:
        probabilities = sum(_predict(loaded.model, view, batch_size) for view in views) / len(views)
    return reorder_to_fer(np.asarray(probabilities, dtype=np.float32), loaded.class_names)


def model_window(loaded: LoadedModel) -> tuple[int, int] | None:
    """The centre window a model looks at (``fer_vgg --param crop``): from its layers for a Keras model, from
    its card (``input.centre_crop``) for an exported one; None when it sees the whole face."""
    from core.models import centre_crop_of

    window = centre_crop_of(loaded.model)
    if window is None:
        entry = (loaded.meta or {}).get("input", {})
        entry = entry.get("centre_crop") if isinstance(entry, dict) else None  # checked when loaded (check_card_input)
        window = (int(entry[0]), int(entry[1])) if isinstance(entry, (list, tuple)) and len(entry) == 2 else None
    return window


def reorder_to_fer(probabilities: np.ndarray, class_names: tuple[str, ...]) -> np.ndarray:
    """Reorder ``(N, K)`` columns named ``class_names`` into FER2013's 7 columns."""
    from core.labels import class_index

    out = np.zeros((len(probabilities), len(CLASS_NAMES)), dtype=np.float32)
    for column, name in enumerate(class_names):
        index = class_index(name)
        if index is not None:
            out[:, index] += probabilities[:, column]
    return out


def _predict(model: Any, x: np.ndarray, batch_size: int) -> np.ndarray:
    if len(x) == 0:
        return np.zeros((0, int(model.output_shape[-1])), dtype=np.float32)
    # predict_on_batch, batch by batch: it compiles once and skips predict()'s
    # per-call dataset setup, 4-10x faster than predict() or an eager call for a
    # few faces, and 1.5-1.8x faster than predict() for thousands on the 2-core
    # CPU (PublicTest's 3,589 faces, bench/bench_evaluate.py).
    return np.concatenate([np.asarray(model.predict_on_batch(x[start:start + batch_size]), dtype=np.float32)
                           for start in range(0, len(x), batch_size)])
