"""The in-memory dataset and its load report: what every loader returns."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from core.labels import CLASS_NAMES, KNOWN_SPLITS, NUM_CLASSES


@dataclass(frozen=True)
class SkippedRecord:
    """One record the loader could not use.

    Attributes:
        where: ``"line 17"`` for a CSV row (1-based file line, header = line 1)
            or the file's path relative to the source for an image.
        reason: What was wrong, in words a user can act on.
    """

    where: str
    reason: str


@dataclass(frozen=True)
class LoadReport:
    """What a load did: every record is either loaded or listed in ``skipped``.

    Attributes:
        source: The path that was loaded, as given.
        kind: ``"csv"``, ``"image-folders"`` (train/ and test/ release),
            ``"class-folders"`` (one labeled set) or ``"zip:<inner kind>"``.
        loaded: Number of images in the dataset.
        skipped: Records that were not loaded, with the reason for each.
        converted: Images that were not 48x48 grayscale and were converted.
        ignored_folders: Folders that name no FER2013 class (``contempt``).
        content_hash: Hex digest identifying the source's content.
        numbered_folders: Class folders named by a digit (``0``..``6``), read in FER2013's order.
    """

    source: str
    kind: str
    loaded: int
    skipped: tuple[SkippedRecord, ...] = ()
    converted: int = 0
    ignored_folders: tuple[str, ...] = ()
    content_hash: str = ""
    numbered_folders: tuple[str, ...] = ()

    def notes(self, limit: int = 6) -> list[str]:
        """What a user must know about this load beyond the skipped records, one sentence each ([] if nothing).

        Folders that name no class are left out (a misspelt ``suprise/`` lost its images without a word in
        train, evaluate and pack: probe s19), and folders named by digits are read in FER2013's order, which
        other datasets' exports do not follow (AffectNet's 0 is neutral).
        """
        def listed(folders: tuple[str, ...]) -> str:
            more = len(folders) - limit
            return ", ".join(folders[:limit]) + (f" and {more} more" if more > 0 else "")

        notes = []
        if self.ignored_folders:
            notes.append(f"folders that name no FER2013 class were left out, with every image in them: "
                         f"{listed(self.ignored_folders)} (the classes: {', '.join(CLASS_NAMES)}; rename a "
                         "misspelt folder to load it)")
        if self.numbered_folders:
            order = ", ".join(f"{index} {name}" for index, name in enumerate(CLASS_NAMES))
            notes.append(f"folders named by a number were read in FER2013's order ({order}): "
                         f"{listed(self.numbered_folders)}; other datasets number their classes differently "
                         "(AffectNet's 0 is neutral): if yours do, rename the folders to the class names")
        return notes

    def to_dict(self) -> dict:
        """Return a JSON-serialisable view."""
        return {
            "source": self.source,
            "kind": self.kind,
            "loaded": self.loaded,
            "skipped": [{"where": s.where, "reason": s.reason} for s in self.skipped],
            "converted": self.converted,
            "ignored_folders": list(self.ignored_folders),
            "content_hash": self.content_hash,
            "numbered_folders": list(self.numbered_folders),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "LoadReport":
        """Inverse of :meth:`to_dict`."""
        return cls(
            source=data["source"],
            kind=data["kind"],
            loaded=int(data["loaded"]),
            skipped=tuple(SkippedRecord(s["where"], s["reason"]) for s in data.get("skipped", [])),
            converted=int(data.get("converted", 0)),
            ignored_folders=tuple(data.get("ignored_folders", [])),
            content_hash=data.get("content_hash", ""),
            numbered_folders=tuple(data.get("numbered_folders", [])),
        )


@dataclass(frozen=True)
class FerDataset:
    """Images, labels, splits and ids of a loaded source, aligned by row.

    Attributes:
        images: ``(N, 48, 48)`` uint8 grayscale faces.
        labels: ``(N,)`` int64 class indices in FER2013 order (see ``core.labels``).
        splits: ``(N,)`` str array, values from ``core.labels.KNOWN_SPLITS``.
        ids: ``(N,)`` str array: a file name (``Training_123.jpg``) or
            ``"line 17"`` for a CSV row.
        report: How the load went.
    """

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    ids: np.ndarray
    report: LoadReport = field(compare=False)

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.images.dtype != np.uint8 or self.images.shape[1:] != (48, 48):
            raise ValueError(f"images must be uint8 (N, 48, 48), got {self.images.dtype} {self.images.shape}")
        for name in ("labels", "splits", "ids"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"{name} has {len(getattr(self, name))} rows, images has {n}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def split_names(self) -> list[str]:
        """Splits present, in canonical order (Training, PublicTest, PrivateTest, test, all)."""
        present = set(self.splits.tolist())
        return [s for s in KNOWN_SPLITS if s in present]

    def subset(self, split: str) -> "FerDataset":
        """Return the rows of one split.

        Raises:
            ValueError: If ``split`` is not present; the message lists those that are.
        """
        mask = self.splits == split
        if not mask.any():
            raise ValueError(f"split {split!r} is not in this dataset; present: {', '.join(self.split_names)}")
        return self.select(mask)

    def select(self, mask_or_index: np.ndarray) -> "FerDataset":
        """Return the rows picked by a boolean mask or an index array (same report)."""
        return FerDataset(
            images=self.images[mask_or_index],
            labels=self.labels[mask_or_index],
            splits=self.splits[mask_or_index],
            ids=self.ids[mask_or_index],
            report=self.report,
        )

    def class_counts(self) -> dict[str, dict[str, int]]:
        """Return ``{split: {class_name: count}}`` with every class present (zeros kept)."""
        counts: dict[str, dict[str, int]] = {}
        for split in self.split_names:
            c = Counter(self.labels[self.splits == split].tolist())
            counts[split] = {CLASS_NAMES[i]: int(c.get(i, 0)) for i in range(NUM_CLASSES)}
        return counts
