"""Figures and widgets of the Evaluation and Compare pages.

Figure builders (``*_figure``, ``*_table``) return objects and draw nothing;
``*_ui`` helpers draw and return plain values. Evaluations go through
:func:`cached_evaluation`: ``st.cache_data`` in the process on top of the
prediction cache that ``core.evaluate`` keeps on disk.
"""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.dataset import FerDataset
from core.evaluate import (
    SplitEvaluation,
    content_digest,
    evaluate_model,
    prediction_cache_path,
)
from core.labels import CLASS_NAMES, NUM_CLASSES, TRAINING
from core.predict import EMOTION_COLORS
from core.tta import TTA_LABELS, TTA_SHORT
from core.wording import counted
from dashboard.charts import CHART_CONFIG
from dashboard.data_source import dataset_key
from dashboard.images import image_grid
from dashboard.training_widgets import escape_markdown, format_accuracy, format_duration
from dashboard.text import code
from dashboard.url_state import remember_choice, url_choice


# ---------------------------------------------------------------- choosing and evaluating


def model_options() -> dict[str, str]:
    """``{label: model path}``: the bundled models, then finished/stopped runs' models, labelled as in the model menu."""
    from dashboard.model_menu import model_menu

    return {label: path for label, path in model_menu().values()}


def model_select_ui(key: str = "eval_model") -> str | None:
    """Pick a model file (its id in ``?model=``); ``None`` (with an explanation drawn) when there is none."""
    from dashboard.model_menu import model_select_ui as select_model

    return select_model(key)


def evaluable_splits(dataset: FerDataset) -> list[str]:
    """The dataset's splits, test splits first and Training last."""
    present = dataset.split_names
    return [name for name in present if name != TRAINING] + [name for name in present if name == TRAINING]


@st.cache_data(show_spinner=False, max_entries=32)
def _cached_evaluation(model_path: str, model_stamp: tuple[int, int], data_key: str, split: str, tta: str,
                       _dataset: FerDataset) -> SplitEvaluation:
    return evaluate_model(model_path, _dataset, splits=[split], tta=tta)[split]


def cached_evaluation(model_path: str, dataset: FerDataset, split: str, tta: str) -> SplitEvaluation:
    """Evaluate once per (model file version, dataset, split, TTA) in this process.

    Raises:
        FileNotFoundError, ValueError: From :func:`core.evaluate.evaluate_model`.
    """
    stat = Path(model_path).stat()
    return _cached_evaluation(str(model_path), (stat.st_mtime_ns, stat.st_size), dataset_key(dataset), split, tta, dataset)


def predictions_cached(model_path: str, dataset: FerDataset, split: str, tta: str) -> bool:
    """Whether ``core.evaluate``'s disk cache already holds this model's predictions for the split and TTA mode."""
    part = dataset.subset(split)
    return prediction_cache_path(model_path, split, content_digest(part.images, part.ids), tta).is_file()


def evaluation_job(model_path: str, split: str, tta: str) -> str:
    """What identifies one evaluation in session state (``<model path>|<split>|<tta>``)."""
    return f"{model_path}|{split}|{tta}"


def _predict_with_progress_ui(model_path: str, dataset: FerDataset, split: str, tta: str, key: str) -> None:
    """Predict a split not cached yet, with a progress bar, the ETA and a Cancel button.

    A click on Cancel (or on any other widget) interrupts the script at the next
    progress update; the Cancel callback records which evaluation was cancelled,
    so the next run offers to start it again instead of starting it by itself.
    """
    from core.evaluate import evaluate_model

    job = evaluation_job(model_path, split, tta)
    size = len(dataset.subset(split))
    bar = st.progress(0.0, text=f"Evaluating on {split} ({size:,} images, {TTA_LABELS[tta]} TTA)…")
    cancel = st.empty()
    cancel.button("Cancel", key=f"{key}_cancel", icon=":material/cancel:",
                  on_click=lambda: st.session_state.__setitem__(f"{key}_cancelled", job),
                  help="Stop this evaluation; nothing is cached for it")
    started = time.monotonic()

    def report(done: int, total: int) -> None:
        elapsed = time.monotonic() - started
        eta = format_duration(elapsed / done * (total - done)) if done else "…"
        bar.progress(done / max(total, 1), text=f"Evaluating on {split}: {done:,} of {total:,} images · "
                                                f"{format_duration(elapsed)} so far · about {eta} left")

    evaluate_model(model_path, dataset, splits=[split], tta=tta, progress=report)
    bar.empty()
    cancel.empty()


def evaluation_ui(model_path: str, dataset: FerDataset, split: str, tta: str, key: str = "eval") -> SplitEvaluation | None:
    """Evaluate (with progress, ETA and Cancel the first time); a broken model or missing split is an ``st.error``."""
    try:
        if not predictions_cached(model_path, dataset, split, tta):
            if st.session_state.get(f"{key}_cancelled") == evaluation_job(model_path, split, tta):
                st.info(f"The evaluation of {code(shown_model_name(model_path))} on {split} ({TTA_LABELS[tta]} TTA) "
                        "was cancelled.",
                        icon=":material/cancel:")
                if not st.button("Evaluate again", key=f"{key}_again", icon=":material/play_arrow:"):
                    return None
                st.session_state.pop(f"{key}_cancelled", None)
            _predict_with_progress_ui(model_path, dataset, split, tta, key)
        with st.spinner(f"Scoring {split}…"):
            return cached_evaluation(model_path, dataset, split, tta)
    except (ValueError, FileNotFoundError) as error:
        st.error(f"Cannot evaluate {code(shown_model_name(model_path))}: {escape_markdown(str(error))}")
        return None


def shown_model_name(model_path: str) -> str:
    """``<run>/best.keras`` for a run's checkpoint (every run's is called best.keras: probe s18 could not tell which
    run a "Cannot evaluate best.keras" was about), the file name for other models."""
    path = Path(model_path)
    return f"{path.parent.name}/{path.name}" if path.name in ("best.keras", "last.keras", "averaged.keras") else path.name


def ensemble_ui(members: dict[str, str], dataset: FerDataset, split: str, tta: str, key: str = "ensemble") -> SplitEvaluation | None:
    """Score the average of several models' probabilities next to each member's own score.

    Args:
        members: ``{label: model path}``, two or more.
        dataset, split, tta: What to evaluate on, and how.
        key: Widget key prefix.

    Each member is evaluated as on the Evaluation page (progress, Cancel,
    the disk cache), so an ensemble of already evaluated runs costs only the
    averaging. Starts on a click, because the first evaluation of every member
    takes a while. Returns the ensemble's evaluation once shown.
    """
    from core.ensemble import check_fer_classes
    from core.evaluate import score_predictions
    from core.model_io import LoadedModel, read_model_meta

    job = f"{key}|{'|'.join(members.values())}|{split}|{tta}"
    if st.session_state.get(f"{key}_job") != job:
        if not st.button(f"Score the ensemble of these {len(members)} models on {split}", key=f"{key}_start",
                         icon=":material/merge:", help="Averages the models' probabilities per face; each model is "
                                                      "evaluated first if it has not been (then cached)"):
            return None
        st.session_state[f"{key}_job"] = job
    results = {}
    for label, path in members.items():
        try:
            meta = read_model_meta(path)
            check_fer_classes(LoadedModel(model=None, class_names=tuple(meta["class_names"]), path=path))
        except (ValueError, FileNotFoundError) as error:
            st.error(f"{escape_markdown(label)} cannot join the ensemble: {escape_markdown(str(error))}")
            return None
        result = evaluation_ui(path, dataset, split, tta, key=f"{key}_{len(results)}")
        if result is None:
            return None
        results[label] = result
    first = next(iter(results.values()))
    probabilities = np.mean([result.probabilities for result in results.values()], axis=0)
    ensemble = score_predictions(split, first.labels, probabilities, first.ids, tta=tta)
    best_label, best = max(results.items(), key=lambda item: item[1].accuracy)
    rows = [{"model": label, "accuracy": format_accuracy(result.accuracy), "macro-F1": f"{result.macro_f1:.3f}"}
            for label, result in results.items()]
    rows.append({"model": f"ensemble of {len(results)} (mean probability)", "accuracy": format_accuracy(ensemble.accuracy),
                 "macro-F1": f"{ensemble.macro_f1:.3f}"})
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch",
                 column_config={"model": st.column_config.TextColumn("model", pinned=True)})
    gain = (ensemble.accuracy - best.accuracy) * 100
    st.caption(f"On {split} ({tta_name(tta)}): the ensemble scores {format_accuracy(ensemble.accuracy)}, "
               f"{gain:+.2f} points against its best member ({escape_markdown(best_label)}). "
               "`python -m core evaluate --model A --model B ...` gives the same figure; Predict's sidebar can use the ensemble.")
    return ensemble


def headline_ui(result: SplitEvaluation) -> None:
    """Accuracy, macro-F1 and split size as metrics, and a warning for a one-class model."""
    from core.diagnose import one_class_warning

    accuracy, macro_f1, size = st.columns(3)
    accuracy.metric("Accuracy", format_accuracy(result.accuracy))
    macro_f1.metric("Macro-F1", f"{result.macro_f1:.3f}", help="Mean F1 over the classes present in the split")
    size.metric("Images", f"{result.n:,}", help=f"Split {result.split}" + (f" · TTA: {TTA_LABELS[result.tta]}" if result.tta != "none" else ""))
    warning = one_class_warning(result.predictions)
    if warning:
        st.warning(warning, icon=":material/warning:")


# ---------------------------------------------------------------- confusion matrix


def confusion_figure(confusion: np.ndarray, *, normalize: bool = False, title: str | None = None,
                     clickable: bool = True, chosen: tuple[int, int] | None = None) -> go.Figure:
    """Heatmap of a 7x7 confusion matrix: true classes on y (top to bottom), predicted on x.

    Cells carry their count (or row share) as text. An invisible marker sits on
    every cell because Streamlit's selection events do not fire for heatmaps;
    clicking a cell selects its marker (see :func:`clicked_cell`).
    With ``clickable=False`` the heatmap shows its own hover text and no markers.
    ``chosen`` (true, predicted) is drawn selected: the cell whose images are shown, however it was chosen.
    """
    counts = np.asarray(confusion, dtype=float)
    rows = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    values = shares if normalize else counts
    names = list(CLASS_NAMES)
    text = [[f"{v:.0%}" if normalize else f"{int(v):,}" for v in row] for row in values]
    hover = {"hoverinfo": "skip"} if clickable else {"hovertemplate": "true %{y} → predicted %{x}: %{text}<extra></extra>"}
    figure = go.Figure(go.Heatmap(
        z=values, x=names, y=names, text=text, texttemplate="%{text}", colorscale="Blues", **hover,
        # A horizontal colour bar under the matrix leaves its width to the cells (tappable on a phone). It sits at the
        # figure's bottom edge: placed under the plot area, it met the axis title on a phone,
        # where the class names turn and take more height (walk s15); its title stays at its side.
        colorbar={"title": {"text": "share of row" if normalize else "images", "side": "right"},
                  "tickformat": ".0%" if normalize else ",", "orientation": "h", "yref": "container", "y": 0.0,
                  "yanchor": "bottom", "thickness": 12, "len": 0.8},
    ))
    if clickable:
        true_index, predicted_index = np.meshgrid(np.arange(NUM_CLASSES), np.arange(NUM_CLASSES), indexing="ij")
        figure.add_trace(go.Scatter(
            x=[names[p] for p in predicted_index.ravel()], y=[names[t] for t in true_index.ravel()], mode="markers",
            marker={"symbol": "square-open", "size": 34, "opacity": 0, "color": "#d62728", "line": {"width": 3}},
            selected={"marker": {"opacity": 1}}, unselected={"marker": {"opacity": 0}},
            customdata=np.c_[[counted(int(count), "image") for count in counts.ravel()],
                             [f"{100 * share:.1f}" for share in shares.ravel()]],
            hovertemplate="true %{y} → predicted %{x}<br>%{customdata[0]} (%{customdata[1]}% of %{y})"
                          "<extra>click to see them</extra>",
            showlegend=False,
            selectedpoints=None if chosen is None else [chosen[0] * NUM_CLASSES + chosen[1]],
        ))
    figure.update_xaxes(title="predicted", categoryorder="array", categoryarray=names, side="bottom")
    figure.update_yaxes(title="true", categoryorder="array", categoryarray=names, autorange="reversed")
    figure.update_layout(title=title, height=540, margin={"t": 40 if title else 10, "b": 110, "l": 0, "r": 0},
                         clickmode="event+select" if clickable else "event", dragmode=False)
    return figure


def clicked_cell(event) -> tuple[int, int] | None:
    """``(true, predicted)`` of the cell clicked in :func:`confusion_figure`, if any.

    Read from the point's axis labels (``y`` true, ``x`` predicted); the heatmap
    itself reports no points, only the marker on each cell does.
    """
    try:
        points = event.selection.points
    except AttributeError:
        return None
    for point in points or []:
        true_name, predicted_name = point.get("y"), point.get("x")
        if true_name in CLASS_NAMES and predicted_name in CLASS_NAMES:
            return CLASS_NAMES.index(true_name), CLASS_NAMES.index(predicted_name)
    return None


def most_confused_cell(confusion: np.ndarray) -> tuple[int, int]:
    """The largest off-diagonal cell (the model's most common mistake)."""
    off_diagonal = np.asarray(confusion).copy()
    np.fill_diagonal(off_diagonal, -1)
    true_index, predicted_index = np.unravel_index(int(off_diagonal.argmax()), off_diagonal.shape)
    return int(true_index), int(predicted_index)


def confusion_ui(result: SplitEvaluation, key: str = "eval_cm") -> tuple[int, int]:
    """Confusion heatmap with a counts/row-share toggle; returns the chosen ``(true, predicted)`` cell.

    The cell comes from a click on the chart, or from the two select boxes under it. The view and the cell are in
    the URL (``?normalised=True``, ``?true=fear&predicted=sad``); the default cell, the most common mistake, is not.
    """
    url_choice(f"{key}_normalize", [False, True], False, param="normalised", noun="confusion-matrix view")
    normalize = st.toggle("Row-normalised (share of each true class)", key=f"{key}_normalize")
    remember_choice(normalize, param="normalised", default=False)
    true_key, predicted_key = f"{key}_true", f"{key}_predicted"
    default = most_confused_cell(result.confusion)
    url_choice(true_key, CLASS_NAMES, CLASS_NAMES[default[0]], param="true", noun="true class")
    url_choice(predicted_key, CLASS_NAMES, CLASS_NAMES[default[1]], param="predicted", noun="predicted class")
    chosen = CLASS_NAMES.index(st.session_state[true_key]), CLASS_NAMES.index(st.session_state[predicted_key])
    # The chosen cell is drawn selected by the figure itself: a cell picked in the select boxes left the last
    # clicked one marked, and a click on that one again did nothing (review s20). A new cell makes a new figure,
    # and with it a chart with no selection of its own, so every click is a change.
    event = st.plotly_chart(confusion_figure(result.confusion, normalize=normalize, chosen=chosen), key=f"{key}_chart",
                            on_select="rerun", selection_mode="points", config=CHART_CONFIG)
    cell = clicked_cell(event)
    if cell is not None and cell != chosen:
        st.session_state[true_key], st.session_state[predicted_key] = CLASS_NAMES[cell[0]], CLASS_NAMES[cell[1]]
        st.rerun()  # drawn again with the clicked cell marked, and the select boxes saying it
    # Walk s22: on a touch screen Plotly takes the first tap on a cell as a hover (its count shows) and only the
    # second as a click, by design (plotly.js #2639, #1858); "Click a cell" read as a first tap that did nothing.
    st.caption("Click a cell (on a touch screen, tap it twice: the first tap shows its count), or pick it here, "
               "to see its images.")
    left, right = st.columns(2)
    true_name = left.selectbox("True class", CLASS_NAMES, key=true_key)
    predicted_name = right.selectbox("Predicted class", CLASS_NAMES, key=predicted_key)
    # Both or neither: a link names the cell whole, and the most common mistake (the default) is left out.
    cell_is_default = (CLASS_NAMES.index(true_name), CLASS_NAMES.index(predicted_name)) == default
    remember_choice(None if cell_is_default else true_name, param="true")
    remember_choice(None if cell_is_default else predicted_name, param="predicted")
    return CLASS_NAMES.index(true_name), CLASS_NAMES.index(predicted_name)


def cell_gallery_ui(result: SplitEvaluation, images: np.ndarray, cell: tuple[int, int], limit: int = 24) -> None:
    """The images of one confusion cell, most confident first."""
    rows = np.flatnonzero((result.labels == cell[0]) & (result.predictions == cell[1]))
    rows = rows[np.argsort(-result.confidences[rows], kind="stable")]
    st.markdown(f"**{len(rows):,}** {'image' if len(rows) == 1 else 'images'} of true **{CLASS_NAMES[cell[0]]}** "
                f"predicted **{CLASS_NAMES[cell[1]]}**"
                + (f" (showing the {limit} most confident)" if len(rows) > limit else ""))
    rows = rows[:limit]
    image_grid(images[rows], [f"{result.confidences[r]:.0%} sure" for r in rows], size=80,
               correct=[cell[0] == cell[1]] * len(rows))


# ---------------------------------------------------------------- report and per-class bars


def report_table(result: SplitEvaluation) -> pd.DataFrame:
    """The classification report: one row per class, then macro and weighted averages."""
    frame = pd.DataFrame({"precision": result.precision, "recall": result.recall, "f1": result.f1,
                          "support": result.support}, index=list(CLASS_NAMES))
    support = np.asarray(result.support, dtype=float)
    present = support > 0
    metrics = frame[["precision", "recall", "f1"]]
    frame.loc["macro avg (present classes)"] = [*metrics[present].mean().tolist(), int(support.sum())]
    frame.loc["weighted avg"] = [*(metrics.mul(support, axis=0).sum() / max(support.sum(), 1)).tolist(), int(support.sum())]
    frame["support"] = frame["support"].astype(int)
    return frame.rename_axis("class").reset_index()


def report_ui(result: SplitEvaluation) -> None:
    """The classification report as a static table, three decimals.

    Static, so that "macro avg (present classes)" wraps on a phone: a data grid's cell cut it to "macro avg (pres".
    """
    table = report_table(result)
    for column in ("precision", "recall", "f1"):
        table[column] = table[column].map("{:.3f}".format)
    table["support"] = table["support"].map("{:,}".format)
    st.table(table, hide_index=True, border="horizontal")


def per_class_accuracy_figure(result: SplitEvaluation) -> go.Figure:
    """Bars of per-class accuracy (recall), with the overall accuracy as a line."""
    recall = np.asarray(result.recall)
    # Each class's score is written under its bar, not above it, so that the dashed overall line crosses no text;
    # the line's own label sits in the top margin, clear of the bars, at any width.
    ticks = [f"{name}<br><b>{value:.0%}</b>" if support else f"{name}<br>n/a"
             for name, value, support in zip(CLASS_NAMES, recall, result.support)]
    figure = go.Figure(go.Bar(
        x=list(CLASS_NAMES), y=recall, customdata=np.asarray(result.support),
        marker_color=["#54A24B" if v >= result.accuracy else "#E45756" for v in recall],
        hovertemplate="%{x}: %{y:.1%} right of %{customdata:,} images<extra></extra>",
    ))
    figure.add_hline(y=result.accuracy, line_dash="dash", line_width=2)
    figure.add_annotation(text=f"- - - overall {format_accuracy(result.accuracy)}", xref="paper", yref="paper",
                          x=0, y=1, xanchor="left", yanchor="bottom", yshift=6, showarrow=False, font={"size": 13})
    # No axis titles (the heading and hover say it): on a phone the seven class names need the whole width.
    figure.update_layout(yaxis={"tickformat": ".0%", "range": [0, 1]},
                         xaxis={"tickvals": list(CLASS_NAMES), "ticktext": ticks, "tickangle": 0, "tickfont": {"size": 11}},
                         height=360, margin={"t": 36, "b": 10, "l": 40, "r": 0})
    return figure


# ---------------------------------------------------------------- ROC and precision-recall (scikit-plot)


def curve_figures(result: SplitEvaluation):
    """One-vs-rest ROC and precision-recall matplotlib figures drawn by scikit-plot.

    Only classes present in the split are plotted (scikit-plot needs every
    plotted class to occur). Returns ``None`` when fewer than two are present.
    The caller closes the figures (``matplotlib.pyplot.close``).
    """
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():  # scikit-plot 0.4 warns about its own legacy module on import
        warnings.simplefilter("ignore", DeprecationWarning)
        import scikitplot

        plot_roc, plot_precision_recall = scikitplot.metrics.plot_roc, scikitplot.metrics.plot_precision_recall
    present = [index for index in range(NUM_CLASSES) if result.support[index] > 0]
    if len(present) < 2:
        return None
    position = {index: rank for rank, index in enumerate(present)}
    y_true = np.array([position[label] for label in result.labels])
    y_probas = result.probabilities[:, present]
    figures = []
    for plot in (plot_roc, plot_precision_recall):
        before = set(plt.get_fignums())
        # Small inches and large type: the image is scaled to its column, about 360 px wide on a phone, where a
        # 12-point legend still reads at about 12 px; short labels let two legend columns fit under the axes.
        figure, axes = plt.subplots(figsize=(4.6, 6.4))
        extra = {} if plot is plot_roc else {"plot_chance_level": False}  # its PR "chance" line is a misleading diagonal
        plot(y_true, y_probas, ax=axes, fig=figure, show_fig=False, title=None, text_fontsize="medium", cmap="tab10", **extra)
        for number in set(plt.get_fignums()) - before - {figure.number}:
            plt.close(number)  # scikit-plot opens a spare figure of its own
        metric = "AUC" if plot is plot_roc else "AP"
        for line in axes.get_lines():  # it labels lines "Class <column>" whatever class_names says
            label = line.get_label()
            if plot is plot_precision_recall and label.startswith(("_", "Avg. precision")):
                # An unlabeled diagonal that means nothing on a PR plot, and a flat dashed line at the average
                # precision that repeats the micro-average's figure ("Avg. precision=0.7727", walk s10).
                line.remove()
                continue
            area = re.search(r"\(area = ([0-9.]+)\)", label)
            score = f" {metric} {float(area.group(1)):.2f}" if area else ""
            if label.startswith("Class "):
                name = CLASS_NAMES[present[int(label[len("Class "):].split(" ")[0])]]
                line.set_label(name + score)
                line.set_color(tuple(channel / 255 for channel in EMOTION_COLORS[name]))  # the app's class colours
                line.set_linewidth(2.0)
            elif label.startswith(("micro-average", "macro-average")):
                line.set_label(label.split(" ")[0] + score)
        axes.legend(fontsize=12, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2, frameon=False,
                    handlelength=1.2, columnspacing=0.8, handletextpad=0.4)
        axes.tick_params(labelsize=11)
        axes.xaxis.label.set_fontsize(12)
        axes.yaxis.label.set_fontsize(12)
        axes.set_title("ROC, one-vs-rest" if plot is plot_roc else "Precision-recall, one-vs-rest", fontsize=13)
        figure.tight_layout()
        figures.append(figure)
    return tuple(figures)


def curves_ui(result: SplitEvaluation) -> None:
    """ROC and precision-recall side by side, figures closed after drawing."""
    import matplotlib.pyplot as plt

    figures = curve_figures(result)
    if figures is None:
        st.info("ROC and precision-recall curves need at least two classes in the split.")
        return
    for column, figure in zip(st.columns(2), figures):
        with column:
            st.pyplot(figure)
        plt.close(figure)


# ---------------------------------------------------------------- gallery


def gallery_rows(result: SplitEvaluation, *, errors_only: bool, true_class: int | None = None) -> np.ndarray:
    """Row indices to show: mistakes only or all, optionally one true class, most confident first."""
    mask = result.predictions != result.labels if errors_only else np.ones(result.n, dtype=bool)
    if true_class is not None:
        mask &= result.labels == true_class
    rows = np.flatnonzero(mask)
    return rows[np.argsort(-result.confidences[rows], kind="stable")]


def gallery_ui(result: SplitEvaluation, images: np.ndarray, key: str = "eval_gallery") -> None:
    """Test images titled ``predicted (true)``, green when right, red when wrong."""
    errors, which, limit = st.columns([1, 1, 2])
    errors_only = errors.toggle("Mistakes only", value=True, key=f"{key}_errors")
    true_name = which.selectbox("True class", ["any", *CLASS_NAMES], key=f"{key}_class")
    shown = limit.slider("Images", 8, 96, 24, step=8, key=f"{key}_limit")
    rows = gallery_rows(result, errors_only=errors_only,
                        true_class=None if true_name == "any" else CLASS_NAMES.index(true_name))
    st.caption(f"{len(rows):,} images match, most confident first. Under each face: the predicted class and its "
               "probability, then the true class.")
    rows = rows[:shown]
    predictions = result.predictions
    captions = [f"{CLASS_NAMES[predictions[r]]} {result.confidences[r]:.0%}\ntrue: {CLASS_NAMES[result.labels[r]]}"
                for r in rows]
    image_grid(images[rows], captions, size=80, correct=(predictions[rows] == result.labels[rows]).tolist())


def tta_name(mode: str) -> str:
    """``single pass``, ``flip TTA`` or ``ten-crop TTA``: how an accuracy was measured."""
    return "single pass" if mode == "none" else f"{TTA_SHORT[mode]} TTA"
