"""How long training will take: images per second per model, measured on this machine when possible.

The figure comes from the finished epochs of earlier runs of the same model
in the runs folder (``config.json`` says how many training and validation
images an epoch had, ``metrics.csv`` how long each epoch took and, since
2026-12-06, how much of it was validation), from runs with the same crop,
depth and precision when there are any. Training and validation are rated
apart, because a small run spends most of its epoch validating: 300
training images beside a 2,872-image validation slice made mini-Xception
look 40 times slower than it trains (walk s12). Older runs, which did not
time validation apart, give one rate for the whole epoch. A model never
trained here falls back to ``bench/bench_train.py``'s figures from this
project's 2-core CPU (see docs/benchmarks.md), which are only a rough guide
on other hardware, with validation rated from the benchmark's ratio of the
two speeds.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass
from pathlib import Path

from core import runs
from core.models import check_convs
from core.wording import counted

DEFAULT_CONVS = check_convs(2)

# bench/bench_train.py --images 512 --repeats 3, batch 64, on this project's quiet 2-core CPU (docs/benchmarks.md).
BENCH_IMAGES_PER_SECOND: dict[str, float] = {
    "fer_vgg": 214.0, "article_cnn": 54.0, "notebook_cnn": 50.0, "face_cnn": 100.0, "vgg_small": 99.0,
    "resnet18": 247.0, "mini_xception": 887.0,
}
# How many times faster an image validates than it trains (no backward pass, no augmentation, batches of 256):
# bench/bench_train.py's "val vs train" column, one run on a 2-core CPU (2026-12-07, load average 1.8). A ratio,
# so it carries to the training figures above, measured on a faster machine. A real fer_vgg run beside it
# (3,000 training images with IDG augmentation, 2,872 validated) gave 7.3.
BENCH_VALIDATION_SPEEDUP: dict[str, float] = {
    "fer_vgg": 6.6, "article_cnn": 4.8, "notebook_cnn": 5.4, "face_cnn": 10.7, "vgg_small": 9.1,
    "resnet18": 19.9, "mini_xception": 3.2,
}
# For a model not in the benchmark.
DEFAULT_VALIDATION_SPEEDUP = 6.0
BENCH_VAL_IMAGES_PER_SECOND: dict[str, float] = {
    name: rate * BENCH_VALIDATION_SPEEDUP[name] for name, rate in BENCH_IMAGES_PER_SECOND.items()}


def validation_speedup(model: str) -> float:
    """How many times faster ``model`` validates an image than it trains one (:data:`BENCH_VALIDATION_SPEEDUP`)."""
    return BENCH_VALIDATION_SPEEDUP.get(model, DEFAULT_VALIDATION_SPEEDUP)


@dataclass(frozen=True)
class Throughput:
    """Training images per second of one model, and where the figure comes from.

    Attributes:
        images_per_second: Training images per second (with validation folded in when
            ``val_images_per_second`` is None and ``measured_here``: older runs).
        source: A short phrase for the user, e.g. ``"12 epochs of 2 runs on this machine"``.
        measured_here: ``True`` when it comes from this machine's runs.
        val_images_per_second: Validation images per second, when runs timed validation apart.
    """

    images_per_second: float
    source: str
    measured_here: bool
    val_images_per_second: float | None = None


@dataclass(frozen=True)
class RunSettings:
    """The settings that change how fast an epoch of one model trains.

    Attributes:
        crop: Side of the centre crop the model trains on (``model_params["crop"]``), 0 for the whole face.
        precision: The Keras dtype policy the run trained in (``float32``, ``mixed_bfloat16``, ...).
        convs: ``fer_vgg``'s conv blocks per stage (:func:`core.models.check_convs`); two each by default.
    """

    crop: int = 0
    precision: str = "float32"
    convs: tuple[int, ...] = DEFAULT_CONVS

    def describe(self) -> str:
        """``"centre crop 40, mixed_bfloat16"``, ``"whole face, float32"``, ``"whole face, conv blocks 3-3-3-2, ..."``."""
        depth = "" if self.convs == DEFAULT_CONVS else f"conv blocks {'-'.join(map(str, self.convs))}, "
        return f"{f'centre crop {self.crop}' if self.crop else 'whole face'}, {depth}{self.precision}"


def _settings_of(params: dict, precision: str) -> RunSettings:
    try:
        crop = int(params.get("crop") or 0)
    except (TypeError, ValueError):
        crop = 0
    try:
        convs = check_convs(params.get("convs", 2))
    except ValueError:
        convs = DEFAULT_CONVS
    return RunSettings(crop, precision, convs)


def run_settings(config: dict) -> RunSettings:
    """A run's :class:`RunSettings` from its ``config.json`` (runs from before precision was recorded: float32)."""
    params = (config.get("config") or {}).get("model_params") or {}
    return _settings_of(params, str((config.get("resolved") or {}).get("precision") or "float32"))


def requested_settings(model_params: dict | None, precision: str, runs_dir: Path | None = None) -> RunSettings:
    """The :class:`RunSettings` a new run with these choices will have on this machine.

    ``auto`` resolves as the newest earlier run that asked for ``auto`` resolved
    it (same machine, same answer), else from this CPU's flags without
    importing TensorFlow (a GPU machine's first ``auto`` run is estimated as a CPU run).
    """
    from core.distribute import cpu_has_native_bf16, resolve_precision

    params = model_params or {}
    if precision == "auto":
        for summary in runs.list_runs(runs_dir):
            config = runs.read_config(summary.path)
            if (config.get("config") or {}).get("precision") == "auto" and (config.get("resolved") or {}).get("precision"):
                return _settings_of(params, str(config["resolved"]["precision"]))
        return _settings_of(params, resolve_precision("auto", 0, cpu_has_native_bf16()))
    return _settings_of(params, resolve_precision(precision, 0, False))


def measured_throughput(model: str, runs_dir: Path | None = None,
                        settings: RunSettings | None = None, first_epochs: bool = False) -> Throughput | None:
    """Median training throughput of ``model`` over the finished epochs of this machine's runs.

    With ``settings``, only runs that trained with the same crop and precision
    count when there are any (a 40-pixel crop or bfloat16 trains 1.2-1.3x
    faster here); otherwise every run of the model does, and the source says
    the settings differed. The first epoch of each run is left out: it also
    builds the model (:func:`measured_overhead` counts that apart), and a
    short run's first epoch is mostly that (walk s18: one 1,500-image epoch
    read as 19 images/s and a full run as 15 hours). ``first_epochs``: count
    them too, for a model with no other figure. Returns ``None`` when no run
    of that model has an epoch that counts.
    """
    # (same settings?, validation timed apart?) -> training rates, validation rates, runs
    found: dict[tuple[bool, bool], tuple[list[float], list[float], list[str]]] = {}
    for summary in runs.list_runs(runs_dir):
        if summary.model != model or not summary.epochs_done:
            continue
        config = runs.read_config(summary.path)
        resolved = config.get("resolved") or {}
        images, val_images = resolved.get("train_images"), resolved.get("val_images")
        rows = [row for row in runs.read_metrics(summary.path) if (row.get("epoch_time") or 0) > 0]
        rows = rows if first_epochs else rows[1:]
        if not images or not rows:
            continue
        apart = bool(val_images) and all(0 < row.get("val_time", 0) < row["epoch_time"] for row in rows)
        same = settings is None or run_settings(config) == settings
        train_rates, val_rates, names = found.setdefault((same, apart), ([], [], []))
        for row in rows:
            train_seconds = row["epoch_time"] - (row["val_time"] if apart else 0.0)
            train_rates.append(int(images) / train_seconds)
            if apart:
                val_rates.append(int(val_images) / row["val_time"])
        names.append(summary.run_id)
    for same in (True, False):
        for apart in (True, False):
            if (same, apart) not in found:
                continue
            train_rates, val_rates, names = found[same, apart]
            where = f"{counted(len(train_rates), 'epoch')} of {counted(len(names), 'run')} on this machine"
            if settings is not None:
                where += (f" with the same settings ({settings.describe()})" if same
                          else f" with other settings than these ({settings.describe()})")
            if not apart:
                where += "; validation included (older runs did not time it apart)"
            if first_epochs:
                where += "; first epochs, which also build the model, so slower than the run will be"
            return Throughput(statistics.median(train_rates), where, True,
                              statistics.median(val_rates) if val_rates else None)
    return None


@dataclass(frozen=True)
class Overhead:
    """The fixed seconds of a run on top of its epochs, measured on this machine's earlier runs.

    Attributes:
        startup_seconds: Median time from a run's creation to its first batch
            (starting the worker, loading the data, building the model), over
            every run that recorded it (``resolved.startup_seconds``).
        first_epoch_seconds: Median extra time of a run's first epoch over its
            later ones (graph building), over runs of the model with two or
            more epochs; 0 when there are none.
        runs: How many runs the startup figure comes from.
    """

    startup_seconds: float
    first_epoch_seconds: float
    runs: int

    @property
    def seconds(self) -> float:
        return self.startup_seconds + self.first_epoch_seconds


def measured_overhead(model: str, runs_dir: Path | None = None) -> Overhead | None:
    """The fixed part of a run of ``model`` on this machine, or ``None`` when no run recorded its startup.

    A tiny run is mostly this part: 5 seconds of epochs took 30 (browser walk
    s8), because starting, loading FER2013 and building the model take the
    same time whatever the run's size.
    """
    startups: list[float] = []
    extras: list[float] = []
    for summary in runs.list_runs(runs_dir):
        config = runs.read_config(summary.path)
        startup = (config.get("resolved") or {}).get("startup_seconds")
        if isinstance(startup, (int, float)) and not isinstance(startup, bool) and 0 <= startup < 24 * 3600:
            startups.append(float(startup))
        if summary.model != model:
            continue
        times = [float(row["epoch_time"]) for row in runs.read_metrics(summary.path) if row.get("epoch_time")]
        if len(times) >= 2:
            extras.append(max(0.0, times[0] - statistics.median(times[1:])))
    if not startups:
        return None
    return Overhead(statistics.median(startups), statistics.median(extras) if extras else 0.0, len(startups))


def model_throughput(model: str, runs_dir: Path | None = None,
                     settings: RunSettings | None = None) -> Throughput | None:
    """This machine's measured throughput of ``model``, else the benchmark figure, else ``None``.

    ``settings`` picks the runs to measure, as in :func:`measured_throughput`.
    """
    measured = measured_throughput(model, runs_dir, settings)
    if measured is not None:
        return measured
    if model in BENCH_IMAGES_PER_SECOND:
        return Throughput(BENCH_IMAGES_PER_SECOND[model], "bench/bench_train.py on a 2-core CPU", False,
                          BENCH_VAL_IMAGES_PER_SECOND.get(model))
    return measured_throughput(model, runs_dir, settings, first_epochs=True)


FER2013_PUBLIC_TEST_IMAGES = 3589
# FER2013's Training images per class (angry ... neutral): the epoch sizes of a form drawn without a dataset's own.
FER2013_TRAINING_CLASS_COUNTS = (3995, 436, 4097, 7215, 4830, 3171, 4965)


def estimate_seconds(throughput: Throughput, images_per_epoch: int, epochs: int, val_images: int = 0) -> float:
    """Seconds for ``epochs`` epochs of ``images_per_epoch`` training images and ``val_images`` validation ones.

    Validation counts only when the throughput rates it apart (otherwise it
    is folded into the training rate, or unknown).

    Raises:
        ValueError: If the throughput is not positive.
    """
    if throughput.images_per_second <= 0:
        raise ValueError("throughput must be positive")
    per_epoch = images_per_epoch / throughput.images_per_second
    if throughput.val_images_per_second:
        per_epoch += val_images / throughput.val_images_per_second
    return epochs * per_epoch


# A 1-minute load average at or above this share of the cores: other work is using the processors a run needs
# (one busy process on this project's 2-core CPU is 0.5; a training run keeps both busy).
BUSY_LOAD_PER_CORE = 0.75


def usable_cores() -> int:
    """The processors this process may run on (its affinity), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def busy_machine_note(load: float | None = None, cores: int | None = None, measured_here: bool = False) -> str | None:
    """A sentence when the machine is busy now, so an estimate and a new run will both be slower; else ``None``.

    Walk s19: on a machine loaded by other work, the estimate read 5 hours for a default run (58 images/s) and
    said nothing of why. ``load`` (the 1-minute load average) and ``cores`` default to this machine's;
    ``measured_here``: the estimate comes from this machine's runs, which may have been measured while it was busy.
    """
    if load is None:
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):
            return None
    cores = cores or usable_cores()
    if load < BUSY_LOAD_PER_CORE * cores:
        return None
    note = (f"This machine is busy now (load average {load:.1f} on {counted(cores, 'processor core')}): a run started "
            "now shares the processors with that work and takes longer than on a quiet machine.")
    return note + (" Runs measured while it was busy make the estimate longer too." if measured_here else "")
