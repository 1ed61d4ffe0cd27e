"""Pieces of the Home page: the bundled model's headline, example photo cards, where to get FER2013."""

from __future__ import annotations

import json
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


def bundled_model_headline() -> str | None:
    """``"67.96% on FER2013's PublicTest"`` from the bundled model's card, or ``None`` without one."""
    from core.predict import default_model_path

    model = default_model_path()
    card = model.with_suffix(".json") if model is not None else None
    if card is None or not card.is_file():
        return None
    try:
        evaluation = json.loads(card.read_text(encoding="utf-8")).get("evaluation", {})
        public = evaluation["PublicTest"]
        return f"{format_accuracy(float(public['accuracy']))} on FER2013's PublicTest ({int(public['n']):,} faces)"
    except (OSError, ValueError, KeyError, TypeError):
        return None


def bundled_ensemble_headline() -> str | None:
    """``"69.90% when averaged with fer_studio_b.keras"`` from a second bundled model's card, or ``None``."""
    from core.predict import bundled_models

    for model in bundled_models()[1:]:
        try:
            ensemble = json.loads(model.with_suffix(".json").read_text(encoding="utf-8")).get("ensemble") or {}
            accuracy = float(ensemble["evaluation"]["PublicTest"]["accuracy"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        return f"{format_accuracy(accuracy)} when averaged with the second bundled model ({model.name})"
    return None


@st.cache_data(show_spinner=False, max_entries=8)
def square_thumbnail(path: str, size: int = 240):
    """The centre square of a photo, ``size`` pixels wide (so the cards line up), as an RGB array."""
    from PIL import Image, ImageOps

    with Image.open(path) as image:
        return np.asarray(ImageOps.fit(image.convert("RGB"), (size, size)))


def example_card_ui(photo: ExamplePhoto, *, key: str) -> None:
    """A square thumbnail of an example photo and a button that opens it on the Predict page."""
    st.image(square_thumbnail(str(photo.path)), width="stretch")
    if st.button(photo.title, key=key, icon=":material/sentiment_satisfied:", width="stretch",
                 help=f"Predict this photo: {photo.caption} ({photo.licence})"):
        st.switch_page(PREDICT_PAGE, query_params={"example": photo.name})


def dataset_summary(dataset) -> str:
    """``35,887 faces: Training 28,709 · PublicTest 3,589 · PrivateTest 3,589``."""
    parts = [f"{split} {int((dataset.splits == split).sum()):,}" for split in dataset.split_names]
    return f"{len(dataset):,} faces: " + " · ".join(parts)


def source_name(source: str | None) -> str:
    """The last part of a dataset path: enough for a user, without the server's folder layout."""
    return Path(source).name if source else "—"
