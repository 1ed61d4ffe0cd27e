"""Widgets of the Data-quality page: scan controls, cached scan, summary, group table and images."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
import streamlit as st

from core.dataset import FerDataset
from core.labels import CLASS_NAMES, TRAINING
from core.quality import MAX_NEAR_THRESHOLD, DuplicateGroup, QualityReport, scan_quality
from dashboard.cache import cached_with_progress
from dashboard.data_source import dataset_key
from dashboard.images import face_caption, image_grid

GROUP_FILTERS = {
    "All groups": lambda group: True,
    "Across splits (leakage)": lambda group: group.crosses_splits and TRAINING in group.splits,
    "Label conflicts": lambda group: group.label_conflict,
    "Exact copies only": lambda group: group.exact,
    "Near copies only": lambda group: not group.exact,
}
# Each filter's token in the URL (``?show=conflicts``), so a reload or a shared link shows the same groups.
GROUP_FILTER_TOKENS = dict(zip(("all", "leakage", "conflicts", "exact", "near"), GROUP_FILTERS))


def group_filter_ui() -> str:
    """The "Show" choice of duplicate groups (a key of :data:`GROUP_FILTERS`), kept in ``?show=``."""
    from dashboard.url_state import remember_choice, url_choice

    tokens = list(GROUP_FILTER_TOKENS)
    url_choice("quality_filter", tokens, tokens[0], param="show", noun="group filter",
               describe=GROUP_FILTER_TOKENS.get)
    token = st.radio("Show", tokens, horizontal=True, key="quality_filter", format_func=GROUP_FILTER_TOKENS.get)
    remember_choice(token, param="show", default=tokens[0])
    return GROUP_FILTER_TOKENS[token]


DEFAULT_NEAR_THRESHOLD, DEFAULT_BLANK_STD = 4, 3.0


def scan_controls() -> tuple[int, float]:
    """Draw the scan settings; return ``(near_threshold, blank_std)``."""
    from dashboard.url_state import remember_choice, url_choice

    # Kept in the link (?threshold=6&blank=2.5) like every page's choices (walk s18: a reload went back to 4).
    thresholds, blanks = list(range(MAX_NEAR_THRESHOLD + 1)), [step / 2 for step in range(101)]
    url_choice("quality_threshold", thresholds, DEFAULT_NEAR_THRESHOLD, param="threshold", noun="threshold")
    url_choice("quality_blank_std", blanks, DEFAULT_BLANK_STD, param="blank", noun="blank-image limit",
               describe=lambda value: f"{value:g}")
    left, right = st.columns(2)
    threshold = left.slider(
        "Near-duplicate threshold (pHash bits)",
        0,
        MAX_NEAR_THRESHOLD,
        key="quality_threshold",
        help="Two images whose 64-bit perceptual hashes differ in at most this many bits are near duplicates. "
        "On FER2013, 4 finds re-crops and re-encodings with almost no false matches; from about 8 on, "
        "different faces with a similar layout start to match.",
    )
    blank_std = right.number_input(
        "Blank image: pixel standard deviation below",
        min_value=0.0,
        max_value=50.0,
        step=0.5,
        key="quality_blank_std",
        help="A uniform image has standard deviation 0; real faces are above 10.",
    )
    remember_choice(int(threshold), param="threshold", default=DEFAULT_NEAR_THRESHOLD)
    remember_choice(float(blank_std), param="blank", default=DEFAULT_BLANK_STD)
    return int(threshold), float(blank_std)


def cached_scan(dataset: FerDataset, near_threshold: int, blank_std: float) -> QualityReport:
    """Run :func:`core.quality.scan_quality` once per dataset and settings, with a progress bar."""
    return cached_with_progress(
        "quality",
        (dataset_key(dataset), near_threshold, blank_std),
        lambda progress: scan_quality(
            dataset.images,
            dataset.labels,
            dataset.splits,
            dataset.ids,
            near_threshold=near_threshold,
            blank_std=blank_std,
            progress=progress,
        ),
        label="Scanning for duplicates",
        max_entries=4,
    )


def summary_metrics(report: QualityReport, dataset: FerDataset) -> None:
    """Headline numbers of the scan."""
    columns = st.columns(6)
    columns[0].metric("Duplicate groups", f"{len(report.groups):,}", help=f"{report.duplicated_images:,} images")
    columns[1].metric("Exact pairs", f"{report.exact_pairs:,}", help="Pixel-identical pairs")
    columns[2].metric(
        "Near pairs", f"{report.near_pairs:,}", help=f"Hashes within {report.near_threshold} bits, pixels differ"
    )
    leaked = sum(report.leaked.values())
    tested = int((dataset.splits != TRAINING).sum())
    columns[3].metric(
        "Leaked test images",
        f"{leaked:,}",
        help="Images outside Training with an exact or near copy in Training. "
        + ("; ".join(f"{split}: {count:,}" for split, count in report.leaked.items()) or "No test split here."),
    )
    if tested:
        columns[3].caption(f"{100 * leaked / tested:.1f}% of the non-Training images")
    columns[4].metric("Label conflicts", f"{len(report.conflict_groups):,}", help="Groups whose copies disagree")
    columns[5].metric("Blank images", f"{len(report.blank):,}", help=f"Pixel std < {report.blank_std:g}")
    st.caption(
        f"Scanned {report.n_images:,} images in {report.seconds:.1f} s."
        + (f" {report.skipped_buckets} oversized hash buckets were skipped." if report.skipped_buckets else "")
    )


def _tally(values) -> str:
    return ", ".join(f"{name} ×{count}" if count > 1 else name for name, count in Counter(values).items())


def group_kind(group: DuplicateGroup, near_threshold: int) -> str:
    """``exact``, or how near: a group chains pairs within the threshold, so its farthest two may be further apart."""
    if group.exact:
        return "exact"
    if group.max_distance <= near_threshold:
        return f"near, ≤{group.max_distance} bits apart"
    return f"near, chained in steps of ≤{near_threshold} bits (farthest two {group.max_distance} apart)"


def groups_table(groups: list[DuplicateGroup], near_threshold: int) -> pd.DataFrame:
    """One row per group: size, kind, splits, labels and the first ids."""
    return pd.DataFrame(
        {
            "images": [len(group.indices) for group in groups],
            "kind": [group_kind(group, near_threshold) for group in groups],
            "splits": [_tally(group.splits) for group in groups],
            "labels": [_tally(CLASS_NAMES[label] for label in group.labels) for group in groups],
            "ids": [", ".join(group.ids[:4]) + (" …" if len(group.ids) > 4 else "") for group in groups],
        }
    )


def group_images(dataset: FerDataset, group: DuplicateGroup) -> None:
    """The copies of one group side by side, each captioned with label, id and split."""
    captions = [
        short_caption(label, identifier, split)
        for label, identifier, split in zip(group.labels, group.ids, group.splits, strict=True)
    ]
    image_grid(dataset.images[list(group.indices)], captions, size=96)


def short_caption(label: int, identifier: str, split: str) -> str:
    """``fear`` and ``Training 123`` on two lines (the split is added when the id does not name it).

    The id's underscore becomes a space, so a narrow caption wraps between
    split and number, not inside the number (walk s10: "Training_14570 / 127");
    the class has a line of its own (walk s15: "surprise · / Training / 32304486").
    """
    stem = Path(identifier).stem
    where = face_caption(None, stem.replace("_", " "), None if stem.startswith(split) else split)
    return f"{CLASS_NAMES[int(label)]}\n{where}"
