"""Widgets of the Predict page: settings sidebar, model loading, one photo's results, batch table.

Keras/TensorFlow are imported only when a model is loaded or a face is
explained, never when this module is imported. Results are cached per
(file bytes, model file version, settings), so widget clicks do not detect
and classify again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from core.detect import DEFAULT_MIN_CONFIDENCE, get_detector, list_detectors
from core.labels import CLASS_NAMES
from core.model_io import LoadedModel
from core.predict import (
    EMOTION_COLORS,
    MAX_PHOTO_PIXELS,
    MAX_ZIP_BYTES,
    NOT_AN_IMAGE_NAME,
    ImagePrediction,
    decode_photo,
    draw_predictions,
    is_image_name,
    iter_zip_images,
    predict_image,
    predictions_table,
    zip_image_summary,
)
from core.tables import spreadsheet_safe
from core.tta import TTA_LABELS, TTA_MODES
from core.wording import counted
from dashboard.images import upscale
from dashboard.model_menu import ensemble_select_ui, model_name, model_select_ui
from dashboard.url_state import remember_choice, url_choice
from dashboard.text import escape_markdown, literal, quoted

PHOTO_TYPES = ["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"]
PHOTO_HELP = (f"JPEG, PNG, WebP, BMP, GIF (first frame) or TIFF, up to {MAX_PHOTO_PIXELS // 1_000_000} megapixels; "
              "large photos are downscaled")
FACE_DISPLAY_PIXELS = 192
BATCH_ERRORS_SHOWN = 10
CONFIDENCE_STEP = 0.05  # the detector-confidence slider's step


@dataclass(frozen=True)
class PredictSettings:
    """What the sidebar chose; hashable so it can key caches."""

    model_path: str
    detector: str
    min_confidence: float = DEFAULT_MIN_CONFIDENCE
    tta: str = "none"
    ensemble: tuple[str, ...] = ()  # other models averaged with model_path

    @property
    def model_paths(self) -> tuple[str, ...]:
        """The model and the models it is averaged with."""
        return (self.model_path, *self.ensemble)


def models_description(paths: tuple[str, ...], tta: str = "none") -> str:
    """``fer_studio_swa``, ``fer_studio_swa + fer_studio_c, probabilities averaged`` for an ensemble, and the
    test-time augmentation when there is one (``fer_studio_swa, ten-crop TTA``): how the numbers were made."""
    from core.tta import TTA_SHORT

    names = [model_name(path) for path in dict.fromkeys(paths)]
    text = names[0] if len(names) == 1 else " + ".join(names) + ", probabilities averaged"
    return text + (f", {TTA_SHORT[tta]} TTA" if tta != "none" else "")


@dataclass(frozen=True)
class PhotoResult:
    """A photo's prediction, the annotated image and each face's Grad-CAM overlay (or why there is none)."""

    prediction: ImagePrediction
    annotated: np.ndarray
    overlays: tuple[np.ndarray, ...]
    explain_error: str = ""


_UPLOAD_ROUND_KEY = "predict_photo_round"


def upload_round() -> int:
    """Part of the photo uploader's key: a new round is an empty uploader."""
    return int(st.session_state.get(_UPLOAD_ROUND_KEY, 0))


def unselect_example() -> None:
    """A photo was uploaded: the example photo pills show none selected (the upload is what is shown)."""
    st.session_state["predict_example"] = None


def clear_upload() -> None:
    """An example photo was chosen: the uploaded photo, if any, is removed (a new, empty uploader)."""
    if st.session_state.get("predict_example") is not None:
        st.session_state[_UPLOAD_ROUND_KEY] = upload_round() + 1


def settings_sidebar_ui() -> PredictSettings | None:
    """Model, detector, confidence and TTA in the sidebar; ``None`` (with an explanation) when no model exists.

    The model, the models averaged with it, detector, confidence and TTA mode are in the URL (``?model=``,
    ``?ensemble=``, ``?detector=``, ``?confidence=``, ``?tta=``).
    """
    with st.sidebar:
        st.subheader("Prediction")
        model_path = model_select_ui("predict_model")
        if model_path is None:
            return None
        ensemble = ensemble_select_ui("predict_ensemble", model_path)
        detectors = {spec.name: spec for spec in list_detectors()}
        url_choice("predict_detector", list(detectors), next(iter(detectors)), param="detector", noun="face detector")
        detector = st.selectbox("Face detector", list(detectors), key="predict_detector",
                                format_func=lambda name: detectors[name].label,
                                help=" · ".join(f"{spec.label}: {spec.summary}" for spec in detectors.values()))
        remember_choice(detector, param="detector", default=next(iter(detectors)))
        # The slider's steps, rounded, so that a value is written to and read from ``?confidence=`` as the same text.
        steps = [round(step * CONFIDENCE_STEP, 2) for step in range(round(1 / CONFIDENCE_STEP) + 1)]
        if isinstance(st.session_state.get("predict_confidence"), float):
            st.session_state["predict_confidence"] = round(st.session_state["predict_confidence"], 2)
        url_choice("predict_confidence", steps, DEFAULT_MIN_CONFIDENCE, param="confidence", noun="detector confidence")
        min_confidence = st.slider("Detector confidence", 0.0, 1.0, step=CONFIDENCE_STEP, key="predict_confidence",
                                   help="Faces the detector scores below this are ignored")
        remember_choice(round(float(min_confidence), 2), param="confidence", default=DEFAULT_MIN_CONFIDENCE)
        url_choice("predict_tta", TTA_MODES, "none", param="tta", noun="test-time augmentation")
        tta = st.selectbox("Test-time augmentation", TTA_MODES, key="predict_tta", format_func=TTA_LABELS.get,
                           help="Average each face's prediction over views of it: its mirror image (flip), "
                                "or the whole face and its four corner crops, each mirrored (ten-crop)")
        remember_choice(tta, param="tta", default="none")
    return PredictSettings(str(model_path), detector, float(min_confidence), str(tta), ensemble)


def model_stamp(path: str | tuple[str, ...]) -> tuple:
    """``(mtime_ns, size)`` of a model file (a tuple of them for several): a changed file gets a new cache key."""
    if not isinstance(path, str):
        return tuple(model_stamp(one) for one in path)
    stat = Path(path).stat()
    return stat.st_mtime_ns, stat.st_size


@st.cache_resource(show_spinner=False, max_entries=4)
def _load_model_cached(path: str, stamp: tuple[int, int]) -> LoadedModel:
    from core.model_io import load_model

    return load_model(path)


def preload_model(path: str) -> LoadedModel:
    """Load a model into the cache :func:`load_model_ui` reads, drawing nothing (for a background thread).

    Raises:
        ValueError, FileNotFoundError, OSError: As ``core.model_io.load_model``.
    """
    return _load_model_cached(str(path), model_stamp(str(path)))


def load_model_ui(path: str | tuple[str, ...]) -> LoadedModel | None:
    """The model at ``path`` (or the ensemble of several paths), each loaded once per process and file version.

    ``st.error`` and ``None`` if one does not load or they cannot be combined.
    """
    from core.ensemble import make_ensemble

    paths = [path] if isinstance(path, str) else list(dict.fromkeys(path))
    current = paths[0]
    try:
        loaded = []
        for current in paths:
            with st.spinner(f"Loading {Path(current).name}…"):
                loaded.append(_load_model_cached(str(current), model_stamp(current)))
        return loaded[0] if len(loaded) == 1 else make_ensemble(loaded)
    except (ValueError, FileNotFoundError, OSError) as error:
        st.error(f"Cannot load the model `{Path(current).name}`: {literal(error, None)}")
        return None


@st.cache_data(show_spinner=False, max_entries=8)
def _analyse_photo(data: bytes, settings: PredictSettings, stamp: tuple, detect: bool, _loaded: LoadedModel) -> PhotoResult:
    image = decode_photo(data)
    prediction = predict_image(image, _loaded, detector=settings.detector, min_confidence=settings.min_confidence,
                               tta=settings.tta, detect=detect)
    overlays, explain_error = (), ""
    if prediction.faces:
        from core.explain import grad_cam, overlay_heatmap

        faces = np.stack([face.face for face in prediction.faces])
        try:
            # The class each face is labelled with, from every view the TTA mode averages: the single pass's own
            # top class differed on 12% of PublicTest's faces with ten-crop (review s20).
            shown = [CLASS_NAMES.index(face.label) for face in prediction.faces]
            heatmaps = grad_cam(_loaded, faces, shown)
            overlays = tuple(overlay_heatmap(face, heatmap, size=FACE_DISPLAY_PIXELS) for face, heatmap in zip(faces, heatmaps))
        except ValueError as error:
            explain_error = str(error)
    return PhotoResult(prediction, draw_predictions(image, prediction), overlays, explain_error)


def probability_figure(probabilities: np.ndarray, title: str = "") -> go.Figure:
    """Bars of the seven probabilities in FER2013 order, coloured per emotion, the top one labelled."""
    values = [float(p) for p in probabilities]
    top = int(np.argmax(values))
    colors = [f"rgb{EMOTION_COLORS[name]}" for name in CLASS_NAMES]
    figure = go.Figure(go.Bar(
        x=list(CLASS_NAMES), y=values, marker_color=colors, marker_line_width=[3 if i == top else 0 for i in range(len(values))],
        text=[f"{v:.0%}" for v in values], textposition="outside", hovertemplate="%{x}: %{y:.1%}<extra></extra>",
    ))
    figure.update_layout(title=title, height=260, margin={"t": 40 if title else 10, "b": 10, "l": 10, "r": 10},
                         yaxis={"range": [0, 1.15], "tickformat": ".0%", "title": None}, xaxis_title=None, showlegend=False)
    figure.update_xaxes(categoryorder="array", categoryarray=list(CLASS_NAMES))
    return figure


def whole_image_key(data: bytes, key: str) -> str:
    """Session key of the "classify the whole image" box of this photo (``<key>_whole_<digest>``)."""
    return f"{key}_whole_{hashlib.sha256(data).hexdigest()[:16]}"


def photo_ui(data: bytes, name: str, loaded: LoadedModel, settings: PredictSettings, *, key: str) -> ImagePrediction | None:
    """Predict one uploaded photo and draw everything; ``st.error`` and ``None`` for a file that is not a usable image.

    "Classify the whole image" belongs to the photo it was ticked for: its
    widget key holds a digest of the photo's bytes, so the next photo starts
    with face detection again.
    """
    whole_key = whole_image_key(data, key)
    whole_image = bool(st.session_state.get(whole_key, False))
    try:
        with st.spinner("Finding faces…"):
            result = _analyse_photo(data, settings, model_stamp(settings.model_paths), not whole_image, loaded)
    except (ValueError, OSError) as error:
        st.error(f"Cannot read {quoted(name)}: {literal(error, None)}")
        return None
    prediction = result.prediction
    if not prediction.faces or whole_image:
        if not whole_image:
            st.warning(f"No face found in {quoted(name)} (detector {get_detector(settings.detector).label}, "
                       f"confidence ≥ {settings.min_confidence:.2f}). "
                       "Try the other detector, a lower confidence, or classify the whole image.")
        st.checkbox("Classify the whole image as one face", key=whole_key, persist_state="session",
                    help="For photos that are already a close crop of one face")
    # The models are named on the result itself: an ensemble's numbers must not pass for one model's.
    models = escape_markdown(models_description(settings.model_paths, settings.tta))  # run ids are folder names: escaped too
    st.image(result.annotated, caption=f"{literal(name)} · {counted(len(prediction.faces), 'face')} · {models}"
             # The analysis is cached: its times are those of the first analysis, and say so (walk s18).
             f" · first analysed in: detection {prediction.detect_ms:.0f} ms, classification "
             f"{prediction.classify_ms:.0f} ms",
             width="content")  # never wider than the screen
    if result.explain_error:
        st.caption(f"Grad-CAM unavailable: {literal(result.explain_error, None)}")
    members = len(dict.fromkeys(settings.model_paths))
    for index, face in enumerate(prediction.faces):
        faces_ui(index, face, result.overlays[index] if result.overlays else None, key=key, members=members)
    if prediction.faces and (note := smoothing_ceiling_note(settings.model_paths)):
        st.caption(note)
    return prediction


def smoothing_ceiling_note(paths: tuple[str, ...]) -> str:
    """Why a face the model is sure of reads about 86%, not 100% (walk s21: a newcomer reads 86% as unsure)."""
    from core.compare import training_setting

    values = [training_setting(path, "label_smoothing") for path in dict.fromkeys(paths)]
    values = [float(v) for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < 1]
    if not values:
        return ""
    smoothing = max(values)
    ceiling = 1 - smoothing + smoothing / len(CLASS_NAMES)
    return (f"{'This model was' if len(values) == 1 else 'These models were'} trained with label smoothing "
            f"{smoothing:g}: the target for the right emotion was {ceiling:.0%}, not 100%, so a face the model is sure "
            f"of reads a little under {ceiling:.0%}.")


def faces_ui(index: int, face, overlay: np.ndarray | None, *, key: str, members: int = 1) -> None:
    """One face: the 48x48 model input (enlarged), its Grad-CAM overlay and the probability bars.

    ``members``: how many models' probabilities were averaged (more than one is said in the header).
    """
    averaged = f" · average of {members} models" if members > 1 else ""
    st.markdown(f"**Face {index + 1}: {face.label}** ({face.score:.0%}{averaged}) · box x={face.box.x}, y={face.box.y}, "
                f"{face.box.w}×{face.box.h} px")
    crop_column, cam_column, chart_column = st.columns([1, 1, 2.5], vertical_alignment="center")
    crop_column.image(upscale(face.face, FACE_DISPLAY_PIXELS), caption="What the model saw (48×48)", width=FACE_DISPLAY_PIXELS)
    if overlay is not None:
        cam_column.image(overlay, caption=f"Grad-CAM for “{face.label}”", width=FACE_DISPLAY_PIXELS)
    chart_column.plotly_chart(probability_figure(face.probabilities), key=f"{key}_chart_{index}", config={"displayModeBar": False})


@st.cache_data(show_spinner=False, max_entries=1024)
def _predict_cached(data: bytes, settings: PredictSettings, stamp: tuple, _loaded: LoadedModel) -> ImagePrediction:
    return predict_image(decode_photo(data), _loaded, detector=settings.detector, min_confidence=settings.min_confidence,
                         tta=settings.tta)


def expand_uploads(files: list[tuple[str, bytes]], *, max_total_bytes: int = MAX_ZIP_BYTES
                   ) -> tuple[int, Iterator[tuple[str, bytes | str]]]:
    """``(count, items)``: how many files a batch holds once its zips are opened, and those files one at a time.

    ``items`` yields ``(name, bytes)`` per photo, a zip's members as
    ``zip/member``, read one at a time while they are predicted (holding them
    all cost 524 MB for one 562 KB zip of 500 small members, probe s11), and
    ``(name, reason)`` for a zip or member that cannot be read. The images of
    all the zips of one batch add up to at most ``max_total_bytes`` (each zip
    alone had that limit, so many zips multiplied it): a zip past it is
    skipped with the reason.
    """
    plans: list[tuple[str, str, bytes | str]] = []
    count, budget = 0, max_total_bytes
    for name, data in files:
        if not name.lower().endswith(".zip"):
            plans.append(("file", name, data))
            count += 1
            continue
        try:
            images, expanded = zip_image_summary(data)
        except ValueError as error:
            plans.append(("error", name, str(error)))
            count += 1
            continue
        if expanded > budget:
            plans.append(("error", name, f"the zips of this batch hold more than {max_total_bytes / 1024**2:.0f} MiB "
                                         "of images together: predict this one in another batch"))
            count += 1
            continue
        budget -= expanded
        plans.append(("zip", name, data))
        count += images

    def items() -> Iterator[tuple[str, bytes | str]]:
        for kind, name, payload in plans:
            if kind != "zip":
                yield name, payload
                continue
            try:
                for member, content in iter_zip_images(payload):
                    # A member that could not be read comes with the reason in place of its bytes.
                    yield f"{name}/{member}", content
            except ValueError as error:  # checked above already; a zip that changed cannot, but say so if it does
                yield name, str(error)

    return count, items()


def table_for_display(table):
    """``table`` with empty cells (no face, no probabilities) empty instead of a literal "None", as text.

    Text, so that Arrow takes each column as it is: numbers beside "" made its conversion fail and log a
    traceback on every rerun, before Streamlit fell back to text itself (walk s19).
    """
    return table.astype(object).where(table.notna(), "").astype(str)


def batch_ui(files: list[tuple[str, bytes]], loaded: LoadedModel, settings: PredictSettings) -> None:
    """Predict many photos (and zips of photos); show one row per face and offer the CSV."""
    count, items = expand_uploads(files)
    results: list[tuple[str, ImagePrediction | str]] = []
    progress = st.progress(0.0, text="Predicting…")
    stamp = model_stamp(settings.model_paths)
    for done, (name, data) in enumerate(items, start=1):
        if isinstance(data, str):  # a zip or member that could not be read: the reason
            results.append((name, data))
        elif not is_image_name(name):
            results.append((name, NOT_AN_IMAGE_NAME))
        else:
            try:
                results.append((name, _predict_cached(data, settings, stamp, loaded)))
            except (ValueError, OSError) as error:
                results.append((name, str(error)))
        progress.progress(min(1.0, done / max(1, count)), text=f"Predicting… {done}/{count}")
    progress.empty()
    table = predictions_table(results)
    faces = int(table["face"].notna().sum())
    failed = sum(isinstance(result, str) for _, result in results)
    st.write(f"**{counted(len(results), 'file')}, {counted(faces, 'face')}** · "
             f"{escape_markdown(models_description(settings.model_paths, settings.tta))}"
             + (f" · {failed} skipped" if failed else ""))
    if failed:
        # Names come from the upload and from inside its zips: inert text, never markdown (dashboard/text.py).
        reasons = [f"- {quoted(name)}: {literal(result, 200)}" for name, result in results if isinstance(result, str)]
        shown = reasons[:BATCH_ERRORS_SHOWN]
        more = len(reasons) - len(shown)
        st.warning("These files were skipped; the other files' results are below.\n\n" + "\n".join(shown)
                   + (f"\n\n…and {more} more (see the `note` column)" if more else ""))
    # What the user came for first: each face's emotion and confidence, then why a row has no face (not 17
    # columns to the right), the probabilities, and the box last (walk s21: at 1400 px the emotion was off-screen,
    # behind the box and a half-width, mostly empty note).
    order = ["file", "face", "emotion", "confidence", "note", *CLASS_NAMES, "x", "y", "w", "h", "detector_score"]
    order += [column for column in table.columns if column not in order]
    st.dataframe(table_for_display(table), hide_index=True, width="stretch", column_order=order,
                 column_config={"file": st.column_config.TextColumn("file", pinned=True),
                                "note": st.column_config.TextColumn("note", width="medium")})
    st.download_button("Download CSV", spreadsheet_safe(table).to_csv(index=False).encode("utf-8"), file_name="fer_predictions.csv",
                       mime="text/csv", key="predict_batch_csv")
