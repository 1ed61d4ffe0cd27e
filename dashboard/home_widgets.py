"""Pieces of the Home page: the bundled models' scores, example photo cards, where to get FER2013."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st

from dashboard.examples import ExamplePhoto
from dashboard.training_widgets import format_accuracy

PREDICT_PAGE = "pages/predict.py"
KAGGLE_CHALLENGE = "https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge/data"
KAGGLE_IMAGE_FOLDERS = "https://www.kaggle.com/datasets/msambare/fer2013"

def where_to_get_fer2013() -> str:
    """Where to download FER2013 and the three ways to point FER Studio at it, naming the folders a typed path may use."""
    from dashboard.data_source import data_folders_text

    return f"""\
FER2013 (35,887 faces of 48×48 pixels, seven emotions) is not shipped with FER Studio. Download either release from Kaggle
(a free account is needed):

* the [challenge file]({KAGGLE_CHALLENGE}) `fer2013.csv` (columns `emotion`, `pixels`, `Usage`), or
* the [image-folder release]({KAGGLE_IMAGE_FOLDERS}): `train/<class>/*.jpg` and `test/<class>/*.jpg`.

Then point FER Studio at it in one of three ways:

1. start the app with `FER2013_DIR=/path/to/fer2013 streamlit run streamlit_app.py`;
2. put it inside a data folder ({data_folders_text()}) and type the folder, CSV or zip path under **Dataset**
   in the sidebar: paths elsewhere are refused, since the server reads them;
3. upload `fer2013.csv` or a zip of the folders under **Dataset** in the sidebar.
"""


@dataclass(frozen=True)
class CardScore:
    """A held-out score read from a bundled model's card: one model, or the ensemble (``members``) it reports."""

    members: tuple[Path, ...]
    accuracy: float
    mode: str  # the test-time augmentation: "none", "flip" or "crop10"
    faces: int | None = None


def _card(path: Path) -> dict:
    try:
        card = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


def _best_mode(evaluation) -> tuple[float, str, int | None] | None:
    """``(accuracy, mode, faces)`` of the best PublicTest entry of a card's ``evaluation`` block."""
    from core.bundle import CARD_TTA_SUFFIXES

    best = None
    for mode, suffix in CARD_TTA_SUFFIXES.items():
        entry = evaluation.get("PublicTest" + suffix) if isinstance(evaluation, dict) else None
        accuracy = entry.get("accuracy") if isinstance(entry, dict) else None
        if isinstance(accuracy, (int, float)) and not isinstance(accuracy, bool) and 0.0 <= accuracy <= 1.0:
            if best is None or accuracy > best[0]:
                faces = entry.get("n")
                best = (float(accuracy), mode, int(faces) if isinstance(faces, int) else None)
    return best


def best_bundled_model() -> CardScore | None:
    """The bundled model with the best single-pass PublicTest score on its card (``None`` without cards)."""
    from core.bundle import card_scores
    from core.predict import bundled_models

    best = None
    for path in bundled_models():
        scores = card_scores(path)
        if "none" in scores and (best is None or scores["none"] > best.accuracy):
            faces = (_card(path).get("evaluation") or {}).get("PublicTest", {}).get("n")
            best = CardScore((path,), scores["none"], "none", faces if isinstance(faces, int) else None)
    return best


def best_bundled_ensemble() -> CardScore | None:
    """The best PublicTest score of an ensemble reported on a bundled model's card (``card["ensemble"]``), at its
    best test-time augmentation; only ensembles whose members are all bundled. ``None`` when no card reports one."""
    from core.predict import bundled_models

    models = bundled_models()
    by_name = {path.name: path for path in models}
    best = None
    for path in models:
        ensemble = _card(path).get("ensemble")
        if not isinstance(ensemble, dict) or not isinstance(ensemble.get("members"), list):
            continue
        members = [by_name.get(str(name)) for name in ensemble["members"]]
        scored = _best_mode(ensemble.get("evaluation"))
        if None in members or len(members) < 2 or scored is None:
            continue
        if best is None or scored[0] > best.accuracy:
            best = CardScore(tuple(members), *scored)
    return best


def bundled_models_text() -> str | None:
    """What the bundled models score, from their cards, and where to choose them; ``None`` without a card.

    ``**fer_studio_swa**, the best of the four alone, scores **69.24%** on FER2013's PublicTest (3,589 faces);
    averaged, **fer_studio_swa + fer_studio_c + fer_studio_distilled** score **70.55%** with ten-crop …``
    """
    from core.bundle import card_scores
    from core.predict import bundled_models
    from core.tta import TTA_SHORT

    single = best_bundled_model()
    if single is None:
        return None
    count = len(bundled_models())
    model = single.members[0]
    faces = f" ({single.faces:,} faces)" if single.faces else ""
    text = (f"**{model.stem}**" + (f", the best alone of the {count} bundled models," if count > 1 else "")
            + f" scores **{format_accuracy(single.accuracy)}** on FER2013's PublicTest{faces}")
    crop10 = card_scores(model).get("crop10")
    if crop10 is not None and crop10 > single.accuracy:
        text += f", {format_accuracy(crop10)} with ten-crop"
    ensemble = best_bundled_ensemble()
    if ensemble is not None and ensemble.accuracy > single.accuracy:
        with_tta = f" with {TTA_SHORT[ensemble.mode]}" if ensemble.mode != "none" else ""
        text += (f"; averaged, **{' + '.join(path.stem for path in ensemble.members)}** score "
                 f"**{format_accuracy(ensemble.accuracy)}**{with_tta}")
    return text + "."


def bundled_model_id(path: Path) -> str:
    """A bundled model's id in the model menus and the URL (``bundled`` for the default one)."""
    from core.predict import default_model_path
    from dashboard.model_menu import BUNDLED_ID

    return BUNDLED_ID if path == default_model_path() else f"{BUNDLED_ID}-{path.stem}"


def example_query_params(name: str) -> dict[str, str]:
    """Predict's URL choices for one of Home's example photos: the photo, and the model Home names.

    That is the best single bundled model, alone, not the model last chosen on another page: a 25% run picked
    on Evaluation answered Home's examples (walk s19).
    """
    best = best_bundled_model()
    params = {"example": name, "ensemble": ""}
    if best is not None:
        params["model"] = bundled_model_id(best.members[0])
    return params


def best_ensemble_query_params() -> dict[str, str] | None:
    """The Predict page's URL choices (``model``, ``ensemble``, ``tta``) for the best ensemble on the cards, and the
    first example photo (``example``), so the link lands on a prediction rather than an empty page (walk s10)."""
    ensemble = best_bundled_ensemble()
    if ensemble is None:
        return None
    params = {"model": bundled_model_id(ensemble.members[0]),
              "ensemble": ",".join(bundled_model_id(path) for path in ensemble.members[1:])}
    if ensemble.mode != "none":
        params["tta"] = ensemble.mode
    from dashboard.examples import available_examples

    examples = available_examples()
    if examples:
        params["example"] = next(iter(examples))
    return params


EXAMPLE_CARD_WIDTH = 104  # pixels: three cards side by side in Home's column, on a desktop and on a 390-pixel phone


@st.cache_data(show_spinner=False, max_entries=8)
def square_thumbnail(path: str, size: int = 240):
    """The whole photo in a square, ``size`` pixels wide (so the cards line up), as an RGB array.

    Letterboxed, not cropped: a centre crop of the three-faces photo cut two
    of its faces off (walk s10).
    """
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        return np.asarray(ImageOps.pad(image.convert("RGB"), (size, size), color=(240, 242, 246)))


def example_card_ui(photo: ExamplePhoto, *, key: str) -> None:
    """A square thumbnail of an example photo and a button that opens it on the Predict page, predicted by the
    model Home names (:func:`example_query_params`)."""
    st.image(square_thumbnail(str(photo.path)), width="stretch")
    if st.button(photo.title, key=key, width="stretch",
                 help=f"Predict this photo with the best single bundled model: {photo.caption} ({photo.licence})"):
        st.switch_page(PREDICT_PAGE, query_params=example_query_params(photo.name))


def dataset_summary(dataset) -> str:
    """``35,887 faces: Training 28,709 · PublicTest 3,589 · PrivateTest 3,589``."""
    parts = [f"{split} {int((dataset.splits == split).sum()):,}" for split in dataset.split_names]
    text = f"{len(dataset):,} faces: " + " · ".join(parts)
    if "PrivateTest" not in dataset.split_names and "PublicTest" in dataset.split_names:
        # FER2013 has 35,887 faces, as the text below says: a copy without PrivateTest has 32,298 (walk s19).
        text += " (this copy has no PrivateTest split)"
    return text


def source_name(source: str | None) -> str:
    """The last part of a dataset path: enough for a user, without the server's folder layout."""
    return Path(source).name if source else "—"
