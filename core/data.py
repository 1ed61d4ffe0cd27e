"""Load FER2013 from any of the forms users have it in: one entry point, :func:`load_fer2013`.

Accepted sources:

* the challenge CSV ``fer2013.csv``, its variant ``icml_face_data.csv`` and
  the competition's ``train.csv`` (parsed by :mod:`core.csv_loader`);
* the image-folder release ``<root>/train/<class>/Training_*.jpg`` and
  ``<root>/test/<class>/PublicTest_*.jpg`` (``PrivateTest_*`` too), the
  split read from the file-name prefix;
* any folder of class folders (one labeled set, split ``all``);
* a ``.zip`` of one of those folder layouts (or of a FER2013 CSV), read in
  memory member by member, never extracted.

Labels always follow :data:`core.labels.CLASS_NAMES`, never folder order.
Every record is either loaded or listed in ``report.skipped`` with a reason.
Parsed datasets are cached on disk (:mod:`core.cache`).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import os
import re
import stat
import zipfile
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import BinaryIO, NamedTuple

import numpy as np

from core.cache import default_cache_dir, fingerprint_files, read_cache, sample_file_digest, write_cache
from core.csv_loader import parse_fer_csv_stream
from core.data_roots import confine_to_data_roots, is_inside_roots
from core.dataset import FerDataset, LoadReport, SkippedRecord
from core.files import HIDDEN_FILE_REASON, HIDDEN_FOLDER_REASON, is_hidden_data_name, is_hidden_folder
from core.images import IMAGE_EXTENSIONS, MAX_IMAGE_FILE_BYTES, decode_gray_checked
from core.labels import ALL, IMAGE_SIZE, KNOWN_SPLITS, PRIVATE_TEST, PUBLIC_TEST, TEST, TRAINING, class_index
from core.preprocess import prepare_face
from core.zips import read_member

# Bump when a change to the loaders changes what they return: old cache entries then miss.
LOADER_VERSION: str = "3"  # 2: hidden data files and extra CSVs are reported; 3: hidden folders, files beside wrappers

ACCEPTED_SOURCES: str = (
    "accepted: fer2013.csv, icml_face_data.csv or train.csv (columns emotion, pixels[, Usage]); "
    "the image-folder release <root>/train/<class>/*.jpg + <root>/test/<class>/*.jpg; "
    "a folder of class folders <root>/<class>/*.png (angry, disgust, fear, happy, sad, surprise, neutral); "
    "a .zip of one of these; or a .npz packed by `python -m core pack`"
)

ProgressCallback = Callable[[float, str], None]

MAX_FOLDER_FILES: int = 1_000_000
MAX_FOLDER_DEPTH: int = 8
MAX_ZIP_MEMBERS: int = 500_000
MAX_ZIP_TOTAL_BYTES: int = 2 * 1024**3
MAX_ZIP_COMPRESSION_RATIO: int = 100
# Folders wrapping the dataset root (a zip that extracted into fer2013/) that are looked through.
MAX_WRAPPER_FOLDERS: int = 3

_SPLIT_FOLDERS: dict[str, str] = {"train": TRAINING, "test": TEST}
_PREFIX_SPLITS: tuple[tuple[str, str], ...] = (
    ("training_", TRAINING),
    ("publictest_", PUBLIC_TEST),
    ("privatetest_", PRIVATE_TEST),
)
# CSV files a folder or zip may hold instead of images, most complete first.
_CSV_NAMES: tuple[str, ...] = ("fer2013.csv", "icml_face_data.csv", "train.csv")
_JUNK_NAMES = frozenset({"__MACOSX", "__macosx", "Thumbs.db", "thumbs.db", "desktop.ini", "Desktop.ini"})
_ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar")
_REPO_ROOT = Path(__file__).resolve().parent.parent
# Faces end up 48x48, so big photos are decoded at a reduced size (JPEG: by the decoder itself).
_DECODE_MAX_SIDE = 4 * IMAGE_SIZE
# A face image in a format decoded whole (not JPEG) that decodes to more than this must not be a decompression
# bomb (core.images.WHOLE_DECODE_MAX_RATIO): a zip of 40 flat 49-megapixel PNGs of 208 KB each took 50 s to load
# (probe s22). 16 MB is a 2000 x 2000 RGBA face, far more than a face crop needs.
FACE_WHOLE_DECODE_BYTES = 16 * 1024**2
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)


class _File(NamedTuple):
    """A file of a folder tree or zip, listed by ``stat`` alone."""

    path: str  # relative to the source, "/"-separated
    size: int
    mtime_ns: int
    location: str | zipfile.ZipInfo  # absolute path, or the zip member


@dataclasses.dataclass
class _Layout:
    """Which files of a tree are records, with their label and split."""

    kind: str
    root: str  # prefix of the dataset root inside the source, "" or "fer2013/"
    records: list[tuple[_File, int, str]]
    skipped: list[SkippedRecord]
    ignored_folders: list[str]
    numbered_folders: set[str] = dataclasses.field(default_factory=set)  # class folders named 0..6


def default_data_dir() -> Path | None:
    """Return where the dataset lives by default.

    ``$FER2013_DIR`` if set, else ``../shared/fer2013`` next to the
    repository (CI and development) if it exists, else ``None``.
    """
    configured = os.environ.get("FER2013_DIR")
    if configured:
        return Path(configured).expanduser()
    shared = (_REPO_ROOT.parent / "shared" / "fer2013").resolve()
    return shared if shared.is_dir() else None


def load_fer2013(
    source: str | os.PathLike,
    *,
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: ProgressCallback | None = None,
    allowed_roots: Sequence[Path] | None = None,
) -> FerDataset:
    """Load FER2013 from a CSV file, an image-folder tree, a class-folder tree or a zip.

    Args:
        source: Path to ``fer2013.csv`` / ``icml_face_data.csv`` /
            ``train.csv``, to a folder (``<root>/train/<class>/``,
            ``<root>/test/<class>/`` or ``<root>/<class>/``, possibly inside
            up to three wrapping folders), to a folder holding one of those
            CSVs, or to a ``.zip`` of any of these.
        cache_dir: Where parsed datasets are cached (default
            ``$FER_STUDIO_CACHE`` or ``~/.cache/fer-studio``).
        use_cache: ``False`` neither reads nor writes the cache.
        progress: Called as ``progress(fraction, message)`` now and then
            while loading, with fraction 1.0 at the end.
        allowed_roots: If given (the dashboard passes the data roots of
            :mod:`core.data_roots` for typed paths), ``source`` must lie
            inside one of these folders once links are followed, and a
            link inside a folder source that leads outside them is listed as
            skipped, never read.

    Returns:
        The dataset: ``images`` ``(N, 48, 48)`` uint8, ``labels`` ``(N,)``
        int64 in FER2013 order, ``splits`` and ``ids`` ``(N,)`` str, and a
        report listing every skipped record.

    Raises:
        FileNotFoundError: If ``source`` does not exist.
        core.data_roots.PathNotAllowedError: If ``allowed_roots`` is given and ``source``
            lies outside them (a ``ValueError`` naming no file).
        ValueError: If it is not one of the accepted forms, a zip is unsafe,
            or nothing in it could be loaded; the message says what was
            expected.
    """
    report_progress = progress or _ignore_progress
    if allowed_roots is not None:
        allowed_roots = list(allowed_roots)
        path = confine_to_data_roots(os.fspath(source), allowed_roots)
    else:
        path = Path(source).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{source} does not exist; point at the dataset ({ACCEPTED_SOURCES})")
    resolved = path.resolve()
    if resolved.is_file() and resolved.suffix.lower() == ".npz":  # a compact copy (python -m core pack)
        from core.pack import load_packed

        dataset = load_packed(resolved)
        report_progress(1.0, f"{len(dataset):,} images")
        return dataset
    if resolved.is_dir():
        files, unlisted = _list_folder(resolved, allowed_roots)
        entries = [(f.path, f.size, f.mtime_ns) for f in files] + [(r.where, -1, 0) for r in unlisted]
        fingerprint = fingerprint_files(entries, salt=LOADER_VERSION)

        def load() -> FerDataset:
            return _load_tree(files, str(source), "", report_progress, unlisted=unlisted)

    elif resolved.is_file():
        kind = _sniff_file(resolved)
        status = resolved.stat()
        try:
            sample = sample_file_digest(resolved, status.st_size)
        except OSError as error:
            raise ValueError(f"{source} could not be read: {error.strerror or error}") from None
        fingerprint = fingerprint_files([(f"{kind}:{sample}", status.st_size, status.st_mtime_ns)], salt=LOADER_VERSION)

        def load() -> FerDataset:
            if kind == "zip":
                return _load_zip(resolved, str(source), report_progress)
            with open(resolved, "rb") as handle:
                return _load_csv_stream(handle, status.st_size, str(source), "csv", report_progress)

    else:
        raise ValueError(f"{source} is neither a file nor a folder; {ACCEPTED_SOURCES}")

    directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if use_cache:
        cached = read_cache(resolved, fingerprint, directory)
        if cached is not None:
            report_progress(1.0, f"Loaded {len(cached):,} images from the cache")
            return dataclasses.replace(cached, report=dataclasses.replace(cached.report, source=str(source)))
    dataset = load()
    if use_cache:
        write_cache(resolved, fingerprint, dataset, directory)
    report_progress(1.0, f"Loaded {len(dataset):,} images")
    return dataset


def _ignore_progress(fraction: float, message: str) -> None:
    """Default progress callback: does nothing."""


# ---------------------------------------------------------------- files and zips


def _sniff_file(path: Path) -> str:
    """Return ``"csv"`` or ``"zip"`` for a file source, or raise saying what was expected."""
    name = path.name.lower()
    if name.endswith(".zip"):
        return "zip"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith(_ARCHIVE_SUFFIXES):
        raise ValueError(
            f"{path.name} is an archive that is not read directly: extract it and point at the "
            f"extracted folder or CSV, or re-pack it as .zip; {ACCEPTED_SOURCES}"
        )
    with open(path, "rb") as handle:
        head = handle.read(4096)
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return "zip"
    if b"pixels" in head.lower():
        return "csv"
    if PurePosixPath(name).suffix in IMAGE_EXTENSIONS:
        raise ValueError(f"{path.name} is a single image; point at the folder that holds the class folders")
    raise ValueError(f"{path.name} is not a CSV file, a .zip or a folder; {ACCEPTED_SOURCES}")


def _is_junk(name: str) -> bool:
    """OS metadata (``.DS_Store``, ``__MACOSX``, ``Thumbs.db``), never data."""
    return name.startswith(".") or name in _JUNK_NAMES


def _is_hidden_data(name: str) -> bool:
    """A hidden file that holds data (``.face.jpg``), not OS metadata (``.DS_Store``, macOS's ``._face.jpg``)."""
    return is_hidden_data_name(name, IMAGE_EXTENSIONS | {".csv"})


def _list_folder(root: Path, allowed_roots: list[Path] | None = None) -> tuple[list[_File], list[SkippedRecord]]:
    """List every non-junk file under ``root`` (stat only), sorted by relative path.

    With ``allowed_roots``, a link leading outside those folders is neither
    followed nor read: it is listed among the returned skipped records.

    Returns:
        The files, and the records that were not listed: sub-folders that
        could not be listed (permissions), links leading outside
        ``allowed_roots``.
    """
    files: list[_File] = []
    unlisted: list[SkippedRecord] = []
    pending: list[tuple[str, str, int]] = [(str(root), "", 0)]
    while pending:
        folder, prefix, depth = pending.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as error:
            if not prefix:
                raise ValueError(f"cannot list {folder}: {error.strerror or error}") from None
            unlisted.append(SkippedRecord(prefix.rstrip("/"), f"folder could not be listed: {error.strerror or error}"))
            continue
        for entry in entries:
            name = entry.name
            if name.startswith(".") or name in _JUNK_NAMES:
                if _is_hidden_data(name) and entry.is_file():
                    # Not metadata: a face or a CSV someone hid. Not read, but counted.
                    unlisted.append(SkippedRecord(prefix + name, HIDDEN_FILE_REASON))
                elif is_hidden_folder(name) and entry.is_dir(follow_symlinks=False):
                    # Review s20: a hidden class folder (train/.sad/) went without a word.
                    unlisted.append(SkippedRecord(prefix + name, HIDDEN_FOLDER_REASON))
                continue
            try:
                if allowed_roots is not None and entry.is_symlink() and not is_inside_roots(entry.path, allowed_roots):
                    unlisted.append(SkippedRecord(prefix + name, "a link to outside the data folders; not read"))
                    continue
                if entry.is_dir():
                    if allowed_roots is not None and not is_inside_roots(entry.path, allowed_roots):
                        # The private uploads folder, when the cache folder itself is loaded.
                        unlisted.append(SkippedRecord(prefix + name, "not a data folder; not read"))
                        continue
                    if depth < MAX_FOLDER_DEPTH:
                        pending.append((entry.path, prefix + name + "/", depth + 1))
                    continue
                status = entry.stat()
            except OSError as error:
                # A link to nothing, or an entry that vanished or cannot be examined: reported, not dropped.
                reason = (
                    "a broken link: the file it points to does not exist"
                    if entry.is_symlink() and not os.path.exists(entry.path)
                    else f"could not be examined: {error.strerror or error}"
                )
                unlisted.append(SkippedRecord(prefix + name, reason))
                continue
            if stat.S_ISREG(status.st_mode):
                files.append(_File(prefix + name, status.st_size, status.st_mtime_ns, entry.path))
            else:
                # A FIFO would block the read forever and a device never end: reported, never opened.
                unlisted.append(SkippedRecord(prefix + name, "not a regular file (a FIFO, device or socket); not read"))
        if len(files) > MAX_FOLDER_FILES:
            raise ValueError(f"{root} holds more than {MAX_FOLDER_FILES:,} files: point at the dataset folder itself")
    files.sort()
    return files, sorted(unlisted, key=lambda record: record.where)


def _read_member(file: _File, archive: zipfile.ZipFile | None) -> bytes:
    """Read a listed file's bytes; raise ValueError saying why it could not be read."""
    try:
        if archive is not None:
            return read_member(archive, file.location)  # bounded: the declared sizes may lie
        return _read_whole_file(file.location, file.size)
    except (OSError, zipfile.BadZipFile, RuntimeError, NotImplementedError, EOFError) as error:
        if archive is not None and "encrypted" in str(error):  # zipfile's message quotes a ZipInfo repr
            raise ValueError("could not be read: the zip member is password-protected; extract the zip with its "
                             "password and point at the folder") from None
        raise ValueError(f"could not be read: {error}") from None


def _read_whole_file(path: str, expected_size: int) -> bytes:
    """Read a file with one ``read`` call when its size is known (no buffered-IO layers per file)."""
    descriptor = os.open(path, _OPEN_FLAGS)
    try:
        data = os.read(descriptor, expected_size + 1)  # one byte more reveals a file that grew
        if len(data) <= expected_size:
            return data
        chunks = [data]
        while chunk := os.read(descriptor, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(descriptor)


def _check_zip_member(info: zipfile.ZipInfo) -> str:
    """Return the member's ``/``-separated name, or raise if it could escape its folder."""
    name = info.filename.replace("\\", "/")
    parts = name.split("/")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name) or ".." in parts:
        raise ValueError(
            f"unsafe zip: member {info.filename!r} has an absolute path or '..'; refusing to read this archive"
        )
    if info.file_size > 1024 * 1024 and info.file_size > MAX_ZIP_COMPRESSION_RATIO * max(info.compress_size, 1):
        raise ValueError(
            f"unsafe zip: member {info.filename!r} expands {info.file_size / max(info.compress_size, 1):,.0f} times "
            f"(limit {MAX_ZIP_COMPRESSION_RATIO}x), which looks like a zip bomb"
        )
    return name


def _list_zip(archive: zipfile.ZipFile, name: str) -> tuple[list[_File], list[SkippedRecord]]:
    """List a zip's members, refusing unsafe names, zip bombs and oversized archives.

    Returns:
        The members to read, and the records not read that hold data: hidden
        images and CSVs, and hidden folders with such files in them (OS
        metadata, ``__MACOSX`` and ``._face.jpg``, goes without a word), as
        :func:`_list_folder` reports them.
    """
    infos = [info for info in archive.infolist() if not info.is_dir()]
    if len(infos) > MAX_ZIP_MEMBERS:
        raise ValueError(f"{name} has {len(infos):,} members (limit {MAX_ZIP_MEMBERS:,}); extract it yourself")
    total = sum(info.file_size for info in infos)
    if total > MAX_ZIP_TOTAL_BYTES:
        raise ValueError(
            f"{name} expands to {total / 1024**3:.1f} GiB (limit {MAX_ZIP_TOTAL_BYTES / 1024**3:.0f} GiB); "
            "extract it yourself and point at the folder"
        )
    # The members' own ratios miss a bomb of many members at or under 1 MiB each (probe s11: 1,000 members of
    # 1 MiB of zeros, a 1.15 MB zip, kept a server thread decoding for 92 s); the whole archive's ratio does not.
    packed = sum(info.compress_size for info in infos)
    if total > 1024 * 1024 and total > MAX_ZIP_COMPRESSION_RATIO * max(packed, 1):
        raise ValueError(
            f"unsafe zip: {name}'s members expand {total / max(packed, 1):,.0f} times in all "
            f"(limit {MAX_ZIP_COMPRESSION_RATIO}x), which looks like a zip bomb"
        )
    files, unlisted, hidden_folders = [], [], set()
    for info in infos:
        member = _check_zip_member(info)
        parts = member.split("/")
        if any(_is_junk(part) for part in parts):
            # Review s20: every member with a hidden part was dropped without a word, where the folder loader
            # reports hidden data; the same data now gives the same report as a zip and as a folder.
            folders = [index for index, part in enumerate(parts[:-1]) if _is_junk(part)]
            data = PurePosixPath(parts[-1]).suffix.lower() in IMAGE_EXTENSIONS or parts[-1].lower().endswith(".csv")
            if folders:
                top = folders[0]
                if data and is_hidden_folder(parts[top]) and not parts[-1].startswith("._"):
                    hidden_folders.add("/".join(parts[:top + 1]))
            elif _is_hidden_data(parts[-1]):
                unlisted.append(SkippedRecord(member, HIDDEN_FILE_REASON))
            continue
        files.append(_File(member, info.file_size, 0, info))
    files.sort(key=lambda f: f.path)
    unlisted.extend(SkippedRecord(folder, HIDDEN_FOLDER_REASON) for folder in hidden_folders)
    return files, sorted(unlisted, key=lambda record: record.where)


def _load_zip(path: Path, source: str, progress: ProgressCallback) -> FerDataset:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise ValueError(f"{path.name} is not a readable zip file ({error}); {ACCEPTED_SOURCES}") from None
    with archive:
        files, unlisted = _list_zip(archive, path.name)
        return _load_tree(files, source, "zip:", progress, archive, unlisted=unlisted)


# ---------------------------------------------------------------- folder layouts


def _plan_layout(files: list[_File]) -> _Layout | None:
    """Find the dataset root (looking through up to 3 wrapping folders) and its records."""
    root = ""
    for _ in range(MAX_WRAPPER_FOLDERS + 1):
        folders = _child_folders(files, root)
        if any(folder.lower() in _SPLIT_FOLDERS for folder in folders):
            return _beside_wrappers(_plan_release(files, root), files)
        if any(class_index(folder) is not None for folder in folders):
            return _beside_wrappers(_plan_class_folders(files, root), files)
        if len(folders) != 1:
            return None
        root += folders[0] + "/"
    return None


def _beside_wrappers(layout: _Layout, files: list[_File]) -> _Layout:
    """Report the images and CSVs outside the dataset's root: beside the folders that wrap it.

    Review s20: with ``stray.png`` beside ``wrap/`` (which holds ``train/``
    and ``test/``), the loader looked inside ``wrap/`` and ``stray.png`` was
    neither loaded nor reported.
    """
    for file in files:
        if file.path.startswith(layout.root):
            continue
        name = file.path.rpartition("/")[2]
        if PurePosixPath(name).suffix.lower() in IMAGE_EXTENSIONS or name.lower().endswith(".csv"):
            where = layout.root.rstrip("/")
            layout.skipped.append(SkippedRecord(file.path, f"outside {where}/, the folder that holds the dataset, so "
                                                           "it has no split and no label"))
    return layout


def _child_folders(files: list[_File], root: str) -> list[str]:
    names = set()
    for file in files:
        if file.path.startswith(root):
            head, slash, _ = file.path[len(root) :].partition("/")
            if slash:
                names.add(head)
    return sorted(names)


def _plan_release(files: list[_File], root: str) -> _Layout:
    """``<root>/train/<class>/`` and ``<root>/test/<class>/``; split from the file-name prefix."""
    layout = _Layout("image-folders", root, [], [], [])
    ignored: set[str] = set()
    for file in files:
        if not file.path.startswith(root):
            continue
        parts = file.path[len(root) :].split("/")
        if len(parts) == 1:
            if parts[0].lower().endswith(".csv"):
                layout.skipped.append(SkippedRecord(file.path, "a CSV beside the image folders, which were loaded "
                                                               "instead; point the data at this file to load it"))
            elif PurePosixPath(parts[0]).suffix.lower() in IMAGE_EXTENSIONS:  # probe s11: it went unreported
                layout.skipped.append(SkippedRecord(file.path, "beside the split folders, not inside train/ or "
                                                               "test/<class>/, so it has no split and no label"))
            continue  # README and the like next to train/ and test/
        default_split = _SPLIT_FOLDERS.get(parts[0].lower())
        if default_split is None:
            ignored.add(root + parts[0])
            continue
        _plan_record(layout, file, parts[1:], root + parts[0] + "/", default_split, ignored)
    layout.ignored_folders = sorted(ignored)
    # Training first, then the test splits, each in path order.
    layout.records.sort(key=lambda record: (record[0].path[len(root) :].split("/")[0].lower() != "train", record[0].path))
    return layout


def _plan_class_folders(files: list[_File], root: str) -> _Layout:
    """``<root>/<class>/``: one labeled set, split ``all``."""
    layout = _Layout("class-folders", root, [], [], [])
    ignored: set[str] = set()
    for file in files:
        if file.path.startswith(root):
            _plan_record(layout, file, file.path[len(root) :].split("/"), root, None, ignored)
    layout.ignored_folders = sorted(ignored)
    return layout


def _plan_record(
    layout: _Layout, file: _File, parts: list[str], parent: str, default_split: str | None, ignored: set[str]
) -> None:
    """Classify one file by its path below the split folder (or the root, for class folders)."""
    name = parts[-1]
    dot = name.rfind(".")
    suffix = name[dot:].lower() if dot > 0 else ""
    is_image = suffix in IMAGE_EXTENSIONS
    if len(parts) == 1:
        if is_image:
            layout.skipped.append(SkippedRecord(file.path, "not inside a class folder, so it has no label"))
        elif default_split is not None:  # a stray file in train/ or test/ (probe s11: notes.txt went unreported)
            layout.skipped.append(SkippedRecord(file.path, f"not an image file ({suffix or 'no extension'}) and not "
                                                           "inside a class folder"))
        return
    label = _class_index_cached(parts[0])
    if label is None:
        ignored.add(parent + parts[0])
        return
    if parts[0].strip().isdigit():
        layout.numbered_folders.add(parent + parts[0])
    if not is_image:
        layout.skipped.append(
            SkippedRecord(
                file.path,
                f"not an image file ({suffix or 'no extension'}); accepted: {', '.join(sorted(IMAGE_EXTENSIONS))}",
            )
        )
        return
    split = ALL if default_split is None else _split_from_name(parts[-1], default_split)
    layout.records.append((file, label, split))


@functools.lru_cache(maxsize=1024)
def _class_index_cached(folder: str) -> int | None:
    return class_index(folder)


def _split_from_name(name: str, default: str) -> str:
    lowered = name.lower()
    for prefix, split in _PREFIX_SPLITS:
        if lowered.startswith(prefix):
            return split
    return default


def _pick_csv(files: list[_File]) -> _File | None:
    """The FER2013 CSV among a tree's files (at most two folders down), best-known name first."""
    candidates = [f for f in files if f.path.lower().endswith(".csv") and f.path.count("/") <= 2]
    for wanted in _CSV_NAMES:
        for file in candidates:
            if PurePosixPath(file.path).name.lower() == wanted:
                return file
    return candidates[0] if len(candidates) == 1 else None


def _load_tree(
    files: list[_File],
    source: str,
    kind_prefix: str,
    progress: ProgressCallback,
    archive: zipfile.ZipFile | None = None,
    unlisted: list[SkippedRecord] | None = None,
) -> FerDataset:
    """Load a folder tree or a zip's members: image layouts first, else a CSV inside."""
    layout = _plan_layout(files)
    if layout is not None and unlisted:
        layout.skipped.extend(unlisted)
    if layout is None or not layout.records:
        csv_file = _pick_csv(files)
        if csv_file is not None:
            # Streamed member by member like a plain CSV file: never held whole in memory.
            try:
                handle = archive.open(csv_file.location) if archive is not None else open(csv_file.location, "rb")
            except (OSError, zipfile.BadZipFile, RuntimeError, NotImplementedError) as error:
                raise ValueError(f"{csv_file.path} could not be read: {error}") from None
            with handle:
                dataset = _load_csv_stream(handle, csv_file.size, source, kind_prefix + "csv", progress)
            others = [SkippedRecord(f.path, f"another CSV: only {csv_file.path} was loaded; point the data at this "
                                            "file to load it") for f in files if f.path.lower().endswith(".csv") and f is not csv_file]
            if others:
                skipped = tuple(sorted((*dataset.report.skipped, *others), key=lambda record: record.where))
                dataset = dataclasses.replace(dataset, report=dataclasses.replace(dataset.report, skipped=skipped))
            return dataset
    if layout is None:
        inner = [f.path for f in files if f.path.lower().endswith(".zip")]
        if archive is not None and inner:
            raise ValueError(f"{source} holds {'a zip' if len(inner) == 1 else f'{len(inner)} zips'} inside it "
                             f"({', '.join(inner[:3])}{', ...' if len(inner) > 3 else ''}); zips are read one level deep: "
                             f"extract it and point at {inner[0].rpartition('/')[2]}")
        folders = sorted({f.path.split("/")[0] for f in files if "/" in f.path})
        found = "folders " + ", ".join(folders[:10]) if folders else "no folders"
        raise ValueError(f"{source} has no FER2013 layout (found {found}); {ACCEPTED_SOURCES}")
    return _load_images(layout, source, kind_prefix, progress, archive)


def _load_images(
    layout: _Layout, source: str, kind_prefix: str, progress: ProgressCallback, archive: zipfile.ZipFile | None
) -> FerDataset:
    """Read and decode every record, hashing relative paths and bytes as they are read."""
    total = len(layout.records)
    images = np.empty((total, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    labels = np.empty(total, np.int64)
    splits: list[str] = []
    ids: list[str] = []
    skipped = list(layout.skipped)
    converted = 0
    digest = hashlib.sha256()
    loaded = 0
    for position, (file, label, split) in enumerate(layout.records):
        if position % 512 == 0:
            progress(position / max(total, 1), f"Decoding images {position:,}/{total:,}")
        if file.size > MAX_IMAGE_FILE_BYTES:
            skipped.append(SkippedRecord(
                file.path, f"{file.size / 1024**2:,.0f} MiB, larger than any image file is read "
                f"({MAX_IMAGE_FILE_BYTES / 1024**2:,.0f} MiB); not read"))
            continue
        try:
            data = _read_member(file, archive)
        except ValueError as error:
            skipped.append(SkippedRecord(file.path, str(error)))
            continue
        relative = file.path[len(layout.root) :].encode("utf-8", errors="surrogateescape")
        digest.update(len(relative).to_bytes(4, "little") + relative + len(data).to_bytes(8, "little"))
        digest.update(data)
        try:
            gray, was_gray = decode_gray_checked(data, max_side=_DECODE_MAX_SIDE, max_whole_bytes=FACE_WHOLE_DECODE_BYTES)
        except ValueError as error:
            skipped.append(SkippedRecord(file.path, str(error)))
            continue
        if not was_gray or gray.shape != (IMAGE_SIZE, IMAGE_SIZE):
            gray = prepare_face(gray)
            converted += 1
        images[loaded] = gray
        labels[loaded] = label
        splits.append(split)
        ids.append(file.path.rpartition("/")[2])
        loaded += 1
    skipped.sort(key=lambda record: record.where)
    if loaded == 0:
        ignored = f" (ignored folders: {', '.join(layout.ignored_folders)})" if layout.ignored_folders else ""
        raise ValueError(f"{source}: no image could be loaded{ignored}; {_describe_problems(skipped)}; {ACCEPTED_SOURCES}")
    order = _canonical_order(splits)
    if np.array_equal(order, np.arange(loaded)):
        order = slice(None)  # already in order: no copy
    report = LoadReport(
        source=source,
        kind=kind_prefix + layout.kind,
        loaded=loaded,
        skipped=tuple(skipped),
        converted=converted,
        ignored_folders=tuple(layout.ignored_folders),
        numbered_folders=tuple(sorted(layout.numbered_folders)),
        content_hash=digest.hexdigest(),
    )
    return FerDataset(
        images=images[:loaded][order],
        labels=labels[:loaded][order],
        splits=np.asarray(splits, dtype=str)[order],
        ids=np.asarray(ids, dtype=str)[order],
        report=report,
    )


def _canonical_order(splits: list[str]) -> np.ndarray:
    """A stable order putting Training before PublicTest, PrivateTest, test, all."""
    rank = {split: position for position, split in enumerate(KNOWN_SPLITS)}
    return np.argsort(np.fromiter((rank[s] for s in splits), np.int64, len(splits)), kind="stable")


def _describe_problems(skipped: list[SkippedRecord] | tuple[SkippedRecord, ...]) -> str:
    if not skipped:
        return "it holds no records"
    listed = "; ".join(f"{record.where}: {record.reason}" for record in skipped[:3])
    more = f" (and {len(skipped) - 3:,} more)" if len(skipped) > 3 else ""
    return f"{len(skipped):,} records skipped, e.g. {listed}{more}"


# ---------------------------------------------------------------- CSV


def _load_csv_stream(handle: BinaryIO, size: int, source: str, kind: str, progress: ProgressCallback) -> FerDataset:
    """Parse a CSV while it is read, in bounded memory; its sha256 is computed meanwhile on a second thread.

    hashlib releases the GIL on large blocks, so hashing costs no parse time;
    at most a few read blocks wait for the hasher at any moment.
    """
    digest = hashlib.sha256()
    waiting: collections.deque[Future] = collections.deque()

    def hash_block(block: bytes) -> None:
        waiting.append(pool.submit(digest.update, block))
        while len(waiting) > 2:
            waiting.popleft().result()

    with ThreadPoolExecutor(max_workers=1) as pool:
        try:
            result = parse_fer_csv_stream(
                handle,
                size=size,
                progress=lambda fraction: progress(fraction, "Parsing the CSV"),
                on_block=hash_block,
            )
        except (OSError, zipfile.BadZipFile, EOFError, RuntimeError, NotImplementedError) as error:
            raise ValueError(f"{source}: the CSV could not be read: {getattr(error, 'strerror', None) or error}") from None
        for future in waiting:
            future.result()
    if len(result.images) == 0:
        raise ValueError(f"{source}: no usable rows; {_describe_problems(result.skipped)}")
    report = LoadReport(
        source=source, kind=kind, loaded=len(result.images), skipped=result.skipped, content_hash=digest.hexdigest()
    )
    return FerDataset(result.images, result.labels, result.splits, result.ids, report)
