"""Turning a finished run into the bundled model and its model card.

The card (``models/<name>.json``) records what a user needs to trust and
reproduce the model: the exact training command, the config, the data hash,
class names, preprocessing, training time and hardware, and held-out accuracy
with and without flip test-time augmentation.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
from pathlib import Path

from core import runs
from core.files import temporary_folder
from core.labels import CLASS_NAMES, PUBLIC_TEST, TRAINING
from core.tta import TTA_MODES, TTA_SHORT

MODELS_DIR = runs.REPO_ROOT / "models"
DEFAULT_NAME = "fer_studio_swa"  # the default model's stem (core.predict.BUNDLED_MODEL)
MAX_BUNDLE_BYTES = 10 * 1024 * 1024
WEIGHT_STORAGE = ("float32", "float16")
# Card evaluation keys: "PublicTest", "PublicTest + flip TTA", "PublicTest + ten-crop TTA".
CARD_TTA_SUFFIXES = {mode: "" if mode == "none" else f" + {TTA_SHORT[mode]} TTA" for mode in TTA_MODES}


def bundle_run(run_dir: Path, data: str, *, name: str = DEFAULT_NAME, out_dir: Path = MODELS_DIR,
               ensemble_with: tuple[Path, ...] = (), checkpoint: str = "best", notes: str | None = None,
               weights: str = "float32") -> dict:
    """Export a run's ``best.keras`` (or ``averaged.keras``) without optimizer state and write its card.

    Args:
        run_dir: A finished run folder.
        data: Dataset holding the held-out splits to report (PublicTest, and
            PrivateTest where present). Checkpoints were chosen on validation
            data from the run's config, never on these splits.
        name: File stem under ``out_dir``.
        out_dir: Where ``<name>.keras`` and ``<name>.json`` go.
        ensemble_with: Other models (e.g. the bundled default) to average this
            one with: the card then also reports the ensemble on the same
            splits and TTA modes (``card["ensemble"]``).
        checkpoint: ``best`` (the epoch with the highest validation
            accuracy) or ``averaged`` (the run's weight-averaged model,
            ``core.averaging``); the card's ``checkpoint`` says which.
        notes: What the command and config do not say (e.g. that a teacher or the starting point is the
            earlier version of the file this bundle replaces); default: the run's own ``notes``, if any.
        weights: ``float32``, or ``float16`` to store the kernels in half the bytes
            (:func:`core.model_io.store_weights_as_float16`; the model still computes in float32). The card's
            scores are always those of the file that ships, and ``card["storage"]`` says how far its
            predictions are from the float32 model's.

    Returns:
        The card as a dict.

    Raises:
        FileNotFoundError: If the run has no best.keras (no averaged.keras for ``checkpoint="averaged"``).
        ValueError: If the exported model exceeds 10 MB, the run validated on
            a split it would be reported on, or ``checkpoint`` or ``weights`` is unknown.
    """
    from core.averaging import AVERAGED_MODEL, averaged_record
    from core.data import load_fer2013
    from core.model_io import export_model, load_model, store_weights_as_float16

    run_dir = Path(run_dir)
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,79}", name) or name.endswith((".keras", ".json")):
        # The name becomes two file names inside out_dir: no separators, no "..", no hidden files.
        raise ValueError(f"a bundle name is a plain file stem of letters, digits, '_', '-' and '.' "
                         f"(e.g. fer_studio_mine), got {name!r}; --out chooses the folder")
    if checkpoint not in ("best", "averaged"):
        raise ValueError(f"checkpoint must be 'best' or 'averaged', got {checkpoint!r}")
    if weights not in WEIGHT_STORAGE:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_STORAGE)}, got {weights!r}")
    best = run_dir / ("best.keras" if checkpoint == "best" else AVERAGED_MODEL)
    if not best.is_file():
        if checkpoint == "averaged":
            raise FileNotFoundError(f"{run_dir} has no {AVERAGED_MODEL}: train with --average-from to get one")
        raise FileNotFoundError(f"{run_dir} has no best.keras; train it first")
    saved = runs.read_config(run_dir)
    config, resolved = saved.get("config", {}), saved.get("resolved", {})
    if not config.get("model") or not resolved:
        # A card without them would say nothing of how the model was made, and could not show that its
        # checkpoint was chosen on held-out data (probe s11: config.json `[]` gave a card of nulls, exit 0).
        raise ValueError(f"{run_dir.name}/config.json is missing, unreadable or not a run's: the card could not "
                         "say how the model was trained; bundle a run folder that `python -m core train` wrote")
    # Every member of the ensemble is checked before anything is written: a typo in one of them failed the bundle
    # after NAME.keras had replaced the shipped model, under its old card (probe s19).
    for path in ensemble_with:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no model file at {path} (--ensemble-with)")
        load_model(path)
    _check_writable(out_dir, name)  # before minutes of scoring, not after
    dataset = load_fer2013(data)
    splits = [s for s in dataset.split_names if s != TRAINING]
    if config.get("validation") == "publictest" and PUBLIC_TEST in splits:
        raise ValueError("this run chose its checkpoint on PublicTest, so PublicTest cannot be reported as held out")
    loaded = load_model(best)
    metrics, state = _committed_history(run_dir)
    elapsed, curve = 0.0, []
    for row in metrics:
        elapsed += row.get("epoch_time", 0.0)
        curve.append({"epoch": row["epoch"], "training_seconds": round(elapsed, 1),
                      "val_accuracy": _rounded(row.get("val_accuracy"))})
    if checkpoint == "averaged":
        record = averaged_record(run_dir) or {}
        chosen = averaged_checkpoint(record)
    else:
        chosen = {"kind": "best", "epoch": state.get("best_epoch"),
                  "val_accuracy": _rounded(state.get("best_val_accuracy")),
                  "rule": "the epoch with the highest validation accuracy"}
    card = {
        "name": name,
        "file": f"{name}.keras",
        "architecture": config.get("model"),
        "parameters": int(loaded.model.count_params()),
        "class_names": list(loaded.class_names),
        "preprocessing": loaded.meta.get("preprocessing"),
        "command": resolved.get("command"),
        "notes": notes if notes is not None else saved.get("notes"),
        "config": config,
        "data": {"source": config.get("data"), "content_hash": resolved.get("data_hash"),
                 "train_images": resolved.get("train_images"), "validation": resolved.get("val_source"),
                 "val_images": resolved.get("val_images")},
        "training": {"epochs": len(metrics), "best_epoch": state.get("best_epoch"),
                     "best_val_accuracy": _rounded(state.get("best_val_accuracy")),
                     "seconds": round(elapsed, 1), "hardware": resolved.get("hardware"),
                     "versions": resolved.get("versions"), "run": run_dir.name},
        "checkpoint": chosen,
        "evaluation": None,  # filled in below, from the file that ships
        "accuracy_vs_training_time": curve,
        **({"distillation": resolved["distillation"]} if resolved.get("distillation") else {}),
        **({"init_from": resolved["init_from"]} if resolved.get("init_from") else {}),
        "created": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    # The model and its card are written in a hidden folder beside their places and moved there only once both
    # are complete: a bundle that fails (too large, an ensemble member that cannot be scored) leaves the model
    # and card that were there as they were, and no model without its card.
    staging = _check_writable(out_dir, name, keep=True)  # a killed bundle's staging folder goes first
    try:
        model_path = export_model(loaded.model, staging / f"{name}.keras", loaded.class_names,
                                  {"model": config.get("model"), "card": f"{name}.json", "run": run_dir.name})
        if weights == "float16":
            reference = load_model(model_path)
            counts = store_weights_as_float16(model_path)
            card["storage"] = {"weights": "float16", **_storage_fidelity(reference, load_model(model_path), dataset,
                                                                          splits), "float32_values": counts["kept_float32"],
                               "float16_values": counts["values"]}
        size = model_path.stat().st_size
        if size > MAX_BUNDLE_BYTES:
            raise ValueError(f"{model_path.name} is {size / 1e6:.1f} MB, over the 10 MB limit for a bundled model; "
                             f"nothing was written to {out_dir}")
        card["size_bytes"] = size
        # Scored as shipped: a run trained in mixed bfloat16 predicts in float32 once exported, and float16 storage
        # rounds the kernels, so the card's numbers are the file's, not the run's.
        card["evaluation"] = _card_evaluation(load_model(model_path), dataset, splits)
        if ensemble_with:
            members = [model_path, *(Path(path) for path in ensemble_with)]
            card["ensemble"] = {"members": [path.name for path in members],
                                "evaluation": _card_evaluation(members, dataset, splits)}
        runs.write_json_atomic(staging / f"{name}.json", card)
        os.replace(model_path, out_dir / f"{name}.keras")
        os.replace(staging / f"{name}.json", out_dir / f"{name}.json")
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return card


def _check_writable(out_dir: Path, name: str, keep: bool = False) -> Path | None:
    """Make ``out_dir`` and a hidden staging folder in it (kept with ``keep``, else removed again).

    Raises:
        ValueError: Naming the folder, when it cannot be written (not the staging folder's internal name, with a
            hint about FER_STUDIO_RUNS that had nothing to do with ``--out``, as before review s21).
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        staging = temporary_folder(out_dir, f"{name}-bundle")
    except OSError as error:
        raise ValueError(f"cannot write to {out_dir}: {error.strerror or error}; choose another --out folder") from error
    if keep:
        return staging
    staging.rmdir()
    return None


def card_scores(model_path: Path, split: str = PUBLIC_TEST) -> dict[str, float]:
    """Held-out accuracy from a bundled model's card (``<model>.json``), by test-time augmentation mode.

    ``{"none": 0.6904, "flip": 0.6996, "crop10": 0.7035}`` for the modes the
    card reports; empty when the model has no card or it cannot be read.
    """
    import json

    try:
        evaluation = json.loads(Path(model_path).with_suffix(".json").read_text(encoding="utf-8")).get("evaluation")
    except (OSError, ValueError, AttributeError):
        return {}
    scores = {}
    for mode, suffix in CARD_TTA_SUFFIXES.items():
        entry = evaluation.get(split + suffix) if isinstance(evaluation, dict) else None
        accuracy = entry.get("accuracy") if isinstance(entry, dict) else None
        if isinstance(accuracy, (int, float)) and not isinstance(accuracy, bool) and 0.0 <= accuracy <= 1.0:
            scores[mode] = float(accuracy)
    return scores


def _rounded(value) -> float | None:
    """An accuracy for the card: 4 decimals, or None (JSON null) when missing or not finite (NaN is not JSON)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return round(float(value), 4)


def _committed_history(run_dir: Path) -> tuple[list[dict], dict]:
    """The run's metrics rows and ``state.json``; from its last committed checkpoint's own copies when the
    top-level ones are missing or damaged (probe s18: both empty gave a card of "epochs": 0 and NaN).

    Raises:
        ValueError: If neither copy says which epoch was best.
    """
    metrics = runs.read_metrics(run_dir)
    state = runs.read_json(run_dir / "state.json", {}) or {}
    try:
        committed = runs.read_checkpoint(run_dir)
    except ValueError:
        committed = None
    if committed is not None:
        if len(metrics) < committed.epoch:
            metrics = committed.metrics() or metrics
        if not isinstance(state, dict) or "best_val_accuracy" not in state:
            state = committed.state or {}
    if not isinstance(state, dict) or _rounded(state.get("best_val_accuracy")) is None:
        raise ValueError(f"{run_dir.name}/state.json is missing or damaged, and no checkpoint of the run says which "
                         "epoch was best: the card could not say how its model was chosen")
    return metrics, state


def averaged_checkpoint(record: dict) -> dict:
    """The card's ``checkpoint`` block for a run's weight-averaged model, from its ``averaged.json`` record."""
    images, augmented = record.get("batch_norm_images"), record.get("batch_norm_augmented")
    faces = "training images"
    if images:
        faces = f"{images} training faces" + (f", {augmented} of them augmented as in training" if augmented else "")
    return {"kind": "averaged", "epochs": record.get("epochs"), "count": record.get("count"),
            "val_accuracy": record.get("val_accuracy"), "ready_after_seconds": record.get("ready_after_seconds"),
            "batch_norm_images": images, "batch_norm_augmented": augmented,
            "rule": "weights averaged over the epochs that started after average_from of the run; "
                    f"batch-norm statistics recomputed on {faces}"}


def _storage_fidelity(reference, stored, dataset, splits: list[str]) -> dict:
    """How far ``stored``'s single-pass predictions are from ``reference``'s on the held-out faces of ``splits``."""
    import numpy as np

    from core.model_io import predict_probabilities

    faces = np.concatenate([dataset.subset(split).images for split in splits]) if splits else np.zeros((0, 48, 48), np.uint8)
    if not len(faces):
        return {"compared_faces": 0}
    before, after = predict_probabilities(reference, faces), predict_probabilities(stored, faces)
    return {"compared_faces": int(len(faces)), "same_top_class": round(float((before.argmax(1) == after.argmax(1)).mean()), 5),
            "max_probability_difference": round(float(np.abs(before - after).max()), 6)}


def _card_evaluation(model, dataset, splits: list[str]) -> dict:
    """``{"PublicTest": {...}, "PublicTest + flip TTA": {...}, ...}``: accuracy, macro F1, recall per class.

    ``model`` is a loaded model, or a list of model paths to average (an ensemble).
    """
    from core.evaluate import evaluate_ensemble, evaluate_model

    evaluation = {}
    for tta, suffix in CARD_TTA_SUFFIXES.items():
        if isinstance(model, list):
            results = evaluate_ensemble(model, dataset, splits=splits, tta=tta, use_cache=False)
        else:
            results = evaluate_model(model, dataset, splits=splits, tta=tta, use_cache=False)
        for split, result in results.items():
            evaluation[split + suffix] = {
                "n": result.n,
                "accuracy": round(result.accuracy, 4),
                "macro_f1": round(result.macro_f1, 4),
                "recall": {CLASS_NAMES[i]: round(r, 4) for i, r in enumerate(result.recall)},
            }
    return evaluation
