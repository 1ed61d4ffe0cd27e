"""A compact copy of a loaded dataset: one compressed ``.npz`` of uint8 faces.

What a GPU machine needs to train without the image folders (and without
TensorFlow: only NumPy reads it): the faces, their labels, splits and ids,
and the load report of the source, so the content hash that runs record is
the source's own. FER2013's Training + PublicTest pack into 57 MiB.

The file holds no pickles: strings are stored as fixed-width unicode arrays
and the report as JSON text, and it is read with ``allow_pickle=False``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from core.dataset import FerDataset, LoadReport
from core.files import give_ordinary_mode, temporary_file
from core.labels import CLASS_NAMES, KNOWN_SPLITS

PACK_FORMAT = "fer-studio-pack-1"
_ARRAYS = ("images", "labels", "splits", "ids")


def pack_dataset(dataset: FerDataset, path: str | os.PathLike, *, splits: list[str] | None = None) -> Path:
    """Write ``dataset`` (or only ``splits`` of it) as a compressed ``.npz``, atomically.

    Raises:
        ValueError: If ``path`` does not end in ``.npz`` or a split is missing.
    """
    path = Path(path)
    if path.suffix.lower() != ".npz":
        raise ValueError(f"a packed dataset is a .npz file, got {path.name}")
    if splits:
        missing = [split for split in splits if split not in dataset.split_names]
        if missing:
            raise ValueError(f"split {', '.join(missing)} is not in this dataset; present: {', '.join(dataset.split_names)}")
        dataset = dataset.select(np.isin(dataset.splits, splits))
        # A part of the source is other data: runs trained on it must not record the whole source's hash.
        digest = hashlib.blake2b(f"{dataset.report.content_hash}|{','.join(sorted(splits))}".encode(), digest_size=32).hexdigest()
        dataset = FerDataset(dataset.images, dataset.labels, dataset.splits, dataset.ids,
                             dataclasses.replace(dataset.report, loaded=len(dataset), content_hash=digest))
    header = {"format": PACK_FORMAT, "class_names": list(CLASS_NAMES), "report": dataset.report.to_dict()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp_name = str(temporary_file(path.parent, path.stem, ".npz"))  # a killed pack's 57 MiB copy goes first
    try:
        arrays = {"images": dataset.images, "labels": dataset.labels.astype(np.int64), "splits": dataset.splits.astype(str),
                  "ids": dataset.ids.astype(str), "header": np.array(json.dumps(header))}
        # bzip2 members: FER2013's JPEG-decoded faces shrink to 57 MiB (zlib: 68 MiB, over the
        # 64 MiB a GPU call carries); np.load reads any zip compression.
        with zipfile.ZipFile(tmp_name, "w", compression=zipfile.ZIP_BZIP2, compresslevel=9) as archive:
            for name, array in arrays.items():
                with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
        give_ordinary_mode(tmp_name)  # mkstemp makes it owner-only; a pack is ordinary data
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    return path


def load_packed(path: str | os.PathLike) -> FerDataset:
    """Read a dataset written by :func:`pack_dataset`.

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it is not a FER Studio pack (another ``.npz``, a damaged
            file, labels outside FER2013's classes, unknown splits).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no packed dataset at {path}")
    make_one = "make one with `python -m core pack --data SOURCE --out FILE.npz`"
    if not zipfile.is_zipfile(path):
        # np.load would take any other bytes for a pickle and suggest unpickling them.
        size = path.stat().st_size
        raise ValueError(f"{path.name} is not a readable .npz archive ({'an empty file' if not size else f'{size:,} bytes: truncated, or another kind of file'}); "
                         f"{make_one}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if "header" not in archive.files or any(name not in archive.files for name in _ARRAYS):
                raise LookupError
            header = json.loads(str(archive["header"].reshape(-1)[0]))
            arrays = {name: archive[name] for name in _ARRAYS}
    except LookupError:
        raise ValueError(f"{path.name} is a .npz but not a packed FER Studio dataset ({make_one})") from None
    except ValueError as error:
        if "pickle" not in str(error):
            raise ValueError(f"{path.name} is a damaged packed dataset ({error}); pack the source again") from error
        # An object array: packs never hold pickles.
        raise ValueError(f"{path.name} holds pickled Python objects, which a packed dataset never does; "
                         f"it is not a FER Studio pack and is not read ({make_one})") from error
    except (OSError, EOFError, zipfile.BadZipFile, json.JSONDecodeError, KeyError, IndexError) as error:
        raise ValueError(f"{path.name} is a damaged packed dataset ({type(error).__name__}: {error}); "
                         "pack the source again") from error
    if header.get("format") != PACK_FORMAT or header.get("class_names") != list(CLASS_NAMES):
        raise ValueError(f"{path.name} is a pack of another format or class order ({header.get('format')!r}); pack the source again")
    labels = arrays["labels"].astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASS_NAMES)):
        raise ValueError(f"{path.name} has labels outside 0..{len(CLASS_NAMES) - 1}")
    unknown = sorted(set(arrays["splits"].tolist()) - set(KNOWN_SPLITS))
    if unknown:
        raise ValueError(f"{path.name} has unknown splits: {', '.join(unknown)}")
    source = LoadReport.from_dict(header["report"])
    report = LoadReport(source=str(path), kind=f"packed:{source.kind}", loaded=len(labels), skipped=source.skipped,
                        converted=source.converted, ignored_folders=source.ignored_folders, content_hash=source.content_hash,
                        numbered_folders=source.numbered_folders)
    try:
        return FerDataset(arrays["images"], labels, arrays["splits"].astype(str), arrays["ids"].astype(str), report)
    except ValueError as error:
        raise ValueError(f"{path.name}: {error}") from error
