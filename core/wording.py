"""Counts in sentences: ``1 face``, ``3 faces``, never ``3 face(s)``."""

from __future__ import annotations


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, made plural unless ``count`` is 1: ``counted(2, "epoch")`` is ``"2 epochs"``.

    Args:
        count: How many; printed with thousands separators.
        noun: The singular.
        plural: The plural where it is not ``noun + "s"`` (``counted(2, "face id")`` needs none).
    """
    return f"{count:,} {noun if count == 1 else plural or noun + 's'}"
