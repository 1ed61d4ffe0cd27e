"""The training job's one frozen config: form or CLI -> worker -> ``config.json``."""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

from core.augment import AugmentConfig

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
LR_SCHEDULES = ("constant", "plateau", "cosine")
PLATEAU_METRICS = ("val_loss", "val_accuracy")
VALIDATIONS = ("split", "publictest")
STRATEGIES = ("auto", "none", "mirrored", "multiworker")
PRECISIONS = ("auto", "float32", "mixed", "bfloat16")
# The settings a model's registered recipe may choose (core.models.register); the rest are the run's own.
RECIPE_FIELDS = ("epochs", "batch_size", "optimizer", "learning_rate", "momentum", "weight_decay", "lr_schedule",
                 "plateau_factor", "plateau_patience", "plateau_metric", "early_stopping_patience", "label_smoothing")


@dataclass(frozen=True)
class TrainConfig:
    """Every setting of a training run.

    Attributes:
        data: Dataset source (anything ``core.data.load_fer2013`` accepts).
        model: Registered model name (``core.models``).
        model_params: Builder hyperparameters (``width``, ``dropout_rate`` ...).
        epochs: Epochs to train (the run may stop earlier).
        batch_size: Global batch size.
        optimizer: ``adam``, ``adamw``, ``sgd`` (momentum, optional Nesterov) or ``rmsprop``.
        learning_rate: Initial learning rate.
        momentum: SGD/RMSprop momentum.
        nesterov: Nesterov momentum for SGD.
        weight_decay: Decoupled weight decay (adamw, sgd).
        lr_schedule: ``constant``, ``plateau`` (ReduceLROnPlateau on ``plateau_metric``) or
            ``cosine`` (cosine decay to 0 over ``epochs``).
        plateau_factor: ReduceLROnPlateau factor.
        plateau_patience: ReduceLROnPlateau patience, epochs.
        plateau_metric: What a plateau is measured on: ``val_loss`` (lower is
            better) or ``val_accuracy`` (higher is better; the published
            FER2013 VGG recipe's choice).
        early_stopping_patience: EarlyStopping patience on val_accuracy; 0 = off.
        label_smoothing: Cross-entropy label smoothing.
        class_weights: Weight classes by inverse frequency (disgust is rare).
        validation: ``split`` (stratified slice of Training) or ``publictest``.
            PrivateTest is never used while training.
        val_fraction: Size of the Training slice when ``validation == "split"``.
        max_train_images: Train on a stratified subset of this size (quick runs).
        augment: Augmentation settings.
        seed: Seed for the split, shuffling, augmentation and weights.
        precision: ``auto`` (mixed float16 on a GPU, mixed bfloat16 on a CPU with
            native bfloat16, float32 elsewhere), ``float32``, ``mixed`` (float16)
            or ``bfloat16``.
        strategy: ``auto``, ``none``, ``mirrored`` (all GPUs of this machine) or
            ``multiworker`` (``TF_CONFIG``).
        tensorboard: Also write TensorBoard logs to ``<run>/tensorboard``.
        time_budget_min: Wall-clock minutes the run may train (None = no limit).
            The run stops before an epoch that would end past the budget, and a
            ``cosine`` schedule decays over the budget's time instead of over
            ``epochs`` (which stays an upper bound), so it ends annealed on any
            machine: "the best model in 40 minutes" on a CPU, or as many epochs
            as a GPU lease allows.
        teachers: Model files to distil from (``core.distill``): the run trains
            on the labels blended with these models' averaged probabilities.
            Empty: no distillation.
        distill_weight: Share of the teachers' probabilities in each target, in (0, 1].
        distill_temperature: Flattens the teachers' probabilities (``p ** (1/T)``,
            renormalised) before blending; 1 keeps them.
        teacher_tta: Test-time views the teachers predict with (``core.tta``:
            ``none``, ``flip`` or ``crop10``).
        init_from: A model file whose weights the run starts from instead of a
            random initialisation (fine-tuning, or a second learning-rate cycle
            for a trained model). It must be the same architecture with the
            same hyperparameters; the optimizer starts fresh. None: random.
        average_from: Weight averaging (``core.averaging``): the weights of
            every epoch that starts at or after this fraction of the run (of
            ``epochs``, or of the time budget) are averaged into
            ``averaged.keras``, with batch-norm statistics recomputed and its
            own validation accuracy. In [0, 1); None: off.
    """

    data: str
    model: str = "fer_vgg"
    model_params: dict = field(default_factory=dict)
    epochs: int = 30
    batch_size: int = 64
    optimizer: str = "adam"
    learning_rate: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"
    plateau_factor: float = 0.5
    plateau_patience: int = 3
    plateau_metric: str = "val_loss"
    early_stopping_patience: int = 0
    label_smoothing: float = 0.0
    class_weights: bool = False
    validation: str = "split"
    val_fraction: float = 0.1
    max_train_images: int | None = None
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    seed: int = 0
    precision: str = "auto"
    strategy: str = "auto"
    tensorboard: bool = False
    time_budget_min: float | None = None
    teachers: tuple[str, ...] = ()
    distill_weight: float = 0.5
    distill_temperature: float = 1.0
    teacher_tta: str = "flip"
    init_from: str | None = None
    average_from: float | None = None

    def validate(self) -> "TrainConfig":
        """Check every field; return self.

        Raises:
            ValueError: Naming the first bad field and what it accepts.
        """
        from core.models import check_convs, check_crop, get_spec

        accepted = get_spec(self.model).hyperparameters()
        unknown = sorted(set(self.model_params) - set(accepted))
        if unknown:
            raise ValueError(f"model {self.model!r} has no hyperparameter {', '.join(map(repr, unknown))}; "
                             f"it takes {', '.join(sorted(accepted)) or 'none'}")
        for key, value in self.model_params.items():
            check_hyperparameter(self.model, key, value, accepted[key])
        if "crop" in self.model_params:
            check_crop(self.model_params["crop"])
        if "convs" in self.model_params:
            check_convs(self.model_params["convs"])
        choices = {
            "optimizer": OPTIMIZERS,
            "lr_schedule": LR_SCHEDULES,
            "validation": VALIDATIONS,
            "strategy": STRATEGIES,
            "precision": PRECISIONS,
            "plateau_metric": PLATEAU_METRICS,
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        if not str(self.data).strip():
            raise ValueError("data is empty: give the path of fer2013.csv or of the image folders")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size must be >= 1, got {self.epochs} and {self.batch_size}")
        if not 0 < self.learning_rate < 10:
            raise ValueError(f"learning_rate must be in (0, 10), got {self.learning_rate}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.validation == "split" and not 0 < self.val_fraction < 0.5:
            raise ValueError(f"val_fraction must be in (0, 0.5), got {self.val_fraction}")
        if self.max_train_images is not None and self.max_train_images < 14:
            raise ValueError(f"max_train_images must be at least 14 (2 per class), got {self.max_train_images}")
        if self.time_budget_min is not None and not 0 < self.time_budget_min <= 100_000:
            raise ValueError(f"time_budget_min must be in (0, 100000] minutes, got {self.time_budget_min}")
        if self.time_budget_min is not None and self.strategy == "multiworker":
            # Each worker reads its own clock: one could stop while another waits for it in an all-reduce.
            raise ValueError("time_budget_min cannot be combined with strategy multiworker: the workers would "
                             "decide on their own clocks when to stop; give --epochs instead")
        if self.teachers:
            from pathlib import Path

            from core.tta import TTA_MODES

            for teacher in self.teachers:
                if not Path(teacher).expanduser().is_file():
                    raise ValueError(f"teacher {teacher!r} is not a model file")
            if not 0 < self.distill_weight <= 1:
                raise ValueError(f"distill_weight must be in (0, 1], got {self.distill_weight}")
            if not 0.1 <= self.distill_temperature <= 20:
                raise ValueError(f"distill_temperature must be in [0.1, 20], got {self.distill_temperature}")
            if self.teacher_tta not in TTA_MODES:
                raise ValueError(f"teacher_tta must be one of {', '.join(TTA_MODES)}, got {self.teacher_tta!r}")
        if self.init_from is not None:
            from pathlib import Path

            if not str(self.init_from).strip() or not Path(self.init_from).expanduser().is_file():
                raise ValueError(f"init_from {self.init_from!r} is not a model file")
            mismatch = init_from_mismatch(self.init_from, self.model, self.model_params)
            if mismatch:
                raise ValueError(mismatch)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**32:
            raise ValueError(f"seed must be a whole number from 0 to 2**32 - 1, got {self.seed!r}")
        if not 0 < self.plateau_factor < 1:
            raise ValueError(f"plateau_factor must be in (0, 1) (the learning rate is multiplied by it), "
                             f"got {self.plateau_factor}")
        if self.plateau_patience < 0 or self.early_stopping_patience < 0:
            raise ValueError(f"plateau_patience and early_stopping_patience are epochs, >= 0 (0 turns early stopping "
                             f"off), got {self.plateau_patience} and {self.early_stopping_patience}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")
        if not 0 <= self.weight_decay < 1:
            raise ValueError(f"weight_decay must be in [0, 1), got {self.weight_decay}")
        if self.average_from is not None and not 0 <= self.average_from < 1:
            raise ValueError(f"average_from must be in [0, 1) (the fraction of the run after which epochs are "
                             f"averaged), got {self.average_from}")
        self.augment.validate()
        return self

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (augment nested)."""
        data = dataclasses.asdict(self)
        data["augment"] = self.augment.to_dict()
        data["teachers"] = list(self.teachers)  # as JSON reads it back
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        values = dict(data)
        if isinstance(values.get("augment"), dict):
            values["augment"] = AugmentConfig.from_dict(values["augment"])
        if isinstance(values.get("teachers"), (list, tuple)):
            values["teachers"] = tuple(str(path) for path in values["teachers"])
        return cls(**values)


# What each annotation of TrainConfig reads as in JSON: the kinds of value a run's config.json may hold there.
_JSON_KINDS = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "dict": (dict,),
               "AugmentConfig": (dict,), "tuple[str, ...]": (list,), "None": (type(None),)}
_KIND_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true or false", dict: "an object",
               list: "a list", type(None): "null"}
_ANNOTATION_NAMES = {"str": "text", "int": "a whole number", "float": "a number", "bool": "true or false",
                     "dict": "an object", "AugmentConfig": "an object", "tuple[str, ...]": "a list", "None": "null"}


def setting_type_problems(data: Any) -> list[str]:
    """Settings in a run's ``config.json`` ``config`` object whose JSON kind is not what a run writes there.

    A file changed by hand can hold ``"teacher_tta": {"x": 1}``; the pages read settings leniently, and such a
    value used to reach them as it was (probe s22: a TypeError on Compare), and a resume trained with
    ``"tensorboard": "no"`` as true (review s22). The augmentation's settings are checked too
    (``augment.horizontal_flip``). Unknown names are left to :meth:`TrainConfig.from_dict`. One sentence per
    setting, ``[]`` when every known one has the right kind.
    """
    problems = _kind_problems(data, TrainConfig)
    if isinstance(data, dict) and isinstance(data.get("augment"), dict):
        problems += _kind_problems(data["augment"], AugmentConfig, prefix="augment.")
    return problems


def _kind_problems(data: Any, kind: type, prefix: str = "") -> list[str]:
    if not isinstance(data, dict):
        return []
    problems = []
    for item in dataclasses.fields(kind):
        if item.name not in data:
            continue
        value = data[item.name]
        parts = [part.strip() for part in str(item.type).split("|")]
        kinds = tuple(kind for part in parts for kind in _JSON_KINDS.get(part, ()))
        if not kinds:
            continue
        if isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds):
            if item.name == "teachers" and not all(isinstance(entry, str) for entry in value):
                problems.append("teachers holds something other than model file names")
            continue
        wanted = " or ".join(_ANNOTATION_NAMES[part] for part in parts)
        problems.append(f"{prefix}{item.name} is {_KIND_NAMES.get(type(value), type(value).__name__)} "
                        f"where a run writes {wanted}")
    return problems


def check_hyperparameter(model: str, key: str, value: Any, default: Any) -> None:
    """Refuse a model hyperparameter of the wrong kind or range before any run folder exists.

    Numbers must be numbers (an integer where the default is one); rates
    (``dropout_rate``, ``l2``) lie in [0, 1); sizes and counts are positive
    (``crop`` and ``convs`` have their own checks).

    Raises:
        ValueError: Naming the model, the hyperparameter and what it takes.
    """
    if key in ("crop", "convs"):
        return
    if isinstance(default, (int, float)) and not isinstance(default, bool):
        whole = isinstance(default, int)
        if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
            kind = "a whole number" if whole else "a number"
            raise ValueError(f"model {model!r} hyperparameter {key} takes {kind} like {default!r}, got {value!r} "
                             "(--param values are JSON: width=48, dropout_rate=0.3)")
        if key == "dropout_rate" or key == "l2":
            if not 0 <= value < 1:
                raise ValueError(f"model {model!r} hyperparameter {key} must be in [0, 1), got {value!r}")
        elif value < 1:
            raise ValueError(f"model {model!r} hyperparameter {key} must be at least 1, got {value!r}")


def init_from_mismatch(path: str, model: str, model_params: dict) -> str | None:
    """Why the weights in ``path`` cannot start a run of ``model`` with ``model_params``; None when they can.

    Read from the model's card (:func:`core.distill.teacher_training`), so the
    form and the command line say it before a run starts; a file without a card
    is checked weight by weight when the run starts
    (:func:`core.train.apply_initial_weights`).

    Raises:
        ValueError: The file is not a FER Studio model.
    """
    from pathlib import Path

    from core.distill import teacher_training
    from core.models import get_spec

    trained = (teacher_training(path) or {}).get("config") or {}
    name = Path(path).name
    if not isinstance(trained.get("model"), str):
        return None
    if trained["model"] != model:
        return f"{name} is a {trained['model']} and this run trains a {model}: start from a model of the same architecture"
    accepted = get_spec(model).hyperparameters()
    theirs = {**accepted, **(trained.get("model_params") or {})}
    ours = {**accepted, **model_params}
    differ = sorted(key for key in set(theirs) | set(ours) if theirs.get(key) != ours.get(key))
    if differ and model == "fer_vgg" and "convs" in differ:
        from core.models import check_convs

        try:
            before, after = check_convs(theirs.get("convs", 2)), check_convs(ours.get("convs", 2))
        except ValueError:
            before = after = ()
        if before and all(b <= a for b, a in zip(before, after)) \
                and _weight_shapes(model, _frozen({**theirs, "convs": ours.get("convs", 2)})) == _weight_shapes(model, _frozen(ours)):
            return None  # a deeper fer_vgg grows from a shallower one (core.grow)
    if differ and _weight_shapes(model, _frozen(theirs)) != _weight_shapes(model, _frozen(ours)):
        # A different dropout rate keeps every weight's shape and is fine; a different width is not.
        said = ", ".join(f"{key}={theirs.get(key)!r} there, {ours.get(key)!r} here" for key in differ)
        return f"{name} is a {model} with other hyperparameters ({said}): start from a model built like this run's"
    return None


def _frozen(params: dict) -> str:
    import json

    return json.dumps(params, sort_keys=True)


@functools.lru_cache(maxsize=32)
def _weight_shapes(model: str, params: str) -> tuple[tuple[int, ...], ...]:
    """The weight shapes of ``model`` built with ``params`` (JSON): built once per pair, the form asks on every rerun."""
    import json

    from core.models import build

    return tuple(tuple(weight.shape) for weight in build(model, **json.loads(params)).weights)


def recipe_defaults(model: str) -> dict[str, Any]:
    """The :data:`RECIPE_FIELDS` a run of ``model`` gets when nobody chooses them.

    :class:`TrainConfig`'s defaults, overridden by the training settings of the
    model's origin registered with it (``fer_vgg``: the bundled model's recipe).
    The Training form and ``python -m core train`` both start from these.

    Raises:
        ValueError: For an unknown model (the message lists the known ones).
    """
    from core.models import get_spec

    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig) if f.name in RECIPE_FIELDS}
    recipe = get_spec(model).recipe
    return {name: recipe.get(name, default) for name, default in defaults.items()}
