"""Widgets of the Dataset page: split metrics, imbalance text, sample-grid controls, cached stats."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core.dataset import FerDataset
from core.labels import CLASS_NAMES
from core.stats import imbalance, intensity_histogram, mean_faces
from dashboard.text import literal, quoted

ALL_SPLITS = "All splits"
# Widget keys double as URL parameters (bind="query-params"): ?split=PublicTest&classes=fear&per_class=20&seed=3
_SPLIT_KEY, _CLASSES_KEY, _COUNT_KEY, _SEED_KEY = "split", "classes", "per_class", "seed"
SHARE_KEY = "share"
IGNORED_FOLDERS_SHOWN = 20
NO_CLASS_HINT = "No class is chosen: click one or more under **Classes** above to show their faces."


@st.cache_data(show_spinner="Averaging faces…", max_entries=8)
def cached_mean_faces(key: str, split: str | None, _dataset: FerDataset) -> np.ndarray:
    """``core.stats.mean_faces`` of one split (None: all), cached by dataset key and split."""
    mask = np.ones(len(_dataset), dtype=bool) if split is None else _dataset.splits == split
    return mean_faces(_dataset.images[mask], _dataset.labels[mask])


@st.cache_data(show_spinner="Counting pixel intensities…", max_entries=4)
def cached_histograms(key: str, _dataset: FerDataset) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Intensity histogram of each split, cached by dataset key."""
    return {split: intensity_histogram(_dataset.images[_dataset.splits == split]) for split in _dataset.split_names}


def split_metrics(dataset: FerDataset) -> None:
    """One metric per split plus the total, and the load report's problems if any."""
    names = dataset.split_names
    columns = st.columns(len(names) + 1)
    columns[0].metric("Images", f"{len(dataset):,}", help=f"Loaded from {dataset.report.kind}")
    for column, split in zip(columns[1:], names, strict=True):
        count = int((dataset.splits == split).sum())
        column.metric(split, f"{count:,}", help=f"{100 * count / len(dataset):.1f}% of the images")
    report = dataset.report
    if report.numbered_folders:  # labels that may be wrong are said in view, not folded away (probe s19)
        st.warning(literal(report.notes()[-1], None), icon=":material/warning:")
    if report.skipped or report.converted or report.ignored_folders:
        with st.expander(f"Load report: {len(report.skipped):,} records skipped, {report.converted:,} converted"):
            if report.ignored_folders:
                # Folder names come from the user's data (an uploaded zip included): inert text, never markdown.
                shown = ", ".join(quoted(name) for name in report.ignored_folders[:IGNORED_FOLDERS_SHOWN])
                more = len(report.ignored_folders) - IGNORED_FOLDERS_SHOWN
                st.markdown(f"Ignored folders (no FER2013 class): {shown}" + (f" and {more} more" if more > 0 else ""))
            if report.skipped:
                st.dataframe(
                    [{"where": s.where, "reason": s.reason} for s in report.skipped[:1000]], hide_index=True
                )


def face_id_caption(identifier: str) -> str:
    """``Training 95667267`` from ``Training_95667267.jpg``: the space lets a narrow caption wrap between split and number."""
    from pathlib import PurePath

    return PurePath(identifier).stem.replace("_", " ")


def imbalance_text(counts: dict[str, dict[str, int]]) -> str:
    """One line per split such as ``Training: happy is 16.5x disgust (largest/smallest class)``."""
    lines = []
    for split, per_class in counts.items():
        result = imbalance(per_class)
        if result is None:
            lines.append(f"**{split}**: some class has no images, so the imbalance ratio is unbounded.")
        else:
            largest, smallest, ratio = result
            lines.append(
                f"**{split}**: {largest} ({per_class[largest]:,}) is **{ratio:.1f}x** {smallest} "
                f"({per_class[smallest]:,}), largest over smallest class."
            )
    return "  \n".join(lines)


def _reshuffle() -> None:
    st.session_state[_SEED_KEY] = int(st.session_state.get(_SEED_KEY, 0)) + 1


def sample_controls(dataset: FerDataset) -> tuple[str | None, list[int], int, int]:
    """Draw the sample filters (all kept in the URL); return ``(split or None, class indices, per class, seed)``."""
    chosen = st.pills("Classes", list(CLASS_NAMES), selection_mode="multi", default=list(CLASS_NAMES),
                      key=_CLASSES_KEY, bind="query-params", help="Click a class to hide or show its row")
    split_col, count_col, seed_col, button_col = st.columns([2, 2, 2, 2], vertical_alignment="bottom")
    split = split_col.selectbox("Split", [ALL_SPLITS, *dataset.split_names], key=_SPLIT_KEY, bind="query-params")
    per_class = count_col.slider("Images per class", 1, 30, 10, key=_COUNT_KEY, bind="query-params")
    seed = seed_col.number_input("Shuffle seed", min_value=0, step=1, key=_SEED_KEY, bind="query-params")
    button_col.button("Reshuffle", on_click=_reshuffle, help="Draw other images (next seed)", icon=":material/shuffle:")
    classes = [CLASS_NAMES.index(name) for name in CLASS_NAMES if name in (chosen or [])]
    return (None if split == ALL_SPLITS else split), classes, int(per_class), int(seed)
