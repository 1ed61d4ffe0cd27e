"""``python -m core train``: the same training code the Training page runs."""

from __future__ import annotations

import argparse
import contextlib
import json
from pathlib import Path

from core.train_config import (LR_SCHEDULES, OPTIMIZERS, PLATEAU_METRICS, PRECISIONS, STRATEGIES, TrainConfig,
                               recipe_defaults)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` subcommand."""
    parser = subparsers.add_parser("train", help="train a model; prints progress and the run folder",
                                   description="Train a registered model on FER2013. Writes runs/<id>/.")
    parser.add_argument("--data", help="fer2013.csv, the image folders, or a zip of them (default: $FER2013_DIR)")
    parser.add_argument("--model", default="fer_vgg", help="registered model name (see --list-models)")
    parser.add_argument("--list-models", action="store_true", help="list the registered models and exit")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="model hyperparameter, e.g. --param width=32 (repeatable; JSON values)")
    # The settings a model's recipe chooses default to None here and are filled from it (config_from_args).
    recipe = "(default: the model's recipe, see --list-models)"
    parser.add_argument("--epochs", type=int, help=recipe)
    parser.add_argument("--batch-size", type=int, help=recipe)
    parser.add_argument("--optimizer", choices=OPTIMIZERS, help=recipe)
    parser.add_argument("--lr", "--learning-rate", dest="learning_rate", type=float, help=recipe)
    parser.add_argument("--momentum", type=float, help=recipe)
    parser.add_argument("--no-nesterov", dest="nesterov", action="store_false")
    parser.add_argument("--weight-decay", type=float, help=recipe)
    parser.add_argument("--lr-schedule", choices=LR_SCHEDULES, help=recipe)
    parser.add_argument("--plateau-factor", type=float, help=recipe)
    parser.add_argument("--plateau-patience", type=int, help=recipe)
    parser.add_argument("--plateau-metric", choices=PLATEAU_METRICS,
                        help="what --lr-schedule plateau watches (val_accuracy: the published VGG recipe's choice) "
                             + recipe)
    parser.add_argument("--early-stopping", dest="early_stopping_patience", type=int, metavar="PATIENCE",
                        help="stop after PATIENCE epochs without a better val_accuracy (0 = off) " + recipe)
    parser.add_argument("--label-smoothing", type=float, help=recipe)
    parser.add_argument("--class-weights", action="store_true", help="weight classes by inverse frequency")
    parser.add_argument("--val", dest="validation", choices=("split", "publictest"), default="split",
                        help="validation data: a stratified slice of Training (split) or PublicTest")
    parser.add_argument("--val-fraction", type=float, default=0.1)
    parser.add_argument("--max-train-images", type=int, default=None, help="train on a stratified subset (quick runs)")
    parser.add_argument("--augment", choices=("idg", "layers", "none"), default="idg",
                        help="augmentation engine: ImageDataGenerator (idg), Keras layers, or none")
    parser.add_argument("--augment-json", default=None, help="augmentation settings as JSON (see core.augment.AugmentConfig)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: mixed float16 on a GPU, mixed bfloat16 on a CPU with native bf16 (AVX512_BF16/AMX), else float32")
    parser.add_argument("--strategy", choices=STRATEGIES, default="auto",
                        help="mirrored: all GPUs of this machine; multiworker: the cluster in TF_CONFIG")
    parser.add_argument("--tensorboard", action="store_true")
    parser.add_argument("--time-budget", dest="time_budget_min", type=float, default=None, metavar="MINUTES",
                        help="train for at most MINUTES of wall-clock time; --lr-schedule cosine then decays over the "
                             "budget and --epochs is an upper bound")
    parser.add_argument("--teacher", dest="teachers", action="append", default=[], metavar="MODEL",
                        help="distil from this model file (repeat for an ensemble of teachers): the run trains on the "
                             "labels blended with the teachers' probabilities (see core.distill)")
    parser.add_argument("--distill-weight", type=float, default=0.5,
                        help="share of the teachers' probabilities in each training target, in (0, 1] (default 0.5)")
    parser.add_argument("--distill-temperature", type=float, default=1.0,
                        help="flatten the teachers' probabilities before blending (p ** (1/T)); default 1")
    parser.add_argument("--teacher-tta", choices=("none", "flip", "crop10"), default="flip",
                        help="test-time views the teachers predict the training faces with (default flip)")
    parser.add_argument("--init-from", default=None, metavar="MODEL",
                        help="start from this model file's weights instead of a random initialisation (fine-tuning, "
                             "or a second learning-rate cycle): same architecture and hyperparameters; the optimizer "
                             "starts fresh")
    parser.add_argument("--average-from", type=float, default=None, metavar="FRACTION",
                        help="weight averaging: average the weights of every epoch that starts after this fraction "
                             "of the run (e.g. 0.5: the second half) into averaged.keras, with batch-norm statistics "
                             "recomputed and its own validation accuracy")
    parser.add_argument("--out", type=Path, default=None, help="runs folder (default: ./runs or $FER_STUDIO_RUNS)")
    parser.add_argument("--detach", action="store_true", help="start in the background and print the run folder")
    parser.add_argument("--run-dir", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--resume", type=Path, default=None, metavar="RUN_DIR", help="continue a stopped or failed run")
    parser.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Turn parsed arguments into a validated :class:`TrainConfig`."""
    from core.augment import AugmentConfig
    from core.data import default_data_dir

    data = args.data or default_data_dir()
    if not data:
        raise ValueError("no dataset: pass --data PATH (fer2013.csv or the image folders) or set FER2013_DIR")
    params = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"--param expects KEY=VALUE, got {item!r}")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    augment = AugmentConfig.from_dict(json.loads(args.augment_json)) if args.augment_json else AugmentConfig()
    augment = AugmentConfig.from_dict({**augment.to_dict(), "engine": args.augment})
    recipe = recipe_defaults(args.model)
    fields = {name: getattr(args, name) if getattr(args, name) is not None else default
              for name, default in recipe.items()}
    fields.update({name: getattr(args, name) for name in (
        "model", "nesterov", "class_weights", "validation", "val_fraction", "max_train_images", "seed", "precision",
        "strategy", "tensorboard", "time_budget_min", "distill_weight", "distill_temperature", "teacher_tta", "average_from")})
    fields["teachers"] = tuple(str(path) for path in args.teachers)
    fields["init_from"] = str(args.init_from) if args.init_from is not None else None
    return TrainConfig(data=str(data), model_params=params, augment=augment, **fields).validate()


def options_given(args: argparse.Namespace, keep: tuple[str, ...] = ()) -> list[str]:
    """The ``train`` options in ``args`` that differ from their defaults, as the user spelt them (``--lr``), but ``keep``."""
    from core.__main__ import build_parser

    parser = build_parser()
    train = next(action for action in parser._subparsers._group_actions if "train" in action.choices).choices["train"]
    given = []
    for action in train._actions:
        if action.dest in keep or action.dest in ("help", "run_dir") or not action.option_strings:
            continue
        if getattr(args, action.dest, action.default) != action.default:
            given.append(max(action.option_strings, key=len) if action.dest != "learning_rate" else "--lr")
    return given


def describe_recipe(recipe: dict) -> str:
    """``"adam, lr 0.001, batch 64, 40 epochs, cosine schedule, label smoothing 0.1"``: the flags a recipe sets."""
    parts = [recipe["optimizer"], f"lr {recipe['learning_rate']:g}", f"batch {recipe['batch_size']}",
             f"{recipe['epochs']} epochs", f"{recipe['lr_schedule']} schedule"]
    if recipe["optimizer"] in ("sgd", "rmsprop"):
        parts.insert(2, f"momentum {recipe['momentum']:g}")
    if recipe["lr_schedule"] == "plateau":
        parts[-1] += (f" (factor {recipe['plateau_factor']:g}, patience {recipe['plateau_patience']}, "
                      f"on {recipe['plateau_metric']})")
    if recipe["early_stopping_patience"]:
        parts.append(f"early stopping after {recipe['early_stopping_patience']}")
    if recipe["weight_decay"]:
        parts.append(f"weight decay {recipe['weight_decay']:g}")
    if recipe["label_smoothing"]:
        parts.append(f"label smoothing {recipe['label_smoothing']:g}")
    return ", ".join(parts)


def run(args: argparse.Namespace) -> int:
    """Run the subcommand; exit code 0 when the run finished or was stopped (by Stop, a time budget or early
    stopping), 130 after Ctrl-C, 143 after SIGTERM, 1 when it failed."""
    from core import models

    if args.list_models:
        for spec in models.list_models():
            print(f"{spec.name:15s} {spec.summary}")
            print(f"{'':15s} recipe: {describe_recipe(recipe_defaults(spec.name))}")
        return 0
    from core.jobs import resume_training_job, start_training_job
    from core.train import INTERRUPTED, prepare_run, run_training

    if args.run_dir or args.resume:
        run_dir = args.run_dir or args.resume
        if not (Path(run_dir) / "config.json").is_file():
            raise FileNotFoundError(f"{run_dir} is not a run folder (no config.json)")
        if args.resume and (ignored := options_given(args, keep=("resume", "detach", "data"))):
            raise ValueError(f"--resume continues a run with the settings it started with, so {', '.join(ignored)} "
                             "would be ignored; resume without them (--data may give the same data's new location), "
                             "or start a new run with the settings you want")
        if args.resume and args.data:
            from core.train import relocate_run_data

            relocate_run_data(Path(run_dir), args.data, echo=run_echo(Path(run_dir)))
        if args.resume and args.detach:
            resume_training_job(run_dir)
            print(run_dir)
            return 0
        with sigterm_as_interrupt():
            status = run_training(Path(run_dir), resume=bool(args.resume), echo=run_echo(Path(run_dir)))
    else:
        config = config_from_args(args)
        if args.out is not None and args.out.exists() and not args.out.is_dir():
            raise ValueError(f"--out is the folder that holds run folders; {args.out} is a file: give a folder")
        from core.commands import refuse_output_inside_data
        from core.runs import default_runs_dir

        refuse_output_inside_data(args.out if args.out is not None else default_runs_dir(), config.data,
                                  "--out" if args.out is not None else "the runs folder (FER_STUDIO_RUNS)")
        out = worker_runs_dir(args.out) if config.strategy == "multiworker" else args.out
        if args.detach:
            print(start_training_job(config, out))
            return 0
        run_dir = prepare_run(config, out)
        print(f"run folder: {run_dir}", flush=True)
        with sigterm_as_interrupt():
            status = run_training(run_dir, echo=run_echo(run_dir))
    if status.state != "failed":  # a failure's line was already echoed by run_training (probe s11: printed twice)
        print(f"{status.state}: {status.message}")
    print(run_dir)
    if status.state == "stopped" and status.message.startswith(INTERRUPTED):
        # Like every other command: `train ... && bundle ...` must not go on after a Ctrl-C (probe s19).
        return 143 if status.message.startswith(f"{INTERRUPTED} (SIGTERM)") else 130
    return 0 if status.state in ("finished", "stopped") else 1


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While training in this process, SIGTERM (``kill``, ``docker stop``) stops the run as Ctrl-C does: its
    status says stopped, not "running" under a dead process id (probe s19)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt("SIGTERM")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_echo(run_dir: Path):
    """``echo(line)`` for a run trained in this process: print the line and keep it in the run's ``train.log``.

    A run started in the foreground had no ``train.log`` (walk s12), so its
    folder lacked the log every other run has. A detached worker's output
    already is that file (``core.jobs``), so it only prints.
    """
    import os

    log_path = Path(run_dir) / "train.log"
    try:
        stdout = os.fstat(1)
        logged = log_path.exists() and os.path.samestat(stdout, log_path.stat())
    except OSError:
        logged = False

    def echo(line: str) -> None:
        print(line, flush=True)
        if logged:
            return
        try:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(line + "\n")
        except OSError:
            pass  # the log is a copy of what was printed: a full disk must not stop the run

    return echo


def worker_runs_dir(out: Path | None) -> Path | None:
    """Where this process writes its run in a ``TF_CONFIG`` cluster.

    The chief (worker 0) writes to ``out`` like a single-machine run; every
    other worker writes its copy to ``<out>/.workers/worker<N>/`` (hidden from
    the runs list), so workers sharing one runs folder do not show up as runs
    of their own or write over each other.
    """
    from core.distribute import multiworker_task
    from core.runs import default_runs_dir

    task = multiworker_task()
    if task is None or task[0] == 0:
        return out
    return Path(out or default_runs_dir()) / ".workers" / f"worker{task[0]}"
