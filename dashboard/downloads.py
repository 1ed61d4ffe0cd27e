"""Download buttons: a model with its card, a run's metrics, an evaluation's predictions and confusion matrix.

Large files (a model is up to tens of MB) are read only when the button is
clicked (Streamlit's deferred ``data``), so drawing a page stays cheap.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from core.labels import CLASS_NAMES
from core.tables import spreadsheet_safe

# Files that describe a run's model: its settings, its curves, its test scores.
RUN_CARD_FILES = ("config.json", "metrics.csv", "evaluation.json")


def model_package(model_path: str | Path) -> bytes:
    """A zip of the ``.keras`` file and its card.

    The card is the model's ``<name>.json`` beside it (the bundled model), or
    for a run's ``best.keras`` the run's ``config.json``, ``metrics.csv`` and
    ``evaluation.json`` (those present). The ``.keras`` file itself holds the
    class names, so it also works alone.

    Raises:
        FileNotFoundError: If ``model_path`` does not exist.
    """
    model_path = Path(model_path)
    if not model_path.is_file():
        raise FileNotFoundError(f"{model_path.name} does not exist")
    card_files = [model_path.with_suffix(".json")]
    card_files += [model_path.parent / name for name in RUN_CARD_FILES]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(model_path, model_path.name)
        for card in card_files:
            if card.is_file() and card != model_path:
                archive.write(card, card.name)
    return buffer.getvalue()


def model_package_name(model_path: str | Path) -> str:
    """``<run id>.zip`` for a run's model, ``<model name>.zip`` for a bundled one."""
    model_path = Path(model_path)
    return f"{model_path.parent.name if model_path.name in ('best.keras', 'last.keras') else model_path.stem}.zip"


def model_download_ui(model_path: str | Path, *, key: str) -> None:
    """A button that downloads the model and its card as a zip."""
    st.download_button("Model (.keras + card)", lambda: model_package(model_path), file_name=model_package_name(model_path),
                       mime="application/zip", key=key, icon=":material/download:", on_click="ignore",
                       help="The .keras file (class names inside; loads with keras.saving.load_model) and the "
                            "settings, curves and scores it came with")


def metrics_download_ui(run_dir: Path, *, key: str) -> None:
    """A button that downloads the run's ``metrics.csv`` (nothing while it has no finished epoch)."""
    metrics = Path(run_dir) / "metrics.csv"
    if metrics.is_file():
        st.download_button("metrics.csv", lambda: metrics.read_bytes(), file_name=f"{Path(run_dir).name}-metrics.csv",
                           mime="text/csv", key=key, icon=":material/download:", on_click="ignore",
                           help="Per epoch: loss, accuracy, val_loss, val_accuracy, learning rate, epoch time")


def predictions_frame(result) -> pd.DataFrame:
    """One row per image of an evaluation: file, true, predicted, confidence and the seven probabilities."""
    frame = pd.DataFrame({
        "file": np.asarray(result.ids).astype(str),
        "true": [CLASS_NAMES[label] for label in result.labels],
        "predicted": [CLASS_NAMES[label] for label in result.predictions],
        "confidence": np.round(result.confidences.astype(float), 4),
    })
    for column, name in enumerate(CLASS_NAMES):
        frame[name] = np.round(result.probabilities[:, column].astype(float), 4)
    return frame


def confusion_frame(result) -> pd.DataFrame:
    """The confusion matrix with named rows (true class) and columns (predicted class)."""
    frame = pd.DataFrame(np.asarray(result.confusion, dtype=np.int64), index=list(CLASS_NAMES), columns=list(CLASS_NAMES))
    return frame.rename_axis("true \\ predicted")


def evaluation_downloads_ui(result, stem: str, *, key: str) -> None:
    """Buttons for the per-image predictions and the confusion matrix of one evaluation, as CSV."""
    left, right = st.columns(2)
    left.download_button("Per-image predictions (CSV)", lambda: spreadsheet_safe(predictions_frame(result)).to_csv(index=False),
                         file_name=f"{stem}-predictions.csv", mime="text/csv", key=f"{key}_predictions",
                         icon=":material/download:", on_click="ignore", width="stretch",
                         help="File, true class, predicted class, confidence and the seven probabilities")
    right.download_button("Confusion matrix (CSV)", lambda: confusion_frame(result).to_csv(),
                          file_name=f"{stem}-confusion.csv", mime="text/csv", key=f"{key}_confusion",
                          icon=":material/download:", on_click="ignore", width="stretch",
                          help="Rows: true class; columns: predicted class; image counts")
