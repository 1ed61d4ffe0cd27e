"""Data-quality page: duplicates within and across splits, label conflicts, blank images."""

import json

import streamlit as st

from core.wording import counted
from dashboard import quality_view as view
from dashboard.charts import CHART_CONFIG, split_pairs_figure
from dashboard.data_source import dataset_key, get_dataset
from dashboard.images import image_grid
from dashboard.router import require_router

require_router()

SHOWN_GROUPS = 12

st.title("Data quality")
st.caption(
    "Exact copies share every pixel; near copies (re-crops, re-encodings) have perceptual hashes within the "
    "threshold. A test image with a copy in Training inflates test accuracy."
)
dataset = get_dataset()
if dataset is None:
    st.stop()

near_threshold, blank_std = view.scan_controls()
report = view.cached_scan(dataset, near_threshold, blank_std)
view.summary_metrics(report, dataset)
if report.split_pair_counts:
    st.plotly_chart(split_pairs_figure(report.split_pair_counts), key="split_pairs", config=CHART_CONFIG)

st.header("Duplicate groups")
if not report.groups:
    st.success("No duplicates found at this threshold.")
else:
    shown = view.group_filter_ui()
    groups = [group for group in report.groups if view.GROUP_FILTERS[shown](group)]
    first = f"the first {SHOWN_GROUPS} show" if len(groups) > SHOWN_GROUPS else "all of them show"
    st.caption(f"{counted(len(groups), 'group')}. Select rows to see their images; otherwise {first}.")
    table = view.groups_table(groups, report.near_threshold)
    # The scan's settings and data are in the key: rows are chosen by position, and another scan puts other groups
    # at the same positions (review s20: "Group 2" then showed another group's faces).
    table_key = f"groups_{shown}_{report.near_threshold}_{report.blank_std}_{dataset_key(dataset)}"
    selection = st.dataframe(table, on_select="rerun", selection_mode="multi-row", key=table_key, height=300)
    rows = [row for row in selection.selection.rows if row < len(groups)]
    for number in rows or range(min(SHOWN_GROUPS, len(groups))):
        group = groups[number]
        st.markdown(f"**Group {number}** · {table.iloc[number]['kind']}")
        view.group_images(dataset, group)

st.header("Blank images")
if len(report.blank) == 0:
    st.success(f"No image has a pixel standard deviation below {report.blank_std:g}.")
else:
    rows = report.blank[:100]
    captions = [view.short_caption(*row) for row in zip(dataset.labels[rows], dataset.ids[rows], dataset.splits[rows])]
    image_grid(dataset.images[rows], captions, size=96)

st.download_button(
    "Download the report (JSON)",
    json.dumps(report.to_dict(), indent=1),
    file_name="fer2013_quality.json",
    mime="application/json",
    icon=":material/download:",
)
