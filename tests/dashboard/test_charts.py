"""Shared plotly figures: FER2013 class order, titles and axis labels, shares."""

from __future__ import annotations

import numpy as np
import pytest

from core.labels import CLASS_NAMES
from dashboard.charts import class_distribution_figure, intensity_histogram_figure, split_pairs_figure

COUNTS = {
    "PublicTest": {"angry": 2, "disgust": 1, "fear": 1, "happy": 4, "sad": 1, "surprise": 1, "neutral": 0},
    "Training": {name: 10 for name in CLASS_NAMES},
}


def test_class_distribution_lists_classes_in_fer2013_order_and_splits_in_canonical_order():
    figure = class_distribution_figure(COUNTS)
    assert [trace.name for trace in figure.data] == ["Training", "PublicTest"]
    assert list(figure.data[0].x) == list(CLASS_NAMES)
    assert list(figure.layout.xaxis.categoryarray) == list(CLASS_NAMES)
    assert figure.layout.title.text and figure.layout.xaxis.title.text and figure.layout.yaxis.title.text
    assert list(figure.data[1].y) == [2, 1, 1, 4, 1, 1, 0]


def test_class_distribution_as_share_sums_to_100_per_split():
    figure = class_distribution_figure(COUNTS, as_share=True)
    for trace in figure.data:
        assert abs(sum(trace.y) - 100.0) < 1e-9
    assert "%" in figure.layout.yaxis.title.text


def test_intensity_and_split_pair_figures_have_labelled_axes():
    edges = np.arange(0, 256, 64)
    figure = intensity_histogram_figure({"Training": (edges, np.array([0.1, 0.2, 0.3, 0.4]))})
    assert list(figure.data[0].y) == [10.0, 20.0, 30.0, 40.0]
    assert "intensity" in figure.layout.xaxis.title.text.lower()
    pairs = split_pairs_figure({"Training–PublicTest": {"exact": 3, "near": 2}})
    assert [trace.name for trace in pairs.data] == ["exact copies", "near copies"]
    assert pairs.layout.barmode == "stack"


def test_class_distribution_stays_readable_on_a_phone():
    # Walk s8: at 390 px the bar numbers shrank to about 5 px and a legend column took a quarter of the width.
    for as_share in (False, True):
        figure = class_distribution_figure(COUNTS, as_share=as_share)
        legend = figure.layout.legend
        assert legend.orientation == "h" and legend.yanchor == "bottom" and legend.y >= 1  # one row above the bars
        assert figure.layout.uniformtext.minsize >= 10 and figure.layout.uniformtext.mode == "show"  # never shrunk
        assert all(trace.textangle == -90 for trace in figure.data)  # upright: fits a narrow bar
        tallest = max(max(trace.y) for trace in figure.data)
        assert figure.layout.yaxis.range[1] >= 1.15 * tallest  # room for the tallest bar's number
        assert figure.layout.xaxis.tickangle == 0


@pytest.mark.parametrize(("last_epoch", "step"), [(1, 1), (3, 1), (6, 1), (7, 2), (33, 6), (40, 7), (300, 50)])
def test_epoch_axes_tick_whole_epochs_about_six_times(last_epoch, step):
    from dashboard.charts import EPOCH_TICKS, epoch_tick_step

    assert epoch_tick_step(last_epoch) == step
    assert len(range(1, last_epoch + 1, step)) <= EPOCH_TICKS


def test_every_chart_on_every_page_gets_the_trimmed_toolbar():
    # Walk s19: on a phone (no hover) Plotly draws its nine-icon toolbar at all times, over titles, legends and
    # the confusion matrices' top row. Every st.plotly_chart call passes CHART_CONFIG (or hides the toolbar).
    import ast
    from pathlib import Path

    from dashboard.charts import CHART_CONFIG

    root = Path(__file__).resolve().parents[2]
    calls = []
    for path in sorted([*root.glob("dashboard/*.py"), *root.glob("pages/*.py"), root / "streamlit_app.py"]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "plotly_chart":
                config = next((keyword.value for keyword in node.keywords if keyword.arg == "config"), None)
                calls.append((f"{path.relative_to(root)}:{node.lineno}", ast.unparse(config) if config else None))
    assert len(calls) >= 12
    assert [where for where, config in calls if config not in ("CHART_CONFIG", "{'displayModeBar': False}")] == []
    assert CHART_CONFIG["modeBarButtons"] == [["toImage", "resetScale2d"]] and CHART_CONFIG["displaylogo"] is False


def test_every_split_pair_bar_has_its_total_above_it():
    # Walk s19: beside Training's pairs the PublicTest-only bar was a sliver whose inside label could not be read.
    pairs = split_pairs_figure({"Training–Training": {"exact": 1234, "near": 567},
                                "PublicTest–PublicTest": {"exact": 3, "near": 9}})
    totals = {annotation.x: annotation.text for annotation in pairs.layout.annotations}
    assert totals == {"Training–Training": "1,801", "PublicTest–PublicTest": "12"}
    assert all(annotation.yanchor == "bottom" and annotation.y in (1801, 12) for annotation in pairs.layout.annotations)
    assert pairs.layout.uniformtext.mode == "hide" and pairs.layout.uniformtext.minsize >= 10  # no unreadable label
