"""The Export section of the Evaluation page: a model to ONNX, LiteRT or SavedModel, with its card, as a download.

The export runs ``core.export.export_model`` (with its parity check on the
current dataset's PublicTest, or synthetic faces) into a temporary folder;
the artifact and its card are zipped in memory and kept in
``st.session_state`` so the download button survives reruns.
"""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import streamlit as st

from core.export import FORMAT_SUMMARIES, FORMATS, QUANTIZE_MODES, ExportResult, export_model, parity_set_from_dataset
from dashboard.evaluation_widgets import model_options
from dashboard.downloads import model_package_name
from dashboard.text import literal, quoted

STATE_KEY = "export_result"


def export_zip_name(stem: str, artifact: str) -> str:
    """``20261207-fer_vgg-4ee1-best.onnx.zip`` for a run (every run's model is ``best``); ``fer_studio_swa.onnx.zip``
    for a model whose artifact already carries its name (walk s21: ``fer_studio_swa-fer_studio_swa.onnx.zip``)."""
    named = artifact == stem or artifact.startswith((f"{stem}.", f"{stem}_"))
    return f"{artifact}.zip" if named else f"{stem}-{artifact}.zip"


def zip_export(result: ExportResult) -> bytes:
    """The artifact (a file, or a SavedModel folder) and its card as zip bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        if result.artifact.is_dir():
            for path in sorted(result.artifact.rglob("*")):
                if path.is_file():
                    archive.write(path, Path(result.artifact.name) / path.relative_to(result.artifact))
        else:
            archive.write(result.artifact, result.artifact.name)
        archive.write(result.card_path, result.card_path.name)
    return buffer.getvalue()


def parity_ui(card: dict) -> None:
    """The parity figures of an export's card as metrics and one line of context."""
    parity = card["parity"]
    columns = st.columns(4)
    columns[0].metric("Max |difference|", f"{parity['max_abs_difference']:.1e}",
                      help="Largest difference of any probability between the export and the .keras model")
    columns[1].metric("Top-1 agreement", f"{parity['top1_agreement']:.2%}")
    if parity["export_accuracy"] is not None:
        change = parity["accuracy_change"] or 0.0
        columns[2].metric("Export accuracy", f"{parity['export_accuracy']:.2%}", f"{change * 100:+.2f} pt vs .keras",
                          delta_color="off" if change == 0 else "normal", delta_arrow="off" if change == 0 else "auto")
    columns[3].metric("Size", f"{card['size_bytes'] / 1e6:.1f} MB")
    st.caption(f"Checked on {parity['source']}: {parity['criterion']} ({'passed' if parity['passed'] else 'failed'}).")


def export_ui(dataset=None, model_path: str | None = None) -> None:
    """Draw the Export section (an expander): pick model, format and quantisation, export, show parity, offer the zip.

    ``model_path`` is the model the page shows: the section's own picker starts on it, and moves with it
    when the page's model changes (a model picked here stays while the page's stays the same).
    """
    with st.expander("Export: ONNX, LiteRT (TFLite) or SavedModel, for use outside the studio",
                     expanded=STATE_KEY in st.session_state):
        _export_section(dataset, model_path)


def _follow_page_model(options: dict[str, str], model_path: str | None) -> None:
    page_label = next((label for label, path in options.items() if path == model_path), None)
    if page_label is not None and st.session_state.get("export_model_follows") != page_label:
        st.session_state["export_model"] = page_label  # walk s12: it exported the bundled model, not the page's
        st.session_state["export_model_follows"] = page_label


def _export_section(dataset, model_path: str | None = None) -> None:
    options = model_options()
    if not options:
        st.info("No model to export yet: train one on the **Training** page or bundle one into `models/`.")
        return
    _follow_page_model(options, model_path)
    with st.form("export_form"):
        left, middle, right = st.columns([2, 2, 1])
        label = left.selectbox("Model", list(options), key="export_model")
        format = middle.selectbox("Format", list(FORMATS), key="export_format", format_func=lambda name: FORMAT_SUMMARIES[name])
        quantize = right.selectbox("Quantise", QUANTIZE_MODES, key="export_quantize",
                                   help="dynamic: int8 weights, about 4x smaller (ONNX and LiteRT); the accuracy change is shown")
        submitted = st.form_submit_button("Export")
    if submitted:
        parity_set = parity_set_from_dataset(dataset)
        try:
            with st.spinner(f"Exporting to {format} and checking it on {len(parity_set.faces):,} faces…"):
                with tempfile.TemporaryDirectory() as folder:
                    result = export_model(options[label], format, out=folder, quantize=quantize, parity_set=parity_set)
                    # Named after the run or bundled model (every run's model is best.keras), with the settings
                    # that made it: shown only while the pickers still say them (review s20).
                    stem = model_package_name(options[label]).removesuffix(".zip")
                    st.session_state[STATE_KEY] = {"card": result.card, "zip": zip_export(result),
                                                   "name": export_zip_name(stem, result.artifact.name), "label": label,
                                                   "settings": (options[label], format, quantize)}
        except (ValueError, FileNotFoundError) as error:
            st.session_state.pop(STATE_KEY, None)
            st.error(f"Cannot export `{Path(options[label]).name}`: {literal(error, None)}")
            return
    exported = st.session_state.get(STATE_KEY)
    if exported is None:
        st.caption("Export a model for use without this studio: the artifact comes with a card (class names, input "
                   "spec, accuracy, parity, six lines of usage). See docs/export.md.")
        return
    made_with = exported.get("settings") or (None, "?", "?")
    if made_with != (options.get(label), format, quantize):
        st.caption(f"The last export here was of {quoted(exported.get('label', '?'))} ({made_with[1]}, quantise "
                   f"{made_with[2]}); press **Export** for the model and settings chosen above.")
        return
    parity_ui(exported["card"])
    st.download_button(f"Download {exported['name']}", exported["zip"], file_name=exported["name"],
                       mime="application/zip", key="export_download")
    with st.expander("Use it from plain Python"):
        st.code(exported["card"]["usage"], language="python")
