"""Data quality widgets: what a duplicate group's row says."""

from __future__ import annotations

from core.quality import DuplicateGroup
from dashboard.quality_view import groups_table


def _group(exact: bool, max_distance: int) -> DuplicateGroup:
    return DuplicateGroup(indices=(0, 1, 2), ids=("Training_1", "Training_2", "PublicTest_3"),
                          splits=("Training", "Training", "PublicTest"), labels=(3, 3, 4), exact=exact,
                          max_distance=max_distance)


def test_a_chained_group_says_it_is_chained_so_the_threshold_does_not_look_ignored():
    # Before: at a 4-bit threshold a group read "near, ≤8 bits apart", as if the slider had no effect.
    table = groups_table([_group(True, 0), _group(False, 3), _group(False, 8)], near_threshold=4)
    assert table["kind"].tolist() == [
        "exact",
        "near, ≤3 bits apart",
        "near, chained in steps of ≤4 bits (farthest two 8 apart)",
    ]
    assert table["images"].tolist() == [3, 3, 3]


def test_a_caption_wraps_between_split_and_number():
    # Walk s10: 96-pixel captions broke ids inside the number ("Training_14570 / 127").
    from dashboard.quality_view import short_caption

    assert short_caption(2, "Training_14570127.jpg", "Training").endswith("Training 14570127")
    assert short_caption(2, "Training_14570127.jpg", "Training") == "fear\nTraining 14570127"  # walk s15: a line each
    assert "PublicTest" in short_caption(2, "face_7.png", "PublicTest")  # an id that does not name its split
