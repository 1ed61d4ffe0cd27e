"""The example photos shipped in ``examples/`` (free licences, see ``examples/README.md``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"


@dataclass(frozen=True)
class ExamplePhoto:
    """One example: its short name (used in URLs), file, caption, licence and a one- or two-word title."""

    name: str
    file: str
    caption: str
    licence: str
    title: str

    @property
    def path(self) -> Path:
        return EXAMPLES_DIR / self.file

    def read(self) -> bytes:
        """The photo's bytes.

        Raises:
            FileNotFoundError: If the file is missing from ``examples/``.
        """
        return self.path.read_bytes()


EXAMPLES: dict[str, ExamplePhoto] = {photo.name: photo for photo in (
    ExamplePhoto("astronaut", "astronaut.jpg", "One face: astronaut Eileen Collins", "public domain (NASA)", "One face"),
    ExamplePhoto("three-faces", "three_faces.jpg", "Three faces at three sizes", "public domain + CC0", "Three faces"),
    ExamplePhoto("cameraman", "cameraman.jpg", "A grayscale photo: the cameraman", "CC0 (Lav Varshney)", "Grayscale"),
)}


def available_examples() -> dict[str, ExamplePhoto]:
    """The examples whose file is present (a trimmed checkout may lack them)."""
    return {name: photo for name, photo in EXAMPLES.items() if photo.path.is_file()}
