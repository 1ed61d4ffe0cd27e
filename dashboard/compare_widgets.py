"""Tables and figures of the Compare page: runs and bundled models side by side.

The rows are :class:`core.compare.ComparedModel` records. Builders
(``*_table``, ``*_figure``) return objects and draw nothing; ``*_ui`` helpers
draw.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from core.compare import ComparedModel
from core.dataset import FerDataset
from core.diagnose import one_class_warning
from core.evaluate import content_digest, prediction_cache_path, read_cached_predictions, score_predictions
from core.tta import TTA_LABELS, TTA_MODES, TTA_SHORT
from dashboard.charts import CHART_CONFIG, epoch_tick_step
from dashboard.data_source import dataset_key
from dashboard.evaluation_widgets import confusion_figure, evaluable_splits, evaluation_ui, tta_name
from dashboard.text import escape_markdown
from dashboard.training_widgets import format_accuracy, format_duration
from dashboard.url_state import remember_choice, url_choice

TEST_SPLITS = ("PublicTest", "PrivateTest", "test", "all")

# Settings shown side by side when they differ between the compared models.
SETTING_LABELS = {
    "model": "model", "model_params": "model parameters", "optimizer": "optimizer", "learning_rate": "learning rate",
    "batch_size": "batch size", "epochs": "epochs (at most)", "time_budget_min": "time budget (minutes)",
    "lr_schedule": "LR schedule", "label_smoothing": "label smoothing", "class_weights": "class weights",
    "weight_decay": "weight decay", "validation": "validation data", "val_fraction": "validation fraction",
    "max_train_images": "max training images", "seed": "seed", "augment": "augmentation", "precision": "precision",
    "init_from": "started from", "teachers": "teachers", "teacher_tta": "teachers' test-time augmentation",
    "distill_weight": "distillation weight", "average_from": "weight averaging from (share of the run)",
}


# How the table names a test-time augmentation mode, briefly (the column's help says what each means).
MODE_WORDS = {**TTA_SHORT, "none": "single"}
# The measured column's cell for a model not evaluated that way yet, and for a run with no saved model: a bare "—"
# beside the recorded column's figures for the same model read as a contradiction (walk s15), and so did "not measured
# yet" beside a card's score (walk s18): this column is measured on the data loaded here, the recorded one is not.
NOT_MEASURED, NO_SAVED_MODEL = "not measured on this data yet", "no saved model"


def test_accuracy_text(results: dict[str, dict[str, float]]) -> str:
    """``PublicTest 65.20% single, 66.75% ten-crop · PrivateTest 66.01% flip``; an em dash if none.

    Brief, so that the table's last columns fit beside it on a desktop (walk s13).

    Args:
        results: ``{split: {tta mode: accuracy}}`` (``ComparedModel.test_results``);
            splits that are not test splits are left out.
    """
    parts = []
    for split, modes in results.items():
        if split in TEST_SPLITS and modes:
            listed = ", ".join(f"{format_accuracy(accuracy)} {MODE_WORDS.get(mode, mode)}" for mode, accuracy in modes.items())
            parts.append(f"{split} {listed}")
    return " · ".join(parts) or "—"


@st.cache_data(show_spinner=False, max_entries=16)
def _split_digest(data_key: str, split: str, _dataset: FerDataset) -> str:
    part = _dataset.subset(split)
    return content_digest(part.images, part.ids)


@st.cache_data(show_spinner=False, max_entries=256)
def _accuracy_from_cache(model_path: str, model_stamp: tuple[int, int], cache_path: str, cache_stamp: tuple[int, int],
                         data_key: str, split: str, tta: str, _dataset: FerDataset) -> float | None:
    part = _dataset.subset(split)
    probabilities = read_cached_predictions(Path(cache_path), model_path, part.ids)
    if probabilities is None:
        return None
    return score_predictions(split, part.labels, probabilities, part.ids, tta=tta).accuracy


def cached_accuracy(model_path: str | Path, dataset: FerDataset, split: str, tta: str) -> float | None:
    """The accuracy of ``model_path`` on ``split`` in mode ``tta`` if its predictions are in the disk cache, else ``None``.

    Never predicts and never writes ``evaluation.json``: a table of every
    model costs one cache read per model, and reading it changes no record.
    """
    model = Path(model_path)
    try:
        stat = model.stat()
    except OSError:
        return None
    key = dataset_key(dataset)
    cache = prediction_cache_path(model, split, _split_digest(key, split, dataset), tta)
    try:
        cache_stat = cache.stat()
    except OSError:
        return None
    return _accuracy_from_cache(str(model), (stat.st_mtime_ns, stat.st_size), str(cache),
                                (cache_stat.st_mtime_ns, cache_stat.st_size), key, split, tta, dataset)


def measured_column(split: str, tta: str) -> str:
    """``PublicTest accuracy · single pass``: the name of the table column measured like the page's confusion matrices."""
    return f"{split} accuracy · {tta_name(tta)}"


def epochs_text(entry: ComparedModel) -> str:
    """``3/40`` (done of planned), or ``33 (80-minute budget)`` when a time budget, not ``--epochs``, ended the run."""
    budget = entry.config.get("time_budget_min")
    if isinstance(budget, (int, float)) and not isinstance(budget, bool) and budget > 0:
        return f"{entry.epochs_done} ({budget:g}-minute budget)"
    return f"{entry.epochs_done}/{entry.epochs_planned}" if entry.epochs_planned else str(entry.epochs_done)


def compare_table(entries: list[ComparedModel], measured: tuple[FerDataset, str, str] | None = None) -> pd.DataFrame:
    """One row per run or bundled model: name, test and validation accuracy, epochs, time, network, status, note.

    Args:
        entries: The rows, from :func:`core.compare.compared_models`.
        measured: ``(dataset, split, tta)``: add a column with every model's
            accuracy measured that one way (from the prediction cache;
            :data:`NOT_MEASURED` where the model was not evaluated so,
            :data:`NO_SAVED_MODEL` for a run without one), so that the rows compare.
            The ``recorded test accuracy`` column is each run's latest
            ``evaluation.json`` result per split and mode, and a bundled
            model's card.

    The settings are in :func:`settings_table`, for the models being compared.
    """
    from core.diagnose import guessing_level_warning

    # The scores first: on a desktop the table is about 940 px wide and scrolls sideways past that, so the
    # columns that may fall out of view are the ones read least (walk s13: training time and status were).
    columns = ["model", "recorded test accuracy", "best val accuracy", "epochs", "training time", "network", "status",
               "note"]
    if measured is not None:
        columns.insert(1, measured_column(*measured[1:]))
    rows = []
    for entry in entries:
        best = (f"{format_accuracy(entry.best_val_accuracy)}" + (f" ({entry.best_at})" if entry.best_at else "")
                if entry.best_val_accuracy is not None else "—")
        row = {
            "model": entry.name,
            "network": entry.architecture,
            "epochs": epochs_text(entry),
            "best val accuracy": best,
            "recorded test accuracy": test_accuracy_text(entry.test_results),
            "training time": format_duration(entry.training_seconds) if entry.training_seconds else "—",
            "status": entry.state,
            "note": "at guessing level: one class for almost every image"
                    if guessing_level_warning(entry.best_val_accuracy, entry.val_class_counts) else "",
        }
        if measured is not None:
            dataset, split, tta = measured
            if entry.model_path is None:
                row[columns[1]] = NO_SAVED_MODEL
            else:
                accuracy = cached_accuracy(entry.model_path, dataset, split, tta)
                row[columns[1]] = format_accuracy(accuracy) if accuracy is not None else NOT_MEASURED
        rows.append(row)
    table = pd.DataFrame(rows, columns=columns)
    # Columns that would say nothing take room from those that do: no note in any row; only bundled models
    # (their status is "bundled", and their names say so already).
    if not table.empty and not table["note"].astype(bool).any():
        table = table.drop(columns="note")
    if not table.empty and set(table["status"]) == {"bundled"}:
        table = table.drop(columns="status")
    return table


def compare_table_ui(slot, entries: list[ComparedModel], measured: tuple[FerDataset, str, str] | None = None) -> None:
    """Draw :func:`compare_table` into ``slot`` (an ``st.empty``), so that the page can redraw it once it has evaluated."""
    recorded_help = ("Each test split's latest evaluation recorded for a run in each mode it was measured in, and a "
                     "bundled model's scores from its card. single: one pass; flip: the face and its mirror image "
                     "averaged; ten-crop: ten views averaged (modes can differ between rows")
    config = {
        "model": st.column_config.TextColumn("model", pinned=True),
        "recorded test accuracy": st.column_config.TextColumn(
            "recorded test accuracy",
            help=recorded_help + (", so rank rows on the column measured one way)" if measured else ")")),
        "best val accuracy": st.column_config.TextColumn(
            "best val accuracy", help="The kept checkpoint's accuracy on the run's validation data (by default a 10% "
                                      "slice of Training, drawn by the run's seed, so slices differ between seeds)"),
        "note": st.column_config.TextColumn("note", help="Models whose best validation accuracy is at guessing level"),
    }
    if measured is not None:
        _, split, tta = measured
        name = measured_column(split, tta)
        config[name] = st.column_config.TextColumn(
            name, help=f"Every model on {split}, {tta_name(tta)}: the split and test-time augmentation chosen under "
                       f"Confusion matrices, as in their captions. {NOT_MEASURED}: pick the model there, or on the "
                       "Evaluation page, or score an ensemble with it below.")
    slot.dataframe(compare_table(entries, measured), hide_index=True, width="stretch", column_config=config)


def _model_file_text(path: str, model: str) -> str:
    """A teacher's or starting model's file name; ``(earlier)`` when it is the compared model's own name.

    A bundled model grown in stages started from, and learned from, the file it later replaced: "fer_studio_swa
    (bundled)" read as started from itself (walk s15).
    """
    name = Path(path).name
    return f"{name} (earlier)" if Path(path).stem == model.removesuffix(" (bundled)") else name


def _setting_text(value, name: str = "", model: str = "") -> str:
    if name == "teacher_tta" and isinstance(value, str) and value in TTA_LABELS:  # a hand-edited dict (probe s22)
        return TTA_LABELS[value]
    if isinstance(value, str) and value.endswith(".keras"):
        return _model_file_text(value, model)  # its file names it; the folders are the user's
    if isinstance(value, dict):
        return ", ".join(f"{key} {_setting_text(item)}" for key, item in value.items()) or "—"
    if isinstance(value, list):
        return ", ".join(_model_file_text(item, model) if isinstance(item, str) else _setting_text(item)
                         for item in value) or "—"
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# Settings that mean something only with teachers: "—" for a run without any (walk s12 read "flip (2 views)" there).
TEACHER_SETTINGS = ("teacher_tta", "distill_weight")


def _with_default_params(configs: dict[str, dict]) -> dict[str, dict]:
    """``configs`` with each model's ``model_params`` completed by its builder's defaults for every parameter
    another compared config sets: "width 32, convs 3, 3, 3, 2" beside "width 32" hid that the second one has
    two convolutions per stage (walk s21)."""
    from core.models import get_spec

    named = list(dict.fromkeys(key for config in configs.values() if isinstance(config.get("model_params"), dict)
                               for key in config["model_params"]))  # one order for every column
    if not named:
        return configs
    completed = {}
    for model, config in configs.items():
        params = config.get("model_params") if isinstance(config.get("model_params"), dict) else {}
        try:
            defaults = get_spec(str(config.get("model"))).hyperparameters()
        except (KeyError, ValueError):
            defaults = {}
        filled = {key: params[key] if key in params else defaults[key] for key in named if key in params or key in defaults}
        completed[model] = {**config, "model_params": filled} if filled else config
    return completed


def settings_table(configs: dict[str, dict], *, only_different: bool = True) -> pd.DataFrame:
    """Training settings as rows, one column per model (``{name: config}``); by default only those that differ."""
    configs = _with_default_params(configs)
    names = [name for name in SETTING_LABELS if any(name in config for config in configs.values())]
    rows = []
    for name in names:
        values = {model: "—" if name in TEACHER_SETTINGS and not config.get("teachers")
                  else _setting_text(config.get(name), name, model) for model, config in configs.items()}
        if only_different and len(set(values.values())) < 2:
            continue
        rows.append({"setting": SETTING_LABELS[name], **values})
    return pd.DataFrame(rows, columns=["setting", *configs])


def compare_curves_figure(curves: dict[str, list[dict]]) -> go.Figure:
    """Accuracy and loss per epoch, one colour per model: validation solid, training dashed.

    A series with no values (a bundled model's card keeps validation
    accuracy only) is left out rather than drawn empty in the legend.
    """
    from plotly.colors import qualitative
    from plotly.subplots import make_subplots

    # Bundled models' cards keep no loss: with only those, an empty Loss panel would be drawn, so it is left out.
    panels = [("accuracy", "Accuracy")]
    if any(row.get(key) is not None for metrics in curves.values() for row in metrics for key in ("loss", "val_loss")):
        panels.append(("loss", "Loss"))
    figure = make_subplots(rows=1, cols=len(panels), subplot_titles=[title for _, title in panels], horizontal_spacing=0.1)
    for number, (name, metrics) in enumerate(curves.items()):
        color = qualitative.Plotly[number % len(qualitative.Plotly)]
        epochs = [row["epoch"] for row in metrics]
        shown = False
        for col, (metric, _) in enumerate(panels, start=1):
            for prefix, dash, what in (("val_", "solid", "validation"), ("", "dash", "train")):
                values = [row.get(prefix + metric) for row in metrics]
                if all(value is None for value in values):
                    continue
                figure.add_trace(go.Scatter(
                    x=epochs, y=values, name=f"{name} · {what}",
                    mode="lines+markers", line={"color": color, "dash": dash}, marker={"size": 5},
                    legendgroup=name, showlegend=col == 1 or not shown,
                    hovertemplate=f"{name}<br>{what} {metric} %{{y:.4g}} at epoch %{{x}}<extra></extra>"), row=1, col=col)
                shown = True
    # Each panel ticks by its own last epoch: the loss panel can hold shorter runs than the accuracy panel (a bundled
    # card keeps no loss), and a step shared with a longer card left it with one tick.
    for col, (metric, _) in enumerate(panels, start=1):
        last_epoch = max((row["epoch"] for metrics in curves.values() for row in metrics
                          if row.get(metric) is not None or row.get("val_" + metric) is not None), default=1)
        figure.update_xaxes(title_text="epoch", tick0=1, dtick=epoch_tick_step(last_epoch), row=1, col=col)
    figure.update_yaxes(tickformat=".0%", row=1, col=1)
    figure.update_layout(height=420, margin={"t": 40, "b": 40, "l": 10, "r": 10},
                         legend={"orientation": "h", "y": -0.25, "font": {"size": 12}})
    return figure


def pair_defaults(with_model: list[str], chosen: list[str]) -> tuple[str, str]:
    """The two models the confusion matrices show by default: the first two chosen ones with a model, then the others."""
    ordered = [model_id for model_id in chosen if model_id in with_model]
    ordered += [model_id for model_id in with_model if model_id not in ordered]
    return ordered[0], ordered[1]


def _follow_default(key: str, param: str, default: str) -> None:
    """Move the picker ``key`` to a new ``default`` unless it was picked by hand or by a link (``?param=``)."""
    previous = st.session_state.get(f"{key}_default")
    st.session_state[f"{key}_default"] = default
    if previous in (None, default) or key not in st.session_state:
        return
    if st.session_state.get(f"{key}_by_hand") or param in st.query_params:
        return
    st.session_state[key] = default


def _picked_by_hand(key: str) -> None:
    st.session_state[f"{key}_by_hand"] = True


def confusion_pair_ui(by_id: dict[str, ComparedModel], dataset: FerDataset,
                      chosen: list[str] = ()) -> tuple[str, str]:
    """Two models' confusion matrices side by side, with the pickers (in the URL); returns the ``(split, tta)`` chosen.

    Args:
        by_id: The page's rows by id; those with a model (two or more) can be picked.
        dataset: What to evaluate on.
        chosen: The ids chosen above on the page: the first two with a model are shown by default, and the
            pickers follow that choice until one is changed by hand.
    """
    with_model = [model_id for model_id, entry in by_id.items() if entry.model_path is not None]
    defaults = pair_defaults(with_model, list(chosen))
    splits = evaluable_splits(dataset)
    first, second, where, mode = st.columns([2, 2, 1, 1], vertical_alignment="bottom")
    for key, param, default in zip(("compare_first", "compare_second"), ("first", "second"), defaults):
        _follow_default(key, param, default)
    url_choice("compare_first", with_model, defaults[0], param="first", noun="run or model")
    url_choice("compare_second", with_model, defaults[1], param="second", noun="run or model")
    url_choice("compare_split", splits, splits[0], param="split", noun="split")
    url_choice("compare_tta", TTA_MODES, "none", param="tta", noun="test-time augmentation")
    pair = tuple(column.selectbox(label, with_model, key=key, format_func=lambda i: by_id[i].name,
                                  on_change=_picked_by_hand, args=(key,))
                 for column, label, key in ((first, "First", "compare_first"), (second, "Second", "compare_second")))
    split = where.selectbox("Split", splits, key="compare_split")
    # Short names in the narrow column ("ten-crop (10 views)" was cut to "ten-crop (10 vie…" at 1400 px, walk s21).
    tta = mode.selectbox("Test-time augmentation", TTA_MODES, key="compare_tta",
                         format_func=lambda m: "none" if m == "none" else TTA_SHORT[m],
                         help=" · ".join(TTA_LABELS[m] for m in TTA_MODES if m != "none"))
    for param, value, default in (("first", pair[0], defaults[0]), ("second", pair[1], defaults[1]),
                                  ("split", split, splits[0]), ("tta", tta, "none")):
        remember_choice(value, param=param, default=default)
    for position, (column, model_id) in enumerate(zip(st.columns(2), pair)):
        with column:
            entry = by_id[model_id]
            result = evaluation_ui(str(entry.model_path), dataset, split, tta, key=f"compare_eval_{position}")
            if result is None:
                continue
            st.caption(f"**{escape_markdown(entry.name)}** on {split} ({tta_name(tta)}): "
                       f"accuracy {format_accuracy(result.accuracy)}, macro-F1 {result.macro_f1:.3f}")
            warning = one_class_warning(result.predictions)
            if warning:
                st.warning(warning, icon=":material/warning:")
            st.plotly_chart(confusion_figure(result.confusion, normalize=True, clickable=False),
                            key=f"compare_cm_{position}", config=CHART_CONFIG)
    return split, tta
