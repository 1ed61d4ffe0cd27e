"""Plotly figures shared by the pages. Every function returns a figure and draws nothing."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.labels import CLASS_NAMES, KNOWN_SPLITS

# One colour per split, the same on every chart.
SPLIT_COLORS: dict[str, str] = {
    "Training": "#4C78A8",
    "PublicTest": "#F58518",
    "PrivateTest": "#54A24B",
    "test": "#E45756",
    "all": "#72B7B2",
}
CLASS_AXIS_TITLE = "Emotion (FER2013 order)"

# Every chart's Plotly config. Where the browser has no hover (a phone, a touch screen), Plotly draws its
# toolbar at all times, and its nine icons covered chart titles, legends and the top row of the confusion
# matrices (walk s19). Two are kept, in the figure's top-right corner: save as PNG, and undo a zoom (a drag
# zooms, a double-click resets too). Streamlit's own full-screen button sits outside the figure.
CHART_CONFIG = {"displaylogo": False, "modeBarButtons": [["toImage", "resetScale2d"]]}
# Ticks on an epoch axis (whole epochs only): about six fit a half-width panel on a 390 px phone without overlapping.
EPOCH_TICKS = 6


def epoch_tick_step(last_epoch: int) -> int:
    """The step between ticks of an epoch axis that ends at ``last_epoch``: whole epochs, about :data:`EPOCH_TICKS`."""
    return max(1, -(-int(last_epoch) // EPOCH_TICKS))


def _ordered_splits(names) -> list[str]:
    return [s for s in KNOWN_SPLITS if s in names] + sorted(set(names) - set(KNOWN_SPLITS))


def class_distribution_figure(counts: dict[str, dict[str, int]], *, as_share: bool = False) -> go.Figure:
    """Grouped bars of images per class, one bar colour per split.

    Args:
        counts: ``{split: {class_name: count}}`` as ``FerDataset.class_counts()`` returns.
        as_share: Plot each split's percentage instead of raw counts, so splits
            of different sizes compare directly.

    Returns:
        A bar chart with classes in FER2013 order; hover shows count and share.
    """
    figure = go.Figure()
    highest = 0.0
    for split in _ordered_splits(counts):
        values = np.array([counts[split].get(name, 0) for name in CLASS_NAMES], dtype=float)
        total = values.sum() or 1.0
        shares = 100.0 * values / total
        highest = max(highest, float((shares if as_share else values).max(initial=0.0)))
        figure.add_bar(
            name=split,
            x=list(CLASS_NAMES),
            y=shares if as_share else values,
            marker_color=SPLIT_COLORS.get(split),
            customdata=np.c_[values, shares],
            text=[f"{share:.1f}%" if as_share else f"{int(value):,}" for value, share in zip(values, shares)],
            textposition="outside",
            textangle=-90,  # upright, a number needs a bar only as wide as one line of text: it fits a phone's bars
            hovertemplate="%{x} · " + split + "<br>%{customdata[0]:,.0f} images<br>%{customdata[1]:.1f}% of the split"
            "<extra></extra>",
        )
    figure.update_layout(
        title="Images per emotion and split" + (" (share of each split)" if as_share else ""),
        barmode="group",
        xaxis_title=CLASS_AXIS_TITLE,
        yaxis_title="Share of the split (%)" if as_share else "Images",
        # The splits in one row over the bars, not a column beside them that takes a quarter of a phone's width.
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom", "title": {"text": ""}},
        # Every bar's number in the same size, at least 10 px: plotly would shrink it to fit a phone's narrow bars.
        uniformtext={"minsize": 10, "mode": "show"},
        margin={"t": 80, "b": 40, "l": 10, "r": 10},
    )
    figure.update_xaxes(categoryorder="array", categoryarray=list(CLASS_NAMES), tickangle=0, tickfont={"size": 11})
    figure.update_yaxes(range=[0, (highest or 1.0) * 1.2])  # room above the tallest bar for its upright number
    return figure


def intensity_histogram_figure(histograms: dict[str, tuple[np.ndarray, np.ndarray]]) -> go.Figure:
    """Lines of the pixel-intensity distribution of each split.

    Args:
        histograms: ``{split: (bin_left_edges, fractions)}`` from ``core.stats.intensity_histogram``.
    """
    figure = go.Figure()
    for split in _ordered_splits(histograms):
        edges, fractions = histograms[split]
        width = int(edges[1] - edges[0]) if len(edges) > 1 else 256
        figure.add_scatter(
            name=split,
            x=edges + width / 2,
            y=100.0 * np.asarray(fractions),
            mode="lines",
            line={"color": SPLIT_COLORS.get(split), "shape": "hvh"},
            customdata=np.c_[edges, edges + width - 1],
            hovertemplate=split + "<br>intensity %{customdata[0]}–%{customdata[1]}: %{y:.2f}% of pixels<extra></extra>",
        )
    figure.update_layout(
        title="Pixel intensity per split",
        xaxis_title="Pixel intensity (0 = black, 255 = white)",
        yaxis_title="Share of pixels (%)",
        legend_title="Split",
        margin={"t": 60, "b": 40},
    )
    figure.update_xaxes(range=[0, 255])
    figure.update_yaxes(rangemode="tozero")
    return figure


def split_pairs_figure(split_pair_counts: dict[str, dict[str, int]]) -> go.Figure:
    """Stacked bars of duplicate pairs (exact and near) for each pair of splits.

    Args:
        split_pair_counts: ``QualityReport.split_pair_counts``.
    """
    names = list(split_pair_counts)
    figure = go.Figure()
    for kind, color in (("exact", "#E45756"), ("near", "#F2B701")):
        values = [split_pair_counts[name][kind] for name in names]
        figure.add_bar(
            name=f"{kind} copies",  # short: the legend stays one row on a phone
            x=names,
            y=values,
            marker_color=color,
            text=[f"{value:,}" for value in values],
            textposition="inside",
            hovertemplate="%{x}<br>%{y:,} " + kind + " pairs<extra></extra>",
        )
    # Walk s19: beside Training's thousands of pairs a test split's few are a sliver whose label was unreadable.
    # Each bar's total stands above it; an inside label that does not fit is hidden rather than shrunk to nothing.
    for name in names:
        total = split_pair_counts[name]["exact"] + split_pair_counts[name]["near"]
        figure.add_annotation(x=name, y=total, text=f"{total:,}", showarrow=False, yanchor="bottom", yshift=2)
    figure.update_layout(
        title="Duplicate pairs by split",
        barmode="stack",
        uniformtext={"minsize": 10, "mode": "hide"},
        xaxis_title="Splits the two copies are in",
        yaxis_title="Pairs",
        # In one row over the bars, as the class chart's: a column beside them took a third of a phone's width.
        legend={"orientation": "h", "x": 0, "xanchor": "left", "y": 1.0, "yanchor": "bottom", "title": {"text": ""}},
        margin={"t": 80, "b": 40, "l": 10, "r": 10},
    )
    highest = max((counts["exact"] + counts["near"] for counts in split_pair_counts.values()), default=0)
    figure.update_yaxes(range=[0, (highest or 1) * 1.12])  # room above the tallest bar for its total
    return figure
