"""Training page pieces: the run form, the run picker, status, progress, curves and the runs table.

Everything here reads run folders (``core.runs``) and draws; nothing trains.
Widgets return plain values; the page decides what to do with them.
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
import zlib
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core import runs, train_config
from core.models import ModelSpec, list_models
from core.runs import RunSummary
from core.train_config import LR_SCHEDULES, OPTIMIZERS, PLATEAU_METRICS, PRECISIONS, TrainConfig
from core.wording import counted
from dashboard.charts import CHART_CONFIG, epoch_tick_step
from dashboard.text import code, escape_markdown  # noqa: F401  (escape_markdown re-exported: pages import it from here)
from dashboard.url_state import remember_choice, url_choice

REFRESH_EVERY = "1s"  # the Stop button and the progress must not lag the worker
STATE_COLORS = {"queued": "gray", "running": "blue", "finished": "green", "failed": "red", "stopped": "orange"}
STATE_ICONS = {"queued": ":material/schedule:", "running": ":material/play_circle:", "finished": ":material/check_circle:",
               "failed": ":material/error:", "stopped": ":material/stop_circle:"}
LR_SCHEDULE_LABELS = {"constant": "constant", "plateau": "reduce on plateau", "cosine": "cosine decay to 0"}
PLATEAU_METRIC_LABELS = {"val_loss": "validation loss", "val_accuracy": "validation accuracy"}
PRECISION_LABELS = {"auto": "auto (fastest)", "float32": "float32", "mixed": "mixed float16 (GPUs)",
                    "bfloat16": "mixed bfloat16"}


# ---------------------------------------------------------------- new run form


class _FieldGrid:
    """Columns for form fields, left to right, a new row of ``width`` columns when one is full."""

    def __init__(self, width: int) -> None:
        self._width = width
        self._free: list = []

    def cell(self):
        """The next free column (an ``st.columns`` cell)."""
        if not self._free:
            self._free = list(st.columns(self._width))
        return self._free.pop(0)


def dataset_path(dataset: Any) -> str:
    """The loaded dataset's source as an absolute path (the worker runs from the repository root)."""
    source = Path(dataset.report.source).expanduser()
    return str(source.resolve()) if source.exists() else dataset.report.source


def default_model_spec() -> ModelSpec:
    """The model the form starts with: the first registered one (``fer_vgg``, the bundled models' architecture)."""
    return list_models()[0]


# The form's fields keep their values while the form is folded (its widgets are not drawn then, and Streamlit
# would drop their state): after Start, a second run with one change needs only that change (walk s19).
KEEP = "session"


def model_select_ui(key: str = "train_model") -> ModelSpec:
    """Pick a registered model (outside the form, so its recipe can refill the form)."""
    specs = {spec.name: spec for spec in list_models()}
    name = st.selectbox("Model", list(specs), index=list(specs).index(default_model_spec().name), key=key,
                        persist_state=KEEP, help="Architectures registered in core/models.py")
    spec = specs[name]
    st.caption(spec.summary)
    return spec


def recipe_defaults(spec: ModelSpec) -> dict[str, Any]:
    """TrainConfig defaults overridden by the training settings of the model's origin (as the CLI's)."""
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.default is not dataclasses.MISSING}
    return {**defaults, **train_config.recipe_defaults(spec.name)}


def terminal_train_command() -> str:
    """The command line that starts what the form starts by default: its model and that model's recipe epochs."""
    spec = default_model_spec()
    return f"python -m core train --data /path/to/fer2013 --model {spec.name} --epochs {recipe_defaults(spec)['epochs']}"


def no_runs_message(can_start: bool) -> str:
    """What the Run section says before the first run; "start one above" only when the form above can start one."""
    here = "Start one above" if can_start else "Load a dataset (sidebar) to start one here"
    return f"No training runs yet. {here}, or from a terminal: `{terminal_train_command()}`."


OPTIMIZER_LABELS = {"adam": "Adam", "adamw": "AdamW (decoupled weight decay)", "sgd": "SGD with momentum",
                    "rmsprop": "RMSprop"}


def training_form_ui(spec: ModelSpec, key: str = "train", data_hash: str | None = None,
                     public_test_images: int | None = None,
                     class_counts: list[int] | None = None) -> dict[str, Any] | None:
    """Draw the hyperparameter fields and the Start button; on Start return TrainConfig fields (not data/model/augment).

    Widget keys include the model name, so picking another model refills the
    fields with that model's recipe. The fields are live (not an ``st.form``):
    a field that only one optimizer or schedule uses appears only with it,
    and the duration estimate above Start follows every change.
    """
    d = recipe_defaults(spec)

    def k(name: str) -> str:
        return f"{key}_{spec.name}_{name}"

    with st.container(border=True):
        st.markdown(f"**Hyperparameters** (defaults: the recipe of `{spec.name}`'s origin)")
        # Fields flow four to a row, so the ones shown only for some choices (SGD's momentum, plateau's
        # factor) leave no holes in the grid (walk s10).
        cell = _FieldGrid(4).cell
        epochs = cell().number_input("Epochs", 1, 1000, int(d["epochs"]), key=k("epochs"), persist_state=KEEP)
        batch_size = cell().number_input("Batch size", 1, 4096, int(d["batch_size"]), key=k("batch_size"),
                                         persist_state=KEEP)
        optimizer = cell().selectbox("Optimizer", OPTIMIZERS, OPTIMIZERS.index(d["optimizer"]), key=k("optimizer"),
                                     persist_state=KEEP,
                                     format_func=OPTIMIZER_LABELS.get)
        learning_rate = cell().number_input("Learning rate", 1e-6, 1.0, float(d["learning_rate"]), step=1e-4,
                                            format="%.5f", key=k("learning_rate"), persist_state=KEEP)
        momentum, nesterov, weight_decay = float(d["momentum"]), bool(d["nesterov"]), float(d["weight_decay"])
        if optimizer in ("sgd", "rmsprop"):
            momentum = cell().number_input("Momentum", 0.0, 0.999, momentum, step=0.05, key=k("momentum"),
                                           persist_state=KEEP)
        if optimizer == "sgd":
            nesterov = cell().checkbox("Nesterov momentum", nesterov, key=k("nesterov"), persist_state=KEEP)
        if optimizer in ("adamw", "sgd"):
            weight_decay = cell().number_input("Weight decay", 0.0, 0.1, weight_decay, step=1e-4, format="%.4f",
                                               key=k("weight_decay"), persist_state=KEEP, help="Decoupled weight decay")
        lr_schedule = cell().selectbox("LR schedule", LR_SCHEDULES, LR_SCHEDULES.index(d["lr_schedule"]),
                                       format_func=LR_SCHEDULE_LABELS.get, key=k("lr_schedule"), persist_state=KEEP)
        plateau_factor, plateau_patience = float(d["plateau_factor"]), int(d["plateau_patience"])
        plateau_metric = str(d.get("plateau_metric", "val_loss"))
        if lr_schedule == "plateau":
            plateau_factor = cell().number_input("Plateau factor", 0.05, 0.99, plateau_factor, step=0.05,
                                                 key=k("plateau_factor"),
                                                 persist_state=KEEP, help="The learning rate is multiplied by this")
            plateau_metric = cell().selectbox("Plateau on", PLATEAU_METRICS, PLATEAU_METRICS.index(plateau_metric),
                                              format_func=PLATEAU_METRIC_LABELS.get, key=k("plateau_metric"),
                                              persist_state=KEEP,
                                              help="What must stop improving: the published FER2013 VGG recipe "
                                                   "watches validation accuracy")
            plateau_patience = cell().number_input("Plateau patience (epochs)", 1, 100, plateau_patience,
                                                   key=k("plateau_patience"),
                                                   persist_state=KEEP, help="Epochs without a better value first")
        time_budget = cell().number_input(
            "Time budget, minutes (0 = off)", 0.0, 100_000.0, float(d.get("time_budget_min") or 0.0), step=5.0,
            key=k("time_budget"), persist_state=KEEP,
            help="Stop before an epoch that would end past this many minutes of training. A cosine schedule then "
                 "decays over this time instead of over the epochs, which become an upper bound.")
        early_stopping = cell().number_input("Early stopping patience (0 = off)", 0, 1000,
                                             int(d["early_stopping_patience"]), key=k("early_stopping"),
                                             persist_state=KEEP,
                                             help="Stop after this many epochs without a better validation accuracy")
        crop = 0
        if "crop" in spec.hyperparameters():
            crop = cell().number_input(
                "Centre crop, pixels (0 = whole face)", 0, 47, int(spec.hyperparameters()["crop"]), step=4,
                key=k("crop"), persist_state=KEEP,
                help="Train and predict on the centre square of this side only (the published FER2013 VGG recipe "
                     "uses 40): the augmentation's shifts become random crops. On this project's 2-core CPU, 40 "
                     "made steps 1.45x and whole epochs 1.2x faster, and a 40-minute run 0.6 points less accurate. "
                     "0 uses the whole 48x48 face.")
        convs = 2
        if "convs" in spec.hyperparameters():
            convs = cell().selectbox(
                "Conv blocks per stage", CONVS_CHOICES, CONVS_CHOICES.index(spec.hyperparameters()["convs"]),
                format_func=lambda value: ", ".join(map(str, value)) if isinstance(value, list) else str(value),
                key=k("convs"), persist_state=KEEP,
                help="Depth: conv+BN+ReLU blocks in each of the four stages (2 by default; the bundled "
                     "fer_studio_swa has 3, 3, 3, 2). Started "
                     "from a trained model with fewer blocks (Start from, below), the run grows it: its blocks "
                     "are copied and each new one starts as the identity, so the run starts from that model's "
                     "accuracy. 3, 3, 3, 2 took 1.44x the time per epoch on this project's CPU and adds 0.8 MB to the file.")
        label_smoothing = cell().number_input("Label smoothing", 0.0, 0.5, float(d["label_smoothing"]), step=0.05,
                                              key=k("label_smoothing"), persist_state=KEEP)
        seed = cell().number_input("Seed", 0, 2**31 - 1, int(d["seed"]), key=k("seed"), persist_state=KEEP)
        precision = cell().selectbox("Precision", PRECISIONS, PRECISIONS.index(str(d.get("precision", "auto"))),
                                     format_func=PRECISION_LABELS.get, key=k("precision"), persist_state=KEEP,
                                     help="auto: mixed float16 on a GPU, mixed bfloat16 on a CPU that computes "
                                          "bfloat16 natively (about 1.3x faster on this project's machine), float32 "
                                          "elsewhere")
        class_weights = cell().checkbox("Class weights", bool(d["class_weights"]), key=k("class_weights"),
                                        persist_state=KEEP,
                                        help="Weight classes by inverse frequency (disgust is rare)")
        c1, c2, c3 = st.columns([2, 1, 1])
        validation = c1.radio(
            "Validation data", ("split", "publictest"), horizontal=True, key=k("validation"), persist_state=KEEP,
            format_func={"split": "Stratified slice of Training", "publictest": "PublicTest"}.get,
            help="Checkpoints are selected on this data. PrivateTest (in copies of FER2013 that have it) is never "
                 "used while training.")
        val_fraction = float(d["val_fraction"])
        if validation == "split":
            val_fraction = c2.number_input("Slice fraction", 0.01, 0.49, val_fraction, step=0.01,
                                           key=k("val_fraction"),
                                           persist_state=KEEP, help="Share of Training held out for validation")
        max_images = c3.number_input("Max training images (0 = all)", 0, 10**6, 0, step=500, key=k("max_images"),
                                     persist_state=KEEP,
                                     help="Train on a stratified subset for a quick run; 0 trains on every Training "
                                          "image. The validation slice is drawn from all of Training first, so it "
                                          "keeps its size")
        if validation == "publictest":
            st.warning("Checkpoints chosen on PublicTest make its accuracy a selection number, no longer a held-out "
                       "one (the bundled models' PublicTest scores are held out): judge this run on PrivateTest, or "
                       "on other data it never saw.", icon=":material/warning:")
        else:
            st.caption("Checkpoints are chosen on a slice of Training, so PublicTest, and PrivateTest where your copy "
                       "of FER2013 has it, stay held out for the final evaluation.")
        c1, c2 = st.columns([2, 2])
        averaging = c1.checkbox(
            "Average the last epochs' weights", d.get("average_from") is not None, key=k("averaging"),
            persist_state=KEEP,
            help="Stochastic weight averaging: the weights of every epoch after the share of the run chosen here "
                 "are averaged into one more model (averaged.keras, listed beside the best epoch), with its "
                 "batch-norm statistics recomputed and its own validation accuracy. The best epoch is partly "
                 "chosen by the noise of a small validation slice; the average is chosen by nothing but the schedule.")
        average_from = None
        if averaging:
            average_from = c2.number_input("Average the epochs after this share of the run", 0.0, 0.95,
                                           float(d.get("average_from") or 0.5), step=0.05, key=k("average_from"),
                                           persist_state=KEEP,
                                           help="0.5: the second half (of the epochs, or of the time budget)")
        from dashboard.model_menu import model_menu

        menu = model_menu()  # read once: the teachers and the starting point are picked from the same models
        distillation = teachers_ui(k, menu, int(seed), validation, float(val_fraction), data_hash)
        model_params = {**({"crop": int(crop)} if crop else {}), **({"convs": convs} if convs != 2 else {})}
        start_from = init_from_ui(k, menu, spec.name, model_params, int(seed), validation,
                                  float(val_fraction), data_hash)
        duration_estimate_ui(spec.name, int(epochs), int(max_images) or None, validation, val_fraction,
                             class_counts, model_params=model_params, precision=precision,
                             time_budget_min=float(time_budget) or None, public_test_images=public_test_images)
        if time_budget:
            st.caption(f"Time budget: training stops within {time_budget:g} minutes, or after "
                       f"{counted(int(epochs), 'epoch')} if those end sooner; the learning rate decays over the budget.")
        full = training_limit_note()
        if full:
            st.info(full, icon=":material/hourglass_top:")
        started = st.button("Start training", type="primary", icon=":material/play_arrow:", key=f"{key}_start",
                            disabled=bool(full))
    if not started:
        return None
    return {
        "epochs": int(epochs), "batch_size": int(batch_size), "optimizer": optimizer,
        "learning_rate": float(learning_rate), "lr_schedule": lr_schedule, "plateau_factor": float(plateau_factor),
        "plateau_patience": int(plateau_patience), "plateau_metric": plateau_metric,
        "early_stopping_patience": int(early_stopping), "precision": precision,
        "momentum": float(momentum), "nesterov": bool(nesterov), "weight_decay": float(weight_decay),
        "label_smoothing": float(label_smoothing),
        "class_weights": bool(class_weights), "seed": int(seed), "max_train_images": int(max_images) or None,
        "validation": validation, "val_fraction": float(val_fraction),
        "time_budget_min": float(time_budget) or None,
        "average_from": float(average_from) if average_from is not None else None,
        **distillation,
        **start_from,
        **({"model_params": model_params} if model_params else {}),
    }


# fer_vgg's depths on the form: 2 is the default; [3, 3, 3, 2] (fer_studio_swa's) deepens the three stages whose extra
# block adds little to the file (the fourth stage's would add 2.4 MB).
CONVS_CHOICES = [1, 2, [3, 3, 3, 2], 3, 4]

TEACHER_TTA_LABELS = {"none": "one view", "flip": "face and mirror (2 views)", "crop10": "ten-crop (10 views, 5x flip's time)"}


def teachers_ui(k, menu: dict[str, tuple[str, str]], seed: int, validation: str, val_fraction: float,
                data_hash: str | None) -> dict[str, Any]:
    """Distillation fields: teachers from the model menu, their weight and views; ``{}`` when none is chosen.

    Says which chosen teacher has seen this run's validation faces (``core.distill``), for the seed and
    slice the form holds now, so the user can pick the seed that keeps validation honest.
    """
    from core.distill import teacher_training, validation_verdict

    if not menu:
        return {}
    c1, c2, c3 = st.columns([2, 1, 1])
    chosen = c1.multiselect(
        "Distil from (teachers)", list(menu), key=k("teachers"),
        persist_state=KEEP, format_func=lambda model_id: menu[model_id][0],
        placeholder="No teacher: train on the labels only",
        help="Knowledge distillation: the run first predicts every training face with these models, then trains on "
             "each label blended with their averaged probabilities. FER2013's labels are noisy, and the teachers "
             "say which faces are ambiguous.")
    if not chosen:
        return {}
    weight = c2.number_input("Teacher weight", 0.05, 1.0, 0.5, step=0.05, key=k("distill_weight"), persist_state=KEEP,
                             help="Share of the teachers' probabilities in each training target; the rest is the label")
    tta = c3.selectbox("Teacher views", tuple(TEACHER_TTA_LABELS), 1, format_func=TEACHER_TTA_LABELS.get,
                       key=k("teacher_tta"),
                       persist_state=KEEP, help="The test-time views the teachers predict each training face with")
    paths = tuple(menu[model_id][1] for model_id in chosen)
    student = TrainConfig(data="-", seed=seed, validation=validation, val_fraction=val_fraction)
    for model_id, path in zip(chosen, paths):
        try:
            trained = teacher_training(path)
            clean, why = validation_verdict(trained, student, data_hash)
        except (OSError, ValueError) as error:
            st.error(f"{escape_markdown(menu[model_id][0])} cannot teach: {escape_markdown(str(error))}")
            continue
        if not clean:
            fix = ""
            teacher_seed = ((trained or {}).get("config") or {}).get("seed")
            if validation == "split" and teacher_seed is not None and validation_verdict(
                    trained, TrainConfig(data="-", seed=int(teacher_seed), validation=validation,
                                         val_fraction=val_fraction), data_hash)[0]:
                fix = f" Seed {int(teacher_seed)} holds out the teacher's own validation slice."
            st.warning(f"{escape_markdown(menu[model_id][0])}: {escape_markdown(why)}. This run's validation accuracy "
                       f"will be optimistic; judge it on PublicTest (Evaluation page).{fix}", icon=":material/warning:")
    return {"teachers": paths, "distill_weight": float(weight), "teacher_tta": tta}


def init_from_ui(k, menu: dict[str, tuple[str, str]], model: str, model_params: dict, seed: int, validation: str,
                 val_fraction: float, data_hash: str | None) -> dict[str, Any]:
    """"Start from" field: a model of the menu whose weights the run starts from; ``{}`` for a random start.

    Says at once when the chosen model is another architecture (the run would be refused) and, as for
    teachers, when its training saw this run's validation faces.
    """
    from core.distill import teacher_training, validation_verdict
    from core.train_config import init_from_mismatch

    if not menu:
        return {}
    chosen = st.selectbox(
        "Start from", [None, *menu], key=k("init_from"), persist_state=KEEP,
        format_func=lambda model_id: "Random initial weights" if model_id is None else menu[model_id][0],
        help="Start from a trained model's weights instead of random ones: fine-tune it, or give it a second "
             "learning-rate cycle (a lower learning rate, e.g. 0.0003, keeps what it learned). It must be the "
             "same architecture with the same hyperparameters, or a fer_vgg with fewer conv blocks per stage, which "
             "the run grows; the optimizer starts fresh.")
    if chosen is None:
        return {}
    label, path = menu[chosen]
    try:
        mismatch = init_from_mismatch(path, model, model_params)
        trained = teacher_training(path)
    except (OSError, ValueError) as error:
        st.error(f"{escape_markdown(label)} cannot start a run: {escape_markdown(str(error))}")
        return {"init_from": path}
    if mismatch:
        st.error(f"Cannot start from {escape_markdown(label)}: {escape_markdown(mismatch)}", icon=":material/error:")
        return {"init_from": path}
    clean, why = validation_verdict(trained, TrainConfig(data="-", seed=seed, validation=validation,
                                                         val_fraction=val_fraction), data_hash)
    if not clean:
        st.warning(f"{escape_markdown(label)}: {escape_markdown(why)}. This run's validation accuracy will be "
                   "optimistic; judge it on PublicTest (Evaluation page).", icon=":material/warning:")
    return {"init_from": path}


def training_limit_note() -> str | None:
    """When as many runs train as the machine allows (``core.jobs.max_workers``), say which, and why Start waits."""
    from core import jobs

    running = jobs.training_runs()
    if len(running) < jobs.max_workers():
        return None
    names = ", ".join(code(path.name) for path in running[:3]) + (" ..." if len(running) > 3 else "")
    return (f"{counted(len(running), 'run')} {'is' if len(running) == 1 else 'are'} training ({names}), the most this "
            f"machine trains at once (`{jobs.WORKERS_VARIABLE}`={jobs.max_workers()}): Start waits until one "
            "finishes or is stopped.")


def duration_estimate_ui(model: str, epochs: int, max_images: int | None, validation: str, val_fraction: float,
                         class_counts: list[int] | None = None, model_params: dict | None = None,
                         precision: str = "auto", time_budget_min: float | None = None,
                         public_test_images: int | None = None) -> None:
    """"About 2m 14s per epoch, 1h 29m for 40 epochs", from this machine's throughput for the model.

    Runs with the same centre crop and precision are preferred (see ``core.throughput``).
    With a time budget shorter than the epochs, the estimate is the epochs that fit in it.
    ``class_counts`` (Training's images per class; FER2013's by default) give the epoch sizes the run will have.
    """
    from core.throughput import (FER2013_PUBLIC_TEST_IMAGES, FER2013_TRAINING_CLASS_COUNTS, busy_machine_note,
                                 estimate_seconds, measured_overhead, model_throughput, requested_settings)
    from core.train import epoch_sizes

    throughput = model_throughput(model, settings=requested_settings(model_params, precision))
    if throughput is None:
        st.caption("No duration estimate: this model has not been trained or benchmarked here yet.")
        return
    images, val_images = epoch_sizes(list(class_counts or FER2013_TRAINING_CLASS_COUNTS), validation, val_fraction,
                                     max_images, public_test_images or FER2013_PUBLIC_TEST_IMAGES)
    per_epoch = estimate_seconds(throughput, images, 1, val_images)
    total, planned = per_epoch * epochs, f"{epochs} epoch{'s' if epochs != 1 else ''}"
    if time_budget_min and total > time_budget_min * 60:
        # The budget stops training before an epoch that would end past it (core.train).
        fitting = max(1, int(time_budget_min * 60 // per_epoch))
        total, planned = fitting * per_epoch, f"about {fitting} of the {epochs} epochs, in the time budget"
    overhead = measured_overhead(model)
    if overhead is not None and overhead.seconds >= 1:
        # Starting, loading the data, building the model and the graph: the same whatever the run's size,
        # so a tiny run is mostly this (5 s of epochs took 30 before it was counted).
        total += overhead.seconds
        start = (f"; plus about {format_duration(overhead.seconds)} to start, load the data and build the model, "
                 f"the median of {overhead.runs} run{'s' if overhead.runs != 1 else ''} here")
    else:
        start = "; plus the time to start, load the data and build the model, not yet measured here"
    if throughput.val_images_per_second:
        epoch = (f"{format_duration(per_epoch)} per epoch: {images:,} training images at "
                 f"{throughput.images_per_second:,.0f} images/s, then {val_images:,} validation images at "
                 f"{throughput.val_images_per_second:,.0f} images/s")
    elif throughput.measured_here:  # older runs: the source says that validation is folded in
        epoch = (f"{format_duration(per_epoch)} per epoch of {images:,} training images at "
                 f"{throughput.images_per_second:,.0f} images/s")
    else:
        epoch = (f"{format_duration(per_epoch)} per epoch of {images:,} training images at "
                 f"{throughput.images_per_second:,.0f} images/s, plus validating {val_images:,} images, not yet "
                 "measured here")
    st.markdown(f":material/schedule: **Estimated duration: about {format_duration(total)}** for {planned} "
                f"({epoch}; from {throughput.source}{start})")
    busy = busy_machine_note(measured_here=throughput.measured_here)
    if busy:
        st.caption(busy)


# ---------------------------------------------------------------- run picker and panel


def default_run(summaries: list[RunSummary]) -> RunSummary | None:
    """The newest active run, else the newest run (``summaries`` newest first)."""
    active = [summary for summary in summaries if summary.status.active]
    return (active or summaries or [None])[0]


def format_accuracy(value: float | None) -> str:
    """An accuracy the same way on every page: ``45.96%``; an em dash for unknown."""
    return "—" if value is None else f"{value:.2%}"


def describe_run(summary: RunSummary) -> str:
    """One line for menus: id, model (unless the id names it, as the tool's ids do), status, best val accuracy.

    The menu is narrow on a phone: a label that repeats the model cut off the accuracy at 390 px.
    """
    best = f" · best {format_accuracy(summary.best_val_accuracy)}" if summary.best_val_accuracy is not None else ""
    model = "" if summary.model and f"-{summary.model}-" in f"-{summary.run_id}-" else f" · {summary.model}"
    return f"{summary.run_id}{model} · {summary.status.state}{best}"


def run_select_ui(summaries: list[RunSummary], key: str = "run") -> RunSummary | None:
    """Pick a run (default: newest active, else newest); its id lives in the URL (``?run=<id>``).

    A link naming a run that is not in the runs folder gets a warning saying
    which run is shown instead.
    """
    if not summaries:
        return None
    by_id = {summary.run_id: summary for summary in summaries}
    url_choice(key, list(by_id), default_run(summaries).run_id, noun="run", describe=code)
    # The browser keeps showing a select box's old label when only the labels change, so the
    # widget gets a new key whenever a label does; the chosen id itself lives in st.session_state[key].
    labels = [describe_run(summary) for summary in summaries]
    menu_key = f"{key}_menu_{zlib.crc32(repr(labels).encode()):08x}"
    st.session_state[menu_key] = st.session_state[key]

    def keep_choice() -> None:
        st.session_state[key] = st.session_state[menu_key]

    chosen = st.selectbox("Run", list(by_id), key=menu_key, on_change=keep_choice,
                          format_func=lambda run_id: describe_run(by_id[run_id]))
    remember_choice(chosen, param=key)  # always in the URL: a shared link must not follow "the newest run"
    return by_id[chosen]


def run_signature(run_dir: Path) -> str:
    """The run's line in the run menu (state, best accuracy): when it changes, the menu is out of date."""
    return describe_run(runs.summarize_run(run_dir))


def format_duration(seconds: float | None) -> str:
    """``3h 05m``, ``4m 10s`` or ``12s``; an em dash for unknown."""
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


def run_status_ui(status: runs.RunStatus) -> None:
    """Status badge and its message."""
    st.badge(status.state, icon=STATE_ICONS.get(status.state), color=STATE_COLORS.get(status.state, "gray"))
    if status.state == "failed":
        st.error(escape_markdown(status.message) or "the run failed (see train.log)")
    elif status.message:
        st.caption(escape_markdown(status.message))


def remaining_text(progress: dict, now: float | None = None) -> str:
    """The ETA of ``progress.json``, counted down since it was written: validation writes none for a while, and the
    bar stood at "ETA 9s" for 20 s (walk s19). Past zero it says so rather than "0s"."""
    eta = progress.get("eta_s")
    if not isinstance(eta, (int, float)):
        return format_duration(None)
    updated = progress.get("updated")
    if isinstance(updated, (int, float)) and updated > 0:
        eta -= max(0.0, (time.time() if now is None else now) - float(updated))
    return format_duration(eta) if eta >= 1 else "any moment (past the estimate)"


def run_progress_ui(progress: dict, stopping: bool = False) -> None:
    """Epoch and batch progress bars with the ETA, from ``progress.json``; ``stopping``: a Stop was asked for, so
    the bars say so instead of an ETA for epochs that will not run."""
    if not progress:
        st.caption("Stopping before the first batch…" if stopping
                   else "Waiting for the first batch (loading data, building the model)…")
        return
    epoch, epochs = int(progress.get("epoch", 0)), max(1, int(progress.get("epochs", 1)))
    batch, batches = int(progress.get("batch", 0)), max(1, int(progress.get("batches", 1)))
    done = min(1.0, max(0.0, (epoch - 1 + batch / batches) / epochs))
    left = "stopping" if stopping else f"ETA {remaining_text(progress)}"
    budget, trained = progress.get("budget_s"), progress.get("trained_s")
    if isinstance(budget, (int, float)) and budget > 0 and isinstance(trained, (int, float)):
        # Review s20: "Epoch 12/1000", the bar 1% full, 37% into an 85-minute budget (the epochs are a bound).
        # The run ends when the budget or the epochs run out, whichever is first.
        done = max(done, min(1.0, max(0.0, trained / budget)))
        st.progress(done, text=f"Epoch {epoch} · {format_duration(trained)} of the {budget / 60:g}-minute budget "
                               f"(at most {epochs} epochs) · {left}")
    else:
        st.progress(done, text=f"Epoch {epoch}/{epochs} · {left}")
    running = ""
    if progress.get("loss") is not None:
        running = f" · loss {progress['loss']:.4f} · accuracy {progress.get('accuracy') or 0:.1%}"
    validating = " · validating" if batch >= batches else ""
    st.progress(min(1.0, batch / batches), text=f"Batch {batch}/{batches}{running}{validating}")
    if progress.get("updated"):
        st.caption(f"updated {format_duration(time.time() - float(progress['updated']))} ago")


def cumulative_minutes(metrics: list[dict]) -> list[float | None]:
    """Training time at the end of each epoch, in minutes (``None`` once an epoch time is missing)."""
    total, times = 0.0, []
    for row in metrics:
        seconds = row.get("epoch_time")
        if seconds is None or total is None:
            total = None
        else:
            total += float(seconds)
        times.append(None if total is None else total / 60)
    return times


# Height and top/bottom margins of the training curves and of the learning-rate chart drawn beside them: equal,
# so that their plot areas line up. The top margin holds the curves' legend over their panel titles, in two rows
# where a phone's chart (under about 340 px) wraps it.
CURVES_HEIGHT = 400
CURVES_MARGIN = {"t": 84, "b": 40}
# The open marker of the epoch under way; short, so that a 390 px phone keeps the legend on one line.
RUNNING_EPOCH = "epoch so far"


def training_curves_figure(metrics: list[dict], progress: dict | None = None, x_axis: str = "epoch"):
    """Plotly figure: loss and accuracy, train vs validation, plus the running epoch.

    Args:
        metrics: Rows of ``metrics.csv``.
        progress: ``progress.json`` of a running run, drawn as an open marker part-way into the next epoch.
        x_axis: ``"epoch"`` or ``"time"`` (minutes of training, from the epoch times).
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=2, subplot_titles=("Loss", "Accuracy"), horizontal_spacing=0.08)
    epochs = [row["epoch"] for row in metrics]
    by_time = x_axis == "time"
    xs = cumulative_minutes(metrics) if by_time else epochs
    for col, metric, scale in ((1, "loss", 1.0), (2, "accuracy", 100.0)):  # accuracy drawn in percent
        for name, column, color in (("train", metric, "#1f77b4"), ("validation", f"val_{metric}", "#ff7f0e")):
            values = [row[column] * scale if row.get(column) is not None else None for row in metrics]
            figure.add_trace(go.Scatter(
                x=xs, y=values, name=name, mode="lines+markers", customdata=epochs,
                # Accuracy in percent with its sign (review s20: "64.12" read as a fraction or a count).
                hovertemplate=(f"{name} {metric} %{{y:.2f}}%" if scale != 1.0 else f"{name} {metric} %{{y:.4g}}")
                + "<br>epoch %{customdata}<extra></extra>",
                line={"color": color}, legendgroup=name, showlegend=col == 1), row=1, col=col)
        if not by_time and progress and progress.get(metric) is not None and progress.get("batches"):
            x = int(progress["epoch"]) - 1 + int(progress.get("batch", 0)) / int(progress["batches"])
            figure.add_trace(go.Scatter(
                x=[x], y=[progress[metric] * scale], name=RUNNING_EPOCH, mode="markers",
                marker={"color": "#1f77b4", "symbol": "circle-open", "size": 11, "line": {"width": 2}},
                legendgroup="running", showlegend=col == 1), row=1, col=col)
    _epoch_or_time_axis(figure, epochs, by_time, progress)
    figure.update_yaxes(ticksuffix="%", row=1, col=2)
    # The legend sits in the top margin, above the panel titles, so that the plot areas of this figure and of the
    # learning-rate chart beside it share their top and bottom (a legend under the panels took 23 px from them).
    figure.update_layout(height=CURVES_HEIGHT, margin={**CURVES_MARGIN, "l": 40, "r": 20},
                         legend={"orientation": "h", "x": 0, "xanchor": "left", "xref": "container",
                                 "y": 1, "yanchor": "top", "yref": "container"})
    return figure


# Two learning-rate labels at least this far apart on the log axis (decades): about 25 px of a chart's height.
LR_TICKS_APART = 0.15


def learning_rate_figure(metrics: list[dict], x_axis: str = "epoch"):
    """Plotly figure: the learning rate of each epoch on a log scale (a chart of its own, so phones stack it)."""
    import plotly.graph_objects as go

    epochs = [row["epoch"] for row in metrics]
    by_time = x_axis == "time"
    figure = go.Figure(go.Scatter(
        x=cumulative_minutes(metrics) if by_time else epochs, y=[row.get("lr") for row in metrics],
        name="learning rate", mode="lines+markers", customdata=epochs, line={"color": "#2ca02c"},
        hovertemplate="learning rate %{y:.2e}<br>epoch %{customdata}<extra></extra>"))
    _epoch_or_time_axis(figure, epochs, by_time, None)
    # One label per decade: over a decade or two plotly labels the 2-9 multiples too, 14 labels in two illegible
    # stacks for a 6-epoch cosine run (walk s21).
    figure.update_yaxes(type="log", tickformat=".3~e", dtick=1)
    rates = [row["lr"] for row in metrics if (row.get("lr") or 0) > 0]
    if rates and max(rates) / min(rates) < 10:
        # Less than a decade (a constant or barely changing rate): plotly labels a log axis's minor ticks there,
        # on top of each other ("1e-3, 9e-4, 8e-4, 7e-4", walk s12), whatever nticks says. So the ticks are the
        # rate's own lowest and highest values, with a half-decade margin around them; the lowest only when it is
        # far enough from the highest for two labels (1e-3 over 9.755e-4 printed one on the other, walk s21).
        low, high = math.log10(min(rates)) - 0.5, math.log10(max(rates)) + 0.5
        apart = math.log10(max(rates) / min(rates)) >= LR_TICKS_APART
        figure.update_yaxes(range=[low, high], tickvals=sorted({min(rates), max(rates)} if apart else {max(rates)}),
                            dtick=None)
    # Titled like the Loss and Accuracy panels beside it (make_subplots' titles are annotations).
    figure.add_annotation(text="Learning rate", x=0.5, y=1.0, xref="paper", yref="paper", xanchor="center",
                          yanchor="bottom", showarrow=False, font={"size": 16})
    figure.update_layout(height=CURVES_HEIGHT, margin={**CURVES_MARGIN, "l": 60, "r": 10}, showlegend=False)
    return figure


def _epoch_or_time_axis(figure, epochs: list[int], by_time: bool, progress: dict | None) -> None:
    if by_time:
        figure.update_xaxes(title_text="training time (min)", rangemode="tozero")
    else:
        last_epoch = max(epochs + [int(progress["epoch"]) if progress and progress.get("epoch") else 1])
        # Whole epochs on the axis: plotly would otherwise tick 0.5, 1, 1.5 for short runs.
        figure.update_xaxes(title_text="epoch", range=[0.5, last_epoch + 0.5], dtick=epoch_tick_step(last_epoch))


def _committed_metrics_ui(run_dir: Path) -> list[dict] | None:
    """The metrics of the run's last committed epoch when its ``metrics.csv`` gave none, saying so; [] when
    no epoch was committed; None (after a warning) when there are epochs but no readable metrics.

    Probe s11: a damaged ``metrics.csv`` read as "No finished epoch yet" under
    "finished · 3 epochs", while the checkpoint's own copy was intact.
    """
    try:
        checkpoint = runs.read_checkpoint(run_dir)
    except ValueError:  # a checkpoint damaged by hand: the run's own panel says so
        return []
    if checkpoint is None or checkpoint.epoch < 1:
        return []
    metrics = checkpoint.metrics() if checkpoint.folder != Path(run_dir) else []
    where = Path(run_dir).name + "/metrics.csv"
    if metrics:
        st.caption(f"{escape_markdown(where)} is missing or cannot be read: these curves come from the copy "
                   f"saved with epoch {checkpoint.epoch}'s checkpoint "
                   f"({escape_markdown(checkpoint.folder.relative_to(run_dir).as_posix())}/metrics.csv).")
    else:
        st.warning(f"This run has {counted(checkpoint.epoch, 'committed epoch')}, but {escape_markdown(where)} is "
                   "missing or cannot be read, so there are no curves to draw.", icon=":material/warning:")
        return None
    return metrics


def training_curves_ui(run_dir: Path, progress: dict | None = None) -> None:
    """Curves of a run against epochs or training time, or a note while it has no finished epoch."""
    metrics = runs.read_metrics(run_dir)
    if not metrics:
        metrics = _committed_metrics_ui(run_dir)
        if metrics is None:  # the run has epochs but no readable metrics: said above
            return
    if not metrics and not (progress and progress.get("loss") is not None):
        st.caption("No finished epoch yet: the curves appear after the first one.")
        return
    name = Path(run_dir).name
    x_axis = st.segmented_control("Horizontal axis", ["epoch", "time"], default="epoch", key=f"curves_axis_{name}",
                                  format_func={"epoch": "Epochs", "time": "Training time"}.get,
                                  label_visibility="collapsed") or "epoch"
    curves, rate = st.columns([2.6, 1])  # side by side on a desktop, stacked on a phone
    curves.plotly_chart(training_curves_figure(metrics, progress, x_axis), key=f"curves_{name}", config=CHART_CONFIG)
    if metrics:
        rate.plotly_chart(learning_rate_figure(metrics, x_axis), key=f"learning_rate_{name}", config=CHART_CONFIG)
    if metrics:
        last = metrics[-1]
        st.caption(f"Last epoch {last['epoch']}: learning rate {last.get('lr', float('nan')):.2e}, "
                   f"{format_duration(last.get('epoch_time'))} per epoch")
    from core.averaging import averaged_record

    averaged = averaged_record(run_dir)
    if averaged is not None:
        first, last_averaged = averaged["epochs"]
        best = max((row.get("val_accuracy", float("nan")) for row in metrics), default=None)
        ready = averaged.get("ready_after_seconds")
        ready_text = f", ready after {format_duration(ready)} of training" if isinstance(ready, (int, float)) else ""
        st.caption(f"Weight-averaged model (epochs {first}-{last_averaged}, {averaged['count']} epochs{ready_text}): "
                   f"validation accuracy {format_accuracy(averaged['val_accuracy'])}, against {format_accuracy(best)} "
                   "for the best epoch. Pick it as \"averaged\" in the model menus.")


def run_files_warning_ui(run_dir: Path) -> None:
    """Name what in the run's config.json or metrics.csv cannot be used (files damaged or changed by hand)."""
    problems = runs.run_file_problems(run_dir)
    if problems:
        st.warning(f"Some of run {escape_markdown(Path(run_dir).name)}'s files cannot be used as they are:\n\n"
                   + "\n".join(f"- {escape_markdown(problem)}" for problem in problems), icon=":material/warning:")


def run_quality_warning_ui(summary: RunSummary) -> None:
    """Warn when a run's best validation accuracy is at guessing level (once it ended, or after 3 epochs)."""
    from core.diagnose import guessing_level_warning

    if summary.status.active and summary.epochs_done < 3:
        return  # the first epochs of a healthy run can be at that level too
    counts = (runs.read_config(summary.path).get("resolved") or {}).get("val_class_counts")
    warning = guessing_level_warning(summary.best_val_accuracy, counts)
    if warning:
        st.warning(warning, icon=":material/warning:")


def run_actions_ui(run_dir: Path, status: runs.RunStatus) -> None:
    """Stop (active runs) or Resume (stopped/failed runs with a checkpoint)."""
    from core import jobs

    name = Path(run_dir).name
    if status.active:
        asked = runs.stop_requested_at(run_dir)
        if asked is not None:
            st.caption(f"Stop asked for {format_duration(max(0.0, time.time() - asked))} ago: the run ends after "
                       "the current batch and keeps the checkpoints of its last finished epoch.")
        elif st.button("Stop", key=f"stop_{name}", icon=":material/stop:",
                       help="End after the current batch; best.keras and last.keras are kept"):
            jobs.stop_training_job(run_dir)
            st.rerun(scope="fragment")
    elif status.state in ("stopped", "failed") and ((Path(run_dir) / "last.keras").exists() or runs.has_checkpoint(run_dir)):
        if st.button("Resume", key=f"resume_{name}", icon=":material/play_arrow:",
                     help="Continue from the last finished epoch (last.keras)"):
            try:
                jobs.resume_training_job(run_dir)
            except ValueError as error:
                st.error(escape_markdown(str(error)))
                return
            st.rerun()


def draw_run_panel(run_dir: Path) -> None:
    """Status, actions, progress and curves of one run, read fresh from disk."""
    status = runs.read_status(run_dir)
    progress = runs.read_progress(run_dir) if status.active else {}
    if progress.get("updated", 0.0) < status.updated:
        progress = {}  # left over from before a resume
    left, right = st.columns([4, 1])
    with left:
        run_status_ui(status)
    with right:
        run_actions_ui(run_dir, status)
    if status.active:
        run_progress_ui(progress, stopping=runs.stop_requested(run_dir))
    training_curves_ui(run_dir, progress)


@st.fragment(run_every=REFRESH_EVERY)
def _live_run_panel(run_dir: Path, drawn: str) -> None:
    if run_signature(run_dir) != drawn:
        # The run ended or reached a new best accuracy: redraw the whole page, so that the run menu
        # matches the panel (and the timer stops with the run). Other epochs redraw only this panel.
        st.rerun()
    draw_run_panel(run_dir)


@st.fragment
def _still_run_panel(run_dir: Path) -> None:
    draw_run_panel(run_dir)


def run_panel(run_dir: Path) -> None:
    """The run panel; it refreshes itself every few seconds while the run is active."""
    if runs.read_status(run_dir).active:
        _live_run_panel(run_dir, run_signature(run_dir))
    else:
        _still_run_panel(run_dir)


# ---------------------------------------------------------------- runs table


def runs_table(summaries: list[RunSummary]) -> pd.DataFrame:
    """One row per run: id, model, status, epochs, best val accuracy (+ epoch, and the averaged model's), training
    time, created."""
    from core.averaging import averaged_record

    rows = []
    for summary in summaries:
        best = "—"
        if summary.best_val_accuracy is not None:
            best = f"{format_accuracy(summary.best_val_accuracy)} (epoch {summary.best_epoch})"
            averaged = averaged_record(summary.path)
            if averaged is not None:
                best += f"; averaged {format_accuracy(averaged['val_accuracy'])}"
        rows.append({
            "run": summary.run_id,
            "model": summary.model,
            "status": summary.status.state,
            "epochs": epochs_done_text(summary),
            "best val accuracy": best,
            "training time": format_duration(summary.training_seconds) if summary.epochs_done else "—",
            "created": datetime.fromtimestamp(summary.created),
        })
    columns = ["run", "model", "status", "epochs", "best val accuracy", "training time", "created"]
    return pd.DataFrame(rows, columns=columns)


def epochs_done_text(summary: RunSummary) -> str:
    """``11/40``, or ``11 (85-minute budget)`` for a run whose time budget, not its epochs, sets its end (as Compare
    writes it; review s20: "11/1000" for a run that would stop at about 37)."""
    budget = (runs.read_config(summary.path).get("config") or {}).get("time_budget_min")
    if isinstance(budget, (int, float)) and not isinstance(budget, bool) and budget > 0:
        return f"{summary.epochs_done} ({budget:g}-minute budget)"
    return f"{summary.epochs_done}/{summary.epochs_planned}"


def runs_table_ui(summaries: list[RunSummary]) -> None:
    """The table of the given runs."""
    st.dataframe(runs_table(summaries), hide_index=True, column_config={
        "run": st.column_config.TextColumn("run", pinned=True),  # stays in view when a phone scrolls sideways
        "created": st.column_config.DatetimeColumn("created", format="YYYY-MM-DD HH:mm"),
    })


def runs_signature(summaries: list[RunSummary]) -> tuple:
    """Every run's line in the run menu (id, state, best accuracy), as the page drew them."""
    return tuple(describe_run(summary) for summary in summaries)


@st.fragment(run_every=REFRESH_EVERY)
def _live_runs_table(drawn: tuple) -> None:
    summaries = runs.list_runs()
    if runs_signature(summaries) != drawn:
        st.rerun()  # a run started, ended or reached a new best: redraw the page (menu labels included)
    runs_table_ui(summaries)


def runs_table_panel(summaries: list[RunSummary]) -> None:
    """The table of every run; while any run is active it checks every few seconds and redraws the page on a change."""
    if any(summary.status.active for summary in summaries):
        _live_runs_table(runs_signature(summaries))
    else:
        runs_table_ui(summaries)


def run_downloads_ui(run_dir: Path) -> None:
    """Download buttons for the run's metrics.csv and its best model (with its card), once they exist."""
    from dashboard.downloads import metrics_download_ui, model_download_ui

    name = Path(run_dir).name
    left, right, _ = st.columns([1, 1, 3])
    with left:
        metrics_download_ui(run_dir, key=f"download_metrics_{name}")
    if (Path(run_dir) / "best.keras").is_file():
        with right:
            model_download_ui(Path(run_dir) / "best.keras", key=f"download_model_{name}")


def run_details_ui(run_dir: Path, log_lines: int = 30) -> None:
    """The run's settings (config.json) and the end of its log, folded away."""
    with st.expander("Settings and log"):
        saved = runs.read_config(run_dir)
        settings, resolved = st.columns(2)
        settings.caption("Settings (config.json)")
        settings.json(saved.get("config", {}), expanded=1)
        if saved.get("resolved"):
            resolved.caption("Resolved at start: data, split sizes, versions, hardware")
            resolved.json(saved["resolved"], expanded=1)
        log = Path(run_dir) / "train.log"
        if log.is_file():
            lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
            st.caption(f"train.log, last {log_lines} lines without TensorFlow's start-up messages")
            st.code("\n".join(readable_log(lines)[-log_lines:]) or "(empty)", language=None)
        st.caption(f"Folder: {code(f'{Path(run_dir).parent.name}/{Path(run_dir).name}', None)} in the runs folder")


_LOG_NOISE = re.compile(r"^([IWE]\d{4} \d\d:\d\d:|WARNING: All log messages before absl|To enable the following instructions"
                        r"|\s*\[\[\{\{node \w+\}\}\]\]\s*$)")  # the tail of TF's "end of sequence" notice


def readable_log(lines: list[str]) -> list[str]:
    """Drop TensorFlow's C++ chatter (``I0000 ...`` lines and their ``[[{{node PyFunc}}]]`` tails) from a worker log."""
    return [line for line in lines if not _LOG_NOISE.match(line)]
