"""On-disk cache of parsed datasets, so that a second load takes a fraction of a second.

One entry per source path: ``<key>.npz`` (uncompressed arrays) and
``<key>.json`` (the load report and the source's fingerprint). The
fingerprint is built from ``stat`` (size and modification time of the
file, or of every file in a folder tree); for a single file (CSV, zip) it
also covers a hash of the file's first, middle and last 64 KiB
(:func:`sample_file_digest`), so an edit that keeps the size and restores
the modification time is still noticed when it touches those blocks.
A folder tree is checked by ``stat`` alone: opening 35,000 images on every
load would cost more than the load it saves. Writes are atomic; an
unreadable entry, or one of the wrong shape, counts as a miss and is
rewritten by the next load.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from core.dataset import FerDataset, LoadReport
from core.files import give_ordinary_mode

CACHE_FORMAT: int = 2  # 2: skipped lists name images beside the split folders and stray files in them
_ARRAY_NAMES = ("images", "labels", "splits", "ids")
# Everything a damaged or foreign cache file can raise while being read.
_READ_ERRORS = (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, zipfile.BadZipFile)
SAMPLE_BLOCK_BYTES: int = 64 * 1024


def default_cache_dir() -> Path:
    """Return ``$FER_STUDIO_CACHE`` if set, else ``~/.cache/fer-studio``."""
    configured = os.environ.get("FER_STUDIO_CACHE")
    # Absolute (a relative one from the current folder): workers run in the repository's folder.
    return Path(configured).expanduser().absolute() if configured else Path.home() / ".cache" / "fer-studio"


def fingerprint_files(entries: Iterable[tuple[str, int, int]], *, salt: str) -> str:
    """Digest ``(relative path, size, mtime_ns)`` triples (in the given order) and a salt.

    Any touched, edited, added, removed or renamed file changes the result.
    """
    text = "".join(f"{relative_path}\0{size}\0{mtime_ns}\n" for relative_path, size, mtime_ns in entries)
    digest = hashlib.sha256(f"fer-studio-cache:{CACHE_FORMAT}:{salt}\n".encode())
    digest.update(text.encode("utf-8", errors="surrogateescape"))
    return digest.hexdigest()


def sample_file_digest(path: str | os.PathLike, size: int) -> str:
    """Hash a file's first, middle and last :data:`SAMPLE_BLOCK_BYTES` (reads at most 192 KiB).

    A cheap content check next to size and modification time: a same-size
    edit with the time put back is caught when it touches one of those
    blocks (a FER2013 CSV edit that changes a label near the start or the
    end, a re-packed zip whose central directory moved). Edits elsewhere in
    a large file still need a new modification time to be seen.

    Raises:
        OSError: If the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        offsets = sorted({0, max(0, size // 2 - SAMPLE_BLOCK_BYTES // 2), max(0, size - SAMPLE_BLOCK_BYTES)})
        for offset in offsets:
            handle.seek(offset)
            digest.update(handle.read(SAMPLE_BLOCK_BYTES))
    return digest.hexdigest()


def read_cache(source: Path, fingerprint: str, cache_dir: Path) -> FerDataset | None:
    """Return the cached dataset of ``source`` if its fingerprint matches, else ``None``.

    Never raises for a missing, stale, truncated or foreign cache entry.
    """
    npz_path, json_path = _entry_paths(source, cache_dir)
    try:
        meta = json.loads(json_path.read_text(encoding="utf-8"))
        # Valid JSON of another shape ("null", "[1, 2]", a report that is a list) is a miss too.
        if not isinstance(meta, dict) or not isinstance(meta.get("report"), dict):
            return None
        if meta.get("format") != CACHE_FORMAT or meta.get("fingerprint") != fingerprint:
            return None
        with np.load(npz_path, allow_pickle=False) as npz:
            if str(npz["fingerprint"]) != fingerprint:
                return None  # the two files come from different writes
            arrays = {name: npz[name] for name in _ARRAY_NAMES}
        report = LoadReport.from_dict(meta["report"])
        if len(arrays["images"]) != report.loaded:
            return None
        return FerDataset(report=report, **arrays)
    except _READ_ERRORS:
        return None


def write_cache(source: Path, fingerprint: str, dataset: FerDataset, cache_dir: Path) -> bool:
    """Store ``dataset`` as the cache entry of ``source``; return whether it was written.

    A cache directory that cannot be written is not an error: the load
    just stays uncached.
    """
    npz_path, json_path = _entry_paths(source, cache_dir)
    meta = {
        "format": CACHE_FORMAT,
        "fingerprint": fingerprint,
        "source": str(source),
        "report": dataset.report.to_dict(),
    }
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        _write_atomically(
            npz_path,
            lambda handle: np.savez(
                handle,
                images=dataset.images,
                labels=dataset.labels,
                splits=dataset.splits.astype(str),
                ids=dataset.ids.astype(str),
                fingerprint=np.asarray(fingerprint),
            ),
        )
        _write_atomically(json_path, lambda handle: handle.write(json.dumps(meta).encode("utf-8")))
    except OSError:
        return False
    return True


def remove_cache_entry(source: Path, cache_dir: Path) -> int:
    """Delete the cache entry of ``source`` (both files); return how many files were removed.

    Used when a source is gone for good (a deleted upload), so its parsed
    copy does not outlive it. A missing entry is not an error.
    """
    removed = 0
    for path in _entry_paths(source, cache_dir):
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
        except OSError:
            pass  # left for the next write to replace
    return removed


def _entry_paths(source: Path, cache_dir: Path) -> tuple[Path, Path]:
    key = hashlib.sha256(str(source).encode("utf-8", errors="surrogateescape")).hexdigest()[:32]
    return cache_dir / f"fer2013-{key}.npz", cache_dir / f"fer2013-{key}.json"


def _write_atomically(path: Path, write) -> None:
    """Write through a temporary file in the same folder, then rename over ``path``."""
    handle = tempfile.NamedTemporaryFile(dir=path.parent, prefix=path.name + ".", suffix=".tmp", delete=False)
    try:
        with handle:
            write(handle)
        give_ordinary_mode(handle.name)
        os.replace(handle.name, path)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise
