"""Knowledge distillation: train on what finished models predict as well as on the labels.

A run with teachers (``--teacher PATH``, repeatable; the Training form's
"Teachers") first predicts every training face with the teachers, their
probabilities averaged over the teachers and the test-time views of
``teacher_tta`` (``core.model_io.predict_probabilities``: the one
preprocessing path), then trains on the blend::

    target = (1 - w) * one_hot(label) + w * soften(teacher, T)

with ``w = distill_weight`` and ``T = distill_temperature``
(``soften(p, T) = p ** (1/T)``, renormalised: T > 1 flattens the teacher).
Label smoothing still applies on top. The teachers' predictions are made on
the clean faces, once, before the first epoch, and stored in the run folder
(``teacher_targets.npz``), so a resumed run reuses them; augmentation then
moves the face and keeps its target, as it keeps its label. Each teacher's
own predictions are also kept beside the run folders (``runs/.teacher_cache``,
by the teacher file's hash, the views and the faces), so a new run with a
teacher already used on the same faces reads them instead of predicting
again: ten-crop predictions of 25,837 faces take about 5 minutes per
teacher on 2 CPU cores.

FER2013's labels are noisy (about one in ten is disputed), and a teacher's
probabilities say which faces are ambiguous and between which classes; a
student of the same size trained on them learns from that as well.

Honest validation. The student's checkpoint is still chosen on its slice of
Training with the true labels, but a teacher that trained on those faces has
seen their labels, and what the student copies from it carries some of that.
:func:`teacher_records` compares every teacher's own validation slice with
the student's (same data, same seed and fraction: the same slice) and the run
records ``validation_clean``; when it is false the run says so, and held-out
splits (PublicTest) are the numbers to trust. A teacher that chose its
checkpoint on PublicTest is flagged the same way.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from core.labels import NUM_CLASSES

TARGETS_FILE = "teacher_targets.npz"
# Each teacher's predictions, kept beside the run folders (``runs/.teacher_cache``) so that the next run with
# the same teacher, faces and views reads them instead of predicting again (ten-crop: minutes per teacher).
TEACHER_CACHE = ".teacher_cache"


def soften(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """``p ** (1 / T)`` renormalised per row: the softmax of ``log(p) / T`` (T = 1 returns ``p``)."""
    p = np.clip(np.asarray(probabilities, dtype=np.float64), 1e-12, None)
    if temperature != 1:
        p = p ** (1.0 / temperature)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def blend_targets(labels: np.ndarray, teacher: np.ndarray, weight: float, temperature: float = 1.0) -> np.ndarray:
    """``(1 - weight) * one_hot(labels) + weight * soften(teacher, temperature)``, ``(N, 7)`` float32.

    Raises:
        ValueError: If ``teacher`` is not ``(len(labels), 7)``.
    """
    labels = np.asarray(labels)
    teacher = np.asarray(teacher)
    if teacher.shape != (len(labels), NUM_CLASSES):
        raise ValueError(f"teacher probabilities are {teacher.shape}, expected ({len(labels)}, {NUM_CLASSES})")
    one_hot = np.eye(NUM_CLASSES, dtype=np.float32)[labels]
    return ((1 - weight) * one_hot + weight * soften(teacher, temperature)).astype(np.float32)


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def teacher_training(path: str | Path) -> dict | None:
    """What a teacher was trained on: ``{"config": ..., "data_hash": ...}``, or None when unknown.

    Read from the model's card: a bundled model's JSON card beside it (the card the file names inside,
    else ``<stem>.json``, for a bundled model renamed with its card),
    or a run checkpoint's embedded config with its run folder's ``config.json`` for the data hash.
    """
    from core.model_io import read_model_meta

    path = Path(path)
    meta = read_model_meta(path)
    card_name = meta.get("card")
    card_path = path.parent / card_name if isinstance(card_name, str) else None
    if card_path is not None and not card_path.is_file() and path.with_suffix(".json").is_file():
        card_path = path.with_suffix(".json")  # a bundled model renamed with its card (the file names the old card)
    if card_path is not None and card_path.is_file():
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if isinstance(card, dict) and isinstance(card.get("config"), dict):
            return {"config": card["config"], "data_hash": (card.get("data") or {}).get("content_hash")}
        return None
    if isinstance(meta.get("config"), dict):
        data_hash = None
        run_config = path.parent / "config.json"
        if run_config.is_file():
            try:
                data_hash = json.loads(run_config.read_text(encoding="utf-8")).get("resolved", {}).get("data_hash")
            except (OSError, ValueError, AttributeError):
                data_hash = None
        return {"config": meta["config"], "data_hash": data_hash}
    return None


def validation_verdict(trained: dict | None, config: Any, data_hash: str | None) -> tuple[bool, str]:
    """Whether a teacher never saw the student's validation faces, and why (one phrase).

    Args:
        trained: :func:`teacher_training` of the teacher.
        config: The student's ``TrainConfig``.
        data_hash: The student's dataset content hash.
    """
    if trained is None:
        return False, "its training data is unknown (no card)"
    teacher = trained["config"]
    if teacher.get("validation") == "publictest":
        return False, "it chose its checkpoint on PublicTest"
    if config.validation == "publictest":
        return True, "the student validates on PublicTest, which no teacher trained on"
    same_data = data_hash is not None and trained.get("data_hash") == data_hash
    same_slice = (same_data and teacher.get("validation", "split") == "split"
                  and teacher.get("seed") == config.seed and teacher.get("val_fraction") == config.val_fraction)
    if same_slice:
        return True, f"it held out the same validation slice (seed {config.seed})"
    if not same_data:
        return False, "it was trained on other data, which may hold these validation faces"
    return False, f"it trained on most of this run's validation slice (its seed {teacher.get('seed')}, this run's {config.seed})"


def teacher_records(paths: Sequence[str], config: Any, data_hash: str | None) -> list[dict]:
    """One record per teacher: path, sha256, its seed, and whether it saw the student's validation faces."""
    records = []
    for path in paths:
        trained = teacher_training(path)
        clean, why = validation_verdict(trained, config, data_hash)
        records.append({"path": str(path), "sha256": file_sha256(path),
                        "seed": (trained or {}).get("config", {}).get("seed"),
                        "validation_clean": clean, "why": why})
    return records


def prepare_targets(config: Any, x_train: np.ndarray, y_train: np.ndarray, run_dir: Path, data_hash: str | None,
                    echo: Callable[[str], None] = print) -> tuple[np.ndarray, dict]:
    """The blended training targets of a run with teachers, and the record that goes into ``config.json``.

    The teachers' averaged probabilities are computed once and kept in
    ``run_dir/teacher_targets.npz`` with the teachers' hashes and a hash of the
    training faces; a resume reuses them when all of those match. A new run
    reads each teacher's predictions from ``runs/.teacher_cache`` when an
    earlier run made them (same file, views and faces) and predicts only the
    others.

    Raises:
        FileNotFoundError, ValueError: A teacher that does not load or does not
            output FER2013's classes (the message names it).
    """
    from core.tta import normalize_tta

    tta = normalize_tta(config.teacher_tta)
    records = teacher_records(config.teachers, config, data_hash)
    faces_hash = hashlib.sha256(np.ascontiguousarray(x_train).tobytes()).hexdigest()
    key = json.dumps({"teachers": [r["sha256"] for r in records], "tta": tta, "faces": faces_hash}, sort_keys=True)
    stored = run_dir / TARGETS_FILE
    probabilities = None
    seconds = None
    reused = 0
    if stored.is_file():
        try:
            with np.load(stored) as cached:
                if str(cached["key"]) == key:
                    probabilities = cached["probabilities"].astype(np.float32)
                    seconds = float(cached["seconds"]) if "seconds" in cached.files else None
                    reused = int(cached["reused"]) if "reused" in cached.files else 0
        except (OSError, ValueError, KeyError):
            probabilities = None
    if probabilities is None:
        probabilities, seconds, reused = _teacher_average(config.teachers, records, x_train, faces_hash, tta,
                                                          run_dir.parent / TEACHER_CACHE, echo)
        tmp = run_dir / f".{TARGETS_FILE}.tmp.npz"
        np.savez(tmp, key=np.array(key), probabilities=probabilities.astype(np.float16), seconds=np.array(seconds),
                 reused=np.array(reused))
        tmp.replace(stored)
        probabilities = probabilities.astype(np.float16).astype(np.float32)  # what a resume reads back
    targets = blend_targets(y_train, probabilities, config.distill_weight, config.distill_temperature)
    agreement = float(np.mean(probabilities.argmax(axis=1) == np.asarray(y_train)))
    clean = all(record["validation_clean"] for record in records)
    record = {"teachers": records, "tta": tta, "weight": config.distill_weight,
              "temperature": config.distill_temperature, "teacher_train_agreement": round(agreement, 4),
              "validation_clean": clean, "teacher_seconds": seconds, "teachers_reused": reused}
    for teacher in records:
        if not teacher["validation_clean"]:
            echo(f"note: teacher {Path(teacher['path']).name}: {teacher['why']}; this run's validation accuracy "
                 "is optimistic, judge it on a held-out split")
    return targets, record


def _teacher_average(paths: Sequence[str], records: list[dict], x_train: np.ndarray, faces_hash: str, tta: str,
                     cache_dir: Path, echo: Callable[[str], None]) -> tuple[np.ndarray, float, int]:
    """The teachers' equal-weight average probabilities, the seconds their predictions took, how many were reused.

    Each teacher's own predictions are looked up in ``cache_dir`` by its file hash, the views and the faces,
    and predicted (then stored there) only when missing. A teacher listed twice counts once, as in
    :func:`core.ensemble.load_models`. Stored and fresh predictions both go through float16, so a run's
    targets do not depend on which teachers were cached.
    """
    from core.ensemble import check_fer_classes
    from core.model_io import load_model

    unique = {}
    for path, record in zip(paths, records):
        unique.setdefault(str(path), record["sha256"])
    found, missing = {}, []
    for path, sha in unique.items():
        entry = cache_dir / f"{sha[:24]}-{tta}-{faces_hash[:24]}.npz"
        try:
            with np.load(entry) as cached:
                if str(cached["key"]) == f"{sha} {tta} {faces_hash}" and cached["probabilities"].shape == (len(x_train), NUM_CLASSES):
                    found[path] = (cached["probabilities"].astype(np.float32), float(cached["seconds"]))
                    continue
        except (OSError, ValueError, KeyError):
            pass
        missing.append((path, sha, entry))
    if missing:
        loaded = [(path, load_model(path), sha, entry) for path, sha, entry in missing]  # all checked before any predicts
        for path, model, _, _ in loaded:
            check_fer_classes(model)
            if tuple(model.model.input_shape[1:3]) != tuple(x_train.shape[1:3]):
                raise ValueError(f"teacher {Path(path).name} takes {tuple(model.model.input_shape[1:3])} faces, "
                                 f"the training faces are {tuple(x_train.shape[1:3])}")
        echo(f"teachers: predicting {len(x_train)} training faces with {len(loaded)} model(s), tta {tta}"
             + (f" ({len(found)} more read from {cache_dir.name})" if found else ""))
        for path, model, sha, entry in loaded:
            started = time.perf_counter()
            predicted = predict_probabilities_of(model, x_train, tta).astype(np.float16)
            took = round(time.perf_counter() - started, 2)
            found[path] = (predicted.astype(np.float32), took)
            try:
                cache_dir.mkdir(parents=True, exist_ok=True)
                tmp = entry.with_name(f".{entry.name}.tmp.npz")
                np.savez(tmp, key=np.array(f"{sha} {tta} {faces_hash}"), probabilities=predicted, seconds=np.array(took))
                tmp.replace(entry)
            except OSError as error:  # a read-only runs folder: the run goes on, the next one predicts again
                echo(f"note: could not keep the teacher predictions in {cache_dir}: {error}")
    else:
        echo(f"teachers: the predictions of all {len(found)} model(s) on these {len(x_train)} faces, tta {tta}, "
             f"read from {cache_dir.name}")
    probabilities = np.mean([p for p, _ in found.values()], axis=0).astype(np.float32)
    seconds = round(sum(s for _, s in found.values()), 2)
    return probabilities, seconds, len(unique) - len(missing)


def predict_probabilities_of(teachers: Any, faces: np.ndarray, tta: str, batch_size: int = 512) -> np.ndarray:
    """FER-ordered probabilities of a model or an ensemble on ``faces`` (chunks keep memory flat)."""
    from core.model_io import predict_probabilities

    chunks = [predict_probabilities(teachers, faces[start:start + 4096], tta=tta, batch_size=batch_size)
              for start in range(0, len(faces), 4096)]
    return np.concatenate(chunks) if chunks else np.zeros((0, NUM_CLASSES), np.float32)
