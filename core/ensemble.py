"""Ensembles: several saved models used as one, their probabilities averaged.

An :class:`Ensemble` stands wherever a single :class:`~core.model_io.LoadedModel`
does for prediction (``core.model_io.predict_probabilities``, ``predict_image``,
Grad-CAM, video): each member's probabilities are first put into FER2013's
column order by its own class names, so members trained with different class
orders combine correctly, and then averaged with equal weight.

Members must describe the same seven FER2013 classes (any order) and take the
same input size; anything else is refused when the ensemble is built, naming
the member.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union

from core.labels import CLASS_NAMES, class_index
from core.model_io import LoadedModel


@dataclass(frozen=True)
class Ensemble:
    """Models whose FER2013-ordered probabilities are averaged.

    Attributes:
        members: Two or more loaded models (see :func:`make_ensemble`).
        meta: ``{"members": [...]}``: each member's path and class names.
    """

    members: tuple[LoadedModel, ...]
    meta: dict = field(default_factory=dict)

    @property
    def class_names(self) -> tuple[str, ...]:
        """The ensemble's outputs are always in FER2013 order."""
        return CLASS_NAMES

    @property
    def path(self) -> str:
        """Members' paths joined with `` + `` (a label, not a file)."""
        return " + ".join(member.path for member in self.members)

    @property
    def input_shape(self) -> tuple:
        """The members' common input shape, e.g. ``(None, 48, 48, 1)``."""
        return tuple(self.members[0].model.input_shape)


AnyModel = Union[LoadedModel, Ensemble]


def make_ensemble(members: Sequence[LoadedModel]) -> Ensemble:
    """Combine loaded models into an :class:`Ensemble`.

    Raises:
        ValueError: Fewer than two members; a member whose class names are
            not exactly FER2013's seven classes (in any order: a different
            order is reordered, unknown, missing or repeated names are
            refused); members with different input sizes.
    """
    members = tuple(members)
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least two models, got {len(members)}")
    for member in members:
        check_fer_classes(member)
    shapes = {tuple(member.model.input_shape[1:]) for member in members}
    if len(shapes) > 1:
        listing = ", ".join(f"{Path(m.path).name}: {tuple(m.model.input_shape[1:])}" for m in members)
        raise ValueError(f"ensemble members take different inputs ({listing}); combine models of one input size")
    meta = {"members": [{"path": member.path, "class_names": list(member.class_names)} for member in members]}
    return Ensemble(members=members, meta=meta)


def check_fer_classes(member: LoadedModel) -> None:
    """Refuse a model whose outputs are not FER2013's seven classes (any order).

    Raises:
        ValueError: Naming the model file and the offending class names.
    """
    name = Path(member.path).name or "model"
    unknown = [label for label in member.class_names if class_index(label) is None]
    if unknown:
        raise ValueError(f"{name} has classes that are not FER2013's ({', '.join(map(str, unknown))}): "
                         "an ensemble averages the seven FER2013 classes only")
    indices = [class_index(label) for label in member.class_names]
    if sorted(indices) != list(range(len(CLASS_NAMES))):
        repeated = sorted({CLASS_NAMES[i] for i in indices if indices.count(i) > 1})
        missing = [label for i, label in enumerate(CLASS_NAMES) if i not in indices]
        problems = ([f"repeated: {', '.join(repeated)}"] if repeated else []) + ([f"missing: {', '.join(missing)}"] if missing else [])
        raise ValueError(f"{name} does not output each FER2013 class once ({'; '.join(problems)})")


def load_models(paths: Sequence[str | os.PathLike]) -> AnyModel:
    """Load one model (a :class:`LoadedModel`) or several (an :class:`Ensemble`).

    Duplicated paths are used once (averaging a model with itself changes nothing).

    Raises:
        ValueError: No path; a member that does not load or does not fit (see
            :func:`make_ensemble`).
        FileNotFoundError: A path that does not exist.
    """
    from core.model_io import load_model

    unique = list(dict.fromkeys(str(path) for path in paths))
    if not unique:
        raise ValueError("no model given")
    loaded = [load_model(path) for path in unique]
    return loaded[0] if len(loaded) == 1 else make_ensemble(loaded)
