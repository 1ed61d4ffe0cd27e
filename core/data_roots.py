"""Which folders a path typed in the dashboard may point into.

The dashboard is a web page; a path typed into it is read by the server.
So such paths are confined to a few *data roots*: ``$FER_STUDIO_DATA_ROOTS``
(folders separated by ``os.pathsep``, ``:`` on Linux and macOS) if set, else

* ``data/`` in the working folder and in the checkout,
* ``../shared`` next to the checkout (where CI and development keep FER2013),
* the cache folder (``$FER_STUDIO_CACHE`` or ``~/.cache/fer-studio``; uploads land there),
* ``$FER2013_DIR`` when it is set.

Every other path gets one and the same message, whether it exists or not,
so the answer reveals nothing about the server's files. The uploads folder
inside the cache is private: other sessions' uploads are reached only
through their own upload widget, never by a typed path or by loading the
cache folder. The command line is not confined: whoever runs it can read
those files anyway.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.cache import default_cache_dir

DATA_ROOTS_VARIABLE: str = "FER_STUDIO_DATA_ROOTS"
_REPO_ROOT = Path(__file__).resolve().parent.parent


class PathNotAllowedError(ValueError):
    """A path outside the data roots (or one that cannot be checked). The message names no file."""


def data_roots() -> list[Path]:
    """Return the folders typed paths may point into, resolved, without duplicates.

    ``$FER_STUDIO_DATA_ROOTS`` replaces the defaults when set (an empty entry
    is ignored); see the module docstring for the defaults.
    """
    configured = os.environ.get(DATA_ROOTS_VARIABLE)
    if configured is not None and configured.strip():
        candidates = [Path(entry).expanduser() for entry in configured.split(os.pathsep) if entry.strip()]
    else:
        candidates = [Path.cwd() / "data", _REPO_ROOT / "data", _REPO_ROOT.parent / "shared", default_cache_dir()]
        fer2013_dir = os.environ.get("FER2013_DIR")
        if fer2013_dir:
            candidates.append(Path(fer2013_dir).expanduser())
    roots: list[Path] = []
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError):
            continue
        if resolved not in roots:
            roots.append(resolved)
    return roots


def private_folders() -> list[Path]:
    """Folders inside the roots that typed paths never reach: every session's saved uploads and video analyses."""
    try:
        return [(default_cache_dir() / "uploads").resolve(), (default_cache_dir() / "video-jobs").resolve()]
    except (OSError, RuntimeError):
        return []


def not_allowed_message(roots: list[Path] | None = None) -> str:
    """The one message every refused path gets: it says where data may live, nothing about the path."""
    listed = ", ".join(f"`{display_root(root)}`" for root in (data_roots() if roots is None else roots)) or "none configured"
    return (
        "That path is not available. Paths typed here must lie inside a data folder "
        f"({listed}; ./ and ../ are relative to FER Studio's folder); put the dataset there, upload it, "
        f"or set {DATA_ROOTS_VARIABLE}."
    )


def display_root(root: Path) -> str:
    """A root as the browser sees it: relative to the checkout (``data``, ``../shared``) or to ``~`` when it can be."""
    if root.is_relative_to(_REPO_ROOT.parent):
        relative = os.path.relpath(root, _REPO_ROOT)
        return relative if relative.startswith("..") else os.path.join(".", relative)
    home = Path.home().resolve()
    if root.is_relative_to(home):
        return str(Path("~") / root.relative_to(home))
    return str(root)


def is_inside_roots(path: str | os.PathLike, roots: list[Path] | None = None) -> bool:
    """Return whether ``path``, with every link followed, lies inside a data root (and outside the private folders)."""
    roots = data_roots() if roots is None else roots
    try:
        resolved = Path(path).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        return False
    if any(resolved == folder or resolved.is_relative_to(folder) for folder in private_folders()):
        return False
    return any(resolved == root or resolved.is_relative_to(root) for root in roots)


def confine_to_data_roots(typed: str, roots: list[Path] | None = None) -> Path:
    """Return the resolved path of ``typed`` if it lies inside a data root.

    Links are followed before the check, so a link inside a root that points
    elsewhere is refused too. Nothing is read or listed; whether the path
    exists is left to the loader (which runs only for allowed paths).

    Args:
        typed: The path as typed (``~`` is expanded; a relative path is taken
            from FER Studio's folder, the checkout, wherever the server was
            started).
        roots: The allowed folders (default :func:`data_roots`).

    Raises:
        PathNotAllowedError: For every path outside the roots, with the same
            message whatever the path, so existence is never revealed.
    """
    roots = data_roots() if roots is None else roots
    text = typed.strip()
    if not text or "\x00" in text:
        raise PathNotAllowedError(not_allowed_message(roots))
    path = _REPO_ROOT / Path(text).expanduser()  # an absolute path replaces the base
    if not is_inside_roots(path, roots):
        raise PathNotAllowedError(not_allowed_message(roots))
    return path.resolve()
