"""Training runs and bundled models as rows of one comparison.

A run folder and a bundled model's card (``models/<name>.json``) hold the
same facts in different places: the training settings, the validation
accuracy per epoch, the best validation accuracy, the training time and the
held-out scores. :func:`compared_models` reads both into
:class:`ComparedModel` records, so the Compare page can put the bundled
models next to the user's own runs (walk s10: it could compare runs only,
and a first-time user, who has no runs, saw nothing to compare).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

from core import runs
from core.bundle import card_scores
from core.evaluate import recorded_results

BUNDLED_PREFIX = "bundled-"
# Held-out splits a card can report (bundle_run scores PublicTest, and PrivateTest where the data has it).
CARD_SPLITS = ("PublicTest", "PrivateTest")


@dataclass(frozen=True)
class ComparedModel:
    """One row of the comparison: a training run or a bundled model.

    Attributes:
        model_id: The run id, or ``bundled-<stem>`` for a bundled model (what
            the page's URL holds).
        name: What the page shows: the run id, or ``fer_studio_swa (bundled)``.
        kind: ``run`` or ``bundled``.
        architecture: The network's registry name (``fer_vgg``), ``?`` if unknown.
        model_path: The model to evaluate (a run's ``best.keras``, the bundled
            ``.keras``), or ``None`` while a run has none.
        epochs_done: Epochs trained (for a bundled model, of its last training run).
        epochs_planned: Epochs the run was configured for (0 if unknown).
        best_val_accuracy: The kept checkpoint's validation accuracy, or ``None``.
        best_at: Where that accuracy comes from: ``epoch 38`` or ``averaged epochs 1-33``.
        training_seconds: Training time of the run, 0.0 if unknown.
        state: The run's state (``running``, ``finished``...) or ``bundled``.
        config: The training settings (``config.json``, or the card's copy).
        metrics: Rows per epoch (``epoch``, ``accuracy``, ``val_accuracy``,
            ``loss``, ``val_loss``...); a card keeps ``val_accuracy`` only.
        test_results: ``{split: {tta mode: accuracy}}``: a run's recorded
            evaluations, a bundled model's card scores.
        val_class_counts: Validation images per class (FER2013 order), as the
            run recorded them, or None (a card, an older run).
    """

    model_id: str
    name: str
    kind: str
    architecture: str
    model_path: Path | None
    epochs_done: int
    epochs_planned: int
    best_val_accuracy: float | None
    best_at: str
    training_seconds: float
    state: str
    config: dict = field(default_factory=dict)
    metrics: list[dict] = field(default_factory=list)
    test_results: dict[str, dict[str, float]] = field(default_factory=dict)
    val_class_counts: list[int] | None = None


def run_entry(summary: runs.RunSummary) -> ComparedModel:
    """A run folder's row, from its summary, ``config.json``, ``metrics.csv`` and ``evaluation.json``."""
    saved = runs.read_config(summary.path)
    config = saved.get("config", {})
    resolved = saved.get("resolved") if isinstance(saved.get("resolved"), dict) else {}
    return ComparedModel(
        model_id=summary.run_id, name=summary.run_id, kind="run", architecture=summary.model,
        model_path=summary.path / "best.keras" if summary.has_model else None,
        epochs_done=summary.epochs_done, epochs_planned=summary.epochs_planned,
        best_val_accuracy=summary.best_val_accuracy,
        best_at=f"epoch {summary.best_epoch}" if summary.best_epoch is not None else "",
        training_seconds=summary.training_seconds, state=summary.status.state,
        config=config if isinstance(config, dict) else {},
        metrics=runs.read_metrics(summary.path),
        test_results={split: modes for split, modes in recorded_results(summary.path).items() if modes},
        val_class_counts=resolved.get("val_class_counts"),
    )


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _whole(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def bundled_entry(model_path: Path) -> ComparedModel:
    """A bundled model's row, from its card (``<model>.json`` beside it).

    A card that is missing or cannot be read gives a row with the name and
    the file only, so the model can still be evaluated on the page.
    """
    model_path = Path(model_path)
    try:
        card = json.loads(model_path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        card = {}
    card = card if isinstance(card, dict) else {}
    training = card.get("training") if isinstance(card.get("training"), dict) else {}
    checkpoint = card.get("checkpoint") if isinstance(card.get("checkpoint"), dict) else {}
    config = card.get("config") if isinstance(card.get("config"), dict) else {}
    curve = card.get("accuracy_vs_training_time") if isinstance(card.get("accuracy_vs_training_time"), list) else []
    metrics = [{"epoch": row["epoch"], "val_accuracy": row["val_accuracy"]} for row in curve
               if isinstance(row, dict) and _whole(row.get("epoch")) is not None and _number(row.get("val_accuracy")) is not None]

    averaged = checkpoint.get("kind") == "averaged" and _number(checkpoint.get("val_accuracy")) is not None
    if averaged:
        best = _number(checkpoint["val_accuracy"])
        epochs = checkpoint.get("epochs")
        best_at = (f"averaged epochs {epochs[0]}-{epochs[1]}" if isinstance(epochs, list) and len(epochs) == 2
                   else "averaged")
    else:
        best = _number(training.get("best_val_accuracy"))
        best_at = f"epoch {training['best_epoch']}" if _whole(training.get("best_epoch")) is not None else ""
    architecture = card.get("architecture") if isinstance(card.get("architecture"), str) else config.get("model", "?")
    return ComparedModel(
        model_id=BUNDLED_PREFIX + model_path.stem, name=f"{model_path.stem} (bundled)", kind="bundled",
        architecture=architecture if isinstance(architecture, str) else "?", model_path=model_path,
        epochs_done=_whole(training.get("epochs")) or len(metrics),
        epochs_planned=_whole(config.get("epochs")) or 0,
        best_val_accuracy=best, best_at=best_at if best is not None else "",
        training_seconds=_number(training.get("seconds")) or 0.0, state="bundled", config=config, metrics=metrics,
        test_results={split: scores for split in CARD_SPLITS if (scores := card_scores(model_path, split))},
    )


def compared_models(runs_dir: Path | None = None) -> list[ComparedModel]:
    """Every run (newest first), then every bundled model (the default first)."""
    from core.predict import bundled_models

    return [*(run_entry(summary) for summary in runs.list_runs(runs_dir)),
            *(bundled_entry(path) for path in bundled_models())]


def with_recorded_results(entries: list[ComparedModel]) -> list[ComparedModel]:
    """``entries`` with each run's test results read again from its ``evaluation.json`` (only those files).

    For a page that evaluated some runs after listing them: the rest of each
    row (config, metrics) has not changed and is not read again.
    """
    return [replace(entry, test_results={split: modes for split, modes in recorded_results(entry.model_path.parent).items()
                                         if modes})
            if entry.kind == "run" and entry.model_path is not None else entry
            for entry in entries]


def training_setting(model_path: str | Path, name: str):
    """A training setting (``label_smoothing`` ...) of the model at ``model_path``: from a bundled model's card or
    from the config of the run folder it lies in; ``None`` when neither says."""
    path = Path(model_path)
    config = {}
    try:
        card = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
        config = card.get("config") if isinstance(card, dict) and isinstance(card.get("config"), dict) else {}
    except (OSError, ValueError):
        pass
    if not config and (path.parent / "config.json").is_file():
        saved = runs.read_config(path.parent)
        config = saved.get("config") if isinstance(saved.get("config"), dict) else {}
    return config.get(name)
