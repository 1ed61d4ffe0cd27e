"""Class names and split names of FER2013, declared once for the whole project.

FER2013 encodes the emotion as an integer 0..6 in this order. Alphabetical
folder order differs (neutral sorts before sad), so every loader maps names
to these indices explicitly through :func:`class_index`.
"""

from __future__ import annotations

CLASS_NAMES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NUM_CLASSES: int = len(CLASS_NAMES)

IMAGE_SIZE: int = 48

# Split names as FER2013's `Usage` column spells them, plus the two generic ones
# used for sources that carry no Usage: a plain `test/` image and a single
# labeled folder.
TRAINING = "Training"
PUBLIC_TEST = "PublicTest"
PRIVATE_TEST = "PrivateTest"
TEST = "test"
ALL = "all"
KNOWN_SPLITS: tuple[str, ...] = (TRAINING, PUBLIC_TEST, PRIVATE_TEST, TEST, ALL)

# Folder names seen in other face datasets (RAF-DB, AffectNet exports, CK+ ...).
_SYNONYMS: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "scared": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "neutral": "neutral",
    "neutrality": "neutral",
}


def class_index(name: str) -> int | None:
    """Map a class or folder name to its FER2013 index.

    Matching ignores case and surrounding whitespace and accepts common
    synonyms (``anger``, ``happiness``, ``sadness``, ``surprised``,
    ``fearful``, ``disgusted``) and the bare digits ``0``..``6``.

    Args:
        name: A class name, folder name or digit string.

    Returns:
        The index in :data:`CLASS_NAMES`, or ``None`` for an unknown name
        (``contempt``, say) so the caller can report and skip it.
    """
    key = name.strip().lower()
    if key.isdigit() and int(key) < NUM_CLASSES:
        return int(key)
    canonical = _SYNONYMS.get(key)
    return None if canonical is None else CLASS_NAMES.index(canonical)
