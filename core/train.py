"""The training worker: one function runs a prepared run folder to the end.

The page and the CLI both go through :func:`prepare_run` then
:func:`run_training` (the page in a detached subprocess, see ``core.jobs``), so
they run exactly the same code.
"""

from __future__ import annotations

import contextlib
import os
import platform
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from core import runs
from core.labels import CLASS_NAMES, NUM_CLASSES, PUBLIC_TEST, TRAINING
from core.train_config import TrainConfig, setting_type_problems
from core.wording import counted

Echo = Callable[[str], None]


def prepare_run(config: TrainConfig, runs_dir: Path | None = None) -> Path:
    """Validate ``config`` and create its run folder (status ``queued``).

    Raises:
        ValueError: If the config is invalid.
    """
    config.validate()
    run_dir = runs.new_run_dir(config.model, runs_dir)
    runs.write_json_atomic(run_dir / "config.json", {"config": config.to_dict(), "created": time.time()})
    runs.write_status(run_dir, "queued")
    return run_dir


def load_config(run_dir: Path) -> TrainConfig:
    """Read the :class:`TrainConfig` of a run folder.

    Raises:
        FileNotFoundError: If the folder has no config.json.
        ValueError: If a setting in it is not of the kind a run writes (:func:`setting_type_problems`).
    """
    data = runs.read_config(run_dir)
    if "config" not in data:
        raise FileNotFoundError(f"{run_dir} is not a run folder (no readable config.json)")
    wrong = setting_type_problems(data["config"])
    if wrong:
        # Review s22: validate() passed "tensorboard": "no" (true) and "epochs": 30.0; the page names them too.
        raise ValueError(f"config.json: {'; '.join(wrong)} (changed by hand?): put them back as a run writes them, "
                         "or start a new run")
    return TrainConfig.from_dict(data["config"])


def split_training_data(dataset: Any, config: TrainConfig) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Return ``((x_train, y_train), (x_val, y_val))`` uint8 images and int labels.

    Validation is a stratified, seeded slice of Training or the PublicTest split;
    PrivateTest (and any other split) is never touched.

    Raises:
        ValueError: If the needed splits are missing or too small.
    """
    if TRAINING not in dataset.split_names:
        raise ValueError(f"the dataset has no Training split (it has {', '.join(dataset.split_names)}); training needs FER2013's Training images")
    train = dataset.subset(TRAINING)
    rng = np.random.default_rng(config.seed)
    if config.validation == "publictest":
        if PUBLIC_TEST not in dataset.split_names:
            raise ValueError("validation 'publictest' needs a PublicTest split, which this dataset lacks; use validation 'split'")
        val = dataset.subset(PUBLIC_TEST)
        x_train, y_train = train.images, train.labels
        x_val, y_val = val.images, val.labels
    else:
        val_index = _stratified_pick(train.labels, config.val_fraction, rng, leave_one=True)
        keep = np.ones(len(train), dtype=bool)
        keep[val_index] = False
        x_train, y_train = train.images[keep], train.labels[keep]
        x_val, y_val = train.images[val_index], train.labels[val_index]
    if config.max_train_images and config.max_train_images < len(x_train):
        pick = _stratified_pick(y_train, config.max_train_images / len(x_train), rng)
        x_train, y_train = x_train[pick], y_train[pick]
    if len(x_train) == 0 or len(x_val) == 0:
        raise ValueError("not enough images to train and validate")
    return (x_train, y_train), (x_val, y_val)


def describe_validation(config: TrainConfig, train_images: int, val_images: int) -> str:
    """Where the validation images come from, e.g. ``"10% stratified slice of Training"``, with the real share when
    a small dataset made it differ (every class gives at least one image)."""
    if config.validation == "publictest":
        return "PublicTest"
    text = f"{config.val_fraction:.0%} stratified slice of Training"
    total = train_images + val_images
    if config.max_train_images is None and total and abs(val_images / total - config.val_fraction) > 0.02:
        text += f" (here {val_images} of {total} images, {val_images / total:.0%}: at least one of each class)"
    return text


def stratified_count(members: int, fraction: float, leave_one: bool = False) -> int:
    """How many of a class's ``members`` :func:`split_training_data` picks for ``fraction``: the rounded share,
    at least one; ``leave_one``: never the class's last image (for the validation slice a class of one stays in
    training: the model could not learn it otherwise)."""
    return min(max(1, round(members * fraction)), members - 1 if leave_one else members)


def epoch_sizes(class_counts: list[int], validation: str, val_fraction: float,
                max_train_images: int | None, public_test_images: int) -> tuple[int, int]:
    """(training, validation) images per epoch that :func:`split_training_data` gives for Training's per-class
    ``class_counts``, without loading the images: the figures the training form's estimate uses."""
    counts = [int(count) for count in class_counts if count > 0]
    if validation == "publictest":
        val, train = int(public_test_images), counts
    else:
        taken = [stratified_count(count, val_fraction, leave_one=True) for count in counts]
        val, train = sum(taken), [count - take for count, take in zip(counts, taken)]
    total = sum(train)
    if max_train_images and total and max_train_images < total:
        train = [stratified_count(count, max_train_images / total) for count in train if count > 0]
    return sum(train), val


def _stratified_pick(labels: np.ndarray, fraction: float, rng: np.random.Generator, leave_one: bool = False) -> np.ndarray:
    """Indices of about ``fraction`` of each class (at least one); ``leave_one``: never a class's last image."""
    picked = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = stratified_count(len(members), fraction, leave_one)
        if count > 0:
            picked.append(rng.choice(members, size=count, replace=False))
    if not picked:
        return np.zeros(0, dtype=np.int64)
    return np.sort(np.concatenate(picked))


def balanced_class_weights(labels: np.ndarray) -> dict[int, float]:
    """Inverse-frequency weights ``n / (k * count)``, mean 1 over samples; absent classes get 1."""
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(float)
    present = counts > 0
    weights = np.ones(NUM_CLASSES)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return {index: float(weight) for index, weight in enumerate(weights)}


def make_optimizer(config: TrainConfig):
    """Build the Keras optimizer named in ``config``."""
    import keras

    if config.optimizer == "adam":
        return keras.optimizers.Adam(config.learning_rate)
    if config.optimizer == "adamw":
        return keras.optimizers.AdamW(config.learning_rate, weight_decay=config.weight_decay or 1e-4)
    if config.optimizer == "sgd":
        return keras.optimizers.SGD(config.learning_rate, momentum=config.momentum, nesterov=config.nesterov,
                                    weight_decay=config.weight_decay or None)
    return keras.optimizers.RMSprop(config.learning_rate, momentum=config.momentum)


def library_versions() -> dict[str, str]:
    """Versions that decide whether a run can be reproduced."""
    import keras

    versions = {"python": platform.python_version(), "numpy": np.__version__, "keras": keras.__version__,
                "backend": keras.backend.backend()}
    if versions["backend"] == "tensorflow":
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    elif versions["backend"] == "jax":
        import jax

        versions["jax"] = jax.__version__
    return versions


def run_training(run_dir: Path, *, resume: bool = False, echo: Echo = print) -> runs.RunStatus:
    """Train the run in ``run_dir`` to its end, writing every file as it goes.

    Only one process trains a run at a time: this one holds the run's
    ``worker.lock`` (see :func:`core.runs.acquire_run_lock`) until it returns.

    Args:
        run_dir: A folder made by :func:`prepare_run` (or a run to resume).
        resume: Continue from the last committed epoch (:func:`core.runs.read_checkpoint`).
        echo: Where progress lines go (stdout for the CLI, the log for jobs).

    Returns:
        The final status (finished, stopped or failed). Errors are caught and
        recorded in ``status.json``; they are not raised.

    Raises:
        core.runs.RunBusyError: If another live process is training this run
            (nothing is written then).
    """
    run_dir = Path(run_dir)
    lock = runs.adopt_run_lock(run_dir) or runs.acquire_run_lock(run_dir)
    with lock:
        before = runs.read_status(run_dir)
        committed = _committed_epoch(run_dir)
        if resume:
            (run_dir / "stop").unlink(missing_ok=True)  # a Stop of the previous attempt must not end this one
        runs.write_status(run_dir, "running", pid=os.getpid())
        try:
            with restored_dtype_policy():
                final = _train(run_dir, resume, echo)
        except KeyboardInterrupt as interrupt:
            runs.write_status(run_dir, "stopped", f"{INTERRUPTED} ({interrupt.args[0] if interrupt.args else 'Ctrl-C'}); "
                                                  "Resume continues from the last checkpoint")
            return runs.read_status(run_dir)
        except Exception as error:  # the worker must record any failure before exiting
            (run_dir / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
            message = f"{type(error).__name__}: {error}"
            echo(f"failed: {message}")
            if resume and before.state == "finished" and _committed_epoch(run_dir) == committed:
                # A resume of a finished run that could not start (its data moved, a damaged checkpoint) trained
                # nothing: the run stays finished on disk, and only this attempt reads as failed (probe s19).
                runs.write_status(run_dir, "finished", before.message)
                echo("the run stays finished: this resume trained nothing")
                return runs.RunStatus("failed", message)
            runs.write_status(run_dir, "failed", message)
            return runs.read_status(run_dir)
        if resume and before.state == "finished" and final[0] == "finished" and final[1].startswith(ALREADY_TRAINED):
            final = ("finished", before.message)  # nothing was trained: the run's summary stays (probe s19)
        runs.write_status(run_dir, *final)
        return runs.read_status(run_dir)


# The start of a stopped run's message when a signal ended it (Ctrl-C, or SIGTERM in the command line).
INTERRUPTED = "interrupted"
# The start of the message of a resume that found every planned epoch trained.
ALREADY_TRAINED = "already trained"


def _committed_epoch(run_dir: Path) -> int | None:
    """The run's last committed epoch, or ``None`` when it has none or its record cannot be read."""
    try:
        checkpoint = runs.read_checkpoint(run_dir)
    except ValueError:
        return None
    return checkpoint.epoch if checkpoint is not None else None


@contextlib.contextmanager
def restored_dtype_policy() -> Iterator[None]:
    """Put Keras' global dtype policy back afterwards: a run's precision must not leak into
    the models its process builds or loads later (``--precision auto`` is mixed bfloat16 here)."""
    import keras

    saved = keras.mixed_precision.global_policy()
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(saved)


def _train(run_dir: Path, resume: bool, echo: Echo) -> tuple[str, str]:
    from core.augment import make_training_batches
    from core.data import load_fer2013
    from core.distribute import (configure_precision, distribution_scope, needs_even_batches, trim_for_replicas,
                                 use_jax_compilation_cache, validation_batch_size)
    from core.model_io import load_model

    config = load_config(run_dir)
    import keras

    use_jax_compilation_cache()  # before the first JAX program: setting the seed compiles one
    keras.utils.set_random_seed(config.seed)
    echo(f"loading {config.data}")
    saved = runs.read_config(run_dir)
    try:
        dataset = load_fer2013(config.data, allowed_roots=_allowed_roots(config.data, saved.get("data_roots")))
    except FileNotFoundError as error:
        if not resume:
            raise
        # Probe s19: the documented way on was not named.
        raise FileNotFoundError(f"{error}. If the data moved, resume with its new place: python -m core train "
                                f"--resume {run_dir} --data NEW_PATH") from error
    recorded_hash = (saved.get("resolved") or {}).get("data_hash")
    if resume and recorded_hash and recorded_hash != dataset.report.content_hash:
        # Another dataset would re-draw the validation slice (faces already trained on could land in it) and
        # make the earlier epochs' accuracies incomparable; the run's record of its data must stay as it was.
        raise ValueError(f"the data at {config.data} has changed since this run started (content hash "
                         f"{dataset.report.content_hash[:12]} instead of {recorded_hash[:12]}): resuming would train and "
                         "validate on other faces. Restore the original data, or start a new run")
    if skipped := len(dataset.report.skipped):
        echo(f"note: {counted(skipped, 'record')} of {config.data} could not be loaded and are left out "
             "(`python -m core inspect --data ...` lists them)")
    for note in dataset.report.notes():
        echo(f"note: {note}")
    (x_train, y_train), (x_val, y_val) = split_training_data(dataset, config)
    missing = [name for index, name in enumerate(CLASS_NAMES) if not np.any(y_train == index)]
    if missing:
        echo(f"note: no training images of {', '.join(missing)}: the model cannot learn to predict "
             f"{'it' if len(missing) == 1 else 'them'}")
    targets = distillation = None
    teacher_seconds = 0.0
    if config.teachers:
        from core.distill import prepare_targets

        # Before the run's precision is set: the teachers predict as they were saved.
        teacher_started = time.monotonic()
        targets, distillation = prepare_targets(config, x_train, y_train, run_dir, dataset.report.content_hash, echo)
        teacher_seconds = time.monotonic() - teacher_started
    start = None
    started_from = (saved.get("resolved") or {}).get("init_from")  # a resumed run keeps the record of its start
    startup = (saved.get("resolved") or {}).get("startup_seconds")  # and its first start's duration
    if config.init_from and not resume_epoch(run_dir, resume):
        # Read before the run's precision is set, like the teachers: the weights come out as they were saved.
        start = read_initial_weights(config, dataset.report.content_hash, echo)
    precision = configure_precision(config.precision)
    saved["resolved"] = {
        "data_hash": dataset.report.content_hash,
        "skipped_records": len(dataset.report.skipped),
        "ignored_folders": list(dataset.report.ignored_folders),
        "numbered_folders": list(dataset.report.numbered_folders),
        "class_names": list(CLASS_NAMES),
        "train_images": int(len(x_train)),
        "val_images": int(len(x_val)),
        # Per class, FER2013 order: what "always the most common class" would score on this run's own validation data.
        "val_class_counts": np.bincount(np.asarray(y_val, dtype=np.int64), minlength=NUM_CLASSES).tolist(),
        "val_source": describe_validation(config, len(x_train), len(x_val)),
        "precision": precision,
        "versions": library_versions(),
        "hardware": describe_hardware(),
        "command": command_line(config),
    }
    if distillation is not None:
        saved["resolved"]["distillation"] = distillation
    if start is not None or started_from:
        saved["resolved"]["init_from"] = start[1] if start is not None else started_from
    if startup is not None:
        saved["resolved"]["startup_seconds"] = startup  # a resume keeps the first start's
    runs.write_json_atomic(run_dir / "config.json", saved)

    checkpoint = runs.read_checkpoint(run_dir) if resume else None
    if checkpoint is not None and checkpoint.recovered:
        echo(f"note: {checkpoint.recovered}")
        if config.average_from is not None:
            echo("note: the weight average was kept only in that folder: averaged.keras will average the epochs "
                 "trained from now on (averaged.json names them)")
    if checkpoint is not None:
        # A kill after the last commit may have left stale copies; a copied run folder, damaged ones.
        runs.sync_run_files(run_dir, checkpoint, verify=True)
    state = checkpoint.state if checkpoint is not None else {}
    initial_epoch = checkpoint.epoch if checkpoint is not None else 0
    average = None
    if config.average_from is not None:
        from core.averaging import AVERAGE_FILE, RunningAverage

        # The sum committed with the checkpoint: a resumed run goes on adding to it.
        average = (RunningAverage.load(checkpoint.folder / AVERAGE_FILE) if checkpoint is not None and not checkpoint.legacy
                   else RunningAverage())

    def finish(outcome: str, message: str, trained: bool = True) -> tuple[str, str]:
        """The run's end: with weight averaging, write ``averaged.keras`` (again when epochs were trained now)."""
        from core.averaging import AVERAGED_MODEL, finish_average

        if average is None or (not trained and (run_dir / AVERAGED_MODEL).is_file()):
            return outcome, message
        try:
            record = finish_average(run_dir, config, average, x_train, x_val, y_val, echo=echo)
        except (OSError, ValueError) as error:
            echo(f"weight averaging failed: {error}")
            return outcome, f"{message}; weight averaging failed ({error}), best.keras kept"
        if record is None:
            return outcome, f"{message}; no epoch reached the averaging window"
        return outcome, (f"{message}; weights of epochs {record['epochs'][0]}-{record['epochs'][1]} averaged: "
                         f"val_accuracy {record['val_accuracy']:.4f} (averaged.keras)")
    with distribution_scope(config.strategy) as replicas:
        if initial_epoch:
            model = load_model(checkpoint.model_path, compile=True).model
            from core.callbacks import restore_seed_generator_states

            # .keras files do not keep the dropout seed state: without this the
            # resumed epoch would reuse epoch 1's dropout masks.
            if not restore_seed_generator_states(model, state.get("seed_generators")):
                echo("note: this checkpoint has no random-generator state (written by an older version); "
                     "dropout draws will differ from an uninterrupted run")
            echo(f"resuming after epoch {initial_epoch}")
        else:
            model = _build_compiled(config)
            if start is not None:
                apply_initial_weights(model, start[0], config)
                echo(f"starting from the weights of {Path(config.init_from).name}")
    if initial_epoch >= config.epochs:
        return finish("finished", f"{ALREADY_TRAINED} {counted(initial_epoch, 'epoch')}", trained=False)
    even = needs_even_batches(replicas)
    if even and config.batch_size % replicas:
        raise ValueError(f"batch size {config.batch_size} cannot be split evenly over {replicas} devices "
                         f"(JAX shards every batch equally): use a multiple of {replicas}")
    keep = trim_for_replicas(len(x_train), config.batch_size, replicas, even=even)
    if keep < len(x_train):
        echo(f"dropping the last {len(x_train) - keep} training image(s): a last batch of that size cannot be split over {replicas} replicas")
        x_train, y_train = x_train[:keep], y_train[:keep]
        targets = targets[:keep] if targets is not None else None
    if even and len(x_val) % replicas:
        keep = len(x_val) - len(x_val) % replicas
        echo(f"validating on {keep} of the {len(x_val)} validation images: JAX splits every batch equally over {replicas} devices")
        x_val, y_val = x_val[:keep], y_val[:keep]
    # With teachers, each target is the label blended with their probabilities (core.distill).
    y_train_hot = targets if targets is not None else keras.utils.to_categorical(y_train, NUM_CLASSES)
    y_val_hot = keras.utils.to_categorical(y_val, NUM_CLASSES)
    class_weight = balanced_class_weights(y_train) if config.class_weights else None
    # Epoch e's batches depend on (seed, e) only, so a resumed run trains on
    # the batches an uninterrupted one would (not on epoch 1's again).
    batches = make_training_batches(x_train, y_train_hot, config.augment, config.batch_size, config.seed,
                                    start_epoch=initial_epoch)
    from core.callbacks import RunRecorder

    stateful: dict = {}
    schedule: list = []
    if config.lr_schedule == "cosine" and not config.time_budget_min:
        schedule.append(keras.callbacks.LearningRateScheduler(lambda epoch, lr: cosine_learning_rate(config, epoch)))
    elif config.lr_schedule == "plateau":
        mode = "max" if config.plateau_metric == "val_accuracy" else "min"
        stateful["plateau"] = keras.callbacks.ReduceLROnPlateau(config.plateau_metric, factor=config.plateau_factor,
                                                                patience=config.plateau_patience, min_lr=1e-6, mode=mode)
        schedule.append(stateful["plateau"])
    if config.early_stopping_patience:
        stateful["early_stopping"] = keras.callbacks.EarlyStopping("val_accuracy", patience=config.early_stopping_patience, mode="max")
        schedule.append(stateful["early_stopping"])
    recorder = RunRecorder(run_dir, config, state, echo, steps_per_epoch=batches.steps_per_epoch,
                           rows=checkpoint.metrics() if checkpoint is not None else [], stateful_callbacks=stateful,
                           val_images=len(x_val))
    callbacks: list = [recorder, *schedule]
    if average is not None:
        from core.averaging import commit_hook, discard_averaged_model

        recorder.commit_hooks.append(commit_hook(config, recorder, average))
    budget = None
    if config.time_budget_min:
        from core.callbacks import TimeBudget

        budget = TimeBudget(recorder, config.time_budget_min * 60, config.learning_rate, cosine=config.lr_schedule == "cosine")
        last_epoch_s = float(recorder.rows[-1].get("epoch_time") or 0.0) if recorder.rows else 0.0
        if recorder.train_seconds + last_epoch_s > budget.budget_s:
            # The rule TimeBudget stopped the run by: one more epoch, as long as the last, would end past the budget.
            return finish("finished", f"the {config.time_budget_min:g}-minute time budget was used by the earlier epochs",
                          trained=False)
        callbacks.append(budget)
    if config.tensorboard:
        callbacks.append(keras.callbacks.TensorBoard(str(run_dir / "tensorboard")))
    callbacks.append(recorder.committer)  # last: commits after every other callback ended the epoch
    echo(f"training {config.model} on {len(x_train)} images, validating on {len(x_val)} ({saved['resolved']['val_source']})"
         + (f", {replicas} replicas" if replicas > 1 else ""))
    if average is not None:
        discard_averaged_model(run_dir)  # this fit trains more epochs: an averaged model written before would be stale
    created = saved.get("created")
    if not initial_epoch and isinstance(created, (int, float)) and "startup_seconds" not in saved["resolved"]:
        # From the run's creation to its first batch, less the teachers' predictions (a distillation's own cost):
        # the fixed part of a run that the duration estimate adds to its epochs (core.throughput).
        saved["resolved"]["startup_seconds"] = round(max(0.0, time.time() - created - teacher_seconds), 2)
        runs.write_json_atomic(run_dir / "config.json", saved)
    model.fit(
        batches.data,
        steps_per_epoch=batches.steps_per_epoch,
        epochs=config.epochs,
        initial_epoch=initial_epoch,
        validation_data=(x_val.astype(np.float32)[..., None], y_val_hot),
        validation_batch_size=validation_batch_size(len(x_val), replicas),
        class_weight=class_weight,
        callbacks=callbacks,
        shuffle=False,  # the batches reshuffle themselves per epoch; fit's shuffle would draw from Python's random
        verbose=0,
    )
    if recorder.stopped_by_user:
        # Walk s22: "stopped by request after epoch 2", read just after a Stop at batch 378 of 404, looked like a
        # Stop that waited for the epoch's end; it had cut epoch 3 short, which Resume trains again whole.
        cut = recorder.cut_short
        if cut is None:  # honoured at an epoch's last batch: that epoch ended whole and was committed
            return finish("stopped", f"stopped by request after epoch {recorder.last_epoch}; best.keras kept")
        during = (f"stopped by request during epoch {cut[0]} ({cut[1]}/{batches.steps_per_epoch} batches; "
                  "Resume trains it again whole)")
        if not recorder.last_epoch:
            return "stopped", f"{during}; no checkpoint yet"
        return finish("stopped", f"{during}; epoch {recorder.last_epoch}'s checkpoints kept")
    if budget is not None and budget.stopped:
        return finish("finished", (f"{counted(recorder.last_epoch, 'epoch')} in the {config.time_budget_min:g}-minute "
                                   f"time budget ({recorder.train_seconds / 60:.1f} min), best validation accuracy "
                                   f"{recorder.best_val_accuracy:.2%} at epoch {recorder.best_epoch}"))
    # In percent with two decimals, as every page shows accuracies (walk s12: "0.2514" beside "25.14%").
    return finish("finished", f"{counted(recorder.last_epoch, 'epoch')}, best validation accuracy "
                              f"{recorder.best_val_accuracy:.2%} at epoch {recorder.best_epoch}")


def relocate_run_data(run_dir: Path, data: str, echo: Echo = print) -> None:
    """Point a run at a new location of the data it started on (moved or copied), before a resume.

    The data is loaded and its content hash compared with the one the run
    recorded: only the same faces, labels and splits are accepted, so the
    validation slice and the earlier epochs stay what they were.

    Raises:
        ValueError: If the run recorded no content hash, or the data at ``data`` is other data.
        FileNotFoundError: If ``data`` does not exist.
    """
    from core.data import load_fer2013

    run_dir = Path(run_dir)
    if runs.read_status(run_dir).active:
        raise ValueError(f"{run_dir.name} is being trained now; stop it before pointing it at other files")
    saved = runs.read_config(run_dir)
    recorded = (saved.get("resolved") or {}).get("data_hash")
    if not recorded:
        raise ValueError(f"{run_dir.name} has not recorded which data it trained on (it never started), "
                         "so a new location cannot be checked; start a new run")
    dataset = load_fer2013(data, allowed_roots=_allowed_roots(data, saved.get("data_roots")))
    if dataset.report.content_hash != recorded:
        raise ValueError(f"the data at {data} is not the data this run started on (content hash "
                         f"{dataset.report.content_hash[:12]} instead of {recorded[:12]}); resume with the same data")
    if saved["config"].get("data") != str(data):
        echo(f"the run's data: {saved['config'].get('data')} -> {data} (same content)")
        saved["config"]["data"] = str(data)
        runs.write_json_atomic(run_dir / "config.json", saved)


def resume_epoch(run_dir: Path, resume: bool) -> int:
    """The last committed epoch a resumed run continues after (0: it starts from its initial weights)."""
    if not resume:
        return 0
    checkpoint = runs.read_checkpoint(run_dir)
    return checkpoint.epoch if checkpoint is not None else 0


def read_initial_weights(config: TrainConfig, data_hash: str | None, echo: Echo = print) -> tuple[list[np.ndarray], dict]:
    """The weights of ``config.init_from`` and the record the run keeps of them.

    The record names the file (path, sha256) and says, as for a teacher
    (:func:`core.distill.validation_verdict`), whether those weights were trained
    without this run's validation faces; when they were not, the run's
    validation accuracy is optimistic and the run says so.

    Raises:
        ValueError: The file is not a FER Studio model, or its outputs are not in
            FER2013's class order (training targets are).
    """
    from core.distill import file_sha256, teacher_training, validation_verdict
    from core.model_io import load_model

    path = Path(config.init_from).expanduser()
    loaded = load_model(path)
    if tuple(loaded.class_names) != tuple(CLASS_NAMES):
        raise ValueError(f"{path.name} orders its outputs {', '.join(loaded.class_names)}; a run starts only from a "
                         f"model whose outputs are in FER2013's order ({', '.join(CLASS_NAMES)})")
    weights = loaded.model.get_weights()
    grown = None
    if config.model == "fer_vgg" and loaded.model.name == "fer_vgg":  # another architecture: refused below
        from core.grow import grow_fer_vgg, stage_convs
        from core.models import build, check_convs

        if stage_convs(loaded.model) != check_convs(config.model_params.get("convs", 2)):
            target = build(config.model, **config.model_params)
            grown = grow_fer_vgg(loaded.model, target)
            weights = target.get_weights()
            echo(f"growing {path.name}: conv blocks per stage {grown['convs_from']} -> {grown['convs_to']}, "
                 "the new blocks start as the identity")
    trained = teacher_training(path)
    clean, why = validation_verdict(trained, config, data_hash)
    record = {"path": str(config.init_from), "sha256": file_sha256(path),
              "seed": ((trained or {}).get("config") or {}).get("seed"),
              "validation_clean": clean, "why": why, **({"grown": grown} if grown else {})}
    if not clean:
        echo(f"note: the starting weights ({path.name}): {why}; this run's validation accuracy will be optimistic, "
             "so judge it on PublicTest (python -m core evaluate)")
    return weights, record


def apply_initial_weights(model: Any, weights: list[np.ndarray], config: TrainConfig) -> None:
    """Copy ``weights`` into a freshly built ``model``; a different architecture is refused, not half-loaded.

    Raises:
        ValueError: Naming the first weight whose shape differs (another model or other hyperparameters).
    """
    name = Path(config.init_from).name
    expected = [tuple(np.shape(w)) for w in model.get_weights()]
    given = [tuple(np.shape(w)) for w in weights]
    params = ", ".join(f"{key}={value}" for key, value in sorted(config.model_params.items()))
    this_run = f"{config.model}" + (f" ({params})" if params else "")
    if len(expected) != len(given):
        raise ValueError(f"{name} has {len(given)} weight arrays, this run's {this_run} has {len(expected)}: "
                         "start from a model of the same architecture and hyperparameters")
    for index, (want, got) in enumerate(zip(expected, given)):
        if want != got:
            raise ValueError(f"{name} does not fit this run's {this_run}: weight {index} is {got}, the run's is "
                             f"{want}; start from a model of the same architecture and hyperparameters")
    model.set_weights(weights)


def _allowed_roots(source: str, recorded: list[str] | None) -> list[Path] | None:
    """The data roots a run started from the dashboard must stay inside (None: a command-line run, no limit).

    The page records the server's roots in ``config.json`` when it starts a
    run; the worker (and every Resume) loads with them, so a link inside a
    dataset folder that leads out of the roots is reported, never trained on.
    A file the server saved from an upload lies in its private uploads folder,
    outside the roots by design, and is loaded as it is.
    """
    if recorded is None:
        return None
    from core.data_roots import private_folders

    resolved = Path(source).expanduser().resolve()
    if any(resolved.is_relative_to(folder) for folder in private_folders()):
        return None
    return [Path(root) for root in recorded]


def command_line(config: TrainConfig) -> str:
    """The ``python -m core train`` command that reproduces ``config`` (for run records and model cards)."""
    import json
    import shlex

    # A setting is written when it differs from the model's recipe (what the CLI fills in) or from
    # TrainConfig's own default (what the CLI filled in before it read recipes), so that older
    # and newer readers of the command both rebuild ``config``.
    from core.train_config import recipe_defaults

    defaults = TrainConfig(data=config.data)
    recipe = recipe_defaults(config.model)
    parts = ["python", "-m", "core", "train", "--data", config.data, "--model", config.model]
    for key, value in sorted(config.model_params.items()):
        parts += ["--param", f"{key}={json.dumps(value)}"]
    flags = {
        "epochs": "--epochs", "batch_size": "--batch-size", "optimizer": "--optimizer", "learning_rate": "--lr",
        "momentum": "--momentum", "weight_decay": "--weight-decay", "lr_schedule": "--lr-schedule",
        "plateau_factor": "--plateau-factor", "plateau_patience": "--plateau-patience", "plateau_metric": "--plateau-metric",
        "early_stopping_patience": "--early-stopping", "label_smoothing": "--label-smoothing",
        "validation": "--val", "val_fraction": "--val-fraction", "max_train_images": "--max-train-images",
        "seed": "--seed", "precision": "--precision", "strategy": "--strategy", "time_budget_min": "--time-budget",
        "distill_weight": "--distill-weight", "distill_temperature": "--distill-temperature", "teacher_tta": "--teacher-tta",
        "average_from": "--average-from",
    }
    for teacher in config.teachers:
        parts += ["--teacher", teacher]
    if config.init_from:
        parts += ["--init-from", config.init_from]
    for field_name, flag in flags.items():
        if field_name in ("distill_weight", "distill_temperature", "teacher_tta") and not config.teachers:
            continue
        value = getattr(config, field_name)
        if value != getattr(defaults, field_name) or value != recipe.get(field_name, value) or field_name in ("epochs", "seed"):
            parts += [flag, str(value)]
    for field_name, flag in (("class_weights", "--class-weights"), ("tensorboard", "--tensorboard")):
        if getattr(config, field_name):
            parts.append(flag)
    if not config.nesterov:
        parts.append("--no-nesterov")
    parts += ["--augment", config.augment.engine]
    settings = {k: v for k, v in config.augment.to_dict().items() if k != "engine"}
    default_settings = {k: v for k, v in type(config.augment)().to_dict().items() if k != "engine"}
    if settings != default_settings:
        parts += ["--augment-json", json.dumps(settings)]
    return " ".join(shlex.quote(part) for part in parts)


def _build_compiled(config: TrainConfig):
    import keras

    from core.models import build

    model = build(config.model, **config.model_params)
    model.compile(
        optimizer=make_optimizer(config),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=["accuracy"],
    )
    return model


def cosine_learning_rate(config: TrainConfig, epoch: int) -> float:
    """Cosine decay from ``learning_rate`` towards 0 over ``epochs`` (epoch is 0-based)."""
    from core.callbacks import cosine_decay

    return cosine_decay(config.learning_rate, epoch / config.epochs)


def describe_hardware() -> str:
    """One line: CPU count and the accelerators the backend sees."""
    import keras

    cpus = f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()})"
    try:
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
        elif keras.backend.backend() == "jax":
            import jax

            gpus = [str(d.device_kind) for d in jax.devices() if d.platform == "gpu"]
        else:
            gpus = []
    except Exception:  # device probing must never stop a run
        gpus = []
    return cpus + (f", {len(gpus)} GPU: {', '.join(gpus)}" if gpus else ", no GPU")
